// Conv1d and SeparableConv1d layers: initialisation, shapes, errors, and
// agreement with the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <conv1d/layer.hpp>
#include <random>
#include <string>

#include "reference/reference.hpp"
#include "tensor_testing.hpp"

namespace conv1d {
namespace {

using testing::error_of;
using testing::random_tensor;

ConvParams make_params(int64_t in, int64_t out, int64_t kernel, int64_t groups = 1) {
  ConvParams p;
  p.in_channels = in;
  p.out_channels = out;
  p.kernel_size = kernel;
  p.groups = groups;
  return p;
}

TEST(Conv1dInit, UniformWithinPyTorchBound) {
  const Conv1d layer(make_params(64, 128, 5, 4), DType::f64, 42);
  const double bound = 1.0 / std::sqrt(16.0 * 5.0);
  for (const Tensor* tensor : {&layer.weight(), &layer.bias()}) {
    double sum = 0, sum_squares = 0, largest = 0;
    for (int64_t i = 0; i < tensor->numel(); ++i) {
      const double v = tensor->value(i);
      sum += v;
      sum_squares += v * v;
      largest = std::max(largest, std::abs(v));
    }
    const double n = static_cast<double>(tensor->numel());
    EXPECT_LE(largest, bound);
    EXPECT_GT(largest, 0.9 * bound);
    // Uniform(-b, b): mean 0, variance b^2/3.
    EXPECT_NEAR(sum / n, 0.0, 4 * bound / std::sqrt(3 * n));
    if (n > 1000) {
      EXPECT_NEAR(sum_squares / n, bound * bound / 3, 0.05 * bound * bound);
    }
  }
  EXPECT_EQ(layer.weight().shape(), (std::vector<int64_t>{128, 16, 5}));
  EXPECT_EQ(layer.bias().shape(), (std::vector<int64_t>{128}));
}

TEST(Conv1dInit, SeedMakesRunsRepeatable) {
  const Conv1d a(make_params(8, 8, 3), DType::f32, 7);
  const Conv1d b(make_params(8, 8, 3), DType::f32, 7);
  const Conv1d c(make_params(8, 8, 3), DType::f32, 8);
  int64_t same_as_c = 0;
  for (int64_t i = 0; i < a.weight().numel(); ++i) {
    EXPECT_EQ(a.weight().value(i), b.weight().value(i));
    same_as_c += a.weight().value(i) == c.weight().value(i);
  }
  EXPECT_LT(same_as_c, 3);
}

TEST(Conv1dLayer, ForwardMatchesReferenceInEveryLayoutAndRank) {
  ConvParams p = make_params(6, 4, 3, 2);
  p.stride = 2;
  p.padding = Padding::asymmetric(2, 1);
  p.padding_mode = PaddingMode::replicate;
  const Conv1d layer(p, DType::f64, 1);
  const Tensor x = random_tensor(DType::f64, {3, 6, 20}, 2);
  const Tensor y = layer.forward(x);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{3, 4, 11}));
  const Problem problem = Problem::make(p, 3, 20, DType::f64);
  Tensor expected(DType::f64, {3, 4, 11});
  reference::forward<double>(problem,
                             TensorRef<const double>::contiguous(x.data<double>(), 3, 6, 20),
                             layer.weight().data<double>(), layer.bias().data<double>(),
                             TensorRef<double>::contiguous(expected.data<double>(), 3, 4, 11), 1);
  // The layer's algorithm may sum in another order than the reference.
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.value(i), expected.value(i), 1e-14);

  // Channels-last: transpose in, transpose out, the same numbers up to the
  // summation order of the algorithm chosen for each layout.
  Tensor x_nlc(DType::f64, {3, 20, 6});
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t l = 0; l < 20; ++l)
        x_nlc.data<double>()[(n * 20 + l) * 6 + c] = x.data<double>()[(n * 6 + c) * 20 + l];
  const Tensor y_nlc = layer.forward(x_nlc, Layout::nlc);
  ASSERT_EQ(y_nlc.shape(), (std::vector<int64_t>{3, 11, 4}));
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t l = 0; l < 11; ++l)
        EXPECT_NEAR(y_nlc.data<double>()[(n * 11 + l) * 4 + c],
                    y.data<double>()[(n * 4 + c) * 11 + l], 1e-14);

  // Unbatched: the first sample alone.
  Tensor x0(DType::f64, {6, 20});
  std::copy_n(x.data<double>(), 120, x0.data<double>());
  const Tensor y0 = layer.forward(x0);
  ASSERT_EQ(y0.shape(), (std::vector<int64_t>{4, 11}));
  for (int64_t i = 0; i < 44; ++i) EXPECT_NEAR(y0.value(i), y.value(i), 1e-14);

  // Empty batch.
  EXPECT_EQ(layer.forward(Tensor(DType::f64, {0, 6, 20})).shape(),
            (std::vector<int64_t>{0, 4, 11}));
}

TEST(Conv1dLayer, RejectsBadInput) {
  const Conv1d layer(make_params(6, 4, 3), DType::f32, 1);
  EXPECT_NE(error_of([&] {
              layer.forward(Tensor(DType::f32, {2, 5, 10}));
            }).find("in_channels=6"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              layer.forward(Tensor(DType::f64, {2, 6, 10}));
            }).find("float64"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              layer.forward(Tensor(DType::f32, {1, 2, 6, 10}));
            }).find("4-D"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              layer.forward(Tensor(DType::f32, {2, 6, 2}));
            }).find("wider"),
            std::string::npos);
  ConvParams no_bias = make_params(6, 4, 3);
  no_bias.bias = false;
  Conv1d without(no_bias);
  EXPECT_NE(error_of([&] { without.mutable_bias(); }).find("bias=false"), std::string::npos);
  EXPECT_NE(error_of([] { Conv1d(make_params(6, 4, 3, 4)); }).find("groups=4"), std::string::npos);
}

TEST(Conv1dLayer, WeightChangesReachCachedPlans) {
  Conv1d layer(make_params(2, 1, 1), DType::f32, 1);
  const Tensor x = Tensor::from_values<float>({1, 2, 2}, {1, 2, 3, 4});
  layer.forward(x);  // builds and caches the plan
  layer.mutable_weight().data<float>()[0] = 10;
  layer.mutable_weight().data<float>()[1] = 100;
  layer.mutable_bias().data<float>()[0] = 0.5f;
  const Tensor y = layer.forward(x);
  EXPECT_EQ(y.value(0), 310.5);
  EXPECT_EQ(y.value(1), 420.5);
}

// Runs an f64 layer with 'same' padding on a batch of 2 at `length` against
// the reference with the layer's current weights; returns the plan it used.
const Plan* expect_matches_reference(Conv1d& layer, const ConvParams& p, int64_t length) {
  const int64_t in = p.in_channels, out = p.out_channels;
  const Tensor x = random_tensor(DType::f64, {2, in, length}, static_cast<uint64_t>(length));
  const Tensor y = layer.forward(x);
  Tensor expected(DType::f64, {2, out, length});
  reference::forward<double>(Problem::make(p, 2, length, DType::f64),
                             TensorRef<const double>::contiguous(x.data<double>(), 2, in, length),
                             layer.weight().data<double>(), layer.bias().data<double>(),
                             TensorRef<double>::contiguous(expected.data<double>(), 2, out, length),
                             1);
  double worst = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    worst = std::max(worst, std::abs(y.value(i) - expected.value(i)));
  }
  EXPECT_LT(worst, 1e-12) << length;
  return &layer.plan_for(2, length, Layout::ncl);
}

void scale_weights(Conv1d& layer, double factor) {
  for (int64_t i = 0; i < layer.weight().numel(); ++i) {
    layer.mutable_weight().data<double>()[i] *= factor;
  }
}

// The plans a layer makes for new input lengths share one packed copy of
// the weights (no repacking per length), and after a weight change each
// computes with the new weights, whichever length runs first.
TEST(Conv1dLayer, NewLengthsShareTheWeights) {
  ConvParams p = make_params(16, 24, 5);
  p.padding = Padding::same();
  Conv1d layer(p, DType::f64, 3, PlanOptions{"direct", 1});
  const auto check = [&](int64_t length) { return expect_matches_reference(layer, p, length); };
  // Long enough rows that direct keeps its length-vector tiles at every
  // length (short rows may take channel vectors, packed apart).
  const Plan* first = check(250);
  const Plan* second = check(300);
  const Plan* third = check(377);
  EXPECT_TRUE(second->shares_weights_with(*first));
  EXPECT_TRUE(third->shares_weights_with(*first));

  scale_weights(layer, -1.5);
  check(300);  // packs the new weights, apart from the others
  EXPECT_FALSE(second->shares_weights_with(*first));
  check(250);  // takes them from the plan for 300
  EXPECT_TRUE(first->shares_weights_with(*second));
  EXPECT_FALSE(third->shares_weights_with(*second));
  check(377);
  EXPECT_TRUE(third->shares_weights_with(*second));
}

// Lengths on either side of direct's switch between tile kinds (at AVX-512
// 61 positions run on length vectors, 77 on channel vectors, each with its
// own packing): every plan computes with the layer's current weights.
TEST(Conv1dLayer, LengthsOnOtherTilesKeepTheirOwnPacking) {
  ConvParams p = make_params(16, 24, 5);
  p.padding = Padding::same();
  Conv1d layer(p, DType::f64, 3, PlanOptions{"direct", 1});
  const auto check = [&](int64_t length) { return expect_matches_reference(layer, p, length); };
  check(61);
  check(77);
  scale_weights(layer, -1.5);
  check(77);
  check(61);
  scale_weights(layer, 0.25);
  check(61);
  check(77);
}

TEST(Conv1dLayer, BackwardShapesAndValues) {
  ConvParams p = make_params(4, 6, 3, 2);
  p.padding = Padding::same();
  p.dilation = 2;
  const Conv1d layer(p, DType::f64, 3);
  const Tensor x = random_tensor(DType::f64, {2, 4, 15}, 4);
  const Tensor gy = random_tensor(DType::f64, {2, 6, 15}, 5);
  const auto grads = layer.backward(x, gy);
  EXPECT_EQ(grads.input.shape(), x.shape());
  EXPECT_EQ(grads.weight.shape(), layer.weight().shape());
  EXPECT_EQ(grads.bias.shape(), layer.bias().shape());
  double bias0 = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t l = 0; l < 15; ++l) bias0 += gy.data<double>()[(n * 6 + 0) * 15 + l];
  EXPECT_NEAR(grads.bias.value(0), bias0, 1e-12);
  EXPECT_NE(error_of([&] {
              layer.backward(x, Tensor(DType::f64, {2, 6, 14}));
            }).find("grad_output has shape (2, 6, 14)"),
            std::string::npos);
}

TEST(SeparableConv1d, EqualsDepthwiseThenPointwise) {
  SeparableParams p;
  p.in_channels = 4;
  p.out_channels = 5;
  p.kernel_size = 5;
  p.depth_multiplier = 2;
  p.padding = Padding::same();
  p.padding_mode = PaddingMode::reflect;
  const SeparableConv1d layer(p, DType::f64, 11);
  EXPECT_EQ(layer.depthwise().weight().shape(), (std::vector<int64_t>{8, 1, 5}));
  EXPECT_EQ(layer.pointwise().weight().shape(), (std::vector<int64_t>{5, 8, 1}));
  const Tensor x = random_tensor(DType::f64, {2, 4, 17}, 12);
  const Tensor y = layer.forward(x);
  const Tensor expected = layer.pointwise().forward(layer.depthwise().forward(x));
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{2, 5, 17}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.value(i), expected.value(i));
  // The two parts draw different weights from one seed.
  EXPECT_NE(layer.depthwise().bias().value(0), layer.pointwise().bias().value(0));

  const auto grads = layer.backward(x, random_tensor(DType::f64, {2, 5, 17}, 13));
  EXPECT_EQ(grads.input.shape(), x.shape());
  EXPECT_EQ(grads.depthwise.weight.shape(), (std::vector<int64_t>{8, 1, 5}));
  EXPECT_EQ(grads.pointwise.weight.shape(), (std::vector<int64_t>{5, 8, 1}));
  p.depth_multiplier = 0;
  EXPECT_NE(error_of([&] { SeparableConv1d bad(p); }).find("depth_multiplier"), std::string::npos);
}

}  // namespace
}  // namespace conv1d
