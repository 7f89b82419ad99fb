// In-register transpose of an N x N block (N = lanes of the target's full
// vector), shared by the depthwise and direct kernels to move NCL data in
// and out of channel vectors, compiled once per Highway target: include it
// after hwy/foreach_target.h and hwy/highway.h (per-target include guard, as
// Highway's own -inl.h headers do).
#if defined(CONV1D_KERNELS_COMMON_TRANSPOSE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONV1D_KERNELS_COMMON_TRANSPOSE_INL_H_
#undef CONV1D_KERNELS_COMMON_TRANSPOSE_INL_H_
#else
#define CONV1D_KERNELS_COMMON_TRANSPOSE_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::common {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
using Vec = hn::Vec<D>;

// r[i] holds row i on entry and column i on return.

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
HWY_INLINE void Transpose(hn::ScalableTag<float>, Vec<hn::ScalableTag<float>>* r) {
  __m512 t[16];
  HWY_UNROLL(16)
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i].raw, r[i + 1].raw);
    t[i + 1] = _mm512_unpackhi_ps(r[i].raw, r[i + 1].raw);
  }
  __m512 u[16];
  HWY_UNROLL(16)
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), e = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  // u[4c + q] holds column 4b + q of rows 4c..4c+3 in 128-bit block b.
  HWY_UNROLL(16)
  for (int q = 0; q < 4; ++q) {
    t[q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);
    t[q + 4] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
    t[q + 8] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
    t[q + 12] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
  }
  HWY_UNROLL(16)
  for (int q = 0; q < 4; ++q) {
    r[q].raw = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
    r[q + 4].raw = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xDD);
    r[q + 8].raw = _mm512_shuffle_f32x4(t[q + 4], t[q + 12], 0x88);
    r[q + 12].raw = _mm512_shuffle_f32x4(t[q + 4], t[q + 12], 0xDD);
  }
}
HWY_INLINE void Transpose(hn::ScalableTag<double>, Vec<hn::ScalableTag<double>>* r) {
  __m512d t[8];
  HWY_UNROLL(16)
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_pd(r[i].raw, r[i + 1].raw);
    t[i + 1] = _mm512_unpackhi_pd(r[i].raw, r[i + 1].raw);
  }
  // t[2a + q] holds column 2b + q of rows 2a..2a+1 in 128-bit block b.
  __m512d s[8];
  HWY_UNROLL(16)
  for (int q = 0; q < 2; ++q) {
    s[q] = _mm512_shuffle_f64x2(t[q], t[2 + q], 0x44);
    s[q + 2] = _mm512_shuffle_f64x2(t[q], t[2 + q], 0xEE);
    s[q + 4] = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0x44);
    s[q + 6] = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0xEE);
  }
  HWY_UNROLL(16)
  for (int q = 0; q < 2; ++q) {
    r[q].raw = _mm512_shuffle_f64x2(s[q], s[q + 4], 0x88);
    r[q + 2].raw = _mm512_shuffle_f64x2(s[q], s[q + 4], 0xDD);
    r[q + 4].raw = _mm512_shuffle_f64x2(s[q + 2], s[q + 6], 0x88);
    r[q + 6].raw = _mm512_shuffle_f64x2(s[q + 2], s[q + 6], 0xDD);
  }
}
#elif HWY_TARGET == HWY_AVX2
HWY_INLINE void Transpose(hn::ScalableTag<float>, Vec<hn::ScalableTag<float>>* r) {
  __m256 t[8];
  HWY_UNROLL(16)
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i].raw, r[i + 1].raw);
    t[i + 1] = _mm256_unpackhi_ps(r[i].raw, r[i + 1].raw);
  }
  __m256 u[8];
  HWY_UNROLL(16)
  for (int i = 0; i < 8; i += 4) {
    const __m256d a = _mm256_castps_pd(t[i]), b = _mm256_castps_pd(t[i + 1]);
    const __m256d c = _mm256_castps_pd(t[i + 2]), e = _mm256_castps_pd(t[i + 3]);
    u[i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
    u[i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
    u[i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, e));
    u[i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, e));
  }
  HWY_UNROLL(16)
  for (int q = 0; q < 4; ++q) {
    r[q].raw = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
    r[q + 4].raw = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
  }
}
HWY_INLINE void Transpose(hn::ScalableTag<double>, Vec<hn::ScalableTag<double>>* r) {
  __m256d t[4];
  HWY_UNROLL(16)
  for (int i = 0; i < 4; i += 2) {
    t[i] = _mm256_unpacklo_pd(r[i].raw, r[i + 1].raw);
    t[i + 1] = _mm256_unpackhi_pd(r[i].raw, r[i + 1].raw);
  }
  HWY_UNROLL(16)
  for (int q = 0; q < 2; ++q) {
    r[q].raw = _mm256_permute2f128_pd(t[q], t[2 + q], 0x20);
    r[q + 2].raw = _mm256_permute2f128_pd(t[q], t[2 + q], 0x31);
  }
}
#elif HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3
HWY_INLINE void Transpose(hn::ScalableTag<float>, Vec<hn::ScalableTag<float>>* r) {
  const __m128 t0 = _mm_unpacklo_ps(r[0].raw, r[1].raw);
  const __m128 t1 = _mm_unpackhi_ps(r[0].raw, r[1].raw);
  const __m128 t2 = _mm_unpacklo_ps(r[2].raw, r[3].raw);
  const __m128 t3 = _mm_unpackhi_ps(r[2].raw, r[3].raw);
  r[0].raw = _mm_movelh_ps(t0, t2);
  r[1].raw = _mm_movehl_ps(t2, t0);
  r[2].raw = _mm_movelh_ps(t1, t3);
  r[3].raw = _mm_movehl_ps(t3, t1);
}
HWY_INLINE void Transpose(hn::ScalableTag<double>, Vec<hn::ScalableTag<double>>* r) {
  const __m128d t0 = _mm_unpacklo_pd(r[0].raw, r[1].raw);
  r[1].raw = _mm_unpackhi_pd(r[0].raw, r[1].raw);
  r[0].raw = t0;
}
#else
// Portable: through memory (one lane on HWY_SCALAR: nothing to do).
template <class D>
HWY_INLINE void Transpose(D d, Vec<D>* r) {
  using T = hn::TFromD<D>;
  constexpr size_t N = hn::MaxLanes(D());
  if constexpr (N > 1) {
    HWY_ALIGN T block[N * N];
    for (size_t i = 0; i < N; ++i) hn::Store(r[i], d, block + i * N);
    HWY_ALIGN T column[N];
    for (size_t j = 0; j < N; ++j) {
      for (size_t i = 0; i < N; ++i) column[i] = block[i * N + j];
      r[j] = hn::Load(d, column);
    }
  }
}
#endif

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::common
HWY_AFTER_NAMESPACE();

#endif  // CONV1D_KERNELS_COMMON_TRANSPOSE_INL_H_
