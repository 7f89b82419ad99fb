// The fused separable executor: plan-time geometry, weight packing, the task
// grid and threads. The task code is in kernels.cpp.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/isa.hpp"
#include "core/large_array.hpp"
#include "core/scratch.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "kernels/separable/executor.hpp"
#include "kernels/separable/separable.hpp"

namespace conv1d::algorithms::separable {

namespace {

using core::str_cat;
using kernels::separable::Args;
using kernels::separable::Geometry;
using kernels::separable::Target;
using kernels::separable::Task;

// The GEMM operand streamed from L1 per reduction step (mid rows for NCL,
// the weight panel for NLC): 128 steps of 64 floats, as in the direct
// algorithm.
constexpr int64_t kL1OperandBytes = 32 * 1024;
// NCL: up to this many register tiles (of positions) per depthwise tile,
// while its mid tile stays within kNclMidTileBytes (in L2). Longer runs of
// each input row per tile keep the many row streams of an NCL input cheap.
constexpr int64_t kRegisterTilesPerTile = 4;
constexpr int64_t kNclMidTileBytes = 256 * 1024;
// NLC: the mid tile ([positions][C_mid]) stays in L2 while every output
// channel block of the GEMM passes over it.
constexpr int64_t kNlcMidTileBytes = 96 * 1024;
// Tiles per task: few enough tasks to keep the scheduling cost negligible,
// enough that a few threads balance (refined below).
constexpr int64_t kTilesPerTask = 4;
// Beyond these widths one tile of the intermediate (or of the output) no
// longer stays in L2, and fusing saves little over two passes.
constexpr int64_t kMaxChannels = 4096;

using core::ceil_div;

// Rows a power-of-two bytes apart would share L1 sets; one line more
// spreads them.
int64_t spread_pitch(int64_t elements, int64_t element_size) {
  return elements * element_size % 1024 == 0 ? elements + 64 / element_size : elements;
}

Geometry make_geometry(const Problem& depthwise, const Problem& pointwise, const Target& target) {
  const Problem& p = depthwise;
  const int64_t lanes = p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
  const int64_t element = dtype_size(p.dtype);
  const int64_t line = 64 / element;
  const int64_t vector_width = target.vectors * lanes;
  const int64_t reach = (p.kernel_size - 1) * p.dilation;

  Geometry g;
  g.layout = p.layout;
  g.length = p.length;
  g.out_length = p.out_length();
  g.kernel_size = p.kernel_size;
  g.stride = p.stride;
  g.dilation = p.dilation;
  g.pad_left = p.pad_left;
  g.pad_right = p.pad_right;
  g.padding_mode = p.padding_mode;
  g.in_channels = p.in_channels;
  g.multiplier = p.out_channels_per_group();
  g.mid_channels = p.out_channels;
  g.out_channels = pointwise.out_channels;
  if (g.layout == Layout::ncl) {
    g.block_channels = target.rows;
    g.tile_positions =
        std::clamp<int64_t>(kNclMidTileBytes / (g.mid_channels * vector_width * element), 1,
                            kRegisterTilesPerTile) *
        vector_width;
    // Rows 1 KiB apart would put a GEMM chunk's mid rows in a quarter of
    // the L1 sets, and evict them before the next output channel block.
    g.mid_pitch = spread_pitch(g.tile_positions, element);
    g.out_pitch = vector_width + line;
    g.shifted_taps = target.shifted_rows && p.stride == 1 && p.dilation == 1 &&
                     p.kernel_size >= kernels::separable::kMinShiftedTaps;
    // Shifted taps run in windows of 2N, each reading two vectors past the
    // tile from the window's start.
    g.phase_width =
        g.tile_positions +
        (g.shifted_taps ? ceil_div(p.kernel_size, 2 * lanes) * 2 * lanes : reach / p.stride);
  } else {
    g.block_channels = vector_width;
    g.mid_pitch = spread_pitch(g.mid_channels, element);
    g.stage_pitch = spread_pitch(g.in_channels, element);
    const int64_t rows = target.rows;
    g.tile_positions =
        std::clamp(kNlcMidTileBytes / (g.mid_pitch * element) / rows * rows, rows, 16 * rows);
  }
  g.co_blocks = ceil_div(g.out_channels, g.block_channels);
  if (g.layout == Layout::nlc) g.out_pitch = spread_pitch(g.co_blocks * g.block_channels, element);
  g.span = (g.tile_positions - 1) * p.stride + reach + 1;
  // Equal chunks: 192 channels at a 128-step budget are 2 x 96.
  const int64_t budget = std::max<int64_t>(1, kL1OperandBytes / (vector_width * element));
  g.chunk = ceil_div(g.mid_channels, ceil_div(g.mid_channels, budget));
  return g;
}

template <class T>
struct Packed {
  std::vector<T> dw_weight;
  std::vector<T> dw_bias;
  core::LargeArray<T> pw_weight;
  std::vector<T> pw_bias;
};

// What the packed order depends on besides the weights (not the length).
struct PackingLayout {
  const Target* target = nullptr;
  Layout layout = Layout::ncl;
  DType dtype = DType::f32;
  int64_t in_channels = 0, mid_channels = 0, out_channels = 0, kernel_size = 0;
  int64_t block_channels = 0, chunk = 0;
  bool operator==(const PackingLayout&) const = default;
};

class FusedExecutor final : public detail::SeparableExecutor {
 public:
  FusedExecutor(const Problem& depthwise, const Problem& pointwise)
      : target_(kernels::separable::chosen_target()),
        geometry_(make_geometry(depthwise, pointwise, target_)),
        batch_(depthwise.batch),
        dtype_(depthwise.dtype) {
    Geometry& g = geometry_;
    for (int64_t k = 0; k < g.kernel_size; ++k) {
      const int64_t tap = k * g.dilation;
      tap_offsets_.push_back(tap % g.stride * g.phase_width + tap / g.stride);
    }
    g.tap_offsets = tap_offsets_.data();
    packing_ = PackingLayout{&target_,      g.layout,         dtype_,
                             g.in_channels, g.mid_channels,   g.out_channels,
                             g.kernel_size, g.block_channels, g.chunk};
  }

  bool share_weights(const detail::SeparableExecutor& other) override {
    const auto* same = dynamic_cast<const FusedExecutor*>(&other);
    if (same == nullptr || !(same->packing_ == packing_)) return false;
    if (dtype_ == DType::f32 ? !same->f32_ : !same->f64_) return false;
    f32_ = same->f32_;
    f64_ = same->f64_;
    return true;
  }
  const void* weights_identity() const override {
    if (dtype_ == DType::f32) return f32_.get();
    return f64_.get();
  }

  void set_weights(const void* dw_weight, const void* dw_bias, const void* pw_weight,
                   const void* pw_bias) override {
    if (dtype_ == DType::f32) {
      pack(static_cast<const float*>(dw_weight), static_cast<const float*>(dw_bias),
           static_cast<const float*>(pw_weight), static_cast<const float*>(pw_bias), f32_);
    } else {
      pack(static_cast<const double*>(dw_weight), static_cast<const double*>(dw_bias),
           static_cast<const double*>(pw_weight), static_cast<const double*>(pw_bias), f64_);
    }
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    run(args(input, output, *f32_), target_.run_f32, threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    run(args(input, output, *f64_), target_.run_f64, threads);
  }

 private:
  template <class T>
  Args<T> args(TensorRef<const T> input, TensorRef<T> output, const Packed<T>& packed) const {
    return Args<T>{&geometry_,
                   input,
                   output,
                   packed.dw_weight.data(),
                   packed.dw_bias.data(),
                   packed.pw_weight.get(),
                   packed.pw_bias.data()};
  }

  // Depthwise: NCL keeps (C_mid, K); NLC transposes to [K][c'] with
  // c' = m*C_in + ci. Pointwise: [chunk][co_block][step][block_channels]
  // over the reduction order of the layout (c for NCL, c' for NLC), output
  // channels past the last zero. Missing biases are zeros. Packs in place
  // unless another executor shares the packed weights.
  template <class T>
  void pack(const T* dw_weight, const T* dw_bias, const T* pw_weight, const T* pw_bias,
            std::shared_ptr<Packed<T>>& shared) const {
    if (!shared || shared.use_count() > 1) shared = std::make_shared<Packed<T>>();
    Packed<T>& packed = *shared;
    const Geometry& g = geometry_;
    const int64_t K = g.kernel_size;
    const int64_t M = g.multiplier;
    const int64_t C = g.in_channels;
    const bool by_length = g.layout == Layout::ncl;
    // Intermediate channel of reduction step r.
    const auto channel_of = [&](int64_t r) { return by_length ? r : (r % C) * M + r / C; };

    packed.dw_weight.resize(static_cast<size_t>(g.mid_channels * K));
    packed.dw_bias.assign(static_cast<size_t>(g.mid_channels), T(0));
    for (int64_t r = 0; r < g.mid_channels; ++r) {
      const int64_t c = channel_of(r);
      for (int64_t k = 0; k < K; ++k) {
        packed.dw_weight[static_cast<size_t>(by_length ? r * K + k : k * g.mid_channels + r)] =
            dw_weight[c * K + k];
      }
      if (dw_bias != nullptr) packed.dw_bias[static_cast<size_t>(r)] = dw_bias[c];
    }

    const int64_t block = g.block_channels;
    const auto size = static_cast<size_t>(g.co_blocks * block * g.mid_channels);
    if (!packed.pw_weight) packed.pw_weight = core::make_large_array<T>(size);
    T* to = packed.pw_weight.get();
    std::fill(to, to + size, T(0));
    for (int64_t r0 = 0; r0 < g.mid_channels; r0 += g.chunk) {
      const int64_t steps = std::min(g.chunk, g.mid_channels - r0);
      for (int64_t b = 0; b < g.co_blocks; ++b) {
        const int64_t channels = std::min(block, g.out_channels - b * block);
        for (int64_t r = r0; r < r0 + steps; ++r, to += block) {
          const int64_t c = channel_of(r);
          for (int64_t j = 0; j < channels; ++j) {
            to[j] = pw_weight[(b * block + j) * g.mid_channels + c];
          }
        }
      }
    }
    packed.pw_bias.assign(static_cast<size_t>(g.co_blocks * block), T(0));
    if (pw_bias != nullptr) std::copy(pw_bias, pw_bias + g.out_channels, packed.pw_bias.begin());
  }

  template <class T>
  void run(const Args<T>& args, void (*run_task)(const Args<T>&, const Task&, void*),
           int threads) const {
    const Geometry& g = geometry_;
    const int64_t tile = g.tile_positions;
    const int64_t l_tiles = ceil_div(g.out_length, tile);
    int64_t l_parts = ceil_div(l_tiles, kTilesPerTask);
    const auto task_count = [&] { return batch_ * l_parts; };
    // Several threads: at least two tasks each, the same number for each
    // (OpenMP's static schedule gives each thread a contiguous run).
    if (threads > 1) {
      while (task_count() < 2 * static_cast<int64_t>(threads) && l_parts < l_tiles) ++l_parts;
      while (task_count() % threads != 0 && l_parts < l_tiles) ++l_parts;
    }
    const size_t scratch = kernels::separable::scratch_bytes(g, sizeof(T));
    core::parallel_for(task_count(), threads, [&](int64_t index) {
      Task task;
      const int64_t part = index % l_parts;
      task.n = index / l_parts;
      task.l_begin = part * l_tiles / l_parts * tile;
      task.l_end = std::min((part + 1) * l_tiles / l_parts * tile, g.out_length);
      if (task.l_begin < task.l_end) run_task(args, task, core::thread_scratch(scratch));
    });
  }

  const Target& target_;
  Geometry geometry_;
  std::vector<int64_t> tap_offsets_;
  int64_t batch_;
  DType dtype_;
  PackingLayout packing_;
  // Shared with the executors that took them by share_weights.
  std::shared_ptr<Packed<float>> f32_;
  std::shared_ptr<Packed<double>> f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem& depthwise, const Problem& pointwise) {
  const Problem& d = depthwise;
  const Problem& p = pointwise;
  if (d.groups != d.in_channels) {
    return str_cat("the first part is not depthwise: groups=", d.groups,
                   " differs from in_channels=", d.in_channels);
  }
  if (p.kernel_size != 1 || p.stride != 1 || p.dilation != 1 || p.pad_left != 0 ||
      p.pad_right != 0 || p.groups != 1) {
    return str_cat("the second part is not a 1x1 pointwise convolution: ", p.to_string());
  }
  if (p.in_channels != d.out_channels) {
    return str_cat("the pointwise in_channels=", p.in_channels,
                   " differ from the depthwise out_channels=", d.out_channels);
  }
  if (p.batch != d.batch || p.length != d.out_length() || p.layout != d.layout ||
      p.dtype != d.dtype) {
    return str_cat("the pointwise input (", p.to_string(), ") is not the depthwise output (",
                   d.to_string(), ")");
  }
  if (d.out_channels > kMaxChannels || p.out_channels > kMaxChannels) {
    return str_cat("mid_channels=", d.out_channels, " and out_channels=", p.out_channels,
                   " must be at most ", kMaxChannels,
                   ": a fused tile would not stay in L2 and two passes cost the same");
  }
  return std::nullopt;
}

std::unique_ptr<detail::SeparableExecutor> create(const Problem& depthwise,
                                                  const Problem& pointwise) {
  core::chosen_target();
  return std::make_unique<FusedExecutor>(depthwise, pointwise);
}

}  // namespace conv1d::algorithms::separable
