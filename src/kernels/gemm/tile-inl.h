// The register-tile GEMM step shared by the direct and the fused separable
// kernels, compiled once per Highway target: include it after
// hwy/foreach_target.h and hwy/highway.h (hence the per-target include
// guard below, as Highway's own -inl.h headers do).
#if defined(CONV1D_KERNELS_GEMM_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONV1D_KERNELS_GEMM_TILE_INL_H_
#undef CONV1D_KERNELS_GEMM_TILE_INL_H_
#else
#define CONV1D_KERNELS_GEMM_TILE_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::gemm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// 6 x 4 zmm accumulators (6 rows x 64 floats) + 4 vector operands + 1
// broadcast = 29 of 32 registers; 10 loads per 24 FMAs keeps both FMA pipes
// busy with the load ports to spare (12 x 2 measured ~5% slower).
constexpr size_t kRows = 6;
constexpr size_t kVectors = 4;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
// One lane: 16 scalar accumulators, for portability rather than speed.
constexpr size_t kRows = 4;
constexpr size_t kVectors = 4;
#else
// 16 registers: 4 x 3 accumulators + 3 operands + 1 broadcast.
constexpr size_t kRows = 4;
constexpr size_t kVectors = 3;
#endif

// Where a tile's broadcast operands come from, per reduction step:
// - rows_per_step: kRows packed values (weights), one per tile row, with a
//   bias per tile row; rows_per_step_streamed also prefetches them, for
//   weights that stream from L2 or beyond (direct: all output channels'
//   panels of a chunk pass through each staged input);
// - offsets / consecutive: element m * row_pitch of a row that starts at
//   broadcasts + offsets[step] (direct: staged input) or broadcasts + step
//   (separable: the depthwise tile), with a bias per vector lane;
//   offsets_prefetching also brings `prefetch_lines` lines from `prefetch`
//   on into L2, one a step (direct: the next weight panel, where it comes
//   from beyond L2 and only a few tiles share each panel).
enum class Broadcasts {
  rows_per_step,
  rows_per_step_streamed,
  offsets,
  offsets_prefetching,
  consecutive
};

// Where a step's vector operand starts: vector_pitch elements after the
// previous step's (pitched), or at vectors + vector_offsets[step] (offsets:
// direct reads taps of staged input rows, so a step's vectors need not be
// aligned).
enum class VectorRows { pitched, offsets };

template <class T>
struct TileArgs {
  // Rows of kVectors * Lanes elements, one per reduction step, vector_pitch
  // elements apart and 64-byte aligned (VectorRows::pitched), or at
  // vector_offsets[step] (VectorRows::offsets).
  const T* vectors;
  size_t vector_pitch;
  const int64_t* vector_offsets;
  const T* broadcasts;
  const int64_t* offsets;  // Broadcasts::offsets and offsets_prefetching
  uintptr_t prefetch;      // Broadcasts::offsets_prefetching only
  size_t prefetch_lines;
  size_t row_pitch;  // offsets (either kind) and consecutive only
  size_t steps;      // >= 1
  const T* bias;
  // Accumulating tiles start from `partial` (may be `out`); every tile
  // stores to `out`.
  const T* partial;
  size_t partial_pitch;
  T* out;
  size_t out_pitch;  // elements between tile rows in `out`
};

// Prefetches the line holding `address` into L1 (kToL1) or L2. Integer
// arithmetic: the address may lie past an array (prefetches never fault),
// and GCC deletes loops of __builtin_prefetch alone, so x86 uses an asm
// prefetch.
template <bool kToL1>
HWY_INLINE void PrefetchLine(uintptr_t address) {
  const auto* line = reinterpret_cast<const char*>(address);
#if HWY_ARCH_X86 && (HWY_COMPILER_GCC || HWY_COMPILER_CLANG)
  if constexpr (kToL1) {
    asm volatile("prefetcht0 %0" : : "m"(*line));
  } else {
    asm volatile("prefetcht1 %0" : : "m"(*line));
  }
#else
  hwy::Prefetch(line);
#endif
}

// Prefetches the packed weights 1 KiB (~40 steps, ~500 cycles) ahead of
// `p`. The stream is contiguous across tile calls, but the hardware
// prefetcher restarts at every 4 KiB page; on layers whose weights come
// from L3 this measured 2-5% faster.
HWY_INLINE void PrefetchAhead(const void* p) {
  PrefetchLine<true>(reinterpret_cast<uintptr_t>(p) + 1024);
}

// out[m][i] = (Accumulate ? partial[m][i] : bias) + sum_r b[r][m] * v[r][i]
// for m < M, i < NV * Lanes: per step, NV vector loads and M broadcasts feed
// M * NV FMAs. The order over r is the same for every tile shape, so
// results do not depend on the tiling or the thread count. Branch-free
// (Accumulate is a template parameter) so that GCC keeps the accumulators
// in registers from the first load to the last store.
template <Broadcasts kFrom, VectorRows kRowsFrom, size_t M, size_t NV, bool Accumulate, class T>
void Tile(const TileArgs<T>& a) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t lanes = hn::Lanes(d);
  // Locals, not members of `a`: stores through `out` could alias them.
  T* HWY_RESTRICT out = a.out;
  const size_t out_pitch = a.out_pitch;
  const size_t vector_pitch = a.vector_pitch;
  const size_t row_pitch = a.row_pitch;
  // Broadcast rows kChain apart start a pointer each (offsets and
  // consecutive broadcasts): GCC steps through the rows by adding
  // row_pitch, and one chain of 23 adds would take longer than the step's
  // FMAs.
  constexpr size_t kChain = 6;
  const size_t chain_pitch = kChain * row_pitch;
  constexpr bool kPerRow =
      kFrom == Broadcasts::rows_per_step || kFrom == Broadcasts::rows_per_step_streamed;
  V acc[M][NV];
  // Every loop over the tile unrolled, or GCC keeps a tile of 24 rows (the
  // channel vectors of 16 output channels) in memory.
  HWY_UNROLL(32)
  for (size_t m = 0; m < M; ++m) {
    HWY_UNROLL(4)
    for (size_t v = 0; v < NV; ++v) {
      if constexpr (Accumulate) {
        acc[m][v] = hn::LoadU(d, a.partial + m * a.partial_pitch + v * lanes);
      } else if constexpr (kPerRow) {
        acc[m][v] = hn::Set(d, a.bias[m]);
      } else {
        acc[m][v] = hn::LoadU(d, a.bias + v * lanes);
      }
    }
  }
  const T* HWY_RESTRICT vectors = a.vectors;
  const T* HWY_RESTRICT broadcasts = a.broadcasts;
  const int64_t* HWY_RESTRICT offsets = a.offsets;
  const int64_t* HWY_RESTRICT vector_offsets = a.vector_offsets;
  size_t steps = a.steps;
  uintptr_t prefetch = a.prefetch;
  size_t prefetch_lines = a.prefetch_lines;
  // A do-while (steps >= 1) spares GCC a zero-trip path that would stage
  // the accumulators on the stack.
  do {
    V x[NV];
    if constexpr (kRowsFrom == VectorRows::offsets) {
      const T* HWY_RESTRICT row = vectors + *vector_offsets++;
      HWY_UNROLL(4)
      for (size_t v = 0; v < NV; ++v) x[v] = hn::LoadU(d, row + v * lanes);
    } else {
      HWY_UNROLL(4)
      for (size_t v = 0; v < NV; ++v) x[v] = hn::Load(d, vectors + v * lanes);
    }
    if constexpr (kPerRow) {
      if constexpr (kFrom == Broadcasts::rows_per_step_streamed) PrefetchAhead(broadcasts);
      HWY_UNROLL(32)
      for (size_t m = 0; m < M; ++m) {
        const V b = hn::Set(d, broadcasts[m]);
        HWY_UNROLL(4)
        for (size_t v = 0; v < NV; ++v) acc[m][v] = hn::MulAdd(b, x[v], acc[m][v]);
      }
      broadcasts += kRows;
    } else {
      const T* HWY_RESTRICT row;
      if constexpr (kFrom == Broadcasts::offsets_prefetching) {
        // Branch-free: once done, the last line again (an L2 hit).
        PrefetchLine<false>(prefetch);
        const size_t more = prefetch_lines != 0 ? 1 : 0;
        prefetch += more * 64;
        prefetch_lines -= more;
      }
      if constexpr (kFrom == Broadcasts::offsets || kFrom == Broadcasts::offsets_prefetching) {
        row = broadcasts + *offsets++;
      } else {
        row = broadcasts++;
      }
      const T* HWY_RESTRICT starts[(M + kChain - 1) / kChain];
      HWY_UNROLL(8)
      for (size_t c = 0; c < (M + kChain - 1) / kChain; ++c) starts[c] = row + c * chain_pitch;
      HWY_UNROLL(32)
      for (size_t m = 0; m < M; ++m) {
        const V b = hn::Set(d, starts[m / kChain][(m % kChain) * row_pitch]);
        HWY_UNROLL(4)
        for (size_t v = 0; v < NV; ++v) acc[m][v] = hn::MulAdd(b, x[v], acc[m][v]);
      }
    }
    if constexpr (kRowsFrom == VectorRows::pitched) vectors += vector_pitch;
  } while (--steps != 0);
  HWY_UNROLL(32)
  for (size_t m = 0; m < M; ++m) {
    HWY_UNROLL(4)
    for (size_t v = 0; v < NV; ++v) hn::StoreU(acc[m][v], d, out + m * out_pitch + v * lanes);
  }
}

template <Broadcasts kFrom, size_t M, size_t NV, class T,
          VectorRows kRowsFrom = VectorRows::pitched>
HWY_INLINE void CallTile(const TileArgs<T>& a, bool accumulate) {
  if (accumulate) {
    Tile<kFrom, kRowsFrom, M, NV, true>(a);
  } else {
    Tile<kFrom, kRowsFrom, M, NV, false>(a);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::gemm
HWY_AFTER_NAMESPACE();

#endif  // CONV1D_KERNELS_GEMM_TILE_INL_H_
