// The direct algorithm as a registry entry: plan-time geometry, weight
// packing, the task grid and threads. The tile code is in kernels.cpp.
#include <hwy/base.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "core/isa.hpp"
#include "core/large_array.hpp"
#include "core/scratch.hpp"
#include "core/threads.hpp"
#include "kernels/direct/direct.hpp"

namespace conv1d::algorithms::direct {

namespace {

using kernels::direct::Args;
using kernels::direct::Geometry;
using kernels::direct::Kind;
using kernels::direct::Target;
using kernels::direct::Task;

// The operand a tile streams per reduction step from L1 (the weight panel
// of channel_vectors) is kept at 32 KiB of the 48 KiB L1: 128 steps of 64
// floats, long enough to amortise loading and storing the accumulators (~8%
// slower at 96).
constexpr int64_t kL1OperandBytes = 32 * 1024;
// length_vectors: the staged input channels of a chunk fill up to 5/6 of L1
// (40 of 48 KiB): the fewer chunks, the fewer reloads of partial sums, and
// one chunk writes the output in place (TCN's 128 channels in one chunk
// instead of two: 2-7% faster).
inline int64_t staged_budget_bytes() { return core::l1_data_bytes() * 5 / 6; }
// length_vectors: length tiles per task; a task reuses each weight chunk
// (C_out x chunk, in L2) over this many tiles.
constexpr int64_t kLengthTilesPerTask = 4;
// Per-task blocks reused for the whole task: the outputs (across reduction
// chunks) and, for channel_vectors, the staged input span. Each tile's
// input is staged once per task, so the more output channels a task covers
// the less staging per FMA: 1 MiB keeps 512 channels x 256 positions in one
// task (~4% faster than two at stride 2 with a 2 MiB L2; with 1 MiB, a
// quarter of this was ~4% slower on 512-channel layers).
constexpr int64_t kTaskOutputBytes = 1024 * 1024;
constexpr int64_t kTaskStageBytes = 512 * 1024;
// length_vectors: prefetching the next staging's input (StagePrefetch)
// pays where that input comes from memory, and where many tile calls share
// each staging, so that its prefetches spread thinly between them. Where
// the input stays in L3 and only a few tile calls follow a staging, the
// hardware prefetchers keep up and the prefetches only cost: over the 148
// length-vector layers of bench/random.csv, in one binary with the
// prefetches on or off (8 runs each, best of each), switching them off
// there ran the 70 layers it reaches 0.98-1.21x as fast (1.02x in
// geometric mean over the 148; the suite's layers keep them). The input
// bound is half the 32 MiB L3 of the machine measured (inputs of 24 MB and
// more ran up to 1.18x faster with the prefetches, 6-13 MB up to 1.21x
// slower); rows of one channel per staging are one stream each, which the
// hardware follows even from memory (1.04-1.19x faster without).
constexpr double kStagePrefetchInputBytes = 16.0 * 1024 * 1024;
constexpr int64_t kStagePrefetchTileCalls = 8;

using core::ceil_div;

// Channel and reduction vectors: the output positions per task whose input
// span, position_bytes a position, fits kTaskStageBytes, in whole tiles of
// `tile` positions (at least one, at most 256 positions).
int64_t staged_task_positions(const Problem& p, int64_t position_bytes, int64_t tile) {
  const int64_t staged = kTaskStageBytes / position_bytes;
  const int64_t positions = (staged - (p.kernel_size - 1) * p.dilation - 1) / p.stride + 1;
  return std::clamp<int64_t>(positions / tile, 1, 256 / tile) * tile;
}

double seconds_with(const Problem& p, const Target& target, Kind kind);

// Channel vectors: vectors of output channels per tile, as many as a group
// fills up to the target's; the tile's positions make up the rest of its
// accumulators (kernels.cpp).
int64_t channel_tile_vectors(const Problem& p, const Target& target) {
  const int64_t lanes = p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
  return std::min<int64_t>(target.vectors, ceil_div(p.out_channels_per_group(), lanes));
}
int64_t channel_tile_positions(const Problem& p, const Target& target) {
  return int64_t{target.rows} * target.vectors / channel_tile_vectors(p, target);
}

// The tile kind the model rates fastest; another kind than length vectors
// only where it is clearly faster.
// Channels-last layers put their vectors along the output channels of a
// group, unless a group has fewer than a vector's lanes of them: one
// output channel per group would use one lane of 16. Vectors along the
// length then gather the channels into rows, as for strided NCL data:
// 2-3x faster with one or two output channels per group (96 -> 16 channels
// in 16 groups, K = 3: 1.07 -> 0.3-0.5 ms), 1.1-1.7x with 4 or 8; level at
// 12, while at 16 channel vectors are 1.6x faster.
// NCL layers put them along the length, unless the model rates channel
// vectors, whose input and output are transposed, faster by a tenth: rows
// short next to a tile (64 positions on AVX-512; 4 outputs per row 4x
// faster, 25 1.4x, 50-100 1.1-1.3x; Whisper's 1500 0.89x, so length
// vectors), and strides past the target's max_vector_stride (4; 8 on
// AVX-512), which length vectors de-interleave element by element
// (1.3-1.6x). At strides 5-8 on AVX-512 length vectors were level with
// channel vectors or up to 1.3x faster on 34 dense layers (1.25x with 32
// output channels, K = 3, stride 5), and 2-6x on narrow groups.
// Layers with fewer output channels per group than a vector's lanes may
// sum vectors along the input channels instead (reduction_vectors), if the
// model rates them a third faster than length vectors: it reads them up to
// 2x optimistic on some layers (one or two outputs at K = 31, stride 2; K =
// 1 at strides 4-6). On 119 such layers that margin picks within 3% of the
// faster kind in geometric mean (length vectors alone: 1.5x slower).
Kind best_kind(const Problem& p, const Target& target) {
  const int64_t lanes = p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
  if (p.out_channels_per_group() >= lanes && p.layout == Layout::nlc) {
    return Kind::channel_vectors;
  }
  const double by_length = seconds_with(p, target, Kind::length_vectors);
  const Kind other =
      p.out_channels_per_group() >= lanes ? Kind::channel_vectors : Kind::reduction_vectors;
  const double margin = other == Kind::channel_vectors ? 1.1 : 1.3;
  return seconds_with(p, target, other) * margin < by_length ? other : Kind::length_vectors;
}

template <class T>
struct Packed {
  core::LargeArray<T> weight;
  std::vector<T> bias;
  bool finite = true;  // no infinite or NaN weight
};

// What the order of the packed weights depends on besides the weights:
// plans of one layer for other batches or lengths agree on all of it.
struct PackingLayout {
  const Target* target = nullptr;
  Kind kind = Kind::length_vectors;
  DType dtype = DType::f32;
  int64_t groups = 0, in_channels_per_group = 0, out_channels_per_group = 0, kernel_size = 0;
  int64_t block_channels = 0, chunk = 0;
  bool operator==(const PackingLayout&) const = default;
};

class DirectExecutor final : public detail::Executor {
 public:
  explicit DirectExecutor(const Problem& problem)
      : Executor(problem), target_(kernels::direct::chosen_target()) {
    const Problem& p = problem_;
    const int64_t lanes = p.dtype == DType::f32 ? target_.lanes_f32 : target_.lanes_f64;
    const int64_t element = dtype_size(p.dtype);
    const int64_t K = p.kernel_size;
    const int64_t line = 64 / element;

    Geometry& g = geometry_;
    g.kind = best_kind(p, target_);
    g.length = p.length;
    g.out_length = p.out_length();
    g.kernel_size = K;
    g.stride = p.stride;
    g.dilation = p.dilation;
    g.pad_left = p.pad_left;
    g.pad_right = p.pad_right;
    g.padding_mode = p.padding_mode;
    g.in_channels_per_group = p.in_channels_per_group();
    g.out_channels_per_group = p.out_channels_per_group();
    g.reduction = g.in_channels_per_group * K;
    const int64_t vector_width = target_.vectors * lanes;
    if (g.kind == Kind::length_vectors) {
      g.block_channels = target_.rows;
      g.tile_positions = vector_width;
      // Whichever layout copies fewer elements per channel.
      const int64_t phase_length = vector_width + (K - 1) * p.dilation / p.stride;
      g.taps_share_rows = p.stride * phase_length <= K * vector_width;
      g.rows_per_channel = g.taps_share_rows ? p.stride : K;
      g.row_length = g.taps_share_rows ? phase_length : vector_width;
      const int64_t align = std::max(line, lanes);
      g.row_pitch = ceil_div(g.row_length, align) * align;
      g.reach = g.taps_share_rows ? p.stride * ceil_div(g.row_length, lanes) * lanes
                                  : (K - 1) * p.dilation + p.stride * vector_width;
    } else {
      const bool sums = g.kind == Kind::reduction_vectors;
      if (sums) {
        g.block_channels = target_.sum_rows;
        g.tile_positions = target_.sum_positions;
      } else {
        const int64_t vectors = channel_tile_vectors(p, target_);
        g.block_channels = vectors * lanes;
        g.tile_positions = channel_tile_positions(p, target_);
      }
      g.vector_channels = ceil_div(g.in_channels_per_group, lanes) * lanes;
      // Staged positions a power-of-two bytes apart would put a tile's
      // rows in the same L1 sets.
      g.position_pitch = sums ? g.vector_channels : g.in_channels_per_group;
      if (g.position_pitch * element % 1024 == 0) g.position_pitch += line;
    }
    g.co_blocks_per_group = ceil_div(g.out_channels_per_group, g.block_channels);
    if (g.kind == Kind::length_vectors) {
      // Equal chunks of whole channels, as many as fit the budget.
      const int64_t channel_bytes = g.rows_per_channel * g.row_pitch * element;
      const int64_t cin = g.in_channels_per_group;
      const int64_t fit = std::max<int64_t>(1, staged_budget_bytes() / channel_bytes);
      g.chunk_channels = ceil_div(cin, ceil_div(cin, fit));
      g.chunk = g.chunk_channels * K;
      const double input_bytes = static_cast<double>(p.batch) *
                                 static_cast<double>(p.in_channels * p.length) *
                                 static_cast<double>(element);
      g.prefetch_stage = g.chunk_channels > 1 && (input_bytes > kStagePrefetchInputBytes ||
                                                  g.co_blocks_per_group >= kStagePrefetchTileCalls);
      const auto tap_offsets = [&](int64_t channels, std::vector<int64_t>& offsets) {
        offsets.resize(static_cast<size_t>(channels * K));
        for (int64_t k = 0; k < K; ++k) {
          const int64_t shift = k * p.dilation;
          const int64_t row = g.taps_share_rows ? shift % p.stride : k;
          const int64_t from = g.taps_share_rows ? shift / p.stride : 0;
          for (int64_t ci = 0; ci < channels; ++ci) {
            offsets[k * channels + ci] = (ci * g.rows_per_channel + row) * g.row_pitch + from;
          }
        }
      };
      tap_offsets(g.chunk_channels, offsets_);
      tap_offsets(cin - (ceil_div(cin, g.chunk_channels) - 1) * g.chunk_channels, last_offsets_);
      g.vector_offsets = offsets_.data();
      g.last_vector_offsets = last_offsets_.data();
    } else if (g.kind == Kind::reduction_vectors) {
      // Chunks of whole vectors of channels whose weights for one tile fill
      // up to a third of L1, the rest left to the staged positions streaming
      // past them.
      const int64_t budget = core::l1_data_bytes() / 3 / (g.block_channels * K * element);
      const int64_t fit = std::max<int64_t>(1, budget / lanes);
      const int64_t vectors = g.vector_channels / lanes;
      g.chunk_channels = ceil_div(vectors, ceil_div(vectors, fit)) * lanes;
      g.chunk = g.chunk_channels * K;
    } else {
      // Equal chunks: a reduction of 1536 at a 128-step budget is 12 x 128.
      const int64_t budget = std::max<int64_t>(1, kL1OperandBytes / (g.block_channels * element));
      g.chunk = ceil_div(g.reduction, ceil_div(g.reduction, budget));
      offsets_.resize(static_cast<size_t>(g.reduction));
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t ci = 0; ci < g.in_channels_per_group; ++ci) {
          offsets_[k * g.in_channels_per_group + ci] = k * p.dilation * g.position_pitch + ci;
        }
      }
      g.offsets = offsets_.data();
      g.weights_beyond_l2 =
          g.co_blocks_per_group * g.block_channels * g.reduction * element > core::l2_bytes();
    }
    packing_ = PackingLayout{&target_,
                             g.kind,
                             p.dtype,
                             p.groups,
                             g.in_channels_per_group,
                             g.out_channels_per_group,
                             K,
                             g.block_channels,
                             g.chunk};
  }

  void set_weights(const void* weight, const void* bias) override {
    if (problem_.dtype == DType::f32) {
      pack(static_cast<const float*>(weight), static_cast<const float*>(bias), f32_);
    } else {
      pack(static_cast<const double*>(weight), static_cast<const double*>(bias), f64_);
    }
  }

  bool share_weights(const detail::Executor& other) override {
    const auto* same = dynamic_cast<const DirectExecutor*>(&other);
    if (same == nullptr || !(same->packing_ == packing_)) return false;
    if (problem_.dtype == DType::f32 ? !same->f32_ : !same->f64_) return false;
    f32_ = same->f32_;
    f64_ = same->f64_;
    return true;
  }
  const void* weights_identity() const override {
    if (problem_.dtype == DType::f32) return f32_.get();
    return f64_.get();
  }

  bool returns_weights() const override { return true; }
  void get_weights(void* weight, void* bias) const override {
    if (problem_.dtype == DType::f32) {
      unpack(*f32_, static_cast<float*>(weight), static_cast<float*>(bias));
    } else {
      unpack(*f64_, static_cast<double*>(weight), static_cast<double*>(bias));
    }
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    run(args_for(*f32_, input, output), target_.run_f32, threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    run(args_for(*f64_, input, output), target_.run_f64, threads);
  }

 private:
  template <class T>
  Args<T> args_for(const Packed<T>& packed, TensorRef<const T> input, TensorRef<T> output) const {
    Args<T> args{&geometry_, input, output, packed.weight.get(), packed.bias.data()};
    args.skip_padding_taps = problem_.padding_mode == PaddingMode::zeros && packed.finite;
    return args;
  }

  // weight (C_out, C_in/G, K) -> [group][chunk][co_block][r in chunk]
  // [block_channels]: the order the tiles stream it in, one contiguous run
  // per chunk. r = k*channels + ci for length_vectors (a chunk is whole
  // channels, each tap a step; a tap's steps are consecutive, so that a
  // tile can skip the taps that read only padding); r = k*C_in/G + ci for
  // channel_vectors (consecutive steps read consecutive channels of one
  // staged position). Channels past the group's last are zero, and so is a
  // missing bias: the first chunk always adds one.
  // reduction_vectors: [group][co][k][ci] (see visit_packed).
  // Packs in place unless another executor shares the packed weights.
  template <class T>
  void pack(const T* weight, const T* bias, std::shared_ptr<Packed<T>>& shared) const {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    if (!shared || shared.use_count() > 1) shared = std::make_shared<Packed<T>>();
    Packed<T>& packed = *shared;
    const int64_t per_channel =
        g.kind == Kind::reduction_vectors ? p.kernel_size * g.vector_channels : g.reduction;
    const auto size =
        static_cast<size_t>(p.groups * g.co_blocks_per_group * g.block_channels * per_channel);
    if (!packed.weight) packed.weight = core::make_large_array<T>(size);
    packed.bias.assign(static_cast<size_t>(p.groups * g.co_blocks_per_group * g.block_channels),
                       T(0));
    bool finite = true;
    visit_packed(
        packed.weight.get(),
        [&](T& slot, int64_t source) {
          slot = weight[source];
          finite = finite && std::isfinite(slot);
        },
        [](T& slot) { slot = T(0); });
    packed.finite = finite;
    for_each_bias([&](int64_t packed_index, int64_t channel) {
      if (bias != nullptr) packed.bias[static_cast<size_t>(packed_index)] = bias[channel];
    });
  }

  // The inverse of pack.
  template <class T>
  void unpack(const Packed<T>& packed, T* weight, T* bias) const {
    visit_packed(
        packed.weight.get(), [&](const T& slot, int64_t source) { weight[source] = slot; },
        [](const T&) {});
    for_each_bias([&](int64_t packed_index, int64_t channel) {
      if (bias != nullptr) bias[channel] = packed.bias[static_cast<size_t>(packed_index)];
    });
  }

  // visit(slot, source) for every packed weight in packing order, source
  // being its index in the (C_out, C_in/G, K) weights; pad(slot) for those
  // of channels past the group's last. One (block, chunk) panel at a time,
  // channel by channel: each source row is read in order and the panel (a
  // few KiB) stays in L1, so 3 MB of weights pack at memory speed.
  template <class P, class Visit, class Pad>
  void visit_packed(P* packed, Visit visit, Pad pad) const {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    const int64_t block = g.block_channels;
    const int64_t reduction = g.reduction;
    const int64_t K = p.kernel_size;
    const int64_t cin = g.in_channels_per_group;
    P* to = packed;
    if (g.kind == Kind::reduction_vectors) {
      // [group][co_block * block][k][vector_channels], zeros past the
      // group's channels.
      for (int64_t group = 0; group < p.groups; ++group) {
        const int64_t first = group * g.out_channels_per_group;
        for (int64_t c = 0; c < g.co_blocks_per_group * block; ++c) {
          for (int64_t k = 0; k < K; ++k) {
            for (int64_t ci = 0; ci < g.vector_channels; ++ci, ++to) {
              if (c < g.out_channels_per_group && ci < cin) {
                visit(*to, (first + c) * reduction + ci * K + k);
              } else {
                pad(*to);
              }
            }
          }
        }
      }
      return;
    }
    // Source offset of reduction step r within one output channel's
    // weights: steps run tap by tap over a block of whole channels, a
    // chunk for length_vectors, the whole reduction for channel_vectors.
    std::vector<int64_t> source(static_cast<size_t>(reduction));
    const int64_t block_steps = g.kind == Kind::length_vectors ? g.chunk : reduction;
    for (int64_t r0 = 0; r0 < reduction; r0 += block_steps) {
      const int64_t steps = std::min(block_steps, reduction - r0);
      const int64_t channels = steps / K;
      for (int64_t step = 0; step < steps; ++step) {
        source[r0 + step] = (r0 / K + step % channels) * K + step / channels;
      }
    }
    for (int64_t group = 0; group < p.groups; ++group) {
      const int64_t first = group * g.out_channels_per_group;
      for (int64_t r0 = 0; r0 < reduction; r0 += g.chunk) {
        const int64_t steps = std::min(g.chunk, reduction - r0);
        for (int64_t b = 0; b < g.co_blocks_per_group; ++b, to += steps * block) {
          const int64_t channels = std::min(block, g.out_channels_per_group - b * block);
          for (int64_t c = 0; c < block; ++c) {
            P* HWY_RESTRICT panel = to + c;
            if (c >= channels) {
              for (int64_t r = 0; r < steps; ++r) pad(panel[r * block]);
              continue;
            }
            const int64_t row = (first + b * block + c) * reduction;
            const int64_t* HWY_RESTRICT from = source.data() + r0;
            for (int64_t r = 0; r < steps; ++r) visit(panel[r * block], row + from[r]);
          }
        }
      }
    }
  }

  // visit(packed_index, channel) for every output channel's bias.
  template <class Visit>
  void for_each_bias(Visit visit) const {
    const Geometry& g = geometry_;
    for (int64_t group = 0; group < problem_.groups; ++group) {
      for (int64_t c = 0; c < g.out_channels_per_group; ++c) {
        visit(group * g.co_blocks_per_group * g.block_channels + c,
              group * g.out_channels_per_group + c);
      }
    }
  }

  template <class T>
  void run(const Args<T>& args, void (*run_task)(const Args<T>&, const Task&, void*),
           int threads) const {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    const auto element = static_cast<int64_t>(sizeof(T));
    const int64_t tile = g.tile_positions;
    const int64_t block = g.block_channels;
    const int64_t l_tiles = ceil_div(g.out_length, tile);
    const int64_t co_blocks = g.co_blocks_per_group;

    // Task grid: batch x groups x output-channel parts x length parts. Big
    // enough to reuse weights and staged inputs from L2, and, with several
    // threads, at least two tasks per thread and the same number for each
    // (OpenMP's static schedule gives each thread a contiguous run): 13
    // tasks on 2 threads left one idle ~20% of the time.
    int64_t max_tiles = kLengthTilesPerTask;
    if (g.kind != Kind::length_vectors) {
      max_tiles = staged_task_positions(p, g.position_pitch * element, tile) / tile;
    }
    int64_t l_parts = ceil_div(l_tiles, max_tiles);
    int64_t co_parts = 1;
    while (ceil_div(co_blocks, co_parts) * block * ceil_div(l_tiles, l_parts) * tile * element >
               kTaskOutputBytes &&
           co_parts < co_blocks) {
      ++co_parts;
    }
    const auto task_count = [&] { return p.batch * p.groups * co_parts * l_parts; };
    // Weights from beyond L2 stream from L3 or memory once per length
    // part, while another part of the output channels stages the input
    // span again: such layers split their output channels first.
    const bool channels_first = g.weights_beyond_l2;
    const auto refine = [&] {
      if (channels_first && co_parts < co_blocks) {
        ++co_parts;
      } else if (l_parts < l_tiles) {
        ++l_parts;
      } else if (co_parts < co_blocks) {
        ++co_parts;
      } else {
        return false;
      }
      return true;
    };
    if (threads > 1) {
      while (task_count() < 2 * static_cast<int64_t>(threads) && refine()) {
      }
      while (task_count() % threads != 0 && refine()) {
      }
    }
    // Length parts differ by at most one tile.
    const int64_t task_positions = ceil_div(l_tiles, l_parts) * tile;

    size_t scratch =
        kernels::direct::input_scratch_bytes(g, task_positions, static_cast<size_t>(element));
    if (!kernels::direct::in_place(g, args.output)) {
      scratch += kernels::direct::tile_bytes(g, task_positions,
                                             ceil_div(co_blocks, co_parts) * block, sizeof(T));
    }

    core::parallel_for(task_count(), threads, [&](int64_t index) {
      Task task;
      const int64_t l_part = index % l_parts;
      index /= l_parts;
      const int64_t co_part = index % co_parts;
      index /= co_parts;
      task.group = index % p.groups;
      task.n = index / p.groups;
      task.co_begin = co_part * co_blocks / co_parts * block;
      task.co_end =
          std::min((co_part + 1) * co_blocks / co_parts * block, g.out_channels_per_group);
      task.l_begin = l_part * l_tiles / l_parts * tile;
      task.l_end = std::min((l_part + 1) * l_tiles / l_parts * tile, g.out_length);
      run_task(args, task, core::thread_scratch(scratch));
    });
  }

  const Target& target_;
  Geometry geometry_;
  std::vector<int64_t> offsets_;
  std::vector<int64_t> last_offsets_;
  PackingLayout packing_;
  // Shared with the executors that took them by share_weights.
  std::shared_ptr<Packed<float>> f32_;
  std::shared_ptr<Packed<double>> f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem&) { return std::nullopt; }

namespace {

// Roofline: compute at this ISA's FMA peak, or memory traffic, whichever is
// slower. Large layers run at the peak (~215-235 GFLOP/s on one AVX-512
// core here), less the work wasted in partial register tiles and, for short
// reductions, the loads and stores of accumulators (~60 cycles a tile
// against ~12 cycles per step). Fitted to 209 layers (rms of the log ratio
// 0.10): outputs stream at ~40 GB/s.
double seconds_with(const Problem& p, const Target& target, Kind kind) {
  const auto lanes =
      static_cast<double>(p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64);
  // Two FMA pipes x lanes x 2 flops at ~3.4 GHz.
  const double peak = 4.0 * lanes * 3.4e9;
  const double rows = target.rows;
  const double vectors = target.vectors;
  const auto use = [](double count, double block) {
    return count / (std::ceil(count / block) * block);
  };
  // A tile of fewer than 8 accumulators leaves the two FMA pipes (4 cycles
  // latency) idle part of the time.
  const auto latency_use = [](double accumulators) { return std::min(1.0, accumulators / 8); };
  const auto out_channels = static_cast<double>(p.out_channels_per_group());
  const auto out_length = static_cast<double>(p.out_length());
  const auto in_channels = static_cast<double>(p.in_channels_per_group());
  const auto taps = static_cast<double>(p.kernel_size);
  double tile_use = 1;
  double step_use = 1;
  if (kind == Kind::reduction_vectors) {
    // Lanes past the group's input channels are zeros; each output's
    // vector is summed across its lanes at the end (fitted: as much as 24
    // steps of a tile).
    const double steps = taps * std::ceil(in_channels / lanes);
    tile_use =
        use(in_channels, lanes) * latency_use(std::min<double>(target.sum_rows, out_channels) *
                                              std::min<double>(target.sum_positions, out_length));
    step_use = steps / (steps + 24);
  } else {
    // Length vectors: a row shorter than a tile is charged the whole tile;
    // its cost is more than the lanes it leaves empty, as all weights
    // stream past every tile (768 -> 768 channels at 25 outputs per row:
    // 1.4x slower than channel vectors). Channel vectors: partial tiles run
    // as smaller tiles, no work on lanes past the data; fewer vectors of
    // output channels run more positions.
    if (kind == Kind::length_vectors) {
      tile_use = use(out_channels, rows) * use(out_length, vectors * lanes);
    } else {
      // Fewer vectors per tile: fewer FMAs per broadcast, each loaded and
      // addressed (the staged positions are a run-time pitch apart). With
      // one vector, one per FMA: ~0.2 of the tile (16 -> 16 channels, K =
      // 64: 81% of the peak against 95% on length vectors).
      const auto tile_vectors = static_cast<double>(channel_tile_vectors(p, target));
      const auto positions = static_cast<double>(channel_tile_positions(p, target));
      tile_use = use(out_channels, lanes) * use(out_length, positions) *
                 latency_use(std::min(positions, out_length) * tile_vectors) /
                 (1 + 0.3 * (1 / tile_vectors - 1 / vectors));
    }
    const double steps = std::min(in_channels * taps, 128.0);
    step_use = steps * 12 / (steps * 12 + 60);
  }
  double compute = p.flops() / (peak * tile_use * step_use);
  // Groups of one to three input channels: each tile's few steps pay for
  // staging their rows and for loading and storing the accumulators.
  // NCL length vectors: fitted below. Otherwise ~2x the estimate above with
  // a tile's rows of output channels per group (depth multipliers of 8 to
  // 64), 4x or more with fewer, whose tiles are mostly that overhead.
  const bool narrow_groups =
      kind != Kind::reduction_vectors && p.groups > 1 && p.in_channels_per_group() < 4;
  const bool narrow_ncl_rows =
      narrow_groups && kind == Kind::length_vectors && p.layout == Layout::ncl;
  // Length-vector staging de-interleaves NCL rows with vector operations up
  // to the target's max_vector_stride, element by element beyond.
  const bool element_by_element = p.stride > target.max_vector_stride;
  if (narrow_groups && !narrow_ncl_rows) {
    compute *= p.out_channels_per_group() >= target.rows ? 2 : 4;
  }
  // Staging, per element of the input (and of the output where it is
  // copied out): NCL rows de-interleaved into stride phases, ~0.1 ns with
  // vector loads or permutes (strides up to max_vector_stride), ~0.5 ns
  // element by element beyond; NCL data position-major, transposed in
  // registers, ~0.1 ns in channel vectors (in and out), ~0.05 in reduction
  // vectors (in only); channels-last data in length vectors, gathered
  // element by element, ~0.6 ns; channels-last data position-major,
  // copied, ~0.02 ns.
  const auto batch = static_cast<double>(p.batch);
  const double inputs = batch * static_cast<double>(p.in_channels * p.length);
  const double outputs = batch * static_cast<double>(p.out_channels) * out_length;
  const double bytes =
      static_cast<double>(dtype_size(p.dtype)) *
      (inputs + outputs +
       static_cast<double>(p.out_channels * p.in_channels_per_group() * p.kernel_size));
  if (narrow_ncl_rows) {
    // Per element of the input: staging, ~0.21 ns (~0.36 ns element by
    // element, past max_vector_stride); of the output: ~0.04 ns, ~0.16 ns
    // where the output (over 16 MB) streams to memory; the tiles at 0.66 of
    // the estimate above (1-row tiles run above the sixth of the peak that
    // tile_use gives them). Fitted to 116 such layers on one AVX-512 thread
    // in float32 (K = 1..128, strides 1-5, dilations 1-16, depth multipliers
    // 1-96; stride 5 then element by element): rms of the log
    // ratio 0.17, 89% within 30%, all within 0.5-1.5x; the constant 2x / 4x
    // the other kinds keep read 0.8-7x the measured time here (rms 1.1).
    const double output_bytes = outputs * static_cast<double>(dtype_size(p.dtype));
    return 0.66 * (std::max(compute, bytes / 40e9) + 2e-6) +
           inputs * (element_by_element ? 0.36e-9 : 0.21e-9) +
           outputs * (output_bytes > 16e6 ? 0.16e-9 : 0.04e-9);
  }
  // Position-major staging copies each task's input span: with a wide
  // dilation most of it is shared with the neighbouring tasks (K = 31 at
  // dilation 16 stages 483 positions per 3 outputs).
  double staged = inputs;
  if (kind != Kind::length_vectors) {
    const double pitch =
        kind == Kind::channel_vectors ? in_channels : std::ceil(in_channels / lanes) * lanes;
    const int64_t tile =
        kind == Kind::channel_vectors ? channel_tile_positions(p, target) : target.sum_positions;
    const auto positions = static_cast<double>(
        staged_task_positions(p, static_cast<int64_t>(pitch) * dtype_size(p.dtype), tile));
    const double tasks = std::ceil(out_length / positions);
    const double span = (std::min(positions, out_length) - 1) * static_cast<double>(p.stride) +
                        (taps - 1) * static_cast<double>(p.dilation) + 1;
    staged = batch * static_cast<double>(p.in_channels) * tasks * span;
  }
  double staging = 0;
  if (p.layout == Layout::nlc) {
    staging = kind == Kind::length_vectors ? (inputs + outputs) * 0.6e-9 : staged * 0.02e-9;
  } else if (kind == Kind::length_vectors) {
    staging = inputs * (element_by_element ? 0.5e-9 : 0.1e-9);
  } else if (kind == Kind::channel_vectors) {
    staging = (staged + outputs) * 0.1e-9;
  } else {
    staging = staged * 0.05e-9;
  }
  return std::max(compute, bytes / 40e9) + staging + 2e-6;
}

}  // namespace

double estimated_seconds(const Problem& p) {
  const Target& target = kernels::direct::chosen_target();
  return seconds_with(p, target, best_kind(p, target));
}

std::unique_ptr<detail::Executor> create(const Problem& problem) {
  core::chosen_target();
  return std::make_unique<DirectExecutor>(problem);
}

}  // namespace conv1d::algorithms::direct
