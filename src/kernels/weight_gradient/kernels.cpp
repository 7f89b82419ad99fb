// Per-ISA code of the weight gradient, compiled once per Highway target
// (hwy/foreach_target.h re-includes this file). Serial: the driver in
// weight_gradient.cpp owns the tasks and the threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/weight_gradient/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/highway.h>
// After hwy/highway.h: per-target code.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "core/isa.hpp"
#include "core/padding.hpp"
#include "core/scratch.hpp"
#include "kernels/common/transpose-inl.h"
#include "kernels/gemm/tile-inl.h"
#include "kernels/weight_gradient/weight_gradient.hpp"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::weight_gradient {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace tile = ::conv1d::kernels::gemm::HWY_NAMESPACE;
using ::conv1d::kernels::common::HWY_NAMESPACE::Transpose;
using tile::kRows;
using tile::kVectors;

// The padded positions the taps read for `steps` positions t.
inline int64_t RowsRead(const Geometry& g, int64_t steps) {
  return (steps - 1) * g.stride + (g.kernel_size - 1) * g.dilation + 1;
}

// Staged rows a task holds per chunk.
inline int64_t StagedRows(const Geometry& g) { return RowsRead(g, g.chunk_steps) + g.extra_rows; }

// Elements between staged rows: the group's channels with taps in vectors;
// otherwise the task's channels in whole vectors, plus a cache line where
// rows a multiple of 1 KiB apart would fall into the same L1 sets.
inline int64_t StagePitch(const Geometry& g, int64_t vectors, int64_t lanes, int64_t element) {
  if (g.taps_in_vectors) return g.in_channels_per_group;
  int64_t pitch = vectors * lanes;
  if (pitch * element % 1024 == 0) pitch += 64 / element;
  return pitch;
}

template <class T>
int64_t Lanes() {
  return static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
}

// Scratch of a task, each part 64-byte aligned: the staged rows, each
// staged row's source index, and the offsets of grad_output's positions.
inline int64_t StagedBytes(const Geometry& g, int64_t vectors, int64_t lanes, int64_t element) {
  return static_cast<int64_t>(core::round_up_64(
      static_cast<size_t>(StagedRows(g) * StagePitch(g, vectors, lanes, element) * element)));
}
inline int64_t SourcesBytes(const Geometry& g) {
  return static_cast<int64_t>(
      core::round_up_64(static_cast<size_t>(StagedRows(g)) * sizeof(int64_t)));
}

// Dot products: the group's phase rows, then grad_output's row.
inline int64_t PhaseRowsBytes(const Geometry& g, int64_t element) {
  return static_cast<int64_t>(core::round_up_64(
      static_cast<size_t>(g.in_channels_per_group * g.stride * g.phase_length * element)));
}

int64_t ScratchBytes(const Geometry& g, int64_t vectors, int64_t element) {
  if (g.dot_products) return PhaseRowsBytes(g, element) + g.padded_out_length * element;
  const int64_t lanes = element == 4 ? Lanes<float>() : Lanes<double>();
  return StagedBytes(g, vectors, lanes, element) + SourcesBytes(g) +
         2 * g.chunk_steps * static_cast<int64_t>(sizeof(int64_t));
}

// Taps per pass over grad_output's row: each load of it feeds that many
// FMAs, each with its own chain.
constexpr size_t kDotTaps = 8;

// sums[i] += sum_t dy[t] * rows[i][t] for t < length. The last vector's
// lanes past `length` take zeros from the rows, not the input that lies
// there: an infinite value times grad_output's zeros would make NaN.
template <size_t kTaps, class T>
void DotTaps(const T* HWY_RESTRICT dy, const T* const* rows_of_taps, int64_t length,
             T* HWY_RESTRICT sums) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  const T* HWY_RESTRICT rows[kTaps];
  hn::Vec<decltype(d)> acc[kTaps];
  for (size_t i = 0; i < kTaps; ++i) {
    rows[i] = rows_of_taps[i];
    acc[i] = hn::Zero(d);
  }
  int64_t t = 0;
  for (; t + lanes <= length; t += lanes) {
    const auto y = hn::Load(d, dy + t);
    for (size_t i = 0; i < kTaps; ++i) acc[i] = hn::MulAdd(y, hn::LoadU(d, rows[i] + t), acc[i]);
  }
  if (t < length) {
    const auto y = hn::Load(d, dy + t);
    const auto valid = hn::FirstN(d, static_cast<size_t>(length - t));
    for (size_t i = 0; i < kTaps; ++i) {
      acc[i] = hn::MulAdd(y, hn::IfThenElseZero(valid, hn::LoadU(d, rows[i] + t)), acc[i]);
    }
  }
  for (size_t i = 0; i < kTaps; ++i) sums[i] += hn::GetLane(hn::SumOfLanes(d, acc[i]));
}

template <class T, size_t... I>
constexpr std::array<void (*)(const T*, const T* const*, int64_t, T*), sizeof...(I)> MakeDots(
    std::index_sequence<I...>) {
  return {&DotTaps<I + 1, T>...};
}
template <class T>
constexpr auto kDots = MakeDots<T>(std::make_index_sequence<kDotTaps>());

// grad_weight of the task's output channels, written in place.
template <class T>
void RunDotProducts(const TaskArgs<T>& args, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t cin = g.in_channels_per_group;
  const int64_t cout = g.out_channels_per_group;
  const int64_t K = g.kernel_size;
  const int64_t stride = g.stride;
  auto* phases = static_cast<T*>(scratch);
  auto* dy_row = reinterpret_cast<T*>(static_cast<uint8_t*>(scratch) +
                                      PhaseRowsBytes(g, static_cast<int64_t>(sizeof(T))));
  const TensorRef<const T>& x = args.input;
  const TensorRef<const T>& dy = args.grad_output;
  T* const weight_rows = args.partial + (args.group * cout) * cin * K;
  std::fill(weight_rows + args.first_output * cin * K, weight_rows + args.end_output * cin * K,
            T(0));
  // Passes over grad_output's row of equal numbers of taps (9 = 5 + 4, not
  // 8 + 1, whose single chain would wait on each FMA).
  const int64_t passes = (K + static_cast<int64_t>(kDotTaps) - 1) / static_cast<int64_t>(kDotTaps);
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t c = 0; c < cin; ++c) {
      const T* row = x.data + n * x.batch_stride + (args.group * cin + c) * x.channel_stride;
      for (int64_t r = 0; r < stride; ++r) {
        T* HWY_RESTRICT to = phases + (c * stride + r) * g.phase_length;
        // Positions q * stride + r - pad_left inside the input:
        // [inside_begin, inside_end), copied straight. The row runs past
        // the positions any output reads only under DotTaps' masked lanes.
        const int64_t inside_begin =
            std::min(g.phase_length, (std::max<int64_t>(0, g.pad_left - r) + stride - 1) / stride);
        const int64_t inside_end = std::clamp<int64_t>(
            (g.length + g.pad_left - r + stride - 1) / stride, inside_begin, g.phase_length);
        const auto padded = [&](int64_t q) {
          const int64_t from = core::padded_source_index(q * stride + r - g.pad_left, g.length,
                                                         g.pad_left, g.pad_right, g.padding_mode);
          to[q] = from < 0 ? T(0) : row[from * x.length_stride];
        };
        for (int64_t q = 0; q < inside_begin; ++q) padded(q);
        const T* HWY_RESTRICT from =
            row + (inside_begin * stride + r - g.pad_left) * x.length_stride;
        const int64_t step = stride * x.length_stride;
        if (step == 1) {
          std::memcpy(to + inside_begin, from,
                      static_cast<size_t>(inside_end - inside_begin) * sizeof(T));
        } else {
          for (int64_t q = inside_begin; q < inside_end; ++q)
            to[q] = from[(q - inside_begin) * step];
        }
        for (int64_t q = inside_end; q < g.phase_length; ++q) padded(q);
      }
    }
    for (int64_t o = args.first_output; o < args.end_output; ++o) {
      const T* row = dy.data + n * dy.batch_stride + (args.group * cout + o) * dy.channel_stride;
      if (dy.length_stride == 1) {
        std::memcpy(dy_row, row, static_cast<size_t>(g.out_length) * sizeof(T));
      } else {
        for (int64_t t = 0; t < g.out_length; ++t) dy_row[t] = row[t * dy.length_stride];
      }
      std::fill(dy_row + g.out_length, dy_row + g.padded_out_length, T(0));
      for (int64_t c = 0; c < cin; ++c) {
        T* const sums = weight_rows + (o * cin + c) * K;
        for (int64_t pass = 0; pass < passes; ++pass) {
          const int64_t k0 = pass * K / passes;
          const int64_t taps = (pass + 1) * K / passes - k0;
          const T* rows[kDotTaps];
          for (int64_t i = 0; i < taps; ++i) {
            const int64_t shift = (k0 + i) * g.dilation;
            rows[i] = phases + (c * stride + shift % stride) * g.phase_length + shift / stride;
          }
          kDots<T>[static_cast<size_t>(taps - 1)](dy_row, rows, g.out_length, sums + k0);
        }
      }
    }
  }
}

// Staged row r = input position base + r (padding applied) of `channels`
// channels from first_channel on, zeros up to `width`. NCL rows go through
// lanes x lanes transposes in registers where whole blocks of channels
// read inside the input, the rest element by element.
template <class T>
void StageInput(const Geometry& g, const TensorRef<const T>& x, int64_t n, int64_t first_channel,
                int64_t channels, int64_t width, int64_t pitch, int64_t base, int64_t rows,
                int64_t* HWY_RESTRICT sources, T* HWY_RESTRICT stage) {
  for (int64_t r = 0; r < rows; ++r) {
    sources[r] =
        core::padded_source_index(base + r, g.length, g.pad_left, g.pad_right, g.padding_mode);
  }
  const T* from = x.data + n * x.batch_stride + first_channel * x.channel_stride;
  for (int64_t r = 0; r < rows; ++r) {
    T* HWY_RESTRICT to = stage + r * pitch;
    if (sources[r] < 0) {
      std::fill(to, to + width, T(0));
      continue;
    }
    std::fill(to + channels, to + width, T(0));
    if (x.channel_stride == 1) {
      std::memcpy(to, from + sources[r] * x.length_stride,
                  static_cast<size_t>(channels) * sizeof(T));
    }
  }
  if (x.channel_stride == 1) return;
  const hn::ScalableTag<T> d;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  int64_t whole_channels = 0;
  int64_t inside_begin = rows, inside_end = rows;
  if (N > 1 && x.length_stride == 1) {
    whole_channels = channels / N * N;
    inside_begin = std::clamp<int64_t>(-base, 0, rows);
    inside_end = std::clamp<int64_t>(g.length - base, inside_begin, rows);
  }
  for (int64_t c = 0; c < whole_channels; c += N) {
    const T* HWY_RESTRICT block_rows = from + c * x.channel_stride + base;
    for (int64_t r = inside_begin; r < inside_end; r += N) {
      const int64_t valid = std::min(N, inside_end - r);
      hn::Vec<decltype(d)> block[N];
      if (valid == N) {
        for (int64_t i = 0; i < N; ++i)
          block[i] = hn::LoadU(d, block_rows + i * x.channel_stride + r);
      } else {
        // Never reads past the end of a row.
        HWY_ALIGN T part[N * N] = {};
        for (int64_t i = 0; i < N; ++i) {
          std::memcpy(part + i * N, block_rows + i * x.channel_stride + r,
                      static_cast<size_t>(valid) * sizeof(T));
        }
        for (int64_t i = 0; i < N; ++i) block[i] = hn::Load(d, part + i * N);
      }
      Transpose(d, block);
      for (int64_t i = 0; i < valid; ++i) hn::StoreU(block[i], d, stage + (r + i) * pitch + c);
    }
  }
  // Channel by channel, so that each reads along its row.
  for (int64_t c = 0; c < channels; ++c) {
    const T* HWY_RESTRICT row = from + c * x.channel_stride;
    T* HWY_RESTRICT to = stage + c;
    const auto copy = [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        if (sources[r] >= 0) to[r * pitch] = row[sources[r] * x.length_stride];
      }
    };
    if (c < whole_channels) {
      copy(0, inside_begin);
      copy(inside_end, rows);
    } else {
      copy(0, rows);
    }
  }
}

template <class T>
using TileFn = void (*)(const tile::TileArgs<T>&, bool);

// Vectors at offsets: with taps in vectors a step's start is not aligned.
template <class T, size_t... I>
constexpr std::array<TileFn<T>, sizeof...(I)> MakeTiles(std::index_sequence<I...>) {
  return {&tile::CallTile<tile::Broadcasts::offsets, I / kVectors + 1, I % kVectors + 1, T,
                          tile::VectorRows::offsets>...};
}
// kTiles<T>[(M - 1) * kVectors + (NV - 1)]: rows M = output channels, NV
// vectors of the group's vector dimension.
template <class T>
constexpr std::array<TileFn<T>, kRows * kVectors> kTiles =
    MakeTiles<T>(std::make_index_sequence<kRows * kVectors>());

template <class T>
void RunTask(const TaskArgs<T>& args, void* scratch) {
  const Geometry& g = *args.geometry;
  if (g.dot_products) return RunDotProducts(args, scratch);
  const int64_t lanes = Lanes<T>();
  const auto element = static_cast<int64_t>(sizeof(T));
  const int64_t first_vector = block_start(g, args.first_block);
  const int64_t vectors = block_start(g, args.end_block) - first_vector;
  const int64_t pitch = StagePitch(g, vectors, lanes, element);
  // The staged channels: the group's with taps in vectors, else the task's.
  const int64_t first_channel = g.taps_in_vectors ? 0 : first_vector * lanes;
  const int64_t channels =
      g.taps_in_vectors
          ? g.in_channels_per_group
          : std::min(g.in_channels_per_group, (first_vector + vectors) * lanes) - first_channel;
  const int64_t width = g.taps_in_vectors ? channels : vectors * lanes;
  // The staged row's element j (with taps in vectors) or channel column at
  // the block's first vector.
  const int64_t origin = g.taps_in_vectors ? 0 : first_vector * lanes;
  auto* bytes = static_cast<uint8_t*>(scratch);
  auto* stage = reinterpret_cast<T*>(bytes);
  bytes += StagedBytes(g, vectors, lanes, element);
  auto* sources = reinterpret_cast<int64_t*>(bytes);
  bytes += SourcesBytes(g);
  auto* offsets = reinterpret_cast<int64_t*>(bytes);
  int64_t* vector_offsets = offsets + g.chunk_steps;
  const TensorRef<const T>& dy = args.grad_output;
  for (int64_t t = 0; t < g.chunk_steps; ++t) {
    offsets[t] = t * dy.length_stride;
    vector_offsets[t] = t * g.stride * pitch;
  }

  static constexpr T kZeros[kVectors * hn::MaxLanes(hn::ScalableTag<T>())] = {};
  tile::TileArgs<T> a{};
  a.vector_offsets = vector_offsets;
  a.offsets = offsets;
  a.row_pitch = static_cast<size_t>(dy.channel_stride);
  a.bias = kZeros;
  a.out_pitch = static_cast<size_t>(g.partial_pitch);
  a.partial_pitch = a.out_pitch;
  const int64_t cout = g.out_channels_per_group;
  const int64_t pass_rows = cout * g.partial_pitch;
  T* const group_partial = args.partial + args.group * g.tap_passes * pass_rows;
  const int64_t rows = static_cast<int64_t>(kRows);
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t t0 = 0; t0 < g.out_length; t0 += g.chunk_steps) {
      const int64_t steps = std::min(g.chunk_steps, g.out_length - t0);
      StageInput(g, args.input, n, args.group * g.in_channels_per_group + first_channel, channels,
                 width, pitch, t0 * g.stride - g.pad_left, RowsRead(g, steps) + g.extra_rows,
                 sources, stage);
      const T* const dy_rows = dy.data + n * dy.batch_stride +
                               args.group * cout * dy.channel_stride + t0 * dy.length_stride;
      const bool accumulate = n > 0 || t0 > 0;
      a.steps = static_cast<size_t>(steps);
      // Blocks of vectors outer: a block's staged columns stay in cache for
      // all taps and output channels.
      for (int64_t b = args.first_block; b < args.end_block; ++b) {
        const int64_t column = block_start(g, b) * lanes - origin;
        const int64_t nv = block_start(g, b + 1) - block_start(g, b);
        for (int64_t pass = 0; pass < g.tap_passes; ++pass) {
          a.vectors = stage + pass * g.dilation * pitch + column;
          T* const pass_partial = group_partial + pass * pass_rows + origin + column;
          for (int64_t o = args.first_output; o < args.end_output; o += rows) {
            const int64_t m = std::min(rows, args.end_output - o);
            a.broadcasts = dy_rows + o * dy.channel_stride;
            a.partial = a.out = pass_partial + o * g.partial_pitch;
            kTiles<T>[static_cast<size_t>((m - 1) * static_cast<int64_t>(kVectors) + nv - 1)](
                a, accumulate);
          }
        }
      }
    }
  }
}

// Two chains of double vectors, float rows promoted half a vector at a
// time.
template <class T>
double RowSum(const T* HWY_RESTRICT row, int64_t length) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<T, decltype(dd)> d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(dd));
  const auto load = [&](int64_t t) {
    if constexpr (std::is_same_v<T, double>) {
      return hn::LoadU(dd, row + t);
    } else {
      return hn::PromoteTo(dd, hn::LoadU(d, row + t));
    }
  };
  auto first = hn::Zero(dd), second = hn::Zero(dd);
  int64_t t = 0;
  for (; t + 2 * lanes <= length; t += 2 * lanes) {
    first = hn::Add(first, load(t));
    second = hn::Add(second, load(t + lanes));
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(first, second)));
  for (; t < length; ++t) sum += static_cast<double>(row[t]);
  return sum;
}

double RowSumF32(const float* row, int64_t length) { return RowSum(row, length); }
double RowSumF64(const double* row, int64_t length) { return RowSum(row, length); }

void RunTaskF32(const TaskArgs<float>& args, void* scratch) { RunTask(args, scratch); }
void RunTaskF64(const TaskArgs<double>& args, void* scratch) { RunTask(args, scratch); }

const Target* GetTarget() {
  static const Target target{static_cast<int>(Lanes<float>()),
                             static_cast<int>(Lanes<double>()),
                             static_cast<int>(kRows),
                             static_cast<int>(kVectors),
                             &ScratchBytes,
                             &RunTaskF32,
                             &RunTaskF64,
                             &RowSumF32,
                             &RowSumF64};
  return &target;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::weight_gradient
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::weight_gradient {

HWY_EXPORT(GetTarget);

const Target& chosen_target() {
  core::chosen_target();
  return *HWY_DYNAMIC_DISPATCH(GetTarget)();
}

}  // namespace conv1d::kernels::weight_gradient
#endif  // HWY_ONCE
