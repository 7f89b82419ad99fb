// Plan::backward_data and backward_weight on the fast kernels (the stride's
// phases as forward convolutions, the weight gradient's GEMM) x every SIMD
// target this CPU runs x a generated sweep of problems, against the
// reference. Small-integer data make every sum exact, so they must match
// bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <conv1d/conv1d.hpp>
#include <latch>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conv_testing.hpp"

namespace conv1d {
namespace {

using testing::Activation;
using testing::count_mismatches;
using testing::Workload;

// Wider channel counts than the algorithm sweep's (several blocks of the
// weight gradient's vectors), strides up to 7, padding wider than the
// kernel's span, rows of a few samples.
int64_t draw_length(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  return pick(0, 2) == 0 ? pick(1, 12) : pick(13, 400);
}

Problem draw_problem(std::mt19937_64& rng) {
  testing::DrawRanges ranges;
  ranges.depthwise_groups = 24;
  ranges.grouped_in = 20;
  ranges.wide_odds = 3;
  ranges.wide_in = {14, 66};
  ranges.wide_out = {5, 40};
  ranges.long_kernel_odds = 7;
  ranges.long_kernel = 40;
  ranges.stride_odds = 1;
  ranges.max_stride = 7;
  ranges.max_dilation = 6;
  ranges.wide_padding = true;
  ranges.length = &draw_length;
  return testing::draw_problem(rng, ranges);
}

const std::vector<Problem>& sweep() {
  static const std::vector<Problem> problems = [] {
    std::mt19937_64 rng(2027);
    std::vector<Problem> list;
    for (int i = 0; i < 250; ++i) list.push_back(draw_problem(rng));
    for (const char* text :
         {// Real-model shapes, shrunk in length.
          "mb1ic80oc64iw300kw3sw1dl1pl1pr1g1", "mb1ic64oc64iw301kw3sw2dl1pl1pr1g1",
          "mb1ic1oc64iw403kw10sw5dl1pl0pr0g1", "mb1ic64oc64iw200kw31sw1dl1pl15pr15g64",
          "mb2ic12oc64iw301kw15sw2dl1pl7pr7g1", "mb1ic32oc64iw200kw2sw1dl8pl0pr0g1",
          "mb1ic32oc32iw129kw7sw1dl3pl9pr9g1_reflect_nlc",
          // Fewer taps than the stride: phases that read nothing, and
          // samples no output reads.
          "mb1ic5oc7iw50kw2sw4dl1pl0pr0g1", "mb2ic6oc3iw41kw3sw5dl1pl1pr1g1_reflect",
          "mb1ic4oc4iw30kw2sw3dl1pl2pr0g2_circular_f64",
          // Taps sharing phases (stride and dilation with a common
          // factor), padding wider than the kernel's span.
          "mb1ic9oc11iw60kw5sw4dl2pl20pr17g1", "mb1ic8oc8iw33kw4sw6dl3pl9pr9g1_replicate_nlc",
          "mb1ic3oc6iw7kw3sw2dl2pl9pr2g3_f64",
          // Blocks of channels split 3 + 2 vectors, several blocks, and
          // more than one chunk of the weight gradient's positions (1024)
          // per tap and with taps in vectors.
          "mb2ic80oc12iw400kw3sw1dl1pl1pr1g1", "mb1ic200oc20iw150kw3sw1dl2pl2pr2g1_nlc",
          "mb1ic70oc13iw300kw5sw2dl1pl2pr2g1_reflect", "mb1ic32oc8iw2200kw3sw1dl2pl2pr2g1",
          "mb1ic20oc12iw2500kw3sw1dl1pl1pr1g1_circular"}) {
      list.push_back(Problem::parse(text));
    }
    return list;
  }();
  return problems;
}

bool supports(const std::string& algorithm, const Problem& problem) {
  for (const auto& status : algorithm_statuses(problem)) {
    if (status.name == algorithm) return status.supported;
  }
  return false;
}

struct Gradients {
  int64_t input_mismatches = 0;
  bool weight_equal = false;
  bool bias_equal = false;
};

// The plan's three gradients against the reference's, on views `gap`
// elements apart.
template <class T>
Gradients compare(const Problem& problem, const std::string& algorithm, int threads, int64_t gap,
                  std::mt19937_64& rng) {
  const Workload<T> work(problem, rng, gap);
  Activation<T> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                            problem.layout, gap);
  testing::fill_small_integers(grad_output.view, rng);
  Plan plan(problem, {algorithm, threads});
  plan.set_weights(work.weight.data(), work.bias_data());

  Activation<T> grad_input(problem.batch, problem.in_channels, problem.length, problem.layout, gap);
  Activation<T> expected_input(problem.batch, problem.in_channels, problem.length, problem.layout);
  plan.backward_data(grad_output.cview(), grad_input.view);
  reference::backward_data<T>(problem, grad_output.cview(), work.weight.data(), expected_input.view,
                              1);

  std::vector<T> weight(work.weight.size(), T(-7)), bias(work.bias.size(), T(-7));
  std::vector<T> expected_weight(weight.size()), expected_bias(bias.size());
  plan.backward_weight(work.input.cview(), grad_output.cview(), weight.data(),
                       problem.has_bias ? bias.data() : nullptr);
  reference::backward_weight<T>(problem, work.input.cview(), grad_output.cview(),
                                expected_weight.data(),
                                problem.has_bias ? expected_bias.data() : nullptr, 1);
  return {count_mismatches<T>(grad_input.cview(), expected_input.cview()),
          weight == expected_weight, bias == expected_bias};
}

class BackwardSweep : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { set_max_isa(GetParam()); }
  void TearDown() override { set_max_isa("avx512"); }
};

// Each problem on one of the algorithms that support it (the weights come
// back from the executor, or from the copy kept for backward), on one or
// two threads, some on non-contiguous views.
TEST_P(BackwardSweep, MatchesReferenceExactly) {
  std::mt19937_64 rng(11);
  int index = 0;
  for (const Problem& problem : sweep()) {
    std::vector<std::string> algorithms = {"auto"};
    for (const char* name : {"direct", "depthwise", "fft"}) {
      if (supports(name, problem)) algorithms.emplace_back(name);
    }
    const std::string& algorithm = algorithms[static_cast<size_t>(index) % algorithms.size()];
    const int threads = 1 + index % 2;
    const int64_t gap = index % 5 == 0 ? 2 : 1;
    ++index;
    const Gradients result = problem.dtype == DType::f32
                                 ? compare<float>(problem, algorithm, threads, gap, rng)
                                 : compare<double>(problem, algorithm, threads, gap, rng);
    const std::string name = problem.to_string() + " via " + algorithm;
    EXPECT_EQ(result.input_mismatches, 0) << name;
    EXPECT_TRUE(result.weight_equal) << name;
    EXPECT_TRUE(result.bias_equal) << name;
  }
}

// Random (not integer) data: 1, 2 and 7 threads give the same bits.
TEST_P(BackwardSweep, ThreadCountDoesNotChangeBits) {
  for (const char* text :
       {"mb2ic96oc80iw700kw3sw2dl1pl1pr1g1", "mb1ic130oc40iw900kw5sw1dl2pl4pr4g1_reflect",
        "mb3ic24oc48iw500kw31sw1dl1pl15pr15g24", "mb1ic64oc64iw1000kw4sw3dl1pl3pr3g4_nlc"}) {
    const Problem problem = Problem::parse(text);
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> weight(static_cast<size_t>(
        problem.out_channels * problem.in_channels_per_group() * problem.kernel_size));
    std::vector<float> bias(static_cast<size_t>(problem.out_channels));
    for (float& v : weight) v = uniform(rng);
    for (float& v : bias) v = uniform(rng);
    Activation<float> input(problem.batch, problem.in_channels, problem.length, problem.layout);
    Activation<float> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                                  problem.layout);
    for (float& v : input.storage) v = uniform(rng);
    for (float& v : grad_output.storage) v = uniform(rng);
    std::vector<std::vector<float>> inputs, weights, biases;
    for (int threads : {1, 2, 7}) {
      Plan plan(problem, {"auto", threads});
      plan.set_weights(weight.data(), bias.data());
      Activation<float> grad_input(problem.batch, problem.in_channels, problem.length,
                                   problem.layout);
      plan.backward_data(grad_output.cview(), grad_input.view);
      std::vector<float> grad_weight(weight.size()), grad_bias(bias.size());
      plan.backward_weight(input.cview(), grad_output.cview(), grad_weight.data(),
                           grad_bias.data());
      inputs.push_back(grad_input.storage);
      weights.push_back(grad_weight);
      biases.push_back(grad_bias);
    }
    for (size_t i = 1; i < inputs.size(); ++i) {
      EXPECT_EQ(inputs[i], inputs[0]) << text;
      EXPECT_EQ(weights[i], weights[0]) << text;
      EXPECT_EQ(biases[i], biases[0]) << text;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, BackwardSweep, ::testing::ValuesIn(available_isas()),
                         [](const auto& info) { return info.param; });

// One plan's backward from 8 threads at once, started together so that
// their first calls meet where the phases are made: every thread gets the
// bits of a call made alone.
TEST(Backward, ConcurrentCallsAreSafeAndIdentical) {
  for (const char* text :
       {"mb2ic24oc40iw257kw3sw2dl1pl1pr1g1_reflect", "mb1ic32oc32iw300kw9sw1dl1pl4pr4g32_nlc"}) {
    const Problem problem = Problem::parse(text);
    std::mt19937_64 rng(4);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    Workload<float> work(problem, rng);
    for (float& v : work.input.storage) v = value(rng);
    Activation<float> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                                  problem.layout);
    for (float& v : grad_output.storage) v = value(rng);
    const auto run = [&](const Plan& plan, std::vector<float>& input, std::vector<float>& weight) {
      Activation<float> grad_input(problem.batch, problem.in_channels, problem.length,
                                   problem.layout);
      std::vector<float> bias(work.bias.size());
      weight.assign(work.weight.size(), 0.0f);
      plan.backward_data(grad_output.cview(), grad_input.view);
      plan.backward_weight(work.input.cview(), grad_output.cview(), weight.data(),
                           problem.has_bias ? bias.data() : nullptr);
      input = grad_input.storage;
    };
    std::vector<float> alone_input, alone_weight;
    {
      Plan alone(problem, {"auto", 1});
      alone.set_weights(work.weight.data(), work.bias_data());
      run(alone, alone_input, alone_weight);
    }
    Plan plan(problem, {"auto", 2});
    plan.set_weights(work.weight.data(), work.bias_data());
    std::vector<std::vector<float>> inputs(8), weights(8);
    std::vector<std::thread> threads;
    std::latch start(8);
    for (size_t t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int repeat = 0; repeat < 5; ++repeat) run(plan, inputs[t], weights[t]);
      });
    }
    for (auto& thread : threads) thread.join();
    for (size_t t = 0; t < 8; ++t) {
      EXPECT_EQ(inputs[t], alone_input) << text;
      EXPECT_EQ(weights[t], alone_weight) << text;
    }
  }
}

// An infinite or NaN weight: grad_input has NaN and Inf exactly where the
// reference (and PyTorch) has them, not where the phases' zero padding
// would multiply them.
TEST(Backward, NonFiniteWeightsMatchTheReference) {
  for (const char* text : {"mb1ic4oc6iw40kw3sw2dl1pl2pr2g1", "mb1ic3oc3iw30kw5sw1dl2pl4pr4g3"}) {
    const Problem problem = Problem::parse(text);
    std::mt19937_64 rng(3);
    Workload<float> work(problem, rng);
    work.weight[1] = std::numeric_limits<float>::infinity();
    work.weight[4] = std::numeric_limits<float>::quiet_NaN();
    Activation<float> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                                  problem.layout);
    testing::fill_small_integers(grad_output.view, rng);
    Plan plan(problem, {"auto", 1});
    plan.set_weights(work.weight.data(), work.bias_data());
    Activation<float> grad_input(problem.batch, problem.in_channels, problem.length,
                                 problem.layout);
    Activation<float> expected(problem.batch, problem.in_channels, problem.length, problem.layout);
    plan.backward_data(grad_output.cview(), grad_input.view);
    reference::backward_data<float>(problem, grad_output.cview(), work.weight.data(), expected.view,
                                    1);
    EXPECT_EQ(count_mismatches<float>(grad_input.cview(), expected.cview()), 0) << text;

    // Finite weights again: back on the fast path, still exact.
    testing::fill_small_integers(work.weight, rng);
    plan.set_weights(work.weight.data(), work.bias_data());
    plan.backward_data(grad_output.cview(), grad_input.view);
    reference::backward_data<float>(problem, grad_output.cview(), work.weight.data(), expected.view,
                                    1);
    EXPECT_EQ(count_mismatches<float>(grad_input.cview(), expected.cview()), 0) << text;
  }
}

// Infinite and NaN inputs and grad_output: the weight gradient is NaN or
// infinite exactly where the reference's (and PyTorch's) is, on the GEMM
// (40 input channels) and on the dot products (one or three a group),
// including an infinite last sample that no output reads but the last
// vector of a tap's row would (100 samples, K = 3, stride 2: 49 outputs).
TEST(Backward, NonFiniteDataMatchTheReferenceInTheWeightGradient) {
  for (const char* text :
       {"mb2ic40oc12iw150kw5sw1dl1pl2pr2g1", "mb2ic3oc6iw150kw33sw1dl1pl16pr16g3",
        "mb1ic6oc6iw300kw40sw2dl1pl20pr20g2_circular_nlc", "mb1ic1oc8iw301kw9sw3dl2pl0pr0g1",
        "mb1ic1oc8iw100kw3sw2dl1pl0pr0g1"}) {
    const Problem problem = Problem::parse(text);
    std::mt19937_64 rng(8);
    Workload<float> work(problem, rng);
    Activation<float> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                                  problem.layout);
    testing::fill_small_integers(grad_output.view, rng);
    const float inf = std::numeric_limits<float>::infinity();
    work.input.view.at(0, 0, 0) = inf;
    work.input.view.at(problem.batch - 1, problem.in_channels - 1, problem.length - 1) = -inf;
    work.input.view.at(0, problem.in_channels / 2, problem.length / 2) =
        std::numeric_limits<float>::quiet_NaN();
    grad_output.view.at(0, problem.out_channels - 1, problem.out_length() / 3) = inf;
    Plan plan(problem, {"auto", 2});
    std::vector<float> weight(work.weight.size()), bias(work.bias.size());
    std::vector<float> expected_weight(weight.size()), expected_bias(bias.size());
    plan.backward_weight(work.input.cview(), grad_output.cview(), weight.data(), bias.data());
    reference::backward_weight<float>(problem, work.input.cview(), grad_output.cview(),
                                      expected_weight.data(), expected_bias.data(), 1);
    const auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      int64_t differ = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] != b[i] && !(std::isnan(a[i]) && std::isnan(b[i]))) ++differ;
      }
      return differ;
    };
    EXPECT_EQ(same(weight, expected_weight), 0) << text;
    EXPECT_EQ(same(bias, expected_bias), 0) << text;
  }
}

}  // namespace
}  // namespace conv1d
