// Shared helpers for tests that run Plans against the reference.
#pragma once

#include <algorithm>
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
