// Every registered algorithm x every SIMD target this CPU runs x a generated
// sweep of problems, against the reference. Inputs are small integers, so
// every exact algorithm must match the reference bit for bit; the others
// (FFT) must stay within a stated error bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "conv_testing.hpp"
#include "plan/registry.hpp"

namespace conv1d {
namespace {

using testing::count_mismatches;
using testing::Workload;

using testing::draw_problem;

// Long kernels (K = 64..300, dilated up to 3) for the FFT algorithm, with
// lengths from shorter than one transform block to several blocks of the
// sizes it picks (256 to 4096 points). Few channels: the reference must
// stay quick in the sanitizer build.
Problem draw_long_problem(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (;;) {
    ConvParams p;
    switch (pick(0, 3)) {
      case 0:  // depthwise
        p.groups = pick(1, 20);
        p.in_channels = p.groups;
        p.out_channels = p.groups * pick(1, 2);
        break;
      case 1:  // grouped
        p.groups = pick(2, 4);
        p.in_channels = p.groups * pick(1, 4);
        p.out_channels = p.groups * pick(1, 8);
        break;
      default:
        p.in_channels = pick(1, 8);
        p.out_channels = pick(1, 24);
    }
    p.kernel_size = pick(64, 300);
    p.dilation = pick(0, 3) == 0 ? pick(2, 3) : 1;
    p.stride = pick(0, 4) == 0 ? pick(2, 3) : 1;
    p.bias = pick(0, 3) != 0;
    p.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    const int64_t span = (p.kernel_size - 1) * p.dilation + 1;
    switch (pick(0, 3)) {
      case 0:
        p.padding = p.stride == 1 ? Padding::same() : Padding::valid();
        break;
      case 1:
        p.padding = Padding::causal();
        break;
      default:
        p.padding = Padding::asymmetric(pick(0, span / 2), pick(0, span / 2));
    }
    int64_t length = 0;
    switch (pick(0, 2)) {
      case 0:  // at most a few outputs
        length = span + pick(-span / 2, 8);
        break;
      case 1:  // around a multiple of a block size
        length = (int64_t{256} << pick(0, 2)) * pick(1, 2) - span + pick(-2, 2);
        break;
      default:
        length = pick(span, 2000);
    }
    const DType dtype = pick(0, 4) == 0 ? DType::f64 : DType::f32;
    const Layout layout = pick(0, 1) == 0 ? Layout::ncl : Layout::nlc;
    try {
      return Problem::make(p, pick(1, 2), std::max<int64_t>(length, 1), dtype, layout);
    } catch (const Error&) {
      // Kernel wider than the padded input, reflect too wide: redraw.
    }
  }
}

// Extremes: kernels up to 700 taps, strides up to 400 (beyond the kernel
// and far beyond a vector), dilations up to 60, lengths from 1 to several
// thousand, padding up to the kernel's span, in the few-output problems
// where tile budgets and row phases meet their limits. Log-uniform sizes;
// bounded work, for the sanitizer build.
Problem draw_extreme_problem(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto log_pick = [&](int64_t lo, int64_t hi) {
    const double a = std::log(static_cast<double>(lo));
    const double b = std::log(static_cast<double>(hi) + 0.999);
    return std::min(
        hi, static_cast<int64_t>(std::exp(std::uniform_real_distribution<double>(a, b)(rng))));
  };
  for (;;) {
    ConvParams p;
    switch (pick(0, 2)) {
      case 0:  // depthwise, with a depth multiplier
        p.groups = log_pick(1, 64);
        p.in_channels = p.groups;
        p.out_channels = p.groups * pick(1, 3);
        break;
      case 1:  // grouped
        p.groups = pick(1, 8);
        p.in_channels = p.groups * log_pick(1, 16);
        p.out_channels = p.groups * log_pick(1, 16);
        break;
      default:
        p.in_channels = log_pick(1, 80);
        p.out_channels = log_pick(1, 80);
    }
    p.kernel_size = log_pick(1, 700);
    p.stride = log_pick(1, 400);
    p.dilation = pick(0, 2) == 0 ? log_pick(1, 60) : 1;
    p.bias = pick(0, 1) != 0;
    p.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    const int64_t span = (p.kernel_size - 1) * p.dilation + 1;
    p.padding = pick(0, 1) == 0 ? testing::draw_padding(rng, p.stride, 4)
                                : Padding::asymmetric(pick(0, span), pick(0, span));
    const int64_t length = pick(0, 1) == 0 ? span + pick(-span / 2, 50) : log_pick(1, 20000);
    const DType dtype = pick(0, 3) == 0 ? DType::f64 : DType::f32;
    const Layout layout = pick(0, 1) == 0 ? Layout::ncl : Layout::nlc;
    try {
      const Problem problem =
          Problem::make(p, pick(1, 2), std::max<int64_t>(length, 1), dtype, layout);
      if (problem.flops() <= 4e6 &&
          problem.batch * problem.in_channels * problem.length <= 400000) {
        return problem;
      }
    } catch (const Error&) {
      // Kernel wider than the padded input, reflect too wide: redraw.
    }
  }
}

const std::vector<Problem>& sweep() {
  static const std::vector<Problem> problems = [] {
    std::mt19937_64 rng(2026);
    std::vector<Problem> list;
    for (int i = 0; i < 300; ++i) list.push_back(draw_problem(rng));
    for (int i = 0; i < 60; ++i) list.push_back(draw_long_problem(rng));
    for (int i = 0; i < 80; ++i) list.push_back(draw_extreme_problem(rng));
    // Real-model shapes, shrunk in length.
    for (const char* text :
         {"mb1ic80oc64iw300kw3sw1dl1pl1pr1g1", "mb1ic64oc64iw301kw3sw2dl1pl1pr1g1",
          "mb1ic1oc64iw403kw10sw5dl1pl0pr0g1", "mb1ic64oc64iw200kw31sw1dl1pl15pr15g64",
          "mb2ic48oc48iw130kw4sw1dl1pl3pr0g48", "mb1ic32oc64iw200kw2sw1dl8pl0pr0g1",
          "mb1ic64oc64iw150kw1sw1dl1pl0pr0g1", "mb2ic12oc64iw301kw15sw2dl1pl7pr7g1",
          "mb1ic32oc32iw129kw7sw1dl3pl9pr9g1_reflect_nlc", "mb1ic48oc48iw100kw128sw1dl1pl64pr64g2",
          "mb1ic1oc16iw1600kw251sw1dl1pl0pr0g1",
          // Depthwise NCL rows long enough for whole aligned blocks, several
          // row tiles, and each taps-per-residue case of f32 and f64.
          "mb1ic3oc3iw500kw9sw1dl1pl4pr4g3_reflect", "mb2ic3oc3iw9000kw31sw1dl1pl15pr15g3",
          "mb1ic2oc2iw333kw32sw1dl1pl0pr0g2", "mb1ic4oc8iw700kw13sw1dl1pl6pr6g4_f64",
          "mb1ic2oc2iw400kw16sw1dl1pl8pr7g2_f64", "mb1ic20oc20iw100kw4sw1dl1pl3pr0g20_nlc",
          // Input channels staged over several reduction chunks in NCL
          // (stride phases, a row per tap for wide dilation or K = 1 with
          // stride), including a last, shorter chunk.
          "mb1ic161oc20iw150kw3sw1dl2pl2pr2g1", "mb1ic131oc13iw200kw3sw2dl1pl1pr1g1_reflect",
          "mb1ic201oc7iw70kw1sw3dl1pl0pr0g1", "mb1ic71oc9iw400kw3sw1dl80pl0pr0g1",
          "mb1ic97oc11iw90kw5sw2dl2pl4pr4g1_circular_f64",
          // Fewer taps than the stride: tap k's row is stride phase k, all
          // taps de-interleaved at once, in several chunks, with zero,
          // reflect and circular padding at the edges.
          "mb1ic131oc48iw700kw3sw4dl1pl2pr2g1_reflect", "mb2ic40oc24iw500kw2sw3dl1pl1pr1g1_f64",
          "mb1ic70oc30iw900kw3sw4dl1pl1pr2g1_circular",
          // Strides 5-8 on length vectors (AVX-512 and AVX2 de-interleave
          // them with permutes, other targets element by element): all
          // phases, fewer taps than the stride, a row per tap (dilation
          // 9), several chunks, narrow groups, every padding mode, f32 and
          // f64.
          "mb1ic40oc48iw1500kw7sw5dl1pl3pr3g1_reflect", "mb2ic24oc24iw1300kw3sw6dl1pl1pr1g1_f64",
          "mb1ic20oc32iw2000kw2sw7dl9pl0pr0g1_circular",
          "mb1ic16oc64iw2400kw16sw8dl1pl4pr4g1_replicate_f64", "mb1ic131oc20iw900kw5sw5dl1pl2pr2g1",
          "mb2ic6oc12iw1000kw7sw7dl1pl3pr3g2_reflect",
          // Length tiles past either end of NCL rows: the vectors inside
          // copied for all channels at once, those past the edges through
          // padded spans of up to 8 channels at a time (19 channels: 8, 8
          // and 3). Rows shorter than a tile, left padding wider than a
          // vector's span, rows per tap (dilation 100), every padding mode;
          // the third and sixth on non-contiguous views.
          "mb1ic19oc24iw256kw3sw5dl1pl1pr1g1_reflect",
          "mb1ic11oc20iw600kw3sw1dl100pl150pr150g1_reflect_f64",
          "mb1ic12oc16iw100kw7sw2dl1pl30pr30g1_replicate", "mb2ic19oc30iw300kw41sw1dl1pl40pr40g1",
          "mb1ic9oc16iw200kw5sw3dl1pl20pr20g1_circular", "mb2ic10oc8iw90kw3sw4dl1pl5pr5g1_circular",
          // Large enough for several threads in ThreadCountDoesNotChangeBits.
          "mb2ic24oc48iw2000kw31sw1dl1pl15pr15g24", "mb1ic3oc3iw600kw20sw1dl1pl10pr9g3",
          "mb1ic16oc16iw300kw5sw1dl1pl2pr2g16_nlc", "mb1ic2oc2iw500kw10sw1dl1pl0pr0g2_f64",
          // Depthwise kernels whose span and stride leave no room in the
          // channel-vector tile budget (a learned filterbank: K = 400,
          // hop 160).
          "mb1ic2oc2iw2000kw400sw160dl1pl0pr0g2", "mb1ic1oc8iw3000kw400sw160dl1pl0pr0g1_nlc",
          "mb1ic2oc4iw2000kw400sw160dl1pl0pr0g2_f64",
          // Strides far beyond a vector: each packed row is de-interleaved
          // into that many phases.
          "mb1ic2oc6iw5kw3sw255dl21pl33pr17g1_nobias_f64", "mb2ic3oc3iw40kw2sw300dl5pl20pr20g3",
          // Strided depthwise rows long enough for de-interleaving loads,
          // with padding of every mode at both ends, depth multipliers
          // (channels of a group share a packed row) and f64.
          "mb1ic1oc13iw1000kw7sw4dl1pl3pr3g1_reflect", "mb2ic3oc9iw777kw5sw3dl2pl4pr5g3_circular",
          "mb1ic2oc4iw999kw3sw2dl1pl1pr1g2_replicate_f64", "mb1ic4oc8iw1200kw4sw4dl1pl2pr0g4",
          "mb1ic2oc2iw1001kw2sw5dl3pl3pr3g2_reflect",
          // Groups of up to 16 input channels with few outputs each (the
          // depthwise kernels sum the channels one after another): rows,
          // shared-load rows (K = 31), channels-last lanes, multipliers.
          "mb1ic32oc2iw300kw5sw1dl1pl2pr2g2", "mb2ic48oc12iw200kw9sw2dl2pl8pr8g3_nlc",
          "mb1ic64oc16iw500kw31sw1dl1pl15pr15g8", "mb1ic30oc10iw129kw3sw1dl1pl1pr1g10_reflect_f64",
          "mb1ic96oc16iw257kw3sw1dl1pl1pr1g16_nlc",
          "mb1ic80oc40iw150kw7sw3dl1pl3pr3g5_circular_nlc",
          // NCL rows much shorter than a length tile, where the direct
          // tiles' vectors run along the output channels instead: input
          // gathered by position, outputs scattered back.
          "mb1ic20oc64iw12kw5sw1dl1pl2pr2g1_reflect", "mb2ic40oc128iw20kw3sw3dl1pl1pr1g2_circular",
          "mb1ic32oc96iw14kw4sw1dl3pl0pr0g1_f64", "mb3ic48oc40iw40kw9sw1dl4pl0pr0g1_nobias",
          "mb1ic33oc70iw40kw2sw8dl1pl3pr3g1_replicate",
          // Strides past 4 with a few vectors of output channels: channel
          // vectors, the input transposed in blocks of lanes x lanes with
          // leftover channels and positions, the output transposed back.
          "mb2ic37oc24iw700kw3sw5dl1pl1pr1g1_reflect",
          "mb1ic20oc32iw500kw4sw6dl2pl3pr2g1_replicate_f64",
          "mb1ic40oc20iw300kw5sw5dl1pl2pr2g1_circular", "mb2ic36oc40iw200kw3sw7dl1pl0pr0g2",
          // Fewer output channels per group than lanes: vectors along the
          // input channels summed at the end (zeros past the group's
          // channels, several chunks of channels for the last).
          "mb2ic40oc3iw300kw5sw5dl1pl2pr2g1_reflect", "mb1ic33oc5iw200kw3sw2dl2pl2pr2g1_nlc",
          "mb2ic64oc2iw150kw4sw6dl1pl3pr3g2_circular", "mb1ic200oc4iw120kw9sw4dl1pl4pr4g1"}) {
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

bool is_exact(const std::string& algorithm) {
  return detail::find_algorithm(algorithm)->exactness == detail::Exactness::exact;
}

// The bound for algorithms that are not exact (FFT), relative to the
// magnitude of what is summed: for every output (n, co, l),
//   |actual - expected| <= rtol * (|bias[co]| + sum over ci in the group of
//                                  sum_k |weight[co, ci, k]| * max_l' |x[n, ci, l']|),
// the largest sum of |products| any output of the row could have. The
// maximum over the row, not each output's own sum: a transform's rounding is
// spread over every output of its block, so an output whose terms are all
// zero (its kernel meets only padding) still carries the rounding of its
// neighbours. That rounding grows like u * log2(N) (u = 2^-24 in float32,
// 2^-53 in float64) times a small constant: the sweep's worst errors are
// 3.6e-7 (float32) and 8.0e-16 (float64) of this magnitude, 28x and 125x
// below rtol, while a wrong twiddle, bin or index gives errors of order 1.
template <class T>
constexpr double kRelativeTolerance = sizeof(T) == 4 ? 1e-5 : 1e-13;

template <class T>
int64_t count_beyond_tolerance(const testing::Workload<T>& work, TensorRef<const T> actual) {
  const Problem& p = work.problem;
  const TensorRef<const T> input = work.input.cview();
  const TensorRef<const T> expected = work.expected.cview();
  const int64_t cin = p.in_channels_per_group();
  int64_t beyond = 0;
  for (int64_t n = 0; n < actual.batch; ++n) {
    std::vector<double> largest(static_cast<size_t>(p.in_channels), 0.0);
    for (int64_t c = 0; c < p.in_channels; ++c) {
      for (int64_t l = 0; l < p.length; ++l) {
        largest[c] = std::max(largest[c], std::abs(static_cast<double>(input.at(n, c, l))));
      }
    }
    for (int64_t co = 0; co < actual.channels; ++co) {
      double magnitude = p.has_bias ? std::abs(static_cast<double>(work.bias[co])) : 0.0;
      const int64_t first = co / p.out_channels_per_group() * cin;
      for (int64_t ci = 0; ci < cin; ++ci) {
        for (int64_t k = 0; k < p.kernel_size; ++k) {
          magnitude +=
              std::abs(static_cast<double>(work.weight[(co * cin + ci) * p.kernel_size + k])) *
              largest[first + ci];
        }
      }
      for (int64_t l = 0; l < actual.length; ++l) {
        const double error = std::abs(static_cast<double>(actual.at(n, co, l)) -
                                      static_cast<double>(expected.at(n, co, l)));
        if (!(error <= kRelativeTolerance<T> * magnitude)) ++beyond;
      }
    }
  }
  return beyond;
}

// Outputs that fail the algorithm's check: bit for bit, or the tolerance.
template <class T>
int64_t run_and_compare(const Problem& problem, const std::string& algorithm, int threads,
                        int64_t gap, std::mt19937_64& rng) {
  Workload<T> work(problem, rng, gap);
  Plan plan(problem, {algorithm, threads});
  plan.set_weights(work.weight.data(), work.bias_data());
  auto output = work.output(gap);
  plan.forward(work.input.cview(), output.view);
  if (is_exact(algorithm)) return count_mismatches<T>(output.cview(), work.expected.cview());
  return count_beyond_tolerance(work, output.cview());
}

using AlgorithmAndIsa = std::tuple<std::string, std::string>;

class AlgorithmSweep : public ::testing::TestWithParam<AlgorithmAndIsa> {
 protected:
  void SetUp() override { set_max_isa(std::get<1>(GetParam())); }
  void TearDown() override { set_max_isa("avx512"); }
};

TEST_P(AlgorithmSweep, MatchesReference) {
  const std::string& algorithm = std::get<0>(GetParam());
  std::mt19937_64 rng(17);
  int supported = 0;
  for (size_t i = 0; i < sweep().size(); ++i) {
    const Problem& problem = sweep()[i];
    if (!supports(algorithm, problem)) continue;
    ++supported;
    // Every third problem runs on non-contiguous views.
    const int64_t gap = i % 3 == 2 ? 2 : 1;
    const int64_t mismatches = problem.dtype == DType::f32
                                   ? run_and_compare<float>(problem, algorithm, 1, gap, rng)
                                   : run_and_compare<double>(problem, algorithm, 1, gap, rng);
    EXPECT_EQ(mismatches, 0) << algorithm << (is_exact(algorithm) ? " (exact)" : " (tolerance)")
                             << " on " << problem.to_string() << " (gap " << gap << ")";
  }
  RecordProperty("problems", supported);
  EXPECT_GT(supported, 0) << algorithm << " supports none of the sweep's problems";
}

// NaN, +Inf and -Inf in the input (and, for every other problem, in the
// weights) make non-finite exactly the outputs PyTorch does: those whose
// window holds one, and with a non-finite weight those whose window meets
// zero padding too (PyTorch multiplies it). Padded lanes, taps or tiles
// that multiply a zero weight with such an input would add NaNs. Plans on
// the FFT run these on an exact algorithm, so every algorithm matches the
// reference bit for bit.
template <class T>
int64_t non_finite_mismatches(const Problem& problem, const std::string& algorithm, bool weights,
                              int64_t gap, std::mt19937_64& rng) {
  Workload<T> work(problem, rng, gap);
  const T specials[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity()};
  auto pick = [&](int64_t hi) { return std::uniform_int_distribution<int64_t>(0, hi - 1)(rng); };
  for (const T special : specials) {
    work.input.view.at(pick(problem.batch), pick(problem.in_channels), pick(problem.length)) =
        special;
  }
  if (weights)
    work.weight[static_cast<size_t>(pick(static_cast<int64_t>(work.weight.size())))] =
        specials[pick(3)];
  reference::forward<T>(problem, work.input.cview(), work.weight.data(), work.bias_data(),
                        work.expected.view, 1);
  Plan plan(problem, {algorithm, 1});
  plan.set_weights(work.weight.data(), work.bias_data());
  auto output = work.output(gap);
  plan.forward(work.input.cview(), output.view);
  return count_mismatches<T>(output.cview(), work.expected.cview());
}

TEST_P(AlgorithmSweep, NonFiniteValuesStayInTheirWindows) {
  const std::string& algorithm = std::get<0>(GetParam());
  // The reference is what the others are held to.
  if (algorithm == "reference") GTEST_SKIP() << "the oracle itself";
  std::mt19937_64 rng(23);
  // Every other problem of the sweep, for time.
  for (size_t i = 0; i < sweep().size(); i += 2) {
    const Problem& problem = sweep()[i];
    if (!supports(algorithm, problem)) continue;
    const bool weights = i % 4 == 2;
    const int64_t gap = i % 3 == 2 ? 2 : 1;
    const int64_t mismatches =
        problem.dtype == DType::f32
            ? non_finite_mismatches<float>(problem, algorithm, weights, gap, rng)
            : non_finite_mismatches<double>(problem, algorithm, weights, gap, rng);
    EXPECT_EQ(mismatches, 0) << algorithm << " on " << problem.to_string()
                             << (weights ? " (non-finite weight)" : "") << " (gap " << gap << ")";
  }
}

// Real-valued inputs: the bits of the result must not depend on the thread
// count.
TEST_P(AlgorithmSweep, ThreadCountDoesNotChangeBits) {
  const std::string& algorithm = std::get<0>(GetParam());
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (size_t i = 0; i < sweep().size(); ++i) {
    Problem problem = sweep()[i];
    // Every 7th problem, and every problem big enough to be split over
    // several threads.
    if (i % 7 != 0 && problem.out_channels * problem.out_length() < 65536) continue;
    problem.dtype = DType::f32;
    problem.batch = 2;
    if (!supports(algorithm, problem)) continue;
    testing::Activation<float> input(problem.batch, problem.in_channels, problem.length,
                                     problem.layout);
    for (float& v : input.storage) v = value(rng);
    std::vector<float> weight(static_cast<size_t>(
        problem.out_channels * problem.in_channels_per_group() * problem.kernel_size));
    std::vector<float> bias(static_cast<size_t>(problem.out_channels));
    for (float& v : weight) v = value(rng);
    for (float& v : bias) v = value(rng);
    // The executor itself: a Plan runs layers too small to share out on
    // fewer threads than asked.
    const auto executor = detail::find_algorithm(algorithm)->create(problem);
    executor->set_weights(weight.data(), problem.has_bias ? bias.data() : nullptr);
    std::vector<testing::Activation<float>> outputs;
    for (int threads : {1, 2, 7}) {
      outputs.emplace_back(problem.batch, problem.out_channels, problem.out_length(),
                           problem.layout);
      executor->forward(input.cview(), outputs.back().view, threads);
    }
    EXPECT_EQ(outputs[0].storage, outputs[1].storage) << algorithm << " " << problem.to_string();
    EXPECT_EQ(outputs[0].storage, outputs[2].storage) << algorithm << " " << problem.to_string();
  }
}

template <class T>
int64_t run_strided_output(const Problem& problem, int64_t output_gap, std::mt19937_64& rng,
                           const std::string& algorithm = "depthwise", int threads = 1) {
  Workload<T> work(problem, rng);
  Plan plan(problem, {algorithm, threads});
  plan.set_weights(work.weight.data(), work.bias_data());
  auto output = work.output(output_gap);
  plan.forward(work.input.cview(), output.view);
  return count_mismatches<T>(output.cview(), work.expected.cview());
}

// Depthwise rows of stride 1 with 9..2N taps (AVX-512 computes them from
// input vectors shifted in registers, reading the row in place): lengths
// around the register blocks, padding that reaches several vectors into the
// row, every padding mode, depth multipliers, rows split into several tiles.
class DepthwiseRows : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { set_max_isa(GetParam()); }
  void TearDown() override { set_max_isa("avx512"); }
};

TEST_P(DepthwiseRows, ShiftedRowsMatchReference) {
  const std::string algorithm = "depthwise";
  std::mt19937_64 rng(31);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  constexpr int64_t kLengths[] = {1,   3,   15,  16,  17,  40,   127, 128,
                                  129, 160, 161, 250, 300, 1000, 4200};
  int checked = 0;
  for (int i = 0; i < 240; ++i) {
    ConvParams p;
    const bool f64 = i % 4 == 3;
    p.kernel_size = f64 ? pick(9, 16) : pick(9, 32);
    p.groups = pick(1, 3);
    p.in_channels = p.groups;
    p.out_channels = p.groups * pick(1, 2);
    p.bias = pick(0, 3) != 0;
    p.padding_mode = static_cast<PaddingMode>(i % 4);
    switch (pick(0, 3)) {
      case 0:
        p.padding = Padding::valid();
        break;
      case 1:
        p.padding = Padding::same();
        break;
      case 2:
        p.padding = Padding::asymmetric(p.kernel_size - 1, 0);
        break;
      default:
        p.padding = Padding::asymmetric(pick(0, 40), pick(0, 40));
    }
    Problem problem;
    try {
      problem = Problem::make(p, pick(1, 2), kLengths[pick(0, 14)], f64 ? DType::f64 : DType::f32,
                              Layout::ncl);
    } catch (const Error&) {
      continue;  // kernel wider than the padded input, or padding too wide for its mode
    }
    if (!supports(algorithm, problem)) continue;
    ++checked;
    // Every third problem writes a strided output (the input stays in place).
    const int64_t output_gap = i % 3 == 2 ? 2 : 1;
    const int64_t mismatches = f64 ? run_strided_output<double>(problem, output_gap, rng)
                                   : run_strided_output<float>(problem, output_gap, rng);
    EXPECT_EQ(mismatches, 0) << problem.to_string() << " (output gap " << output_gap << ")";
  }
  EXPECT_GT(checked, 150);
}

// Rows of 17..32 taps in float run through 12-vector blocks (assembly on
// AVX-512) wherever a block's 14 input vectors lie inside the row: output
// lengths around one and two such blocks, with and without padding on
// either side, so that blocks start at, just inside and just outside the
// row's ends.
TEST_P(DepthwiseRows, WideBlocksAtTheRowEnds) {
  std::mt19937_64 rng(17);
  int checked = 0;
  for (const int64_t kernel_size : {17, 24, 31, 32}) {
    for (const int64_t out_length :
         {191, 192, 193, 207, 208, 209, 223, 224, 225, 383, 384, 385, 400, 401}) {
      for (const int64_t pad_left : {0, 1, 15, 16, 31}) {
        for (const int64_t pad_right : {0, 9, 31}) {
          ConvParams p;
          // 16 rows: enough tasks that each row stays one tile.
          p.in_channels = 16;
          p.out_channels = 16;
          p.groups = 16;
          p.kernel_size = kernel_size;
          p.padding = Padding::asymmetric(pad_left, pad_right);
          const int64_t length = out_length + kernel_size - 1 - pad_left - pad_right;
          const Problem problem = Problem::make(p, 1, length, DType::f32, Layout::ncl);
          ASSERT_EQ(problem.out_length(), out_length);
          ++checked;
          EXPECT_EQ(run_strided_output<float>(problem, 1, rng), 0) << problem.to_string();
        }
      }
    }
  }
  EXPECT_EQ(checked, 4 * 14 * 5 * 3);
}

// A depthwise layer with a bias and zero padding.
ConvParams depthwise_params(int64_t channels, int64_t multiplier, int64_t kernel_size,
                            int64_t pad_left, int64_t pad_right) {
  SeparableParams separable;
  separable.in_channels = channels;
  separable.depth_multiplier = multiplier;
  separable.kernel_size = kernel_size;
  separable.padding = Padding::asymmetric(pad_left, pad_right);
  return separable.depthwise_params();
}

// The depthwise algorithm on NCL rows of `length` samples against the
// reference.
void expect_depthwise_rows_match(const ConvParams& p, int64_t batch, int64_t length, bool f64,
                                 int64_t out_length, std::mt19937_64& rng) {
  const Problem problem =
      Problem::make(p, batch, length, f64 ? DType::f64 : DType::f32, Layout::ncl);
  EXPECT_EQ(problem.out_length(), out_length) << problem.to_string();
  const int64_t mismatches = f64 ? run_strided_output<double>(problem, 1, rng)
                                 : run_strided_output<float>(problem, 1, rng);
  EXPECT_EQ(mismatches, 0) << problem.to_string();
}

// Zero-padded rows of 5..2N taps run a task's rows in one call, with the
// blocks at the row ends planned once per task: rows of one block and of
// several, tasks that start inside a depth multiplier's group of rows, and
// padding far wider than the kernel (edge blocks past what the plan holds).
TEST_P(DepthwiseRows, RowsOfATaskShareTheirEdgeBlocks) {
  std::mt19937_64 rng(23);
  int checked = 0;
  for (const bool f64 : {false, true}) {
    for (const int64_t kernel_size : {5, 7, 16, 17, 31}) {
      if (f64 && kernel_size > 16) continue;
      for (const int64_t out_length : {1, 16, 33, 100, 128, 129, 300, 1000}) {
        for (const auto& [pad_left, pad_right] : {std::pair<int64_t, int64_t>{0, 0},
                                                  {3, 2},
                                                  {kernel_size - 1, 0},
                                                  {200, 5},
                                                  {0, 300},
                                                  {150, 700}}) {
          for (const int64_t multiplier : {1, 3}) {
            // 24 groups: rows of 1000 outputs run four to a task, so tasks
            // start inside a group of three rows.
            const ConvParams p = depthwise_params(24, multiplier, kernel_size, pad_left, pad_right);
            const int64_t length = out_length + kernel_size - 1 - pad_left - pad_right;
            if (length < 1) continue;
            ++checked;
            expect_depthwise_rows_match(p, 1, length, f64, out_length, rng);
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 300);
}

// Reflect, replicate and circular rows (long ones of 5..2N taps on AVX-512:
// zero-padded rows, then the terms of the taps that read their padding;
// otherwise padded copies of the row ends): padding narrower and wider than the kernel, on
// one side or both, rows shorter than the padding's reach (both ends' terms
// on one output), dilated register-tap rows, depth multipliers, and rows
// long enough to be run a few at a time.
TEST_P(DepthwiseRows, OtherPaddingModesAddTheirTerms) {
  std::mt19937_64 rng(29);
  int checked = 0;
  for (const PaddingMode mode :
       {PaddingMode::reflect, PaddingMode::replicate, PaddingMode::circular}) {
    for (const bool f64 : {false, true}) {
      for (const auto& [kernel_size, dilation] :
           {std::pair<int64_t, int64_t>{3, 1}, {4, 3}, {7, 1}, {16, 1}, {31, 1}}) {
        for (const int64_t out_length : {1, 16, 33, 100, 300, 700, 5000}) {
          for (const auto& [pad_left, pad_right] : {std::pair<int64_t, int64_t>{1, 1},
                                                    {kernel_size - 1, 0},
                                                    {0, kernel_size - 1},
                                                    {15, 15},
                                                    {40, 3},
                                                    {2, 90}}) {
            for (const int64_t multiplier : {1, 3}) {
              if (f64 && out_length == 5000) continue;
              ConvParams p = depthwise_params(6, multiplier, kernel_size, pad_left, pad_right);
              p.dilation = dilation;
              p.padding_mode = mode;
              const int64_t length =
                  out_length + (kernel_size - 1) * dilation - pad_left - pad_right;
              // PyTorch's limits: reflect pads less than the length,
              // circular at most the length.
              if (length < 1) continue;
              if (mode == PaddingMode::reflect && std::max(pad_left, pad_right) >= length) continue;
              if (mode == PaddingMode::circular && std::max(pad_left, pad_right) > length) continue;
              ++checked;
              expect_depthwise_rows_match(p, 2, length, f64, out_length, rng);
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

// Output rows a multiple of 4 KiB apart make the direct algorithm keep its
// partial sums in a tile of its own (loads of one tile would wait on the
// stores of the previous one), and store the last reduction chunk straight
// to the output: reductions of several chunks, a partial block of output
// channels, partial length tiles, strided outputs, two threads.
class DirectTiles : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { set_max_isa(GetParam()); }
  void TearDown() override { set_max_isa("avx512"); }
};

TEST_P(DirectTiles, PartialSumsOutsideTheOutput) {
  std::mt19937_64 rng(23);
  int checked = 0;
  for (const DType dtype : {DType::f32, DType::f64}) {
    const int64_t rows_4k = 4096 / dtype_size(dtype);
    for (const int64_t out_length : {rows_4k, 2 * rows_4k, rows_4k - 4}) {
      for (const int64_t stride : {1, 2}) {
        ConvParams p;
        p.in_channels = 300;  // 900 reduction steps: several chunks
        p.out_channels = 13;
        p.kernel_size = 3;
        p.stride = stride;
        p.padding = Padding::symmetric(1);
        const int64_t length = (out_length - 1) * stride + 1;
        const Problem problem = Problem::make(p, 1, length, dtype, Layout::ncl);
        ASSERT_EQ(problem.out_length(), out_length);
        for (const int64_t output_gap : {1, 2}) {
          const int threads = output_gap;
          ++checked;
          const int64_t mismatches =
              dtype == DType::f32
                  ? run_strided_output<float>(problem, output_gap, rng, "direct", threads)
                  : run_strided_output<double>(problem, output_gap, rng, "direct", threads);
          EXPECT_EQ(mismatches, 0) << problem.to_string() << " (output gap " << output_gap << ")";
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 3 * 2 * 2);
}

// Zero padding wider than a vector's span, with dilation: the vectors of a
// length tile at either end read inside the input from different taps on,
// and each run of taps goes to the vectors that read inside at it (the
// first chunk's other vectors start from their bias). Several reduction
// chunks; outputs in place, partial sums in a tile of their own with the
// last chunk stored to the output (rows 4 KiB apart), and strided outputs;
// partial length tiles; one and two threads.
TEST_P(DirectTiles, TapsSplitAcrossVectorsAtWidePadding) {
  std::mt19937_64 rng(31);
  int checked = 0;
  for (const DType dtype : {DType::f32, DType::f64}) {
    const int64_t rows_4k = 4096 / dtype_size(dtype);
    for (const int64_t out_length : {rows_4k, int64_t{300}, int64_t{145}}) {
      ConvParams p;
      p.in_channels = 300;  // 9 taps x 300 channels: several chunks
      p.out_channels = 14;  // two full 6-row blocks and a partial one
      p.kernel_size = 9;
      p.dilation = 4;
      // Wider than the kernel's span (32): the first vectors of the first
      // tile read only padding.
      p.padding = Padding::symmetric(64);
      const Problem problem = Problem::make(p, 1, out_length - 96, dtype, Layout::ncl);
      ASSERT_EQ(problem.out_length(), out_length);
      for (const int64_t output_gap : {1, 2}) {
        for (const int threads : {1, 2}) {
          ++checked;
          const int64_t mismatches =
              dtype == DType::f32
                  ? run_strided_output<float>(problem, output_gap, rng, "direct", threads)
                  : run_strided_output<double>(problem, output_gap, rng, "direct", threads);
          EXPECT_EQ(mismatches, 0) << problem.to_string() << " (output gap " << output_gap << ", "
                                   << threads << " threads)";
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 3 * 2 * 2);
}

// Channel-vector tiles whose weights exceed L2 (any L2 up to 4 MiB) and
// whose weight panels few tiles share prefetch the next panel, in a tile
// variant of their own; with two threads such layers split their output
// channels first. Few positions; full and partial blocks of output channels
// and positions; zero padding (tiles that skip taps); both layouts.
TEST_P(DirectTiles, WeightPanelsFromBeyondL2) {
  std::mt19937_64 rng(29);
  int checked = 0;
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const Layout layout : {Layout::nlc, Layout::ncl}) {
      ConvParams p;
      p.in_channels = 384;
      p.out_channels = 272;
      p.kernel_size = 12;
      // NCL data takes channel vectors at strides past 4.
      p.stride = layout == Layout::ncl ? 8 : 1;
      const int64_t pad = 6;
      p.padding = Padding::symmetric(pad);
      const int64_t out_length = 23;
      const int64_t length = (out_length - 1) * p.stride + p.kernel_size - 2 * pad;
      const Problem problem = Problem::make(p, 1, length, dtype, layout);
      ASSERT_EQ(problem.out_length(), out_length);
      ASSERT_GT(problem.out_channels * problem.in_channels_per_group() * problem.kernel_size *
                    dtype_size(dtype),
                int64_t{4} << 20);
      for (const int threads : {1, 2}) {
        ++checked;
        const int64_t mismatches =
            dtype == DType::f32 ? run_strided_output<float>(problem, 1, rng, "direct", threads)
                                : run_strided_output<double>(problem, 1, rng, "direct", threads);
        EXPECT_EQ(mismatches, 0) << problem.to_string() << " on " << threads << " threads";
      }
    }
  }
  EXPECT_EQ(checked, 2 * 2 * 2);
}

INSTANTIATE_TEST_SUITE_P(Isa, DirectTiles, ::testing::ValuesIn(available_isas()),
                         [](const auto& info) { return info.param; });

std::vector<AlgorithmAndIsa> algorithm_isa_pairs() {
  std::vector<AlgorithmAndIsa> pairs;
  for (const auto& algorithm : algorithm_names()) {
    for (const auto& isa : available_isas()) pairs.emplace_back(algorithm, isa);
  }
  return pairs;
}

INSTANTIATE_TEST_SUITE_P(Isa, DepthwiseRows, ::testing::ValuesIn(available_isas()),
                         [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Registry, AlgorithmSweep, ::testing::ValuesIn(algorithm_isa_pairs()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

}  // namespace
}  // namespace conv1d
