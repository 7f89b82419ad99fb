// Fused separable convolution (depthwise, then 1x1 pointwise): the interface
// between the executor (algorithm.cpp) and the per-ISA task code
// (kernels.cpp).
//
// A task owns a few output positions of one sample. For each tile of
// positions it computes the depthwise result of every intermediate channel
// into a small buffer (the "mid" tile, L1/L2-sized) and immediately runs the
// pointwise GEMM on it:
//   mid[c, l] = dw_bias[c] + sum_k dw_weight[c, k] * xpad[c / M, l*stride + k*dilation]
//   out[co, l] = pw_bias[co] + sum_c pw_weight[co, c] * mid[c, l]
// so the intermediate tensor never exists in memory. Two tile shapes, by the
// layout the executor is made for (as in the direct algorithm):
//
// - NCL: mid is [c][position], `tile_positions` (a few register tiles) wide;
//   the depthwise part runs along the length from the input row (in place or
//   staged with padding and split into `stride` phases, so every tap is a
//   run of unit-stride loads); GEMM register tiles are output channels x
//   position vectors, broadcasting packed pointwise weights.
// - NLC: mid is [position][c'] with c' = m*C_in + ci (the pointwise
//   reduction runs over this order; its weights are packed to match), so the
//   depthwise part runs along the input channels, reading channels-last rows
//   in place; GEMM register tiles are positions x output-channel vectors,
//   broadcasting mid.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>

#include "core/scratch.hpp"

namespace conv1d::kernels::separable {

// Plan-time constants shared by every task; sizes in elements.
struct Geometry {
  Layout layout = Layout::ncl;
  int64_t length = 0;  // L_in
  int64_t out_length = 0;
  int64_t kernel_size = 0;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  PaddingMode padding_mode = PaddingMode::zeros;
  int64_t in_channels = 0;
  int64_t multiplier = 1;
  int64_t mid_channels = 0;  // in_channels * multiplier: the pointwise reduction
  int64_t out_channels = 0;

  int64_t block_channels = 0;  // output channels per register tile (NLC: vector width)
  int64_t co_blocks = 0;
  int64_t chunk = 0;           // reduction steps per cache block
  int64_t tile_positions = 0;  // outputs per depthwise tile: whole register tiles
  // Elements between the rows of the mid tile (NCL: channels, NLC:
  // positions) and of the local tile of one register tile row block
  // (NCL: C_out x one register tile, NLC: tile_positions x C_out).
  int64_t mid_pitch = 0;
  int64_t out_pitch = 0;
  // Padded input positions one tile reads: (tile-1)*stride + (K-1)*dilation + 1.
  int64_t span = 0;
  // NCL: elements of one stride phase of a staged input row; phase p holds
  // xpad[base + p + stride*j], j < phase_width.
  int64_t phase_width = 0;
  // NCL, stride = dilation = 1, kMinShiftedTaps taps or more, on a target
  // with shifted rows: the depthwise tile shifts its residues out of whole
  // loads, in windows of 2N taps, each reading up to two vectors past the
  // tile from the window's start (phase_width covers them).
  bool shifted_taps = false;
  // NCL: where tap k reads in the staged phases, (k*dilation % stride) *
  // phase_width + k*dilation / stride: no division per tap.
  const int64_t* tap_offsets = nullptr;  // [kernel_size]
  int64_t stage_pitch = 0;               // NLC: elements between staged positions
};

template <class T>
struct Args {
  const Geometry* geometry = nullptr;
  TensorRef<const T> input;
  TensorRef<T> output;
  // NCL: [c][K]; NLC: [K][c'] (see above). Bias [c] / [c'], zeros when absent.
  const T* dw_weight = nullptr;
  const T* dw_bias = nullptr;
  // [chunk][co_block][step in chunk][block_channels], output channels past
  // the last zero; 64-byte aligned. Bias [co_blocks * block_channels].
  const T* pw_weight = nullptr;
  const T* pw_bias = nullptr;
};

// One task: positions [l_begin, l_end) of sample n, l_begin a multiple of
// tile_positions.
struct Task {
  int64_t n = 0;
  int64_t l_begin = 0;
  int64_t l_end = 0;
};

using core::round_up_64;

// Scratch of one task, each part 64-byte aligned: the staged input (NCL:
// two channels), the
// source index of each staged position, the mid tile, the output tile.
inline size_t stage_elements(const Geometry& g) {
  if (g.layout == Layout::ncl) return static_cast<size_t>(2 * g.stride * g.phase_width);
  return static_cast<size_t>(g.span * g.stage_pitch);
}
inline size_t index_elements(const Geometry& g) {
  return static_cast<size_t>(g.layout == Layout::ncl ? g.stride * g.phase_width : g.span);
}
inline size_t mid_elements(const Geometry& g) {
  return static_cast<size_t>((g.layout == Layout::ncl ? g.mid_channels : g.tile_positions) *
                             g.mid_pitch);
}
inline size_t out_elements(const Geometry& g) {
  return static_cast<size_t>(
      (g.layout == Layout::ncl ? g.co_blocks * g.block_channels : g.tile_positions) * g.out_pitch);
}
inline size_t scratch_bytes(const Geometry& g, size_t element_size) {
  return round_up_64(stage_elements(g) * element_size) +
         round_up_64(index_elements(g) * sizeof(int64_t)) +
         round_up_64(mid_elements(g) * element_size) + round_up_64(out_elements(g) * element_size);
}

// Taps from which the depthwise tile shifts residues out of whole loads
// where the target can, the depthwise algorithm's threshold for its rows
// (measured 1.04x at K = 7 fused, up to 1.3x at K = 24); fewer taps run
// the plain loop.
constexpr int64_t kMinShiftedTaps = 5;

// What one SIMD target provides (see kernels.cpp).
struct Target {
  int rows = 1;     // register tile rows: output channels (NCL) or positions (NLC)
  int vectors = 1;  // SIMD vectors per register tile row
  int lanes_f32 = 1;
  int lanes_f64 = 1;
  bool shifted_rows = false;  // kernels/common/shifted-inl.h's kShiftedRows
  // Runs one task; scratch as described above, 64-byte aligned.
  void (*run_f32)(const Args<float>& args, const Task& task, void* scratch) = nullptr;
  void (*run_f64)(const Args<double>& args, const Task& task, void* scratch) = nullptr;
};

// The target chosen by core::chosen_target() at the time of the call.
const Target& chosen_target();

}  // namespace conv1d::kernels::separable
