// The weight gradient's driver: shapes, tasks and threads (the per-ISA
// tiles are in kernels.cpp).
#include "kernels/weight_gradient/weight_gradient.hpp"

#include <algorithm>
#include <type_traits>

#include "core/scratch.hpp"
#include "core/threads.hpp"

namespace conv1d::kernels::weight_gradient {

namespace {

using core::ceil_div;

// The calling thread's slot for the partial sums, apart from the one its
// tasks stage in (0).
constexpr int kPartialSlot = 4;
// Positions per chunk. Every chunk loads and stores all partial sums (3 MB
// for Whisper's 512 -> 512, K = 3), which costs more than streaming the
// staged rows from L2 or L3: 1024 steps ran 1.0-1.1x faster than 512 at one
// thread and up to 1.4x faster than 64 at two (TCN, WaveNet, Whisper,
// pointwise, ECG; a staging of up to a few MB a thread).
constexpr int64_t kChunkSteps = 1024;
// Dot products where the GEMM would use less than this share of its lanes
// and accumulators (their own rate, ~0.2-0.35 of the FMA peak here).
constexpr double kDotProductsBelow = 0.3;
constexpr double kBusyAccumulators = 12;
// The bias gradient's rate (~0.1 ns an element) and the tiles' rate, for
// the costs that decide the threads.
constexpr double kBiasSecondsPerElement = 1e-10;
constexpr double kFlopsPerSecond = 1e11;

// In double, as the reference; contiguous rows in vectors, the others in
// eight independent chains. One task per output channel.
template <class T>
void bias_gradient(const Target& target, const Problem& p, const TensorRef<const T>& grad_output,
                   T* grad_bias, int threads) {
  const int64_t length = grad_output.length;
  const int64_t step = grad_output.length_stride;
  core::parallel_for(p.out_channels, threads, [&](int64_t o) {
    double sum = 0.0;
    for (int64_t n = 0; n < p.batch; ++n) {
      const T* row =
          grad_output.data + n * grad_output.batch_stride + o * grad_output.channel_stride;
      if (step == 1) {
        if constexpr (std::is_same_v<T, float>) {
          sum += target.row_sum_f32(row, length);
        } else {
          sum += target.row_sum_f64(row, length);
        }
        continue;
      }
      double sums[8] = {};
      int64_t t = 0;
      for (; t + 8 <= length; t += 8) {
        for (int i = 0; i < 8; ++i) sums[i] += static_cast<double>(row[(t + i) * step]);
      }
      for (; t < length; ++t) sums[0] += static_cast<double>(row[t * step]);
      sum +=
          ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
    }
    grad_bias[o] = static_cast<T>(sum);
  });
}

}  // namespace

template <class T>
void compute(const Target& target, const Problem& p, TensorRef<const T> input,
             TensorRef<const T> grad_output, T* grad_weight, T* grad_bias, int threads) {
  if (grad_bias != nullptr) {
    const double elements = static_cast<double>(p.batch * p.out_channels * grad_output.length);
    bias_gradient(target, p, grad_output, grad_bias,
                  core::threads_for_work(elements * kBiasSecondsPerElement, threads));
  }
  const int64_t cin = p.in_channels_per_group();
  const int64_t cout = p.out_channels_per_group();
  const int64_t K = p.kernel_size;
  if (p.batch == 0) {
    std::fill(grad_weight, grad_weight + p.out_channels * cin * K, T(0));
    return;
  }
  Geometry g;
  g.batch = p.batch;
  g.length = p.length;
  g.out_length = p.out_length();
  g.kernel_size = K;
  g.stride = p.stride;
  g.dilation = p.dilation;
  g.pad_left = p.pad_left;
  g.pad_right = p.pad_right;
  g.padding_mode = p.padding_mode;
  g.in_channels_per_group = cin;
  g.out_channels_per_group = cout;
  const int64_t lanes = std::is_same_v<T, float> ? target.lanes_f32 : target.lanes_f64;
  threads = core::threads_for_work(p.flops() / kFlopsPerSecond, threads);
  const auto run = [&](const TaskArgs<T>& args, int64_t vectors) {
    void* scratch = core::thread_scratch(
        static_cast<size_t>(target.scratch_bytes(g, vectors, static_cast<int64_t>(sizeof(T)))));
    if constexpr (std::is_same_v<T, float>) {
      target.run_f32(args, scratch);
    } else {
      target.run_f64(args, scratch);
    }
  };
  // The share of the GEMM's vector lanes that hold data, per tap or with
  // taps in vectors, and of its accumulators a group's tile fills (12 keep
  // the FMAs busy on every target).
  const auto lane_use = [&](int64_t length) {
    return static_cast<double>(length) / static_cast<double>(ceil_div(length, lanes) * lanes);
  };
  g.taps_in_vectors = (p.dilation == 1 || K == 1) && lane_use(K * cin) > lane_use(cin);
  const int64_t vector_length = g.taps_in_vectors ? K * cin : cin;
  const double accumulators =
      static_cast<double>(std::min<int64_t>(cout, target.rows) *
                          std::min<int64_t>(ceil_div(vector_length, lanes), target.vectors));
  if (lane_use(vector_length) * std::min(1.0, accumulators / kBusyAccumulators) <
      kDotProductsBelow) {
    g.dot_products = true;
    g.padded_out_length = ceil_div(g.out_length, lanes) * lanes;
    g.phase_length = (K - 1) * p.dilation / p.stride + g.padded_out_length;
    // Each task stages its group's input: groups split by output channels
    // only as far as the threads need.
    const int64_t parts = p.groups >= threads ? 1 : std::min(cout, ceil_div(threads, p.groups));
    core::parallel_for(p.groups * parts, threads, [&](int64_t task) {
      const int64_t part = task % parts;
      run({&g, input, grad_output, task / parts, 0, 0, part * cout / parts,
           (part + 1) * cout / parts, grad_weight},
          0);
    });
    return;
  }
  g.tap_passes = g.taps_in_vectors ? 1 : K;
  g.vectors = ceil_div(vector_length, lanes);
  g.blocks = ceil_div(g.vectors, target.vectors);
  g.partial_pitch = g.vectors * lanes;
  g.chunk_steps = std::min(kChunkSteps, g.out_length);
  if (g.taps_in_vectors) g.extra_rows = ceil_div(g.partial_pitch - vector_length, cin);
  // Each task covers the whole batch and length, so its sums run in the
  // same order for any split: the result does not depend on the threads.
  // Blocks of input channels split first (each task stages only its own),
  // then tiles of output channels (each stages its blocks again).
  const int64_t row_tiles = ceil_div(cout, target.rows);
  const int64_t block_parts =
      p.groups >= threads ? 1 : std::min(g.blocks, ceil_div(threads, p.groups));
  const int64_t output_parts = p.groups * block_parts >= threads
                                   ? 1
                                   : std::min(row_tiles, ceil_div(threads, p.groups * block_parts));
  const int64_t parts = block_parts * output_parts;
  auto* partial = static_cast<T*>(core::thread_scratch<kPartialSlot>(
      static_cast<size_t>(p.groups * g.tap_passes * cout * g.partial_pitch) * sizeof(T)));
  core::parallel_for(p.groups * parts, threads, [&](int64_t task) {
    const int64_t group = task / parts;
    const int64_t block_part = task % parts / output_parts;
    const int64_t output_part = task % output_parts;
    const TaskArgs<T> args{
        &g,
        input,
        grad_output,
        group,
        block_part * g.blocks / block_parts,
        (block_part + 1) * g.blocks / block_parts,
        std::min(cout, output_part * row_tiles / output_parts * target.rows),
        std::min(cout, (output_part + 1) * row_tiles / output_parts * target.rows),
        partial};
    const int64_t first_vector = block_start(g, args.first_block);
    const int64_t end_vector = block_start(g, args.end_block);
    run(args, end_vector - first_vector);
    // [tap][output][input] or [output][tap, input] -> (output, input,
    // tap), this task's part.
    const int64_t j_end = std::min(vector_length, end_vector * lanes);
    const T* from = partial + group * g.tap_passes * cout * g.partial_pitch;
    for (int64_t o = args.first_output; o < args.end_output; ++o) {
      T* to = grad_weight + (group * cout + o) * cin * K;
      for (int64_t j = first_vector * lanes; j < j_end; ++j) {
        if (g.taps_in_vectors) {
          to[j % cin * K + j / cin] = from[o * g.partial_pitch + j];
        } else {
          for (int64_t k = 0; k < K; ++k)
            to[j * K + k] = from[(k * cout + o) * g.partial_pitch + j];
        }
      }
    }
  });
}

#define CONV1D_INSTANTIATE(T)                                                                     \
  template void compute<T>(const Target&, const Problem&, TensorRef<const T>, TensorRef<const T>, \
                           T*, T*, int);
CONV1D_INSTANTIATE(float)
CONV1D_INSTANTIATE(double)
#undef CONV1D_INSTANTIATE

}  // namespace conv1d::kernels::weight_gradient
