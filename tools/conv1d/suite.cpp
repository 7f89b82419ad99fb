#include "suite.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "builtin_suite.hpp"
#include "common.hpp"

namespace conv1d::cli {

namespace {

constexpr std::array<std::string_view, 12> kColumns = {"name",
                                                       "batch",
                                                       "in_channels",
                                                       "out_channels",
                                                       "length",
                                                       "kernel_size",
                                                       "stride",
                                                       "padding",
                                                       "dilation",
                                                       "groups",
                                                       "pointwise_out_channels",
                                                       "padding_mode"};
// The last two columns are optional: a header holds the first ten and may
// go on with one or both of them, and a row may leave out the ones at its
// end.
constexpr size_t kRequiredColumns = 10;
constexpr size_t kPointwiseColumn = 10;
constexpr size_t kPaddingModeColumn = 11;

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto comma = line.find(',');
    fields.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return fields;
    line.remove_prefix(comma + 1);
  }
}

SuiteLayer parse_layer(const std::vector<std::string_view>& fields) {
  auto number = [&](size_t column) {
    return parse_int(fields[column], fmt::format("column '{}'", kColumns[column]));
  };
  SuiteLayer layer;
  layer.name = std::string(fields[0]);
  if (layer.name.empty()) throw Error("column 'name' is empty");
  layer.batch = number(1);
  layer.params.in_channels = number(2);
  layer.params.out_channels = number(3);
  layer.length = number(4);
  layer.params.kernel_size = number(5);
  layer.params.stride = number(6);
  layer.params.padding = Padding::parse(fields[7]);
  layer.params.dilation = number(8);
  layer.params.groups = number(9);
  if (fields.size() > kPaddingModeColumn && !fields[kPaddingModeColumn].empty()) {
    try {
      layer.params.padding_mode = parse_padding_mode(fields[kPaddingModeColumn]);
    } catch (const Error& error) {
      throw Error(fmt::format("column 'padding_mode': {}", error.what()));
    }
  }
  if (fields.size() > kPointwiseColumn && !fields[kPointwiseColumn].empty()) {
    layer.pointwise_out_channels = number(kPointwiseColumn);
    if (layer.pointwise_out_channels <= 0) {
      throw Error(fmt::format("column 'pointwise_out_channels' must be positive or empty, got {}",
                              layer.pointwise_out_channels));
    }
    if (layer.params.groups != layer.params.in_channels ||
        layer.params.out_channels % layer.params.in_channels != 0) {
      throw Error(fmt::format(
          "a separable layer (pointwise_out_channels set) needs a depthwise first part: groups={} "
          "must equal in_channels={} and divide out_channels={}",
          layer.params.groups, layer.params.in_channels, layer.params.out_channels));
    }
  }
  // The whole problem is checked now, before any layer runs.
  layer.problem(DType::f32);
  if (layer.separable()) layer.pointwise_problem(DType::f32);
  return layer;
}

}  // namespace

SeparableParams SuiteLayer::separable_params() const {
  SeparableParams separable;
  separable.in_channels = params.in_channels;
  separable.out_channels = pointwise_out_channels;
  separable.kernel_size = params.kernel_size;
  separable.stride = params.stride;
  separable.padding = params.padding;
  separable.dilation = params.dilation;
  separable.depth_multiplier = params.out_channels / params.in_channels;
  separable.padding_mode = params.padding_mode;
  separable.depthwise_bias = params.bias;
  separable.pointwise_bias = params.bias;
  return separable;
}

Problem SuiteLayer::problem(DType dtype) const {
  return Problem::make(params, batch, length, dtype);
}

Problem SuiteLayer::pointwise_problem(DType dtype) const {
  return Problem::make(separable_params().pointwise_params(), batch, problem(dtype).out_length(),
                       dtype);
}

std::string SuiteLayer::descriptor(DType dtype) const {
  if (!separable()) return problem(dtype).to_string();
  return problem(dtype).to_string() + "+" + pointwise_problem(dtype).to_string();
}

std::vector<SuiteLayer> parse_suite(std::string_view csv, std::string_view source) {
  std::vector<SuiteLayer> layers;
  bool header_seen = false;
  size_t columns = 0;
  size_t line_number = 0;
  while (!csv.empty()) {
    const auto newline = csv.find('\n');
    const std::string_view line = trim(csv.substr(0, newline));
    csv.remove_prefix(newline == std::string_view::npos ? csv.size() : newline + 1);
    ++line_number;
    if (line.empty()) continue;
    const auto fields = split(line);
    if (!header_seen) {
      if (fields.size() < kRequiredColumns || fields.size() > kColumns.size() ||
          !std::equal(fields.begin(), fields.end(), kColumns.begin())) {
        throw Error(fmt::format(
            "suite {} line {}: expected the header '{}', optionally followed by ',{}' and ',{}', "
            "got '{}'",
            source, line_number,
            fmt::join(kColumns.begin(), kColumns.begin() + kRequiredColumns, ","),
            kColumns[kPointwiseColumn], kColumns[kPaddingModeColumn], line));
      }
      header_seen = true;
      columns = fields.size();
      continue;
    }
    // Rows may leave out the optional columns at their end.
    if (fields.size() < kRequiredColumns || fields.size() > columns) {
      throw Error(fmt::format("suite {} line {}: expected {} to {} comma-separated fields, got {}",
                              source, line_number, kRequiredColumns, columns, fields.size()));
    }
    try {
      layers.push_back(parse_layer(fields));
    } catch (const Error& error) {
      throw Error(fmt::format("suite {} line {}: {}", source, line_number, error.what()));
    }
  }
  if (layers.empty()) throw Error(fmt::format("suite {} has no layers", source));
  return layers;
}

std::vector<SuiteLayer> builtin_suite() { return parse_suite(kBuiltinSuiteCsv, "(built-in)"); }

std::vector<SuiteLayer> read_suite(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    throw Error(fmt::format("cannot read suite file '{}': it is a directory", path));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error(fmt::format("cannot open suite file '{}': {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) {
    throw Error(fmt::format("cannot read suite file '{}': {}", path, std::strerror(errno)));
  }
  return parse_suite(text.str(), fmt::format("'{}'", path));
}

}  // namespace conv1d::cli
