// The depthwise algorithm as a registry entry: plan-time geometry, weight
// packing, the task grid and threads. The task code is in kernels.cpp.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "core/scratch.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "kernels/depthwise/depthwise.hpp"

namespace conv1d::algorithms::depthwise {

namespace {

using kernels::depthwise::Args;
using kernels::depthwise::Geometry;
using kernels::depthwise::Shape;
using kernels::depthwise::Target;

// NCL rows go length-vectorised (read in place, no transposes) when their
// taps fit in registers (g * K up to this) or when stride = dilation = 1
// lets taps share loads (any K up to 4 vectors). The rest (long strided or
// dilated kernels, and strides past kMaxRowStride) is transposed into
// channel vectors.
constexpr int64_t kMaxLengthTaps = 8;
// Packed input + output tile of a channel-vector task stay in L1 (48 KiB).
constexpr int64_t kTileBudgetBytes = 32 * 1024;
// L1 data TLB entries a channels-last task may touch (64 here).
constexpr int64_t kTlbPages = 48;
// Output positions of a length-vector task: a 16 KiB row segment.
constexpr int64_t kRowTileBytes = 16 * 1024;
// Enough tasks that a few threads balance.
constexpr int64_t kMinTasks = 16;
// Problems with less output than this run on the calling thread: waking
// other threads costs more than such a call (streaming pushes: a few us).
constexpr int64_t kParallelOutputBytes = 128 * 1024;

using core::ceil_div;

// Strides up to this de-interleave rows into phases with vector loads;
// beyond, element by element (see kernels/common/phases-inl.h), and rows
// transposed into channel vectors run 2.5-3.5x faster (K = 4 and 7 at
// stride 5). AVX-512 and AVX2 permute rows of strides 5-8 instead, but on
// AVX-512 transposed rows still ran 1.1-2.2x faster on 9 of 16 such
// layers (K = 3..64) and level on 4; rows won 1.3-1.9x on three (two of
// them with a depth multiplier of 2). At strides 2 to 4 rows are level or
// up to 1.7x faster.
constexpr int64_t kMaxRowStride = 4;

Shape choose_shape(const Problem& p, int64_t lanes) {
  if (p.layout != Layout::ncl || p.stride > kMaxRowStride) return Shape::channel_vectors;
  const bool shared = p.stride == 1 && p.dilation == 1 &&
                      ceil_div(p.kernel_size, lanes) <= kernels::depthwise::kMaxTapsPerResidue;
  if (shared || p.in_channels_per_group() * p.kernel_size <= kMaxLengthTaps) {
    return Shape::length_vectors;
  }
  return Shape::channel_vectors;
}

Geometry make_geometry(const Problem& p, const Target& target) {
  Geometry g;
  const int64_t lanes = p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
  g.shape = choose_shape(p, lanes);
  g.blocks_fastest = p.layout == Layout::nlc;
  g.batch = p.batch;
  g.in_channels = p.in_channels;
  g.out_channels = p.out_channels;
  g.length = p.length;
  g.out_length = p.out_length();
  g.kernel_size = p.kernel_size;
  g.stride = p.stride;
  g.dilation = p.dilation;
  g.pad_left = p.pad_left;
  g.padding_mode = p.padding_mode;
  g.in_per_group = p.in_channels_per_group();
  g.out_per_group = p.out_channels_per_group();
  const int64_t element = dtype_size(p.dtype);
  // Tiles are multiples of `quantum` outputs: whole register blocks (and
  // whole transposes) for channel vectors, whole 4-vector steps for rows.
  int64_t tile = 0, quantum = 0;
  if (g.shape == Shape::channel_vectors) {
    g.channel_block = lanes;
    // g packed spans of tile*stride + halo positions plus the output tile.
    const int64_t positions = kTileBudgetBytes / (lanes * element);
    const int64_t halo = (p.kernel_size - 1) * p.dilation + 1 + p.stride;
    quantum = static_cast<int64_t>(target.positions) * lanes;
    // At least one output even when the halo alone overflows the budget
    // (K = 400, stride 160: a learned filterbank).
    tile =
        std::max<int64_t>((positions - g.in_per_group * halo) / (g.in_per_group * p.stride + 1), 1);
  } else {
    g.channel_block = 1;
    quantum = 4 * lanes;
    tile = kRowTileBytes / element;
  }
  g.channel_blocks = ceil_div(p.out_channels, g.channel_block);
  if (g.blocks_fastest) {
    // A task sweeps all blocks over its tile. Short kernels stream the rows
    // in place, reading 64 bytes of each input row per block: few enough
    // rows for the L1 TLB (Mamba's 6 KiB rows: 27). Longer ones pack each
    // block's span first, so the tile stays as the L1 budget allows (a cap
    // by rows would leave one quantum of outputs per packed span of a wide
    // dilated kernel: K = 64, dilation 6 ran 5x slower).
    quantum = static_cast<int64_t>(target.positions);
    if (p.kernel_size <= kernels::depthwise::kMaxStreamedTaps) {
      const int64_t row_bytes = p.in_channels * element;
      const int64_t halo = (p.kernel_size - 1) * p.dilation + 1;
      const int64_t rows = std::max<int64_t>(kTlbPages * 4096 / row_bytes, 1);
      tile = std::min(tile, (rows - halo) / p.stride);
    }
    tile = std::max(quantum, tile / quantum * quantum);
    g.blocks_per_task = g.channel_blocks;
    const int64_t tasks = p.batch * ceil_div(g.out_length, tile);
    if (tasks < kMinTasks && p.kernel_size <= kernels::depthwise::kMaxStreamedTaps) {
      // Position-major tasks stream whole rows: shorter tiles, not fewer
      // blocks.
      tile = std::max(quantum, ceil_div(p.batch * g.out_length, kMinTasks) / quantum * quantum);
    } else if (tasks < kMinTasks) {
      g.blocks_per_task = std::max<int64_t>(g.channel_blocks * tasks / kMinTasks, 1);
    }
  } else {
    // Shorter tiles, down to one quantum, when the grid is too small to
    // share between threads.
    const int64_t rows = p.batch * g.channel_blocks;
    if (rows * ceil_div(g.out_length, tile) < kMinTasks) {
      tile = ceil_div(g.out_length * rows, kMinTasks);
    }
    tile = std::max(quantum, tile / quantum * quantum);
  }
  g.tile_length = std::min(tile, g.out_length);
  g.tiles = ceil_div(g.out_length, g.tile_length);
  if (!g.blocks_fastest && g.tiles == 1) {
    // Short rows (streaming pushes): blocks of about one row tile of
    // outputs per task, so that the per-task cost amortises and a tiny
    // problem runs as one task on the calling thread.
    const int64_t block_outputs = g.channel_block * g.out_length;
    g.blocks_per_task =
        std::clamp<int64_t>(kRowTileBytes / element / block_outputs, 1, g.channel_blocks);
  }
  return g;
}

// Packed weights start on a cache line: a weight vector split over two
// lines costs ~10% on the K = 31 tile.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  explicit CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t count) {
    void* data = std::aligned_alloc(64, kernels::depthwise::round_up_64(count * sizeof(T)));
    if (data == nullptr) throw std::bad_alloc();
    return static_cast<T*>(data);
  }
  void deallocate(T* data, size_t) { std::free(data); }
  bool operator==(const CacheLineAllocator&) const { return true; }
};
template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

class DepthwiseExecutor final : public detail::Executor {
 public:
  explicit DepthwiseExecutor(const Problem& problem)
      : Executor(problem), target_(kernels::depthwise::chosen_target()) {
    geometry_ = make_geometry(problem_, target_);
    lanes_ = problem_.dtype == DType::f32 ? target_.lanes_f32 : target_.lanes_f64;
    scratch_bytes_ = kernels::depthwise::scratch_bytes(
        geometry_, lanes_, static_cast<size_t>(dtype_size(problem_.dtype)));
  }

  void set_weights(const void* weight, const void* bias) override {
    if (problem_.dtype == DType::f32) {
      pack(static_cast<const float*>(weight), static_cast<const float*>(bias), weight_f32_,
           bias_f32_);
    } else {
      pack(static_cast<const double*>(weight), static_cast<const double*>(bias), weight_f64_,
           bias_f64_);
    }
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    run(input, output, weight_f32_, bias_f32_, target_.run_f32, threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    run(input, output, weight_f64_, bias_f64_, target_.run_f64, threads);
  }

 private:
  template <class T>
  void pack(const T* weight, const T* bias, AlignedVector<T>& weights, AlignedVector<T>& biases) {
    const Geometry& g = geometry_;
    const int64_t taps = g.in_per_group * g.kernel_size;
    if (g.shape == Shape::length_vectors) {
      weights.assign(weight, weight + g.out_channels * taps);
      finite_weights_ =
          std::all_of(weights.begin(), weights.end(), [](T value) { return std::isfinite(value); });
      biases.assign(static_cast<size_t>(g.out_channels), T(0));
      if (bias != nullptr) std::copy(bias, bias + g.out_channels, biases.begin());
      return;
    }
    // [block][ci][k][lane]: one aligned vector per tap; lanes past C_out zero.
    const int64_t v = lanes_;
    weights.assign(static_cast<size_t>(g.channel_blocks * taps * v), T(0));
    biases.assign(static_cast<size_t>(g.channel_blocks * v), T(0));
    for (int64_t co = 0; co < g.out_channels; ++co) {
      const int64_t block = co / v, lane = co % v;
      for (int64_t t = 0; t < taps; ++t) {
        weights[static_cast<size_t>((block * taps + t) * v + lane)] = weight[co * taps + t];
      }
      if (bias != nullptr) biases[static_cast<size_t>(co)] = bias[co];
    }
  }

  template <class T>
  void run(TensorRef<const T> input, TensorRef<T> output, const AlignedVector<T>& weights,
           const AlignedVector<T>& biases, void (*task_fn)(const Args<T>&, int64_t, void*),
           int threads) const {
    Args<T> args;
    args.geometry = &geometry_;
    args.input = input;
    args.output = output;
    args.weight = weights.data();
    args.bias = biases.data();
    args.finite_weights = finite_weights_;
    const size_t bytes = scratch_bytes_;
    const int64_t output_bytes = problem_.batch * problem_.out_channels * geometry_.out_length *
                                 static_cast<int64_t>(sizeof(T));
    if (output_bytes < kParallelOutputBytes) threads = 1;
    core::parallel_for(geometry_.tasks(), threads,
                       [&](int64_t task) { task_fn(args, task, core::thread_scratch(bytes)); });
  }

  const Target& target_;
  Geometry geometry_;
  int64_t lanes_ = 1;
  size_t scratch_bytes_ = 0;
  bool finite_weights_ = true;  // length_vectors: no infinite or NaN weight
  AlignedVector<float> weight_f32_, bias_f32_;
  AlignedVector<double> weight_f64_, bias_f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem& p) {
  if (p.in_channels_per_group() <= kernels::depthwise::kMaxInPerGroup) return std::nullopt;
  return core::str_cat("needs at most ", kernels::depthwise::kMaxInPerGroup,
                       " input channels per group (depthwise: 1); this problem has ",
                       p.in_channels_per_group(), " (in_channels=", p.in_channels,
                       ", groups=", p.groups, ")");
}

// Roofline: compute at a fraction of this ISA's FMA peak, or memory traffic,
// whichever is slower, plus the copies the shape makes. Fractions measured
// on one AVX-512 core (peak ~215-235 GFLOP/s): Conformer K = 31 reaches
// ~180 GFLOP/s as NCL float rows in the hand-scheduled 12-vector block
// (~160 in the 8-vector intrinsics block that K <= 16 and float64 use, ~90
// with unaligned loads only), long kernels (K = 64..2048) ~180-200 as
// channel vectors, ~120 at K = 31 channels-last.
double estimated_seconds(const Problem& p) {
  const Target& target = kernels::depthwise::chosen_target();
  const int64_t lanes = p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
  // Two FMA pipes x lanes x 2 flops at ~3.3 GHz (AVX-512 f32: ~210 GFLOP/s).
  const double peak = 4.0 * static_cast<double>(lanes) * 3.3e9;
  const Geometry g = make_geometry(p, target);
  double efficiency = 0.4;  // rows: bound by cache-line-split loads
  double copied = 0.0;      // elements packed or transposed
  double per_row = 0.0;     // seconds each output row costs besides its FMAs
  const auto outputs = static_cast<double>(p.batch * p.out_channels * g.out_length);
  if (g.shape == Shape::length_vectors) {
    // A depth multiplier's rows each load their taps from the input row
    // again, every load splitting a cache line: 0.22-0.32 of the peak with
    // dilation 2 (m = 16, 64).
    if (p.out_channels_per_group() > 1) efficiency = 0.25;
    if (kernels::depthwise::shares_row_loads(g, lanes) && p.in_channels_per_group() == 1) {
      // AVX-512 rows whose taps fit two vectors shift whole loads instead;
      // longer ones share each load between taps.
      if (target.lanes_f32 == 16 && p.kernel_size <= 2 * lanes) {
        if (p.kernel_size >= kernels::depthwise::kMinShiftedTaps) {
          efficiency = p.kernel_size > 8 ? 0.7 : 0.5;
          if (p.dtype == DType::f32 && p.kernel_size > lanes) efficiency = 0.8;
          // Loading the taps' weights, and a row's edge blocks, which
          // shift every residue: ~5 ns a row (768 channels, K = 5..31,
          // 16-200 outputs a row: 1.5-13 ns a row more than the FMAs at
          // the rates above, 4-6 ns at 100 outputs).
          per_row = 5e-9;
        }
      } else if (target.lanes_f32 == 16 && p.dtype == DType::f32) {
        efficiency = 0.8;  // measured 0.83-0.88 at K = 64
      }
    }
    if (p.stride > 1) {
      // Strided rows are packed per task (once per group of the task's
      // channels): the input span of the tile.
      const int64_t groups_per_task =
          std::max<int64_t>(g.blocks_per_task / p.out_channels_per_group(), 1);
      const auto packs =
          static_cast<double>(p.batch * g.tiles) *
          std::ceil(static_cast<double>(p.out_channels) / static_cast<double>(g.blocks_per_task)) *
          static_cast<double>(groups_per_task);
      copied = packs * static_cast<double>(kernels::depthwise::input_span(g, g.tile_length));
    }
  } else {
    // Taps share loads, or not: at stride == dilation, and in packed
    // (channels-first) spans at dilation 1 and strides up to 4 where a
    // chunk of taps fits the kernel (16 channels, K = 128, stride 3: 1.22x
    // faster than with a load per FMA).
    const bool shared_strided = p.layout == Layout::ncl &&
                                kernels::depthwise::packed_taps_share_loads(p.stride, p.dilation) &&
                                p.kernel_size >= target.shared_stride_taps;
    efficiency = p.stride == p.dilation || shared_strided ? 0.85 : 0.7;
    // Lanes past the last channel compute too.
    efficiency *= static_cast<double>(p.out_channels) /
                  static_cast<double>(g.channel_blocks * g.channel_block);
    // Each block packs its span once per input channel of its groups.
    const double spans =
        static_cast<double>(p.batch * g.channel_blocks * g.channel_block * g.tiles *
                            kernels::depthwise::input_span(g, g.tile_length) * g.in_per_group);
    if (p.layout == Layout::nlc) {
      efficiency *= p.stride == p.dilation ? 0.75 : 0.5;
      // Lanes that are not consecutive input channels (a depth multiplier,
      // several input channels per group, a partial block) are gathered
      // element by element (~1.3 cycles: measured 1.3-1.8x below the 2
      // cycles this model took before, on six such layers).
      if (p.out_channels_per_group() > 1 || g.in_per_group > 1 ||
          p.out_channels % g.channel_block != 0) {
        copied = 1.6 * spans;
      }
    } else {
      // Transposed in (each block of channels reads its span) and out, in
      // registers: ~0.4 of an element copied (this model read 1.3-3.5x
      // slow, median 1.9x, on ten such layers at a whole element).
      copied = 0.4 * (spans + outputs);
    }
  }
  const double bytes = static_cast<double>(dtype_size(p.dtype)) * static_cast<double>(p.batch) *
                       (static_cast<double>(p.in_channels * p.length) +
                        static_cast<double>(p.out_channels * p.out_length()));
  // ~80 GB/s while input and output stay within ~1.5 MB, ~30 GB/s beyond.
  double bandwidth = bytes <= 1.5e6 ? 80e9 : 30e9;
  // ~0.8 cycles per element copied.
  double copy_cycles = 0.8;
  if (g.shape == Shape::length_vectors && p.stride > 1) {
    // Strided rows, fitted to 60 layers on one AVX-512 thread in float32
    // (K = 1..8, strides 2-4, depth multipliers 1-8, 16 KB to 160 MB a call):
    // ~50 GB/s while the data fit in L3 (32 MiB), ~20 GB/s beyond;
    // de-interleaving ~0.2 cycles an element; ~20 ns a row (rows of 100
    // samples took 2-2.5x the time this model gives without it). rms of the
    // log ratio 0.25 against 0.61 with the terms of the other shapes, which
    // read up to 4x slow.
    bandwidth = bytes <= 1.5e6 ? 80e9 : bytes <= 24e6 ? 50e9 : 20e9;
    copy_cycles = 0.2;
    per_row = 20e-9;
  } else if (g.shape == Shape::channel_vectors && p.layout == Layout::ncl &&
             p.stride > kMaxRowStride && target.lanes_f32 == 16) {
    // Rows of strides past kMaxRowStride, transposed: fitted to 16 layers on
    // one AVX-512 thread in float32 (K = 3..64, strides 5-8, depth
    // multipliers 1-2, 0.3-40 MB a call): ~40 GB/s within L3, ~25 beyond,
    // ~0.3 cycles an element copied. rms of the log ratio 0.18 against 0.56
    // with the terms above, which read 1.1-2.5x slow (median 1.8x). At
    // AVX2, where direct's staging of such rows is modelled element by
    // element, these terms moved two layers to depthwise, 1.1x slower.
    bandwidth = bytes <= 1.5e6 ? 80e9 : bytes <= 24e6 ? 40e9 : 25e9;
    copy_cycles = 0.32;
  }
  const auto rows = static_cast<double>(p.batch * p.out_channels);
  return std::max(p.flops() / (peak * efficiency), bytes / bandwidth) +
         copied * copy_cycles / 3.3e9 + rows * per_row + 1e-6;
}

std::unique_ptr<detail::Executor> create(const Problem& problem) {
  return std::make_unique<DepthwiseExecutor>(problem);
}

}  // namespace conv1d::algorithms::depthwise
