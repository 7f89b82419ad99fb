// Keeping a vector in a register, shared by the depthwise and direct
// kernels, compiled once per Highway target: include it after
// hwy/foreach_target.h and hwy/highway.h (per-target include guard, as
// Highway's own -inl.h headers do).
#if defined(CONV1D_KERNELS_COMMON_REGISTERS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONV1D_KERNELS_COMMON_REGISTERS_INL_H_
#undef CONV1D_KERNELS_COMMON_REGISTERS_INL_H_
#else
#define CONV1D_KERNELS_COMMON_REGISTERS_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace conv1d::kernels::common {
namespace HWY_NAMESPACE {

// GCC otherwise folds a load shared by several FMAs into each of them as a
// memory operand, loading it again per FMA: the kernels that use this are
// bound by their loads.
template <class V>
HWY_INLINE void KeepInRegister(V& v) {
// (EMU128 and SCALAR vectors are structs, not registers.)
#if HWY_ARCH_X86 && (HWY_COMPILER_GCC || HWY_COMPILER_CLANG) && HWY_TARGET != HWY_EMU128 && \
    HWY_TARGET != HWY_SCALAR
  asm("" : "+v"(v.raw));
#else
  (void)v;
#endif
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace conv1d::kernels::common
HWY_AFTER_NAMESPACE();

#endif  // CONV1D_KERNELS_COMMON_REGISTERS_INL_H_
