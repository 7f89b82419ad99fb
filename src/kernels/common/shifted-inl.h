// The residues of a stride = dilation = 1 row shifted out of whole vector
// loads, shared by the depthwise and the fused separable kernels, compiled
// once per Highway target: include it after hwy/foreach_target.h and
// hwy/highway.h (per-target include guard, as Highway's own -inl.h headers
// do).
//
// For up to 2N taps (N lanes), a block of J output vectors loads the J + 2
// input vectors under it once; the input at residue r (x[m*N + r ..]) is
// shifted out of two of them (valignd/valignq) rather than loaded
// unaligned, since every such load splits a cache line and split loads run
// at about half a load per cycle. The residue-r vector at step m feeds tap
// r of output vector m and tap r + N of output vector m - 1. Sums run with
// the residues ascending and the taps of a residue ascending.
#if defined(CONV1D_KERNELS_COMMON_SHIFTED_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONV1D_KERNELS_COMMON_SHIFTED_INL_H_
#undef CONV1D_KERNELS_COMMON_SHIFTED_INL_H_
#else
#define CONV1D_KERNELS_COMMON_SHIFTED_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/common/registers-inl.h"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::common {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
using Vec = hn::Vec<D>;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kShiftedRows = true;
template <int R>
HWY_INLINE Vec<hn::ScalableTag<float>> ShiftLanes(hn::ScalableTag<float>,
                                                  Vec<hn::ScalableTag<float>> lo,
                                                  Vec<hn::ScalableTag<float>> hi) {
  lo.raw = _mm512_castsi512_ps(
      _mm512_alignr_epi32(_mm512_castps_si512(hi.raw), _mm512_castps_si512(lo.raw), R));
  return lo;
}
template <int R>
HWY_INLINE Vec<hn::ScalableTag<double>> ShiftLanes(hn::ScalableTag<double>,
                                                   Vec<hn::ScalableTag<double>> lo,
                                                   Vec<hn::ScalableTag<double>> hi) {
  lo.raw = _mm512_castsi512_pd(
      _mm512_alignr_epi64(_mm512_castpd_si512(hi.raw), _mm512_castpd_si512(lo.raw), R));
  return lo;
}

// The residues (bits) of one-tap rows that are loaded rather than shifted:
// a residue with one tap (K < 2N) costs a shift per FMA, so these share the
// work between the shuffle and the load units. 3, 7, 11, 15 measured 2-6%
// faster than 1, 5, 9, 13, than every odd residue or than none (K = 9, 13,
// 31).
constexpr unsigned kLoadedResidues = 0x8888;
// x[m*N + R .. + N) from whole[m] = x[m*N ..] and whole[m + 1].
template <size_t R, bool kLoad, class D, class T>
HWY_INLINE Vec<D> ResidueVector(D d, Vec<D> lo, Vec<D> hi, const T* x) {
  if constexpr (R == 0) {
    return lo;
  } else if constexpr (kLoad) {
    Vec<D> v = hn::LoadU(d, x + R);
    KeepInRegister(v);
    return v;
  } else {
    return ShiftLanes<static_cast<int>(R)>(d, lo, hi);
  }
}

template <size_t J, size_t R, bool kLoad, class D, class T>
HWY_INLINE void ShiftedResidue(D d, Vec<D>* acc, const Vec<D>* whole, const T* x, const T* weight,
                               int64_t K) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  if (static_cast<int64_t>(R) >= K) return;
  const Vec<D> w0 = hn::Set(d, weight[R]);
  if (static_cast<int64_t>(R) + N < K) {
    const Vec<D> w1 = hn::Set(d, weight[R + N]);
    HWY_UNROLL(16)
    for (size_t m = 0; m <= J; ++m) {
      const Vec<D> v = ResidueVector<R, false>(d, whole[m], whole[m + 1], x + m * N);
      if (m < J) acc[m] = hn::MulAdd(w0, v, acc[m]);
      if (m >= 1) acc[m - 1] = hn::MulAdd(w1, v, acc[m - 1]);
    }
  } else {
    HWY_UNROLL(16)
    for (size_t m = 0; m < J; ++m) {
      acc[m] =
          hn::MulAdd(w0, ResidueVector<R, kLoad>(d, whole[m], whole[m + 1], x + m * N), acc[m]);
    }
  }
}
template <size_t J, unsigned kMask, class D, class T, size_t... R>
HWY_INLINE void ShiftedResidues(D d, Vec<D>* acc, const Vec<D>* whole, const T* x, const T* weight,
                                int64_t K, std::index_sequence<R...>) {
  (ShiftedResidue<J, R, ((kMask >> R) & 1) != 0>(d, acc, whole, x, weight, K), ...);
}
#else
constexpr bool kShiftedRows = false;
#endif

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::common
HWY_AFTER_NAMESPACE();

#endif  // CONV1D_KERNELS_COMMON_SHIFTED_INL_H_
