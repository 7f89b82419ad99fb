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
#include "kernels/fft/fft.hpp"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::fft {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

// One transform: rows of [re V | im V], row r at rows + r * 2V.

// Decimation in frequency, natural order in, bit-reversed order out.
template <class T>
void ForwardTransform(const Args<T>& a, T* HWY_RESTRICT rows) {
  const hn::ScalableTag<T> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t pitch = 2 * lanes;
  const int64_t half = a.geometry->half;
  for (int64_t h = half / 2; h >= 1; h /= 2) {
    const T* HWY_RESTRICT twiddle_re = a.twiddle_re + h - 1;
    const T* HWY_RESTRICT twiddle_im = a.twiddle_im + h - 1;
    for (int64_t j = 0; j < half; j += 2 * h) {
      for (int64_t t = 0; t < h; ++t) {
        T* HWY_RESTRICT p = rows + (j + t) * pitch;
        T* HWY_RESTRICT q = p + h * pitch;
        const auto ar = hn::Load(d, p), ai = hn::Load(d, p + lanes);
        const auto br = hn::Load(d, q), bi = hn::Load(d, q + lanes);
        hn::Store(hn::Add(ar, br), d, p);
        hn::Store(hn::Add(ai, bi), d, p + lanes);
        const auto dr = hn::Sub(ar, br), di = hn::Sub(ai, bi);
        const auto wr = hn::Set(d, twiddle_re[t]), wi = hn::Set(d, twiddle_im[t]);
        hn::Store(hn::MulSub(dr, wr, hn::Mul(di, wi)), d, q);
        hn::Store(hn::MulAdd(dr, wi, hn::Mul(di, wr)), d, q + lanes);
      }
    }
  }
}

// Decimation in time with conjugate twiddles (the unnormalised inverse),
// bit-reversed order in, natural order out.
template <class T>
void InverseTransform(const Args<T>& a, T* HWY_RESTRICT rows) {
  const hn::ScalableTag<T> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t pitch = 2 * lanes;
  const int64_t half = a.geometry->half;
  for (int64_t h = 1; h < half; h *= 2) {
    const T* HWY_RESTRICT twiddle_re = a.twiddle_re + h - 1;
    const T* HWY_RESTRICT twiddle_im = a.twiddle_im + h - 1;
    for (int64_t j = 0; j < half; j += 2 * h) {
      for (int64_t t = 0; t < h; ++t) {
        T* HWY_RESTRICT p = rows + (j + t) * pitch;
        T* HWY_RESTRICT q = p + h * pitch;
        const auto ar = hn::Load(d, p), ai = hn::Load(d, p + lanes);
        const auto br = hn::Load(d, q), bi = hn::Load(d, q + lanes);
        const auto wr = hn::Set(d, twiddle_re[t]), wi = hn::Set(d, twiddle_im[t]);
        // b * conj(w)
        const auto tr = hn::MulAdd(br, wr, hn::Mul(bi, wi));
        const auto ti = hn::MulSub(bi, wr, hn::Mul(br, wi));
        hn::Store(hn::Add(ar, tr), d, p);
        hn::Store(hn::Add(ai, ti), d, p + lanes);
        hn::Store(hn::Sub(ar, tr), d, q);
        hn::Store(hn::Sub(ai, ti), d, q + lanes);
      }
    }
  }
}

// Rows r < H of the transform get z[r] = x[2r] + i x[2r+1] of block
// `global_block` for the input channels of `panel` (lanes past C_in zero).
template <class T>
void GatherBlock(const Args<T>& a, int64_t global_block, int64_t panel, T* HWY_RESTRICT rows,
                 int64_t* HWY_RESTRICT index) {
  const Geometry& g = *a.geometry;
  const hn::ScalableTag<T> d;
  const int64_t lanes = g.lanes;
  const int64_t n = global_block / g.blocks_per_sample;
  const int64_t base = global_block % g.blocks_per_sample * g.block_outputs - g.pad_left;
  const int64_t padded_end = g.length + g.pad_right;
  const TensorRef<const T>& input = a.input;
  for (int64_t i = 0; i < g.fft_size; ++i) {
    const int64_t position = base + i;
    const int64_t source = position >= -g.pad_left && position < padded_end
                               ? core::source_index(position, g.length, g.padding_mode)
                               : -1;
    index[i] = source < 0 ? -1 : source * input.length_stride;
  }
  const int64_t first = panel * lanes;
  const int64_t channels = std::min(lanes, g.in_channels - first);
  const T* src = input.data + n * input.batch_stride + first * input.channel_stride;
  // Row r holds x[2r] then x[2r+1]: sample i goes to rows + i * V.
  if (input.channel_stride == 1 && channels == lanes) {
    for (int64_t i = 0; i < g.fft_size; ++i) {
      const auto v = index[i] < 0 ? hn::Zero(d) : hn::LoadU(d, src + index[i]);
      hn::Store(v, d, rows + i * lanes);
    }
    return;
  }
  if (channels < lanes) {
    for (int64_t i = 0; i < g.fft_size; ++i) hn::Store(hn::Zero(d), d, rows + i * lanes);
  }
  for (int64_t c = 0; c < channels; ++c) {
    const T* HWY_RESTRICT from = src + c * input.channel_stride;
    T* HWY_RESTRICT to = rows + c;
    for (int64_t i = 0; i < g.fft_size; ++i) {
      to[i * lanes] = index[i] < 0 ? T(0) : from[index[i]];
    }
  }
}

template <class T>
void ForwardTask(const Args<T>& a, int64_t block, int64_t panel, void* scratch) {
  const Geometry& g = *a.geometry;
  const hn::ScalableTag<T> d;
  const int64_t lanes = g.lanes;
  const int64_t pitch = 2 * lanes;
  const int64_t half = g.half;
  T* rows = static_cast<T*>(scratch);
  auto* index =
      reinterpret_cast<int64_t*>(static_cast<uint8_t*>(scratch) + transform_bytes(g, sizeof(T)));
  GatherBlock(a, a.first_block + block, panel, rows, index);
  ForwardTransform(a, rows);

  // Real-input split, pairing bins k and H - k: with A = Z[k], B = Z[H-k],
  // S = A + conj(B), D = A - conj(B) and w = exp(-2 pi i k / N),
  //   2 X[k] = S + w (-i D),   2 X[H - k] = conj(S - w (-i D))
  // (the factor 2 is folded into the weights).
  T* HWY_RESTRICT spectrum = a.spectra + block * g.bins * 2 * g.spectrum_pitch + panel * lanes;
  const int64_t bin_pitch = 2 * g.spectrum_pitch;
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
    hn::Store(hn::Add(si, q), d, low + g.spectrum_pitch);
    hn::Store(hn::Sub(sr, p), d, high);
    hn::Store(hn::Sub(q, si), d, high + g.spectrum_pitch);
  }
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

// Y[b][p] = sum_ci W[ci][p] X[b][ci] for B blocks x P panels of V output
// channels: per input channel, 2P vector loads and 2B broadcasts feed 4BP
// FMAs. Every tile shape sums over ci in the same order.
template <size_t B, size_t P, class T>
void ProductTile(const ProductArgs<T>& a) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t lanes = hn::Lanes(d);
  V acc_re[B][P], acc_im[B][P];
  for (size_t b = 0; b < B; ++b) {
    for (size_t p = 0; p < P; ++p) acc_re[b][p] = acc_im[b][p] = hn::Zero(d);
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
// kProductTiles<T>[(B - 1) * kPanelTile + P - 1]: every tail shape.
template <class T, size_t... I>
constexpr std::array<ProductFn<T>, sizeof...(I)> MakeProductTiles(std::index_sequence<I...>) {
  return {&ProductTile<I / kPanelTile + 1, I % kPanelTile + 1, T>...};
}
template <class T>
constexpr std::array<ProductFn<T>, kBlockTile * kPanelTile> kProductTiles =
    MakeProductTiles<T>(std::make_index_sequence<kBlockTile * kPanelTile>());

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
  const auto bias = hn::LoadU(d, a.bias + first_channel);
  const TensorRef<T>& output = a.output;
  T* dst = output.data + n * output.batch_stride + first_channel * output.channel_stride;
  const bool vector_store = output.channel_stride == 1 && channels == lanes;
  HWY_ALIGN T values[hn::MaxLanes(d)];
  for (int64_t i = start; i < count; i += g.stride) {
    const int64_t l = (first_position + i) / g.stride;
    const auto v = hn::Add(hn::Load(d, rows + i * lanes), bias);
    T* HWY_RESTRICT to = dst + l * output.length_stride;
    if (vector_store) {
      hn::StoreU(v, d, to);
    } else {
      hn::Store(v, d, values);
      for (int64_t c = 0; c < channels; ++c) to[c * output.channel_stride] = values[c];
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
  const int64_t blocks = task.block_end - task.block_begin;
  const int64_t panels = task.panel_end - task.panel_begin;
  const int64_t cin = g.in_per_group;
  const int64_t weight_pitch = g.out_panels * pitch;

  ProductArgs<T> p{};
  p.block_pitch = static_cast<size_t>(g.bins * 2 * g.spectrum_pitch);
  p.imaginary = static_cast<size_t>(g.spectrum_pitch);
  p.weight_pitch = static_cast<size_t>(weight_pitch);
  p.in_channels = static_cast<size_t>(cin);
  p.product_block = static_cast<size_t>(panels * g.bins * pitch);
  p.product_panel = static_cast<size_t>(g.bins * pitch);
  const int64_t block_tile = static_cast<int64_t>(kBlockTile);
  const int64_t panel_tile = static_cast<int64_t>(kPanelTile);
  for (int64_t bin = 0; bin < g.bins; ++bin) {
    const T* weight = a.weight + ((task.group * g.bins + bin) * cin * g.out_panels) * pitch;
    const T* spectra = a.spectra + bin * 2 * g.spectrum_pitch + task.group * cin;
    for (int64_t b = 0; b < blocks; b += block_tile) {
      const int64_t tile_blocks = std::min(block_tile, blocks - b);
      p.spectra = spectra + (task.block_begin + b) * static_cast<int64_t>(p.block_pitch);
      for (int64_t q = 0; q < panels; q += panel_tile) {
        const int64_t tile_panels = std::min(panel_tile, panels - q);
        p.weight = weight + (task.panel_begin + q) * pitch;
        p.products = products + ((b * panels + q) * g.bins + bin) * pitch;
        kProductTiles<T>[static_cast<size_t>((tile_blocks - 1) * panel_tile + tile_panels - 1)](p);
      }
    }
  }

  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t q = 0; q < panels; ++q) {
      Merge(a, products + (b * panels + q) * g.bins * pitch, rows);
      InverseTransform(a, rows);
      const int64_t panel = task.panel_begin + q;
      ScatterBlock(a, a.first_block + task.block_begin + b,
                   task.group * g.out_per_group + panel * lanes,
                   std::min(lanes, g.out_per_group - panel * lanes), rows);
    }
  }
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

const Target* GetTarget() {
  static const Target target{static_cast<int>(hn::Lanes(hn::ScalableTag<float>())),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<double>())),
                             &ForwardF32,
                             &ForwardF64,
                             &OutputF32,
                             &OutputF64};
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
