#include "bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <vector>

#include "common.hpp"
#include "suite.hpp"

namespace conv1d::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::string name;
  Problem problem;
  std::string algorithm;
  std::string isa;
  int threads = 0;
  int reps = 0;
  double ms = 0.0;  // median
  double gflops = 0.0;
};

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const size_t middle = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[middle] : 0.5 * (samples[middle - 1] + samples[middle]);
}

template <class T>
std::vector<T> random_values(int64_t count, std::mt19937_64& generator) {
  std::uniform_real_distribution<T> uniform(T(-1), T(1));
  std::vector<T> values(static_cast<size_t>(count));
  for (T& value : values) value = uniform(generator);
  return values;
}

// Times plan.forward: one warm-up run, then repetitions until the budget is
// spent (at least three). A layer whose warm-up alone exceeds the budget is
// not repeated: its warm-up time is the measurement, which keeps the whole
// suite fast even when only the slow reference algorithm runs.
template <class T>
std::vector<double> time_forward(Plan& plan, double budget_seconds) {
  const Problem& p = plan.problem();
  std::mt19937_64 generator(0);
  const auto input = random_values<T>(p.batch * p.in_channels * p.length, generator);
  const auto weight =
      random_values<T>(p.out_channels * p.in_channels_per_group() * p.kernel_size, generator);
  const auto bias = random_values<T>(p.out_channels, generator);
  std::vector<T> output(static_cast<size_t>(p.batch * p.out_channels * p.out_length()));
  plan.set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
  const auto x =
      TensorRef<const T>::contiguous(input.data(), p.batch, p.in_channels, p.length, p.layout);
  const auto y =
      TensorRef<T>::contiguous(output.data(), p.batch, p.out_channels, p.out_length(), p.layout);
  const auto run_once = [&] {
    const auto start = Clock::now();
    plan.forward(x, y);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  const double warm_up = run_once();
  if (warm_up >= budget_seconds) return {warm_up};
  constexpr size_t kMinReps = 3;
  constexpr size_t kMaxReps = 10000;
  std::vector<double> samples;
  const auto start = Clock::now();
  while (samples.size() < kMinReps ||
         (samples.size() < kMaxReps &&
          std::chrono::duration<double>(Clock::now() - start).count() < budget_seconds)) {
    samples.push_back(run_once());
  }
  return samples;
}

void write_json(const std::string& path, const std::vector<Result>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Result& result : results) {
    rows.push_back({{"name", result.name},
                    {"problem", result.problem.to_string()},
                    {"algorithm", result.algorithm},
                    {"isa", result.isa},
                    {"threads", result.threads},
                    {"reps", result.reps},
                    {"ms", result.ms},
                    {"gflops", result.gflops}});
  }
  // Written next to the destination, then renamed: never a partial file.
  const std::string temporary = fmt::format("{}.conv1d-{}.partial", path, ::getpid());
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file << rows.dump(2) << '\n';
    file.close();
    if (!file) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error(fmt::format("cannot write --json '{}'", path));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(fmt::format("cannot write --json '{}': {}", path, error.message()));
  }
}

}  // namespace

int run_bench(const BenchOptions& options) {
  if (!options.isa.empty()) set_max_isa(options.isa);
  PlanOptions plan_options;
  plan_options.algorithm = options.algorithm;
  plan_options.threads = parse_threads(options.threads);
  const DType dtype = parse_dtype(options.dtype);
  const int64_t budget_ms = parse_int(options.budget_ms, "--budget-ms");
  if (budget_ms < 0)
    throw Error(fmt::format("--budget-ms must be non-negative, got {}", budget_ms));
  if (!options.json.empty()) check_output_path(options.json, "--json");

  const std::vector<SuiteLayer> suite =
      options.suite.empty() ? builtin_suite() : read_suite(options.suite);
  // Every plan is made before anything runs, so a bad --algorithm fails
  // fast. A layer the named algorithm does not support is listed, not run.
  std::vector<Problem> problems;
  std::vector<std::optional<Plan>> plans;
  std::vector<std::string> skipped;
  for (const SuiteLayer& layer : suite) {
    const Problem& problem =
        problems.emplace_back(Problem::make(layer.params, layer.batch, layer.length, dtype));
    std::string why_not;
    for (const AlgorithmStatus& status : algorithm_statuses(problem)) {
      if (status.name == options.algorithm && !status.supported) why_not = status.reason;
    }
    skipped.push_back(why_not);
    plans.emplace_back();
    if (why_not.empty()) plans.back().emplace(problem, plan_options);
  }

  size_t name_width = 4;
  size_t problem_width = 7;
  size_t algorithm_width = 9;
  for (size_t i = 0; i < suite.size(); ++i) {
    name_width = std::max(name_width, suite[i].name.size());
    problem_width = std::max(problem_width, problems[i].to_string().size());
    if (plans[i]) algorithm_width = std::max(algorithm_width, plans[i]->algorithm().size());
  }
  const auto row = [&](std::string_view name, std::string_view problem, std::string_view algorithm,
                       std::string_view isa, std::string_view threads, std::string_view reps,
                       std::string_view ms, std::string_view gflops) {
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<6}  {:>7}  {:>5}  {:>10}  {:>9}\n", name, name_width,
               problem, problem_width, algorithm, algorithm_width, isa, threads, reps, ms, gflops);
    std::fflush(stdout);
  };
  row("name", "problem", "algorithm", "isa", "threads", "reps", "median ms", "GFLOP/s");

  std::vector<Result> results;
  for (size_t i = 0; i < suite.size(); ++i) {
    if (!plans[i]) {
      fmt::print("{:<{}}  {:<{}}  {} does not support this layer: {}\n", suite[i].name, name_width,
                 problems[i].to_string(), problem_width, options.algorithm, skipped[i]);
      continue;
    }
    Plan& plan = *plans[i];
    std::vector<double> samples;
    if (dtype == DType::f32) {
      samples = time_forward<float>(plan, static_cast<double>(budget_ms) * 1e-3);
    } else {
      samples = time_forward<double>(plan, static_cast<double>(budget_ms) * 1e-3);
    }
    Result result;
    result.name = suite[i].name;
    result.problem = plan.problem();
    result.algorithm = std::string(plan.algorithm());
    result.isa = std::string(plan.isa());
    result.threads = plan.threads();
    result.reps = static_cast<int>(samples.size());
    const double seconds = median(samples);
    result.ms = seconds * 1e3;
    result.gflops = seconds > 0.0 ? plan.problem().flops() / seconds * 1e-9 : 0.0;
    row(result.name, result.problem.to_string(), result.algorithm, result.isa,
        fmt::format("{}", result.threads), fmt::format("{}", result.reps),
        fmt::format("{:.3f}", result.ms), fmt::format("{:.2f}", result.gflops));
    results.push_back(std::move(result));
  }
  if (!options.json.empty()) write_json(options.json, results);
  return 0;
}

}  // namespace conv1d::cli
