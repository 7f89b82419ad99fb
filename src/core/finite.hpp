// Whether values are finite and below a power of two in magnitude, read
// from their bits: an integer count that compilers vectorise, where a
// floating-point test per element would not be.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace conv1d::core {

template <class T>
struct FloatBits {
  static_assert(std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static constexpr int kMantissaBits = std::numeric_limits<T>::digits - 1;
  static constexpr int kBias = std::numeric_limits<T>::max_exponent - 1;
  static constexpr Bits kMagnitude = ~Bits{0} >> 1;
  // The bits of 2^exponent; of +Inf from max_exponent on, so that a bound
  // beyond the finite range still rejects Inf and NaN (whose magnitude bits
  // are those of Inf and above); 0 below the normal range, which no value
  // is below.
  static constexpr Bits power_of_two(int exponent) {
    if (exponent >= std::numeric_limits<T>::max_exponent)
      return Bits{2 * kBias + 1} << kMantissaBits;
    if (exponent + kBias < 1) return 0;
    return static_cast<Bits>(exponent + kBias) << kMantissaBits;
  }
};

// Every |value| < 2^exponent (so none is Inf or NaN); count values, stride
// elements apart.
template <class T>
bool magnitudes_below(const T* data, int64_t count, int64_t stride, int exponent) {
  using Bits = typename FloatBits<T>::Bits;
  const Bits limit = FloatBits<T>::power_of_two(exponent);
  Bits beyond = 0;
  if (stride == 1) {
    for (int64_t i = 0; i < count; ++i) {
      Bits bits;
      std::memcpy(&bits, data + i, sizeof(bits));
      beyond += (bits & FloatBits<T>::kMagnitude) >= limit ? 1 : 0;
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      Bits bits;
      std::memcpy(&bits, data + i * stride, sizeof(bits));
      beyond += (bits & FloatBits<T>::kMagnitude) >= limit ? 1 : 0;
    }
  }
  return beyond == 0;
}

// Every element of a view, along its contiguous dimension when it has one.
template <class T>
bool magnitudes_below(const TensorRef<const T>& t, int exponent) {
  const bool by_channel = t.length_stride != 1 && t.channel_stride == 1;
  const int64_t rows = by_channel ? t.length : t.channels;
  const int64_t row_stride = by_channel ? t.length_stride : t.channel_stride;
  const int64_t count = by_channel ? t.channels : t.length;
  const int64_t step = by_channel ? 1 : t.length_stride;
  for (int64_t n = 0; n < t.batch; ++n) {
    for (int64_t r = 0; r < rows; ++r) {
      if (!magnitudes_below(t.data + n * t.batch_stride + r * row_stride, count, step, exponent)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace conv1d::core
