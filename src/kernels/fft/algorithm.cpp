// The FFT algorithm as a registry entry: the transform size, twiddles and
// transformed weights (computed in double), the task grid and threads. The
// per-ISA code is in kernels.cpp; fft.hpp describes the method.
#include <hwy/aligned_allocator.h>
#include <hwy/base.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "core/finite.hpp"
#include "core/interned.hpp"
#include "core/isa.hpp"
#include "core/large_array.hpp"
#include "core/scratch.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "kernels/fft/fft.hpp"

namespace conv1d::algorithms::fft {

namespace {

using kernels::fft::Args;
using kernels::fft::Geometry;
using kernels::fft::Target;
using kernels::fft::Task;
using kernels::fft::transposes_panel;

// Transforms longer than this would need more memory for the transformed
// weights than any model layer has reason to use.
constexpr int64_t kMaxFftSize = int64_t{1} << 20;
// Spectra of one chunk of blocks (all input channels), shared by the
// output-side tasks: bounded so that long inputs do not need a buffer
// proportional to their length.
constexpr int64_t kChunkSpectraBytes = 8 << 20;
// Products of one output-side task, read back by its inverse transforms.
// Set where the L2 held 2 MiB; on a core of 1 MiB, half of it took ~1.2x as
// long on HiFi-GAN's layer.
constexpr int64_t kTaskProductBytes = 1 << 20;
// Output-side tasks per chunk, when the work allows, so a few threads
// balance. Fixed: the grid does not depend on the thread count.
constexpr int64_t kMinTasks = 8;

using core::ceil_div;

int64_t span_of(const Problem& p) { return (p.kernel_size - 1) * p.dilation + 1; }

Geometry make_geometry(const Problem& p, int64_t lanes, int64_t fft_size) {
  Geometry g;
  g.batch = p.batch;
  g.in_channels = p.in_channels;
  g.out_channels = p.out_channels;
  g.length = p.length;
  g.out_length = p.out_length();
  g.stride = p.stride;
  g.pad_left = p.pad_left;
  g.pad_right = p.pad_right;
  g.padding_mode = p.padding_mode;
  g.groups = p.groups;
  g.in_per_group = p.in_channels_per_group();
  g.out_per_group = p.out_channels_per_group();
  g.lanes = lanes;
  g.fft_size = fft_size;
  g.half = fft_size / 2;
  g.bins = g.half + 1;
  g.block_outputs = fft_size - span_of(p) + 1;
  g.positions = (g.out_length - 1) * p.stride + 1;
  g.blocks_per_sample = ceil_div(g.positions, g.block_outputs);
  g.by_channel = g.in_per_group == 1 && p.groups > 1;
  g.multiplier = g.by_channel ? g.out_per_group : 1;
  g.spectrum_channels = g.by_channel ? p.out_channels : p.in_channels;
  g.in_panels = ceil_div(g.spectrum_channels, lanes);
  g.spectrum_pitch = g.in_panels * lanes;
  g.out_panels = ceil_div(g.task_out_channels(), lanes);
  return g;
}

int64_t chunk_blocks(const Geometry& g, int64_t element) {
  const int64_t per_block = g.bins * 2 * g.spectrum_pitch * element;
  return std::clamp<int64_t>(kChunkSpectraBytes / per_block, 1,
                             std::max<int64_t>(g.total_blocks(), 1));
}

// Seconds on one core: costs per vector operation of each phase, fitted
// (non-negative least squares on relative error) to the measured time of
// 219 layers on an Intel Xeon's AVX-512 core at ~3.3 GHz: standard,
// grouped and depthwise, K = 7..2048, strides 1-4, NCL and NLC. At a given
// transform size two thirds of the predictions fell within 20% of the
// measured time, 86% within 30% (rms of the log ratio 0.17). On the Zen 5
// core of docs/performance.md (374 layers at 1-5 sizes each, before the
// transposes below) 58% fell within 20% and 81% within 30%; refits there
// chose worse transform sizes, so the terms stay and estimated_seconds
// scales their sum.
// Two ways to count the transformed weights (see below): `Weights::summed`
// ranks the transform sizes, `Weights::overlapped` rates the chosen size
// against the other algorithms.
enum class Weights { summed, overlapped };
double modelled_seconds(const Geometry& g, int64_t element, Layout layout,
                        Weights weights = Weights::summed) {
  const auto blocks = static_cast<double>(g.total_blocks());
  const auto half = static_cast<double>(g.half);
  const double stages = std::max(std::log2(half), 1.0);
  const auto in_rows = blocks * static_cast<double>(g.in_panels) * half;
  const auto out_rows = blocks * static_cast<double>(g.task_groups() * g.out_panels) * half;
  // ~1.8 cycles per row of V lanes and stage of each transform.
  const double transforms = (in_rows + out_rows) * stages * 1.8;
  // ~2.4 cycles per complex multiply-add of V lanes (4 FMAs); a quarter
  // more where a layer that mixes channels has over 16 MiB of transformed
  // weights, whose panels then come from memory rather than L3. (On the
  // Zen 5 core such layers, HiFi-GAN's K = 7 one among them, measured up
  // to 1.9x the time at 2.4 per product; with 1.25 the size each layer got
  // ran within 1.34x of its fastest measured size, against 1.62x without.)
  const double table_bytes = static_cast<double>(g.task_groups() * g.bins * g.in_per_group *
                                                 g.out_panels * 2 * g.lanes * element);
  const bool table_beyond_l3 = !g.by_channel && table_bytes > double{16 << 20};
  const double product_cycles = table_beyond_l3 ? 2.4 * 1.25 : 2.4;
  const double products =
      blocks * static_cast<double>(g.bins * g.task_groups() * g.out_panels * g.in_per_group) *
      product_cycles;
  // Channels-first data is gathered into lanes per block (the input is
  // read N / M times over) and scattered back, in blocks of V x V
  // transposed in registers where a panel fills more than half its lanes
  // (transposes_panel): layers that mix channels ~12 and ~3.5 cycles per row of
  // V lanes, depthwise (by_channel) ones ~0.24 cycles per element. Other
  // panels go element by element: ~77, ~22 and ~1.2. (The transposes' costs
  // are the element-by-element ones scaled by the factors, 0.15 and 0.2,
  // that brought the median of the measured time over the model at the
  // size it picks back to where it was before the transposes.)
  const bool ncl = layout == Layout::ncl;
  // Of `channels` in panels of V: those in transposed panels.
  const auto transposed = [&](int64_t channels) {
    const int64_t rest = channels % g.lanes;
    const int64_t full = channels - rest;
    return (transposes_panel(g.lanes, g.lanes) ? full : 0) +
           (transposes_panel(g.lanes, rest) ? rest : 0);
  };
  const auto rows_cost = [&](int64_t channels, double by_transpose, double by_element) {
    const int64_t fast = ceil_div(transposed(channels), g.lanes);
    const int64_t slow = ceil_div(channels, g.lanes) - fast;
    return blocks * half *
           (static_cast<double>(fast) * by_transpose + static_cast<double>(slow) * by_element);
  };
  const double gathers = !g.by_channel && ncl ? rows_cost(g.spectrum_channels, 12.0, 77.0) +
                                                    static_cast<double>(g.task_groups()) *
                                                        rows_cost(g.task_out_channels(), 3.5, 22.0)
                                              : 0.0;
  const double per_channel =
      blocks * static_cast<double>(g.fft_size) + static_cast<double>(g.batch * g.out_length);
  const auto fast_channels = static_cast<double>(transposed(g.spectrum_channels));
  const double moves =
      g.by_channel && ncl
          ? per_channel * (fast_channels * 0.24 +
                           (static_cast<double>(g.spectrum_channels) - fast_channels) * 1.2)
          : 0.0;
  // The transformed weights stream once per chunk (once per block when
  // by_channel), ~20 GB/s while they fit in L2, ~13 beyond, and the
  // activations once, ~11 GB/s: summed, as fitted, to rank the transform
  // sizes. The products read the weights as they stream, though, so against
  // the other algorithms the products take the longer of their multiply-adds
  // and that stream (~80 GB/s from L2, ~25 from L3, ~13 beyond). Summed, the
  // model read layers of few blocks and megabytes of weights up to 3x slow
  // (192 -> 192 channels, K = 64, stride 2 on 256 samples runs 2x faster on
  // the FFT than on the direct that it kept); overlapped, on 230 grouped,
  // depthwise and small-channel layers, rms of the log ratio 0.27 against
  // 0.32, none more than 1.6x slow. (Ranking the sizes that way picked worse
  // ones: 64 -> 16 channels, K = 9 ran 1.4x slower.)
  const double chunks =
      g.by_channel ? blocks : std::ceil(blocks / static_cast<double>(chunk_blocks(g, element)));
  const double weight_bytes = table_bytes * chunks;
  const double stream_bandwidth = weight_bytes <= 1.5e6 ? 80e9 : weight_bytes <= 24e6 ? 25e9 : 13e9;
  const double product_seconds =
      weights == Weights::overlapped
          ? std::max(products / 3.3e9, weight_bytes / stream_bandwidth)
          : products / 3.3e9 + weight_bytes / (weight_bytes <= 1.5e6 ? 20e9 : 13e9);
  const double activation_bytes = static_cast<double>(
      g.batch * (g.in_channels * g.length + g.out_channels * g.out_length) * element);
  return (transforms + gathers + moves) / 3.3e9 + product_seconds + activation_bytes / 11e9 + 5e-6;
}

int64_t lanes_for(const Problem& p, const Target& target) {
  return p.dtype == DType::f32 ? target.lanes_f32 : target.lanes_f64;
}

// The power-of-two size with the lowest modelled time, from the smallest
// that fits the dilated kernel up to one that covers the whole input.
Geometry best_geometry(const Problem& p, const Target& target) {
  const int64_t span = span_of(p);
  const int64_t lanes = lanes_for(p, target);
  const int64_t element = dtype_size(p.dtype);
  const int64_t whole = span + (p.out_length() - 1) * p.stride;
  Geometry best;
  double best_seconds = 0.0;
  for (int64_t n = 2; n <= kMaxFftSize; n *= 2) {
    if (n < span) continue;
    const Geometry g = make_geometry(p, lanes, n);
    const double seconds = modelled_seconds(g, element, p.layout);
    if (best.fft_size == 0 || seconds < best_seconds) {
      best = g;
      best_seconds = seconds;
    }
    if (n >= whole) break;
  }
  return best;
}

// What the kernel spectra depend on besides the weights: plans of one
// layer for different input lengths usually agree on all of it.
struct SpectraLayout {
  const void* target = nullptr;  // the ISA (its transform rounds differently)
  int64_t fft_size = 0, lanes = 0, groups = 0, in_per_group = 0, out_channels = 0;
  int64_t task_groups = 0, task_out_channels = 0, out_panels = 0, kernel_size = 0, dilation = 0;
  bool operator==(const SpectraLayout&) const = default;
};

// Kernel spectra with the weights they were made from. Plans whose layouts
// and weights are equal share one (transforming wav2vec2's positional
// convolution takes ~50 ms; comparing its weights well under 1 ms), so a
// layer that sees a new input length does not pay the transform again.
template <class T>
struct Spectra {
  SpectraLayout layout;
  std::shared_ptr<const core::Bytes> source_weight;  // core::intern_bytes
  std::vector<T> source_bias;                        // empty without bias
  core::LargeArray<T> weight;
  std::vector<T> bias;
  // Inputs below 2^input_exponent in magnitude keep every sum of the
  // transforms finite (see input_exponent_limit).
  int input_exponent = 0;
};

// The spectra alive in the process (held by plans, not by this list).
template <class T>
struct SpectraRegistry {
  std::mutex mutex;
  std::vector<std::weak_ptr<const Spectra<T>>> entries;
};
template <class T>
SpectraRegistry<T>& spectra_registry() {
  static SpectraRegistry<T> registry;
  return registry;
}

template <class T>
struct Tables {
  std::shared_ptr<const Spectra<T>> spectra;
  std::vector<T> twiddle_re, twiddle_im, split_re, split_im;
};

class FftExecutor final : public detail::Executor {
 public:
  explicit FftExecutor(const Problem& problem)
      : Executor(problem), target_(kernels::fft::chosen_target()) {
    geometry_ = best_geometry(problem_, target_);
    const Geometry& g = geometry_;
    chunk_blocks_ = chunk_blocks(g, dtype_size(problem_.dtype));
    bit_reversed_.resize(static_cast<size_t>(g.half));
    int bits = 0;
    while ((int64_t{1} << bits) < g.half) ++bits;
    for (int64_t r = 0; r < g.half; ++r) {
      int64_t reversed = 0;
      for (int b = 0; b < bits; ++b) reversed |= ((r >> b) & 1) << (bits - 1 - b);
      bit_reversed_[static_cast<size_t>(r)] = static_cast<int32_t>(reversed);
    }
    if (problem_.dtype == DType::f32) {
      make_twiddles(f32_);
    } else {
      make_twiddles(f64_);
    }
    spectra_layout_ =
        SpectraLayout{&target_,       g.fft_size,           g.lanes,          g.groups,
                      g.in_per_group, g.out_channels,       g.task_groups(),  g.task_out_channels(),
                      g.out_panels,   problem_.kernel_size, problem_.dilation};
  }

  // Spectra of the same layout serve any batch and length.
  bool share_weights(const detail::Executor& other) override {
    const auto* same = dynamic_cast<const FftExecutor*>(&other);
    if (same == nullptr || !(same->spectra_layout_ == spectra_layout_) ||
        same->problem_.dtype != problem_.dtype) {
      return false;
    }
    if (problem_.dtype == DType::f32 ? !same->f32_.spectra : !same->f64_.spectra) return false;
    f32_.spectra = same->f32_.spectra;
    f64_.spectra = same->f64_.spectra;
    return true;
  }
  const void* weights_identity() const override {
    if (problem_.dtype == DType::f32) return f32_.spectra.get();
    return f64_.spectra.get();
  }

  void set_weights(const void* weight, const void* bias) override {
    if (problem_.dtype == DType::f32) {
      pack(static_cast<const float*>(weight), static_cast<const float*>(bias), f32_);
    } else {
      pack(static_cast<const double*>(weight), static_cast<const double*>(bias), f64_);
    }
  }

  // The spectra keep the weights they were made from.
  bool returns_weights() const override { return true; }
  void get_weights(void* weight, void* bias) const override {
    if (problem_.dtype == DType::f32) {
      copy_source(*f32_.spectra, static_cast<float*>(weight), static_cast<float*>(bias));
    } else {
      copy_source(*f64_.spectra, static_cast<double*>(weight), static_cast<double*>(bias));
    }
  }

  bool takes_values(TensorRef<const float> input) const override {
    return core::magnitudes_below(input, f32_.spectra->input_exponent);
  }
  bool takes_values(TensorRef<const double> input) const override {
    return core::magnitudes_below(input, f64_.spectra->input_exponent);
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    run(input, output, f32_, target_.forward_f32, target_.output_f32, target_.channel_f32, threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    run(input, output, f64_, target_.forward_f64, target_.output_f64, target_.channel_f64, threads);
  }

 private:
  // Computed in double, rounded once.
  template <class T>
  void make_twiddles(Tables<T>& tables) const {
    const Geometry& g = geometry_;
    const double pi = std::numbers::pi;
    const auto entries = static_cast<size_t>(std::max<int64_t>(g.half - 1, 0));
    tables.twiddle_re.assign(entries, T(0));
    tables.twiddle_im.assign(entries, T(0));
    for (int64_t h = 1; h < g.half; h *= 2) {
      for (int64_t t = 0; t < h; ++t) {
        const double angle = -pi * static_cast<double>(t) / static_cast<double>(h);
        tables.twiddle_re[static_cast<size_t>(h - 1 + t)] = static_cast<T>(std::cos(angle));
        tables.twiddle_im[static_cast<size_t>(h - 1 + t)] = static_cast<T>(std::sin(angle));
      }
    }
    for (int64_t k = 0; k <= g.half / 2; ++k) {
      const double angle = -2 * pi * static_cast<double>(k) / static_cast<double>(g.fft_size);
      tables.split_re.push_back(static_cast<T>(std::cos(angle)));
      tables.split_im.push_back(static_cast<T>(std::sin(angle)));
    }
  }

  // The kernel spectra for these weights: shared with another plan's when
  // the layout and the weights are the same, else transformed.
  template <class T>
  void pack(const T* weight, const T* bias, Tables<T>& tables) {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    const int64_t lanes = g.lanes;
    const int64_t cin = g.in_per_group;
    const int64_t K = p.kernel_size;
    const SpectraLayout& layout = spectra_layout_;
    // Equal weights are one interned copy: comparing them is comparing pointers.
    auto source =
        core::intern_bytes(weight, static_cast<size_t>(p.out_channels * cin * K) * sizeof(T));
    SpectraRegistry<T>& registry = spectra_registry<T>();
    {
      std::lock_guard lock(registry.mutex);
      std::erase_if(registry.entries, [](const auto& entry) { return entry.expired(); });
      for (const auto& entry : registry.entries) {
        std::shared_ptr<const Spectra<T>> other = entry.lock();
        if (other && other->layout == layout && other->source_weight == source &&
            other->source_bias.empty() == (bias == nullptr) &&
            (bias == nullptr ||
             std::equal(other->source_bias.begin(), other->source_bias.end(), bias))) {
          tables.spectra = std::move(other);
          return;
        }
      }
    }
    auto made = std::make_shared<Spectra<T>>();
    made->layout = layout;
    made->source_weight = std::move(source);
    if (bias != nullptr) made->source_bias.assign(bias, bias + p.out_channels);
    const auto size =
        static_cast<size_t>(g.task_groups() * g.bins * cin * g.out_panels * 2 * lanes);
    made->weight = core::make_large_array<T>(size);
    std::fill(made->weight.get(), made->weight.get() + size, T(0));
    made->bias.assign(static_cast<size_t>(p.out_channels + lanes), T(0));
    if (bias != nullptr) std::copy(bias, bias + p.out_channels, made->bias.begin());
    made->input_exponent = input_exponent_limit(weight, std::numeric_limits<T>::max_exponent);
    transform_kernels(weight, *made);
    tables.spectra = made;
    std::lock_guard lock(registry.mutex);
    registry.entries.push_back(made);
  }

  // The largest e such that inputs below 2^e in magnitude keep every
  // intermediate sum below 2^max_exponent: a block's transform grows
  // magnitudes by at most N, the stored kernel spectra are at most
  // max|w| * K / 2N <= max|w| / 2, the products add up C_in/groups of
  // them, and the inverse transform grows them by N again (4x margin).
  // With non-finite weights no input qualifies.
  template <class T>
  int input_exponent_limit(const T* weight, int max_exponent) const {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    double largest = 0.0;
    const int64_t count = p.out_channels * g.in_per_group * p.kernel_size;
    for (int64_t i = 0; i < count; ++i) {
      largest = std::max(largest, std::abs(static_cast<double>(weight[i])));
    }
    if (!std::isfinite(largest)) return std::numeric_limits<int>::min() / 2;
    const auto log2_ceil = [](int64_t v) {
      int bits = 0;
      while ((int64_t{1} << bits) < v) ++bits;
      return bits;
    };
    const int weight_bits = largest > 0.0 ? std::ilogb(largest) + 1 : 0;
    return max_exponent - 2 * log2_ceil(g.fft_size) - log2_ceil(g.by_channel ? 1 : g.in_per_group) -
           weight_bits - 2;
  }

  template <class T>
  static void copy_source(const Spectra<T>& spectra, T* weight, T* bias) {
    std::memcpy(weight, spectra.source_weight->data(), spectra.source_weight->size());
    if (bias != nullptr) std::copy(spectra.source_bias.begin(), spectra.source_bias.end(), bias);
  }

  // Transforms each kernel in double and stores conj(spectrum) / 2N:
  // V kernels at a time, one per vector lane (lanes never mix, so a zero
  // kernel gives exact zeros), with the same transform as the blocks.
  template <class T>
  void transform_kernels(const T* weight, Spectra<T>& spectra) const {
    const Problem& p = problem_;
    const Geometry& g = geometry_;
    const int64_t lanes = g.lanes;
    const int64_t cin = g.in_per_group;
    const int64_t K = p.kernel_size;

    // The real kernel h (N samples) as z[r] = h[2r] + i h[2r+1] through a
    // complex FFT of H points, then split as in the kernels.
    Tables<double> twiddles;
    make_twiddles(twiddles);
    kernels::fft::Args<double> args;
    args.geometry = &g;
    args.twiddle_re = twiddles.twiddle_re.data();
    args.twiddle_im = twiddles.twiddle_im.data();
    const int64_t half = g.half;
    const int64_t filter_lanes = target_.lanes_f64;
    const int64_t pitch = 2 * filter_lanes;
    args.split_re = twiddles.split_re.data();
    args.split_im = twiddles.split_im.data();
    args.bit_reversed = bit_reversed_.data();
    auto rows = hwy::AllocateAligned<double>(static_cast<size_t>(half * pitch));
    auto spectrum = hwy::AllocateAligned<double>(static_cast<size_t>(g.bins * pitch));
    // The spectra come out as 2 X[k]; stored as conj(X[k]) / 2N.
    const double scale = 1.0 / (4.0 * static_cast<double>(g.fft_size));
    // The lanes hold output channels co0.. of one input channel ci, so the
    // lanes' results for a bin land next to each other in the table.
    const int64_t bin_pitch = cin * g.out_panels * 2 * lanes;
    std::vector<T*> first_bin(static_cast<size_t>(filter_lanes));
    // Output channels inside: consecutive transforms fill consecutive
    // panels of one input channel's row of the table, bin by bin.
    for (int64_t ci = 0; ci < cin; ++ci) {
      for (int64_t co0 = 0; co0 < p.out_channels; co0 += filter_lanes) {
        const int64_t count = std::min(filter_lanes, p.out_channels - co0);
        std::fill(rows.get(), rows.get() + half * pitch, 0.0);
        for (int64_t lane = 0; lane < count; ++lane) {
          const int64_t co = co0 + lane;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t j = k * p.dilation;
            rows[static_cast<size_t>(j / 2 * pitch + (j % 2) * filter_lanes + lane)] =
                static_cast<double>(weight[(co * cin + ci) * K + k]);
          }
          const int64_t group = co / g.task_out_channels();
          const int64_t local = co % g.task_out_channels();
          first_bin[static_cast<size_t>(lane)] =
              spectra.weight.get() +
              ((group * g.bins * cin + ci) * g.out_panels + local / lanes) * 2 * lanes +
              local % lanes;
        }
        target_.spectrum_f64(args, rows.get(), spectrum.get());
        for (int64_t bin = 0; bin < g.bins; ++bin) {
          const double* HWY_RESTRICT x = spectrum.get() + bin * pitch;
          for (int64_t lane = 0; lane < count; ++lane) {
            T* to = first_bin[static_cast<size_t>(lane)] + bin * bin_pitch;
            to[0] = static_cast<T>(x[lane] * scale);
            to[lanes] = static_cast<T>(-x[filter_lanes + lane] * scale);
          }
        }
      }
    }
  }

  template <class T>
  void run(TensorRef<const T> input, TensorRef<T> output, const Tables<T>& tables,
           void (*forward_task)(const Args<T>&, int64_t, int64_t, void*),
           void (*output_task)(const Args<T>&, const Task&, void*),
           void (*channel_task)(const Args<T>&, int64_t, int64_t, void*), int threads) const {
    const Geometry& g = geometry_;
    const int64_t total = g.total_blocks();
    if (total == 0) return;
    Args<T> a;
    a.geometry = &g;
    a.input = input;
    a.output = output;
    a.weight = tables.spectra->weight.get();
    a.bias = tables.spectra->bias.data();
    a.twiddle_re = tables.twiddle_re.data();
    a.twiddle_im = tables.twiddle_im.data();
    a.split_re = tables.split_re.data();
    a.split_im = tables.split_im.data();
    a.bit_reversed = bit_reversed_.data();
    if (g.by_channel) {
      const size_t bytes = kernels::fft::channel_scratch_bytes(g, sizeof(T));
      core::parallel_for(total * g.in_panels, threads, [&](int64_t task) {
        channel_task(a, task / g.in_panels, task % g.in_panels, core::thread_scratch<1>(bytes));
      });
      return;
    }
    a.spectrum_blocks = chunk_blocks_;
    a.spectra = static_cast<T*>(
        core::thread_scratch<0>(kernels::fft::spectra_bytes(g, chunk_blocks_, sizeof(T))));
    const size_t forward_bytes = kernels::fft::forward_scratch_bytes(g, sizeof(T));
    for (int64_t first = 0; first < total; first += chunk_blocks_) {
      const int64_t count = std::min(chunk_blocks_, total - first);
      a.first_block = first;
      core::parallel_for(count * g.in_panels, threads, [&](int64_t task) {
        forward_task(a, task / g.in_panels, task % g.in_panels,
                     core::thread_scratch<1>(forward_bytes));
      });

      // Output-side grid: panels first (no extra weight traffic), then
      // blocks, until there are enough tasks and a task's products fit L2.
      const int64_t groups = g.task_groups();
      int64_t panel_parts = std::min(g.out_panels, ceil_div(kMinTasks, groups));
      int64_t block_parts = std::min(count, ceil_div(kMinTasks, groups * panel_parts));
      const auto task_bytes = [&] {
        return kernels::fft::products_bytes(g, ceil_div(count, block_parts),
                                            ceil_div(g.out_panels, panel_parts), sizeof(T));
      };
      while (task_bytes() > static_cast<size_t>(kTaskProductBytes)) {
        if (block_parts < count) {
          ++block_parts;
        } else if (panel_parts < g.out_panels) {
          ++panel_parts;
        } else {
          break;
        }
      }
      const size_t output_bytes = kernels::fft::transform_bytes(g, sizeof(T)) + task_bytes();
      core::parallel_for(groups * panel_parts * block_parts, threads, [&](int64_t index) {
        Task task;
        const int64_t block_part = index % block_parts;
        index /= block_parts;
        const int64_t panel_part = index % panel_parts;
        task.group = index / panel_parts;
        task.panel_begin = panel_part * g.out_panels / panel_parts;
        task.panel_end = (panel_part + 1) * g.out_panels / panel_parts;
        task.block_begin = block_part * count / block_parts;
        task.block_end = (block_part + 1) * count / block_parts;
        output_task(a, task, core::thread_scratch<1>(output_bytes));
      });
    }
  }

  const Target& target_;
  Geometry geometry_;
  SpectraLayout spectra_layout_;
  int64_t chunk_blocks_ = 1;
  std::vector<int32_t> bit_reversed_;
  Tables<float> f32_;
  Tables<double> f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem& p) {
  if (span_of(p) > kMaxFftSize) {
    return core::str_cat("the dilated kernel spans ", span_of(p),
                         " samples; transforms are at most ", kMaxFftSize, " long");
  }
  return std::nullopt;
}

// The model's time with margins. The model counts cycles at 3.3 GHz, as
// the direct and depthwise models do, so the factor below is what this
// machine's FFT runs measure against the model at the size it picks:
// AVX-512 on the Zen 5 core of docs/performance.md, median 0.91 over 374
// layers (standard, grouped, depthwise; K = 5..2048; strides 1-5); AVX2 on
// the same core 0.94. (On the Intel Xeon this project ran on before,
// AVX-512 measured ~1.15x the model; with that factor here, fft lost
// layers it runs 1.5-3x faster than direct.)
// The FFT is not exact, so it is picked only where it saves a third of that
// time and 20 us (small layers, such as a stream's chunks, keep the exact
// algorithms). Measured against direct (one AVX-512 thread, f32): 5-20x
// faster at K = 64..251 with 16..768 channels (wav2vec2's positional
// convolution 6x), 1.3-3x at K = 7..31 with 16..384 channels (HiFi-GAN's
// K = 7, dilation 3 layer 1.7x), slower at K <= 4 and with few channels
// (1 -> 80 channels, K = 7..31: 2-7x slower). Against depthwise: 3.7x at
// K = 2048 (a Hyena-style long filter), 1.7x (NLC) and 0.77x (NCL) at
// K = 251, slower at K <= 101.
double estimated_seconds(const Problem& p) {
  const Target& target = kernels::fft::chosen_target();
  const Geometry g = best_geometry(p, target);
  const double measured_over_model = target.lanes_f32 == 8 ? 0.94 : 0.91;
  return 1.5 * measured_over_model *
             modelled_seconds(g, dtype_size(p.dtype), p.layout, Weights::overlapped) +
         20e-6;
}

std::unique_ptr<detail::Executor> create(const Problem& problem) {
  core::chosen_target();
  return std::make_unique<FftExecutor>(problem);
}

}  // namespace conv1d::algorithms::fft
