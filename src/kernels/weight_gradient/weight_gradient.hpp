// The weight gradient as a GEMM per tap: the interface between the driver
// (weight_gradient.cpp) and the per-ISA tile code (kernels.cpp).
//
//   grad_weight[o, c, k] = sum_n sum_t grad_output[n, o, t] * xpad[n, c, t*stride + k*dilation]
//
// For one group and tap that is a GEMM over t of grad_output (the broadcast
// operand, read in place: row o, element t) and the padded input staged
// position-major ([padded position][channel], the vector operand): tap k
// at step t reads staged row t*stride + k*dilation, so stride and dilation
// are address arithmetic. The accumulators hold vectors of input channels,
// never summed across lanes, and carry from one chunk of positions (and one
// batch item) to the next through a buffer of partial sums,
// [group][tap][output channel][input channel].
//
// At dilation 1 with rows of exactly C_in/G channels, step t's K taps are
// one run of K * C_in/G staged elements from row t*stride on: where that
// fills the vectors better (12 channels: 180 of 192 lanes, against 12 of
// 16), the taps and channels are one vector dimension j = k * C_in/G + c,
// a single GEMM per group ("taps in vectors").
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstdint>

namespace conv1d::kernels::weight_gradient {

// Groups of fewer input channels than half a vector (depthwise layers,
// audio front ends of one channel) would leave most lanes of the GEMM's
// vectors idle: there each (output channel, input channel, tap) is a dot
// product along t instead, of grad_output's row and the input's, staged
// once per batch item as `stride` phase rows (phase r holds padded
// positions r, r + stride, ...), vectors along t summed across lanes at
// the end.

// Shapes every task shares; sizes in elements.
struct Geometry {
  int64_t batch = 0;
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
  bool taps_in_vectors = false;
  int64_t tap_passes = 0;  // GEMMs per group: K, or 1 with taps in vectors
  // The vector dimension of a group (C_in/G, or K * C_in/G with taps in
  // vectors) in blocks of whole vectors, as even as the tile's width allows
  // (80 channels on 16 lanes: 3 + 2 vectors).
  int64_t vectors = 0;  // per group, the last zero-padded
  int64_t blocks = 0;
  int64_t partial_pitch = 0;  // vectors x lanes
  int64_t chunk_steps = 0;    // positions t per chunk
  // Taps in vectors: staged rows past the last tap's, which the last
  // vector's lanes past K * C_in/G read (their sums are not kept).
  int64_t extra_rows = 0;
  // Dot products: the padded positions of one phase row, and grad_output's
  // row, each in whole vectors (zeros past the data).
  bool dot_products = false;
  int64_t phase_length = 0;
  int64_t padded_out_length = 0;
};

// Block b's first vector (b <= blocks); the blocks' sizes differ by at
// most one vector.
inline int64_t block_start(const Geometry& g, int64_t b) { return b * g.vectors / g.blocks; }

// One task: a group's output channels [first_output, end_output) (whole
// tiles of rows but the group's last) and, for the GEMM, a range of its
// blocks of vectors, over the whole batch and length.
template <class T>
struct TaskArgs {
  const Geometry* geometry;
  TensorRef<const T> input;
  TensorRef<const T> grad_output;
  int64_t group;
  int64_t first_block, end_block;  // GEMM
  int64_t first_output, end_output;
  T* partial;  // GEMM: the partial sums of every group; dot products: grad_weight
};

struct Target {
  int lanes_f32, lanes_f64;  // per vector
  int rows, vectors;         // the widest tile
  // Bytes of scratch a task of `vectors` vectors of channels needs (any
  // for dot products).
  int64_t (*scratch_bytes)(const Geometry&, int64_t vectors, int64_t element);
  void (*run_f32)(const TaskArgs<float>&, void* scratch);
  void (*run_f64)(const TaskArgs<double>&, void* scratch);
  // The sum of a contiguous row, in double (the bias gradient).
  double (*row_sum_f32)(const float* row, int64_t length);
  double (*row_sum_f64)(const double* row, int64_t length);
};

// The best target for the current ISA cap.
const Target& chosen_target();

// grad_weight (C_out, C_in/G, K) and grad_bias (C_out, or null) are
// overwritten.
template <class T>
void compute(const Target& target, const Problem& problem, TensorRef<const T> input,
             TensorRef<const T> grad_output, T* grad_weight, T* grad_bias, int threads);

}  // namespace conv1d::kernels::weight_gradient
