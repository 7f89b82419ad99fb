// Per-ISA task code of the depthwise algorithm, compiled once per Highway
// target (hwy/foreach_target.h re-includes this file). Serial: the executor
// in algorithm.cpp owns the task grid and the threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/depthwise/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
// foreach_target.h must come first.
#include <hwy/highway.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/isa.hpp"
#include "core/padding.hpp"
#include "kernels/common/phases-inl.h"
#include "kernels/common/registers-inl.h"
#include "kernels/common/shifted-inl.h"
#include "kernels/common/transpose-inl.h"
#include "kernels/depthwise/depthwise.hpp"
#include "kernels/depthwise/wide_row_block_x86.h"

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::depthwise {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using ::conv1d::kernels::common::HWY_NAMESPACE::CopyPhasesAnyStride;
using ::conv1d::kernels::common::HWY_NAMESPACE::KeepInRegister;
using ::conv1d::kernels::common::HWY_NAMESPACE::kShiftedRows;
using ::conv1d::kernels::common::HWY_NAMESPACE::Transpose;

template <class D>
using Vec = hn::Vec<D>;

// Register block of the channel-vector kernel: kPositions accumulators and
// kTaps weight vectors, so each input load feeds up to kTaps FMAs (one load
// per FMA would saturate the two load ports before the two FMA pipes).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// 12 + 8 + 1 of 32 zmm; measured on the K = 31 tile in L1: 88% of the FMA
// peak (J x KC = 8x8: 83%, 16x8: 81%, 12x16: spills).
constexpr size_t kPositions = 12;
constexpr size_t kTaps = 8;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr size_t kPositions = 4;
constexpr size_t kTaps = 4;
#else
// 16 registers: 6 + 6 + 1.
constexpr size_t kPositions = 6;
constexpr size_t kTaps = 6;
#endif
// Length-vector kernels: output vectors per iteration (independent FMA
// chains for the 4-cycle latency), the largest tap count whose weights stay
// in registers, and the largest taps-per-residue of SharedRow.
constexpr size_t kRowVectors = 4;
constexpr size_t kRegisterTaps = 8;
constexpr size_t kMaxSharedTaps = kMaxTapsPerResidue;
// Channel vectors: the widest kernel span read in place (see
// ChannelBlockTile).
constexpr int64_t kMaxInPlaceSpan = 20;

struct TaskIndex {
  int64_t n, block_begin, block_end, tile;
};
inline TaskIndex decode(const Geometry& g, int64_t task) {
  const int64_t groups = g.block_groups();
  int64_t n, group, tile;
  if (g.blocks_fastest) {
    n = task / groups / g.tiles, group = task % groups, tile = task / groups % g.tiles;
  } else {
    n = task / g.tiles / groups, group = task / g.tiles % groups, tile = task % g.tiles;
  }
  const int64_t begin = group * g.blocks_per_task;
  return {n, begin, std::min(begin + g.blocks_per_task, g.channel_blocks), tile};
}

// ---------------------------------------------------------------------------
// Channel-vector kernel: a vector holds N output channels at one position.

template <class T>
struct ChannelRun {
  const T* x[kMaxInPerGroup] = {};  // per input channel of the group: at output 0, tap 0
  ptrdiff_t step = 0;               // elements between consecutive outputs
  ptrdiff_t tap_step = 0;           // elements between consecutive taps
  const T* weight = nullptr;        // [g][K][N]
  const T* bias = nullptr;          // [N]
  T* y = nullptr;
  ptrdiff_t y_step = 0;
  int64_t count = 0;  // outputs
  int64_t in_per_group = 1;
  int64_t kernel_size = 1;
};

// Position P of a chunk (in taps): one load, FMAs into every accumulator j
// whose tap I = P - j*S is in the chunk (S: outputs S taps apart).
template <size_t J, size_t S, size_t P, size_t I, class V>
HWY_INLINE void FmaIfInBlock(V* acc, const V* w, V v) {
  if constexpr (P >= I && (P - I) % S == 0 && (P - I) / S < J) {
    acc[(P - I) / S] = hn::MulAdd(w[I], v, acc[(P - I) / S]);
  }
}
template <size_t J, size_t S, size_t P, class V, size_t... I>
HWY_INLINE void SharedLoadFmas(V* acc, const V* w, V v, std::index_sequence<I...>) {
  (FmaIfInBlock<J, S, P, I>(acc, w, v), ...);
}
template <size_t J, size_t KC, size_t S, size_t P, class D, class T>
HWY_INLINE void ChunkPosition(D d, Vec<D>* acc, const Vec<D>* w, const T* x, ptrdiff_t tap_step) {
  const Vec<D> v = hn::LoadU(d, x + static_cast<ptrdiff_t>(P) * tap_step);
  SharedLoadFmas<J, S, P>(acc, w, v, std::make_index_sequence<KC>());
}
template <size_t J, size_t KC, size_t S, class D, class T, size_t... P>
HWY_INLINE void ChunkPositions(D d, Vec<D>* acc, const Vec<D>* w, const T* x, ptrdiff_t tap_step,
                               std::index_sequence<P...>) {
  (ChunkPosition<J, KC, S, P>(d, acc, w, x, tap_step), ...);
}
template <class D, class T, size_t... I>
HWY_INLINE void LoadWeights(D d, Vec<D>* w, const T* weight, std::index_sequence<I...>) {
  ((w[I] = hn::LoadU(d, weight + I * hn::Lanes(d))), ...);
}

// acc[j] += sum_{i < KC} weight[i] * x[(j*S + i) * tap_step], j < J: input
// position j*S + i is loaded once for all its (j, i) pairs, and each
// accumulator still takes its taps in order.
template <size_t J, size_t KC, size_t S, class D, class T>
HWY_INLINE void Chunk(D d, Vec<D>* acc, const T* x, ptrdiff_t tap_step, const T* weight) {
  Vec<D> w[KC];
  LoadWeights(d, w, weight, std::make_index_sequence<KC>());
  ChunkPositions<J, KC, S>(d, acc, w, x, tap_step, std::make_index_sequence<(J - 1) * S + KC>());
}

// Chunk<J, taps, S> for a run-time taps in [1, KC].
template <size_t J, size_t KC, size_t S, class D, class T>
HWY_INLINE void ChunkOf(D d, Vec<D>* acc, const T* x, ptrdiff_t tap_step, const T* weight,
                        int64_t taps) {
  if constexpr (KC > 1) {
    if (taps < static_cast<int64_t>(KC)) {
      return ChunkOf<J, KC - 1, S>(d, acc, x, tap_step, weight, taps);
    }
  }
  Chunk<J, KC, S>(d, acc, x, tap_step, weight);
}

template <class D, size_t... I>
HWY_INLINE void Fill(Vec<D>* acc, Vec<D> value, std::index_sequence<I...>) {
  ((acc[I] = value), ...);
}
template <class D, class T, size_t... I>
HWY_INLINE void StoreBlock(D d, const Vec<D>* acc, T* y, ptrdiff_t y_step,
                           std::index_sequence<I...>) {
  (hn::StoreU(acc[I], d, y + static_cast<ptrdiff_t>(I) * y_step), ...);
}

// Outputs [j0, j0 + J) of one run. Taps are summed in order k = 0..K-1 for
// each input channel of the group, whatever J, S and the chunking: the
// result does not depend on the tiling. kShare > 0: the caller guarantees
// step == kShare * tap_step, so taps of neighbouring outputs share loads;
// 0: decided at run time (shared when step == tap_step).
template <size_t J, size_t kShare, class D, class T>
HWY_INLINE void ChannelBlock(D d, const ChannelRun<T>& r, int64_t j0, int64_t chunks,
                             ptrdiff_t step, ptrdiff_t tap_step) {
  constexpr size_t N = hn::MaxLanes(D());
  constexpr size_t S = kShare == 0 ? 1 : kShare;
  Vec<D> acc[J];
  Fill<D>(acc, hn::LoadU(d, r.bias), std::make_index_sequence<J>());
  const int64_t K = r.kernel_size;
  for (int64_t ci = 0; ci < r.in_per_group; ++ci) {
    const T* x = r.x[ci] + j0 * step;
    const T* w = r.weight + ci * K * static_cast<int64_t>(N);
    if constexpr (kShare > 1) {
      // Strided: whole chunks of kTaps, then the last taps one at a time
      // (chunks of every size would treble this file's compile time).
      int64_t k = 0;
      for (; k + static_cast<int64_t>(kTaps) <= K; k += kTaps) {
        Chunk<J, kTaps, S>(d, acc, x + k * tap_step, tap_step, w + k * static_cast<int64_t>(N));
      }
      for (; k < K; ++k) {
        Chunk<J, 1, 1>(d, acc, x + k * tap_step, step, w + k * static_cast<int64_t>(N));
      }
    } else if (kShare == 1 || step == tap_step) {
      // Chunks of near-equal size: K = 31 runs as 8 + 8 + 8 + 7.
      const int64_t base = K / chunks, longer = K % chunks;
      int64_t k = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t taps = base + (c < longer ? 1 : 0);
        ChunkOf<J, kTaps, S>(d, acc, x + k * tap_step, tap_step, w + k * static_cast<int64_t>(N),
                             taps);
        k += taps;
      }
    } else {
      // Taps do not share loads: each tap's J outputs are `step` apart.
      for (int64_t k = 0; k < K; ++k) {
        Chunk<J, 1, 1>(d, acc, x + k * tap_step, step, w + k * static_cast<int64_t>(N));
      }
    }
  }
  StoreBlock(d, acc, r.y + j0 * r.y_step, r.y_step, std::make_index_sequence<J>());
}

// The last count < kPositions outputs as one block: a block of one output
// is a single FMA chain, latency bound (K = 31: 124 cycles).
template <size_t J, size_t kShare, class D, class T>
HWY_INLINE void ChannelRemainder(D d, const ChannelRun<T>& r, int64_t j0, int64_t chunks,
                                 ptrdiff_t step, ptrdiff_t tap_step, int64_t count) {
  if constexpr (J > 1) {
    if (count < static_cast<int64_t>(J)) {
      return ChannelRemainder<J - 1, kShare>(d, r, j0, chunks, step, tap_step, count);
    }
  }
  ChannelBlock<J, kShare>(d, r, j0, chunks, step, tap_step);
}

// kPackedStride > 0: packed input with dilation 1 and that stride (step ==
// stride * N, tap_step == N). Constant offsets let every load address the
// chunk base with an immediate; a run-time step costs an add per load and
// spills address registers (measured: ~150 vs ~180 GFLOP/s on the K = 31
// tile). At strides 2-4 neighbouring outputs' taps share loads too (16
// channels, K = 128, stride 3: one load per FMA before).
template <size_t kPackedStride, class D, class T>
HWY_NOINLINE void RunChannels(D d, const ChannelRun<T>& r) {
  constexpr auto N = static_cast<ptrdiff_t>(hn::MaxLanes(D()));
  constexpr auto packed_stride = static_cast<ptrdiff_t>(kPackedStride);
  const ptrdiff_t step = kPackedStride != 0 ? packed_stride * N : r.step;
  const ptrdiff_t tap_step = kPackedStride != 0 ? N : r.tap_step;
  const int64_t chunks = (r.kernel_size + kTaps - 1) / kTaps;
  int64_t j = 0;
  for (; j + static_cast<int64_t>(kPositions) <= r.count; j += kPositions) {
    ChannelBlock<kPositions, kPackedStride>(d, r, j, chunks, step, tap_step);
  }
  // Strided remainders take the run-time path (one load per FMA), which
  // sums in the same order, for the compile time's sake too.
  constexpr size_t kRemainderShare = kPackedStride <= 1 ? kPackedStride : 0;
  if (j < r.count) {
    ChannelRemainder<kPositions - 1, kRemainderShare>(d, r, j, chunks, step, tap_step, r.count - j);
  }
}

// Channels-last rows in place, position-major: J positions of every block
// of `r` (the first block; the others follow at N channels apart) before
// the next J positions, so a task streams through whole input and output
// rows (Mamba: 6 KiB) instead of walking columns of many rows, which keeps
// the prefetchers from following (measured ~16 vs ~27 GB/s).
template <class D, class T>
HWY_NOINLINE void RunChannelsAcrossBlocks(D d, const ChannelRun<T>& r, int64_t blocks) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  constexpr size_t J = kRowVectors;
  const int64_t chunks = (r.kernel_size + kTaps - 1) / kTaps;
  const int64_t block_weights = r.kernel_size * N;
  for (int64_t j = 0; j < r.count; j += J) {
    const int64_t positions = std::min<int64_t>(J, r.count - j);
    ChannelRun<T> block = r;
    for (int64_t b = 0; b < blocks; ++b) {
      if (positions == static_cast<int64_t>(J)) {
        ChannelBlock<J, 0>(d, block, j, chunks, block.step, block.tap_step);
      } else {
        ChannelRemainder<J - 1, 0>(d, block, j, chunks, block.step, block.tap_step, positions);
      }
      block.x[0] += N;
      block.weight += block_weights;
      block.bias += N;
      block.y += N;
    }
  }
}

// ---------------------------------------------------------------------------
// Packing for the channel-vector kernel: P[q - q0][lane] = xpad[n, channel
// of lane, q] for padded positions q in [q0, q0 + count).

template <class T>
struct LaneChannels {
  int64_t channel[hn::MaxLanes(hn::ScalableTag<T>())];  // input channel of each lane
  bool contiguous;  // channel[i] == channel[0] + i and the tensor has channel stride 1
};

template <class D, class T>
HWY_INLINE void GatherPosition(D d, const TensorRef<const T>& in, const T* sample,
                               const LaneChannels<T>& lanes, int64_t src, T* out) {
  constexpr size_t N = hn::MaxLanes(D());
  if (src < 0) {
    hn::Store(hn::Zero(d), d, out);
  } else if (lanes.contiguous) {
    hn::Store(hn::LoadU(d, sample + lanes.channel[0] + src * in.length_stride), d, out);
  } else {
    for (size_t i = 0; i < N; ++i) {
      out[i] = sample[lanes.channel[i] * in.channel_stride + src * in.length_stride];
    }
  }
}

template <class D, class T>
void PackChannels(D d, const Geometry& g, const TensorRef<const T>& in, int64_t n,
                  const LaneChannels<T>& lanes, int64_t q0, int64_t count, T* HWY_RESTRICT packed) {
  constexpr size_t N = hn::MaxLanes(D());
  const T* sample = in.data + n * in.batch_stride;
  const int64_t q1 = q0 + count;
  const int64_t inner0 = std::clamp<int64_t>(q0, 0, g.length);
  const int64_t inner1 = std::clamp<int64_t>(q1, inner0, g.length);
  for (int64_t q = q0; q < std::min(q1, inner0); ++q) {
    GatherPosition(d, in, sample, lanes, core::source_index(q, g.length, g.padding_mode),
                   packed + (q - q0) * static_cast<int64_t>(N));
  }
  int64_t q = inner0;
  if (!lanes.contiguous && in.length_stride == 1) {
    // NCL rows: N positions of N rows at a time, transposed in registers.
    const T* rows[N];
    for (size_t i = 0; i < N; ++i) rows[i] = sample + lanes.channel[i] * in.channel_stride;
    for (; q + static_cast<int64_t>(N) <= inner1; q += N) {
      Vec<D> block[N];
      for (size_t i = 0; i < N; ++i) block[i] = hn::LoadU(d, rows[i] + q);
      Transpose(d, block);
      T* out = packed + (q - q0) * static_cast<int64_t>(N);
      for (size_t i = 0; i < N; ++i) hn::Store(block[i], d, out + i * N);
    }
  }
  for (; q < inner1; ++q) {
    GatherPosition(d, in, sample, lanes, q, packed + (q - q0) * static_cast<int64_t>(N));
  }
  for (q = std::max(q0, inner1); q < q1; ++q) {
    GatherPosition(d, in, sample, lanes, core::source_index(q, g.length, g.padding_mode),
                   packed + (q - q0) * static_cast<int64_t>(N));
  }
}

// Writes the [count][N] tile of output channels co0.. (valid lanes only) at
// positions l0.. of sample n.
template <class D, class T>
void UnpackChannels(D d, const T* HWY_RESTRICT tile, const TensorRef<T>& out, int64_t n,
                    int64_t co0, int64_t valid, int64_t l0, int64_t count) {
  constexpr size_t N = hn::MaxLanes(D());
  T* sample = out.data + n * out.batch_stride + co0 * out.channel_stride;
  int64_t t = 0;
  // Strides in locals: stores through T* could alias the TensorRef.
  const int64_t cs = out.channel_stride, ls = out.length_stride;
  if (valid == static_cast<int64_t>(N) && ls == 1) {
    for (; t + static_cast<int64_t>(N) <= count; t += N) {
      Vec<D> block[N];
      for (size_t i = 0; i < N; ++i) block[i] = hn::Load(d, tile + (t + i) * N);
      Transpose(d, block);
      T* y = sample + l0 + t;
      for (size_t i = 0; i < N; ++i) hn::StoreU(block[i], d, y + static_cast<int64_t>(i) * cs);
    }
  }
  for (; t < count; ++t) {
    for (int64_t i = 0; i < valid; ++i) sample[i * cs + (l0 + t) * ls] = tile[t * N + i];
  }
}

template <class D, class T>
void ChannelBlockTile(D d, const Args<T>& args, int64_t n, int64_t block, int64_t l0, int64_t l1,
                      void* scratch) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const Geometry& g = *args.geometry;
  const TensorRef<const T>& in = args.input;
  const TensorRef<T>& out = args.output;
  const int64_t co0 = block * N;
  const int64_t valid = std::min(N, g.out_channels - co0);
  const int64_t s = g.stride, K = g.kernel_size;

  const size_t span = static_cast<size_t>(input_span(g, g.tile_length) + g.stride);
  const size_t packed_bytes = round_up_64(span * N * sizeof(T));
  auto* bytes = static_cast<unsigned char*>(scratch);
  T* packed[kMaxInPerGroup];
  for (int64_t ci = 0; ci < g.in_per_group; ++ci) {
    packed[ci] = reinterpret_cast<T*>(bytes + static_cast<size_t>(ci) * packed_bytes);
  }
  T* tile_out = reinterpret_cast<T*>(bytes + static_cast<size_t>(g.in_per_group) * packed_bytes);

  ChannelRun<T> run;
  run.weight = args.weight + block * g.in_per_group * K * N;
  run.bias = args.bias + block * N;
  run.in_per_group = g.in_per_group;
  run.kernel_size = K;

  // Channels-last input read in place for outputs whose taps are all inside
  // [0, L): no copy in the interior, only the edges are packed. Only for
  // kernels spanning up to kMaxInPlaceSpan positions: a register block's
  // loads from wider spans touch too many rows, lines a row pitch apart
  // that share few L1 sets (512 channels: K = 31 packed 1.5x faster, K = 64
  // with dilation 6 3x; K = 11..17 in place 1.1-1.5x faster).
  const int64_t first_channel = co0 / g.out_per_group * g.in_per_group;
  const bool in_place = g.in_per_group == 1 && in.channel_stride == 1 && valid == N &&
                        (g.out_per_group == 1 || N == 1) && input_span(g, 1) <= kMaxInPlaceSpan;
  const bool out_in_place = valid == N && out.channel_stride == 1;
  int64_t inner0 = l1, inner1 = l1;
  if (in_place) {
    const int64_t first = (g.pad_left + s - 1) / s;
    const int64_t last_start = g.length - 1 + g.pad_left - (K - 1) * g.dilation;
    const int64_t end = last_start < 0 ? first : last_start / s + 1;
    inner0 = std::clamp(first, l0, l1);
    inner1 = std::clamp(end, inner0, l1);
  }
  LaneChannels<T> lanes[kMaxInPerGroup];
  if (inner0 != l0 || inner1 != l1) {
    for (int64_t ci = 0; ci < g.in_per_group; ++ci) {
      for (int64_t i = 0; i < N; ++i) {
        // Lanes past C_out repeat lane 0: their weights are zero and their
        // outputs are dropped.
        const int64_t co = co0 + (i < valid ? i : 0);
        lanes[ci].channel[i] = co / g.out_per_group * g.in_per_group + ci;
      }
      bool contiguous = in.channel_stride == 1;
      for (int64_t i = 1; i < N; ++i) {
        contiguous &= lanes[ci].channel[i] == lanes[ci].channel[0] + i;
      }
      lanes[ci].contiguous = contiguous;
    }
  }
  const int64_t pieces[4] = {l0, inner0, inner1, l1};
  for (int piece = 0; piece < 3; ++piece) {
    const int64_t a = pieces[piece], b = pieces[piece + 1];
    if (a >= b) continue;
    const int64_t q0 = a * s - g.pad_left;
    if (piece == 1) {
      run.x[0] = in.data + n * in.batch_stride + first_channel + q0 * in.length_stride;
      run.step = s * in.length_stride;
      run.tap_step = g.dilation * in.length_stride;
    } else {
      for (int64_t ci = 0; ci < g.in_per_group; ++ci) {
        PackChannels(d, g, in, n, lanes[ci], q0, input_span(g, b - a), packed[ci]);
        run.x[ci] = packed[ci];
      }
      run.step = s * N;
      run.tap_step = g.dilation * N;
    }
    if (out_in_place) {
      run.y = out.data + n * out.batch_stride + co0 + a * out.length_stride;
      run.y_step = out.length_stride;
    } else {
      run.y = tile_out + (a - l0) * N;
      run.y_step = N;
    }
    run.count = b - a;
    const bool packed_dense = piece != 1 && packed_taps_share_loads(s, g.dilation);
    static_assert(kMaxSharedStride == 4);
    if (packed_dense && s == 1) {
      RunChannels<1>(d, run);
    } else if (packed_dense && s == 2) {
      RunChannels<2>(d, run);
    } else if (packed_dense && s == 3) {
      RunChannels<3>(d, run);
    } else if (packed_dense && s == 4) {
      RunChannels<4>(d, run);
    } else {
      RunChannels<0>(d, run);
    }
  }
  if (!out_in_place) UnpackChannels(d, tile_out, out, n, co0, valid, l0, l1 - l0);
}

// ---------------------------------------------------------------------------
// Length-vector kernel: a vector holds N consecutive outputs of one channel.

// The first `count` (< N) lanes at p, the others zero, and their store:
// a row's last partial vector read and written in place. Masked on AVX2 and
// AVX-512 (masked-off lanes never fault); through a buffer elsewhere.
template <class D, class T>
HWY_INLINE Vec<D> LoadFirst(D d, const T* p, int64_t count) {
#if HWY_TARGET <= HWY_AVX2
  return hn::MaskedLoad(hn::FirstN(d, static_cast<size_t>(count)), d, p);
#else
  HWY_ALIGN T buffer[hn::MaxLanes(D())] = {};
  std::copy(p, p + count, buffer);
  return hn::Load(d, buffer);
#endif
}
template <class D, class T>
HWY_INLINE void StoreFirst(D d, Vec<D> v, T* p, int64_t count) {
#if HWY_TARGET <= HWY_AVX2
  hn::BlendedStore(v, hn::FirstN(d, static_cast<size_t>(count)), d, p);
#else
  HWY_ALIGN T buffer[hn::MaxLanes(D())];
  hn::Store(v, d, buffer);
  std::copy(buffer, buffer + count, p);
#endif
}

#if HWY_TARGET <= HWY_AVX2
// Zero-padded rows can be read in place: masked loads for the vectors that
// reach past a row's ends.
constexpr bool kMaskedRowEdges = true;
// Input positions [start, start + N) of a row of `length`, zero outside it
// (masked-off lanes are never read).
template <class D, class T>
HWY_INLINE Vec<D> LoadInside(D d, const T* row, int64_t start, int64_t length) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const auto before = static_cast<size_t>(std::clamp<int64_t>(-start, 0, N));
  const auto inside_end = static_cast<size_t>(std::clamp<int64_t>(length - start, 0, N));
  return hn::MaskedLoad(hn::AndNot(hn::FirstN(d, before), hn::FirstN(d, inside_end)), d,
                        row + start);
}
#else
constexpr bool kMaskedRowEdges = false;
template <class D, class T>
Vec<D> LoadInside(D d, const T*, int64_t, int64_t) {
  return hn::Zero(d);  // never called: kMaskedRowEdges
}
#endif

template <size_t NT, class D, class T, size_t... I>
HWY_INLINE Vec<D> RowTaps(D d, const Vec<D>* w, const T* const* x, int64_t l, Vec<D> acc,
                          std::index_sequence<I...>) {
  ((acc = hn::MulAdd(w[I], hn::LoadU(d, x[I] + l), acc)), ...);
  return acc;
}

// y[l] = bias + sum_t weight[t] * taps[t][l], weights held in registers.
// A last partial vector reads and writes only its `count % N` lanes.
template <size_t NT, class D, class T>
HWY_INLINE void RowFixedInline(D d, const T* const* taps, const T* weight, T bias, T* y,
                               int64_t count) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const T* x[NT];
  Vec<D> w[NT];
  for (size_t t = 0; t < NT; ++t) {
    x[t] = taps[t];
    w[t] = hn::Set(d, weight[t]);
  }
  const Vec<D> b = hn::Set(d, bias);
  int64_t l = 0;
  for (; l + static_cast<int64_t>(kRowVectors) * N <= count; l += kRowVectors * N) {
    Vec<D> acc[kRowVectors];
    for (size_t j = 0; j < kRowVectors; ++j) {
      acc[j] =
          RowTaps<NT>(d, w, x, l + static_cast<int64_t>(j) * N, b, std::make_index_sequence<NT>());
    }
    for (size_t j = 0; j < kRowVectors; ++j) {
      hn::StoreU(acc[j], d, y + l + static_cast<int64_t>(j) * N);
    }
  }
  for (; l + N <= count; l += N) {
    hn::StoreU(RowTaps<NT>(d, w, x, l, b, std::make_index_sequence<NT>()), d, y + l);
  }
  if (l < count) {
    Vec<D> acc = b;
    for (size_t t = 0; t < NT; ++t) acc = hn::MulAdd(w[t], LoadFirst(d, x[t] + l, count - l), acc);
    StoreFirst(d, acc, y + l, count - l);
  }
}
template <size_t NT, class D, class T>
HWY_NOINLINE void RowFixed(D d, const T* const* taps, const T* weight, T bias, T* y,
                           int64_t count) {
  RowFixedInline<NT>(d, taps, weight, bias, y, count);
}

// Rows read and written in place whole: one call for all rows of a task,
// so short rows (streaming pushes) cost little more than their FMAs. Output
// i of row r reads tap t at x + r * x_stride + first + i + t * tap_step;
// with `length` > 0 the rows are zero-padded: positions outside [0, length)
// read as zeros (kMaskedRowEdges only).
template <class T>
struct InPlaceRows {
  const T* x = nullptr;
  int64_t x_stride = 0;
  int64_t first = 0;
  int64_t length = 0;
  int64_t tap_step = 1;
  const T* weight = nullptr;  // [rows][taps]
  const T* bias = nullptr;    // [rows]
  T* y = nullptr;
  int64_t y_stride = 0;
  int64_t rows = 0;
  int64_t count = 0;  // outputs per row
  // Rows sharing an input row (a depth multiplier), and the first row's
  // place among them (ShiftedRows only).
  int64_t out_per_group = 1;
  int64_t first_multiplier = 0;
};
// Output vector i.. of a zero-padded row (its last `count` < N outputs
// stored alone), taps summed in RowFixedInline's order.
template <size_t NT, class D, class T>
HWY_INLINE void PaddedRowVector(D d, const InPlaceRows<T>& r, const T* row, const T* weight,
                                Vec<D> bias, T* y, int64_t i, int64_t count) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  Vec<D> acc = bias;
  for (size_t t = 0; t < NT; ++t) {
    const int64_t start = r.first + i + static_cast<int64_t>(t) * r.tap_step;
    acc = hn::MulAdd(hn::Set(d, weight[t]), LoadInside(d, row, start, r.length), acc);
  }
  if (count < N) return StoreFirst(d, acc, y + i, count);
  hn::StoreU(acc, d, y + i);
}

template <size_t NT, class D, class T>
HWY_NOINLINE void RowsFixed(D d, const InPlaceRows<T>& r) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  // Zero-padded rows: vectors [interior_begin, interior_end) have all their
  // taps inside the row; the ones before and after load through masks.
  int64_t interior_begin = 0, interior_end = r.count;
  if (kMaskedRowEdges && r.length > 0) {
    const int64_t reach = static_cast<int64_t>(NT - 1) * r.tap_step;
    interior_begin = std::min(r.count, (std::max<int64_t>(-r.first, 0) + N - 1) / N * N);
    // Vector i is inside if first + i + reach + N <= length.
    const int64_t last_inside = r.length - N - reach - r.first;
    interior_end = interior_begin;
    if (last_inside >= interior_begin) {
      interior_end =
          std::min(interior_begin + ((last_inside - interior_begin) / N + 1) * N, r.count / N * N);
      interior_end = std::max(interior_end, interior_begin);
    }
  }
  for (int64_t row = 0; row < r.rows; ++row) {
    const T* x = r.x + row * r.x_stride;
    const T* weight = r.weight + row * static_cast<int64_t>(NT);
    T* y = r.y + row * r.y_stride;
    // Vectors [from, to) through masked loads (none on targets without).
    const auto edge = [&](int64_t from, int64_t to) {
      const Vec<D> bias = hn::Set(d, r.bias[row]);
      for (int64_t i = from; i < to; i += N) {
        PaddedRowVector<NT>(d, r, x, weight, bias, y, i, std::min(N, r.count - i));
      }
    };
    edge(0, interior_begin);
    const T* taps[NT];
    for (size_t t = 0; t < NT; ++t) {
      taps[t] = x + r.first + interior_begin + static_cast<int64_t>(t) * r.tap_step;
    }
    RowFixedInline<NT>(d, taps, weight, r.bias[row], y + interior_begin,
                       interior_end - interior_begin);
    edge(interior_end, r.count);
  }
}
template <size_t NT, class D, class T>
HWY_INLINE void RowsDispatch(D d, const InPlaceRows<T>& r, int64_t tap_count) {
  if constexpr (NT > 0) {
    if (tap_count == static_cast<int64_t>(NT)) return RowsFixed<NT>(d, r);
    RowsDispatch<NT - 1>(d, r, tap_count);
  }
}

// Any tap count: weights broadcast from memory per block of outputs.
template <class D, class T>
HWY_NOINLINE void RowAny(D d, const T* const* taps, const T* weight, int64_t tap_count, T bias,
                         T* y, int64_t count) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const Vec<D> b = hn::Set(d, bias);
  int64_t l = 0;
  for (; l + static_cast<int64_t>(kRowVectors) * N <= count; l += kRowVectors * N) {
    Vec<D> acc[kRowVectors];
    for (size_t j = 0; j < kRowVectors; ++j) acc[j] = b;
    for (int64_t t = 0; t < tap_count; ++t) {
      const Vec<D> w = hn::Set(d, weight[t]);
      const T* x = taps[t] + l;
      for (size_t j = 0; j < kRowVectors; ++j) {
        acc[j] = hn::MulAdd(w, hn::LoadU(d, x + static_cast<int64_t>(j) * N), acc[j]);
      }
    }
    for (size_t j = 0; j < kRowVectors; ++j) {
      hn::StoreU(acc[j], d, y + l + static_cast<int64_t>(j) * N);
    }
  }
  for (; l + N <= count; l += N) {
    Vec<D> acc = b;
    for (int64_t t = 0; t < tap_count; ++t) {
      acc = hn::MulAdd(hn::Set(d, weight[t]), hn::LoadU(d, taps[t] + l), acc);
    }
    hn::StoreU(acc, d, y + l);
  }
  if (l < count) {
    Vec<D> acc = b;
    for (int64_t t = 0; t < tap_count; ++t) {
      acc = hn::MulAdd(hn::Set(d, weight[t]), LoadFirst(d, taps[t] + l, count - l), acc);
    }
    StoreFirst(d, acc, y + l, count - l);
  }
}

template <size_t NT, class D, class T>
HWY_INLINE void RowDispatch(D d, const T* const* taps, const T* weight, int64_t tap_count, T bias,
                            T* y, int64_t count) {
  if constexpr (NT == 0) {
    RowAny(d, taps, weight, tap_count, bias, y, count);
  } else {
    if (tap_count == static_cast<int64_t>(NT)) return RowFixed<NT>(d, taps, weight, bias, y, count);
    RowDispatch<NT - 1>(d, taps, weight, tap_count, bias, y, count);
  }
}

// Stride = dilation = 1: taps k and k + N read the same input vector one
// output vector apart. Grouping taps by residue r = k mod N, each unaligned
// row load feeds ceil(K / N) FMAs (2 for K = 31 on AVX-512), which halves
// the cache-line-split loads that bound this kernel.
template <size_t J, size_t M, class D, class T, size_t... I>
HWY_INLINE void ResidueStep(D d, Vec<D>* acc, const Vec<D>* w, const T* x,
                            std::index_sequence<I...>) {
  Vec<D> v = hn::LoadU(d, x + M * hn::MaxLanes(D()));
  KeepInRegister(v);
  (FmaIfInBlock<J, 1, M, I>(acc, w, v), ...);
}
template <size_t J, size_t TPR, class D, class T, size_t... M>
HWY_INLINE void ResidueSteps(D d, Vec<D>* acc, const Vec<D>* w, const T* x,
                             std::index_sequence<M...>) {
  (ResidueStep<J, M>(d, acc, w, x, std::make_index_sequence<TPR>()), ...);
}
// acc[j] += sum_{i < TPR} weight[i * N] * x[(j + i) * N]: the taps r, r + N,
// ... of one residue, x and weight already offset by r.
template <size_t J, size_t TPR, class D, class T>
HWY_INLINE void Residue(D d, Vec<D>* acc, const T* x, const T* weight) {
  constexpr size_t N = hn::MaxLanes(D());
  Vec<D> w[TPR];
  for (size_t i = 0; i < TPR; ++i) w[i] = hn::Set(d, weight[i * N]);
  ResidueSteps<J, TPR>(d, acc, w, x, std::make_index_sequence<J + TPR - 1>());
}
template <size_t J, size_t TPR, class D, class T>
HWY_INLINE void ResidueOf(D d, Vec<D>* acc, const T* x, const T* weight, int64_t taps) {
  if constexpr (TPR > 1) {
    if (taps < static_cast<int64_t>(TPR)) return ResidueOf<J, TPR - 1>(d, acc, x, weight, taps);
  }
  Residue<J, TPR>(d, acc, x, weight);
}

template <size_t J, class D, class T>
HWY_INLINE void SharedRowBlock(D d, const T* const* rows, const T* weight, int64_t in_per_group,
                               int64_t K, T bias, T* y, int64_t l) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  Vec<D> acc[J];
  Fill<D>(acc, hn::Set(d, bias), std::make_index_sequence<J>());
  for (int64_t ci = 0; ci < in_per_group; ++ci) {
    const T* x = rows[ci] + l;
    const T* w = weight + ci * K;
    for (int64_t r = 0; r < std::min(N, K); ++r) {
      ResidueOf<J, kMaxSharedTaps>(d, acc, x + r, w + r, (K - 1 - r) / N + 1);
    }
  }
  StoreBlock(d, acc, y + l, N, std::make_index_sequence<J>());
}

template <size_t J, class D, class T>
HWY_INLINE void SharedRowRemainder(D d, const T* const* rows, const T* weight, int64_t in_per_group,
                                   int64_t K, T bias, T* y, int64_t l, int64_t vectors) {
  if constexpr (J > 1) {
    if (vectors < static_cast<int64_t>(J)) {
      return SharedRowRemainder<J - 1>(d, rows, weight, in_per_group, K, bias, y, l, vectors);
    }
  }
  SharedRowBlock<J>(d, rows, weight, in_per_group, K, bias, y, l);
}

// y[l] = bias + sum_{ci, k} weight[ci][k] * rows[ci][l + k].
template <class D, class T>
HWY_NOINLINE void SharedRow(D d, const T* const* rows, const T* weight, int64_t in_per_group,
                            int64_t K, T bias, T* y, int64_t count) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  int64_t l = 0;
  for (; l + static_cast<int64_t>(kPositions) * N <= count; l += kPositions * N) {
    SharedRowBlock<kPositions>(d, rows, weight, in_per_group, K, bias, y, l);
  }
  if (l < count) {
    SharedRowRemainder<kPositions - 1>(d, rows, weight, in_per_group, K, bias, y, l,
                                       (count - l) / N);
  }
}

// Stride = dilation = 1 rows of up to 2N taps on AVX-512 (ShiftedRow): a
// block of J output vectors shifts the residues out of the J + 2 input
// vectors under it (kernels/common/shifted-inl.h). Rows read in place;
// zero padding and row ends go through masked loads, so a whole tile runs
// without copies. Measured on Conformer K = 31 (1000 outputs per row):
// ~160-170 GFLOP/s, against ~135 for the previous kernel (12-vector blocks
// reloading their inputs per residue pair, edges on padded copies); J = 6
// and J = 12 measured slower. Sums run in SharedRow's order (residues
// ascending, the taps of a residue ascending), so results do not depend on
// where blocks start.

// inside[m]: the lanes of vector m (N lanes each) from position `start` of
// a row of `length` that lie in [0, length). Two vector compares a vector:
// scalar FirstN masks per vector cost more than a short row's shifts.
template <size_t kVectors, class D>
HWY_INLINE void InsideMasks(D d, int64_t start, int64_t length, hn::Mask<D>* inside) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  constexpr auto kSpan = static_cast<int64_t>(kVectors) * N;
  const hn::RebindToSigned<D> di;
  using TI = hn::TFromD<decltype(di)>;
  const auto begin = hn::Set(di, static_cast<TI>(std::clamp<int64_t>(-start, 0, kSpan)));
  const auto end = hn::Set(di, static_cast<TI>(std::clamp<int64_t>(length - start, 0, kSpan)));
  auto lane = hn::Iota(di, 0);
  HWY_UNROLL(16)
  for (size_t m = 0; m < kVectors; ++m) {
    inside[m] = hn::RebindMask(d, hn::AndNot(hn::Lt(lane, begin), hn::Lt(lane, end)));
    lane = hn::Add(lane, hn::Set(di, static_cast<TI>(N)));
  }
}

// Output vectors per block.
constexpr size_t kShiftedVectors = 8;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
using ::conv1d::kernels::common::HWY_NAMESPACE::kLoadedResidues;
using ::conv1d::kernels::common::HWY_NAMESPACE::ShiftedResidues;
using ::conv1d::kernels::common::HWY_NAMESPACE::ShiftLanes;

// A block of output vectors that reaches past a row's ends (an edge
// block): its loads and its last store go through masks, which rows of
// the same geometry share (ShiftedRows plans them once per task).
template <class D>
struct EdgeBlock {
  static constexpr size_t kMaxVectors = kShiftedVectors;
  int64_t vector = 0;                   // the block's first output vector in the row
  hn::Mask<D> inside[kMaxVectors + 2];  // lanes of each input vector in the row
  hn::Mask<D> stored;                   // lanes of the last output vector kept
};

// An edge block of J output vectors at x: loads through e.inside, stores
// its last vector through e.stored. Shifts every residue (an unaligned
// load could leave the row).
template <size_t J, class D, class T>
HWY_INLINE void MaskedShiftedBlockInline(D d, const EdgeBlock<D>& e, const T* x, const T* weight,
                                         int64_t K, T bias, T* y) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  Vec<D> whole[J + 2];
  HWY_UNROLL(16)
  for (size_t m = 0; m < J + 2; ++m) {
    whole[m] = hn::MaskedLoad(e.inside[m], d, x + static_cast<int64_t>(m) * N);
  }
  Vec<D> acc[J];
  Fill<D>(acc, hn::Set(d, bias), std::make_index_sequence<J>());
  ShiftedResidues<J, 0u>(d, acc, whole, x, weight, K,
                         std::make_index_sequence<static_cast<size_t>(N)>());
  StoreBlock(d, acc, y, N, std::make_index_sequence<J - 1>());
  hn::BlendedStore(acc[J - 1], e.stored, d, y + static_cast<int64_t>(J - 1) * N);
}
template <size_t J, class D, class T>
HWY_NOINLINE void MaskedShiftedBlock(D d, const EdgeBlock<D>& e, const T* x, const T* weight,
                                     int64_t K, T bias, T* y) {
  MaskedShiftedBlockInline<J>(d, e, x, weight, K, bias, y);
}
template <class D, class T>
using MaskedShiftedBlockFn = void (*)(D, const EdgeBlock<D>&, const T*, const T*, int64_t, T, T*);
template <class D, class T, size_t... J>
MaskedShiftedBlockFn<D, T> MaskedShiftedBlockOf(int64_t vectors, std::index_sequence<J...>) {
  static constexpr MaskedShiftedBlockFn<D, T> kBlocks[] = {&MaskedShiftedBlock<J + 1, D, T>...};
  return kBlocks[vectors - 1];
}

// The edge block of `vectors` output vectors from `vector` of rows whose
// output 0 reads input first (the row holds [0, length)), `count` outputs.
template <class D>
EdgeBlock<D> PlanEdgeBlock(D d, int64_t vector, int64_t vectors, int64_t first, int64_t length,
                           int64_t count) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  EdgeBlock<D> e;
  e.vector = vector;
  InsideMasks<EdgeBlock<D>::kMaxVectors + 2>(d, first + vector * N, length, e.inside);
  const int64_t last_outputs = std::min(count - (vector + vectors - 1) * N, N);
  e.stored = hn::FirstN(d, static_cast<size_t>(last_outputs));
  return e;
}

// y[l] = bias + sum_k weight[k] * x[start + l + k] for l < (J - 1) * N +
// last (the last vector stores only its first `last` lanes), reading
// row[start, start + (J + 2) * N).
template <size_t J, unsigned kMask, class D, class T>
HWY_INLINE void ShiftedBlock(D d, const T* row, int64_t start, const T* weight, int64_t K, T bias,
                             T* y, int64_t last) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const T* x = row + start;
  Vec<D> whole[J + 2];
  HWY_UNROLL(16)
  for (size_t m = 0; m < J + 2; ++m) whole[m] = hn::LoadU(d, x + static_cast<int64_t>(m) * N);
  Vec<D> acc[J];
  Fill<D>(acc, hn::Set(d, bias), std::make_index_sequence<J>());
  ShiftedResidues<J, kMask>(d, acc, whole, x, weight, K,
                            std::make_index_sequence<static_cast<size_t>(N)>());
  StoreBlock(d, acc, y, N, std::make_index_sequence<J - 1>());
  T* y_last = y + static_cast<int64_t>(J - 1) * N;
  if (last == N) {
    hn::StoreU(acc[J - 1], d, y_last);
  } else {
    StoreFirst(d, acc[J - 1], y_last, last);
  }
}
template <size_t J, unsigned kMask, class D, class T>
HWY_INLINE void AnyShiftedBlock(D d, const T* row, int64_t length, int64_t start, const T* weight,
                                int64_t K, T bias, T* y, int64_t last) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  if (start >= 0 && start + static_cast<int64_t>(J + 2) * N <= length) {
    ShiftedBlock<J, kMask>(d, row, start, weight, K, bias, y, last);
  } else {
    const EdgeBlock<D> edge = PlanEdgeBlock(d, 0, static_cast<int64_t>(J), start, length,
                                            static_cast<int64_t>(J - 1) * N + last);
    MaskedShiftedBlockInline<J>(d, edge, row + start, weight, K, bias, y);
  }
}
template <size_t J, unsigned kMask, class D, class T>
HWY_INLINE void ShiftedTail(D d, const T* row, int64_t length, int64_t start, const T* weight,
                            int64_t K, T bias, T* y, int64_t vectors, int64_t last) {
  if constexpr (J > 1) {
    if (vectors < static_cast<int64_t>(J)) {
      return ShiftedTail<J - 1, kMask>(d, row, length, start, weight, K, bias, y, vectors, last);
    }
  }
  AnyShiftedBlock<J, kMask>(d, row, length, start, weight, K, bias, y, last);
}

// y[l] = bias + sum_k weight[k] * xpad[start + l + k] for l < count, K <= 2N,
// xpad the row of `length` zero-extended on both sides.
template <class D, class T>
HWY_NOINLINE void ShiftedRow(D d, const T* row, int64_t length, int64_t start, const T* weight,
                             int64_t K, T bias, T* y, int64_t count) {
  constexpr unsigned kMask = kLoadedResidues;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  constexpr auto J = static_cast<int64_t>(kShiftedVectors);
  const int64_t vectors = (count + N - 1) / N;
  int64_t v = 0;
#ifdef CONV1D_HAVE_WIDE_ROW_BLOCK
  // float rows with two taps on some residue: the hand-scheduled 12-vector
  // block wherever its whole input lies inside the row, this kernel's
  // blocks before (the left padding) and after.
  if constexpr (std::is_same_v<T, float> && N == 16) {
    if (K > N) {
      constexpr int64_t kWide = kWideBlockVectors;
      for (; v + kWide < vectors; v += J) {
        if (start + v * N >= 0) break;
        AnyShiftedBlock<kShiftedVectors, kMask>(d, row, length, start + v * N, weight, K, bias,
                                                y + v * N, N);
      }
      for (; v + kWide < vectors && start + (v + kWideBlockInputVectors) * N <= length;
           v += kWide) {
        WideRowBlock(row + start + v * N, weight, bias, K, y + v * N);
      }
    }
  }
#endif
  for (; v + J < vectors; v += J) {
    AnyShiftedBlock<kShiftedVectors, kMask>(d, row, length, start + v * N, weight, K, bias,
                                            y + v * N, N);
  }
  ShiftedTail<kShiftedVectors, kMask>(d, row, length, start + v * N, weight, K, bias, y + v * N,
                                      vectors - v, count - (vectors - 1) * N);
}

// Rows of one block (up to J output vectors): the block inlined in the row
// loop, its masks in registers (~1.3-1.5x faster than a call per row on
// rows of 16-48 outputs).
template <size_t J, class D, class T>
HWY_INLINE void OneBlockRows(D d, const InPlaceRows<T>& r, int64_t K, int64_t vectors) {
  if constexpr (J > 1) {
    if (vectors < static_cast<int64_t>(J)) return OneBlockRows<J - 1>(d, r, K, vectors);
  }
  const EdgeBlock<D> e = PlanEdgeBlock(d, 0, static_cast<int64_t>(J), r.first, r.length, r.count);
  const T* x_row = r.x + r.first;
  int64_t multiplier = r.first_multiplier;
  for (int64_t row = 0; row < r.rows; ++row) {
    MaskedShiftedBlockInline<J>(d, e, x_row, r.weight + row * K, K, r.bias[row],
                                r.y + row * r.y_stride);
    if (++multiplier == r.out_per_group) {
      multiplier = 0;
      x_row += r.x_stride;
    }
  }
}

// Zero-padded rows read in place, all rows of a task in one call (ShiftedRow
// per row costs ~15 ns besides its blocks: K = 7 rows of 100 outputs ran at
// a third of the FMA rate). The rows share their geometry, so the blocks
// that reach past a row's ends (at most one before, a few after) and their
// load and store masks are planned once per task; each row then runs its
// edge blocks through masks and its interior as ShiftedRow does.
template <class D, class T>
HWY_NOINLINE void ShiftedRows(D d, const InPlaceRows<T>& r, int64_t K) {
  constexpr unsigned kMask = kLoadedResidues;
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  constexpr auto J = static_cast<int64_t>(kShiftedVectors);
  using Sequence = std::make_index_sequence<kShiftedVectors>;
  const int64_t vectors = (r.count + N - 1) / N;
  if (vectors <= J) return OneBlockRows<kShiftedVectors>(d, r, K, vectors);
  // Interior blocks [interior_begin, interior_end) of whole vectors read
  // inside the row: block at v reads x[first + vN, first + (v + J + 2)N).
  const auto inside = [&](int64_t v, int64_t block) {
    return r.first + v * N >= 0 && r.first + (v + block + 2) * N <= r.length &&
           v + block <= r.count / N;
  };
  // One edge block before the interior, and after it as many as fit.
  constexpr int kMaxEdgeBlocks = 4;
  EdgeBlock<D> edges[kMaxEdgeBlocks];
  MaskedShiftedBlockFn<D, T> edge_fns[kMaxEdgeBlocks] = {};
  int edge_count = 0;
  int64_t interior_begin = 0;
  if (r.first < 0) {
    interior_begin = std::min(J, vectors);
    edges[0] = PlanEdgeBlock(d, 0, interior_begin, r.first, r.length, r.count);
    edge_fns[0] = MaskedShiftedBlockOf<D, T>(interior_begin, Sequence());
    edge_count = 1;
  }
  bool wide = false;
#ifdef CONV1D_HAVE_WIDE_ROW_BLOCK
  if constexpr (std::is_same_v<T, float> && N == 16) wide = K > N;
#endif
  // Interior: wide blocks (float rows with two taps on some residue), then
  // blocks of J, then whatever is left as edge blocks of at most J.
  int64_t wide_end = interior_begin;
  if (wide) {
    while (inside(wide_end, kWideBlockVectors)) wide_end += kWideBlockVectors;
  }
  int64_t interior_end = wide_end;
  while (inside(interior_end, J)) interior_end += J;
  const int64_t rest = vectors - interior_end;
  const int64_t rest_blocks = (rest + J - 1) / J;
  // Padding past K - 1 (zeros: any width) can leave more edge blocks than
  // the plan holds: those rows end through ShiftedRow.
  const bool planned_rest = rest_blocks <= kMaxEdgeBlocks - edge_count;
  for (int64_t b = 0, v = interior_end; planned_rest && b < rest_blocks; ++b) {
    const int64_t block = (vectors - v + (rest_blocks - b) - 1) / (rest_blocks - b);
    edges[edge_count] = PlanEdgeBlock(d, v, block, r.first, r.length, r.count);
    edge_fns[edge_count] = MaskedShiftedBlockOf<D, T>(block, Sequence());
    ++edge_count;
    v += block;
  }
  const T* x_row = r.x + r.first;
  int64_t multiplier = r.first_multiplier;
  for (int64_t row = 0; row < r.rows; ++row) {
    const T* weight = r.weight + row * K;
    const T bias = r.bias[row];
    T* y = r.y + row * r.y_stride;
    int e = 0;
    if (r.first < 0) {
      edge_fns[0](d, edges[0], x_row, weight, K, bias, y);
      e = 1;
    }
    int64_t v = interior_begin;
#ifdef CONV1D_HAVE_WIDE_ROW_BLOCK
    if constexpr (std::is_same_v<T, float> && N == 16) {
      for (; v < wide_end; v += kWideBlockVectors) {
        WideRowBlock(x_row + v * N, weight, bias, K, y + v * N);
      }
    }
#endif
    for (; v < interior_end; v += J) {
      ShiftedBlock<kShiftedVectors, kMask>(d, x_row, v * N, weight, K, bias, y + v * N, N);
    }
    for (; e < edge_count; ++e) {
      edge_fns[e](d, edges[e], x_row + edges[e].vector * N, weight, K, bias,
                  y + edges[e].vector * N);
    }
    if (!planned_rest && v < vectors) {
      ShiftedRow(d, x_row - r.first, r.length, r.first + v * N, weight, K, bias, y + v * N,
                 r.count - v * N);
    }
    if (++multiplier == r.out_per_group) {
      multiplier = 0;
      x_row += r.x_stride;
    }
  }
}
#else
template <class D, class T>
void ShiftedRow(D, const T*, int64_t, int64_t, const T*, int64_t, T, T*, int64_t) {}
template <class D, class T>
void ShiftedRows(D, const InPlaceRows<T>&, int64_t) {}
#endif

template <class D, class T>
void ChannelTask(D d, const Args<T>& args, int64_t task, void* scratch) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const Geometry& g = *args.geometry;
  const TensorRef<const T>& in = args.input;
  const TensorRef<T>& out = args.output;
  const TaskIndex index = decode(g, task);
  const int64_t l0 = index.tile * g.tile_length;
  const int64_t l1 = std::min(l0 + g.tile_length, g.out_length);
  const int64_t s = g.stride, K = g.kernel_size;
  // Channels-last with a short kernel (memory bound): the interior of the
  // whole blocks runs position-major, the rest block by block.
  const int64_t full_end = std::min(index.block_end, g.out_channels / N);
  int64_t inner0 = l1, inner1 = l1;
  if (g.blocks_fastest && K <= kMaxStreamedTaps && g.in_per_group == 1 && g.out_per_group == 1 &&
      in.channel_stride == 1 && out.channel_stride == 1 && full_end > index.block_begin) {
    const int64_t first = (g.pad_left + s - 1) / s;
    const int64_t last_start = g.length - 1 + g.pad_left - (K - 1) * g.dilation;
    const int64_t end = last_start < 0 ? first : last_start / s + 1;
    inner0 = std::clamp(first, l0, l1);
    inner1 = std::clamp(end, inner0, l1);
  }
  if (inner0 == inner1) {
    for (int64_t block = index.block_begin; block < index.block_end; ++block) {
      ChannelBlockTile(d, args, index.n, block, l0, l1, scratch);
    }
    return;
  }
  ChannelRun<T> run;
  const int64_t b0 = index.block_begin;
  run.x[0] =
      in.data + index.n * in.batch_stride + b0 * N + (inner0 * s - g.pad_left) * in.length_stride;
  run.step = s * in.length_stride;
  run.tap_step = g.dilation * in.length_stride;
  run.weight = args.weight + b0 * K * N;
  run.bias = args.bias + b0 * N;
  run.y = out.data + index.n * out.batch_stride + b0 * N + inner0 * out.length_stride;
  run.y_step = out.length_stride;
  run.count = inner1 - inner0;
  run.kernel_size = K;
  RunChannelsAcrossBlocks(d, run, full_end - b0);
  for (int64_t block = index.block_begin; block < index.block_end; ++block) {
    if (block >= full_end) {
      ChannelBlockTile(d, args, index.n, block, l0, l1, scratch);
      continue;
    }
    if (l0 < inner0) ChannelBlockTile(d, args, index.n, block, l0, inner0, scratch);
    if (inner1 < l1) ChannelBlockTile(d, args, index.n, block, inner1, l1, scratch);
  }
}

// Padded positions q0 + i (i < count) of one input row, de-interleaved into
// `stride` phases of `phase_length`: row[p * phase_length + t] = xpad[q0 + p
// + t * stride]; positions count..padded_count-1 are zeros (they feed only
// the discarded lanes of a last partial vector). Positions inside the row
// are copied (de-interleaving loads where the row is contiguous), only the
// padding goes through source_index.
template <class T>
void PackRow(const Geometry& g, const T* row, int64_t length_stride, int64_t q0, int64_t count,
             int64_t padded_count, int64_t phase_length, T* HWY_RESTRICT packed) {
  const int64_t s = g.stride;
  const int64_t inner0 = std::clamp<int64_t>(-q0, 0, count);
  const int64_t inner1 = std::clamp<int64_t>(g.length - q0, inner0, count);
  const auto padded = [&](int64_t i) {
    const int64_t src = i < count ? core::source_index(q0 + i, g.length, g.padding_mode) : -1;
    return src < 0 ? T(0) : row[src * length_stride];
  };
  if (s == 1) {
    for (int64_t i = 0; i < inner0; ++i) packed[i] = padded(i);
    const T* from = row + (q0 + inner0) * length_stride;
    if (length_stride == 1) {
      std::copy(from, from + (inner1 - inner0), packed + inner0);
    } else {
      for (int64_t i = inner0; i < inner1; ++i, from += length_stride) packed[i] = *from;
    }
    for (int64_t i = inner1; i < count; ++i) packed[i] = padded(i);
    std::fill(packed + count, packed + padded_count, T(0));
    return;
  }
  // Steps t whose s positions t*s .. t*s + s - 1 all lie inside the row.
  const int64_t t0 = (inner0 + s - 1) / s;
  const int64_t t1 = std::max(t0, inner1 / s);
  if (t1 > t0) {
    const T* from = row + (q0 + t0 * s) * length_stride;
    if (length_stride == 1) {
      CopyPhasesAnyStride(from, s, s, t1 - t0, phase_length, packed + t0);
    } else {
      for (int64_t p = 0; p < s; ++p) {
        for (int64_t t = t0; t < t1; ++t) {
          packed[p * phase_length + t] = from[(p + (t - t0) * s) * length_stride];
        }
      }
    }
  }
  for (int64_t p = 0; p < s; ++p) {
    T* phase = packed + p * phase_length;
    for (int64_t t = 0; t < t0 && p + t * s < padded_count; ++t) phase[t] = padded(p + t * s);
    for (int64_t t = t1; p + t * s < padded_count; ++t) phase[t] = padded(p + t * s);
  }
}

// Reflect, replicate and circular rows of 5..2N taps run as zero-padded
// rows read in place (ShiftedRows), then get the terms that their padding
// adds: w[k] * xpad[p] for each tap of an output that reads a padded
// position p outside [0, L). Those outputs lie within the padding's width
// of the row's ends. The padded values of a row sit in a zero-extended
// buffer, so tap k of N outputs is one unaligned load (positions inside the
// row read zeros: the rows counted them). Stride and dilation 1, as for
// every ShiftedRows row. Conformer's K = 31
// rows (15 padded positions a side) ran 1.2-1.35x slower than zero-padded
// ones as separate pieces on padded copies, 1.1-1.2x this way. Finite
// weights only: an infinite weight times the zero a row read would make
// NaN where PyTorch has the weight times a padded value.
constexpr int64_t kMaxPaddingTermsSpan = 256;      // buffer elements a side
constexpr int64_t kPaddingTermsBytes = 32 * 1024;  // rows' input and output a call
constexpr int64_t kMinPaddingTermsVectors = 32;    // output vectors of a task's rows
// The right padding of a stride-1, dilation-1 row.
inline int64_t pad_right_of(const Geometry& g) {
  return g.out_length - g.length - g.pad_left + g.kernel_size - 1;
}
inline bool padding_terms_fit(const Geometry& g) {
  return g.stride == 1 && g.dilation == 1 && g.in_per_group == 1 &&
         g.padding_mode != PaddingMode::zeros && 2 * g.pad_left <= kMaxPaddingTermsSpan - 64 &&
         g.kernel_size - 1 + pad_right_of(g) <= kMaxPaddingTermsSpan - 64;
}

// Sum over taps [k0, k1) of w[k] * buffer[at + k .. + N), in four
// independent FMA chains, tap k in chain k % 4 (k0 is rounded down: taps
// below it read zeros, which leave a chain as it was), so that a lane's sum
// does not depend on where its vector starts.
template <class D, class T>
HWY_INLINE Vec<D> PaddingTerms(D d, const T* w, const T* buffer, int64_t at, int64_t k0,
                               int64_t k1) {
  Vec<D> sums[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
  int64_t k = k0 / 4 * 4;
  for (; k + 4 <= k1; k += 4) {
    for (int64_t j = 0; j < 4; ++j) {
      sums[j] = hn::MulAdd(hn::Set(d, w[k + j]), hn::LoadU(d, buffer + at + k + j), sums[j]);
    }
  }
  for (; k < k1; ++k) {
    sums[0] = hn::MulAdd(hn::Set(d, w[k]), hn::LoadU(d, buffer + at + k), sums[0]);
  }
  return hn::Add(hn::Add(sums[0], sums[1]), hn::Add(sums[2], sums[3]));
}

// Adds those terms to the outputs [l0, l0 + r.count) of the rows of `r`
// (r.first = l0 - pad_left; the layout of in_place_rows in LengthTask).
template <class D, class T>
void AddPaddingTerms(D d, const Geometry& g, const InPlaceRows<T>& r, int64_t l0) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const int64_t K = g.kernel_size, L = g.length, pl = g.pad_left;
  const int64_t reach = K - 1;
  const int64_t pr = pad_right_of(g);
  const int64_t l1 = l0 + r.count;
  // Left: outputs [l0, min(l1, pl)); buffer j holds xpad[j - pl].
  const int64_t left_end = std::min(l1, pl);
  // Right: outputs from L + pl - reach on; buffer t holds xpad[L - reach + t].
  const int64_t right_begin = std::max(l0, L + pl - reach);
  if (left_end <= l0 && right_begin >= l1) return;
  // Each of kTermRows rows has its buffers, filled for all of them before
  // any is read: a vector load over values just stored one by one waits
  // for the stores to reach L1 (store forwarding fails), ~2x the cost.
  constexpr int64_t kTermRows = 4;
  constexpr int64_t kBuffer = kMaxPaddingTermsSpan + N;
  HWY_ALIGN T left[kTermRows][kBuffer];
  HWY_ALIGN T right[kTermRows][kBuffer];
  // Zeros where the loads reach past the padded values: inside the row,
  // or past the padding (lanes past the outputs).
  for (int64_t i = 0; i < kTermRows; ++i) {
    std::fill(left[i] + pl, left[i] + pl + N, T(0));
    std::fill(right[i], right[i] + reach, T(0));
    std::fill(right[i] + reach + pr, right[i] + reach + pr + N, T(0));
  }
  // Where each padded position reads (inside the row, for these modes):
  // the same for every row.
  int64_t left_source[kMaxPaddingTermsSpan];
  int64_t right_source[kMaxPaddingTermsSpan];
  for (int64_t j = 0; j < pl; ++j) left_source[j] = core::source_index(j - pl, L, g.padding_mode);
  for (int64_t t = 0; t < pr; ++t) right_source[t] = core::source_index(L + t, L, g.padding_mode);
  // Per vector of outputs: its first output and the taps it runs (the
  // same for every row).
  struct Chunk {
    int64_t at;  // first output, relative to l0
    int64_t count;
    int64_t from;  // buffer offset of tap 0
    int64_t k0, k1;
  };
  Chunk left_chunks[kMaxPaddingTermsSpan / N + 2];
  Chunk right_chunks[kMaxPaddingTermsSpan / N + 2];
  int64_t left_count = 0, right_count = 0;
  for (int64_t l = l0; l < left_end; l += N) {
    // Taps up to the last that lane 0 reads before the row.
    left_chunks[left_count++] = {l - l0, std::min(N, left_end - l), l, 0, std::min(K, pl - l)};
  }
  for (int64_t l = right_begin; l < l1; l += N) {
    // Taps from the first that some lane reads past the row.
    right_chunks[right_count++] = {l - l0, std::min(N, l1 - l), l - pl - (L - reach),
                                   std::max<int64_t>(0, L - (l + N - 1 - pl)), K};
  }
  const auto add = [&](const Chunk& c, const T* w, const T* buffer, T* y) {
    const Vec<D> terms = PaddingTerms(d, w, buffer, c.from, c.k0, c.k1);
    T* at = y + c.at;
    StoreFirst(d, hn::Add(LoadFirst(d, at, c.count), terms), at, c.count);
  };
  const T* x_row = r.x;
  int64_t multiplier = r.first_multiplier;
  for (int64_t row0 = 0; row0 < r.rows; row0 += kTermRows) {
    const int64_t rows = std::min(kTermRows, r.rows - row0);
    for (int64_t i = 0; i < rows; ++i) {
      if (left_count > 0) {
        for (int64_t j = 0; j < pl; ++j) left[i][j] = x_row[left_source[j]];
      }
      if (right_count > 0) {
        for (int64_t t = 0; t < pr; ++t) right[i][reach + t] = x_row[right_source[t]];
      }
      if (++multiplier == r.out_per_group) {
        multiplier = 0;
        x_row += r.x_stride;
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      const T* w = r.weight + (row0 + i) * K;
      T* y = r.y + (row0 + i) * r.y_stride;
      for (int64_t c = 0; c < left_count; ++c) add(left_chunks[c], w, left[i], y);
      for (int64_t c = 0; c < right_count; ++c) add(right_chunks[c], w, right[i], y);
    }
  }
}

template <class D, class T>
void LengthTask(D d, const Args<T>& args, int64_t task, void* scratch) {
  constexpr auto N = static_cast<int64_t>(hn::MaxLanes(D()));
  const Geometry& g = *args.geometry;
  const TensorRef<const T>& in = args.input;
  const TensorRef<T>& out = args.output;
  const TaskIndex index = decode(g, task);
  const int64_t n = index.n;
  const int64_t l0 = index.tile * g.tile_length;
  const int64_t l1 = std::min(l0 + g.tile_length, g.out_length);
  const int64_t co_begin = index.block_begin * g.channel_block;
  const int64_t co_end = std::min(index.block_end * g.channel_block, g.out_channels);
  const int64_t s = g.stride, K = g.kernel_size, dil = g.dilation;
  const int64_t taps = g.in_per_group * K;

  // The layout of scratch_bytes().
  const int64_t slack = kRowSlackVectors * N;
  const int64_t phase_length = row_phase_length(g, N);
  const size_t packed_bytes =
      round_up_64(static_cast<size_t>(packed_row_elements(g, N)) * sizeof(T));
  auto* bytes = static_cast<unsigned char*>(scratch);
  T* packed = reinterpret_cast<T*>(bytes);
  T* row_out = reinterpret_cast<T*>(bytes + static_cast<size_t>(g.in_per_group) * packed_bytes);
  const int64_t packed_pitch = static_cast<int64_t>(packed_bytes / sizeof(T));
  const T** tap_pointers = reinterpret_cast<const T**>(
      bytes + static_cast<size_t>(g.in_per_group) * packed_bytes +
      round_up_64(static_cast<size_t>(g.tile_length + slack) * sizeof(T)));

  // Pieces [l0, a) and [b, l1) are packed: they touch the padding (or the
  // rows are strided) and end in a partial vector computed over zeros.
  // [a, b) reads stride-1 rows in place. Piece boundaries fall on whole
  // register blocks: a block of one vector is a single FMA chain, latency
  // bound (K = 31: ~124 cycles for 16 outputs), so short edge pieces would
  // cost as much as the interior.
  const bool in_place = s == 1 && in.length_stride == 1;
  // AVX-512 rows of kMinShiftedTaps or more taps shift whole loads
  // (ShiftedRow) rather than holding the weights in registers.
  const bool shifted_taps =
      kShiftedRows && in_place && g.in_per_group == 1 && K <= 2 * N && K >= kMinShiftedTaps;
  const bool shared =
      (taps > static_cast<int64_t>(kRegisterTaps) || shifted_taps) && shares_row_loads(g, N);
  const int64_t quantum = shared ? static_cast<int64_t>(kPositions) * N : N;
  const int64_t first = std::clamp(g.pad_left, l0, l1);
  const int64_t end = g.length + g.pad_left - (K - 1) * dil;  // taps past L from here
  int64_t a = l0, b = l0;
  if (in_place) {
    a = std::min(l1, l0 + (first - l0 + quantum - 1) / quantum * quantum);
    // Register-tap rows mask their last partial vector instead.
    b = shared ? a + (std::clamp(end, a, l1) - a) / quantum * quantum : std::clamp(end, a, l1);
  }
  const bool out_in_place = out.length_stride == 1;
  // Zero padding reads in place too where masked loads cover the edges
  // (Mamba's K = 4 rows: the packed edge pieces cost ~40% of the time).
  const bool padded_in_place = kMaskedRowEdges && g.padding_mode == PaddingMode::zeros;
  // The task's rows, read and written in place in one call.
  const auto in_place_rows = [&] {
    InPlaceRows<T> rows;
    rows.x = in.data + n * in.batch_stride + co_begin / g.out_per_group * in.channel_stride;
    rows.x_stride = in.channel_stride;
    rows.first = l0 - g.pad_left;
    rows.weight = args.weight + co_begin * taps;
    rows.bias = args.bias + co_begin;
    rows.y = out.data + n * out.batch_stride + co_begin * out.channel_stride + l0;
    rows.y_stride = out.channel_stride;
    rows.rows = co_end - co_begin;
    rows.count = l1 - l0;
    rows.out_per_group = g.out_per_group;
    rows.first_multiplier = co_begin % g.out_per_group;
    return rows;
  };
  if (in_place && out_in_place && !shared && ((a == l0 && b == l1) || padded_in_place) &&
      taps <= static_cast<int64_t>(kRegisterTaps) && g.in_per_group == 1 && g.out_per_group == 1) {
    InPlaceRows<T> rows = in_place_rows();
    rows.length = padded_in_place ? g.length : 0;
    rows.tap_step = dil;
    return RowsDispatch<kRegisterTaps>(d, rows, taps);
  }
  const int64_t dil_phase = dil % s, dil_offset = dil / s;
  // ShiftedRow when the taps fit. With zero padding it reads the whole tile
  // in place (masked loads past the row's ends); with the other modes the
  // interior's whole blocks whose inputs lie inside the row do, and the
  // edges run on a padded copy.
  const bool shifted = shared && shifted_taps;
  // Other padding modes on long shifted rows: zero-padded rows plus their
  // padding's terms (AddPaddingTerms). On rows of fewer than
  // kMinPaddingTermsVectors vectors the terms cost about what the row's
  // FMAs do (K = 15, 100 outputs: 2x the zero-padded row), and rows of a
  // few 8-vector blocks, all at an edge, read as slow as their packed edges
  // or slower (K = 31, 256 outputs); on Mamba's K = 4 register rows they
  // were no faster than packed edges either.
  const bool padding_terms = shifted && out_in_place && args.finite_weights &&
                             padding_terms_fit(g) && l1 - l0 >= kMinPaddingTermsVectors * N;
  int64_t shifted_begin = l0, shifted_end = l1;
  if (shifted && g.padding_mode != PaddingMode::zeros && !padding_terms) {
    // Blocks at output l read x[l - pad_left, l - pad_left + block + 2N).
    const int64_t block = static_cast<int64_t>(kShiftedVectors) * N;
    const int64_t start = std::max(l0, g.pad_left);
    shifted_begin = std::min(l1, l0 + (start - l0 + block - 1) / block * block);
    const int64_t last = g.length + g.pad_left - block - 2 * N;  // last in-place block start
    shifted_end = shifted_begin;
    if (last >= shifted_begin) {
      shifted_end =
          shifted_begin +
          std::min((last - shifted_begin) / block + 1, (l1 - shifted_begin) / block) * block;
    }
  }
  if (shifted && (g.padding_mode == PaddingMode::zeros || padding_terms) && out_in_place) {
    InPlaceRows<T> rows = in_place_rows();
    rows.length = g.length;
    if (!padding_terms) return ShiftedRows(d, rows, K);
    // A few rows at a time, so that their ends are still in L1 for the
    // terms.
    const auto row_bytes =
        static_cast<int64_t>(sizeof(T)) * (input_span(g, rows.count) + rows.count);
    const int64_t block = std::max<int64_t>(1, kPaddingTermsBytes / row_bytes);
    for (int64_t r0 = 0; r0 < rows.rows; r0 += block) {
      InPlaceRows<T> part = rows;
      const int64_t position = rows.first_multiplier + r0;
      part.x = rows.x + position / rows.out_per_group * rows.x_stride;
      part.first_multiplier = position % rows.out_per_group;
      part.weight = rows.weight + r0 * K;
      part.bias = rows.bias + r0;
      part.y = rows.y + r0 * rows.y_stride;
      part.rows = std::min(block, rows.rows - r0);
      ShiftedRows(d, part, K);
      AddPaddingTerms(d, g, part, l0);
    }
    return;
  }
  // Where one piece alone is packed, the channels of a group (a depth
  // multiplier) share its packed rows.
  const int64_t pieces_packed =
      (shifted ? (shifted_begin > l0) + (shifted_end < l1) : (a > l0) + (l1 > b));
  int64_t packed_group = -1;
  for (int64_t co = co_begin; co < co_end; ++co) {
    const T* rows[kMaxInPerGroup];
    const int64_t group = g.out_per_group == 1 ? co : co / g.out_per_group;
    const bool repack = pieces_packed != 1 || group != packed_group;
    packed_group = group;
    for (int64_t ci = 0; ci < g.in_per_group; ++ci) {
      rows[ci] = in.data + n * in.batch_stride + (group * g.in_per_group + ci) * in.channel_stride;
    }
    const T* weight = args.weight + co * taps;
    T* y_row = out.data + n * out.batch_stride + co * out.channel_stride;
    T* y_shifted = out_in_place ? y_row + l0 : row_out;
    int64_t row_pieces[4] = {l0, a, b, l1};
    if (shifted) {
      row_pieces[1] = shifted_begin;
      row_pieces[2] = shifted_end;
    }
    for (int piece = 0; piece < 3; ++piece) {
      const int64_t pa = row_pieces[piece], pb = row_pieces[piece + 1];
      if (pa >= pb) continue;
      const int64_t q0 = pa * s - g.pad_left;
      const int64_t count = pb - pa;
      const int64_t vectors = (count + N - 1) / N * N;
      if (shifted) {
        const T* x = rows[0];
        int64_t length = g.length, start = q0;
        if (piece != 1) {
          if (repack) {
            PackRow(g, rows[0], in.length_stride, q0, input_span(g, count), vectors + 2 * N,
                    phase_length, packed);
          }
          x = packed;
          length = vectors + 2 * N;
          start = 0;
        }
        ShiftedRow(d, x, length, start, weight, K, args.bias[co], y_shifted + (pa - l0), count);
        continue;
      }
      for (int64_t ci = 0; ci < g.in_per_group; ++ci) {
        T* row = packed + ci * packed_pitch;
        if (piece != 1 && repack) {
          PackRow(g, rows[ci], in.length_stride, q0, input_span(g, count), input_span(g, vectors),
                  phase_length, row);
        }
        // Tap k reads phase (k * dil) % s at (k * dil) / s, stepped without
        // divisions (~25 cycles each, per tap and row).
        const T* base = piece == 1 ? rows[ci] + q0 : row;
        const int64_t tap_count = shared ? 1 : K;
        int64_t phase = 0, offset = 0;
        for (int64_t k = 0; k < tap_count; ++k) {
          tap_pointers[ci * K + k] =
              piece == 1 ? base + k * dil : base + phase * phase_length + offset;
          phase += dil_phase;
          offset += dil_offset;
          if (phase >= s) {
            phase -= s;
            ++offset;
          }
        }
      }
      const int64_t outputs = piece == 1 && !shared ? count : vectors;
      const bool direct = out_in_place && outputs == count;
      T* y = direct ? y_row + pa : row_out + (pa - l0);
      if (shared) {
        const T* rows_at[kMaxInPerGroup];
        for (int64_t ci = 0; ci < g.in_per_group; ++ci) rows_at[ci] = tap_pointers[K * ci];
        SharedRow(d, rows_at, weight, g.in_per_group, K, args.bias[co], y, vectors);
      } else {
        RowDispatch<kRegisterTaps>(d, tap_pointers, weight, taps, args.bias[co], y, outputs);
      }
      if (out_in_place && !direct) std::copy(y, y + count, y_row + pa);
    }
    if (!out_in_place) {
      for (int64_t l = l0; l < l1; ++l) y_row[l * out.length_stride] = row_out[l - l0];
    }
  }
}

template <class T>
void RunTask(const Args<T>& args, int64_t task, void* scratch) {
  const hn::ScalableTag<T> d;
  if (args.geometry->shape == Shape::channel_vectors) {
    ChannelTask(d, args, task, scratch);
  } else {
    LengthTask(d, args, task, scratch);
  }
}

const Target* GetTarget() {
  static const Target target = {
      static_cast<int>(hn::Lanes(hn::ScalableTag<float>())),
      static_cast<int>(hn::Lanes(hn::ScalableTag<double>())),
      static_cast<int>(kPositions),
      static_cast<int>(kTaps),
      &RunTask<float>,
      &RunTask<double>,
  };
  return &target;
}

}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::depthwise
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace conv1d::kernels::depthwise {

HWY_EXPORT(GetTarget);

const Target& chosen_target() {
  core::chosen_target();
  return *HWY_DYNAMIC_DISPATCH(GetTarget)();
}

}  // namespace conv1d::kernels::depthwise
#endif  // HWY_ONCE
