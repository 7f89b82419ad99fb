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
#include <type_traits>

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::common {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// to[p * pitch + i] = from[p + i * stride] for p < phases <= stride,
// i < count, from a row contiguous along the length. Reads stay below
// from + stride * count.
// kStride is 1..4 (de-interleaving loads, whole vectors, then element by
// element) or 0 (any stride, element by element; CopyRowsPhasesAnyStride
// permutes vectors at strides up to kMaxVectorStride instead).
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

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
// Strides past 4 up to this de-interleave with vector permutes.
constexpr int64_t kMaxVectorStride = 8;

// For CopyRowsPhasesPermuted: lane j of phase p is element p + j * kStride
// of the kStride vectors from a block's first position. Pairs of those
// vectors (2q, 2q + 1; the last repeated for odd strides) each feed one
// two-table permute: index[p][q] holds the lanes' indices in pair q,
// mask[p][q] the lanes of phase p that pair q holds, and holds[p][q]
// whether there are any.
//
// AVX2 has no two-table permute: each table is permuted by the low three
// bits of a 32-bit index, and bit 3 picks between them; float64 lanes are
// permuted as pairs of 32-bit lanes (indices 2j, 2j + 1), and masks are
// vectors of all-ones or zero 32-bit lanes. AVX-512 indices have the lane
// type's width, and its masks are bits.
template <int64_t kStride, int64_t kLanes>
struct PermuteTable {
  static constexpr int64_t kPairs = (kStride + 1) / 2;
#if HWY_TARGET == HWY_AVX2
  static constexpr int64_t kWords = 8 / kLanes;  // 32-bit words per lane
  int32_t index[kStride][kPairs][8] = {};
  int32_t mask[kStride][kPairs][8] = {};
  constexpr void Set(int64_t p, int64_t pair, int64_t j, int64_t at) {
    for (int64_t w = 0; w < kWords; ++w) {
      index[p][pair][j * kWords + w] = static_cast<int32_t>(at * kWords + w);
      mask[p][pair][j * kWords + w] = -1;
    }
  }
#else
  using Index = std::conditional_t<kLanes == 16, int32_t, int64_t>;
  Index index[kStride][kPairs][kLanes] = {};
  uint32_t mask[kStride][kPairs] = {};
  constexpr void Set(int64_t p, int64_t pair, int64_t j, int64_t at) {
    index[p][pair][j] = static_cast<Index>(at);
    mask[p][pair] |= 1u << j;
  }
#endif
  bool holds[kStride][kPairs] = {};
  constexpr PermuteTable() {
    for (int64_t p = 0; p < kStride; ++p) {
      for (int64_t j = 0; j < kLanes; ++j) {
        const int64_t element = p + j * kStride;
        const int64_t pair = element / (2 * kLanes);
        Set(p, pair, j, element % (2 * kLanes));
        holds[p][pair] = true;
      }
    }
  }
};

#if HWY_TARGET == HWY_AVX2
HWY_INLINE __m256 Permute2(__m256 a, const int32_t* index, __m256 b) {
  const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));
  const __m256 from_b = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, i), _mm256_permutevar8x32_ps(b, i), from_b);
}
HWY_INLINE __m256d Permute2(__m256d a, const int32_t* index, __m256d b) {
  return _mm256_castps_pd(Permute2(_mm256_castpd_ps(a), index, _mm256_castpd_ps(b)));
}
HWY_INLINE __m256 Merge(const int32_t* mask, __m256 into, __m256 from) {
  const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask));
  return _mm256_blendv_ps(into, from, _mm256_castsi256_ps(m));
}
HWY_INLINE __m256d Merge(const int32_t* mask, __m256d into, __m256d from) {
  return _mm256_castps_pd(Merge(mask, _mm256_castpd_ps(into), _mm256_castpd_ps(from)));
}
#else
HWY_INLINE __m512 Permute2(__m512 a, const int32_t* index, __m512 b) {
  return _mm512_permutex2var_ps(a, _mm512_loadu_si512(index), b);
}
HWY_INLINE __m512d Permute2(__m512d a, const int64_t* index, __m512d b) {
  return _mm512_permutex2var_pd(a, _mm512_loadu_si512(index), b);
}
HWY_INLINE __m512 Merge(uint32_t mask, __m512 into, __m512 from) {
  return _mm512_mask_blend_ps(static_cast<__mmask16>(mask), into, from);
}
HWY_INLINE __m512d Merge(uint32_t mask, __m512d into, __m512d from) {
  return _mm512_mask_blend_pd(static_cast<__mmask8>(mask), into, from);
}
#endif

// CopyRowsPhases at a stride of 5 to kMaxVectorStride: per block of
// `lanes` positions, kStride loads and per phase one permute per pair of
// the loaded vectors, with constant indices and masks (element by element
// such rows took four times as long as at stride 4: 512 -> 24 channels,
// K = 7, stride 5).
template <int64_t kStride, class T>
void CopyRowsPhasesPermuted(const T* HWY_RESTRICT from, int64_t from_pitch, int64_t rows,
                            int64_t phases, int64_t count, int64_t pitch, T* HWY_RESTRICT to,
                            int64_t to_pitch) {
  const hn::ScalableTag<T> d;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  using Table = PermuteTable<kStride, N>;
  static constexpr Table kTable{};
  constexpr int64_t kPairs = Table::kPairs;
  const int64_t whole = count / N * N;
  for (int64_t r = 0; r < rows; ++r) {
    const T* HWY_RESTRICT row = from + r * from_pitch;
    T* HWY_RESTRICT out = to + r * to_pitch;
    for (int64_t i = 0; i < whole; i += N) {
      const T* HWY_RESTRICT at = row + i * kStride;
      decltype(hn::Zero(d).raw) v[2 * kPairs];
      HWY_UNROLL(8)
      for (int64_t k = 0; k < kStride; ++k) v[k] = hn::LoadU(d, at + k * N).raw;
      if constexpr (kStride % 2 != 0) v[kStride] = v[kStride - 1];
      HWY_UNROLL(8)
      for (int64_t p = 0; p < kStride; ++p) {
        if (p >= phases) break;
        auto gathered = Permute2(v[0], kTable.index[p][0], v[1]);
        HWY_UNROLL(4)
        for (int64_t q = 1; q < kPairs; ++q) {
          if (!kTable.holds[p][q]) continue;
          gathered = Merge(kTable.mask[p][q], gathered,
                           Permute2(v[2 * q], kTable.index[p][q], v[2 * q + 1]));
        }
        hn::StoreU(hn::Vec<decltype(d)>{gathered}, d, out + p * pitch + i);
      }
    }
    CopyPhases<0>(row + whole * kStride, kStride, phases, count - whole, pitch, out + whole);
  }
}
#else
constexpr int64_t kMaxVectorStride = 4;
#endif

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
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
    case 5:
      return CopyRowsPhasesPermuted<5>(from, from_pitch, rows, phases, count, pitch, to, to_pitch);
    case 6:
      return CopyRowsPhasesPermuted<6>(from, from_pitch, rows, phases, count, pitch, to, to_pitch);
    case 7:
      return CopyRowsPhasesPermuted<7>(from, from_pitch, rows, phases, count, pitch, to, to_pitch);
    case 8:
      return CopyRowsPhasesPermuted<8>(from, from_pitch, rows, phases, count, pitch, to, to_pitch);
#endif
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
