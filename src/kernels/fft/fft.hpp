// FFT convolution (overlap-save): the interface between the plan-side
// executor (algorithm.cpp) and the per-ISA code (kernels.cpp).
//
// The stride-1 outputs of one sample are cut into blocks of M positions;
// block j reads the N = 2H padded input positions [j*M, j*M + N), N a power
// of two and M = N - span + 1 (span = (K-1)*dilation + 1, the dilated
// kernel). A circular correlation of length N is exact on the first M of
// them. Per block:
//   1. forward: each input channel's N real samples become H + 1 complex
//      bins (a complex FFT of H points on z[r] = x[2r] + i x[2r+1], then the
//      real-input split);
//   2. product: per bin, Y[co] = sum_{ci in group} W[co, ci] X[ci], with W
//      the conjugated spectrum of the dilated kernel, transformed once in
//      set_weights;
//   3. inverse: the real-output merge, a complex inverse FFT of H points,
//      bias, and the block's outputs (every stride-th position) written out.
// SIMD vectors hold V independent transforms (V channels, data[row][lane]),
// so butterflies are plain vector arithmetic with broadcast twiddles. The
// forward FFT is decimation-in-frequency (natural order in, bit-reversed
// out) and the inverse decimation-in-time (bit-reversed in, natural out), so
// no pass reorders data: the split and merge steps read and write through
// the bit-reversal table.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>

#include "core/scratch.hpp"

namespace conv1d::kernels::fft {

// Plan-time constants shared by every task; sizes in elements.
struct Geometry {
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t length = 0;  // L_in
  int64_t out_length = 0;
  int64_t stride = 1;
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  PaddingMode padding_mode = PaddingMode::zeros;
  int64_t groups = 1;
  int64_t in_per_group = 0;
  int64_t out_per_group = 0;

  int64_t lanes = 0;          // V, transforms per vector
  int64_t fft_size = 0;       // N
  int64_t half = 0;           // H = N / 2, points of the complex FFT
  int64_t bins = 0;           // H + 1
  int64_t block_outputs = 0;  // M, stride-1 positions per block
  int64_t positions = 0;      // stride-1 positions a sample needs: (L_out - 1)*stride + 1
  int64_t blocks_per_sample = 0;
  // Depthwise layers (one input channel per group) keep channels in the
  // lanes throughout: one task takes a block of V output channels co (of
  // input channels co / multiplier) from input to output, with the product
  // per lane, Y[co] = W[co] X[co]. Otherwise the forward transforms of all
  // input channels go to shared spectra, and a product panel holds V output
  // channels of one group.
  bool by_channel = false;
  int64_t multiplier = 1;         // by_channel: C_out / C_in
  int64_t spectrum_channels = 0;  // C_out if by_channel, else C_in
  int64_t in_panels = 0;          // ceil(spectrum_channels / V): forward transforms per block
  int64_t spectrum_pitch = 0;     // in_panels * V
  int64_t out_panels = 0;         // ceil(task_out_channels() / V)

  int64_t total_blocks() const { return batch * blocks_per_sample; }
  // Groups of output channels the product handles separately, and their size.
  int64_t task_groups() const { return by_channel ? 1 : groups; }
  int64_t task_out_channels() const { return by_channel ? out_channels : out_per_group; }
};

// Output-side work of one task: output-channel panels [panel_begin,
// panel_end) of task group `group`, blocks [block_begin, block_end) of the
// chunk.
struct Task {
  int64_t group = 0;
  int64_t panel_begin = 0;
  int64_t panel_end = 0;
  int64_t block_begin = 0;
  int64_t block_end = 0;
};

template <class T>
struct Args {
  const Geometry* geometry = nullptr;
  TensorRef<const T> input;
  TensorRef<T> output;
  // [task group][bin][ci][panel][re V | im V] (ci < 1 when by_channel):
  // conj(DFT_N(dilated kernel)) / 2N,
  // which also undoes the factor 2 of the forward split and the N of the
  // unnormalised inverse. Lanes past task_out_channels() zero.
  const T* weight = nullptr;
  const T* bias = nullptr;  // [C_out], zeros without bias
  // Butterfly twiddles exp(-2 pi i t / (2h)), t < h, of the stage pairing
  // rows h apart, at [h - 1 + t] (H - 1 entries each).
  const T* twiddle_re = nullptr;
  const T* twiddle_im = nullptr;
  // exp(-2 pi i k / N), k <= H/2, for the real-input split and merge.
  const T* split_re = nullptr;
  const T* split_im = nullptr;
  const int32_t* bit_reversed = nullptr;  // [H]
  // Spectra of the chunk's blocks: [bin][block < spectrum_blocks][re | im]
  // [spectrum_pitch], lanes past spectrum_channels zero: the product reads
  // one bin of every block together.
  T* spectra = nullptr;
  int64_t spectrum_blocks = 0;
  int64_t first_block = 0;  // global index of the chunk's first block
};

// Whether channels-first data of a panel holding `channels` of its `lanes`
// moves through lanes x lanes register transposes (GatherBlock and
// ScatterBlock in kernels.cpp; the cost model prices both ways): with more
// than half the lanes filled. Fewer channels go element by element (1 or 8
// of 16 ran 1.1-1.4x faster so).
inline bool transposes_panel(int64_t lanes, int64_t channels) {
  return lanes > 1 && 2 * channels > lanes;
}

// Scratch of one task in bytes (64-byte aligned parts).
using core::round_up_64;
// One complex transform of V lanes: H rows of [re V | im V].
inline size_t transform_bytes(const Geometry& g, size_t element_size) {
  return round_up_64(static_cast<size_t>(g.half * 2 * g.lanes) * element_size);
}
// Forward: the transform and the block's source index per position.
inline size_t forward_scratch_bytes(const Geometry& g, size_t element_size) {
  return transform_bytes(g, element_size) +
         round_up_64(static_cast<size_t>(g.fft_size) * sizeof(int64_t));
}
// Output side: the transform and the task's products [block][panel][bin]
// [re V | im V].
inline size_t products_bytes(const Geometry& g, int64_t blocks, int64_t panels,
                             size_t element_size) {
  return round_up_64(static_cast<size_t>(blocks * panels * g.bins * 2 * g.lanes) * element_size);
}
// by_channel: the forward scratch, then one spectrum [bin][re V | im V].
inline size_t channel_scratch_bytes(const Geometry& g, size_t element_size) {
  return forward_scratch_bytes(g, element_size) + products_bytes(g, 1, 1, element_size);
}
inline size_t spectra_bytes(const Geometry& g, int64_t blocks, size_t element_size) {
  return round_up_64(static_cast<size_t>(blocks * g.bins * 2 * g.spectrum_pitch) * element_size);
}

// What one SIMD target provides (see kernels.cpp).
struct Target {
  int lanes_f32 = 1;
  int lanes_f64 = 1;
  // Forward transform of input panel `panel` of chunk block `block`.
  void (*forward_f32)(const Args<float>&, int64_t block, int64_t panel, void* scratch) = nullptr;
  void (*forward_f64)(const Args<double>&, int64_t block, int64_t panel, void* scratch) = nullptr;
  // Product and inverse transforms of one task.
  void (*output_f32)(const Args<float>&, const Task&, void* scratch) = nullptr;
  void (*output_f64)(const Args<double>&, const Task&, void* scratch) = nullptr;
  // by_channel: the whole convolution of global block `block`, panel `panel`.
  void (*channel_f32)(const Args<float>&, int64_t block, int64_t panel, void* scratch) = nullptr;
  void (*channel_f64)(const Args<double>&, int64_t block, int64_t panel, void* scratch) = nullptr;
  // Kernel spectra, in double: V real signals as z[r] = x[2r] + i x[2r+1]
  // (H rows of [re V | im V], overwritten) to 2 X[k], k <= H, at
  // spectrum + k * 2V, imaginary parts V further.
  void (*spectrum_f64)(const Args<double>&, double* rows, double* spectrum) = nullptr;
};

// The target chosen by core::chosen_target() at the time of the call.
const Target& chosen_target();

}  // namespace conv1d::kernels::fft
