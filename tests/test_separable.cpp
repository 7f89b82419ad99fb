// The fused separable convolution (depthwise then 1x1 pointwise, one pass)
// against the reference oracle run as two convolutions in double, on every
// SIMD target; thread-count invariance; the layer's choice between the
// fused and the two-pass path; and why the fused path declines.
#include <gtest/gtest.h>

#include <conv1d/layer.hpp>
#include <random>
#include <string>
#include <vector>

#include "conv_testing.hpp"
#include "kernels/separable/executor.hpp"
#include "reference/reference.hpp"
#include "tensor_testing.hpp"

namespace conv1d {
namespace {

using testing::Activation;
using testing::count_mismatches;
using testing::error_of;

// Lengths around the tile widths: NCL tiles of 4 .. 64 positions (one
// register tile), NLC tiles of a few register rows up to 96 positions.
constexpr int64_t kEdgeLengths[] = {1,  2,  3,  4,   5,   6,   7,   8,   9,   12,  13, 15, 16,
                                    17, 23, 24, 25,  31,  32,  33,  47,  48,  49,  63, 64, 65,
                                    95, 96, 97, 127, 128, 129, 191, 192, 193, 200, 257};

struct Case {
  SeparableParams params;
  int64_t batch = 1;
  int64_t length = 1;
  DType dtype = DType::f32;
  Layout layout = Layout::ncl;
  int64_t gap = 1;  // > 1: non-contiguous views

  Problem depthwise() const {
    return Problem::make(params.depthwise_params(), batch, length, dtype, layout);
  }
  Problem pointwise() const {
    return Problem::make(params.pointwise_params(), batch, depthwise().out_length(), dtype, layout);
  }
  std::string to_string() const {
    return depthwise().to_string() + "+" + pointwise().to_string() + " gap " + std::to_string(gap);
  }
};

Case draw_case(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  // Around register-block sizes: 4 / 6 rows, 3 / 4 vectors of 4 .. 16 lanes.
  constexpr int64_t kChannels[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  11, 12, 13, 15, 16,
                                   17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65};
  auto channels = [&] { return kChannels[pick(0, std::size(kChannels) - 1)]; };
  for (;;) {
    Case c;
    SeparableParams& p = c.params;
    p.in_channels = pick(0, 2) == 0 ? channels() : pick(1, 12);
    p.depth_multiplier = pick(1, 3);
    p.out_channels = pick(0, 2) == 0 ? pick(1, 20) : channels();
    p.kernel_size = pick(0, 3) == 0 ? pick(10, 33) : pick(1, 9);
    p.stride = pick(0, 2) == 0 ? pick(2, 5) : 1;
    p.dilation = pick(0, 2) == 0 ? pick(2, 4) : 1;
    p.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    p.padding = testing::draw_padding(rng, p.stride, 6);
    p.depthwise_bias = pick(0, 2) != 0;
    p.pointwise_bias = pick(0, 2) != 0;
    c.batch = pick(1, 3);
    c.length = pick(0, 2) == 0 ? pick(1, 300) : kEdgeLengths[pick(0, std::size(kEdgeLengths) - 1)];
    c.dtype = pick(0, 2) == 0 ? DType::f64 : DType::f32;
    c.layout = pick(0, 1) == 0 ? Layout::ncl : Layout::nlc;
    c.gap = pick(0, 3) == 0 ? 2 : 1;
    try {
      c.pointwise();
      return c;
    } catch (const Error&) {
      // Invalid combination (kernel wider than the input, reflect too wide): redraw.
    }
  }
}

const std::vector<Case>& sweep() {
  static const std::vector<Case> cases = [] {
    std::mt19937_64 rng(2027);
    std::vector<Case> list;
    for (int i = 0; i < 260; ++i) list.push_back(draw_case(rng));
    // The suite's separable layer and Conformer-like blocks, shrunk in
    // length; wide intermediates, whose NCL tiles hold fewer register tiles;
    // a QuartzNet-like kernel of several windows of shifted taps.
    for (const auto& [cin, multiplier, cout, k, layout, length] :
         {std::tuple{128, 1, 256, 9, Layout::ncl, 150},
          std::tuple{128, 1, 256, 9, Layout::nlc, 150}, std::tuple{64, 1, 64, 31, Layout::ncl, 150},
          std::tuple{64, 1, 64, 31, Layout::nlc, 150}, std::tuple{300, 2, 70, 3, Layout::ncl, 300},
          std::tuple{300, 2, 70, 3, Layout::nlc, 100}, std::tuple{700, 1, 13, 5, Layout::ncl, 200},
          std::tuple{48, 1, 40, 75, Layout::ncl, 200}}) {
      Case c;
      c.params.in_channels = cin;
      c.params.depth_multiplier = multiplier;
      c.params.out_channels = cout;
      c.params.kernel_size = k;
      c.params.padding = Padding::same();
      c.length = length;
      c.layout = layout;
      list.push_back(c);
    }
    return list;
  }();
  return cases;
}

template <class T>
std::vector<T> small_integers(int64_t count, std::mt19937_64& rng) {
  std::vector<T> values(static_cast<size_t>(count));
  testing::fill_small_integers(values, rng);
  return values;
}

// The oracle: reference depthwise, then reference pointwise, in double.
template <class T>
std::vector<double> reference_output(const Case& c, const TensorRef<const T>& input,
                                     const std::vector<T>& dw_weight, const std::vector<T>& dw_bias,
                                     const std::vector<T>& pw_weight,
                                     const std::vector<T>& pw_bias) {
  Problem depthwise = c.depthwise();
  Problem pointwise = c.pointwise();
  depthwise.dtype = pointwise.dtype = DType::f64;
  Activation<double> x(c.batch, depthwise.in_channels, depthwise.length, c.layout);
  for (int64_t n = 0; n < c.batch; ++n) {
    for (int64_t ch = 0; ch < depthwise.in_channels; ++ch) {
      for (int64_t l = 0; l < depthwise.length; ++l) x.view.at(n, ch, l) = input.at(n, ch, l);
    }
  }
  const auto as_double = [](const std::vector<T>& values) {
    return std::vector<double>(values.begin(), values.end());
  };
  const auto dww = as_double(dw_weight), dwb = as_double(dw_bias);
  const auto pww = as_double(pw_weight), pwb = as_double(pw_bias);
  Activation<double> middle(c.batch, depthwise.out_channels, depthwise.out_length(), c.layout);
  reference::forward<double>(depthwise, x.cview(), dww.data(), dwb.empty() ? nullptr : dwb.data(),
                             middle.view, 1);
  Activation<double> y(c.batch, pointwise.out_channels, pointwise.length, Layout::ncl);
  reference::forward<double>(pointwise, middle.cview(), pww.data(),
                             pwb.empty() ? nullptr : pwb.data(), y.view, 1);
  return y.storage;
}

// Mismatches of the fused executor against the oracle (small integers: any
// summation order gives the same bits).
template <class T>
int64_t fused_mismatches(const Case& c, std::mt19937_64& rng) {
  const Problem depthwise = c.depthwise();
  const Problem pointwise = c.pointwise();
  Activation<T> input(c.batch, depthwise.in_channels, depthwise.length, c.layout, c.gap);
  testing::fill_small_integers(input.view, rng);
  const auto dw_weight = small_integers<T>(depthwise.out_channels * c.params.kernel_size, rng);
  const auto dw_bias = small_integers<T>(c.params.depthwise_bias ? depthwise.out_channels : 0, rng);
  const auto pw_weight = small_integers<T>(pointwise.out_channels * pointwise.in_channels, rng);
  const auto pw_bias = small_integers<T>(c.params.pointwise_bias ? pointwise.out_channels : 0, rng);
  const auto executor = algorithms::separable::create(depthwise, pointwise);
  executor->set_weights(dw_weight.data(), dw_bias.empty() ? nullptr : dw_bias.data(),
                        pw_weight.data(), pw_bias.empty() ? nullptr : pw_bias.data());
  Activation<T> output(c.batch, pointwise.out_channels, pointwise.length, c.layout, c.gap);
  executor->forward(input.cview(), output.view, 1);

  const auto expected =
      reference_output<T>(c, input.cview(), dw_weight, dw_bias, pw_weight, pw_bias);
  const auto expected_ref = TensorRef<const double>::contiguous(
      expected.data(), c.batch, pointwise.out_channels, pointwise.length, Layout::ncl);
  int64_t mismatches = 0;
  for (int64_t n = 0; n < c.batch; ++n) {
    for (int64_t co = 0; co < pointwise.out_channels; ++co) {
      for (int64_t l = 0; l < pointwise.length; ++l) {
        if (output.view.at(n, co, l) != static_cast<T>(expected_ref.at(n, co, l))) ++mismatches;
      }
    }
  }
  // Nothing written outside the view.
  for (size_t i = 0; i < output.storage.size(); ++i) {
    if (c.gap > 1 && i % static_cast<size_t>(c.gap) != 0 && output.storage[i] != T(-777)) {
      ++mismatches;
    }
  }
  return mismatches;
}

class SeparableSweep : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { set_max_isa(GetParam()); }
  void TearDown() override { set_max_isa("avx512"); }
};

TEST_P(SeparableSweep, FusedMatchesReferenceExactly) {
  std::mt19937_64 rng(11);
  int checked = 0;
  for (const Case& c : sweep()) {
    ASSERT_EQ(algorithms::separable::why_not(c.depthwise(), c.pointwise()), std::nullopt)
        << c.to_string();
    const int64_t mismatches =
        c.dtype == DType::f32 ? fused_mismatches<float>(c, rng) : fused_mismatches<double>(c, rng);
    EXPECT_EQ(mismatches, 0) << c.to_string();
    ++checked;
  }
  RecordProperty("cases", checked);
}

// Real-valued data: the bits must not depend on the thread count.
TEST_P(SeparableSweep, ThreadCountDoesNotChangeBits) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (size_t i = 0; i < sweep().size(); i += 5) {
    Case c = sweep()[i];
    c.dtype = DType::f32;
    c.batch = 1 + static_cast<int64_t>(i % 3);
    const Problem depthwise = c.depthwise();
    const Problem pointwise = c.pointwise();
    Activation<float> input(c.batch, depthwise.in_channels, depthwise.length, c.layout, c.gap);
    for (float& v : input.storage) v = value(rng);
    std::vector<float> dw_weight(
        static_cast<size_t>(depthwise.out_channels * c.params.kernel_size));
    std::vector<float> dw_bias(static_cast<size_t>(depthwise.out_channels));
    std::vector<float> pw_weight(
        static_cast<size_t>(pointwise.out_channels * pointwise.in_channels));
    std::vector<float> pw_bias(static_cast<size_t>(pointwise.out_channels));
    for (auto* values : {&dw_weight, &dw_bias, &pw_weight, &pw_bias}) {
      for (float& v : *values) v = value(rng);
    }
    const auto executor = algorithms::separable::create(depthwise, pointwise);
    executor->set_weights(dw_weight.data(), c.params.depthwise_bias ? dw_bias.data() : nullptr,
                          pw_weight.data(), c.params.pointwise_bias ? pw_bias.data() : nullptr);
    std::vector<Activation<float>> outputs;
    for (int threads : {1, 2, 7}) {
      outputs.emplace_back(c.batch, pointwise.out_channels, pointwise.length, c.layout, c.gap);
      executor->forward(input.cview(), outputs.back().view, threads);
    }
    EXPECT_EQ(outputs[0].storage, outputs[1].storage) << c.to_string();
    EXPECT_EQ(outputs[0].storage, outputs[2].storage) << c.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, SeparableSweep, ::testing::ValuesIn(available_isas()),
                         [](const auto& info) { return info.param; });

SeparableConv1d make_layer(const SeparableParams& params, DType dtype, const std::string& execution,
                           int threads = 1) {
  return SeparableConv1d(params, dtype, 3, PlanOptions{"auto", threads},
                         SeparableOptions{execution});
}

double max_difference(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(a.value(i) - b.value(i)));
  return worst;
}

// Random (non-integer) data: the fused path sums the pointwise reduction in
// another order than the two-pass path, so only a rounding-level difference.
TEST(SeparableConv1dLayer, FusedEqualsTwoPassOnRealData) {
  for (size_t i = 0; i < sweep().size(); i += 9) {
    const Case& c = sweep()[i];
    const auto fused = make_layer(c.params, c.dtype, "fused");
    const auto two_pass = make_layer(c.params, c.dtype, "two-pass");
    const std::vector<int64_t> shape =
        c.layout == Layout::ncl ? std::vector<int64_t>{c.batch, c.params.in_channels, c.length}
                                : std::vector<int64_t>{c.batch, c.length, c.params.in_channels};
    const Tensor input = testing::random_tensor(c.dtype, shape, 100 + i);
    const Tensor expected = two_pass.forward(input, c.layout);
    const Tensor actual = fused.forward(input, c.layout);
    const double tolerance = c.dtype == DType::f32 ? 1e-4 : 1e-12;
    EXPECT_LE(max_difference(actual, expected), tolerance) << c.to_string();
    EXPECT_EQ(fused.algorithm_for(c.batch, c.length, c.layout), "fused");
    EXPECT_EQ(two_pass.algorithm_for(c.batch, c.length, c.layout), "two-pass");
  }
}

SeparableParams conformer_like() {
  SeparableParams params;
  params.in_channels = 24;
  params.out_channels = 40;
  params.kernel_size = 7;
  params.padding = Padding::same();
  params.depth_multiplier = 2;
  return params;
}

TEST(SeparableConv1dLayer, AutoFusesAndSeesWeightChanges) {
  SeparableConv1d layer(conformer_like(), DType::f32, 1);
  const auto two_pass = make_layer(conformer_like(), DType::f32, "two-pass");
  EXPECT_EQ(layer.algorithm_for(2, 100, Layout::ncl), "fused");
  EXPECT_EQ(layer.algorithm_for(2, 100, Layout::nlc), "fused");
  const Tensor input = testing::random_tensor(DType::f32, {2, 24, 100}, 7);
  const Tensor before = layer.forward(input);
  // Same weights in both layers, then a change to each part in turn.
  for (Conv1d* part : {&layer.depthwise(), &layer.pointwise()}) {
    Tensor& weight = part->mutable_weight();
    for (int64_t i = 0; i < weight.numel(); ++i) weight.data<float>()[i] *= -0.5f;
  }
  auto& target = const_cast<SeparableConv1d&>(two_pass);
  target.depthwise().mutable_weight() = layer.depthwise().weight();
  target.depthwise().mutable_bias() = layer.depthwise().bias();
  target.pointwise().mutable_weight() = layer.pointwise().weight();
  target.pointwise().mutable_bias() = layer.pointwise().bias();
  const Tensor after = layer.forward(input);
  EXPECT_GT(max_difference(before, after), 0.01);
  EXPECT_LE(max_difference(after, two_pass.forward(input)), 1e-5);
  layer.pointwise().mutable_bias().data<float>()[3] += 1.0f;
  const Tensor bias_changed = layer.forward(input);
  EXPECT_NEAR(bias_changed.data<float>()[3 * 100 + 5] - after.data<float>()[3 * 100 + 5], 1.0,
              1e-5);
}

// Fused executors for two lengths share one packed copy of the weights,
// which a later set_weights on either leaves alone.
TEST(SeparableConv1dLayer, FusedExecutorsShareWeightsAcrossLengths) {
  std::mt19937_64 rng(21);
  Case c;
  c.params = conformer_like();
  for (const Layout layout : {Layout::ncl, Layout::nlc}) {
    c.layout = layout;
    c.length = 100;
    const Problem dw_short = c.depthwise();
    const Problem pw_short = c.pointwise();
    c.length = 130;
    const Problem dw_long = c.depthwise();
    const Problem pw_long = c.pointwise();
    const auto dw_weight = small_integers<float>(dw_long.out_channels * c.params.kernel_size, rng);
    const auto dw_bias = small_integers<float>(dw_long.out_channels, rng);
    const auto pw_weight = small_integers<float>(pw_long.out_channels * pw_long.in_channels, rng);
    const auto pw_bias = small_integers<float>(pw_long.out_channels, rng);
    const auto first = algorithms::separable::create(dw_short, pw_short);
    const auto shared = algorithms::separable::create(dw_long, pw_long);
    const auto own = algorithms::separable::create(dw_long, pw_long);
    first->set_weights(dw_weight.data(), dw_bias.data(), pw_weight.data(), pw_bias.data());
    own->set_weights(dw_weight.data(), dw_bias.data(), pw_weight.data(), pw_bias.data());
    ASSERT_TRUE(shared->share_weights(*first));
    EXPECT_EQ(shared->weights_identity(), first->weights_identity());
    EXPECT_NE(own->weights_identity(), first->weights_identity());

    Activation<float> input(1, dw_long.in_channels, dw_long.length, layout);
    testing::fill_small_integers(input.view, rng);
    const auto run = [&](const detail::SeparableExecutor& executor) {
      Activation<float> output(1, pw_long.out_channels, pw_long.length, layout);
      executor.forward(input.cview(), output.view, 1);
      return output.storage;
    };
    const std::vector<float> expected = run(*own);
    EXPECT_EQ(run(*shared), expected);
    const auto other = small_integers<float>(pw_long.out_channels * pw_long.in_channels, rng);
    first->set_weights(dw_weight.data(), dw_bias.data(), other.data(), pw_bias.data());
    EXPECT_NE(shared->weights_identity(), first->weights_identity());
    EXPECT_EQ(run(*shared), expected);
  }
}

// A layer run at several lengths computes each with the current weights,
// whichever length runs first after a change.
TEST(SeparableConv1dLayer, EveryLengthSeesWeightChanges) {
  SeparableConv1d layer(conformer_like(), DType::f32, 1, PlanOptions{}, SeparableOptions{"fused"});
  auto two_pass = make_layer(conformer_like(), DType::f32, "two-pass");
  const auto copy_weights = [&] {
    two_pass.depthwise().mutable_weight() = layer.depthwise().weight();
    two_pass.depthwise().mutable_bias() = layer.depthwise().bias();
    two_pass.pointwise().mutable_weight() = layer.pointwise().weight();
    two_pass.pointwise().mutable_bias() = layer.pointwise().bias();
  };
  const auto check = [&](int64_t length) {
    const Tensor input = testing::random_tensor(DType::f32, {1, 24, length}, 9);
    EXPECT_LE(max_difference(layer.forward(input), two_pass.forward(input)), 1e-5) << length;
  };
  copy_weights();
  check(100);
  check(130);
  for (Conv1d* part : {&layer.depthwise(), &layer.pointwise()}) {
    Tensor& weight = part->mutable_weight();
    for (int64_t i = 0; i < weight.numel(); ++i) weight.data<float>()[i] *= -0.5f;
    copy_weights();
    check(130);
    check(100);
    check(150);
  }
}

TEST(SeparableConv1dLayer, ViewsAndUnbatchedInputs) {
  const auto fused = make_layer(conformer_like(), DType::f64, "fused", 2);
  const auto two_pass = make_layer(conformer_like(), DType::f64, "two-pass", 2);
  const Tensor input = testing::random_tensor(DType::f64, {80, 24}, 9);  // unbatched NLC
  EXPECT_LE(max_difference(fused.forward(input, Layout::nlc), two_pass.forward(input, Layout::nlc)),
            1e-12);
  // A strided channels-last view through the TensorRef overload.
  Activation<double> x(2, 24, 80, Layout::nlc, 2);
  std::mt19937_64 rng(4);
  testing::fill_small_integers(x.view, rng);
  Activation<double> a(2, 40, 80, Layout::nlc, 3);
  Activation<double> b(2, 40, 80, Layout::ncl);
  fused.forward<double>(x.cview(), a.view);
  two_pass.forward<double>(x.cview(), b.view);
  EXPECT_EQ(count_mismatches<double>(a.cview(), b.cview()), 0);
  EXPECT_EQ(fused.algorithm_for(2, 80, Layout::nlc), "fused");
  // An output in the input's memory: an error on both paths.
  for (const auto* layer : {&fused, &two_pass}) {
    std::vector<double> shared(2 * 40 * 80);
    const auto in = TensorRef<const double>::contiguous(shared.data(), 2, 24, 80);
    const auto out = TensorRef<double>::contiguous(shared.data(), 2, 40, 80);
    EXPECT_NE(error_of([&] { layer->forward<double>(in, out); }).find("overlaps"),
              std::string::npos);
  }
}

TEST(SeparableConv1dLayer, NamedAlgorithmOrOptionChoosesTwoPasses) {
  SeparableConv1d named(conformer_like(), DType::f32, 0, PlanOptions{"reference", 1});
  EXPECT_EQ(named.algorithm_for(1, 50, Layout::ncl), "two-pass");
  EXPECT_EQ(make_layer(conformer_like(), DType::f32, "two-pass").algorithm_for(1, 50, Layout::ncl),
            "two-pass");
  EXPECT_EQ(make_layer(conformer_like(), DType::f32, "auto").algorithm_for(1, 50, Layout::ncl),
            "fused");
  EXPECT_EQ(error_of([] { make_layer(conformer_like(), DType::f32, "fast"); }),
            "unknown separable execution 'fast': expected auto, fused or two-pass");
  // Forcing the fused path where it declines names the reason.
  SeparableParams wide = conformer_like();
  wide.in_channels = 2048;
  wide.depth_multiplier = 3;
  const auto forced = make_layer(wide, DType::f32, "fused");
  const std::string message = error_of([&] { forced.algorithm_for(1, 20, Layout::ncl); });
  EXPECT_NE(message.find("fused separable execution is not available"), std::string::npos)
      << message;
  EXPECT_NE(message.find("mid_channels=6144"), std::string::npos) << message;
  EXPECT_EQ(make_layer(wide, DType::f32, "auto").algorithm_for(1, 20, Layout::ncl), "two-pass");
}

TEST(SeparableWhyNot, ExplainsEachDecline) {
  const Problem depthwise = Problem::parse("mb2ic16oc32iw100kw5sw1dl1pl2pr2g16");
  const Problem pointwise = Problem::parse("mb2ic32oc8iw100kw1sw1dl1pl0pr0g1");
  EXPECT_EQ(algorithms::separable::why_not(depthwise, pointwise), std::nullopt);
  const auto reason = [&](const char* dw, const char* pw) {
    return algorithms::separable::why_not(Problem::parse(dw), Problem::parse(pw))
        .value_or("(supported)");
  };
  EXPECT_EQ(reason("mb2ic16oc32iw100kw5sw1dl1pl2pr2g8", "mb2ic32oc8iw100kw1sw1dl1pl0pr0g1"),
            "the first part is not depthwise: groups=8 differs from in_channels=16");
  EXPECT_EQ(reason("mb2ic16oc32iw100kw5sw1dl1pl2pr2g16", "mb2ic32oc8iw100kw3sw1dl1pl1pr1g1"),
            "the second part is not a 1x1 pointwise convolution: "
            "mb2ic32oc8iw100kw3sw1dl1pl1pr1g1");
  EXPECT_EQ(reason("mb2ic16oc32iw100kw5sw1dl1pl2pr2g16", "mb2ic16oc8iw100kw1sw1dl1pl0pr0g1"),
            "the pointwise in_channels=16 differ from the depthwise out_channels=32");
  EXPECT_EQ(reason("mb2ic16oc32iw100kw5sw1dl1pl2pr2g16", "mb1ic32oc8iw100kw1sw1dl1pl0pr0g1"),
            "the pointwise input (mb1ic32oc8iw100kw1sw1dl1pl0pr0g1) is not the depthwise output "
            "(mb2ic16oc32iw100kw5sw1dl1pl2pr2g16)");
  EXPECT_EQ(reason("mb2ic16oc32iw100kw5sw1dl1pl2pr2g16", "mb2ic32oc8iw100kw1sw1dl1pl0pr0g1_nlc"),
            "the pointwise input (mb2ic32oc8iw100kw1sw1dl1pl0pr0g1_nlc) is not the depthwise "
            "output (mb2ic16oc32iw100kw5sw1dl1pl2pr2g16)");
  EXPECT_EQ(reason("mb1ic16oc32iw100kw5sw1dl1pl2pr2g16", "mb1ic32oc5000iw100kw1sw1dl1pl0pr0g1"),
            "mid_channels=32 and out_channels=5000 must be at most 4096: a fused tile would not "
            "stay in L2 and two passes cost the same");
}

}  // namespace
}  // namespace conv1d
