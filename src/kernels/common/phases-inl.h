// De-interleaving an input row into its stride phases, shared by the direct
// and the depthwise kernels, compiled once per Highway target: include it
// after hwy/foreach_target.h and hwy/highway.h (per-target include guard, as
// Highway's own -inl.h headers do).
#if defined(CONV1D_KERNELS_COMMON_PHASES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONV1D_KERNELS_COMMON_PHASES_INL_H_
#undef CONV1D_KERNELS_COMMON_PHASES_INL_H_
#else
#define CONV1D_KERNELS_COMMON_PHASES_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::common {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// to[p * pitch + i] = from[p + i * stride] for p < phases, i < count, from a
// row contiguous along the length. Reads stay below from + stride * count.
// kStride is 1..4 (de-interleaving loads, whole vectors, then element by
// element) or 0 (any stride, element by element).
template <int64_t kStride, class T>
HWY_INLINE void CopyPhases(const T* HWY_RESTRICT from, int64_t stride, int64_t phases,
                           int64_t count, int64_t pitch, T* HWY_RESTRICT to) {
  int64_t i = 0;
  if constexpr (kStride != 0) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<int64_t>(hn::Lanes(d));
    using V = hn::Vec<decltype(d)>;
    // Phases past `phases` are loaded and dropped.
    V v[4];
    for (; i + lanes <= count; i += lanes) {
      const T* HWY_RESTRICT at = from + i * kStride;
      if constexpr (kStride == 1) {
        v[0] = hn::LoadU(d, at);
      } else if constexpr (kStride == 2) {
        hn::LoadInterleaved2(d, at, v[0], v[1]);
      } else if constexpr (kStride == 3) {
        hn::LoadInterleaved3(d, at, v[0], v[1], v[2]);
      } else {
        hn::LoadInterleaved4(d, at, v[0], v[1], v[2], v[3]);
      }
      for (int64_t p = 0; p < phases; ++p) hn::StoreU(v[p], d, to + p * pitch + i);
    }
  }
  for (int64_t p = 0; p < phases; ++p) {
    for (int64_t j = i; j < count; ++j) to[p * pitch + j] = from[p + j * stride];
  }
}

// CopyPhases for each of `rows` rows, from + r * from_pitch to
// to + r * to_pitch, with one call and one dispatch on the stride for all:
// a tile's rows are a few vectors each, and a call per row spent as long
// in the call as in the copy.
template <int64_t kStride, class T>
void CopyRowsPhases(const T* HWY_RESTRICT from, int64_t from_pitch, int64_t rows, int64_t stride,
                    int64_t phases, int64_t count, int64_t pitch, T* HWY_RESTRICT to,
                    int64_t to_pitch) {
  for (int64_t r = 0; r < rows; ++r) {
    CopyPhases<kStride>(from + r * from_pitch, stride, phases, count, pitch, to + r * to_pitch);
  }
}

template <class T>
void CopyRowsPhasesAnyStride(const T* HWY_RESTRICT from, int64_t from_pitch, int64_t rows,
                             int64_t stride, int64_t phases, int64_t count, int64_t pitch,
                             T* HWY_RESTRICT to, int64_t to_pitch) {
  switch (stride) {
    case 1:
      return CopyRowsPhases<1>(from, from_pitch, rows, stride, phases, count, pitch, to, to_pitch);
    case 2:
      return CopyRowsPhases<2>(from, from_pitch, rows, stride, phases, count, pitch, to, to_pitch);
    case 3:
      return CopyRowsPhases<3>(from, from_pitch, rows, stride, phases, count, pitch, to, to_pitch);
    case 4:
      return CopyRowsPhases<4>(from, from_pitch, rows, stride, phases, count, pitch, to, to_pitch);
    default:
      return CopyRowsPhases<0>(from, from_pitch, rows, stride, phases, count, pitch, to, to_pitch);
  }
}

template <class T>
void CopyPhasesAnyStride(const T* HWY_RESTRICT from, int64_t stride, int64_t phases, int64_t count,
                         int64_t pitch, T* HWY_RESTRICT to) {
  CopyRowsPhasesAnyStride(from, 0, 1, stride, phases, count, pitch, to, 0);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::common
HWY_AFTER_NAMESPACE();

#endif  // CONV1D_KERNELS_COMMON_PHASES_INL_H_
