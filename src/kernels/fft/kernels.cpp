// Per-ISA code of the FFT algorithm, compiled once per Highway target
// (hwy/foreach_target.h re-includes this file). Serial: the executor in
// algorithm.cpp owns the task grid and the threads. Every vector lane is an
// independent transform, so all arithmetic is lane-wise and a lane's result
// does not depend on what the other lanes hold.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/fft/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/highway.h>

#include <algorithm>
#include <array>
#include <utility>

#include "core/padding.hpp"
#include "kernels/common/transpose-inl.h"
#include "kernels/fft/fft.hpp"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::fft {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using ::conv1d::kernels::common::HWY_NAMESPACE::Transpose;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Product register tile: 4 blocks x 2 output panels = 16 accumulators + 4
// weight vectors + 2 broadcasts of 32 registers; 12 loads per 32 FMAs.
constexpr size_t kBlockTile = 4;
constexpr size_t kPanelTile = 2;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr size_t kBlockTile = 2;
constexpr size_t kPanelTile = 2;
#else
// 16 registers: 8 accumulators + 4 weight vectors + 2 broadcasts.
constexpr size_t kBlockTile = 2;
constexpr size_t kPanelTile = 2;
#endif

// One transform: rows of [re V | im V], row r at rows + r * 2V. Stages are
// fused in pairs (radix 2^2: four rows in registers, the same arithmetic as
// two radix-2 stages) to halve the passes over the rows.

template <class D, class V = hn::Vec<D>>
struct Complex {
  V re, im;
};

template <class D>
HWY_INLINE Complex<D> LoadRow(D d, const hn::TFromD<D>* HWY_RESTRICT row) {
  return {hn::Load(d, row), hn::Load(d, row + hn::Lanes(d))};
}
template <class D>
HWY_INLINE void StoreRow(D d, const Complex<D>& z, hn::TFromD<D>* HWY_RESTRICT row) {
  hn::Store(z.re, d, row);
  hn::Store(z.im, d, row + hn::Lanes(d));
}
template <class D>
HWY_INLINE Complex<D> Add(const Complex<D>& a, const Complex<D>& b) {
  return {hn::Add(a.re, b.re), hn::Add(a.im, b.im)};
}
template <class D>
HWY_INLINE Complex<D> Sub(const Complex<D>& a, const Complex<D>& b) {
  return {hn::Sub(a.re, b.re), hn::Sub(a.im, b.im)};
}
// a * w, w = twiddle (t_re, t_im) broadcast.
template <class D>
HWY_INLINE Complex<D> Rotate(D d, const Complex<D>& a, hn::TFromD<D> t_re, hn::TFromD<D> t_im) {
  const auto wr = hn::Set(d, t_re), wi = hn::Set(d, t_im);
  return {hn::MulSub(a.re, wr, hn::Mul(a.im, wi)), hn::MulAdd(a.re, wi, hn::Mul(a.im, wr))};
}
// a * conj(w).
template <class D>
HWY_INLINE Complex<D> RotateBack(D d, const Complex<D>& a, hn::TFromD<D> t_re, hn::TFromD<D> t_im) {
  const auto wr = hn::Set(d, t_re), wi = hn::Set(d, t_im);
  return {hn::MulAdd(a.re, wr, hn::Mul(a.im, wi)), hn::MulSub(a.im, wr, hn::Mul(a.re, wi))};
}

// Decimation in frequency, natural order in, bit-reversed order out. The
// stage pairing rows h apart maps (a, b) to (a + b, (a - b) w_h^t).
template <class T>
void ForwardTransform(const Args<T>& a, T* HWY_RESTRICT rows) {
  const hn::ScalableTag<T> d;
  const int64_t pitch = 2 * static_cast<int64_t>(hn::Lanes(d));
  const int64_t half = a.geometry->half;
  const T* HWY_RESTRICT tw_re = a.twiddle_re;
  const T* HWY_RESTRICT tw_im = a.twiddle_im;
  int64_t h = half / 2;
  for (; h >= 2; h /= 4) {
    // Stages h = 2q and q together.
    const int64_t q = h / 2;
    for (int64_t j = 0; j < half; j += 4 * q) {
      for (int64_t t = 0; t < q; ++t) {
        T* HWY_RESTRICT r = rows + (j + t) * pitch;
        const auto r0 = LoadRow(d, r), r1 = LoadRow(d, r + q * pitch);
        const auto r2 = LoadRow(d, r + 2 * q * pitch), r3 = LoadRow(d, r + 3 * q * pitch);
        const auto a0 = Add(r0, r2), a1 = Add(r1, r3);
        const auto a2 = Rotate(d, Sub(r0, r2), tw_re[h - 1 + t], tw_im[h - 1 + t]);
        const auto a3 = Rotate(d, Sub(r1, r3), tw_re[h - 1 + t + q], tw_im[h - 1 + t + q]);
        const T w_re = tw_re[q - 1 + t], w_im = tw_im[q - 1 + t];
        StoreRow(d, Add(a0, a1), r);
        StoreRow(d, Rotate(d, Sub(a0, a1), w_re, w_im), r + q * pitch);
        StoreRow(d, Add(a2, a3), r + 2 * q * pitch);
        StoreRow(d, Rotate(d, Sub(a2, a3), w_re, w_im), r + 3 * q * pitch);
      }
    }
  }
  if (h == 1) {
    // A last single stage: twiddle 1.
    for (int64_t j = 0; j < half; j += 2) {
      T* HWY_RESTRICT r = rows + j * pitch;
      const auto r0 = LoadRow(d, r), r1 = LoadRow(d, r + pitch);
      StoreRow(d, Add(r0, r1), r);
      StoreRow(d, Sub(r0, r1), r + pitch);
    }
  }
}

// Decimation in time with conjugate twiddles (the unnormalised inverse),
// bit-reversed order in, natural order out. The stage pairing rows h apart
// maps (a, b) to (a + b conj(w_h^t), a - b conj(w_h^t)).
template <class T>
void InverseTransform(const Args<T>& a, T* HWY_RESTRICT rows) {
  const hn::ScalableTag<T> d;
  const int64_t pitch = 2 * static_cast<int64_t>(hn::Lanes(d));
  const int64_t half = a.geometry->half;
  const T* HWY_RESTRICT tw_re = a.twiddle_re;
  const T* HWY_RESTRICT tw_im = a.twiddle_im;
  int64_t h = 1;
  int64_t stages = 0;
  while ((int64_t{1} << stages) < half) ++stages;
  if (stages % 2 == 1) {
    // A first single stage: twiddle 1.
    for (int64_t j = 0; j < half; j += 2) {
      T* HWY_RESTRICT r = rows + j * pitch;
      const auto r0 = LoadRow(d, r), r1 = LoadRow(d, r + pitch);
      StoreRow(d, Add(r0, r1), r);
      StoreRow(d, Sub(r0, r1), r + pitch);
    }
    h = 2;
  }
  for (; h < half; h *= 4) {
    // Stages h = q and 2q together.
    const int64_t q = h;
    for (int64_t j = 0; j < half; j += 4 * q) {
      for (int64_t t = 0; t < q; ++t) {
        T* HWY_RESTRICT r = rows + (j + t) * pitch;
        const auto r0 = LoadRow(d, r), r1 = LoadRow(d, r + q * pitch);
        const auto r2 = LoadRow(d, r + 2 * q * pitch), r3 = LoadRow(d, r + 3 * q * pitch);
        const T w_re = tw_re[q - 1 + t], w_im = tw_im[q - 1 + t];
        const auto b1 = RotateBack(d, r1, w_re, w_im), b3 = RotateBack(d, r3, w_re, w_im);
        const auto a0 = Add(r0, b1), a1 = Sub(r0, b1), a2 = Add(r2, b3), a3 = Sub(r2, b3);
        const auto c2 = RotateBack(d, a2, tw_re[2 * q - 1 + t], tw_im[2 * q - 1 + t]);
        const auto c3 = RotateBack(d, a3, tw_re[2 * q - 1 + t + q], tw_im[2 * q - 1 + t + q]);
        StoreRow(d, Add(a0, c2), r);
        StoreRow(d, Add(a1, c3), r + q * pitch);
        StoreRow(d, Sub(a0, c2), r + 2 * q * pitch);
        StoreRow(d, Sub(a1, c3), r + 3 * q * pitch);
      }
    }
  }
}

// Rows r < H of the transform get z[r] = x[2r] + i x[2r+1] of block
// `global_block` for the spectrum channels of `panel` (lanes past
// spectrum_channels zero).
template <class T>
void GatherBlock(const Args<T>& a, int64_t global_block, int64_t panel, T* HWY_RESTRICT rows,
                 int64_t* HWY_RESTRICT index) {
  const Geometry& g = *a.geometry;
  const hn::ScalableTag<T> d;
  const int64_t lanes = g.lanes;
  const int64_t n = global_block / g.blocks_per_sample;
  const int64_t base = global_block % g.blocks_per_sample * g.block_outputs - g.pad_left;
  const TensorRef<const T>& input = a.input;
  for (int64_t i = 0; i < g.fft_size; ++i) {
    const int64_t source =
        core::padded_source_index(base + i, g.length, g.pad_left, g.pad_right, g.padding_mode);
    index[i] = source < 0 ? -1 : source * input.length_stride;
  }
  const int64_t first = panel * lanes;
  const int64_t channels = std::min(lanes, g.spectrum_channels - first);
  const T* src = input.data + n * input.batch_stride;
  // Row r holds x[2r] then x[2r+1]: sample i goes to rows + i * V.
  if (input.channel_stride == 1 && channels == lanes && g.multiplier == 1) {
    src += first;
    for (int64_t i = 0; i < g.fft_size; ++i) {
      const auto v = index[i] < 0 ? hn::Zero(d) : hn::LoadU(d, src + index[i]);
      hn::Store(v, d, rows + i * lanes);
    }
    return;
  }
  if (channels < lanes) {
    for (int64_t i = 0; i < g.fft_size; ++i) hn::Store(hn::Zero(d), d, rows + i * lanes);
  }
  // Channel by channel along the input rows, over tiles of positions whose
  // rows (64 bytes each) stay in L1 while every channel writes them.
  const auto by_element = [&](int64_t begin, int64_t end) {
    constexpr int64_t kTilePositions = 64;
    for (int64_t i0 = begin; i0 < end; i0 += kTilePositions) {
      const int64_t i1 = std::min(end, i0 + kTilePositions);
      for (int64_t c = 0; c < channels; ++c) {
        const T* HWY_RESTRICT from = src + (first + c) / g.multiplier * input.channel_stride;
        T* HWY_RESTRICT to = rows + c;
        for (int64_t i = i0; i < i1; ++i) to[i * lanes] = index[i] < 0 ? T(0) : from[index[i]];
      }
    }
  };
  // NCL rows: the positions inside the input in blocks of lanes x lanes,
  // transposed in registers (element by element the gather took ~5 cycles
  // an element, a fifth to a third of an NCL layer's time), the lanes past
  // a partial panel zeros; the padding and the last partial block element
  // by element, and so does a panel of half the lanes or fewer
  // (transposes_panel).
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  int64_t blocks_begin = 0, blocks_end = 0;
  const T* lane_rows[N] = {};
  if (N == lanes && transposes_panel(lanes, channels) && input.length_stride == 1) {
    blocks_begin = std::clamp<int64_t>(-base, 0, g.fft_size);
    const int64_t inside_end = std::clamp<int64_t>(g.length - base, blocks_begin, g.fft_size);
    blocks_end = blocks_begin + (inside_end - blocks_begin) / N * N;
    for (int64_t c = 0; c < channels; ++c) {
      lane_rows[c] = src + (first + c) / g.multiplier * input.channel_stride + base;
    }
  }
  by_element(0, blocks_begin);
  for (int64_t i = blocks_begin; i < blocks_end; i += N) {
    hn::Vec<decltype(d)> block[N];
    for (int64_t c = 0; c < N; ++c) {
      block[c] = c < channels ? hn::LoadU(d, lane_rows[c] + i) : hn::Zero(d);
    }
    Transpose(d, block);
    for (int64_t j = 0; j < N; ++j) hn::Store(block[j], d, rows + (i + j) * lanes);
  }
  by_element(blocks_end, g.fft_size);
}

// Real-input split of a forward transform (rows in bit-reversed order),
// pairing bins k and H - k: with A = Z[k], B = Z[H-k], S = A + conj(B),
// D = A - conj(B) and w = exp(-2 pi i k / N),
//   2 X[k] = S + w (-i D),   2 X[H - k] = conj(S - w (-i D)),
// written at spectrum + k * bin_pitch, imaginary parts `imaginary` further.
template <class T>
void SplitRealSpectrum(const Args<T>& a, const T* HWY_RESTRICT rows, T* HWY_RESTRICT spectrum,
                       int64_t bin_pitch, int64_t imaginary) {
  const hn::ScalableTag<T> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t pitch = 2 * lanes;
  const int64_t half = a.geometry->half;
  for (int64_t k = 0; k <= half / 2; ++k) {
    const T* HWY_RESTRICT z_k = rows + a.bit_reversed[k] * pitch;
    const T* HWY_RESTRICT z_m = rows + a.bit_reversed[(half - k) % half] * pitch;
    const auto ar = hn::Load(d, z_k), ai = hn::Load(d, z_k + lanes);
    const auto br = hn::Load(d, z_m), bi = hn::Load(d, z_m + lanes);
    const auto sr = hn::Add(ar, br), si = hn::Sub(ai, bi);
    const auto dr = hn::Sub(ar, br), di = hn::Add(ai, bi);
    const auto wr = hn::Set(d, a.split_re[k]), wi = hn::Set(d, a.split_im[k]);
    const auto p = hn::MulAdd(wr, di, hn::Mul(wi, dr));
    const auto q = hn::MulSub(wi, di, hn::Mul(wr, dr));
    T* HWY_RESTRICT low = spectrum + k * bin_pitch;
    T* HWY_RESTRICT high = spectrum + (half - k) * bin_pitch;
    hn::Store(hn::Add(sr, p), d, low);
    hn::Store(hn::Add(si, q), d, low + imaginary);
    hn::Store(hn::Sub(sr, p), d, high);
    hn::Store(hn::Sub(q, si), d, high + imaginary);
  }
}

// Gathers block `global_block` of the spectrum channels of `panel` and
// transforms it: X[k] (times 2, folded into the weights) at
// spectrum + k * bin_pitch, imaginary parts `imaginary` further.
template <class T>
void TransformBlock(const Args<T>& a, int64_t global_block, int64_t panel, void* scratch,
                    T* HWY_RESTRICT spectrum, int64_t bin_pitch, int64_t imaginary) {
  T* rows = static_cast<T*>(scratch);
  auto* index = reinterpret_cast<int64_t*>(static_cast<uint8_t*>(scratch) +
                                           transform_bytes(*a.geometry, sizeof(T)));
  GatherBlock(a, global_block, panel, rows, index);
  ForwardTransform(a, rows);
  SplitRealSpectrum(a, rows, spectrum, bin_pitch, imaginary);
}

template <class T>
void ForwardTask(const Args<T>& a, int64_t block, int64_t panel, void* scratch) {
  const Geometry& g = *a.geometry;
  TransformBlock(a, a.first_block + block, panel, scratch,
                 a.spectra + block * 2 * g.spectrum_pitch + panel * g.lanes,
                 a.spectrum_blocks * 2 * g.spectrum_pitch, g.spectrum_pitch);
}

// What one product tile reads and writes, at one bin.
template <class T>
struct ProductArgs {
  const T* spectra;      // re of the tile's first block, its first input channel
  size_t block_pitch;    // between blocks in `spectra`
  size_t imaginary;      // from re to im in `spectra`
  const T* weight;       // [ci][panel][re V | im V] from the tile's first panel
  size_t weight_pitch;   // between input channels in `weight`
  size_t in_channels;    // >= 1
  T* products;           // [block][panel][bin][re V | im V] at the tile's first
  size_t product_block;  // between blocks in `products`
  size_t product_panel;  // between panels in `products`
};

// Y[b][p] (+)= sum_ci W[ci][p] X[b][ci] for B blocks x P panels of V output
// channels: per input channel, 2P vector loads and 2B broadcasts feed 4BP
// FMAs. Every tile shape sums over ci in the same order, and so does a sum
// split into chunks of input channels (Accumulate continues it).
template <size_t B, size_t P, bool Accumulate, class T>
void ProductTile(const ProductArgs<T>& a) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t lanes = hn::Lanes(d);
  V acc_re[B][P], acc_im[B][P];
  for (size_t b = 0; b < B; ++b) {
    for (size_t p = 0; p < P; ++p) {
      if constexpr (Accumulate) {
        const T* y = a.products + b * a.product_block + p * a.product_panel;
        acc_re[b][p] = hn::Load(d, y);
        acc_im[b][p] = hn::Load(d, y + lanes);
      } else {
        acc_re[b][p] = acc_im[b][p] = hn::Zero(d);
      }
    }
  }
  const T* HWY_RESTRICT x = a.spectra;
  const T* HWY_RESTRICT w = a.weight;
  for (size_t ci = 0; ci < a.in_channels; ++ci, ++x, w += a.weight_pitch) {
    V wr[P], wi[P];
    for (size_t p = 0; p < P; ++p) {
      wr[p] = hn::Load(d, w + 2 * p * lanes);
      wi[p] = hn::Load(d, w + (2 * p + 1) * lanes);
    }
    for (size_t b = 0; b < B; ++b) {
      const V xr = hn::Set(d, x[b * a.block_pitch]);
      const V xi = hn::Set(d, x[b * a.block_pitch + a.imaginary]);
      for (size_t p = 0; p < P; ++p) {
        acc_re[b][p] = hn::NegMulAdd(wi[p], xi, hn::MulAdd(wr[p], xr, acc_re[b][p]));
        acc_im[b][p] = hn::MulAdd(wi[p], xr, hn::MulAdd(wr[p], xi, acc_im[b][p]));
      }
    }
  }
  for (size_t b = 0; b < B; ++b) {
    for (size_t p = 0; p < P; ++p) {
      T* y = a.products + b * a.product_block + p * a.product_panel;
      hn::Store(acc_re[b][p], d, y);
      hn::Store(acc_im[b][p], d, y + lanes);
    }
  }
}

template <class T>
using ProductFn = void (*)(const ProductArgs<T>&);
// kProductTiles<T, Accumulate>[(B - 1) * kPanelTile + P - 1]: every tail
// shape.
template <class T, bool Accumulate, size_t... I>
constexpr std::array<ProductFn<T>, sizeof...(I)> MakeProductTiles(std::index_sequence<I...>) {
  return {&ProductTile<I / kPanelTile + 1, I % kPanelTile + 1, Accumulate, T>...};
}
template <class T, bool Accumulate>
constexpr std::array<ProductFn<T>, kBlockTile * kPanelTile> kProductTiles =
    MakeProductTiles<T, Accumulate>(std::make_index_sequence<kBlockTile * kPanelTile>());

// Input channels per product chunk: the chunk's weights for one panel tile
// (chunk x kPanelTile x 2V elements) stay in L1 (16 KiB) while every block
// tile of the task reads them.
constexpr size_t kChunkWeightBytes = 16 * 1024;

// Real-output merge of spectrum y (bins 0..H) into the transform rows, at
// bit-reversed positions: with S = Y[k] + conj(Y[H-k]), D = Y[k] -
// conj(Y[H-k]), Z[k] = S + i D conj(w) and Z[H-k] = conj(S) + i conj(D) w,
// so that the inverse transform gives z[r] = y[2r] + i y[2r+1].
template <class T>
void Merge(const Args<T>& a, const T* HWY_RESTRICT y, T* HWY_RESTRICT rows) {
  const hn::ScalableTag<T> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t pitch = 2 * lanes;
  const int64_t half = a.geometry->half;
  for (int64_t k = 0; k <= half / 2; ++k) {
    const T* HWY_RESTRICT y_k = y + k * pitch;
    const T* HWY_RESTRICT y_m = y + (half - k) * pitch;
    const auto ar = hn::Load(d, y_k), ai = hn::Load(d, y_k + lanes);
    const auto br = hn::Load(d, y_m), bi = hn::Load(d, y_m + lanes);
    const auto sr = hn::Add(ar, br), si = hn::Sub(ai, bi);
    const auto dr = hn::Sub(ar, br), di = hn::Add(ai, bi);
    const auto wr = hn::Set(d, a.split_re[k]), wi = hn::Set(d, a.split_im[k]);
    const auto p = hn::MulSub(di, wr, hn::Mul(dr, wi));
    const auto q = hn::MulAdd(dr, wr, hn::Mul(di, wi));
    T* HWY_RESTRICT low = rows + a.bit_reversed[k] * pitch;
    hn::Store(hn::Sub(sr, p), d, low);
    hn::Store(hn::Add(si, q), d, low + lanes);
    if (k != 0) {
      T* HWY_RESTRICT high = rows + a.bit_reversed[half - k] * pitch;
      hn::Store(hn::Add(sr, p), d, high);
      hn::Store(hn::Sub(q, si), d, high + lanes);
    }
  }
}

// Writes the block's outputs from the inverse transform (sample i of the
// block at rows + i * V), every stride-th stride-1 position, plus bias.
template <class T>
void ScatterBlock(const Args<T>& a, int64_t global_block, int64_t first_channel, int64_t channels,
                  const T* HWY_RESTRICT rows) {
  const Geometry& g = *a.geometry;
  const hn::ScalableTag<T> d;
  const int64_t lanes = g.lanes;
  const int64_t n = global_block / g.blocks_per_sample;
  const int64_t first_position = global_block % g.blocks_per_sample * g.block_outputs;
  const int64_t count = std::min(g.block_outputs, g.positions - first_position);
  const int64_t start = (g.stride - first_position % g.stride) % g.stride;
  const TensorRef<T>& output = a.output;
  T* dst = output.data + n * output.batch_stride + first_channel * output.channel_stride;
  if (output.channel_stride == 1 && channels == lanes) {
    const auto bias = hn::LoadU(d, a.bias + first_channel);
    T* HWY_RESTRICT out = dst + (first_position + start) / g.stride * output.length_stride;
    for (int64_t i = start; i < count; i += g.stride, out += output.length_stride) {
      hn::StoreU(hn::Add(hn::Load(d, rows + i * lanes), bias), d, out);
    }
    return;
  }
  // NCL rows: blocks of lanes outputs x lanes channels, transposed in
  // registers, the lanes past a partial panel dropped (as in GatherBlock,
  // not for a panel of half the lanes or fewer); the last partial block
  // goes on below.
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  int64_t begin = start;
  if (N == lanes && transposes_panel(lanes, channels) && output.length_stride == 1) {
    HWY_ALIGN T panel_bias[N] = {};
    std::copy(a.bias + first_channel, a.bias + first_channel + channels, panel_bias);
    const auto bias = hn::Load(d, panel_bias);
    const int64_t outputs = start < count ? (count - start + g.stride - 1) / g.stride : 0;
    T* HWY_RESTRICT out = dst + (first_position + start) / g.stride;
    for (int64_t o = 0; o + N <= outputs; o += N, begin += N * g.stride) {
      hn::Vec<decltype(d)> block[N];
      for (int64_t j = 0; j < N; ++j) {
        block[j] = hn::Add(hn::Load(d, rows + (begin + j * g.stride) * lanes), bias);
      }
      Transpose(d, block);
      for (int64_t c = 0; c < channels; ++c) {
        hn::StoreU(block[c], d, out + c * output.channel_stride + o);
      }
    }
  }
  // Channel by channel along the output rows, over tiles of positions
  // whose rows (64 bytes each) stay in L1 while every channel reads them.
  constexpr int64_t kTilePositions = 64;
  for (int64_t i0 = begin; i0 < count; i0 += kTilePositions * g.stride) {
    const int64_t i1 = std::min(count, i0 + kTilePositions * g.stride);
    T* HWY_RESTRICT tile = dst + (first_position + i0) / g.stride * output.length_stride;
    for (int64_t c = 0; c < channels; ++c) {
      const T bias = a.bias[first_channel + c];
      T* HWY_RESTRICT out = tile + c * output.channel_stride;
      for (int64_t i = i0; i < i1; i += g.stride, out += output.length_stride) {
        *out = rows[i * lanes + c] + bias;
      }
    }
  }
}

// The products of a task of one group: per bin, the complex matrix product
// of the group's weights and the blocks' spectra.
template <class T>
void MultiplyGroup(const Args<T>& a, const Task& task, T* HWY_RESTRICT products) {
  const Geometry& g = *a.geometry;
  const int64_t pitch = 2 * g.lanes;
  const int64_t blocks = task.block_end - task.block_begin;
  const int64_t panels = task.panel_end - task.panel_begin;
  const int64_t cin = g.in_per_group;
  const int64_t weight_pitch = g.out_panels * pitch;
  ProductArgs<T> p{};
  p.block_pitch = static_cast<size_t>(2 * g.spectrum_pitch);
  p.imaginary = static_cast<size_t>(g.spectrum_pitch);
  p.weight_pitch = static_cast<size_t>(weight_pitch);
  p.product_block = static_cast<size_t>(panels * g.bins * pitch);
  p.product_panel = static_cast<size_t>(g.bins * pitch);
  const int64_t block_tile = static_cast<int64_t>(kBlockTile);
  const int64_t panel_tile = static_cast<int64_t>(kPanelTile);
  const int64_t chunk = std::max<int64_t>(
      1, static_cast<int64_t>(kChunkWeightBytes / (kPanelTile * pitch * sizeof(T))));
  for (int64_t bin = 0; bin < g.bins; ++bin) {
    const T* weight = a.weight + ((task.group * g.bins + bin) * cin * g.out_panels) * pitch;
    const T* spectra =
        a.spectra + bin * a.spectrum_blocks * 2 * g.spectrum_pitch + task.group * cin;
    for (int64_t q = 0; q < panels; q += panel_tile) {
      const int64_t tile_panels = std::min(panel_tile, panels - q);
      for (int64_t c0 = 0; c0 < cin; c0 += chunk) {
        p.in_channels = static_cast<size_t>(std::min(chunk, cin - c0));
        p.weight = weight + c0 * weight_pitch + (task.panel_begin + q) * pitch;
        const auto& tiles = c0 == 0 ? kProductTiles<T, false> : kProductTiles<T, true>;
        for (int64_t b = 0; b < blocks; b += block_tile) {
          const int64_t tile_blocks = std::min(block_tile, blocks - b);
          p.spectra = spectra + (task.block_begin + b) * static_cast<int64_t>(p.block_pitch) + c0;
          p.products = products + ((b * panels + q) * g.bins + bin) * pitch;
          tiles[static_cast<size_t>((tile_blocks - 1) * panel_tile + tile_panels - 1)](p);
        }
      }
    }
  }
}

template <class T>
void OutputTask(const Args<T>& a, const Task& task, void* scratch) {
  const Geometry& g = *a.geometry;
  const int64_t lanes = g.lanes;
  const int64_t pitch = 2 * lanes;
  T* rows = static_cast<T*>(scratch);
  T* products =
      reinterpret_cast<T*>(static_cast<uint8_t*>(scratch) + transform_bytes(g, sizeof(T)));
  MultiplyGroup(a, task, products);
  const int64_t panels = task.panel_end - task.panel_begin;
  for (int64_t b = 0; b < task.block_end - task.block_begin; ++b) {
    for (int64_t q = 0; q < panels; ++q) {
      Merge(a, products + (b * panels + q) * g.bins * pitch, rows);
      InverseTransform(a, rows);
      const int64_t first = (task.panel_begin + q) * lanes;
      ScatterBlock(a, a.first_block + task.block_begin + b,
                   task.group * g.task_out_channels() + first,
                   std::min(lanes, g.task_out_channels() - first), rows);
    }
  }
}

// by_channel: the whole convolution of one block and panel, from input to
// output, with the spectrum in scratch: Y[co] = W[co] X[co] per lane.
template <class T>
void ChannelTask(const Args<T>& a, int64_t global_block, int64_t panel, void* scratch) {
  const Geometry& g = *a.geometry;
  const hn::ScalableTag<T> d;
  const int64_t lanes = g.lanes;
  const int64_t pitch = 2 * lanes;
  T* rows = static_cast<T*>(scratch);
  T* spectrum =
      reinterpret_cast<T*>(static_cast<uint8_t*>(scratch) + forward_scratch_bytes(g, sizeof(T)));
  TransformBlock(a, global_block, panel, scratch, spectrum, pitch, lanes);
  const T* HWY_RESTRICT weight = a.weight + panel * pitch;
  for (int64_t bin = 0; bin < g.bins; ++bin) {
    T* HWY_RESTRICT y = spectrum + bin * pitch;
    const auto w = LoadRow(d, weight + bin * g.out_panels * pitch);
    const auto x = LoadRow(d, y);
    hn::Store(hn::MulSub(w.re, x.re, hn::Mul(w.im, x.im)), d, y);
    hn::Store(hn::MulAdd(w.re, x.im, hn::Mul(w.im, x.re)), d, y + lanes);
  }
  Merge(a, spectrum, rows);
  InverseTransform(a, rows);
  const int64_t first = panel * lanes;
  ScatterBlock(a, global_block, first, std::min(lanes, g.out_channels - first), rows);
}

void ForwardF32(const Args<float>& a, int64_t block, int64_t panel, void* scratch) {
  ForwardTask(a, block, panel, scratch);
}
void ForwardF64(const Args<double>& a, int64_t block, int64_t panel, void* scratch) {
  ForwardTask(a, block, panel, scratch);
}
void OutputF32(const Args<float>& a, const Task& task, void* scratch) {
  OutputTask(a, task, scratch);
}
void OutputF64(const Args<double>& a, const Task& task, void* scratch) {
  OutputTask(a, task, scratch);
}
void ChannelF32(const Args<float>& a, int64_t block, int64_t panel, void* scratch) {
  ChannelTask(a, block, panel, scratch);
}
void ChannelF64(const Args<double>& a, int64_t block, int64_t panel, void* scratch) {
  ChannelTask(a, block, panel, scratch);
}
void SpectrumF64(const Args<double>& a, double* rows, double* spectrum) {
  ForwardTransform(a, rows);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<double>()));
  SplitRealSpectrum(a, rows, spectrum, 2 * lanes, lanes);
}

const Target* GetTarget() {
  static const Target target{static_cast<int>(hn::Lanes(hn::ScalableTag<float>())),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<double>())),
                             &ForwardF32,
                             &ForwardF64,
                             &OutputF32,
                             &OutputF64,
                             &ChannelF32,
                             &ChannelF64,
                             &SpectrumF64};
  return &target;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::fft
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::fft {

HWY_EXPORT(GetTarget);

const Target& chosen_target() { return *HWY_DYNAMIC_DISPATCH(GetTarget)(); }

}  // namespace conv1d::kernels::fft
#endif  // HWY_ONCE
