// Which SIMD target the kernels run on, and a cap so every target can be
// tested on one machine. Kernels use Highway's dynamic dispatch
// (HWY_DYNAMIC_DISPATCH), which follows the choice made here.
#pragma once

#include <cstdint>

namespace conv1d::core {

// Applies CONV1D_MAX_ISA (once per process) and returns the Highway target
// bit the kernels dispatch to. Call before taking HWY_DYNAMIC_DISPATCH
// pointers: plans do this when they are made.
int64_t chosen_target();

}  // namespace conv1d::core
