// Direct convolution, "BRGEMM over taps": the interface between the plan-side
// executor (algorithm.cpp) and the per-ISA tile code (kernels.cpp).
//
// Per output sample the convolution is a GEMM over the reduction index r,
// which runs over (input channel ci, tap k) of the group:
//   out[co, l] = bias[co] + sum_r W[co, r] * X[r, l],
//   X[r, l] = xpad[ci, l*stride + k*dilation].
// Register tiles hold a block of outputs; each reduction step broadcasts one
// operand per tile row and multiplies it with a few SIMD vectors of the
// other. Three tile kinds, picked by the layout and the cost model:
//
// - length_vectors (NCL output): rows = output channels, vectors along the
//   length; within a chunk of input channels r = k*channels + ci, so that
//   the taps a tile reads only zero padding from are one range of steps it
//   skips. Per length tile and reduction chunk the input
//   channels the chunk reads are staged once (L1-sized, padding applied,
//   tensor strides resolved), each as `stride` phase rows: phase p holds the
//   padded positions base + p + j*stride. Tap k of a channel is then the
//   phase row (k*dilation) % stride read from element (k*dilation) / stride
//   on: stride and dilation are address arithmetic (a table of per-step
//   offsets), and the copy is O(channels x span), not O(chunk x tile). At
//   stride 1 with few output channels per task, tiles away from the edges
//   read the input in place instead (the copy would cost more than the few
//   tiles that read it save).
// - channel_vectors (NLC output, or NCL with short rows or large strides):
//   rows = positions, vectors along the output channels. The task's input
//   span is staged once, position-major with padding applied
//   ([position][channel]), and broadcast from there; the weights
//   (r = k*C_in/G + ci) are the vector operand. A group of few output
//   channels (fewer vectors of them than a tile's) runs tiles of more
//   positions, so that every tile has as many accumulators.
// - reduction_vectors (few output channels per group): no broadcasts; each
//   accumulator is a vector along the input channels of one output (channel,
//   position), summed across its lanes at the end. Staged as for
//   channel_vectors, with zeros up to a whole vector of channels; weights
//   [co][k][ci] with the same zeros.
#pragma once

#include <algorithm>
#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>

#include "core/scratch.hpp"

namespace conv1d::kernels::direct {

enum class Kind { length_vectors, channel_vectors, reduction_vectors };

// Plan-time constants shared by every task; sizes in elements.
struct Geometry {
  Kind kind = Kind::length_vectors;
  int64_t length = 0;  // L_in
  int64_t out_length = 0;
  int64_t kernel_size = 0;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  PaddingMode padding_mode = PaddingMode::zeros;
  int64_t in_channels_per_group = 0;
  int64_t out_channels_per_group = 0;

  int64_t block_channels = 0;  // output channels per register tile
  int64_t co_blocks_per_group = 0;
  int64_t tile_positions = 0;  // output positions per register tile
  int64_t reduction = 0;       // in_channels_per_group * kernel_size
  int64_t chunk = 0;           // reduction steps per cache block

  // length_vectors: the staged input. A chunk is chunk_channels whole input
  // channels (chunk = chunk_channels * K steps), each staged as
  // rows_per_channel rows of row_length elements, row_pitch apart (whole
  // cache lines):
  // - taps_share_rows: `stride` phase rows of tile + (K-1)*dilation/stride
  //   elements; tap k reads phase (k*dilation) % stride from element
  //   (k*dilation) / stride on;
  // - otherwise (taps further apart than a tile: large dilation, or fewer
  //   taps than the stride, where phases would copy unused elements): one
  //   row of `tile` elements per tap; at dilation 1 tap k's row is stride
  //   phase k, and one de-interleaving pass fills them all.
  // Step s = k*channels + ci of a chunk reads its vectors at
  // vector_offsets[s] from the chunk's first staged row; a last chunk of
  // fewer channels at last_vector_offsets[s]. reach: padded positions from
  // a tile's first that staging reads.
  bool taps_share_rows = true;
  int64_t rows_per_channel = 0;
  int64_t row_length = 0;
  int64_t row_pitch = 0;
  int64_t reach = 0;
  int64_t chunk_channels = 0;
  const int64_t* vector_offsets = nullptr;       // [chunk]
  const int64_t* last_vector_offsets = nullptr;  // [reduction - earlier chunks]
  // Whether tiles prefetch the input of the next staging (StagePrefetch in
  // kernels.cpp).
  bool prefetch_stage = true;

  // channel_vectors and reduction_vectors: elements per staged position.
  // channel_vectors: the offset of reduction step r = k*C_in/G + ci from a
  // position's first element: k*dilation*position_pitch + ci.
  // reduction_vectors: input channels per group rounded up to whole
  // vectors (<= position_pitch); block_channels and tile_positions are the
  // tile's output channels and positions.
  int64_t position_pitch = 0;
  const int64_t* offsets = nullptr;  // [reduction]
  int64_t vector_channels = 0;
  // channel_vectors: a group's weights exceed L2, so each panel (a chunk of
  // steps x block_channels) comes from L3 or memory; where few tiles share
  // a panel, they prefetch the next one.
  bool weights_beyond_l2 = false;
};

// One task: output channels [co_begin, co_end) of group `group` (relative to
// the group, co_begin a multiple of block_channels) at positions
// [l_begin, l_end) of sample `n`; l_begin is a multiple of tile_positions.
struct Task {
  int64_t n = 0;
  int64_t group = 0;
  int64_t co_begin = 0;
  int64_t co_end = 0;
  int64_t l_begin = 0;
  int64_t l_end = 0;
};

template <class T>
struct Args {
  const Geometry* geometry = nullptr;
  TensorRef<const T> input;
  TensorRef<T> output;
  // [group][chunk][co_block][r in chunk][block_channels], channels past
  // out_channels_per_group zero; reduction_vectors: [group][co_block *
  // block_channels][k][vector_channels]; 64-byte aligned.
  const T* weight = nullptr;
  // [group][co_blocks_per_group * block_channels], zeros for a layer
  // without bias and past out_channels_per_group.
  const T* bias = nullptr;
  // Zero padding and finite weights: taps that read only padding add
  // exact zeros, so tiles may skip them (with an infinite weight they
  // would add NaN).
  bool skip_padding_taps = false;
};

// The taps [first, last] of which some of `count` outputs, `stride` apart
// from padded position `base` (input coordinates: 0 is the input's first
// element), read inside an input of `length`; never empty (a tile that
// reads only padding keeps one tap, which adds zeros to its bias).
struct TapRange {
  int64_t first = 0;
  int64_t last = 0;
};
inline int64_t floor_div_signed(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);
}
inline TapRange taps_inside(const Geometry& g, int64_t base, int64_t count) {
  const int64_t last_read = base + (count - 1) * g.stride;
  // Tap k reads [base + k*dilation, last_read + k*dilation].
  int64_t first = -floor_div_signed(last_read, g.dilation);
  int64_t last = floor_div_signed(g.length - 1 - base, g.dilation);
  first = std::clamp<int64_t>(first, 0, g.kernel_size - 1);
  last = std::clamp<int64_t>(last, first, g.kernel_size - 1);
  return {first, last};
}

// Scratch of one task, in bytes, each part 64-byte aligned, then (when the
// output cannot be written in place) a tile of the task's outputs.
using core::round_up_64;
// length_vectors: the staged channels of a chunk, the source index of each
// padded position a tile reads, and a channel's padded span.
inline size_t stage_bytes(const Geometry& g, size_t element_size) {
  return round_up_64(static_cast<size_t>(g.chunk_channels * g.rows_per_channel * g.row_pitch) *
                     element_size);
}
inline size_t index_bytes(const Geometry& g) {
  return round_up_64(static_cast<size_t>(g.reach) * sizeof(int64_t));
}
// length_vectors near the edges: the padded spans of up to kSpanRows
// channels, span_pitch elements apart.
constexpr int64_t kSpanRows = 8;
inline int64_t span_pitch(const Geometry& g, size_t element_size) {
  return static_cast<int64_t>(round_up_64(static_cast<size_t>(g.reach) * element_size) /
                              element_size);
}
inline size_t span_bytes(const Geometry& g, size_t element_size) {
  return static_cast<size_t>(kSpanRows * span_pitch(g, element_size)) * element_size;
}
// channel_vectors: the staged span of `positions` outputs.
inline int64_t task_span(const Geometry& g, int64_t positions) {
  return (positions - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1;
}
inline size_t task_stage_bytes(const Geometry& g, int64_t positions, size_t element_size) {
  return round_up_64(static_cast<size_t>(task_span(g, positions) * g.position_pitch) *
                     element_size);
}
// length_vectors at stride 1: the offsets of a chunk's steps in the input
// itself, for tiles that read it in place.
inline size_t in_place_offsets_bytes(const Geometry& g) {
  return round_up_64(static_cast<size_t>(g.chunk) * sizeof(int64_t));
}
inline size_t input_scratch_bytes(const Geometry& g, int64_t task_positions, size_t element_size) {
  if (g.kind != Kind::length_vectors) return task_stage_bytes(g, task_positions, element_size);
  return stage_bytes(g, element_size) + index_bytes(g) + span_bytes(g, element_size) +
         in_place_offsets_bytes(g);
}

// Whether tiles accumulate straight into the output: it must be contiguous
// along the tile vectors, and (length_vectors) its rows must not be a
// multiple of 4 KiB apart when partial sums are reloaded: a tile's loads
// would wait on the previous tile's stores (4K aliasing; 14.4 instead of
// 12.0 cycles per step measured at L_out = 1024). Otherwise the task keeps
// its partial sums in a tile of its own; the last reduction chunk stores
// to a contiguous output directly (no loads follow those stores), and a
// strided output gets the tile copied out at the end.
// reduction_vectors stores each output once, at any strides.
template <class T>
bool in_place(const Geometry& g, const TensorRef<T>& output) {
  if (g.kind == Kind::reduction_vectors) return true;
  if (g.kind == Kind::channel_vectors) return output.channel_stride == 1;
  if (output.length_stride != 1) return false;
  if (g.reduction <= g.chunk) return true;
  const int64_t tile_bytes = g.tile_positions * static_cast<int64_t>(sizeof(T));
  const int64_t offset = output.channel_stride * static_cast<int64_t>(sizeof(T)) % 4096;
  return offset >= tile_bytes && offset <= 4096 - tile_bytes;
}
// Elements between the rows of that tile: for length_vectors (rows =
// channels) one cache line more than the task's positions, so its rows do
// not alias either; for channel_vectors (rows = positions) the channels.
inline int64_t tile_pitch(const Geometry& g, int64_t positions, int64_t channels,
                          size_t element_size) {
  if (g.kind == Kind::channel_vectors) return channels;
  return positions + 64 / static_cast<int64_t>(element_size);
}
inline size_t tile_bytes(const Geometry& g, int64_t positions, int64_t channels,
                         size_t element_size) {
  const int64_t rows = g.kind == Kind::channel_vectors ? positions : channels;
  return static_cast<size_t>(rows * tile_pitch(g, positions, channels, element_size)) *
         element_size;
}

// What one SIMD target provides (see kernels.cpp).
struct Target {
  int rows = 1;     // tile rows: output channels or positions
  int vectors = 1;  // SIMD vectors per tile row
  // reduction_vectors tiles: output channels x positions.
  int sum_rows = 1;
  int sum_positions = 1;
  int lanes_f32 = 1;
  int lanes_f64 = 1;
  // Strides up to which the cost model counts length-vector staging as
  // de-interleaved with vector operations; beyond, element by element.
  int max_vector_stride = 4;
  // Runs one task; scratch as described above, 64-byte aligned.
  void (*run_f32)(const Args<float>& args, const Task& task, void* scratch) = nullptr;
  void (*run_f64)(const Args<double>& args, const Task& task, void* scratch) = nullptr;
};

// The target chosen by core::chosen_target() at the time of the call.
const Target& chosen_target();

}  // namespace conv1d::kernels::direct
