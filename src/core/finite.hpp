// Whether values are finite (no Inf, no NaN), read from their exponent
// bits: an integer count that compilers vectorise, where a floating-point
// test per element would not be.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace conv1d::core {

template <class T>
bool all_finite(const T* data, int64_t count, int64_t stride = 1) {
  static_assert(std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  // All exponent bits set: Inf or NaN.
  constexpr Bits kExponent = static_cast<Bits>(sizeof(T) == 4 ? 0x7f800000u : 0x7ff0000000000000u);
  Bits non_finite = 0;
  if (stride == 1) {
    for (int64_t i = 0; i < count; ++i) {
      Bits bits;
      std::memcpy(&bits, data + i, sizeof(bits));
      non_finite += (bits & kExponent) == kExponent ? 1 : 0;
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      Bits bits;
      std::memcpy(&bits, data + i * stride, sizeof(bits));
      non_finite += (bits & kExponent) == kExponent ? 1 : 0;
    }
  }
  return non_finite == 0;
}

// Every element of a view, along its contiguous dimension when it has one.
template <class T>
bool all_finite(const TensorRef<const T>& t) {
  const bool by_channel = t.length_stride != 1 && t.channel_stride == 1;
  const int64_t rows = by_channel ? t.length : t.channels;
  const int64_t row_stride = by_channel ? t.length_stride : t.channel_stride;
  const int64_t count = by_channel ? t.channels : t.length;
  const int64_t step = by_channel ? 1 : t.length_stride;
  for (int64_t n = 0; n < t.batch; ++n) {
    for (int64_t r = 0; r < rows; ++r) {
      if (!all_finite(t.data + n * t.batch_stride + r * row_stride, count, step)) return false;
    }
  }
  return true;
}

}  // namespace conv1d::core
