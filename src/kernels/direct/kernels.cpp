// Per-ISA tile code of the direct algorithm, compiled once per Highway target
// (hwy/foreach_target.h re-includes this file). Serial: the executor in
// algorithm.cpp owns the task grid and the threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/direct/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/cache_control.h>
#include <hwy/highway.h>
// After hwy/highway.h: per-target code.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "core/padding.hpp"
#include "kernels/common/phases-inl.h"
#include "kernels/common/registers-inl.h"
#include "kernels/common/transpose-inl.h"
#include "kernels/direct/direct.hpp"
#include "kernels/gemm/tile-inl.h"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::direct {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace tile = ::conv1d::kernels::gemm::HWY_NAMESPACE;
using ::conv1d::kernels::common::HWY_NAMESPACE::CopyRowsPhasesAnyStride;
using ::conv1d::kernels::common::HWY_NAMESPACE::KeepInRegister;
using ::conv1d::kernels::common::HWY_NAMESPACE::kMaxVectorStride;
using ::conv1d::kernels::common::HWY_NAMESPACE::Transpose;
using tile::kRows;
using tile::kVectors;
using tile::TileArgs;

// length_vectors: rows = output channels, broadcasts = packed weights;
// channel_vectors: rows = positions, broadcasts = the staged input at
// offsets[step], vectors = the weight panel.
template <Kind kKind>
constexpr tile::Broadcasts kBroadcasts =
    kKind == Kind::length_vectors ? tile::Broadcasts::rows_per_step_streamed
                                  : tile::Broadcasts::offsets;
template <Kind kKind>
constexpr tile::VectorRows kVectorRows =
    kKind == Kind::length_vectors ? tile::VectorRows::offsets : tile::VectorRows::pitched;

// Runs a tile whose rows hold `valid` (< NV * Lanes) outputs on a full-width
// copy, so the kernel stays branch-free and never touches memory past
// `valid` (another task's outputs, or the end of the tensor).
template <Kind kKind, size_t M, size_t NV, class T>
void AnyTile(const TileArgs<T>& a, bool accumulate, size_t valid) {
  const hn::ScalableTag<T> d;
  const size_t width = NV * hn::Lanes(d);
  if (valid == width)
    return tile::CallTile<kBroadcasts<kKind>, M, NV, T, kVectorRows<kKind>>(a, accumulate);
  HWY_ALIGN T buffer[M * NV * hn::MaxLanes(d)];
  TileArgs<T> copy = a;
  copy.out = buffer;
  copy.out_pitch = width;
  copy.partial = buffer;
  copy.partial_pitch = width;
  if (accumulate) {
    for (size_t m = 0; m < M; ++m) {
      std::memcpy(buffer + m * width, a.partial + m * a.partial_pitch, valid * sizeof(T));
    }
  }
  tile::CallTile<kBroadcasts<kKind>, M, NV, T, kVectorRows<kKind>>(copy, accumulate);
  for (size_t m = 0; m < M; ++m) {
    std::memcpy(a.out + m * a.out_pitch, buffer + m * width, valid * sizeof(T));
  }
}

template <class T>
using TileFn = void (*)(const TileArgs<T>&, bool, size_t);

// kTiles<length_vectors, T>[(M - 1) * kVectors + (NV - 1)]: every tail
// shape, so partial blocks of channels or positions do no wasted work.
template <Kind kKind, class T, size_t... I>
constexpr std::array<TileFn<T>, sizeof...(I)> MakeTiles(std::index_sequence<I...>) {
  return {&AnyTile<kKind, I / kVectors + 1, I % kVectors + 1, T>...};
}
template <Kind kKind, class T>
constexpr std::array<TileFn<T>, kRows * kVectors> kTiles =
    MakeTiles<kKind, T>(std::make_index_sequence<kRows * kVectors>());

// Channel vectors keep kRows * kVectors accumulators whatever the block's
// vectors: a block of NV vectors of output channels runs kAccumulators / NV
// positions (on AVX-512 24 x 1, 12 x 2, 8 x 3, 6 x 4), so that layers with
// 16 to 48 output channels per group keep both FMA pipes busy (a 6 x 1 tile
// has 6 FMA chains for 8 in flight and loads 7 operands per 6 FMAs; 16 ->
// 16 channels, K = 9, stride 5: 1.3x faster as 24 x 1). With one vector
// each FMA still loads its own broadcast: ~81% of the FMA peak (16 -> 16,
// K = 64), against ~95% for length vectors, which the cost model counts.
constexpr size_t kAccumulators = kRows * kVectors;
constexpr size_t ChannelTilePositions(size_t vectors) { return kAccumulators / vectors; }
// kChannelTiles<T>[(NV - 1) * kAccumulators + (M - 1)] for M <=
// ChannelTilePositions(NV); the other entries are never called.
template <class T, size_t... I>
constexpr std::array<TileFn<T>, sizeof...(I)> MakeChannelTiles(std::index_sequence<I...>) {
  return {&AnyTile<Kind::channel_vectors,
                   std::min(I % kAccumulators + 1, ChannelTilePositions(I / kAccumulators + 1)),
                   I / kAccumulators + 1, T>...};
}
template <class T>
constexpr std::array<TileFn<T>, kVectors * kAccumulators> kChannelTiles =
    MakeChannelTiles<T>(std::make_index_sequence<kVectors * kAccumulators>());

// One channel's padded span near the edges, to be de-interleaved from:
// span[j] = xpad[base + j] for j < reach, index[j] the source index of
// padded position base + j. The part inside the input is one memcpy;
// padding of the other modes goes through the source index (-1: zero);
// zero padding, and the positions past the padded input (read only by
// discarded tail outputs), are zero fills. A short row's last tile reaches
// far past its end: element by element, that part took half of a small
// strided layer's time (16 -> 16 channels, K = 3, stride 3, 1000 samples).
template <class T>
void PaddedSpan(const Geometry& g, const T* HWY_RESTRICT row, int64_t base, int64_t reach,
                const int64_t* HWY_RESTRICT index, T* HWY_RESTRICT span) {
  const int64_t inside_begin = std::clamp<int64_t>(-base, 0, reach);
  const int64_t inside_end = std::clamp<int64_t>(g.length - base, inside_begin, reach);
  const bool zeros = g.padding_mode == PaddingMode::zeros;
  const int64_t padded_end =
      zeros ? inside_end : std::clamp<int64_t>(g.length + g.pad_right - base, inside_end, reach);
  const auto padded = [&](int64_t j) { return index[j] < 0 ? T(0) : row[index[j]]; };
  if (zeros) {
    std::fill(span, span + inside_begin, T(0));
  } else {
    for (int64_t j = 0; j < inside_begin; ++j) span[j] = padded(j);
  }
  std::memcpy(span + inside_begin, row + (base + inside_begin),
              static_cast<size_t>(inside_end - inside_begin) * sizeof(T));
  for (int64_t j = inside_end; j < padded_end; ++j) span[j] = padded(j);
  std::fill(span + padded_end, span + reach, T(0));
}

// Stages the chunk_channels input channels from `first_channel` (relative
// to the group's first, `first_in`) that a tile at padded position `base`
// reads, as described in direct.hpp: with taps sharing rows, channel c's
// row c*stride + p holds xpad[base + p + j*stride], j < row_length; with a
// row per tap, row c*K + k holds xpad[base + k*dilation + i*stride],
// i < tile. An input contiguous along the length is de-interleaved in
// place, or near the edges from each channel's padded span (PaddedSpan);
// otherwise every element goes through the source index of its padded
// position (positions past the padded input are read only by discarded
// tail outputs and become zeros).
template <class T>
void StageChannels(const Geometry& g, const TensorRef<const T>& input, int64_t n, int64_t first_in,
                   int64_t first_channel, int64_t base, T* HWY_RESTRICT stage,
                   int64_t* HWY_RESTRICT index, T* HWY_RESTRICT span) {
  const int64_t channels = std::min(g.chunk_channels, g.in_channels_per_group - first_channel);
  const T* src =
      input.data + n * input.batch_stride + (first_in + first_channel) * input.channel_stride;
  const int64_t rows = g.rows_per_channel;
  const int64_t pitch = g.row_pitch;
  const bool inside = base >= 0 && base + g.reach <= g.length;
  const auto fill_index = [&] {
    for (int64_t j = 0; j < g.reach; ++j) {
      const int64_t source =
          core::padded_source_index(base + j, g.length, g.pad_left, g.pad_right, g.padding_mode);
      index[j] = source < 0 ? -1 : source * input.length_stride;
    }
  };
  if (input.length_stride == 1) {
    // PaddedSpan reads the index only for the other padding modes.
    if (!inside && g.padding_mode != PaddingMode::zeros) fill_index();
    // Whole vectors: reach covers them, and the tail stays vectorised.
    const auto lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
    const int64_t vectors = (g.row_length + lanes - 1) / lanes;
    const int64_t to_pitch = rows * pitch;
    // Padded positions one vector of a phase row spans, read whole.
    const int64_t block = lanes * g.stride;
    // Tap k's row is phase k where the taps are fewer than the stride: one
    // de-interleave fills them all (768 -> 32 channels, K = 3, stride 4:
    // three took 40% of the layer's time). Otherwise, with a row per tap,
    // one copy per tap.
    const bool phase_per_tap = !g.taps_share_rows && g.dilation == 1 && g.kernel_size <= g.stride;
    const int64_t phases = g.taps_share_rows ? g.stride : phase_per_tap ? g.kernel_size : 1;
    const int64_t copies = g.taps_share_rows || phase_per_tap ? 1 : g.kernel_size;
    const int64_t pitch_of_spans = span_pitch(g, sizeof(T));
    for (int64_t copy = 0; copy < copies; ++copy) {
      const int64_t offset = copy * g.dilation;
      const int64_t start = base + offset;
      // Vectors [v0, v1) of `count_rows` channels' rows from `from`.
      const auto copy_rows = [&](const T* from, int64_t from_pitch, int64_t count_rows, int64_t v0,
                                 int64_t v1, T* to) {
        CopyRowsPhasesAnyStride(from, from_pitch, count_rows, g.stride, phases, (v1 - v0) * lanes,
                                pitch, to + copy * pitch + v0 * lanes, to_pitch);
      };
      // Tiles inside the row (all but its first and last few) skip the
      // edges' arithmetic.
      if (inside) {
        copy_rows(src + start, input.channel_stride, channels, 0, vectors, stage);
        continue;
      }
      // Vectors [inside_begin, inside_end) read only inside the input: one
      // copy for all channels, straight from it. Those past either edge go
      // through the channels' padded spans, kSpanRows at a time (one call
      // per channel took 60% of 512 -> 8 channels, K = 3, stride 5, rows of
      // 256, all of whose tiles reach past the row's end).
      const int64_t inside_begin = start >= 0 ? 0 : std::min(vectors, (-start + block - 1) / block);
      const int64_t inside_end = std::clamp<int64_t>(
          g.length >= start ? (g.length - start) / block : 0, inside_begin, vectors);
      if (inside_end > inside_begin) {
        copy_rows(src + start + inside_begin * block, input.channel_stride, channels, inside_begin,
                  inside_end, stage);
      }
      for (const auto& [v0, v1] : {std::pair<int64_t, int64_t>{0, inside_begin},
                                   std::pair<int64_t, int64_t>{inside_end, vectors}}) {
        if (v0 == v1) continue;
        for (int64_t c0 = 0; c0 < channels; c0 += kSpanRows) {
          const int64_t count_rows = std::min(kSpanRows, channels - c0);
          for (int64_t c = 0; c < count_rows; ++c) {
            PaddedSpan(g, src + (c0 + c) * input.channel_stride, start + v0 * block,
                       (v1 - v0) * block, index + offset + v0 * block, span + c * pitch_of_spans);
          }
          copy_rows(span, pitch_of_spans, count_rows, v0, v1, stage + c0 * to_pitch);
        }
      }
    }
    return;
  }
  if (g.taps_share_rows && input.channel_stride == 1 && inside) {
    // Channels-last, away from the edges: each position's channels are
    // contiguous, read in order and spread over the channels' rows (layers
    // with narrow groups 1.1-1.4x faster than through the source index).
    for (int64_t i = 0; i < g.row_length; ++i) {
      for (int64_t p = 0; p < g.stride; ++p) {
        const T* HWY_RESTRICT from = src + (base + p + i * g.stride) * input.length_stride;
        T* HWY_RESTRICT to = stage + p * pitch + i;
        for (int64_t c = 0; c < channels; ++c) to[c * rows * pitch] = from[c];
      }
    }
    return;
  }
  fill_index();
  // Element i of row `row` of each channel is padded position
  // first + i * stride of the tile's span.
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t first = g.taps_share_rows ? row : row * g.dilation;
    for (int64_t c = 0; c < channels; ++c) {
      const T* HWY_RESTRICT from = src + c * input.channel_stride;
      T* HWY_RESTRICT to = stage + (c * rows + row) * pitch;
      for (int64_t i = 0; i < g.row_length; ++i) {
        const int64_t at = index[first + i * g.stride];
        to[i] = at < 0 ? T(0) : from[at];
      }
    }
  }
}

// Output tile [channel][position] (rows `pitch` apart) -> an output strided
// along the length, in 16 x 16 blocks so that both sides stay in L1.
template <class T>
void ScatterByChannel(const T* HWY_RESTRICT tile, int64_t channels, int64_t positions,
                      int64_t pitch, T* HWY_RESTRICT dst, int64_t channel_stride,
                      int64_t length_stride) {
  for (int64_t c0 = 0; c0 < channels; c0 += 16) {
    const int64_t c1 = std::min(channels, c0 + 16);
    for (int64_t l = 0; l < positions; ++l) {
      T* column = dst + l * length_stride;
      for (int64_t c = c0; c < c1; ++c) column[c * channel_stride] = tile[c * pitch + l];
    }
  }
}

// Prefetches into L2 the input rows that the next staging will read, spread
// over the tile calls that run before it: the rows are many channels a
// large stride apart, too many streams for the hardware prefetchers (2-4%
// faster on the pointwise, ECG and separable pointwise layers of the
// suite, whose inputs come from L3; up to 1.18x on inputs from memory).
// Only where the plan sets Geometry::prefetch_stage (see algorithm.cpp),
// and only the positions staging reads: with a row per tap, one piece per
// tap (a dilation of 10^6 would otherwise prefetch megabytes of unread
// gap).
template <class T>
class StagePrefetch {
 public:
  void Aim(const Geometry& g, const TensorRef<const T>& input, int64_t n, int64_t first_in,
           int64_t first_channel, int64_t base, int64_t parts) {
    Clear();
    if (!g.prefetch_stage || input.length_stride != 1) return;
    length_ = g.length;
    first_ =
        input.data + n * input.batch_stride + (first_in + first_channel) * input.channel_stride;
    pitch_ = input.channel_stride;
    base_ = base;
    // Taps a tile apart or less read one span: prefetched once, not per tap.
    const int64_t tap_span = g.stride * g.tile_positions;
    const bool one_piece = g.taps_share_rows || g.dilation <= tap_span;
    pieces_ = one_piece ? 1 : g.kernel_size;
    piece_length_ = one_piece ? g.reach : tap_span;
    piece_step_ = g.dilation;
    rows_ = std::min(g.chunk_channels, g.in_channels_per_group - first_channel);
    rows_per_part_ = (rows_ + parts - 1) / parts;
  }

  void Clear() {
    rows_ = 0;
    next_ = 0;
  }

  void Part() {
    const int64_t stop = std::min(rows_, next_ + rows_per_part_);
    for (; next_ < stop; ++next_) {
      const T* row = first_ + next_ * pitch_;
      for (int64_t piece = 0; piece < pieces_; ++piece) {
        const int64_t begin = std::max<int64_t>(base_ + piece * piece_step_, 0);
        const int64_t end = std::min(base_ + piece * piece_step_ + piece_length_, length_);
        if (end <= begin) continue;
        const auto at = reinterpret_cast<uintptr_t>(row + begin);
        const auto bytes = (end - begin) * static_cast<int64_t>(sizeof(T));
        for (int64_t b = 0; b < bytes; b += 64) tile::PrefetchLine<false>(at + b);
        tile::PrefetchLine<false>(at + bytes - 1);
      }
    }
  }

 private:
  const T* first_ = nullptr;
  int64_t length_ = 0;
  int64_t pitch_ = 0;
  int64_t base_ = 0;
  int64_t pieces_ = 1;
  int64_t piece_length_ = 0;
  int64_t piece_step_ = 0;
  int64_t rows_ = 0;
  int64_t rows_per_part_ = 0;
  int64_t next_ = 0;
};

// The taps a tile of `count` outputs from padded position `base` runs: all,
// or with skip_padding_taps those that read inside the input.
template <class T>
TapRange TapsToRun(const Args<T>& args, int64_t base, int64_t count) {
  const Geometry& g = *args.geometry;
  return args.skip_padding_taps ? taps_inside(g, base, count) : TapRange{0, g.kernel_size - 1};
}

// Length vectors: a run of a tile's taps, and the tile's vectors that run
// them.
struct TapSegment {
  int64_t first_tap = 0;
  int64_t last_tap = 0;
  int64_t first_vector = 0;
  int64_t vectors = 0;
};
constexpr size_t kMaxTapSegments = 2 * kVectors;
// A segment of fewer vectors than its neighbour runs as a tile call of its
// own where that saves at least this many vector-steps (each ~3 cycles of
// a 6-row tile's FMAs) over running it with the neighbour's vectors: a call
// loads and stores its accumulators (~60 cycles), and a tile of fewer
// vectors keeps fewer FMAs in flight.
constexpr int64_t kMinSavedVectorSteps = 64;

// The taps a length-vector tile of `valid` outputs from padded position
// `base` runs, over `channels` input channels a tap, as segments in tap
// order. A tap that only some of the tile's vectors read inside the input
// runs on those vectors alone (contiguous: the first and last tap inside
// fall from one vector to the next), where zero padding lets tiles skip
// taps: a wide padding with dilation (512 -> 96 channels, K = 64, dilation
// 4, 126 zeros each side of 256 samples) has a tile's vectors read inside
// from taps 16, 20, 24 and 28. Otherwise one segment of all the vectors.
// Returns the segment count (at least one).
template <class T>
size_t TapSegments(const Args<T>& args, int64_t base, int64_t valid, int64_t lanes, int64_t vectors,
                   int64_t channels, bool split,
                   std::array<TapSegment, kMaxTapSegments>& segments) {
  const Geometry& g = *args.geometry;
  // Tiles that read inside the input at every tap: all but a few at the
  // row ends.
  const bool inside =
      base >= 0 && base + (valid - 1) * g.stride + (g.kernel_size - 1) * g.dilation < g.length;
  if (!split || !args.skip_padding_taps || vectors == 1 || inside) {
    const TapRange taps = TapsToRun(args, base, valid);
    segments[0] = {taps.first, taps.last, 0, vectors};
    return 1;
  }
  // Vector v reads inside from tap ranges[v].first to ranges[v].last; both
  // fall (or stay) from one vector to the next, so the vectors that read
  // tap k are those from low (the first whose range starts by k) to high
  // (the last whose range reaches k).
  std::array<TapRange, kVectors> ranges;
  for (int64_t v = 0; v < vectors; ++v) {
    ranges[static_cast<size_t>(v)] =
        taps_inside(g, base + v * lanes * g.stride, std::min(lanes, valid - v * lanes));
  }
  const auto range = [&](int64_t v) -> const TapRange& { return ranges[static_cast<size_t>(v)]; };
  const int64_t end = range(0).last + 1;
  int64_t low = vectors - 1;
  int64_t high = vectors - 1;
  size_t count = 0;
  for (int64_t first_tap = range(vectors - 1).first; first_tap < end;) {
    while (low > 0 && range(low - 1).first <= first_tap) --low;
    while (high >= 0 && range(high).last < first_tap) --high;
    // Up to the next vector's first tap, or past the last vector's last.
    int64_t end_tap = end;
    if (low > 0) end_tap = std::min(end_tap, range(low - 1).first);
    if (high >= 0) end_tap = std::min(end_tap, range(high).last + 1);
    const int64_t from = first_tap;
    first_tap = end_tap;
    if (high < low) continue;  // between the vectors' ranges: zeros only
    TapSegment next{from, end_tap - 1, low, high - low + 1};
    if (count > 0) {
      TapSegment& last = segments[count - 1];
      const int64_t merged_first = std::min(last.first_vector, next.first_vector);
      const int64_t merged_vectors =
          std::max(last.first_vector + last.vectors, next.first_vector + next.vectors) -
          merged_first;
      const int64_t saved =
          ((last.last_tap - last.first_tap + 1) * (merged_vectors - last.vectors) +
           (next.last_tap - next.first_tap + 1) * (merged_vectors - next.vectors)) *
          channels;
      if (saved < kMinSavedVectorSteps) {
        last = {last.first_tap, next.last_tap, merged_first, merged_vectors};
        continue;
      }
    }
    segments[count++] = next;
  }
  return count;
}

// Runs a tile of m rows at `valid` positions as its segments, in tap order
// (each output's sum in the same order as one tile of all its taps). The
// first chunk's vectors that its first segment leaves out start from their
// bias, stored before later segments add to it.
template <class T>
HWY_NOINLINE void RunTileSegments(TileArgs<T>& a, const TapSegment* segments, size_t count,
                                  int64_t m, int64_t channels, int64_t valid, const T* vectors_from,
                                  const int64_t* offsets_from, const T* panel, T* partial, T* out,
                                  bool accumulate) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t rows = static_cast<int64_t>(kRows);
  if (!accumulate) {
    const int64_t begin = segments[0].first_vector * lanes;
    const int64_t end = std::min(valid, (segments[0].first_vector + segments[0].vectors) * lanes);
    for (int64_t row = 0; row < m; ++row) {
      T* const at = out + row * static_cast<int64_t>(a.out_pitch);
      std::fill(at, at + begin, a.bias[row]);
      std::fill(at + end, at + valid, a.bias[row]);
    }
  }
  for (size_t s = 0; s < count; ++s) {
    const TapSegment& segment = segments[s];
    const int64_t first_step = segment.first_tap * channels;
    const int64_t offset = segment.first_vector * lanes;
    a.steps = static_cast<size_t>((segment.last_tap + 1) * channels - first_step);
    a.broadcasts = panel + first_step * rows;
    a.vectors = vectors_from + offset;
    a.vector_offsets = offsets_from + first_step;
    a.partial = partial + offset;
    a.out = out + offset;
    const int64_t segment_valid =
        std::min(valid, (segment.first_vector + segment.vectors) * lanes) - offset;
    kTiles<Kind::length_vectors, T>[static_cast<size_t>((m - 1) * static_cast<int64_t>(kVectors) +
                                                        segment.vectors - 1)](
        a, accumulate || s > 0, static_cast<size_t>(segment_valid));
  }
}

// Output channel blocks per task up to which length-vector tiles read
// stride-1 input in place (see RunLengthVectors).
constexpr int64_t kInPlaceMaxTileCalls = 8;

template <class T>
void RunLengthVectors(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t tile_positions = g.tile_positions;
  const int64_t rows = static_cast<int64_t>(kRows);

  auto* bytes = static_cast<uint8_t*>(scratch);
  T* stage = reinterpret_cast<T*>(bytes);
  bytes += stage_bytes(g, sizeof(T));
  auto* index = reinterpret_cast<int64_t*>(bytes);
  bytes += index_bytes(g);
  T* span = reinterpret_cast<T*>(bytes);
  bytes += span_bytes(g, sizeof(T));
  auto* in_place_offsets = reinterpret_cast<int64_t*>(bytes);
  bytes += in_place_offsets_bytes(g);
  T* tile = reinterpret_cast<T*>(bytes);

  const TensorRef<T>& output = args.output;
  const int64_t first_out = task.group * g.out_channels_per_group + task.co_begin;
  const int64_t first_in = task.group * g.in_channels_per_group;
  const bool direct = in_place(g, output);
  const int64_t positions = task.l_end - task.l_begin;
  const int64_t tile_row_pitch = tile_pitch(g, positions, task.co_end - task.co_begin, sizeof(T));
  const int64_t out_pitch = direct ? output.channel_stride : tile_row_pitch;
  T* const output_base =
      output.data + task.n * output.batch_stride + first_out * output.channel_stride + task.l_begin;
  T* out_base = direct ? output_base : tile;
  // Partial sums go through the tile (see in_place), but the last chunk's
  // tiles add to it and store straight to a contiguous output: no loads
  // follow those stores, and no copy of the whole tile at the end.
  const bool last_chunk_to_output = !direct && output.length_stride == 1;
  const T* bias = args.bias + task.group * g.co_blocks_per_group * rows;
  const int64_t tile_calls = (task.co_end - task.co_begin + rows - 1) / rows;
  const auto base_of = [&](int64_t l0) { return l0 * g.stride - g.pad_left; };
  // At stride 1, tiles away from the edges may read the input in place
  // instead of a staged copy. That pays where few output channels share
  // each staged element (16-48 channels: 1.1-1.45x); with more, the copy's
  // dense L1 footprint wins, and so it does when channel rows a multiple of
  // 2 KiB apart fall into the same L1 sets (0.88x).
  const bool read_in_place =
      g.stride == 1 && args.input.length_stride == 1 && tile_calls <= kInPlaceMaxTileCalls &&
      args.input.channel_stride * static_cast<int64_t>(sizeof(T)) % 2048 != 0;

  TileArgs<T> a{};
  a.out_pitch = static_cast<size_t>(out_pitch);
  a.partial_pitch = a.out_pitch;
  StagePrefetch<T> prefetch;
  for (int64_t r0 = 0; r0 < g.reduction; r0 += g.chunk) {
    const int64_t steps = std::min(g.chunk, g.reduction - r0);
    const int64_t first_channel = r0 / g.kernel_size;
    const int64_t channels = steps / g.kernel_size;
    const int64_t* const offsets =
        channels == g.chunk_channels ? g.vector_offsets : g.last_vector_offsets;
    const bool accumulate = r0 > 0;
    const bool to_output = last_chunk_to_output && r0 + steps == g.reduction;
    // A tile's vectors start (and stop) reading inside the input up to
    // `spread` taps apart: splitting saves at most that many taps of this
    // chunk's channels, and looking for segments costs a few divisions per
    // tile (a first form that looked on every tile ran a layer of one
    // channel a group, K = 31, dilation 16, 1.4x slower).
    const int64_t spread = std::min<int64_t>(
        g.kernel_size, (static_cast<int64_t>(kVectors) - 1) * lanes * g.stride / g.dilation + 1);
    const bool split_taps = !to_output && channels * spread >= kMinSavedVectorSteps;
    const T* const first_row = args.input.data + task.n * args.input.batch_stride +
                               (first_in + first_channel) * args.input.channel_stride;
    if (read_in_place) {
      // Per task and chunk, as a running sum: on layers of one channel a
      // group that is once per few tile calls, and a multiply per offset
      // took up to 8% of such a layer's time (96 -> 384 channels in 96
      // groups, K = 64).
      int64_t* HWY_RESTRICT to = in_place_offsets;
      for (int64_t k = 0; k < g.kernel_size; ++k) {
        int64_t at = k * g.dilation;
        for (int64_t ci = 0; ci < channels; ++ci, at += args.input.channel_stride) *to++ = at;
      }
    }
    a.out_pitch = static_cast<size_t>(to_output ? output.channel_stride : out_pitch);
    for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += tile_positions) {
      const int64_t valid = std::min(tile_positions, task.l_end - l0);
      const int64_t vectors = (valid + lanes - 1) / lanes;
      // Steps k*channels + ci of the taps that read inside the input. The
      // last chunk's tiles that store to the output run one segment (see
      // split_taps): a second would read the partial sums the first stored
      // elsewhere.
      const int64_t base = base_of(l0);
      std::array<TapSegment, kMaxTapSegments> segments;
      const size_t segment_count =
          TapSegments(args, base, valid, lanes, vectors, channels, split_taps, segments);
      const T* vectors_from = stage;
      const int64_t* offsets_from = offsets;
      if (read_in_place && base >= 0 && base + g.reach <= g.length) {
        vectors_from = first_row + base;
        offsets_from = in_place_offsets;
      } else {
        StageChannels(g, args.input, task.n, first_in, first_channel, base, stage, index, span);
      }
      // One segment (every tile but a few at the ends of rows with wide
      // zero padding) is one plain tile call: going through the segment
      // loop cost up to 1.2x on tiles of a few steps (2 -> 384 channels,
      // K = 3).
      const TapSegment& first_segment = segments[0];
      const int64_t skipped = first_segment.first_tap * channels;
      a.steps = static_cast<size_t>((first_segment.last_tap + 1) * channels - skipped);
      a.vectors = vectors_from;
      a.vector_offsets = offsets_from + skipped;
      // Next: the following tile of this chunk, or the task's first tile of
      // the next chunk.
      if (l0 + tile_positions < task.l_end) {
        prefetch.Aim(g, args.input, task.n, first_in, first_channel, base_of(l0 + tile_positions),
                     tile_calls);
      } else if (r0 + g.chunk < g.reduction) {
        prefetch.Aim(g, args.input, task.n, first_in, first_channel + g.chunk_channels,
                     base_of(task.l_begin), tile_calls);
      } else {
        prefetch.Clear();
      }
      // This chunk's weights for all blocks of the group are contiguous.
      const T* panel = args.weight + (task.group * g.co_blocks_per_group * g.reduction +
                                      g.co_blocks_per_group * r0 + task.co_begin / rows * steps) *
                                         rows;
      for (int64_t co = task.co_begin; co < task.co_end; co += rows) {
        const int64_t m = std::min(rows, task.co_end - co);
        prefetch.Part();
        a.bias = bias + co;
        T* const partial = out_base + (co - task.co_begin) * out_pitch + (l0 - task.l_begin);
        T* const out = to_output ? output_base + (co - task.co_begin) * output.channel_stride +
                                       (l0 - task.l_begin)
                                 : partial;
        if (segment_count == 1) {
          a.broadcasts = panel + skipped * rows;
          a.partial = partial;
          a.out = out;
          kTiles<Kind::length_vectors, T>[static_cast<size_t>(
              (m - 1) * static_cast<int64_t>(kVectors) + vectors - 1)](a, accumulate,
                                                                       static_cast<size_t>(valid));
        } else {
          RunTileSegments(a, segments.data(), segment_count, m, channels, valid, vectors_from,
                          offsets_from, panel, partial, out, accumulate);
        }
        panel += steps * rows;
      }
    }
  }
  if (direct || last_chunk_to_output) return;
  ScatterByChannel(tile, task.co_end - task.co_begin, positions, out_pitch,
                   output.data + task.n * output.batch_stride + first_out * output.channel_stride +
                       task.l_begin * output.length_stride,
                   output.channel_stride, output.length_stride);
}

// Copies the padded input positions the task reads, [position][channel]
// with position_pitch elements per position. NCL rows are transposed in
// blocks of lanes x lanes in registers (element by element they cost ~0.6
// ns each, as much as the layer's FMAs on a strided layer with few
// outputs); the padding and the leftover channels go element by element.
template <class T>
void StagePositions(const Geometry& g, const TensorRef<const T>& input, int64_t n, int64_t first_in,
                    int64_t base, int64_t positions, T* HWY_RESTRICT stage) {
  const T* src = input.data + n * input.batch_stride + first_in * input.channel_stride;
  const int64_t channels = g.in_channels_per_group;
  const auto stage_position = [&](int64_t p, int64_t c_begin) {
    const int64_t source =
        core::padded_source_index(base + p, g.length, g.pad_left, g.pad_right, g.padding_mode);
    T* HWY_RESTRICT to = stage + p * g.position_pitch;
    if (source < 0) {
      std::fill(to + c_begin, to + channels, T(0));
    } else if (input.channel_stride == 1) {
      std::memcpy(to + c_begin, src + source * input.length_stride + c_begin,
                  static_cast<size_t>(channels - c_begin) * sizeof(T));
    } else {
      const T* HWY_RESTRICT from = src + source * input.length_stride;
      for (int64_t c = c_begin; c < channels; ++c) to[c] = from[c * input.channel_stride];
    }
  };
  const hn::ScalableTag<T> d;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  int64_t inside_begin = positions, inside_end = positions;
  if (N > 1 && input.length_stride == 1 && input.channel_stride != 1 && channels >= N) {
    inside_begin = std::clamp<int64_t>(-base, 0, positions);
    inside_end = std::clamp<int64_t>(g.length - base, inside_begin, positions);
  }
  for (int64_t p = 0; p < inside_begin; ++p) stage_position(p, 0);
  const int64_t whole_channels = channels / N * N;
  // Channels outer: N input rows stream in order (all channels at once
  // would be hundreds of streams, too many for the hardware prefetchers:
  // 2x slower from L3). The last, partial block of positions goes through
  // a zero-filled copy (never reading past the input's rows).
  for (int64_t c = 0; c < whole_channels; c += N) {
    const T* HWY_RESTRICT rows = src + c * input.channel_stride + base;
    for (int64_t p = inside_begin; p < inside_end; p += N) {
      const int64_t valid = std::min(N, inside_end - p);
      hn::Vec<decltype(d)> block[N];
      if (valid == N) {
        for (int64_t i = 0; i < N; ++i)
          block[i] = hn::LoadU(d, rows + i * input.channel_stride + p);
      } else {
        HWY_ALIGN T part[N * N] = {};
        for (int64_t i = 0; i < N; ++i) {
          std::memcpy(part + i * N, rows + i * input.channel_stride + p,
                      static_cast<size_t>(valid) * sizeof(T));
        }
        for (int64_t i = 0; i < N; ++i) block[i] = hn::Load(d, part + i * N);
      }
      Transpose(d, block);
      for (int64_t i = 0; i < valid; ++i) {
        hn::StoreU(block[i], d, stage + (p + i) * g.position_pitch + c);
      }
    }
  }
  if (whole_channels < channels) {
    for (int64_t p = inside_begin; p < inside_end; ++p) stage_position(p, whole_channels);
  }
  for (int64_t p = inside_end; p < positions; ++p) stage_position(p, 0);
  // reduction_vectors: the channels past the last up to a whole vector are
  // zeros (their weights are zeros too, and 0 x NaN would not be).
  if (g.kind == Kind::reduction_vectors && g.vector_channels > channels) {
    for (int64_t q = 0; q < positions; ++q) {
      std::fill(stage + q * g.position_pitch + channels,
                stage + q * g.position_pitch + g.vector_channels, T(0));
    }
  }
}

// Output tile [position][channel] (rows `channels` apart) -> an output not
// contiguous along the channels; NCL rows in blocks of lanes x lanes
// transposed in registers, the rest element by element.
template <class T>
void StoreByPosition(const T* HWY_RESTRICT tile, int64_t positions, int64_t channels,
                     T* HWY_RESTRICT dst, int64_t channel_stride, int64_t length_stride) {
  const hn::ScalableTag<T> d;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(d));
  int64_t whole_positions = 0, whole_channels = 0;
  if (N > 1 && length_stride == 1) {
    whole_positions = positions / N * N;
    whole_channels = channels / N * N;
  }
  for (int64_t l = 0; l < whole_positions; l += N) {
    for (int64_t c = 0; c < whole_channels; c += N) {
      hn::Vec<decltype(d)> block[N];
      for (int64_t i = 0; i < N; ++i) block[i] = hn::LoadU(d, tile + (l + i) * channels + c);
      Transpose(d, block);
      for (int64_t i = 0; i < N; ++i) hn::StoreU(block[i], d, dst + (c + i) * channel_stride + l);
    }
  }
  for (int64_t l = 0; l < positions; ++l) {
    const int64_t c_begin = l < whole_positions ? whole_channels : 0;
    for (int64_t c = c_begin; c < channels; ++c) {
      dst[l * length_stride + c * channel_stride] = tile[l * channels + c];
    }
  }
}

// Tiles per panel up to which channel-vector tiles prefetch the next panel
// (weights beyond L2): with more, the first tile's wait is a small share.
constexpr int64_t kPrefetchingTilesPerPanel = 16;

template <class T>
void RunChannelVectors(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t block_channels = g.block_channels;
  const int64_t rows = g.tile_positions;
  const int64_t positions = task.l_end - task.l_begin;

  T* stage = static_cast<T*>(scratch);
  T* tile = reinterpret_cast<T*>(static_cast<uint8_t*>(scratch) +
                                 task_stage_bytes(g, positions, sizeof(T)));
  const int64_t first_in = task.group * g.in_channels_per_group;
  StagePositions(g, args.input, task.n, first_in, task.l_begin * g.stride - g.pad_left,
                 task_span(g, positions), stage);

  const TensorRef<T>& output = args.output;
  const int64_t first_out = task.group * g.out_channels_per_group + task.co_begin;
  const bool direct = in_place(g, output);
  const int64_t channels = task.co_end - task.co_begin;
  T* out_base = direct ? output.data + task.n * output.batch_stride + first_out +
                             task.l_begin * output.length_stride
                       : tile;
  const int64_t out_pitch = direct ? output.length_stride : channels;
  const T* bias = args.bias + task.group * g.co_blocks_per_group * block_channels;

  TileArgs<T> a{};
  a.row_pitch = static_cast<size_t>(g.stride * g.position_pitch);
  a.vector_pitch = static_cast<size_t>(block_channels);
  a.out_pitch = static_cast<size_t>(out_pitch);
  a.partial_pitch = a.out_pitch;
  const int64_t cin = g.in_channels_per_group;
  // This chunk's weights for all blocks of the group are contiguous; the
  // block's panel (steps x block_channels) stays in L1 across positions.
  const auto steps_of = [&](int64_t r0) { return std::min(g.chunk, g.reduction - r0); };
  const auto panel_of = [&](int64_t r0, int64_t co) {
    return args.weight + (task.group * g.co_blocks_per_group * g.reduction +
                          g.co_blocks_per_group * r0 + co / block_channels * steps_of(r0)) *
                             block_channels;
  };
  // Panels from beyond L2 that few tiles share: the first tile would wait
  // on memory for most of its panel (dac's 512 -> 1024 channels, K = 16,
  // stride 8, 30 positions a task: 1.2x faster prefetching). Whole tiles
  // prefetch the next panel a line a step.
  const bool prefetch_panels =
      g.weights_beyond_l2 && (positions + rows - 1) / rows <= kPrefetchingTilesPerPanel;
  for (int64_t r0 = 0; r0 < g.reduction; r0 += g.chunk) {
    const int64_t steps = steps_of(r0);
    for (int64_t co = task.co_begin; co < task.co_end; co += block_channels) {
      const int64_t valid = std::min(block_channels, task.co_end - co);
      const int64_t vectors = (valid + lanes - 1) / lanes;
      const T* panel = panel_of(r0, co);
      int64_t next_lines = 0;
      uintptr_t next = 0;
      if (prefetch_panels) {
        const bool same_chunk = co + block_channels < task.co_end;
        const int64_t next_r0 = same_chunk ? r0 : r0 + g.chunk;
        if (next_r0 < g.reduction) {
          next = reinterpret_cast<uintptr_t>(
              panel_of(next_r0, same_chunk ? co + block_channels : task.co_begin));
          next_lines = steps_of(next_r0) * block_channels * static_cast<int64_t>(sizeof(T)) / 64;
        }
      }
      a.bias = bias + co;
      for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += rows) {
        const int64_t m = std::min(rows, task.l_end - l0);
        // The steps k*C_in/G + ci of the taps that read inside the input,
        // within this chunk; the chunk holding the first starts from the
        // bias.
        const TapRange taps = TapsToRun(args, l0 * g.stride - g.pad_left, m);
        const int64_t first = std::max(r0, taps.first * cin);
        const int64_t end = std::min(r0 + steps, (taps.last + 1) * cin);
        if (first >= end) continue;
        a.steps = static_cast<size_t>(end - first);
        a.offsets = g.offsets + first;
        a.vectors = panel + (first - r0) * block_channels;
        a.broadcasts = stage + (l0 - task.l_begin) * g.stride * g.position_pitch;
        a.out = out_base + (l0 - task.l_begin) * out_pitch + (co - task.co_begin);
        a.partial = a.out;
        const bool accumulate = first > taps.first * cin;
        if (next_lines > 0 && m == rows && valid == static_cast<int64_t>(kVectors) * lanes) {
          const int64_t lines = std::min(next_lines, end - first);
          a.prefetch = next;
          a.prefetch_lines = static_cast<size_t>(lines - 1);
          next += static_cast<uintptr_t>(lines) * 64;
          next_lines -= lines;
          tile::CallTile<tile::Broadcasts::offsets_prefetching, kRows, kVectors, T>(a, accumulate);
          continue;
        }
        kChannelTiles<T>[static_cast<size_t>((vectors - 1) * static_cast<int64_t>(kAccumulators) +
                                             m - 1)](a, accumulate, static_cast<size_t>(valid));
      }
    }
  }
  if (direct) return;
  StoreByPosition(tile, positions, channels,
                  output.data + task.n * output.batch_stride + first_out * output.channel_stride +
                      task.l_begin * output.length_stride,
                  output.channel_stride, output.length_stride);
}

// reduction_vectors: register tiles of kSumRows output channels x
// kSumPositions positions, each accumulator a vector along the input
// channels of one tap, summed across its lanes at the end. Per step (a tap
// and a vector of channels) kSumRows weight loads and kSumPositions input
// loads feed kSumRows x kSumPositions FMAs.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// 24 accumulators + 3 inputs + 1 weight of 32 zmm.
constexpr size_t kSumRows = 8;
constexpr size_t kSumPositions = 3;
#else
// 16 registers (and the portable targets): 9 + 3 + 1.
constexpr size_t kSumRows = 3;
constexpr size_t kSumPositions = 3;
#endif

template <class T>
struct SumTileArgs {
  // Row m at weight + m * weight_pitch, tap k weight_tap_pitch further.
  const T* weight;
  size_t weight_pitch;
  size_t weight_tap_pitch;
  const T* input;        // the staged position of the tile's first output, tap 0
  size_t position_step;  // elements between the staged rows of consecutive outputs
  size_t tap_step;       // ... of consecutive taps
  size_t taps;
  size_t vectors;  // vectors of channels per tap (>= 1)
  const T* bias;   // [M]
  T* out;
  ptrdiff_t out_channel_stride;
  ptrdiff_t out_length_stride;
};

// out[m][p] = (Accumulate ? out[m][p] : bias[m]) + the sum over taps and
// lanes of weight[m] * input[p]. The order of the sum is the same for every
// tile shape and position, so results do not depend on the tiling or the
// thread count.
template <size_t M, size_t P, bool Accumulate, class T>
void SumTile(const SumTileArgs<T>& a) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t lanes = hn::Lanes(d);
  V acc[M][P];
  for (size_t m = 0; m < M; ++m) {
    for (size_t p = 0; p < P; ++p) acc[m][p] = hn::Zero(d);
  }
  const size_t row_length = a.vectors * lanes;
  for (size_t k = 0; k < a.taps; ++k) {
    const T* HWY_RESTRICT x = a.input + k * a.tap_step;
    const T* HWY_RESTRICT w = a.weight + k * a.weight_tap_pitch;
    for (size_t i = 0; i < row_length; i += lanes) {
      V xs[P];
      for (size_t p = 0; p < P; ++p) xs[p] = hn::Load(d, x + p * a.position_step + i);
      for (size_t m = 0; m < M; ++m) {
        V wv = hn::Load(d, w + m * a.weight_pitch + i);
        KeepInRegister(wv);  // one load for P FMAs
        for (size_t p = 0; p < P; ++p) acc[m][p] = hn::MulAdd(wv, xs[p], acc[m][p]);
      }
    }
  }
  T* HWY_RESTRICT out = a.out;
  for (size_t m = 0; m < M; ++m) {
    for (size_t p = 0; p < P; ++p) {
      T& to = out[static_cast<ptrdiff_t>(m) * a.out_channel_stride +
                  static_cast<ptrdiff_t>(p) * a.out_length_stride];
      to = (Accumulate ? to : a.bias[m]) + hn::GetLane(hn::SumOfLanes(d, acc[m][p]));
    }
  }
}

template <class T>
using SumTileFn = void (*)(const SumTileArgs<T>&);
template <class T, bool Accumulate, size_t... I>
constexpr std::array<SumTileFn<T>, sizeof...(I)> MakeSumTiles(std::index_sequence<I...>) {
  return {&SumTile<I / kSumPositions + 1, I % kSumPositions + 1, Accumulate, T>...};
}
// kSumTiles<T, Accumulate>[(M - 1) * kSumPositions + (P - 1)]: every tail
// shape.
template <class T, bool Accumulate>
constexpr std::array<SumTileFn<T>, kSumRows * kSumPositions> kSumTiles =
    MakeSumTiles<T, Accumulate>(std::make_index_sequence<kSumRows * kSumPositions>());

template <class T>
void RunReductionVectors(const Args<T>& args, const Task& task, void* scratch) {
  const Geometry& g = *args.geometry;
  const int64_t positions = task.l_end - task.l_begin;
  T* stage = static_cast<T*>(scratch);
  const int64_t first_in = task.group * g.in_channels_per_group;
  StagePositions(g, args.input, task.n, first_in, task.l_begin * g.stride - g.pad_left,
                 task_span(g, positions), stage);

  const TensorRef<T>& output = args.output;
  const int64_t first_out = task.group * g.out_channels_per_group;
  const int64_t rows = g.block_channels;
  const int64_t cols = g.tile_positions;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<T>()));
  const int64_t row_length = g.kernel_size * g.vector_channels;
  SumTileArgs<T> a{};
  a.weight_pitch = static_cast<size_t>(row_length);
  a.weight_tap_pitch = static_cast<size_t>(g.vector_channels);
  a.position_step = static_cast<size_t>(g.stride * g.position_pitch);
  a.tap_step = static_cast<size_t>(g.dilation * g.position_pitch);
  a.out_channel_stride = output.channel_stride;
  a.out_length_stride = output.length_stride;
  const int64_t group_row = task.group * g.co_blocks_per_group * rows;
  // Chunks of channels whose weights stay in L1 while the staged positions
  // stream past them; later chunks add to the outputs of the first.
  for (int64_t c0 = 0; c0 < g.vector_channels; c0 += g.chunk_channels) {
    const int64_t channels = std::min(g.chunk_channels, g.vector_channels - c0);
    a.vectors = static_cast<size_t>(channels / lanes);
    const auto& tiles = c0 == 0 ? kSumTiles<T, false> : kSumTiles<T, true>;
    for (int64_t co = task.co_begin; co < task.co_end; co += rows) {
      const int64_t m = std::min(rows, task.co_end - co);
      const T* const weight = args.weight + (group_row + co) * row_length + c0;
      a.bias = args.bias + group_row + co;
      T* const out_row =
          output.data + task.n * output.batch_stride + (first_out + co) * output.channel_stride;
      for (int64_t l0 = task.l_begin; l0 < task.l_end; l0 += cols) {
        const int64_t p = std::min(cols, task.l_end - l0);
        const TapRange taps = TapsToRun(args, l0 * g.stride - g.pad_left, p);
        a.taps = static_cast<size_t>(taps.last - taps.first + 1);
        a.input = stage + (l0 - task.l_begin) * g.stride * g.position_pitch +
                  taps.first * g.dilation * g.position_pitch + c0;
        a.weight = weight + taps.first * g.vector_channels;
        a.out = out_row + l0 * output.length_stride;
        tiles[static_cast<size_t>((m - 1) * cols + p - 1)](a);
      }
    }
  }
}

template <class T>
void RunTask(const Args<T>& args, const Task& task, void* scratch) {
  switch (args.geometry->kind) {
    case Kind::length_vectors:
      return RunLengthVectors(args, task, scratch);
    case Kind::channel_vectors:
      return RunChannelVectors(args, task, scratch);
    case Kind::reduction_vectors:
      return RunReductionVectors(args, task, scratch);
  }
}

void RunTaskF32(const Args<float>& args, const Task& task, void* scratch) {
  RunTask(args, task, scratch);
}
void RunTaskF64(const Args<double>& args, const Task& task, void* scratch) {
  RunTask(args, task, scratch);
}

// The strides the cost model counts as de-interleaved with vector
// operations. AVX2 permutes strides 5-8 too (1.3-1.5x faster staging than
// element by element), but counting them so moved AVX2 layers between
// tile kinds with mixed results (0.98x in geometric mean over 56 layers,
// one 1.5x slower), so its model keeps the element-by-element rate.
#if HWY_TARGET == HWY_AVX2
constexpr int64_t kModelledVectorStride = 4;
#else
constexpr int64_t kModelledVectorStride = kMaxVectorStride;
#endif

const Target* GetTarget() {
  static const Target target{static_cast<int>(kRows),
                             static_cast<int>(kVectors),
                             static_cast<int>(kSumRows),
                             static_cast<int>(kSumPositions),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<float>())),
                             static_cast<int>(hn::Lanes(hn::ScalableTag<double>())),
                             static_cast<int>(kModelledVectorStride),
                             &RunTaskF32,
                             &RunTaskF64};
  return &target;
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::direct
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::direct {

HWY_EXPORT(GetTarget);

const Target& chosen_target() { return *HWY_DYNAMIC_DISPATCH(GetTarget)(); }

}  // namespace conv1d::kernels::direct
#endif  // HWY_ONCE
