#include "bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "common.hpp"
#include "compare.hpp"
#include "probe.hpp"
#include "suite.hpp"

namespace conv1d::cli {

namespace {

using Clock = std::chrono::steady_clock;

// With several threads, each library's turn starts after the previous
// one's OpenMP threads have stopped spinning (libgomp spins ~300,000
// times, milliseconds here, before it sleeps): a spinning thread of
// another process takes a core, and a parallel region then waits a
// scheduler time slice for its preempted thread. Without the pause, layers
// of ~50 us read 1.5-7 ms per run at two threads on this two-core VM.
constexpr auto kSettlePause = std::chrono::milliseconds(20);
void settle(int threads) {
  if (threads > 1) std::this_thread::sleep_for(kSettlePause);
}

struct Result {
  std::string name;
  std::string problem;  // descriptor; "<depthwise>+<pointwise>" for a separable layer
  std::string algorithm;
  std::string isa;
  int threads = 0;
  int reps = 0;
  double ms = 0.0;  // median
  double gflops = 0.0;
  double percent_of_peak = 0.0;
  // Time the roofline allows (FLOPs at peak, or bytes at DRAM bandwidth,
  // whichever is slower) as a percentage of the measured time.
  double percent_of_roofline = 0.0;
  bool memory_bound = false;
  // Other libraries on the same layer (--compare), by label; NaN if not run.
  struct Other {
    std::string label;
    double ms = 0.0;
    double kernel_ms = 0.0;  // its kernels alone (ComparisonWorker::times_kernels)
    bool times_kernels = false;
  };
  std::vector<Other> others;
  std::string selection;  // Plan::selection()
  // With --tune: the cost model's choice, and the time the first plan took
  // (timing the algorithms, or reading the choice from the cache).
  std::string heuristic_algorithm;
  double tune_ms = 0.0;
  // What a new shape costs before its first forward (medians over fresh
  // plans): making the Plan (checking, choosing, preparing) and set_weights
  // (copying and repacking the weights).
  double plan_ms = 0.0;
  double weights_ms = 0.0;
  // A plan for another input length of the same layer, given the weights
  // of the first by Plan::share_weights (set_weights when it declines), as
  // Conv1d does for each new length.
  double new_length_ms = 0.0;
  double flops = 0.0;  // of the layer, and the bytes it must move at least
  double bytes = 0.0;
};

// %peak and %roofline of a timed result against a probe's peak.
void rate_against(Result& result, const MachinePeak& peak) {
  const double seconds = result.ms * 1e-3;
  result.percent_of_peak = peak.gflops > 0 ? 100.0 * result.gflops / peak.gflops : 0.0;
  const double compute_seconds = result.flops * 1e-9 / peak.gflops;
  const double memory_seconds = result.bytes * 1e-9 / peak.gigabytes_per_s;
  result.memory_bound = memory_seconds > compute_seconds;
  result.percent_of_roofline =
      seconds > 0.0 ? 100.0 * std::max(compute_seconds, memory_seconds) / seconds : 0.0;
}

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

// Owns random data for one plan (or separable layer) and runs its forward
// pass.
class Runner {
 public:
  // backward: the passes are Plan::backward_data and backward_weight.
  Runner(Plan& plan, bool backward) {
    if (plan.problem().dtype == DType::f32) {
      prepare<float>(plan, backward);
    } else {
      prepare<double>(plan, backward);
    }
  }
  Runner(const SeparableConv1d& layer, const Problem& depthwise) {
    if (depthwise.dtype == DType::f32) {
      prepare<float>(layer, depthwise);
    } else {
      prepare<double>(layer, depthwise);
    }
  }
  // Seconds for one pass.
  double run_once() const {
    const auto start = Clock::now();
    run_();
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  // Median seconds of `repetitions` passes.
  double median_of(int repetitions) const {
    std::vector<double> samples;
    for (int r = 0; r < repetitions; ++r) samples.push_back(run_once());
    return median(samples);
  }

 private:
  template <class T>
  void prepare(Plan& plan, bool backward) {
    const Problem& p = plan.problem();
    std::mt19937_64 generator(0);
    auto input = std::make_shared<std::vector<T>>(
        random_values<T>(p.batch * p.in_channels * p.length, generator));
    const int64_t weights = p.out_channels * p.in_channels_per_group() * p.kernel_size;
    const auto weight = random_values<T>(weights, generator);
    const auto bias = random_values<T>(p.out_channels, generator);
    auto output = std::make_shared<std::vector<T>>(
        random_values<T>(p.batch * p.out_channels * p.out_length(), generator));
    plan.set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
    const auto x =
        TensorRef<const T>::contiguous(input->data(), p.batch, p.in_channels, p.length, p.layout);
    const auto y =
        TensorRef<T>::contiguous(output->data(), p.batch, p.out_channels, p.out_length(), p.layout);
    const Plan* runs = &plan;
    if (!backward) {
      run_ = [runs, x, y, input, output] { runs->forward(x, y); };
      return;
    }
    // y holds grad_output.
    auto grad_input = std::make_shared<std::vector<T>>(input->size());
    auto grad_weight = std::make_shared<std::vector<T>>(static_cast<size_t>(weights));
    auto grad_bias = std::make_shared<std::vector<T>>(static_cast<size_t>(p.out_channels));
    const auto gx =
        TensorRef<T>::contiguous(grad_input->data(), p.batch, p.in_channels, p.length, p.layout);
    T* const gb = p.has_bias ? grad_bias->data() : nullptr;
    run_ = [runs, x, y, gx, gb, input, output, grad_input, grad_weight, grad_bias] {
      runs->backward_data<T>(y, gx);
      runs->backward_weight<T>(x, y, grad_weight->data(), gb);
    };
  }
  // The layer keeps its own (random) weights.
  template <class T>
  void prepare(const SeparableConv1d& layer, const Problem& p) {
    std::mt19937_64 generator(0);
    const int64_t out_channels = layer.params().out_channels;
    auto input = std::make_shared<std::vector<T>>(
        random_values<T>(p.batch * p.in_channels * p.length, generator));
    auto output = std::make_shared<std::vector<T>>(
        static_cast<size_t>(p.batch * out_channels * p.out_length()));
    const auto x =
        TensorRef<const T>::contiguous(input->data(), p.batch, p.in_channels, p.length, p.layout);
    const auto y =
        TensorRef<T>::contiguous(output->data(), p.batch, out_channels, p.out_length(), p.layout);
    const SeparableConv1d* runs = &layer;
    run_ = [runs, x, y, input, output] { runs->forward(x, y); };
  }

  std::function<void()> run_;
};

// Fresh plans per layer whose making is timed.
constexpr int kFreshPlans = 7;

struct PlanMakingTimes {
  double plan_ms = 0.0;
  double weights_ms = 0.0;
  double new_length_ms = 0.0;
};

template <class T>
PlanMakingTimes time_plan_making(const Problem& p, const PlanOptions& options) {
  std::mt19937_64 generator(0);
  const auto weight =
      random_values<T>(p.out_channels * p.in_channels_per_group() * p.kernel_size, generator);
  const auto bias = random_values<T>(p.out_channels, generator);
  std::vector<double> plan_seconds, weights_seconds, new_length_seconds;
  std::optional<Plan> first;
  for (int i = 0; i < kFreshPlans; ++i) {
    const auto start = Clock::now();
    Plan plan(p, options);
    const auto made = Clock::now();
    plan.set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
    weights_seconds.push_back(std::chrono::duration<double>(Clock::now() - made).count());
    plan_seconds.push_back(std::chrono::duration<double>(made - start).count());
    if (!first) first.emplace(std::move(plan));
  }
  for (int i = 1; i <= kFreshPlans; ++i) {
    Problem longer = p;
    longer.length += i;
    const auto start = Clock::now();
    Plan plan(longer, options);
    if (!plan.share_weights(*first)) {
      plan.set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
    }
    new_length_seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return {median(plan_seconds) * 1e3, median(weights_seconds) * 1e3,
          median(new_length_seconds) * 1e3};
}

// One warm-up run, then repetitions until the budget is spent (at least
// three). A layer whose warm-up alone exceeds the budget is not repeated: its
// warm-up time is the measurement, which keeps the whole suite fast even when
// only the slow reference algorithm runs.
std::vector<double> time_within_budget(const Runner& runner, double budget_seconds) {
  const double warm_up = runner.run_once();
  if (warm_up >= budget_seconds) return {warm_up};
  constexpr size_t kMinReps = 3;
  constexpr size_t kMaxReps = 10000;
  std::vector<double> samples;
  const auto start = Clock::now();
  while (samples.size() < kMinReps ||
         (samples.size() < kMaxReps &&
          std::chrono::duration<double>(Clock::now() - start).count() < budget_seconds)) {
    samples.push_back(runner.run_once());
  }
  return samples;
}

std::string milliseconds_or_dash(double ms) {
  return std::isnan(ms) ? std::string("-") : fmt::format("{:.3f}", ms);
}

// Bytes a layer must at least move: input, output and weights once each;
// backward reads the input, grad_output and weights and writes grad_input
// and grad_weight.
double minimum_bytes(const Problem& p, bool backward = false) {
  const double input = static_cast<double>(p.batch) * static_cast<double>(p.in_channels * p.length);
  const double output =
      static_cast<double>(p.batch) * static_cast<double>(p.out_channels * p.out_length());
  const double weights =
      static_cast<double>(p.out_channels * p.in_channels_per_group() * p.kernel_size);
  const double elements = backward ? 2 * input + output + 2 * weights : input + output + weights;
  return elements * static_cast<double>(dtype_size(p.dtype));
}

void write_json(const std::string& path, const std::vector<Result>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Result& result : results) {
    rows.push_back({{"name", result.name},
                    {"problem", result.problem},
                    {"algorithm", result.algorithm},
                    {"isa", result.isa},
                    {"threads", result.threads},
                    {"reps", result.reps},
                    {"ms", result.ms},
                    {"gflops", result.gflops},
                    {"percent_of_peak", result.percent_of_peak},
                    {"percent_of_roofline", result.percent_of_roofline},
                    {"memory_bound", result.memory_bound},
                    {"selection", result.selection},
                    {"plan_ms", result.plan_ms},
                    {"weights_ms", result.weights_ms},
                    {"new_length_ms", result.new_length_ms}});
    if (!result.heuristic_algorithm.empty()) {
      rows.back()["heuristic_algorithm"] = result.heuristic_algorithm;
      rows.back()["tune_ms"] = result.tune_ms;
    }
    const auto number_or_null = [](double value) {
      return std::isnan(value) ? nlohmann::json() : nlohmann::json(value);
    };
    for (const auto& other : result.others) {
      rows.back()[other.label + "_ms"] = number_or_null(other.ms);
      if (other.times_kernels) {
        rows.back()[other.label + "_kernel_ms"] = number_or_null(other.kernel_ms);
      }
    }
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
  plan_options.tune = options.tune;
  plan_options.tune_cache = options.tune_cache;
  PlanOptions heuristic_options = plan_options;
  heuristic_options.tune = false;
  const DType dtype = parse_dtype(options.dtype);
  const int64_t budget_ms = parse_int(options.budget_ms, "--budget-ms");
  if (budget_ms < 0)
    throw Error(fmt::format("--budget-ms must be non-negative, got {}", budget_ms));
  if (!options.json.empty()) check_output_path(options.json, "--json");

  const std::vector<SuiteLayer> suite =
      options.suite.empty() ? builtin_suite() : read_suite(options.suite);
  // Every plan is made before anything runs, so a bad --algorithm fails
  // fast. A layer the named algorithm does not support is listed, not run.
  // Separable layers run fused or in two passes ("--algorithm fused" /
  // "two-pass", which plain layers skip); another named algorithm runs both
  // of their parts.
  const bool separable_only = options.algorithm == "fused" || options.algorithm == "two-pass";
  std::vector<Problem> problems;
  std::vector<std::optional<Plan>> plans;
  std::vector<std::unique_ptr<SeparableConv1d>> separables;
  std::vector<std::string> skipped;
  std::vector<double> first_plan_ms;
  for (const SuiteLayer& layer : suite) {
    const Problem& problem = problems.emplace_back(layer.problem(dtype));
    std::string why_not;
    if (separable_only && !layer.separable()) why_not = "it is not a separable layer";
    if (options.backward && layer.separable()) {
      why_not =
          "--backward times single convolutions (a separable layer's two parts as rows of "
          "their own)";
    }
    for (const Problem& part : layer.separable()
                                   ? std::vector<Problem>{problem, layer.pointwise_problem(dtype)}
                                   : std::vector<Problem>{problem}) {
      for (const AlgorithmStatus& status : algorithm_statuses(part)) {
        if (status.name == options.algorithm && !status.supported) why_not = status.reason;
      }
    }
    skipped.push_back(why_not);
    plans.emplace_back();
    separables.emplace_back();
    first_plan_ms.push_back(0.0);
    if (!why_not.empty()) continue;
    const auto start = Clock::now();
    if (layer.separable()) {
      PlanOptions part_options = plan_options;
      if (separable_only) part_options.algorithm = "auto";
      separables.back() = std::make_unique<SeparableConv1d>(
          layer.separable_params(), dtype, 0, part_options,
          SeparableOptions{separable_only ? options.algorithm : "auto"});
    } else {
      plans.back().emplace(problem, plan_options);
    }
    first_plan_ms.back() = std::chrono::duration<double>(Clock::now() - start).count() * 1e3;
  }

  const int rounds = static_cast<int>(parse_int(options.rounds, "--rounds"));
  if (rounds <= 0) throw Error(fmt::format("--rounds must be positive, got {}", rounds));
  std::vector<std::unique_ptr<ComparisonWorker>> workers;
  if (options.compare) workers = start_comparison_workers(options.backward);

  // The count Plans resolve "0 = all available" to.
  const int threads = Plan(Problem{}, {"reference", plan_options.threads}).threads();
  const MachinePeak peak = measure_peak(std::max(threads, 1));
  fmt::print("machine peak on {} thread(s): {:.1f} GFLOP/s float32 ({} FMA), {:.1f} GB/s copy\n",
             threads, peak.gflops, peak.isa, peak.gigabytes_per_s);
  if (options.backward) {
    fmt::print(
        "backward: grad_input, grad_weight and grad_bias per run; GFLOP/s counts both gradients' "
        "multiply-adds (2x forward's)\n");
  }

  size_t name_width = 4;
  size_t problem_width = 7;
  size_t algorithm_width = 9;
  for (size_t i = 0; i < suite.size(); ++i) {
    name_width = std::max(name_width, suite[i].name.size());
    problem_width = std::max(problem_width, suite[i].descriptor(dtype).size());
    if (plans[i]) algorithm_width = std::max(algorithm_width, plans[i]->algorithm().size());
  }
  // With --tune, the cost model's choice ("same" when the tuner agrees) and
  // the tuning time follow the algorithm.
  const auto algorithm_columns = [&](std::string_view algorithm, std::string_view heuristic,
                                     std::string_view tune_ms) {
    std::string columns = fmt::format("{:<{}}", algorithm, algorithm_width);
    if (options.tune) {
      columns += fmt::format("  {:<{}}  {:>8}", heuristic, algorithm_width, tune_ms);
    }
    return columns;
  };
  std::string header = fmt::format(
      "{:<{}}  {:<{}}  {}  {:<6}  {:>7}  {:>5}  {:>10}  {:>9}  {:>6}  {:>9}  {:>7}  {:>10}  {:>13}",
      "name", name_width, "problem", problem_width,
      algorithm_columns("algorithm", "heuristic", "tune ms"), "isa", "threads", "reps", "median ms",
      "GFLOP/s", "%peak", "%roofline", "plan ms", "weights ms", "new length ms");
  for (const auto& worker : workers) {
    header += fmt::format("  {:>10}  {:>8}", worker->label() + " ms", "x " + worker->label());
    if (worker->times_kernels()) header += fmt::format("  {:>9}  {:>8}", "kernel ms", "x kernel");
  }
  fmt::print("{}\n", header);

  std::vector<Result> results;
  for (size_t i = 0; i < suite.size(); ++i) {
    if (!plans[i] && !separables[i]) {
      fmt::print("{:<{}}  {:<{}}  {} does not support this layer: {}\n", suite[i].name, name_width,
                 suite[i].descriptor(dtype), problem_width, options.algorithm, skipped[i]);
      continue;
    }
    const SeparableConv1d* separable = separables[i].get();
    const Problem& problem = problems[i];
    const std::optional<Runner> plan_runner =
        plans[i] ? std::optional<Runner>(std::in_place, *plans[i], options.backward) : std::nullopt;
    const std::optional<Runner> separable_runner =
        separable ? std::optional<Runner>(std::in_place, *separable, problem) : std::nullopt;
    const Runner& runner = plans[i] ? *plan_runner : *separable_runner;
    const double budget_seconds = static_cast<double>(budget_ms) * 1e-3;
    Result result;
    result.name = suite[i].name;
    result.problem = suite[i].descriptor(dtype);
    result.isa = plans[i] ? std::string(plans[i]->isa()) : active_isa();
    result.threads = threads;
    if (plans[i]) {
      const Plan& plan = *plans[i];
      result.algorithm = std::string(plan.algorithm());
      result.selection = std::string(plan.selection());
      if (options.tune) {
        result.heuristic_algorithm = std::string(Plan(problem, heuristic_options).algorithm());
        result.tune_ms = first_plan_ms[i];
      }
      const PlanMakingTimes making = problem.dtype == DType::f32
                                         ? time_plan_making<float>(problem, plan_options)
                                         : time_plan_making<double>(problem, plan_options);
      result.plan_ms = making.plan_ms;
      result.weights_ms = making.weights_ms;
      result.new_length_ms = making.new_length_ms;
    } else {
      // A separable layer's parts are planned inside SeparableConv1d, which
      // also draws its weights: its making time is not comparable.
      result.algorithm = separable->algorithm_for(problem.batch, problem.length, problem.layout);
      result.selection = "separable";
      result.heuristic_algorithm = result.algorithm;
      result.tune_ms = first_plan_ms[i];
      result.plan_ms = std::nan("");
      result.weights_ms = std::nan("");
      result.new_length_ms = std::nan("");
    }
    double seconds = 0;
    if (workers.empty()) {
      const auto samples = time_within_budget(runner, budget_seconds);
      result.reps = static_cast<int>(samples.size());
      seconds = median(samples);
    } else {
      // Rounds of: conv1d, then each other library, the same number of runs
      // each; the median over rounds keeps one noisy moment from deciding.
      // The runs per round come from the quickest of three warm-up runs: the
      // first can wait milliseconds for an idle vCPU to wake (two threads
      // on a two-core VM), which left layers of ~50 us one or two runs a
      // round, each as slow as that wake-up.
      double warm_up = runner.run_once();
      if (warm_up < budget_seconds) {
        for (int run = 0; run < 2; ++run) warm_up = std::min(warm_up, runner.run_once());
      }
      const int repetitions = static_cast<int>(
          std::clamp(budget_seconds / rounds / std::max(warm_up, 1e-6), 1.0, 1000.0));
      std::vector<double> ours;
      std::vector<std::vector<double>> theirs(workers.size());
      std::vector<std::vector<double>> their_kernels(workers.size());
      std::vector<std::string> notes(workers.size());
      for (int round = 0; round < rounds; ++round) {
        settle(result.threads);
        ours.push_back(runner.median_of(repetitions));
        for (size_t w = 0; w < workers.size(); ++w) {
          settle(result.threads);
          const std::string request = result.problem + (options.backward ? "_backward" : "");
          if (auto timing = workers[w]->time(request, result.threads, repetitions, notes[w])) {
            theirs[w].push_back(timing->ms);
            if (!std::isnan(timing->kernel_ms)) their_kernels[w].push_back(timing->kernel_ms);
          }
        }
      }
      result.reps = repetitions * rounds;
      seconds = median(ours);
      const auto median_or_nan = [](const std::vector<double>& samples) {
        return samples.empty() ? std::nan("") : median(samples);
      };
      for (size_t w = 0; w < workers.size(); ++w) {
        result.others.push_back({workers[w]->label(), median_or_nan(theirs[w]),
                                 median_or_nan(their_kernels[w]), workers[w]->times_kernels()});
      }
    }
    const std::optional<Problem> pointwise =
        separable ? std::optional<Problem>(suite[i].pointwise_problem(dtype)) : std::nullopt;
    // Backward: the input and the weight gradients, each as many as forward.
    const double flops =
        (options.backward ? 2.0 : 1.0) * (problem.flops() + (pointwise ? pointwise->flops() : 0.0));
    // A separable layer need not move its intermediate tensor.
    const double bytes =
        minimum_bytes(problem, options.backward) +
        (pointwise ? minimum_bytes(*pointwise) -
                         2.0 * static_cast<double>(problem.batch * problem.out_channels *
                                                   problem.out_length() * dtype_size(dtype))
                   : 0.0);
    result.ms = seconds * 1e3;
    result.flops = flops;
    result.bytes = bytes;
    result.gflops = seconds > 0.0 ? flops / seconds * 1e-9 : 0.0;
    rate_against(result, peak);
    std::string line = fmt::format(
        "{:<{}}  {:<{}}  {}  {:<6}  {:>7}  {:>5}  {:>10.3f}  {:>9.2f}  {:>6.1f}  {:>8.1f}{}  "
        "{:>7}  {:>10}  {:>13}",
        result.name, name_width, result.problem, problem_width,
        algorithm_columns(result.algorithm,
                          result.heuristic_algorithm == result.algorithm
                              ? std::string("same")
                              : result.heuristic_algorithm,
                          fmt::format("{:.3f}", result.tune_ms)),
        result.isa, result.threads, result.reps, result.ms, result.gflops, result.percent_of_peak,
        result.percent_of_roofline, result.memory_bound ? "m" : " ",
        milliseconds_or_dash(result.plan_ms), milliseconds_or_dash(result.weights_ms),
        milliseconds_or_dash(result.new_length_ms));
    for (const auto& other : result.others) {
      line += std::isnan(other.ms)
                  ? fmt::format("  {:>10}  {:>8}", "-", "-")
                  : fmt::format("  {:>10.3f}  {:>7.2f}x", other.ms, other.ms / result.ms);
      if (!other.times_kernels) continue;
      line += std::isnan(other.kernel_ms) ? fmt::format("  {:>9}  {:>8}", "-", "-")
                                          : fmt::format("  {:>9.3f}  {:>7.2f}x", other.kernel_ms,
                                                        other.kernel_ms / result.ms);
    }
    fmt::print("{}\n", line);
    std::fflush(stdout);
    results.push_back(std::move(result));
  }
  const auto print_geometric_mean = [&](size_t w, bool kernels) {
    double log_sum = 0;
    int count = 0;
    for (const Result& result : results) {
      const Result::Other& other = result.others[w];
      const double ms = kernels ? other.kernel_ms : other.ms;
      if (!std::isnan(ms)) {
        log_sum += std::log(ms / result.ms);
        ++count;
      }
    }
    if (count > 0) {
      fmt::print("geometric mean speedup over {}{}: {:.2f}x on {} layers\n", workers[w]->label(),
                 kernels ? " kernels alone" : "", std::exp(log_sum / count), count);
    }
  };
  for (size_t w = 0; w < workers.size(); ++w) {
    print_geometric_mean(w, false);
    if (workers[w]->times_kernels()) print_geometric_mean(w, true);
  }
  // A neighbour that holds a core through the first probe makes it read low
  // and every %peak above high; a second probe after the layers tells.
  const MachinePeak end_peak = measure_peak(std::max(threads, 1));
  fmt::print("machine peak at the end: {:.1f} GFLOP/s float32, {:.1f} GB/s copy\n", end_peak.gflops,
             end_peak.gigabytes_per_s);
  if (end_peak.gflops > 1.05 * peak.gflops) {
    fmt::print(
        "the first probe read {:.0f}% less than the one at the end (a neighbour held a core): "
        "divide %peak above by {:.2f}; the JSON uses the higher probe\n",
        100.0 * (1.0 - peak.gflops / end_peak.gflops), end_peak.gflops / peak.gflops);
  }
  const MachinePeak best_peak{std::max(peak.gflops, end_peak.gflops),
                              std::max(peak.gigabytes_per_s, end_peak.gigabytes_per_s), peak.isa};
  for (Result& result : results) rate_against(result, best_peak);
  fmt::print(
      "%roofline: the faster of peak FLOP/s and DRAM bandwidth allows this share of the "
      "measured time; m = bandwidth bound\n"
      "plan ms: making a Plan for the layer (checking, choosing, preparing); weights ms: its "
      "set_weights (copying and repacking); new length ms: a Plan for the layer at another input "
      "length, given the first plan's weights by share_weights; medians over {} fresh plans\n",
      kFreshPlans);
  for (const auto& worker : workers) {
    if (worker->times_kernels()) {
      fmt::print(
          "kernel ms: {}'s convolution alone, without reordering the user's data to and from its "
          "preferred layout (x kernel: its time over ours)\n",
          worker->label());
    }
  }
  if (!options.json.empty()) write_json(options.json, results);
  return 0;
}

}  // namespace conv1d::cli
