// The oracle against hand-computed cases, and its backward pass against
// finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <conv1d/conv1d.hpp>
#include <random>
#include <vector>

#include "reference/reference.hpp"

namespace conv1d {
namespace {

struct Case {
  ConvParams params;
  int64_t batch = 1;
  std::vector<double> input;  // (N, C_in, L) contiguous
  std::vector<double> weight;
  std::vector<double> bias;
  std::vector<double> expected;
};

std::vector<double> run_forward(const Problem& p, const std::vector<double>& input,
                                const std::vector<double>& weight,
                                const std::vector<double>& bias) {
  std::vector<double> output(static_cast<size_t>(p.batch * p.out_channels * p.out_length()));
  reference::forward<double>(
      p, TensorRef<const double>::contiguous(input.data(), p.batch, p.in_channels, p.length),
      weight.data(), bias.empty() ? nullptr : bias.data(),
      TensorRef<double>::contiguous(output.data(), p.batch, p.out_channels, p.out_length()), 1);
  return output;
}

ConvParams single(int64_t kernel, Padding padding, PaddingMode mode = PaddingMode::zeros) {
  ConvParams p;
  p.kernel_size = kernel;
  p.padding = padding;
  p.padding_mode = mode;
  return p;
}

TEST(Reference, HandComputedCases) {
  const std::vector<double> x4 = {1, 2, 3, 4};
  const std::vector<double> diff = {1, 0, -1};
  ConvParams dilated = single(2, Padding::valid());
  dilated.stride = 2;
  dilated.dilation = 2;
  dilated.bias = false;
  ConvParams grouped = single(1, Padding::valid());
  grouped.in_channels = 2;
  grouped.out_channels = 2;
  grouped.groups = 2;
  ConvParams mixing = single(2, Padding::valid());
  mixing.in_channels = 2;
  mixing.bias = false;
  const Case cases[] = {
      {single(3, Padding::valid()), 1, x4, diff, {0.5}, {-1.5, -1.5}},
      {single(3, Padding::symmetric(1)), 1, x4, diff, {0.5}, {-1.5, -1.5, -1.5, 3.5}},
      // xpad = 3 2 | 1 2 3 4 | 3 2
      {single(3, Padding::symmetric(2), PaddingMode::reflect),
       1,
       x4,
       diff,
       {0},
       {2, 0, -2, -2, 0, 2}},
      // xpad = 1 1 | 1 2 3 4 | 4 4
      {single(3, Padding::symmetric(2), PaddingMode::replicate),
       1,
       x4,
       diff,
       {0},
       {0, -1, -2, -2, -1, 0}},
      // xpad = 3 4 | 1 2 3 4 | 1 2
      {single(3, Padding::symmetric(2), PaddingMode::circular),
       1,
       x4,
       diff,
       {0},
       {2, 2, -2, -2, 2, 2}},
      // xpad = 1 2 3 4 | 0 0
      {single(3, Padding::asymmetric(0, 2)), 1, x4, diff, {0}, {-2, -2, 3, 4}},
      {single(3, Padding::causal()), 1, x4, diff, {0}, {-1, -2, -2, -2}},
      {dilated, 1, {1, 2, 3, 4, 5, 6, 7}, {1, 1}, {}, {4, 8, 12}},
      {grouped, 1, {1, 2, 3, 10, 20, 30}, {2, 3}, {0, 1}, {2, 4, 6, 31, 61, 91}},
      // y = x0[l] + 2 x0[l+1] + 3 x1[l] + 4 x1[l+1], two batches
      {mixing, 2, {1, 2, 3, 1, 1, 1, 0, 0, 1, 2, 0, 0}, {1, 2, 3, 4}, {}, {12, 15, 6, 2}},
  };
  for (const Case& c : cases) {
    const int64_t length = static_cast<int64_t>(c.input.size()) / c.batch / c.params.in_channels;
    const Problem p = Problem::make(c.params, c.batch, length, DType::f64);
    EXPECT_EQ(run_forward(p, c.input, c.weight, c.bias), c.expected) << p.to_string();
  }
}

// A random valid problem in float64, drawn from every parameter.
Problem random_problem(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (;;) {
    ConvParams p;
    p.groups = pick(1, 3);
    p.in_channels = p.groups * pick(1, 3);
    p.out_channels = p.groups * pick(1, 3);
    p.kernel_size = pick(1, 5);
    p.stride = pick(1, 3);
    p.dilation = pick(1, 3);
    p.bias = pick(0, 1) == 1;
    p.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    p.padding = pick(0, 3) == 0 && p.stride == 1 ? Padding::same()
                                                 : Padding::asymmetric(pick(0, 3), pick(0, 3));
    try {
      return Problem::make(p, pick(1, 2), pick(1, 12), DType::f64);
    } catch (const Error&) {
      // Drew an invalid combination (e.g. kernel wider than input): redraw.
    }
  }
}

// d(sum(y * r))/dx by central differences; the loss is linear in x (and in
// w), so the quotient is exact up to rounding.
TEST(Reference, BackwardMatchesFiniteDifferences) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    const Problem p = random_problem(rng);
    const int64_t out_length = p.out_length();
    std::vector<double> x(static_cast<size_t>(p.batch * p.in_channels * p.length));
    std::vector<double> w(
        static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size));
    std::vector<double> b(p.has_bias ? static_cast<size_t>(p.out_channels) : 0);
    std::vector<double> r(static_cast<size_t>(p.batch * p.out_channels * out_length));
    for (auto* v : {&x, &w, &b, &r}) {
      for (double& e : *v) e = value(rng);
    }
    auto loss = [&] {
      const auto y = run_forward(p, x, w, b);
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
      return sum;
    };
    std::vector<double> gx(x.size()), gw(w.size()), gb(b.size());
    const auto gy =
        TensorRef<const double>::contiguous(r.data(), p.batch, p.out_channels, out_length);
    reference::backward_data<double>(
        p, gy, w.data(), TensorRef<double>::contiguous(gx.data(), p.batch, p.in_channels, p.length),
        1);
    reference::backward_weight<double>(
        p, TensorRef<const double>::contiguous(x.data(), p.batch, p.in_channels, p.length), gy,
        gw.data(), p.has_bias ? gb.data() : nullptr, 1);
    const double h = 1e-6;
    auto check = [&](std::vector<double>& values, const std::vector<double>& grads,
                     const char* what) {
      for (size_t i = 0; i < values.size(); ++i) {
        const double saved = values[i];
        values[i] = saved + h;
        const double up = loss();
        values[i] = saved - h;
        const double down = loss();
        values[i] = saved;
        EXPECT_NEAR(grads[i], (up - down) / (2 * h), 1e-7)
            << what << "[" << i << "] of " << p.to_string();
      }
    };
    check(x, gx, "grad_input");
    check(w, gw, "grad_weight");
    check(b, gb, "grad_bias");
  }
}

// Channels-last and non-contiguous views give the same numbers as NCL.
TEST(Reference, StridedViewsAgree) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  for (int trial = 0; trial < 50; ++trial) {
    const Problem p = random_problem(rng);
    std::vector<double> x(static_cast<size_t>(p.batch * p.in_channels * p.length));
    std::vector<double> w(
        static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size));
    std::vector<double> b(static_cast<size_t>(p.out_channels));
    for (auto* v : {&x, &w, &b}) {
      for (double& e : *v) e = value(rng);
    }
    const auto expected = run_forward(p, x, w, p.has_bias ? b : std::vector<double>{});
    // The same input stored channels-last with every element 3 apart.
    const int64_t gap = 3;
    std::vector<double> spread(x.size() * gap, 99.0);
    TensorRef<double> view{
        spread.data(),      p.batch, p.in_channels, p.length, p.length * p.in_channels * gap, gap,
        p.in_channels * gap};
    for (int64_t n = 0; n < p.batch; ++n) {
      for (int64_t c = 0; c < p.in_channels; ++c) {
        for (int64_t l = 0; l < p.length; ++l) {
          view.at(n, c, l) = x[static_cast<size_t>((n * p.in_channels + c) * p.length + l)];
        }
      }
    }
    std::vector<double> y(expected.size());
    reference::forward<double>(p, view, w.data(), p.has_bias ? b.data() : nullptr,
                               TensorRef<double>::contiguous(y.data(), p.batch, p.out_channels,
                                                             p.out_length(), Layout::nlc),
                               2);
    for (int64_t n = 0; n < p.batch; ++n) {
      for (int64_t c = 0; c < p.out_channels; ++c) {
        for (int64_t l = 0; l < p.out_length(); ++l) {
          EXPECT_EQ(y[static_cast<size_t>((n * p.out_length() + l) * p.out_channels + c)],
                    expected[static_cast<size_t>((n * p.out_channels + c) * p.out_length() + l)])
              << p.to_string();
        }
      }
    }
  }
}

}  // namespace
}  // namespace conv1d
