// Shared helpers for tests that run Plans against the reference.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <conv1d/conv1d.hpp>
#include <random>
#include <vector>

#include "reference/reference.hpp"

namespace conv1d::testing {

// Activation storage for a problem's input or output: `gap` elements between
// neighbours (1 = contiguous) in the problem's layout, so views can be
// non-contiguous.
template <class T>
struct Activation {
  std::vector<T> storage;
  TensorRef<T> view;

  Activation(int64_t batch, int64_t channels, int64_t length, Layout layout, int64_t gap = 1)
      : storage(static_cast<size_t>(batch * channels * length * gap + 1), T(-777)) {
    view = TensorRef<T>::contiguous(storage.data(), batch, channels, length, layout);
    view.batch_stride *= gap;
    view.channel_stride *= gap;
    view.length_stride *= gap;
  }
  // The view points into `storage`: moving keeps it valid, copying would not.
  Activation(const Activation&) = delete;
  Activation& operator=(const Activation&) = delete;
  Activation(Activation&&) noexcept = default;
  Activation& operator=(Activation&&) noexcept = default;

  TensorRef<const T> cview() const { return view; }
};

// Integers in [-2, 2]: every partial sum of a convolution of moderate size
// is an exactly representable integer, so any summation order gives the
// reference's answer bit for bit.
template <class T>
void fill_small_integers(std::vector<T>& values, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> digit(-2, 2);
  for (T& v : values) v = static_cast<T>(digit(rng));
}

template <class T>
void fill_small_integers(TensorRef<T> view, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> digit(-2, 2);
  for (int64_t n = 0; n < view.batch; ++n) {
    for (int64_t c = 0; c < view.channels; ++c) {
      for (int64_t l = 0; l < view.length; ++l) view.at(n, c, l) = static_cast<T>(digit(rng));
    }
  }
}

// One of the padding kinds a user can write, drawn for a sweep: 'same'
// (or 'valid' when the stride forbids it), causal, 'valid', or explicit
// left/right amounts up to max_side.
inline Padding draw_padding(std::mt19937_64& rng, int64_t stride, int64_t max_side) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  switch (pick(0, 4)) {
    case 0:
      return stride == 1 ? Padding::same() : Padding::valid();
    case 1:
      return Padding::causal();
    case 2:
      return Padding::valid();
    default: {
      const int64_t left = pick(0, max_side);
      return Padding::asymmetric(left, pick(0, max_side));
    }
  }
}

// What a sweep draws from (draw_problem); the defaults are the algorithm
// sweep's.
struct DrawRanges {
  int64_t depthwise_groups = 40;  // 1..this groups, depth multiplier 1..3
  int64_t grouped_in = 9;         // 2..4 groups of 1..this input channels
  int64_t grouped_out = 9;        // and of 1..this output channels
  // Standard layers: 1..20 channels a side, one time in wide_odds + 1 a
  // count in [wide_min, wide_max] instead.
  int64_t wide_odds = 5;
  std::array<int64_t, 2> wide_in = {30, 34}, wide_out = {30, 34};
  int64_t long_kernel_odds = 9;  // one time in this + 1, K = 10..long_kernel
  int64_t long_kernel = 33;
  int64_t stride_odds = 2;  // one time in this + 1, stride 2..max_stride
  int64_t max_stride = 5;
  int64_t max_dilation = 5;  // one time in 3, dilation 2..this
  // One time in 4, padding on a side up to twice the kernel's span (wider
  // than any tap reaches), else up to 4.
  bool wide_padding = false;
  // The input length; null: 1..300, or one of kEdgeLengths.
  int64_t (*length)(std::mt19937_64&) = nullptr;
};

// Lengths just around the tile widths a kernel is likely to use.
constexpr int64_t kEdgeLengths[] = {1,  2,  3,  5,  7,  8,  9,  15, 16,  17,  31,  32,
                                    33, 47, 48, 49, 63, 64, 65, 97, 127, 128, 129, 257};

// A valid problem of every kind (depthwise, grouped, standard), padding
// form and mode, stride, dilation, bias, dtype and layout, batch 1..3.
inline Problem draw_problem(std::mt19937_64& rng, const DrawRanges& r = {}) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (;;) {
    ConvParams p;
    switch (pick(0, 3)) {
      case 0:  // depthwise, with a depth multiplier
        p.groups = pick(1, r.depthwise_groups);
        p.in_channels = p.groups;
        p.out_channels = p.groups * pick(1, 3);
        break;
      case 1:  // grouped
        p.groups = pick(2, 4);
        p.in_channels = p.groups * pick(1, r.grouped_in);
        p.out_channels = p.groups * pick(1, r.grouped_out);
        break;
      default:  // standard, channel counts around register-block sizes
        p.in_channels = pick(0, r.wide_odds) == 0 ? pick(r.wide_in[0], r.wide_in[1]) : pick(1, 20);
        p.out_channels =
            pick(0, r.wide_odds) == 0 ? pick(r.wide_out[0], r.wide_out[1]) : pick(1, 20);
    }
    p.kernel_size = pick(0, r.long_kernel_odds) == 0 ? pick(10, r.long_kernel) : pick(1, 9);
    p.stride = pick(0, r.stride_odds) == 0 ? pick(2, r.max_stride) : 1;
    p.dilation = pick(0, 2) == 0 ? pick(2, r.max_dilation) : 1;
    p.bias = pick(0, 3) != 0;
    p.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    const int64_t max_side =
        r.wide_padding && pick(0, 3) == 0 ? 2 * (p.kernel_size - 1) * p.dilation + 3 : 4;
    p.padding = draw_padding(rng, p.stride, max_side);
    const int64_t length = r.length != nullptr ? r.length(rng)
                           : pick(0, 2) == 0   ? pick(1, 300)
                                               : kEdgeLengths[pick(0, 23)];
    const DType dtype = pick(0, 4) == 0 ? DType::f64 : DType::f32;
    const Layout layout = pick(0, 1) == 0 ? Layout::ncl : Layout::nlc;
    try {
      return Problem::make(p, pick(1, 3), length, dtype, layout);
    } catch (const Error&) {
      // Invalid combination (kernel wider than the input, reflect too wide): redraw.
    }
  }
}

// Inputs, weights and the reference output for one problem.
template <class T>
struct Workload {
  Problem problem;
  Activation<T> input;
  std::vector<T> weight;
  std::vector<T> bias;
  Activation<T> expected;

  Workload(const Problem& p, std::mt19937_64& rng, int64_t gap = 1)
      : problem(p),
        input(p.batch, p.in_channels, p.length, p.layout, gap),
        weight(static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size)),
        bias(p.has_bias ? static_cast<size_t>(p.out_channels) : 0),
        expected(p.batch, p.out_channels, p.out_length(), p.layout) {
    fill_small_integers(input.view, rng);
    fill_small_integers(weight, rng);
    fill_small_integers(bias, rng);
    reference::forward<T>(p, input.cview(), weight.data(), bias_data(), expected.view, 1);
  }
  const T* bias_data() const { return bias.empty() ? nullptr : bias.data(); }
  Activation<T> output(int64_t gap = 1) const {
    return Activation<T>(problem.batch, problem.out_channels, problem.out_length(), problem.layout,
                         gap);
  }
};

// Number of elements of `actual` that differ from `expected` (same logical
// shape, any strides); NaN matches NaN.
template <class T>
int64_t count_mismatches(TensorRef<const T> actual, TensorRef<const T> expected) {
  int64_t mismatches = 0;
  for (int64_t n = 0; n < actual.batch; ++n) {
    for (int64_t c = 0; c < actual.channels; ++c) {
      for (int64_t l = 0; l < actual.length; ++l) {
        const T a = actual.at(n, c, l);
        const T e = expected.at(n, c, l);
        if (a != e && !(std::isnan(a) && std::isnan(e))) ++mismatches;
      }
    }
  }
  return mismatches;
}

// Largest |actual - expected| (one batch or more, any layout).
template <class T>
double max_error(TensorRef<const T> actual, TensorRef<const T> expected) {
  double worst = 0;
  for (int64_t n = 0; n < actual.batch; ++n) {
    for (int64_t c = 0; c < actual.channels; ++c) {
      for (int64_t l = 0; l < actual.length; ++l) {
        worst = std::max(worst, std::abs(static_cast<double>(actual.at(n, c, l)) -
                                         static_cast<double>(expected.at(n, c, l))));
      }
    }
  }
  return worst;
}

}  // namespace conv1d::testing
