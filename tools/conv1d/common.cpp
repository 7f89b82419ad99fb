#include "common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <conv1d/npy.hpp>
#include <filesystem>
#include <system_error>

namespace conv1d::cli {

namespace fs = std::filesystem;

int64_t parse_int(std::string_view text, std::string_view what) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range) {
    throw Error(fmt::format("{} must fit in a 64-bit integer, got '{}'", what, text));
  }
  if (text.empty() || error != std::errc() || stop != end) {
    throw Error(fmt::format("{} must be an integer, got '{}'", what, text));
  }
  return value;
}

std::vector<int64_t> parse_shape(std::string_view text, std::string_view what) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const int64_t dim = parse_int(item, fmt::format("every dimension of {} '{}'", what, text));
    if (dim < 0) {
      throw Error(fmt::format("{} '{}' has a negative dimension {}", what, text, dim));
    }
    shape.push_back(dim);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return shape;
}

int parse_threads(std::string_view text) {
  constexpr int64_t kMaxThreads = 4096;
  const int64_t threads = parse_int(text, "--threads");
  if (threads < 0 || threads > kMaxThreads) {
    throw Error(fmt::format("--threads must be between 0 (all available) and {}, got {}",
                            kMaxThreads, threads));
  }
  return static_cast<int>(threads);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

void check_output_path(const std::string& path, std::string_view what) {
  if (path.empty()) throw Error(fmt::format("{} is an empty path", what));
  std::error_code error;
  if (fs::is_directory(path, error)) {
    throw Error(fmt::format("cannot write {} '{}': it is a directory", what, path));
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, error)) {
    throw Error(fmt::format("cannot write {} '{}': directory '{}' does not exist", what, path,
                            parent.string()));
  }
}

void write_outputs(const std::vector<std::pair<std::string, const Tensor*>>& outputs) {
  if (outputs.size() == 1) {
    write_npy(outputs[0].first, *outputs[0].second);  // atomic by itself
    return;
  }
  std::vector<std::string> staged;
  auto discard = [&] {
    std::error_code ignored;
    for (const std::string& path : staged) fs::remove(path, ignored);
  };
  try {
    for (const auto& [path, tensor] : outputs) {
      const std::string staging = fmt::format("{}.conv1d-{}.partial", path, ::getpid());
      try {
        write_npy(staging, *tensor);
      } catch (const Error& error) {
        // Name the file the user asked for, not the staging one.
        std::string message = error.what();
        for (size_t at = message.find(staging); at != std::string::npos;
             at = message.find(staging, at + path.size())) {
          message.replace(at, staging.size(), path);
        }
        throw Error(message);
      }
      staged.push_back(staging);
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::error_code error;
      fs::rename(staged[i], outputs[i].first, error);
      if (error) {
        // Renames within one folder practically never fail; if one does,
        // take back the outputs already in place.
        std::error_code ignored;
        for (size_t j = 0; j < i; ++j) fs::remove(outputs[j].first, ignored);
        throw Error(fmt::format("cannot write '{}': {}", outputs[i].first, error.message()));
      }
    }
  } catch (...) {
    discard();
    throw;
  }
}

}  // namespace conv1d::cli
