// Per-ISA tile code of the direct algorithm, compiled once per Highway target
// (hwy/foreach_target.h re-includes this file). Serial: the executor in
// algorithm.cpp owns the task grid and the threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/direct/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/cache_control.h>
#include <hwy/highway.h>
// After hwy/highway.h: per-target code.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "core/padding.hpp"
#include "kernels/direct/direct.hpp"
#include "kernels/gemm/tile-inl.h"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::direct {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace tile = ::conv1d::kernels::gemm::HWY_NAMESPACE;
using tile::kRows;
using tile::kVectors;
using tile::TileArgs;

// length_vectors: rows = output channels, broadcasts = packed weights;
// channel_vectors: rows = positions, broadcasts = the staged input at
// offsets[step], vectors = the weight panel.
template <Kind kKind>
constexpr tile::Broadcasts kBroadcasts =
    kKind == Kind::length_vectors ? tile::Broadcasts::rows_per_step_streamed
                                  : tile::Broadcasts::offsets;

// Runs a tile whose rows hold `valid` (< NV * Lanes) outputs on a full-width
// copy, so the kernel stays branch-free and never touches memory past
// `valid` (another task's outputs, or the end of the tensor).
template <Kind kKind, size_t M, size_t NV, class T>
void AnyTile(const TileArgs<T>& a, bool accumulate, size_t valid) {
  const hn::ScalableTag<T> d;
  const size_t width = NV * hn::Lanes(d);
  if (valid == width) return tile::CallTile<kBroadcasts<kKind>, M, NV>(a, accumulate);
  HWY_ALIGN T buffer[M * NV * hn::MaxLanes(d)];
  TileArgs<T> copy = a;
  copy.out = buffer;
  copy.out_pitch = width;
  copy.partial = buffer;
  copy.partial_pitch = width;
  if (accumulate) {
    for (size_t m = 0; m < M; ++m) {
      std::memcpy(buffer + m * width, a.out + m * a.out_pitch, valid * sizeof(T));
    }
  }
  tile::CallTile<kBroadcasts<kKind>, M, NV>(copy, accumulate);
  for (size_t m = 0; m < M; ++m) {
    std::memcpy(a.out + m * a.out_pitch, buffer + m * width, valid * sizeof(T));
  }
}

template <class T>
using TileFn = void (*)(const TileArgs<T>&, bool, size_t);

// Tiles<kind, T>[(M - 1) * kVectors + (NV - 1)]: every tail shape, so partial
// blocks of channels or positions do no wasted work.
template <Kind kKind, class T, size_t... I>
constexpr std::array<TileFn<T>, sizeof...(I)> MakeTiles(std::index_sequence<I...>) {
  return {&AnyTile<kKind, I / kVectors + 1, I % kVectors + 1, T>...};
}
template <Kind kKind, class T>
constexpr std::array<TileFn<T>, kRows * kVectors> kTiles =
    MakeTiles<kKind, T>(std::make_index_sequence<kRows * kVectors>());

// Slab rows r0 .. r0 + rows - 1: row r = c*K + k holds
// src[(c - first_channel) * source_pitch + k*dilation + i*stride] for
// i < kVectors * Lanes. Stride is a template parameter (0 = any) so the row
// loop has no division or switch; reads reach stride - 1 elements past the
// last used one, which callers keep as slack.
template <int64_t kStride, class T>
void GatherRows(const Geometry& g, const T* HWY_RESTRICT src, int64_t source_pitch, int64_t r0,
                int64_t rows, T* HWY_RESTRICT slab) {
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  const int64_t stride = kStride != 0 ? kStride : g.stride;
  int64_t k = r0 % g.kernel_size;
  const T* channel = src;
  for (int64_t r = 0; r < rows; ++r) {
    const T* HWY_RESTRICT from = channel + k * g.dilation;
    T* HWY_RESTRICT to = slab + r * g.tile_positions;
    hn::Vec<decltype(d)> a, b, c, e;
    for (size_t v = 0; v < kVectors; ++v) {
      if constexpr (kStride == 1) {
        a = hn::LoadU(d, from + v * lanes);
      } else if constexpr (kStride == 2) {
        hn::LoadInterleaved2(d, from + 2 * v * lanes, a, b);
      } else if constexpr (kStride == 3) {
        hn::LoadInterleaved3(d, from + 3 * v * lanes, a, b, c);
      } else if constexpr (kStride == 4) {
        hn::LoadInterleaved4(d, from + 4 * v * lanes, a, b, c, e);
      } else {
        HWY_ALIGN T buffer[hn::MaxLanes(d)];
        for (size_t i = 0; i < lanes; ++i) {
          buffer[i] = from[static_cast<int64_t>(v * lanes + i) * stride];
        }
        a = hn::Load(d, buffer);
      }
      hn::Store(a, d, to + v * lanes);
    }
    if (++k == g.kernel_size) {
      k = 0;
      channel += source_pitch;
    }
  }
}

// The input channels reduction rows [r0, r0 + rows) read.
struct ChannelRange {
  int64_t first;
  int64_t count;
};
inline ChannelRange ChannelsOf(const Geometry& g, int64_t r0, int64_t rows) {
  const int64_t first = r0 / g.kernel_size;
  return {first, (r0 + rows - 1) / g.kernel_size - first + 1};
}

// Fills slab row r - r0 with X[r, l0 + i] = xpad[ci, (l0+i)*stride + k*dilation]
// for r in [r0, r0 + rows), i < tile; `base` = l0*stride - pad_left is the
// first position in unpadded coordinates. Reads the input in place when it
// is contiguous along the length and the tile is away from the edges;
// otherwise stages the tile's span with padding applied (positions past the
// padded input are read only by discarded tail outputs and become zeros).
template <class T>
void PackSlab(const Geometry& g, const TensorRef<const T>& input, int64_t n, int64_t first_in,
              int64_t r0, int64_t rows, int64_t base, T* HWY_RESTRICT slab, T* HWY_RESTRICT stage,
              int64_t* HWY_RESTRICT index) {
  const ChannelRange channels = ChannelsOf(g, r0, rows);
  const T* src =
      input.data + n * input.batch_stride + (first_in + channels.first) * input.channel_stride;
  const int64_t reach = g.span + g.stride - 1;
  const bool read_in_place = input.length_stride == 1 && base >= 0 && base + reach <= g.length;
  int64_t source_pitch = input.channel_stride;
  if (read_in_place) {
    src += base;
  } else {
    // Positions j in [inside_begin, inside_end) are real samples; the rest
    // are padding (or past it: zeros).
    const int64_t inside_begin = std::clamp<int64_t>(-base, 0, g.stage_pitch);
    const int64_t inside_end = std::clamp<int64_t>(g.length - base, inside_begin, g.stage_pitch);
    const int64_t padded_end = g.length + g.pad_right;
    for (int64_t j = 0; j < g.stage_pitch; ++j) {
      const int64_t position = base + j;
      const int64_t source = position >= -g.pad_left && position < padded_end
                                 ? core::source_index(position, g.length, g.padding_mode)
                                 : -1;
      index[j] = source < 0 ? -1 : source * input.length_stride;
    }
    if (input.channel_stride == 1) {
      // Channels-last: read each position's channels contiguously.
      for (int64_t j = 0; j < g.stage_pitch; ++j) {
        if (index[j] < 0) {
          for (int64_t c = 0; c < channels.count; ++c) stage[c * g.stage_pitch + j] = T(0);
        } else {
          const T* HWY_RESTRICT from = src + index[j];
          for (int64_t c = 0; c < channels.count; ++c) stage[c * g.stage_pitch + j] = from[c];
        }
      }
    } else {
      for (int64_t c = 0; c < channels.count; ++c) {
        const T* HWY_RESTRICT from = src + c * input.channel_stride;
        T* HWY_RESTRICT to = stage + c * g.stage_pitch;
        for (int64_t j = 0; j < inside_begin; ++j) to[j] = index[j] < 0 ? T(0) : from[index[j]];
        if (input.length_stride == 1) {
          std::memcpy(to + inside_begin, from + base + inside_begin,
                      static_cast<size_t>(inside_end - inside_begin) * sizeof(T));
        } else {
          for (int64_t j = inside_begin; j < inside_end; ++j) to[j] = from[index[j]];
        }
        for (int64_t j = inside_end; j < g.stage_pitch; ++j) {
          to[j] = index[j] < 0 ? T(0) : from[index[j]];
        }
      }
    }
    src = stage;
    source_pitch = g.stage_pitch;
  }
  switch (g.stride) {
    case 1:
      return GatherRows<1>(g, src, source_pitch, r0, rows, slab);
    case 2:
      return GatherRows<2>(g, src, source_pitch, r0, rows, slab);
    case 3:
      return GatherRows<3>(g, src, source_pitch, r0, rows, slab);
    case 4:
      return GatherRows<4>(g, src, source_pitch, r0, rows, slab);
    default:
      return GatherRows<0>(g, src, source_pitch, r0, rows, slab);
  }
}

// Output tile [channel][position] (rows `pitch` apart) -> the output, in
// 16 x 16 blocks so that both sides stay in L1 whatever the strides.
template <class T>
void ScatterByChannel(const T* HWY_RESTRICT tile, int64_t channels, int64_t positions,
                      int64_t pitch, T* HWY_RESTRICT dst, int64_t channel_stride,
                      int64_t length_stride) {
  if (length_stride == 1) {
    for (int64_t c = 0; c < channels; ++c) {
      std::memcpy(dst + c * channel_stride, tile + c * pitch,
                  static_cast<size_t>(positions) * sizeof(T));
    }
    return;
  }
  for (int64_t c0 = 0; c0 < channels; c0 += 16) {
    const int64_t c1 = std::min(channels, c0 + 16);
    for (int64_t l = 0; l < positions; ++l) {
      T* column = dst + l * length_stride;
      for (int64_t c = c0; c < c1; ++c) column[c * channel_stride] = tile[c * pitch + l];
    }
  }
}

template <class T>
void RunLengthVectors(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t tile_positions = g.tile_positions;
  const int64_t rows = static_cast<int64_t>(kRows);

  auto* bytes = static_cast<uint8_t*>(scratch);
  T* slab = reinterpret_cast<T*>(bytes);
  bytes += slab_bytes(g, sizeof(T));
  T* stage = reinterpret_cast<T*>(bytes);
  bytes += stage_bytes(g, sizeof(T));
  auto* index = reinterpret_cast<int64_t*>(bytes);
  bytes += index_bytes(g);
  T* tile = reinterpret_cast<T*>(bytes);

  const TensorRef<T>& output = args.output;
  const int64_t first_out = task.group * g.out_channels_per_group + task.co_begin;
  const int64_t first_in = task.group * g.in_channels_per_group;
  const bool direct = in_place(g, output);
  const int64_t positions = task.l_end - task.l_begin;
  const int64_t out_pitch = direct
                                ? output.channel_stride
                                : tile_pitch(g, positions, task.co_end - task.co_begin, sizeof(T));
  T* out_base = direct ? output.data + task.n * output.batch_stride +
                             first_out * output.channel_stride + task.l_begin
                       : tile;
  const T* bias = args.bias + task.group * g.co_blocks_per_group * rows;

  TileArgs<T> a{};
  a.vectors = slab;
  a.vector_pitch = static_cast<size_t>(tile_positions);
  a.out_pitch = static_cast<size_t>(out_pitch);
  a.partial_pitch = a.out_pitch;
  for (int64_t r0 = 0; r0 < g.reduction; r0 += g.chunk) {
    const int64_t steps = std::min(g.chunk, g.reduction - r0);
    const bool accumulate = r0 > 0;
    a.steps = static_cast<size_t>(steps);
    for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += tile_positions) {
      const int64_t valid = std::min(tile_positions, task.l_end - l0);
      const int64_t vectors = (valid + lanes - 1) / lanes;
      PackSlab(g, args.input, task.n, first_in, r0, steps, l0 * g.stride - g.pad_left, slab, stage,
               index);
      // This chunk's weights for all blocks of the group are contiguous.
      a.broadcasts = args.weight + (task.group * g.co_blocks_per_group * g.reduction +
                                    g.co_blocks_per_group * r0 + task.co_begin / rows * steps) *
                                       rows;
      for (int64_t co = task.co_begin; co < task.co_end; co += rows) {
        const int64_t m = std::min(rows, task.co_end - co);
        a.bias = bias + co;
        a.out = out_base + (co - task.co_begin) * out_pitch + (l0 - task.l_begin);
        a.partial = a.out;
        kTiles<Kind::length_vectors, T>[static_cast<size_t>(
            (m - 1) * static_cast<int64_t>(kVectors) + vectors - 1)](a, accumulate,
                                                                     static_cast<size_t>(valid));
        a.broadcasts += steps * rows;
      }
    }
  }
  if (direct) return;
  ScatterByChannel(tile, task.co_end - task.co_begin, positions, out_pitch,
                   output.data + task.n * output.batch_stride + first_out * output.channel_stride +
                       task.l_begin * output.length_stride,
                   output.channel_stride, output.length_stride);
}

// Copies the padded input positions the task reads, [position][channel]
// with position_pitch elements per position.
template <class T>
void StagePositions(const Geometry& g, const TensorRef<const T>& input, int64_t n, int64_t first_in,
                    int64_t base, int64_t positions, T* HWY_RESTRICT stage) {
  const T* src = input.data + n * input.batch_stride + first_in * input.channel_stride;
  const int64_t channels = g.in_channels_per_group;
  const int64_t padded_end = g.length + g.pad_right;
  for (int64_t p = 0; p < positions; ++p) {
    const int64_t position = base + p;
    const int64_t source = position >= -g.pad_left && position < padded_end
                               ? core::source_index(position, g.length, g.padding_mode)
                               : -1;
    T* HWY_RESTRICT to = stage + p * g.position_pitch;
    if (source < 0) {
      std::fill(to, to + channels, T(0));
    } else if (input.channel_stride == 1) {
      std::memcpy(to, src + source * input.length_stride,
                  static_cast<size_t>(channels) * sizeof(T));
    } else {
      const T* HWY_RESTRICT from = src + source * input.length_stride;
      for (int64_t c = 0; c < channels; ++c) to[c] = from[c * input.channel_stride];
    }
  }
}

template <class T>
void RunChannelVectors(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t block_channels = g.block_channels;
  const int64_t rows = static_cast<int64_t>(kRows);
  const int64_t positions = task.l_end - task.l_begin;

  T* stage = static_cast<T*>(scratch);
  T* tile = reinterpret_cast<T*>(static_cast<uint8_t*>(scratch) +
                                 task_stage_bytes(g, positions, sizeof(T)));
  const int64_t first_in = task.group * g.in_channels_per_group;
  StagePositions(g, args.input, task.n, first_in, task.l_begin * g.stride - g.pad_left,
                 task_span(g, positions), stage);

  const TensorRef<T>& output = args.output;
  const int64_t first_out = task.group * g.out_channels_per_group + task.co_begin;
  const bool direct = in_place(g, output);
  const int64_t channels = task.co_end - task.co_begin;
  T* out_base = direct ? output.data + task.n * output.batch_stride + first_out +
                             task.l_begin * output.length_stride
                       : tile;
  const int64_t out_pitch = direct ? output.length_stride : channels;
  const T* bias = args.bias + task.group * g.co_blocks_per_group * block_channels;

  TileArgs<T> a{};
  a.row_pitch = static_cast<size_t>(g.stride * g.position_pitch);
  a.vector_pitch = static_cast<size_t>(block_channels);
  a.out_pitch = static_cast<size_t>(out_pitch);
  a.partial_pitch = a.out_pitch;
  for (int64_t r0 = 0; r0 < g.reduction; r0 += g.chunk) {
    const int64_t steps = std::min(g.chunk, g.reduction - r0);
    const bool accumulate = r0 > 0;
    a.steps = static_cast<size_t>(steps);
    a.offsets = g.offsets + r0;
    for (int64_t co = task.co_begin; co < task.co_end; co += block_channels) {
      const int64_t valid = std::min(block_channels, task.co_end - co);
      const int64_t vectors = (valid + lanes - 1) / lanes;
      // This chunk's weights for all blocks of the group are contiguous; the
      // block's panel (steps x block_channels) stays in L1 across positions.
      a.vectors = args.weight + (task.group * g.co_blocks_per_group * g.reduction +
                                 g.co_blocks_per_group * r0 + co / block_channels * steps) *
                                    block_channels;
      a.bias = bias + co;
      for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += rows) {
        const int64_t m = std::min(rows, task.l_end - l0);
        a.broadcasts = stage + (l0 - task.l_begin) * g.stride * g.position_pitch;
        a.out = out_base + (l0 - task.l_begin) * out_pitch + (co - task.co_begin);
        a.partial = a.out;
        kTiles<Kind::channel_vectors, T>[static_cast<size_t>(
            (m - 1) * static_cast<int64_t>(kVectors) + vectors - 1)](a, accumulate,
                                                                     static_cast<size_t>(valid));
      }
    }
  }
  if (direct) return;
  T* dst = output.data + task.n * output.batch_stride + first_out * output.channel_stride +
           task.l_begin * output.length_stride;
  for (int64_t l = 0; l < positions; ++l) {
    for (int64_t c = 0; c < channels; ++c) {
      dst[l * output.length_stride + c * output.channel_stride] = tile[l * channels + c];
    }
  }
}

template <class T>
void RunTask(const Args<T>& args, const Task& task, void* scratch) {
  if (args.geometry->kind == Kind::length_vectors) {
    RunLengthVectors(args, task, scratch);
  } else {
    RunChannelVectors(args, task, scratch);
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
                             &RunTaskF32,
                             &RunTaskF64};
  return &target;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::direct
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::direct {

HWY_EXPORT(GetTarget);

const Target& chosen_target() { return *HWY_DYNAMIC_DISPATCH(GetTarget)(); }

}  // namespace conv1d::kernels::direct
#endif  // HWY_ONCE
