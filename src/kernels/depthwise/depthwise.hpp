// Depthwise convolution (groups == C_in, any depth multiplier m = C_out/C_in)
// and grouped convolution with up to kMaxInPerGroup input channels per group
// (layers with few output channels per group, where a GEMM tile's rows go
// unused): the interface between the plan-side executor (algorithm.cpp) and
// the per-ISA task code (kernels.cpp).
//
// Output channel co reads input channels (co / m) * g + ci, ci < g, where g is
// C_in / groups (1 for depthwise) and m is C_out / groups. Two task shapes:
//
// - "lanes = channels" (channel-vectorised): a SIMD vector holds V output
//   channels at one position. The input positions a task needs are packed
//   into a [position][V] buffer (padding resolved, NCL rows transposed in
//   registers, lanes replicated for m > 1) unless the input is channels-last
//   and can be read in place. The tap weights are vectors, so a register
//   block of J positions x KC taps shares every input load among up to KC
//   FMAs (KC / stride for packed spans at strides 2-4 and dilation 1):
//   compute-bound layers (K = 31) run close to the FMA peak.
// - "lanes = length" (length-vectorised): a SIMD vector holds V consecutive
//   output positions of one channel row and the weights are broadcasts. NCL
//   rows are read in place (no transposes), so memory-bound layers (K = 4)
//   move each byte once; on AVX-512, stride-1 rows with 5 <= K <= 2V load
//   whole vectors once and shift lanes out of them in registers
//   (ShiftedRow, K = 31 and 9 among them; a task's zero-padded rows run in
//   one call, ShiftedRows, and so do long rows of the other padding modes,
//   which then add their padding's terms). Channels-last layers with short
//   kernels run position-major, streaming whole rows.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>

#include "core/scratch.hpp"

namespace conv1d::kernels::depthwise {

enum class Shape { channel_vectors, length_vectors };

// Plan-time constants shared by every task.
struct Geometry {
  Shape shape = Shape::channel_vectors;
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t length = 0;  // L_in
  int64_t out_length = 0;
  int64_t kernel_size = 0;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_left = 0;
  PaddingMode padding_mode = PaddingMode::zeros;
  int64_t in_per_group = 1;   // g
  int64_t out_per_group = 1;  // m

  // Task grid: batch x groups of channel blocks x length tiles. Tiles vary
  // fastest for NCL (a task streams along rows); for channels-last a task
  // sweeps many blocks over a short tile, so that it reads whole input rows
  // (64 bytes per block) from few pages.
  bool blocks_fastest = false;
  int64_t channel_block = 0;  // output channels per block (V for channel_vectors)
  int64_t channel_blocks = 0;
  int64_t blocks_per_task = 1;
  int64_t tile_length = 0;  // output positions per task
  int64_t tiles = 0;
  int64_t block_groups() const { return (channel_blocks + blocks_per_task - 1) / blocks_per_task; }
  int64_t tasks() const { return batch * block_groups() * tiles; }
};

template <class T>
struct Args {
  const Geometry* geometry = nullptr;
  TensorRef<const T> input;
  TensorRef<T> output;
  // channel_vectors: [C_out blocks of V][g][K][V], lanes past C_out zero.
  // length_vectors: the user's (C_out, g, K).
  const T* weight = nullptr;
  // channel_vectors: [blocks][V], zero when the problem has no bias.
  // length_vectors: [C_out], zero when the problem has no bias.
  const T* bias = nullptr;
  // length_vectors: no weight is infinite or NaN, so a tap over zero padding
  // adds an exact zero (kernels.cpp, AddPaddingTerms).
  bool finite_weights = true;
};

// What one SIMD target provides (see kernels.cpp).
struct Target {
  int lanes_f32 = 1;
  int lanes_f64 = 1;
  int positions = 1;  // output positions per register block (channel vectors)
  // Channel vectors, packed input at dilation 1 and strides 2..kMaxSharedStride:
  // taps per chunk whose loads neighbouring outputs share (a layer of
  // fewer taps loads once per FMA).
  int shared_stride_taps = 1;
  // Runs one task; `scratch` is 64-byte aligned and scratch_bytes() long.
  void (*run_f32)(const Args<float>& args, int64_t task, void* scratch) = nullptr;
  void (*run_f64)(const Args<double>& args, int64_t task, void* scratch) = nullptr;
};

// Largest stride at which packed channel vectors share loads between the
// taps of neighbouring outputs.
constexpr int64_t kMaxSharedStride = 4;
// Whether packed channel vectors run the kernel of this constant stride
// (RunChannels in kernels.cpp), whose neighbouring outputs share loads; the
// cost model counts the same layers as sharing.
inline bool packed_taps_share_loads(int64_t stride, int64_t dilation) {
  return dilation == 1 && stride <= kMaxSharedStride;
}

// The target chosen by core::chosen_target() at the time of the call.
const Target& chosen_target();

// Length vectors of N lanes share row loads between taps k and k + N when
// stride = dilation = 1 and there are at most this many taps per residue.
constexpr int64_t kMaxTapsPerResidue = 4;

// AVX-512 stride-1 rows of this many taps or more (up to 2 vectors' worth)
// load whole vectors once and shift their lanes (ShiftedRow). Below 9 taps
// the weights would fit registers, but there every tap's load splits a
// cache line: shifting is 1.3-1.8x faster at K = 6..8 (with or without a
// depth multiplier) and at K = 5 with one (level without). At K <= 4 the
// register kernel is level or faster (Mamba's K = 4 rows in place).
constexpr int64_t kMinShiftedTaps = 5;

// Input channels per group the kernels take: each output sums them one
// after another, as separate rows or lane sets (grouped layers with few
// output channels per group, where a GEMM tile's rows go unused).
constexpr int64_t kMaxInPerGroup = 16;
inline bool shares_row_loads(const Geometry& g, int64_t lanes) {
  return g.stride == 1 && g.dilation == 1 &&
         (g.kernel_size + lanes - 1) / lanes <= kMaxTapsPerResidue;
}

// Channels-last kernels of up to this many taps are memory bound: their
// interiors run position-major over whole blocks (see ChannelTask).
constexpr int64_t kMaxStreamedTaps = 9;

using core::round_up_64;

// Length-vector rows computed in whole register blocks from a packed copy
// run up to this many vectors past their outputs (reads and writes).
constexpr int64_t kRowSlackVectors = 8;

// Padded input positions one task of `outputs` positions reads.
inline int64_t input_span(const Geometry& g, int64_t outputs) {
  return (outputs - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1;
}

// length_vectors: a packed row holds the input span of tile_length +
// `lanes` outputs (row pieces run whole vectors, or whole blocks: up to
// kRowSlackVectors vectors past the tile), de-interleaved into `stride`
// phases of row_phase_length() elements, and a vector of slack.
inline int64_t row_phase_length(const Geometry& g, int64_t lanes) {
  const int64_t span = input_span(g, g.tile_length + lanes) + g.stride + kRowSlackVectors * lanes;
  return (span + g.stride - 1) / g.stride;
}
inline int64_t packed_row_elements(const Geometry& g, int64_t lanes) {
  return row_phase_length(g, lanes) * g.stride + lanes;
}

// Scratch of one task in bytes; parts are 64-byte aligned. channel_vectors:
// g packed inputs [span][V] and an output tile [tile][V]. length_vectors:
// g packed rows (span of tile_length + V outputs, de-interleaved into
// `stride` phases, plus slack), an output row of tile_length + slack and
// the g * K tap pointers.
inline size_t scratch_bytes(const Geometry& g, int64_t lanes, size_t element) {
  const auto tile = static_cast<size_t>(g.tile_length);
  const auto in_per_group = static_cast<size_t>(g.in_per_group);
  const auto v = static_cast<size_t>(lanes);
  if (g.shape == Shape::channel_vectors) {
    const auto span = static_cast<size_t>(input_span(g, g.tile_length) + g.stride);
    return in_per_group * round_up_64(span * v * element) + round_up_64(tile * v * element);
  }
  const auto slack = static_cast<size_t>(kRowSlackVectors) * v;
  return in_per_group * round_up_64(static_cast<size_t>(packed_row_elements(g, lanes)) * element) +
         round_up_64((tile + slack) * element) +
         round_up_64(in_per_group * static_cast<size_t>(g.kernel_size) * sizeof(void*));
}

}  // namespace conv1d::kernels::depthwise
