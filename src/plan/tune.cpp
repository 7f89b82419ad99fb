// Tune mode: time the candidate algorithms on scratch data of the problem's
// shape and keep the fastest, per (problem, ISA, threads), in this process
// and optionally in a cache file (format in README "Tune mode").
#include "plan/tune.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <compare>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "core/strings.hpp"
#include "core/threads.hpp"

namespace conv1d::detail {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using core::str_cat;

constexpr std::string_view kTuned = "tuned";
constexpr std::string_view kCached = "tuned (cached)";
constexpr std::string_view kOnlyCandidate = "tuned (only candidate)";

// Each candidate runs once to warm up, then at least kMinRuns times and
// until kBudgetSeconds are spent or kMaxRuns reached; the median counts.
constexpr size_t kMinRuns = 3;
constexpr size_t kMaxRuns = 9;
constexpr double kBudgetSeconds = 0.02;
// A candidate whose warm-up run and the run after it are each this much
// slower than the best median so far cannot win: it is not timed further.
constexpr double kHopelessRatio = 3.0;
// Exact algorithms are preferred, as by the cost model: one checked only
// within a tolerance (fft) must save a third of the time and 20 us.
constexpr double kInexactFactor = 1.5;
constexpr double kInexactSeconds = 20e-6;

constexpr std::string_view kFileHeader =
    "# conv1d tune cache: problem isa threads algorithm median_ms";

struct Key {
  std::string problem;  // Problem::to_string()
  std::string isa;
  int threads = 0;
  auto operator<=>(const Key&) const = default;
};

struct Measured {
  std::string algorithm;
  double median_ms = 0.0;
};

using Entries = std::map<Key, Measured>;

struct Cache {
  std::mutex mutex;
  Entries memory;                        // tuned in this process
  std::map<std::string, Entries> files;  // cache file path -> its entries
};

Cache& cache() {
  static Cache instance;
  return instance;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const size_t middle = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[middle] : 0.5 * (samples[middle - 1] + samples[middle]);
}

// Every algorithm that supports the problem; the reference only when no
// other does (it is never the fastest).
std::vector<const AlgorithmEntry*> candidates_for(const Problem& problem) {
  std::vector<const AlgorithmEntry*> candidates;
  for (const AlgorithmEntry& entry : registry()) {
    if (entry.name != "reference" && !entry.why_not(problem)) candidates.push_back(&entry);
  }
  if (candidates.empty()) candidates.push_back(find_algorithm("reference"));
  return candidates;
}

// Speed does not depend on the values, so any will do.
template <class T>
std::vector<T> random_values(int64_t count, std::mt19937_64& generator) {
  std::uniform_real_distribution<T> uniform(T(-1), T(1));
  std::vector<T> values(static_cast<size_t>(count));
  for (T& value : values) value = uniform(generator);
  return values;
}

template <class T>
Measured fastest(const Problem& p, int threads,
                 const std::vector<const AlgorithmEntry*>& candidates) {
  std::mt19937_64 generator(0);
  const auto input = random_values<T>(p.batch * p.in_channels * p.length, generator);
  const auto weight =
      random_values<T>(p.out_channels * p.in_channels_per_group() * p.kernel_size, generator);
  const auto bias = random_values<T>(p.out_channels, generator);
  std::vector<T> output(static_cast<size_t>(p.batch * p.out_channels * p.out_length()));
  const auto x =
      TensorRef<const T>::contiguous(input.data(), p.batch, p.in_channels, p.length, p.layout);
  const auto y =
      TensorRef<T>::contiguous(output.data(), p.batch, p.out_channels, p.out_length(), p.layout);

  Measured best;
  double best_seconds = std::numeric_limits<double>::infinity();
  for (const AlgorithmEntry* entry : candidates) {
    const auto executor = entry->create(p);
    executor->set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
    // The threads a Plan on this algorithm would run it on.
    const int used = core::threads_for_work(entry->estimated_seconds(p), threads);
    const auto timed = time_candidate(
        [&] {
          const auto start = Clock::now();
          executor->forward(x, y, used);
          return seconds_since(start);
        },
        best_seconds);
    if (!timed) continue;
    const double seconds = *timed;
    const double weighed =
        entry->exactness == Exactness::exact ? seconds : kInexactFactor * seconds + kInexactSeconds;
    if (weighed < best_seconds) {
      best_seconds = weighed;
      best = {std::string(entry->name), seconds * 1e3};
    }
  }
  return best;
}

}  // namespace

std::optional<double> time_candidate(const std::function<double()>& run_once, double best_seconds) {
  const double hopeless = kHopelessRatio * best_seconds;
  // The first call pays one-time costs, such as the first touch of fresh
  // scratch memory (~10 us a page in these VMs: an FFT plan's first call
  // of a 0.7 ms layer took 5.9 ms, and the candidate was dropped although
  // it ran 1.7x faster than the one kept).
  if (run_once() > hopeless && run_once() > hopeless) return std::nullopt;
  std::vector<double> samples;
  const auto start = Clock::now();
  while (samples.size() < kMinRuns ||
         (samples.size() < kMaxRuns && seconds_since(start) < kBudgetSeconds)) {
    samples.push_back(run_once());
  }
  return median(std::move(samples));
}

namespace {

// One line of a cache file: "problem isa threads algorithm median_ms".
std::pair<Key, Measured> parse_entry(const std::string& line, const std::string& path, int number) {
  const std::string where = str_cat("tune cache '", path, "' line ", number, ": ");
  std::istringstream fields(line);
  std::string problem, isa, threads, algorithm, median_ms, extra;
  if (!(fields >> problem >> isa >> threads >> algorithm >> median_ms) || (fields >> extra)) {
    throw Error(
        str_cat(where, "expected 'problem isa threads algorithm median_ms', got '", line, "'"));
  }
  Key key;
  try {
    const Problem parsed = Problem::parse(problem);
    parsed.validate();
    key.problem = parsed.to_string();
  } catch (const Error& error) {
    throw Error(str_cat(where, error.what()));
  }
  key.isa = isa;
  const char* threads_end = threads.data() + threads.size();
  const auto [threads_stop, threads_error] =
      std::from_chars(threads.data(), threads_end, key.threads);
  if (threads_error != std::errc() || threads_stop != threads_end || key.threads <= 0) {
    throw Error(str_cat(where, "threads must be a positive integer, got '", threads, "'"));
  }
  Measured measured{algorithm, 0.0};
  const char* median_end = median_ms.data() + median_ms.size();
  const auto [median_stop, median_error] =
      std::from_chars(median_ms.data(), median_end, measured.median_ms);
  if (median_error != std::errc() || median_stop != median_end ||
      !std::isfinite(measured.median_ms) || measured.median_ms < 0.0) {
    throw Error(str_cat(where, "median_ms must be a non-negative number, got '", median_ms, "'"));
  }
  return {key, measured};
}

// The entries of a cache file; a file that does not exist has none.
Entries read_cache_file(const std::string& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    throw Error(str_cat("tune cache '", path, "' is a folder, not a file"));
  }
  if (!fs::exists(path, error)) return {};
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(str_cat("cannot read tune cache '", path, "'"));
  Entries entries;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    auto [key, measured] = parse_entry(line, path, number);
    entries[std::move(key)] = std::move(measured);
  }
  if (file.bad()) throw Error(str_cat("cannot read tune cache '", path, "'"));
  return entries;
}

// Fails before any timing when the file could never be written.
void check_folder(const std::string& path) {
  const fs::path folder = fs::path(path).parent_path();
  std::error_code error;
  if (!folder.empty() && !fs::is_directory(folder, error)) {
    throw Error(str_cat("cannot write tune cache '", path, "': folder '", folder.string(),
                        "' does not exist"));
  }
}

// Written next to the destination and renamed into place: readers see the
// old file or the new one, never part of one. Entries another process added
// since this one read the file are kept, except for `changed`, the one
// entry this write adds, replaces or drops.
void write_cache_file(const std::string& path, Entries& entries, const Key& changed) {
  for (auto& [key, measured] : read_cache_file(path)) {
    if (key != changed) entries.try_emplace(key, measured);
  }
  const std::string temporary = str_cat(path, ".conv1d-", ::getpid(), ".partial");
  const auto fail = [&](std::string_view why) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    return Error(str_cat("cannot write tune cache '", path, "'", why));
  };
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file << kFileHeader << '\n';
    for (const auto& [key, measured] : entries) {
      file << key.problem << ' ' << key.isa << ' ' << key.threads << ' ' << measured.algorithm
           << ' ' << measured.median_ms << '\n';
    }
    file.close();
    if (!file) throw fail("");
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) throw fail(str_cat(": ", error.message()));
}

}  // namespace

TunedChoice tuned_algorithm(const Problem& problem, const std::string& isa, int threads,
                            const std::string& cache_path) {
  Cache& state = cache();
  std::lock_guard lock(state.mutex);
  const Key key{problem.to_string(), isa, threads};
  Entries* file = nullptr;
  if (!cache_path.empty()) {
    auto loaded = state.files.find(cache_path);
    if (loaded == state.files.end()) {
      check_folder(cache_path);
      loaded = state.files.emplace(cache_path, read_cache_file(cache_path)).first;
    }
    file = &loaded->second;
  }
  // An entry naming an algorithm that no longer exists or no longer
  // supports the problem is stale: it is tuned again and replaced.
  const auto usable = [&](const Entries& entries) -> const AlgorithmEntry* {
    const auto found = entries.find(key);
    if (found == entries.end()) return nullptr;
    const AlgorithmEntry* entry = find_algorithm(found->second.algorithm);
    return entry != nullptr && !entry->why_not(problem) ? entry : nullptr;
  };
  // The file the user names comes first: it may hold choices made elsewhere.
  if (file != nullptr) {
    if (const AlgorithmEntry* entry = usable(*file)) return {entry, kCached};
  }
  if (const AlgorithmEntry* entry = usable(state.memory)) {
    if (file != nullptr) {
      (*file)[key] = state.memory.at(key);
      write_cache_file(cache_path, *file, key);
    }
    return {entry, kCached};
  }
  const std::vector<const AlgorithmEntry*> candidates = candidates_for(problem);
  if (candidates.size() == 1) {
    // Not remembered, so that a new algorithm gets timed once it exists; a
    // stale entry is dropped rather than skipped on every plan.
    if (file != nullptr && file->erase(key) > 0) write_cache_file(cache_path, *file, key);
    return {candidates.front(), kOnlyCandidate};
  }
  const Measured best = problem.dtype == DType::f32 ? fastest<float>(problem, threads, candidates)
                                                    : fastest<double>(problem, threads, candidates);
  state.memory[key] = best;
  if (file != nullptr) {
    (*file)[key] = best;
    write_cache_file(cache_path, *file, key);
  }
  return {find_algorithm(best.algorithm), kTuned};
}

void clear_tune_cache() {
  Cache& state = cache();
  std::lock_guard lock(state.mutex);
  state.memory.clear();
  state.files.clear();
}

}  // namespace conv1d::detail
