// Copies of weight arrays shared by content. A layer makes one plan per
// input length, each keeping the weights (the reference for backward, the
// fft for its spectra): with one shared copy a new plan compares instead of
// allocating and first touching fresh memory, which in a VM costs more than
// the copy itself.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace conv1d::core {

// A copy of data[0, bytes), the same object for equal contents while any
// holder keeps it alive. Thread-safe.
std::shared_ptr<const std::vector<std::byte>> intern_bytes(const void* data, size_t bytes);

}  // namespace conv1d::core
