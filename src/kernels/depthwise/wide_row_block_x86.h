// A hand-scheduled block of the AVX-512 shifted-row depthwise kernel:
// float rows, stride = dilation = 1, 17..32 taps (two taps per residue).
//
// Why assembly: the block needs 12 accumulators, 14 input vectors, two
// weights and a temporary, 29 of the 32 zmm registers. From intrinsics GCC
// keeps part of that in stack slots, and the 8-vector block it does compile
// well is bound by FMA latency (each accumulator is one chain of K FMAs, as
// long as the block's throughput time) and by the shuffles sharing a pipe
// with the FMAs. This block interleaves shifts (valignd) with cache-line
// split loads for the shifted vectors, so that neither the shuffle pipe nor
// the load ports saturate. Measured on one Zen 5 core, Conformer's K = 31
// rows: ~195 GFLOP/s with the rows in L1 and ~180 from L2/L3, against
// ~155-160 for the 8-vector intrinsics block.
//
// Sums run in the order of the intrinsics kernel (bias, then for each
// residue r = 0..15 tap r and tap r + 16), so the result does not depend on
// which block computed an output.
#ifndef CONV1D_KERNELS_DEPTHWISE_WIDE_ROW_BLOCK_X86_H_
#define CONV1D_KERNELS_DEPTHWISE_WIDE_ROW_BLOCK_X86_H_

#include <cstdint>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONV1D_HAVE_WIDE_ROW_BLOCK 1

namespace conv1d::kernels::depthwise {

// Output vectors of the block, and the input vectors it reads.
constexpr int64_t kWideBlockVectors = 12;
constexpr int64_t kWideBlockInputVectors = kWideBlockVectors + 2;

// Registers: accumulators zmm0-11, input vectors zmm12-25 (x[16m..] in
// zmm(12+m)), weights of taps r and r + 16 in zmm26/27, the shifted vector in
// zmm28, the bias in zmm29.
// clang-format off
#define CONV1D_WB_SHIFT(R, LO, HI) "valignd $" #R ", %%zmm" #LO ", %%zmm" #HI ", %%zmm28\n\t"
#define CONV1D_WB_LOAD(R, M) "vmovups " #M "*64+" #R "*4(%[x]), %%zmm28\n\t"
#define CONV1D_WB_TAP(A) "vfmadd231ps %%zmm28, %%zmm26, %%zmm" #A "\n\t"
#define CONV1D_WB_TAP16(A) "vfmadd231ps %%zmm28, %%zmm27, %%zmm" #A "\n\t"
// Residue R with taps R and R + 16: shifted vector m feeds tap R of output
// vector m and tap R + 16 of output vector m - 1. Even m shifted, odd m
// loaded.
#define CONV1D_WB_TWO_TAPS(R) \
  CONV1D_WB_SHIFT(R, 12, 13) CONV1D_WB_TAP(0) \
  CONV1D_WB_LOAD(R, 1)       CONV1D_WB_TAP(1)  CONV1D_WB_TAP16(0) \
  CONV1D_WB_SHIFT(R, 14, 15) CONV1D_WB_TAP(2)  CONV1D_WB_TAP16(1) \
  CONV1D_WB_LOAD(R, 3)       CONV1D_WB_TAP(3)  CONV1D_WB_TAP16(2) \
  CONV1D_WB_SHIFT(R, 16, 17) CONV1D_WB_TAP(4)  CONV1D_WB_TAP16(3) \
  CONV1D_WB_LOAD(R, 5)       CONV1D_WB_TAP(5)  CONV1D_WB_TAP16(4) \
  CONV1D_WB_SHIFT(R, 18, 19) CONV1D_WB_TAP(6)  CONV1D_WB_TAP16(5) \
  CONV1D_WB_LOAD(R, 7)       CONV1D_WB_TAP(7)  CONV1D_WB_TAP16(6) \
  CONV1D_WB_SHIFT(R, 20, 21) CONV1D_WB_TAP(8)  CONV1D_WB_TAP16(7) \
  CONV1D_WB_LOAD(R, 9)       CONV1D_WB_TAP(9)  CONV1D_WB_TAP16(8) \
  CONV1D_WB_SHIFT(R, 22, 23) CONV1D_WB_TAP(10) CONV1D_WB_TAP16(9) \
  CONV1D_WB_LOAD(R, 11)      CONV1D_WB_TAP(11) CONV1D_WB_TAP16(10) \
  CONV1D_WB_SHIFT(R, 24, 25)                   CONV1D_WB_TAP16(11)
// Residue R with tap R only (R + 16 >= K): vectors 2, 5, 8 and 11 loaded.
#define CONV1D_WB_ONE_TAP(R) \
  CONV1D_WB_SHIFT(R, 12, 13) CONV1D_WB_TAP(0) \
  CONV1D_WB_SHIFT(R, 13, 14) CONV1D_WB_TAP(1) \
  CONV1D_WB_LOAD(R, 2)       CONV1D_WB_TAP(2) \
  CONV1D_WB_SHIFT(R, 15, 16) CONV1D_WB_TAP(3) \
  CONV1D_WB_SHIFT(R, 16, 17) CONV1D_WB_TAP(4) \
  CONV1D_WB_LOAD(R, 5)       CONV1D_WB_TAP(5) \
  CONV1D_WB_SHIFT(R, 18, 19) CONV1D_WB_TAP(6) \
  CONV1D_WB_SHIFT(R, 19, 20) CONV1D_WB_TAP(7) \
  CONV1D_WB_LOAD(R, 8)       CONV1D_WB_TAP(8) \
  CONV1D_WB_SHIFT(R, 21, 22) CONV1D_WB_TAP(9) \
  CONV1D_WB_SHIFT(R, 22, 23) CONV1D_WB_TAP(10) \
  CONV1D_WB_LOAD(R, 11)      CONV1D_WB_TAP(11)
// Residue R in 1..15 (every one has a tap since K > 16): two taps while
// R + 16 < K. Numeric labels are local: each residue has its own 1: and 2:.
#define CONV1D_WB_RESIDUE(R) \
  "vbroadcastss " #R "*4(%[w]), %%zmm26\n\t" \
  "cmp $" #R "+16, %[k]\n\tjle 1f\n\t" \
  "vbroadcastss " #R "*4+64(%[w]), %%zmm27\n\t" \
  CONV1D_WB_TWO_TAPS(R) "jmp 2f\n" \
  "1:\n\t" CONV1D_WB_ONE_TAP(R) \
  "2:\n\t"
#define CONV1D_WB_INPUT(M, Z) "vmovups " #M "*64(%[x]), %%zmm" #Z "\n\t"
#define CONV1D_WB_BIAS_TAP0(A, Z) \
  "vmovaps %%zmm29, %%zmm" #A "\n\t" \
  "vfmadd231ps %%zmm" #Z ", %%zmm26, %%zmm" #A "\n\t"
#define CONV1D_WB_RESIDUE0_TAP16(A, Z) "vfmadd231ps %%zmm" #Z ", %%zmm27, %%zmm" #A "\n\t"
#define CONV1D_WB_STORE(A) "vmovups %%zmm" #A ", " #A "*64(%[y])\n\t"
// clang-format on

// y[0, 192) = bias + sum_{k < K} weight[k] * x[k + l], 17 <= K <= 32. Reads
// x[0, 224) (kWideBlockInputVectors vectors) and weight[0, K).
__attribute__((target("avx512f"))) inline void WideRowBlock(const float* x, const float* weight,
                                                            float bias, int64_t K, float* y) {
  asm volatile(
      // clang-format off
      CONV1D_WB_INPUT(0, 12) CONV1D_WB_INPUT(1, 13) CONV1D_WB_INPUT(2, 14)
      CONV1D_WB_INPUT(3, 15) CONV1D_WB_INPUT(4, 16) CONV1D_WB_INPUT(5, 17)
      CONV1D_WB_INPUT(6, 18) CONV1D_WB_INPUT(7, 19) CONV1D_WB_INPUT(8, 20)
      CONV1D_WB_INPUT(9, 21) CONV1D_WB_INPUT(10, 22) CONV1D_WB_INPUT(11, 23)
      CONV1D_WB_INPUT(12, 24) CONV1D_WB_INPUT(13, 25)
      "vbroadcastss %[b], %%zmm29\n\t"
      "vbroadcastss (%[w]), %%zmm26\n\t"
      CONV1D_WB_BIAS_TAP0(0, 12) CONV1D_WB_BIAS_TAP0(1, 13) CONV1D_WB_BIAS_TAP0(2, 14)
      CONV1D_WB_BIAS_TAP0(3, 15) CONV1D_WB_BIAS_TAP0(4, 16) CONV1D_WB_BIAS_TAP0(5, 17)
      CONV1D_WB_BIAS_TAP0(6, 18) CONV1D_WB_BIAS_TAP0(7, 19) CONV1D_WB_BIAS_TAP0(8, 20)
      CONV1D_WB_BIAS_TAP0(9, 21) CONV1D_WB_BIAS_TAP0(10, 22) CONV1D_WB_BIAS_TAP0(11, 23)
      "vbroadcastss 64(%[w]), %%zmm27\n\t"
      CONV1D_WB_RESIDUE0_TAP16(0, 13) CONV1D_WB_RESIDUE0_TAP16(1, 14)
      CONV1D_WB_RESIDUE0_TAP16(2, 15) CONV1D_WB_RESIDUE0_TAP16(3, 16)
      CONV1D_WB_RESIDUE0_TAP16(4, 17) CONV1D_WB_RESIDUE0_TAP16(5, 18)
      CONV1D_WB_RESIDUE0_TAP16(6, 19) CONV1D_WB_RESIDUE0_TAP16(7, 20)
      CONV1D_WB_RESIDUE0_TAP16(8, 21) CONV1D_WB_RESIDUE0_TAP16(9, 22)
      CONV1D_WB_RESIDUE0_TAP16(10, 23) CONV1D_WB_RESIDUE0_TAP16(11, 24)
      CONV1D_WB_RESIDUE(1) CONV1D_WB_RESIDUE(2) CONV1D_WB_RESIDUE(3) CONV1D_WB_RESIDUE(4)
      CONV1D_WB_RESIDUE(5) CONV1D_WB_RESIDUE(6) CONV1D_WB_RESIDUE(7) CONV1D_WB_RESIDUE(8)
      CONV1D_WB_RESIDUE(9) CONV1D_WB_RESIDUE(10) CONV1D_WB_RESIDUE(11) CONV1D_WB_RESIDUE(12)
      CONV1D_WB_RESIDUE(13) CONV1D_WB_RESIDUE(14) CONV1D_WB_RESIDUE(15)
      CONV1D_WB_STORE(0) CONV1D_WB_STORE(1) CONV1D_WB_STORE(2) CONV1D_WB_STORE(3)
      CONV1D_WB_STORE(4) CONV1D_WB_STORE(5) CONV1D_WB_STORE(6) CONV1D_WB_STORE(7)
      CONV1D_WB_STORE(8) CONV1D_WB_STORE(9) CONV1D_WB_STORE(10) CONV1D_WB_STORE(11)
      // clang-format on
      :
      : [x] "r"(x), [w] "r"(weight), [b] "m"(bias), [k] "r"(K), [y] "r"(y)
      : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
        "xmm29");
}

#undef CONV1D_WB_SHIFT
#undef CONV1D_WB_LOAD
#undef CONV1D_WB_TAP
#undef CONV1D_WB_TAP16
#undef CONV1D_WB_TWO_TAPS
#undef CONV1D_WB_ONE_TAP
#undef CONV1D_WB_RESIDUE
#undef CONV1D_WB_INPUT
#undef CONV1D_WB_BIAS_TAP0
#undef CONV1D_WB_RESIDUE0_TAP16
#undef CONV1D_WB_STORE

}  // namespace conv1d::kernels::depthwise

#endif  // x86-64 GCC or clang
#endif  // CONV1D_KERNELS_DEPTHWISE_WIDE_ROW_BLOCK_X86_H_
