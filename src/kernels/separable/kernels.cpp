// Per-ISA task code of the fused separable convolution, compiled once per
// Highway target (hwy/foreach_target.h re-includes this file). Serial: the
// executor in algorithm.cpp owns the task grid and the threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/separable/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/highway.h>
// After hwy/highway.h: per-target code.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "core/padding.hpp"
#include "kernels/common/shifted-inl.h"
#include "kernels/gemm/tile-inl.h"
#include "kernels/separable/separable.hpp"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::separable {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace tile = ::conv1d::kernels::gemm::HWY_NAMESPACE;
using tile::kRows;
using tile::kVectors;
using tile::TileArgs;

// Positions the channels-last depthwise loop computes at once: they share
// each weight load.
constexpr int64_t kDepthwisePositions = 4;

// by_length (NCL): tile rows are output channels, vectors run along the
// positions of the mid tile, broadcasts are packed weights (kRows a step).
// by_channel (NLC): tile rows are positions, vectors run along output
// channels (the packed weight panel), broadcasts come from the mid rows.
enum class Kind { by_length, by_channel };

// by_length: broadcasts are packed weights (kRows a step); by_channel:
// rows of the mid tile, one element further each step.
template <Kind kKind>
constexpr tile::Broadcasts kBroadcasts =
    kKind == Kind::by_length ? tile::Broadcasts::rows_per_step : tile::Broadcasts::consecutive;

template <class T>
using TileFn = void (*)(const TileArgs<T>&, bool);

// Tiles<kind, T>[(M - 1) * kVectors + (NV - 1)]: every tail shape.
template <Kind kKind, class T, size_t... I>
constexpr std::array<TileFn<T>, sizeof...(I)> MakeTiles(std::index_sequence<I...>) {
  return {&tile::CallTile<kBroadcasts<kKind>, I / kVectors + 1, I % kVectors + 1, T>...};
}
template <Kind kKind, class T>
constexpr std::array<TileFn<T>, kRows * kVectors> kTiles =
    MakeTiles<kKind, T>(std::make_index_sequence<kRows * kVectors>());

template <class T>
HWY_INLINE void RunTile(Kind kind, const TileArgs<T>& a, int64_t rows, int64_t vectors,
                        bool accumulate) {
  const auto index = static_cast<size_t>((rows - 1) * static_cast<int64_t>(kVectors) + vectors - 1);
  if (kind == Kind::by_length) {
    kTiles<Kind::by_length, T>[index](a, accumulate);
  } else {
    kTiles<Kind::by_channel, T>[index](a, accumulate);
  }
}

// Where padded position `position` of a row reads, as an element offset
// (source * step), or -1 for a zero. Positions past the padded input are
// read only by discarded outputs and become zeros.
inline int64_t SourceOffset(const Geometry& g, int64_t position, int64_t step) {
  if (position < -g.pad_left || position >= g.length + g.pad_right) return -1;
  const int64_t source = core::source_index(position, g.length, g.padding_mode);
  return source < 0 ? -1 : source * step;
}

// Taps r, r + N, ..., r + (kTaps-1)*N (N = lanes) of a dense, unit-stride
// kernel read the same input vectors shifted by whole vectors: each of the
// kVectors + kTaps - 1 loads feeds up to kTaps FMAs instead of one.
template <size_t kTaps, size_t kChannels, class D, class T>
HWY_INLINE void ResidueTaps(D d, hn::Vec<D> (&acc)[kChannels][kVectors],
                            const std::array<const T*, kChannels>& from,
                            const std::array<const T*, kChannels>& weights) {
  using V = hn::Vec<D>;
  const size_t lanes = hn::Lanes(d);
  V w[kChannels][kTaps];
  for (size_t j = 0; j < kChannels; ++j) {
    for (size_t i = 0; i < kTaps; ++i) w[j][i] = hn::Set(d, weights[j][i * lanes]);
  }
  for (size_t m = 0; m < kVectors + kTaps - 1; ++m) {
    for (size_t j = 0; j < kChannels; ++j) {
      const V x = hn::LoadU(d, from[j] + m * lanes);
      for (size_t i = 0; i < kTaps; ++i) {
        if (m >= i && m - i < kVectors) acc[j][m - i] = hn::MulAdd(w[j][i], x, acc[j][m - i]);
      }
    }
  }
}

// Residue sharing up to this many taps per residue (K <= 4 * lanes).
constexpr int64_t kMaxResidueTaps = 4;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
using ::conv1d::kernels::common::HWY_NAMESPACE::kLoadedResidues;
using ::conv1d::kernels::common::HWY_NAMESPACE::ShiftedResidue;

// The residues of kChannels rows, each shifted out of its whole[j] (x[j]
// and weights[j] offset to the tile), residue by residue so that the rows'
// FMA chains interleave.
template <size_t kChannels, class D, class T, size_t... R>
HWY_INLINE void ShiftedResiduesOfRows(D d, hn::Vec<D> (&acc)[kChannels][kVectors],
                                      const hn::Vec<D> (&whole)[kChannels][kVectors + 2],
                                      const std::array<const T*, kChannels>& x,
                                      const std::array<const T*, kChannels>& weights, int64_t K,
                                      std::index_sequence<R...>) {
  (
      [&] {
        for (size_t j = 0; j < kChannels; ++j) {
          ShiftedResidue<kVectors, R, ((kLoadedResidues >> R) & 1) != 0>(d, acc[j], whole[j], x[j],
                                                                         weights[j], K);
        }
      }(),
      ...);
}

// acc += the taps of kChannels stride-1 rows from position i0 of their
// phases, in windows of 2N taps (two a residue: more would need more whole
// vectors than two rows have registers for), each in residue order: up to
// 2N taps, the sums of DepthwiseRows' by_residue loop (and of the
// depthwise algorithm).
template <size_t kChannels, class D, class T>
HWY_INLINE void ShiftedWindows(D d, hn::Vec<D> (&acc)[kChannels][kVectors],
                               const std::array<const T*, kChannels>& phases, const T* weights,
                               int64_t i0, int64_t K) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t k0 = 0; k0 < K; k0 += 2 * lanes) {
    hn::Vec<D> whole[kChannels][kVectors + 2];
    std::array<const T*, kChannels> x, w;
    for (size_t j = 0; j < kChannels; ++j) {
      x[j] = phases[j] + i0 + k0;
      w[j] = weights + static_cast<int64_t>(j) * K + k0;
      for (size_t m = 0; m < kVectors + 2; ++m) {
        whole[j][m] = hn::LoadU(d, x[j] + static_cast<int64_t>(m) * lanes);
      }
    }
    ShiftedResiduesOfRows<kChannels>(d, acc, whole, x, w, std::min(K - k0, 2 * lanes),
                                     std::make_index_sequence<hn::MaxLanes(D())>());
  }
}
#else
// Never called: Geometry::shifted_taps needs kShiftedRows.
template <size_t kChannels, class D, class T>
void ShiftedWindows(D, hn::Vec<D> (&)[kChannels][kVectors], const std::array<const T*, kChannels>&,
                    const T*, int64_t, int64_t) {}
#endif

// mid rows c .. c + kChannels - 1 from their input channels' phases. Each
// row sums bias, then taps: shifted out of whole loads where
// g.shifted_taps (ShiftedWindows), else in order, or for a dense
// unit-stride kernel longer than a vector by residue (taps r, r + N, ... for r < N, the
// depthwise algorithm's order); two rows at once give 8 independent FMA
// chains, enough to hide their latency.
template <size_t kChannels, class T>
HWY_INLINE void DepthwiseRows(const Geometry& g, const Args<T>& args, int64_t c,
                              const std::array<const T*, kChannels>& phases, T* HWY_RESTRICT mid) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t K = g.kernel_size;
  const T* HWY_RESTRICT weights = args.dw_weight + c * K;
  const int64_t width = static_cast<int64_t>(kVectors) * lanes;
  const int64_t residue_taps = (K + lanes - 1) / lanes;
  const bool by_residue =
      g.stride == 1 && g.dilation == 1 && K > lanes && residue_taps <= kMaxResidueTaps;
  for (int64_t i0 = 0; i0 < g.tile_positions; i0 += width) {
    V acc[kChannels][kVectors];
    for (size_t j = 0; j < kChannels; ++j) {
      for (size_t v = 0; v < kVectors; ++v) acc[j][v] = hn::Set(d, args.dw_bias[c + j]);
    }
    if (g.shifted_taps) {
      ShiftedWindows(d, acc, phases, weights, i0, K);
    } else if (by_residue) {
      for (int64_t r = 0; r < lanes; ++r) {
        std::array<const T*, kChannels> from, w;
        for (size_t j = 0; j < kChannels; ++j) {
          from[j] = phases[j] + i0 + r;
          w[j] = weights + static_cast<int64_t>(j) * K + r;
        }
        switch ((K - 1 - r) / lanes + 1) {
          case 1:
            ResidueTaps<1>(d, acc, from, w);
            break;
          case 2:
            ResidueTaps<2>(d, acc, from, w);
            break;
          case 3:
            ResidueTaps<3>(d, acc, from, w);
            break;
          default:
            ResidueTaps<4>(d, acc, from, w);
        }
      }
    } else {
      for (int64_t k = 0; k < K; ++k) {
        const int64_t offset = g.tap_offsets[k] + i0;
        for (size_t j = 0; j < kChannels; ++j) {
          const V weight = hn::Set(d, weights[static_cast<int64_t>(j) * K + k]);
          const T* HWY_RESTRICT from = phases[j] + offset;
          for (size_t v = 0; v < kVectors; ++v) {
            acc[j][v] = hn::MulAdd(weight, hn::LoadU(d, from + v * lanes), acc[j][v]);
          }
        }
      }
    }
    for (size_t j = 0; j < kChannels; ++j) {
      T* HWY_RESTRICT to = mid + (c + j) * g.mid_pitch + i0;
      for (size_t v = 0; v < kVectors; ++v) hn::Store(acc[j][v], d, to + v * lanes);
    }
  }
}

// NCL: mid[c][i] for every intermediate channel c and the tile's
// tile_positions outputs from l0 (all of them, even past out_length: the
// input reads stay inside the staged or in-place span).
template <class T>
void DepthwiseByLength(const Geometry& g, const Args<T>& args, int64_t n, int64_t l0,
                       T* HWY_RESTRICT stage, int64_t* HWY_RESTRICT index, T* HWY_RESTRICT mid) {
  const TensorRef<const T>& x = args.input;
  const int64_t base = l0 * g.stride - g.pad_left;
  const int64_t width = g.phase_width;
  const int64_t staged = g.stride * width;
  const bool in_place =
      g.stride == 1 && x.length_stride == 1 && base >= 0 && base + width <= g.length;
  if (!in_place) {
    // In phase order: index[p * width + j] is position base + p + stride*j.
    for (int64_t p = 0; p < g.stride; ++p) {
      for (int64_t j = 0; j < width; ++j) {
        index[p * width + j] = SourceOffset(g, base + p + g.stride * j, x.length_stride);
      }
    }
  }
  // Stride 1 on a contiguous row: staged positions [inside_begin,
  // inside_end) are real samples, copied as one run.
  const bool runs = g.stride == 1 && x.length_stride == 1;
  const int64_t inside_begin = runs ? std::clamp<int64_t>(-base, 0, staged) : staged;
  const int64_t inside_end =
      runs ? std::clamp<int64_t>(g.length - base, inside_begin, staged) : staged;
  // Input channel ci's phases, staged into buffer ci % 2 (a channel pair
  // spans at most two input channels, each staged once).
  const T* sample = x.data + n * x.batch_stride;
  int64_t staged_channel[2] = {-1, -1};
  const auto phases_of = [&](int64_t ci) -> const T* {
    const T* row = sample + ci * x.channel_stride;
    if (in_place) return row + base;
    T* buffer = stage + (ci % 2) * staged;
    if (staged_channel[ci % 2] != ci) {
      for (int64_t j = 0; j < inside_begin; ++j) buffer[j] = index[j] < 0 ? T(0) : row[index[j]];
      std::memcpy(buffer + inside_begin, row + base + inside_begin,
                  static_cast<size_t>(inside_end - inside_begin) * sizeof(T));
      for (int64_t j = inside_end; j < staged; ++j) {
        buffer[j] = index[j] < 0 ? T(0) : row[index[j]];
      }
      staged_channel[ci % 2] = ci;
    }
    return buffer;
  };
  int64_t c = 0;
  for (; c + 2 <= g.mid_channels; c += 2) {
    DepthwiseRows<2>(g, args, c, {phases_of(c / g.multiplier), phases_of((c + 1) / g.multiplier)},
                     mid);
  }
  if (c < g.mid_channels) DepthwiseRows<1>(g, args, c, {phases_of(c / g.multiplier)}, mid);
}

// NLC: mid[p][m*C_in + ci] for the `valid` positions from l0, along the
// channels of padded input rows `row_pitch` apart from `rows` (position
// base = l0*stride - pad_left first).
template <class T>
void DepthwiseByChannel(const Geometry& g, const Args<T>& args, const T* HWY_RESTRICT rows,
                        int64_t row_pitch, int64_t valid, T* HWY_RESTRICT mid) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t K = g.kernel_size;
  const int64_t C = g.in_channels;
  const int64_t tap_pitch = g.dilation * row_pitch;
  const int64_t position_pitch = g.stride * row_pitch;
  constexpr int64_t kBlock = kDepthwisePositions;
  int64_t p = 0;
  for (; p + kBlock <= valid; p += kBlock) {
    const T* HWY_RESTRICT first = rows + p * position_pitch;
    T* HWY_RESTRICT to = mid + p * g.mid_pitch;
    for (int64_t m = 0; m < g.multiplier; ++m) {
      const T* HWY_RESTRICT w = args.dw_weight + m * C;
      const T* HWY_RESTRICT b = args.dw_bias + m * C;
      int64_t ci = 0;
      for (; ci + lanes <= C; ci += lanes) {
        V acc[kBlock];
        for (int64_t q = 0; q < kBlock; ++q) acc[q] = hn::LoadU(d, b + ci);
        for (int64_t k = 0; k < K; ++k) {
          const V weight = hn::LoadU(d, w + k * g.mid_channels + ci);
          const T* HWY_RESTRICT tap = first + k * tap_pitch + ci;
          for (int64_t q = 0; q < kBlock; ++q) {
            acc[q] = hn::MulAdd(weight, hn::LoadU(d, tap + q * position_pitch), acc[q]);
          }
        }
        for (int64_t q = 0; q < kBlock; ++q) {
          hn::StoreU(acc[q], d, to + q * g.mid_pitch + m * C + ci);
        }
      }
      for (; ci < C; ++ci) {
        for (int64_t q = 0; q < kBlock; ++q) {
          T sum = b[ci];
          for (int64_t k = 0; k < K; ++k) {
            sum += w[k * g.mid_channels + ci] * first[q * position_pitch + k * tap_pitch + ci];
          }
          to[q * g.mid_pitch + m * C + ci] = sum;
        }
      }
    }
  }
  for (; p < valid; ++p) {
    const T* HWY_RESTRICT first = rows + p * position_pitch;
    T* HWY_RESTRICT to = mid + p * g.mid_pitch;
    for (int64_t m = 0; m < g.multiplier; ++m) {
      const T* HWY_RESTRICT w = args.dw_weight + m * C;
      const T* HWY_RESTRICT b = args.dw_bias + m * C;
      int64_t ci = 0;
      for (; ci + lanes <= C; ci += lanes) {
        V acc = hn::LoadU(d, b + ci);
        for (int64_t k = 0; k < K; ++k) {
          acc = hn::MulAdd(hn::LoadU(d, w + k * g.mid_channels + ci),
                           hn::LoadU(d, first + k * tap_pitch + ci), acc);
        }
        hn::StoreU(acc, d, to + m * C + ci);
      }
      for (; ci < C; ++ci) {
        T sum = b[ci];
        for (int64_t k = 0; k < K; ++k)
          sum += w[k * g.mid_channels + ci] * first[k * tap_pitch + ci];
        to[m * C + ci] = sum;
      }
    }
  }
}

struct Scratch {
  void* stage;
  int64_t* index;
  void* mid;
  void* out;
};

template <class T>
Scratch SplitScratch(const Geometry& g, void* scratch) {
  auto* bytes = static_cast<uint8_t*>(scratch);
  Scratch s{};
  s.stage = bytes;
  bytes += round_up_64(stage_elements(g) * sizeof(T));
  s.index = reinterpret_cast<int64_t*>(bytes);
  bytes += round_up_64(index_elements(g) * sizeof(int64_t));
  s.mid = bytes;
  bytes += round_up_64(mid_elements(g) * sizeof(T));
  s.out = bytes;
  return s;
}

template <class T>
void RunByLength(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const auto lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const auto rows = static_cast<int64_t>(kRows);
  const auto width = static_cast<int64_t>(kVectors) * lanes;  // of a register tile
  const Scratch s = SplitScratch<T>(g, scratch);
  T* mid = static_cast<T*>(s.mid);
  T* out = static_cast<T*>(s.out);
  const TensorRef<T>& y = args.output;

  TileArgs<T> a{};
  a.vector_pitch = static_cast<size_t>(g.mid_pitch);
  a.row_pitch = 1;
  a.partial_pitch = static_cast<size_t>(g.out_pitch);
  for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += g.tile_positions) {
    DepthwiseByLength(g, args, task.n, l0, static_cast<T*>(s.stage), s.index, mid);
    for (int64_t i0 = 0; i0 < g.tile_positions && l0 + i0 < task.l_end; i0 += width) {
      const int64_t valid = std::min(width, task.l_end - l0 - i0);
      const int64_t vectors = (valid + lanes - 1) / lanes;
      T* dst = y.data + task.n * y.batch_stride + (l0 + i0) * y.length_stride;
      // Full register tiles store their last chunk straight into a
      // contiguous output: those stores then overlap the FMAs instead of
      // coming in one burst.
      const bool in_place = y.length_stride == 1 && valid == width;
      for (int64_t r0 = 0; r0 < g.mid_channels; r0 += g.chunk) {
        const int64_t steps = std::min(g.chunk, g.mid_channels - r0);
        const bool last = r0 + steps == g.mid_channels;
        T* target = last && in_place ? dst : out;
        const int64_t target_pitch = last && in_place ? y.channel_stride : g.out_pitch;
        a.out_pitch = static_cast<size_t>(target_pitch);
        a.steps = static_cast<size_t>(steps);
        a.vectors = mid + r0 * g.mid_pitch + i0;
        a.broadcasts = args.pw_weight + r0 * g.co_blocks * rows;
        for (int64_t co = 0; co < g.out_channels; co += rows) {
          a.bias = args.pw_bias + co;
          a.partial = out + co * g.out_pitch;
          a.out = target + co * target_pitch;
          RunTile(Kind::by_length, a, std::min(rows, g.out_channels - co), vectors, r0 > 0);
          a.broadcasts += steps * rows;
        }
      }
      if (in_place) continue;
      for (int64_t co = 0; co < g.out_channels; ++co) {
        const T* from = out + co * g.out_pitch;
        T* to = dst + co * y.channel_stride;
        if (y.length_stride == 1) {
          std::memcpy(to, from, static_cast<size_t>(valid) * sizeof(T));
        } else {
          for (int64_t i = 0; i < valid; ++i) to[i * y.length_stride] = from[i];
        }
      }
    }
  }
}

template <class T>
void RunByChannel(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const auto lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const auto rows = static_cast<int64_t>(kRows);
  const int64_t block = g.block_channels;
  const Scratch s = SplitScratch<T>(g, scratch);
  T* stage = static_cast<T*>(s.stage);
  T* mid = static_cast<T*>(s.mid);
  T* out = static_cast<T*>(s.out);
  const TensorRef<const T>& x = args.input;
  const TensorRef<T>& y = args.output;
  const T* sample = x.data + task.n * x.batch_stride;

  TileArgs<T> a{};
  a.vector_pitch = static_cast<size_t>(block);
  a.row_pitch = static_cast<size_t>(g.mid_pitch);
  a.partial_pitch = static_cast<size_t>(g.out_pitch);
  // Tiles store their last chunk straight into a channels-last output
  // whose rows take whole vectors.
  const bool in_place = y.channel_stride == 1 && g.out_channels % lanes == 0;
  for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += g.tile_positions) {
    const int64_t valid = std::min(g.tile_positions, task.l_end - l0);
    const int64_t base = l0 * g.stride - g.pad_left;
    const int64_t span = (valid - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1;
    if (x.channel_stride == 1 && base >= 0 && base + span <= g.length) {
      DepthwiseByChannel(g, args, sample + base * x.length_stride, x.length_stride, valid, mid);
    } else {
      for (int64_t q = 0; q < span; ++q) {
        const int64_t offset = SourceOffset(g, base + q, x.length_stride);
        T* HWY_RESTRICT to = stage + q * g.stage_pitch;
        if (offset < 0) {
          std::fill(to, to + g.in_channels, T(0));
        } else if (x.channel_stride == 1) {
          std::memcpy(to, sample + offset, static_cast<size_t>(g.in_channels) * sizeof(T));
        } else {
          const T* HWY_RESTRICT from = sample + offset;
          for (int64_t c = 0; c < g.in_channels; ++c) to[c] = from[c * x.channel_stride];
        }
      }
      DepthwiseByChannel(g, args, stage, g.stage_pitch, valid, mid);
    }
    T* dst = y.data + task.n * y.batch_stride + l0 * y.length_stride;
    for (int64_t r0 = 0; r0 < g.mid_channels; r0 += g.chunk) {
      const int64_t steps = std::min(g.chunk, g.mid_channels - r0);
      const bool last = r0 + steps == g.mid_channels;
      T* target = last && in_place ? dst : out;
      const int64_t target_pitch = last && in_place ? y.length_stride : g.out_pitch;
      a.out_pitch = static_cast<size_t>(target_pitch);
      a.steps = static_cast<size_t>(steps);
      for (int64_t b = 0; b < g.co_blocks; ++b) {
        const int64_t co = b * block;
        const int64_t vectors = (std::min(block, g.out_channels - co) + lanes - 1) / lanes;
        a.vectors = args.pw_weight + (r0 * g.co_blocks + b * steps) * block;
        a.bias = args.pw_bias + co;
        for (int64_t p = 0; p < valid; p += rows) {
          a.broadcasts = mid + p * g.mid_pitch + r0;
          a.partial = out + p * g.out_pitch + co;
          a.out = target + p * target_pitch + co;
          RunTile(Kind::by_channel, a, std::min(rows, valid - p), vectors, r0 > 0);
        }
      }
    }
    if (in_place) continue;
    for (int64_t p = 0; p < valid; ++p) {
      const T* from = out + p * g.out_pitch;
      T* to = dst + p * y.length_stride;
      if (y.channel_stride == 1) {
        std::memcpy(to, from, static_cast<size_t>(g.out_channels) * sizeof(T));
      } else {
        for (int64_t c = 0; c < g.out_channels; ++c) to[c * y.channel_stride] = from[c];
      }
    }
  }
}

template <class T>
void RunTask(const Args<T>& args, const Task& task, void* scratch) {
  if (args.geometry->layout == Layout::ncl) {
    RunByLength(args, task, scratch);
  } else {
    RunByChannel(args, task, scratch);
  }
}

void RunTaskF32(const Args<float>& args, const Task& task, void* scratch) {
  RunTask(args, task, scratch);
}
void RunTaskF64(const Args<double>& args, const Task& task, void* scratch) {
  RunTask(args, task, scratch);
}

const Target* GetTarget() {
  static const Target target{static_cast<int>(kRows),
                             static_cast<int>(kVectors),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<float>())),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<double>())),
                             ::conv1d::kernels::common::HWY_NAMESPACE::kShiftedRows,
                             &RunTaskF32,
                             &RunTaskF64};
  return &target;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::separable
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::separable {

HWY_EXPORT(GetTarget);

const Target& chosen_target() { return *HWY_DYNAMIC_DISPATCH(GetTarget)(); }

}  // namespace conv1d::kernels::separable
#endif  // HWY_ONCE
