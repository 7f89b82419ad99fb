// Plan: selection, misuse errors, concurrency.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conv_testing.hpp"
#include "core/finite.hpp"
#include "core/interned.hpp"
#include "core/large_array.hpp"
#include "tensor_testing.hpp"

namespace conv1d {
namespace {

using testing::error_of;

using testing::Activation;
using testing::max_error;
using testing::Workload;

Problem whisper_like() { return Problem::parse("mb2ic24oc40iw257kw3sw1dl1pl1pr1g1"); }

TEST(Plan, ChoosesASupportedAlgorithm) {
  const Problem problem = whisper_like();
  Plan plan(problem);
  bool found = false;
  for (const auto& status : algorithm_statuses(problem)) {
    if (status.name == plan.algorithm()) found = status.supported;
  }
  EXPECT_TRUE(found) << plan.algorithm();
  EXPECT_GE(plan.threads(), 1);
  EXPECT_FALSE(plan.isa().empty());
  EXPECT_EQ(algorithm_names().back(), "reference");
}

// Small layers run on fewer threads than asked, large ones on all of them;
// threads() still reports the request.
TEST(Plan, SmallLayersRunOnFewerThreads) {
  const Plan tiny(Problem::parse("mb1ic8oc8iw16kw3sw1dl1pl1pr1g1"), {"auto", 4});
  EXPECT_EQ(tiny.threads(), 4);
  EXPECT_EQ(tiny.forward_threads(), 1);
  const Plan large(Problem::parse("mb1ic512oc512iw3000kw3sw2dl1pl1pr1g1"), {"auto", 4});
  EXPECT_EQ(large.forward_threads(), 4);
  const Plan forced(Problem::parse("mb1ic8oc8iw16kw3sw1dl1pl1pr1g1"), {"reference", 3});
  EXPECT_LE(forced.forward_threads(), 3);
  EXPECT_GE(forced.forward_threads(), 1);
}

// Depthwise rows of AVX-512's shifted-lane kernel cost ~5 ns each beyond
// their FMAs: 2048 rows of 32 outputs (K = 15) run ~18 us on one thread and
// 13-17 on two, which the FMAs alone would rate at 14, too little to share
// out.
TEST(Plan, ShortDepthwiseRowsCountTheirRows) {
  if (active_isa() != "avx512") GTEST_SKIP() << "the shifted-lane rows are AVX-512's";
  const Plan short_rows(Problem::parse("mb1ic2048oc2048iw32kw15sw1dl1pl7pr7g2048"), {"auto", 2});
  EXPECT_EQ(short_rows.algorithm(), "depthwise");
  EXPECT_EQ(short_rows.forward_threads(), 2);
}

// The algorithm an automatic one-thread plan picks for a problem string.
std::string picks(const char* text) {
  return std::string(Plan(Problem::parse(text), {"auto", 1}).algorithm());
}

// Groups of one input channel: these depth multipliers run 1.4-3x faster
// on direct's tiles of output channels (96 -> 384 channels, K = 9, stride
// 2: 4.5 against 6.4 ms; 3 -> 9, K = 128, dilation 8: 0.033 against 0.097
// ms, one AVX-512 thread), while plain depthwise rows, strided or not, stay
// on depthwise (384 channels, K = 5, stride 2: 0.16 against 0.33 ms).
TEST(Plan, NarrowGroupsPickByTheirRows) {
  if (active_isa() != "avx512") GTEST_SKIP() << "measured with AVX-512";
  EXPECT_EQ(picks("mb4ic96oc384iw16000kw9sw2dl1pl4pr4g96"), "direct");
  EXPECT_EQ(picks("mb1ic3oc9iw2000kw128sw1dl8pl508pr508g3"), "direct");
  EXPECT_EQ(picks("mb2ic384oc384iw1000kw5sw2dl1pl0pr0g384"), "depthwise");
  EXPECT_EQ(picks("mb1ic256oc256iw1000kw31sw1dl1pl15pr15g256"), "depthwise");
  EXPECT_EQ(picks("mb1ic1536oc1536iw1024kw4sw1dl1pl3pr3g1536"), "depthwise");
}

// Strides past 4 (AVX-512): direct's length vectors de-interleave such rows
// with permutes, and take groups of one to three input channels (96 -> 192
// channels in 32 groups, K = 5, stride 5: 0.36 against 0.77 ms), while
// depthwise rows, transposed into channel vectors, stay on depthwise (512
// channels, K = 7, stride 5: 0.15 against 0.28 ms on direct; depth
// multiplier 2: 0.46 against 0.94 ms).
TEST(Plan, StridesPastFourPickByTheirStaging) {
  if (active_isa() != "avx512") GTEST_SKIP() << "measured with AVX-512";
  EXPECT_EQ(picks("mb4ic96oc192iw4000kw5sw5dl1pl2pr2g32"), "direct");
  EXPECT_EQ(picks("mb1ic512oc512iw2000kw7sw5dl1pl0pr0g512"), "depthwise");
  EXPECT_EQ(picks("mb2ic256oc512iw3000kw7sw5dl1pl3pr3g256"), "depthwise");
}

// The FFT's products read megabytes of transformed weights as they stream
// from L3: 192 -> 192 channels, K = 64, stride 2 on 256 samples runs 2x
// faster on fft than on direct (one AVX-512 thread), while 64 -> 16
// channels at K = 9, whose direct tiles are cheap, stays direct.
TEST(Plan, FftWhereItsProductsOverlapTheWeights) {
  if (active_isa() != "avx512") GTEST_SKIP() << "measured with AVX-512";
  EXPECT_EQ(picks("mb1ic192oc192iw256kw64sw2dl1pl0pr0g1"), "fft");
  EXPECT_EQ(picks("mb1ic64oc16iw4000kw9sw1dl1pl0pr0g1"), "direct");
}

TEST(Plan, ExplicitAlgorithmAndErrors) {
  const Problem problem = whisper_like();
  EXPECT_EQ(Plan(problem, {"reference", 1}).algorithm(), "reference");
  const std::string unknown = error_of([&] { Plan(problem, {"winograd9", 1}); });
  EXPECT_NE(unknown.find("unknown algorithm 'winograd9'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("reference"), std::string::npos) << unknown;
  EXPECT_NE(error_of([&] { Plan(problem, {"auto", -1}); }).find("threads"), std::string::npos);

  Plan plan(problem, {"reference", 1});
  std::vector<float> x(static_cast<size_t>(2 * 24 * 257)), y(static_cast<size_t>(2 * 40 * 257));
  const auto in = TensorRef<const float>::contiguous(x.data(), 2, 24, 257);
  const auto out = TensorRef<float>::contiguous(y.data(), 2, 40, 257);
  EXPECT_NE(error_of([&] { plan.forward(in, out); }).find("set_weights"), std::string::npos);
  std::vector<float> w(40 * 24 * 3), b(40);
  EXPECT_NE(error_of([&] {
              plan.set_weights(w.data(), static_cast<float*>(nullptr));
            }).find("bias is null"),
            std::string::npos);
  plan.set_weights(w.data(), b.data());
  const auto short_in = TensorRef<const float>::contiguous(x.data(), 2, 24, 200);
  const std::string shape = error_of([&] { plan.forward(short_in, out); });
  EXPECT_NE(shape.find("input has shape (2, 24, 200)"), std::string::npos) << shape;
  std::vector<double> xd(x.size()), yd(y.size());
  const std::string dtype = error_of([&] {
    plan.forward(TensorRef<const double>::contiguous(xd.data(), 2, 24, 257),
                 TensorRef<double>::contiguous(yd.data(), 2, 40, 257));
  });
  EXPECT_NE(dtype.find("float32"), std::string::npos) << dtype;
  EXPECT_NO_THROW(plan.forward(in, out));
}

TEST(Plan, EmptyBatchRunsAndWritesNothing) {
  Problem problem = whisper_like();
  problem.batch = 0;
  for (const auto& name : algorithm_names()) {
    bool supported = false;
    for (const auto& status : algorithm_statuses(problem)) {
      if (status.name == name) supported = status.supported;
    }
    if (!supported) continue;
    Plan plan(problem, {name, 2});
    std::vector<float> w(40 * 24 * 3), b(40);
    plan.set_weights(w.data(), b.data());
    plan.forward(TensorRef<const float>::contiguous(nullptr, 0, 24, 257),
                 TensorRef<float>::contiguous(nullptr, 0, 40, 257));
  }
}

// One Plan executed from 8 threads at once gives every thread the same bits.
TEST(Plan, ConcurrentExecutionIsSafeAndIdentical) {
  std::mt19937_64 rng(3);
  for (const char* text :
       {"mb2ic24oc40iw257kw3sw1dl1pl1pr1g1", "mb1ic32oc32iw300kw9sw1dl1pl4pr4g32_nlc",
        "mb1ic16oc48iw200kw1sw1dl1pl0pr0g1", "mb3ic6oc6iw90kw5sw2dl3pl2pr2g2_reflect"}) {
    const Problem problem = Problem::parse(text);
    Workload<float> work(problem, rng);
    std::uniform_real_distribution<float> value(-1, 1);
    for (float& v : work.input.storage) v = value(rng);
    Plan plan(problem, {"auto", 1});
    plan.set_weights(work.weight.data(), work.bias_data());
    auto single = work.output();
    plan.forward(work.input.cview(), single.view);
    std::vector<Activation<float>> outputs;
    for (int t = 0; t < 8; ++t) outputs.push_back(work.output());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int repeat = 0; repeat < 20; ++repeat) {
          plan.forward(work.input.cview(), outputs[static_cast<size_t>(t)].view);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& output : outputs) {
      EXPECT_EQ(output.storage, single.storage) << text << " via " << plan.algorithm();
    }
  }
}

// The Plan's backward agrees with the reference functions it wraps, for any
// algorithm choice (plans without their own backward fall back to the reference).
TEST(Plan, BackwardMatchesReference) {
  std::mt19937_64 rng(9);
  const Problem problem = Problem::parse("mb2ic6oc4iw33kw3sw2dl2pl2pr1g2_circular_f64");
  Workload<double> work(problem, rng);
  Activation<double> grad_output(problem.batch, problem.out_channels, problem.out_length(),
                                 problem.layout);
  testing::fill_small_integers(grad_output.view, rng);
  for (const auto& name : algorithm_names()) {
    bool supported = false;
    for (const auto& status : algorithm_statuses(problem)) {
      if (status.name == name) supported = status.supported;
    }
    if (!supported) continue;
    Plan plan(problem, {name, 2});
    plan.set_weights(work.weight.data(), work.bias_data());
    Activation<double> grad_input(problem.batch, problem.in_channels, problem.length,
                                  problem.layout);
    Activation<double> expected_input(problem.batch, problem.in_channels, problem.length,
                                      problem.layout);
    plan.backward_data(grad_output.cview(), grad_input.view);
    reference::backward_data<double>(problem, grad_output.cview(), work.weight.data(),
                                     expected_input.view, 1);
    EXPECT_EQ(grad_input.storage, expected_input.storage) << name;
    std::vector<double> gw(work.weight.size()), gb(work.bias.size());
    std::vector<double> ew(gw.size()), eb(gb.size());
    plan.backward_weight(work.input.cview(), grad_output.cview(), gw.data(), gb.data());
    reference::backward_weight<double>(problem, work.input.cview(), grad_output.cview(), ew.data(),
                                       eb.data(), 1);
    EXPECT_EQ(gw, ew) << name;
    EXPECT_EQ(gb, eb) << name;
  }
}

// Plans for two input lengths of one layer share the fft's kernel spectra
// and the weights copy kept for backward while their weights are equal, and
// never see each other's weights once those differ.
TEST(Plan, PlansWithEqualWeightsShareButNeverMix) {
  std::mt19937_64 rng(11);
  const Problem short_problem = Problem::parse("mb1ic4oc6iw300kw64sw1dl1pl0pr0g1_nobias");
  Problem long_problem = short_problem;
  long_problem.length = 310;
  const testing::Workload<float> first(short_problem, rng);
  const testing::Workload<float> second(long_problem, rng);
  // The long problem's output with the first weights.
  testing::Activation<float> second_with_first(long_problem.batch, long_problem.out_channels,
                                               long_problem.out_length(), long_problem.layout);
  reference::forward<float>(long_problem, second.input.cview(), first.weight.data(),
                            first.bias_data(), second_with_first.view, 1);
  // fft is within ~1e-6 of these small-integer sums; a mixed-up weight is off by ~1.
  const auto run = [&](const Plan& plan, const testing::Workload<float>& work) {
    auto output = work.output();
    plan.forward(work.input.cview(), output.view);
    return output;
  };
  PlanOptions fft;
  fft.algorithm = "fft";
  Plan a(short_problem, fft);
  Plan b(long_problem, fft);
  a.set_weights(first.weight.data(), first.bias_data());
  b.set_weights(first.weight.data(), first.bias_data());
  EXPECT_LT(max_error(run(a, first).cview(), first.expected.cview()), 1e-3);
  EXPECT_LT(max_error(run(b, second).cview(), second_with_first.cview()), 1e-3);

  b.set_weights(second.weight.data(), second.bias_data());
  EXPECT_LT(max_error(run(b, second).cview(), second.expected.cview()), 1e-3);
  EXPECT_LT(max_error(run(a, first).cview(), first.expected.cview()), 1e-3);

  // Backward runs on the reference with the kept copy: still the first weights.
  testing::Activation<float> grad_input(1, short_problem.in_channels, short_problem.length,
                                        short_problem.layout);
  testing::Activation<float> expected_grad(1, short_problem.in_channels, short_problem.length,
                                           short_problem.layout);
  a.backward_data(first.expected.cview(), grad_input.view);
  reference::backward_data<float>(short_problem, first.expected.cview(), first.weight.data(),
                                  expected_grad.view, 1);
  EXPECT_EQ(testing::count_mismatches<float>(grad_input.cview(), expected_grad.cview()), 0);
}

// The weights copy kept for backward is overwritten when its plan is its
// only holder, and copied anew while another plan shares it.
TEST(Interned, OverwritesOnlyAnUnsharedCopy) {
  const std::vector<float> one(1000, 1.0f);
  const std::vector<float> two(1000, 2.0f);
  const size_t bytes = one.size() * sizeof(float);
  const auto holds = [&](const auto& copy, const std::vector<float>& values) {
    return copy->size() == bytes && std::memcmp(copy->data(), values.data(), bytes) == 0;
  };
  auto held = core::intern_bytes(one.data(), bytes);
  const std::byte* address = held->data();
  held = core::intern_bytes(two.data(), bytes, std::move(held));
  EXPECT_EQ(held->data(), address);
  EXPECT_TRUE(holds(held, two));

  auto other = core::intern_bytes(two.data(), bytes);  // equal contents: shared
  EXPECT_EQ(other, held);
  held = core::intern_bytes(one.data(), bytes, std::move(held));
  EXPECT_NE(held, other);
  EXPECT_TRUE(holds(held, one));
  EXPECT_TRUE(holds(other, two));
}

// Plans' large arrays: aligned for the kernels (2 MiB for the mapped ones,
// from 1 MiB, so that they can sit on huge pages; whole pages for the
// populated ones, from 64 KiB), usable to their last byte, and released;
// sizes around 64 KiB, 1 and 2 MiB and the half-used last page.
TEST(LargeArray, AlignedAndUsableToTheEnd) {
  constexpr size_t kKiB = size_t{1} << 10;
  constexpr size_t kMiB = size_t{1} << 20;
  for (const size_t bytes :
       {size_t{0}, size_t{1}, size_t{100}, 64 * kKiB - 4, 64 * kKiB, 64 * kKiB + 4, size_t{491520},
        kMiB - 4, kMiB, kMiB + 4096, kMiB * 3 / 2, 2 * kMiB - 1, 2 * kMiB, 2 * kMiB + 100, 3 * kMiB,
        3 * kMiB + 4096, 7 * kMiB + 12345}) {
    const size_t count = bytes / sizeof(float);
    auto array = core::make_large_array<float>(count);
    ASSERT_NE(array.get(), nullptr) << bytes;
    const auto address = reinterpret_cast<uintptr_t>(array.get());
    EXPECT_EQ(address % 64, 0u) << bytes;
#if defined(__linux__)
    if (bytes >= kMiB) {
      EXPECT_EQ(address % (2 * kMiB), 0u) << bytes;
    } else if (bytes >= 64 * kKiB) {
      EXPECT_EQ(address % 4096, 0u) << bytes;
    }
#endif
    for (size_t i = 0; i < count; i += 1000) array[i] = static_cast<float>(i);
    if (count > 0) array[count - 1] = 7.0f;
    for (size_t i = 0; i + 1 < count; i += 1000) ASSERT_EQ(array[i], static_cast<float>(i));
    if (count > 0) {
      EXPECT_EQ(array[count - 1], 7.0f);
    }
  }
}

#if defined(__SANITIZE_ADDRESS__) && defined(__linux__)
// Under AddressSanitizer a kept mapping is poisoned: reading an array after
// releasing it is still reported, though the memory stays mapped.
TEST(LargeArrayDeathTest, ReadingAReleasedArrayIsReported) {
  const size_t count = (size_t{333} << 10) / sizeof(float) + 5;
  const volatile float* released = nullptr;
  {
    auto array = core::make_large_array<float>(count);
    array[7] = 1.0f;
    released = array.get();
  }
  EXPECT_DEATH({ [[maybe_unused]] const float value = released[7]; }, "use-after-poison");
}
#endif

// A released mapping serves the next array of its mapped size (no fresh
// pages to touch); releasing many sizes in turn keeps only a bounded few,
// and every array stays usable to its last element.
TEST(LargeArray, ReleasedMappingsAreReused) {
#if defined(__linux__)
  const size_t count = (size_t{777} << 10) / sizeof(float) + 3;  // a size no other test uses
  const void* released = nullptr;
  {
    auto array = core::make_large_array<float>(count);
    array[count - 1] = 1.0f;
    released = array.get();
  }
  auto again = core::make_large_array<float>(count);
  EXPECT_EQ(again.get(), released);
  for (size_t i = 0; i < count; ++i) again[i] = static_cast<float>(i % 97);
  for (size_t i = 0; i < count; i += 4099) ASSERT_EQ(again[i], static_cast<float>(i % 97));
  for (size_t round = 0; round < 40; ++round) {
    const size_t elements = (round % 7 + 1) * (size_t{3} << 18) + round;  // 3-21 MiB and up
    auto array = core::make_large_array<float>(elements);
    array[0] = 2.0f;
    array[elements - 1] = 3.0f;
    EXPECT_EQ(array[0] + array[elements - 1], 5.0f);
  }
#endif
}

// Plans whose algorithm has no backward run it on the reference with the
// weights their executor gives back (unpacked on the first backward): every
// packing shape, layout, group count and dtype must give back exactly what
// set_weights took.
template <class T>
int64_t backward_data_mismatches(const Problem& problem, const char* algorithm,
                                 std::mt19937_64& rng) {
  const Workload<T> work(problem, rng);
  Plan plan(problem, {algorithm, 1});
  plan.set_weights(work.weight.data(), work.bias_data());
  Activation<T> grad_input(problem.batch, problem.in_channels, problem.length, problem.layout);
  Activation<T> expected(problem.batch, problem.in_channels, problem.length, problem.layout);
  plan.backward_data(work.expected.cview(), grad_input.view);
  reference::backward_data<T>(problem, work.expected.cview(), work.weight.data(), expected.view, 1);
  return testing::count_mismatches<T>(grad_input.cview(), expected.cview());
}

TEST(Plan, BackwardGetsTheWeightsBack) {
  std::mt19937_64 rng(31);
  for (const char* descriptor :
       {"mb1ic300oc13iw40kw3sw1dl1pl1pr1g1", "mb1ic300oc13iw40kw3sw2dl2pl1pr1g1_nlc",
        "mb2ic12oc18iw50kw5sw1dl1pl2pr2g3_nobias", "mb1ic8oc70iw64kw1sw1dl1pl0pr0g1_f64",
        "mb1ic6oc9iw40kw4sw3dl1pl0pr0g3_nlc_f64_nobias"}) {
    const Problem problem = Problem::parse(descriptor);
    for (const char* algorithm : {"direct", "fft"}) {
      EXPECT_EQ(problem.dtype == DType::f32
                    ? backward_data_mismatches<float>(problem, algorithm, rng)
                    : backward_data_mismatches<double>(problem, algorithm, rng),
                0)
          << algorithm << " " << descriptor;
    }
  }
}

// The weight gradient does not read the weights: a plan computes it before
// set_weights, for every algorithm (those without a backward of their own
// run the reference's, with nothing to copy back from their executor).
TEST(Plan, BackwardWeightNeedsNoWeights) {
  std::mt19937_64 rng(13);
  for (const char* descriptor :
       {"mb2ic8oc12iw60kw3sw1dl1pl1pr1g1", "mb1ic6oc6iw70kw5sw2dl1pl2pr2g6_nlc",
        "mb1ic4oc6iw300kw64sw1dl1pl0pr0g2_nobias"}) {
    const Problem problem = Problem::parse(descriptor);
    const Workload<float> work(problem, rng);
    std::vector<float> expected_weight(work.weight.size()), expected_bias(work.bias.size());
    reference::backward_weight<float>(problem, work.input.cview(), work.expected.cview(),
                                      expected_weight.data(),
                                      work.bias_data() ? expected_bias.data() : nullptr, 1);
    for (const auto& status : algorithm_statuses(problem)) {
      if (!status.supported) continue;
      Plan plan(problem, PlanOptions{status.name, 1});
      std::vector<float> weight(work.weight.size(), -1.0f), bias(work.bias.size(), -1.0f);
      plan.backward_weight(work.input.cview(), work.expected.cview(), weight.data(),
                           work.bias_data() ? bias.data() : nullptr);
      EXPECT_EQ(weight, expected_weight) << status.name << " " << descriptor;
      EXPECT_EQ(bias, expected_bias) << status.name << " " << descriptor;
    }
  }
}

// The output may not share memory with the input (the kernels read the one
// while writing the other) nor write one element twice; views that only
// interleave are fine.
TEST(Plan, RejectsOverlappingViews) {
  std::mt19937_64 rng(17);
  const Problem problem = Problem::parse("mb1ic4oc4iw50kw3sw1dl1pl1pr1g1");  // out length 50
  const Workload<float> work(problem, rng);
  Plan plan(problem, PlanOptions{"auto", 1});
  plan.set_weights(work.weight.data(), work.bias_data());
  std::vector<float> buffer(2 * 4 * 50 + 8, 1.0f);
  const auto view = [&](int64_t offset) {
    return TensorRef<float>::contiguous(buffer.data() + offset, 1, 4, 50);
  };
  for (const int64_t offset : {0, 7, 199}) {
    EXPECT_NE(
        error_of([&] { plan.forward<float>(view(0), view(offset)); }).find("output overlaps input"),
        std::string::npos)
        << offset;
  }
  TensorRef<float> repeated = view(200);
  repeated.length_stride = 0;
  EXPECT_NE(error_of([&] { plan.forward<float>(view(0), repeated); }).find("length stride 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              plan.backward_data<float>(view(0), view(100));
            }).find("grad_input overlaps grad_output"),
            std::string::npos);

  // Input in the even elements of one buffer, output in the odd ones; and
  // views side by side.
  std::vector<float> both(2 * 4 * 50);
  TensorRef<float> even = TensorRef<float>::contiguous(both.data(), 1, 4, 50);
  even.channel_stride *= 2;
  even.length_stride *= 2;
  TensorRef<float> odd = even;
  odd.data += 1;
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t l = 0; l < 50; ++l) even.at(0, c, l) = work.input.view.at(0, c, l);
  }
  plan.forward<float>(even, odd);
  EXPECT_EQ(testing::count_mismatches<float>(odd, work.expected.cview()), 0);
  plan.forward<float>(view(0), view(200));
}

// A plan's backward follows each set_weights.
TEST(Plan, BackwardFollowsNewWeights) {
  std::mt19937_64 rng(12);
  const Problem problem = Problem::parse("mb2ic8oc12iw90kw5sw2dl1pl2pr2g1");
  Plan plan(problem, PlanOptions{"direct"});
  for (int update = 0; update < 3; ++update) {
    const testing::Workload<float> work(problem, rng);
    plan.set_weights(work.weight.data(), work.bias_data());
    testing::Activation<float> grad_input(problem.batch, problem.in_channels, problem.length,
                                          problem.layout);
    testing::Activation<float> expected(problem.batch, problem.in_channels, problem.length,
                                        problem.layout);
    plan.backward_data(work.expected.cview(), grad_input.view);
    reference::backward_data<float>(problem, work.expected.cview(), work.weight.data(),
                                    expected.view, 1);
    EXPECT_EQ(testing::count_mismatches<float>(grad_input.cview(), expected.cview()), 0)
        << "update " << update;
  }
}

// `problem`'s output for the weights of `weights`.
template <class T>
Activation<T> output_with(const Problem& problem, const Workload<T>& input,
                          const Workload<T>& weights) {
  Activation<T> output(problem.batch, problem.out_channels, problem.out_length(), problem.layout);
  reference::forward<T>(problem, input.input.cview(), weights.weight.data(), weights.bias_data(),
                        output.view, 1);
  return output;
}

// Non-finite inputs or weights on an FFT plan give PyTorch's pattern of
// non-finite outputs (those whose window holds one), not a transform
// block's worth, and so do finite inputs large enough to overflow a
// transform: such calls run on an exact algorithm, so with small
// integers the outputs equal the reference's bit for bit. Finite data
// afterwards gets the FFT's answer (within its error) with the weights of
// the latest set_weights or share_weights.
template <class T>
void check_non_finite(const Problem& problem, std::mt19937_64& rng) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  Plan plan(problem, PlanOptions{"fft"});
  const auto run = [&](const testing::Workload<T>& data) {
    Activation<T> out = data.output(2);
    plan.forward(data.input.cview(), out.view);
    return out;
  };
  std::uniform_int_distribution<int64_t> position(0, problem.length - 1);
  std::uniform_int_distribution<int64_t> channel(0, problem.in_channels - 1);
  for (int round = 0; round < 2; ++round) {
    testing::Workload<T> weights(problem, rng);
    plan.set_weights(weights.weight.data(), weights.bias_data());
    // Non-finite input: NaN, +Inf and -Inf (near the edges too, where
    // reflect and circular padding repeat them).
    testing::Workload<T> data(problem, rng, 2);
    const int64_t last = problem.length - 1;
    data.input.view.at(0, channel(rng), position(rng)) = nan;
    data.input.view.at(problem.batch - 1, channel(rng), std::min<int64_t>(1, last)) = inf;
    data.input.view.at(0, channel(rng), last) = -inf;
    Activation<T> expected = output_with(problem, data, weights);
    Activation<T> got = run(data);
    EXPECT_EQ(testing::count_mismatches<T>(got.cview(), expected.cview()), 0)
        << problem.to_string() << " non-finite input, round " << round;
    // A finite value so large that a transform's sums would overflow. In
    // the middle of the row: padding that repeats it could pair it with
    // its own negative in one window, and what such a cancellation leaves
    // depends on the order of the sums.
    testing::Workload<T> huge(problem, rng, 2);
    huge.input.view.at(problem.batch - 1, channel(rng), problem.length / 2) =
        std::numeric_limits<T>::max() / 8;
    got = run(huge);
    EXPECT_EQ(
        testing::count_mismatches<T>(got.cview(), output_with(problem, huge, weights).cview()), 0)
        << problem.to_string() << " huge input, round " << round;
    // Finite input: the FFT, with this round's weights.
    testing::Workload<T> finite(problem, rng);
    got = run(finite);
    EXPECT_LT(max_error<T>(got.cview(), output_with(problem, finite, weights).cview()), 1e-2)
        << problem.to_string() << " finite input, round " << round;
  }
  // Non-finite weights: every input runs exactly, also in a plan that
  // shares them.
  testing::Workload<T> weights(problem, rng);
  weights.weight[weights.weight.size() / 2] = inf;
  weights.weight[0] = nan;
  plan.set_weights(weights.weight.data(), weights.bias_data());
  testing::Workload<T> data(problem, rng);
  Activation<T> got = run(data);
  EXPECT_EQ(testing::count_mismatches<T>(got.cview(), output_with(problem, data, weights).cview()),
            0)
      << problem.to_string() << " non-finite weights";
  Plan sharing(problem, PlanOptions{"fft"});
  ASSERT_TRUE(sharing.share_weights(plan)) << problem.to_string();
  Activation<T> shared_out = data.output();
  sharing.forward(data.input.cview(), shared_out.view);
  EXPECT_EQ(testing::count_mismatches<T>(shared_out.cview(), got.cview()), 0)
      << problem.to_string() << " non-finite weights, shared";
  // Finite weights again: the FFT's answer.
  testing::Workload<T> fixed(problem, rng);
  plan.set_weights(fixed.weight.data(), fixed.bias_data());
  got = run(data);
  EXPECT_LT(max_error<T>(got.cview(), output_with(problem, data, fixed).cview()), 1e-2)
      << problem.to_string() << " finite weights again";
}

template <class T>
void check_magnitudes_below() {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const auto below = [](std::vector<T> values, int exponent) {
    return core::magnitudes_below(values.data(), static_cast<int64_t>(values.size()), 1, exponent);
  };
  const T big = std::ldexp(T(1), 20);
  EXPECT_TRUE(below({0, T(-1), std::nextafter(big, T(0)), -std::nextafter(big, T(0))}, 20));
  EXPECT_FALSE(below({0, big}, 20));
  EXPECT_FALSE(below({T(1), -big}, 20));
  EXPECT_TRUE(below({std::numeric_limits<T>::max(), -std::numeric_limits<T>::max(),
                     std::numeric_limits<T>::denorm_min()},
                    std::numeric_limits<T>::max_exponent));
  for (const T special : {inf, -inf, nan, -nan}) {
    EXPECT_FALSE(below({T(1), special}, std::numeric_limits<T>::max_exponent + 5));
    EXPECT_FALSE(below({special}, 0));
  }
  // A bound below the normal range: no value qualifies, zero included.
  EXPECT_FALSE(below({T(0)}, std::numeric_limits<T>::min_exponent - 10));
  EXPECT_TRUE(below({}, std::numeric_limits<T>::min_exponent - 10));
  // Strided: the elements between are not read.
  std::vector<T> strided = {T(1), nan, T(2), nan, T(3)};
  EXPECT_TRUE(core::magnitudes_below(strided.data(), 3, 2, 4));
  EXPECT_FALSE(core::magnitudes_below(strided.data(), 3, 2, 1));
}

TEST(Finite, MagnitudesBelow) {
  check_magnitudes_below<float>();
  check_magnitudes_below<double>();
}

TEST(Plan, NonFiniteValuesStayInTheirWindowsOnFftPlans) {
  std::mt19937_64 rng(77);
  for (const char* descriptor :
       {"mb2ic6oc5iw300kw64sw1dl1pl10pr20g1", "mb1ic4oc6iw260kw33sw3dl2pl30pr30g2_nlc",
        "mb2ic8oc8iw200kw65sw1dl1pl32pr32g8", "mb1ic3oc4iw150kw40sw1dl1pl39pr0g1_reflect",
        "mb1ic5oc5iw180kw31sw2dl1pl15pr15g5_circular_nlc", "mb2ic3oc2iw120kw20sw1dl1pl19pr0g1_f64",
        "mb1ic2oc3iw100kw17sw1dl1pl8pr8g1_replicate_nobias"}) {
    const Problem problem = Problem::parse(descriptor);
    if (problem.dtype == DType::f32) {
      check_non_finite<float>(problem, rng);
    } else {
      check_non_finite<double>(problem, rng);
    }
  }
}

// A plan for another batch and length shares a plan's packed weights (no
// copy), computes with them exactly (direct) or within the FFT's error, and
// gets them back for backward; a later set_weights on either plan leaves
// the other's weights as they were.
template <class T>
void check_shared_weights(const Problem& first, const char* algorithm, std::mt19937_64& rng) {
  Problem second = first;
  second.batch += 1;
  second.length += 37;
  const Workload<T> one(first, rng);
  const Workload<T> two(second, rng);  // its input, and other weights
  const double tolerance = std::string(algorithm) == "fft" ? 1e-3 : 0.0;
  const auto run = [](const Plan& plan, const Workload<T>& work) {
    auto output = work.output();
    plan.forward(work.input.cview(), output.view);
    return output;
  };
  const std::string name = std::string(algorithm) + " " + first.to_string();
  Plan a(first, {algorithm, 1});
  Plan b(second, {algorithm, 2});
  a.set_weights(one.weight.data(), one.bias_data());
  ASSERT_TRUE(b.share_weights(a)) << name;
  EXPECT_TRUE(b.shares_weights_with(a)) << name;
  EXPECT_TRUE(a.shares_weights_with(b)) << name;
  const Activation<T> second_with_one = output_with(second, two, one);
  EXPECT_LE(max_error(run(b, two).cview(), second_with_one.cview()), tolerance) << name;

  // New weights for `a`: `b` keeps the first ones, for forward and backward.
  a.set_weights(two.weight.data(), two.bias_data());
  EXPECT_FALSE(b.shares_weights_with(a)) << name;
  EXPECT_LE(max_error(run(a, one).cview(), output_with(first, one, two).cview()), tolerance)
      << name;
  EXPECT_LE(max_error(run(b, two).cview(), second_with_one.cview()), tolerance) << name;
  // Backward (on the reference) with the weights the plan holds.
  const auto backward_mismatches = [](const Plan& plan, const Workload<T>& work,
                                      const Workload<T>& weights) {
    const Problem& p = plan.problem();
    Activation<T> grad_input(p.batch, p.in_channels, p.length, p.layout);
    Activation<T> expected(p.batch, p.in_channels, p.length, p.layout);
    plan.backward_data(work.expected.cview(), grad_input.view);
    reference::backward_data<T>(p, work.expected.cview(), weights.weight.data(), expected.view, 1);
    return testing::count_mismatches<T>(grad_input.cview(), expected.cview());
  };
  EXPECT_EQ(backward_mismatches(b, two, one), 0) << name;

  // And the other way round: `a`, whose backward has run with `two`'s
  // weights, takes `b`'s (`one`'s), then `b` changes.
  EXPECT_EQ(backward_mismatches(a, one, two), 0) << name;
  ASSERT_TRUE(a.share_weights(b)) << name;
  EXPECT_EQ(backward_mismatches(a, one, one), 0) << name;
  EXPECT_LE(max_error(run(a, one).cview(), output_with(first, one, one).cview()), tolerance)
      << name;
  b.set_weights(two.weight.data(), two.bias_data());
  EXPECT_LE(max_error(run(a, one).cview(), output_with(first, one, one).cview()), tolerance)
      << name;
  EXPECT_LE(max_error(run(b, two).cview(), two.expected.cview()), tolerance) << name;
}

TEST(Plan, ShareWeightsAcrossBatchesAndLengths) {
  std::mt19937_64 rng(41);
  // direct: several reduction chunks, both layouts, groups, partial blocks;
  // fft: kernels long enough that both lengths pick one transform size (a
  // short input may pick a smaller one, and then the plans cannot share).
  const std::pair<const char*, std::vector<const char*>> cases[] = {
      {"direct",
       {"mb1ic300oc13iw40kw3sw1dl1pl1pr1g1", "mb1ic300oc13iw40kw3sw2dl2pl1pr1g1_nlc",
        "mb2ic12oc18iw50kw5sw1dl1pl2pr2g3_nobias", "mb1ic8oc70iw64kw1sw1dl1pl0pr0g1_f64",
        "mb1ic6oc9iw40kw4sw3dl1pl0pr0g3_nlc_f64_nobias"}},
      {"fft",
       {"mb1ic4oc6iw2000kw64sw1dl1pl0pr0g1_nobias", "mb1ic8oc8iw400kw33sw1dl2pl3pr3g2_nlc",
        "mb1ic6oc12iw3000kw40sw2dl1pl0pr0g1_f64"}}};
  for (const auto& [algorithm, descriptors] : cases) {
    for (const char* descriptor : descriptors) {
      const Problem problem = Problem::parse(descriptor);
      if (problem.dtype == DType::f32) {
        check_shared_weights<float>(problem, algorithm, rng);
      } else {
        check_shared_weights<double>(problem, algorithm, rng);
      }
    }
  }
}

TEST(Plan, ShareWeightsDeclinesOrRefuses) {
  std::mt19937_64 rng(43);
  // 32 output channels: channels-last direct plans put their vectors along
  // them (they pack the weights another way) on every target.
  const Problem ncl = Problem::parse("mb1ic8oc32iw60kw3sw1dl1pl1pr1g1");
  const Workload<float> work(ncl, rng);
  Plan direct(ncl, PlanOptions{"direct"});
  direct.set_weights(work.weight.data(), work.bias_data());

  // Another algorithm, or another packing (the other layout): declined,
  // and the plan still has no weights.
  Problem nlc = ncl;
  nlc.layout = Layout::nlc;
  for (const auto& [problem, algorithm] :
       {std::pair{ncl, "reference"}, std::pair{ncl, "fft"}, std::pair{nlc, "direct"}}) {
    Plan plan(problem, PlanOptions{algorithm});
    EXPECT_FALSE(plan.share_weights(direct)) << algorithm;
    EXPECT_FALSE(plan.shares_weights_with(direct)) << algorithm;
    const Workload<float> other(problem, rng);
    auto output = other.output();
    EXPECT_NE(error_of([&] {
                plan.forward(other.input.cview(), output.view);
              }).find("set_weights was not called"),
              std::string::npos)
        << algorithm;
  }

  // fft plans whose transform sizes differ (a short input is one block).
  const Problem long_input = Problem::parse("mb1ic4oc6iw2000kw64sw1dl1pl0pr0g1");
  const Workload<float> long_work(long_input, rng);
  Plan long_fft(long_input, PlanOptions{"fft"});
  long_fft.set_weights(long_work.weight.data(), long_work.bias_data());
  Problem short_input = long_input;
  short_input.length = 80;
  Plan short_fft(short_input, PlanOptions{"fft"});
  EXPECT_FALSE(short_fft.share_weights(long_fft));

  // Different weights, or none yet: an error.
  Problem wider = ncl;
  wider.in_channels = 9;
  Plan other(wider, PlanOptions{"direct"});
  EXPECT_NE(error_of([&] { other.share_weights(direct); }).find("different weights"),
            std::string::npos);
  Problem longer = ncl;
  longer.length = 70;
  Plan fresh(longer, PlanOptions{"direct"});
  Plan taker(ncl, PlanOptions{"direct"});
  EXPECT_NE(error_of([&] { taker.share_weights(fresh); }).find("set_weights was not called"),
            std::string::npos);
  EXPECT_TRUE(direct.share_weights(direct));
}

TEST(Isa, CapIsRespected) {
  const auto isas = available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.back(), "scalar");
  for (const auto& isa : isas) {
    set_max_isa(isa);
    EXPECT_EQ(active_isa(), isa);
    EXPECT_EQ(Plan(whisper_like()).isa(), isa);
  }
  set_max_isa(isas.front());
  EXPECT_NE(error_of([] { set_max_isa("avx1024"); }).find("unknown ISA 'avx1024'"),
            std::string::npos);
}

}  // namespace
}  // namespace conv1d
