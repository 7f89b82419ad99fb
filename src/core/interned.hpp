// Copies of weight arrays shared by content. A layer makes one plan per
// input length, each keeping the weights (the reference for backward, the
// fft for its spectra): with one shared copy a new plan compares instead of
// allocating and first touching fresh memory, which in a VM costs more than
// the copy itself.
#pragma once

#include <cstddef>
#include <memory>

#include "core/large_array.hpp"

namespace conv1d::core {

// A copy of some bytes (in large_array memory).
class Bytes {
 public:
  Bytes(const void* data, size_t size);
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  friend std::shared_ptr<const Bytes> intern_bytes(const void*, size_t,
                                                   std::shared_ptr<const Bytes>);
  LargeArray<std::byte> data_;
  size_t size_;
};

// A copy of data[0, bytes), the same object for equal contents while any
// holder keeps it alive. `replaced` is the caller's previous copy: when the
// caller is its only holder and the size matches, it is overwritten rather
// than a new copy allocated (a layer whose weights change every training
// step would otherwise fault in fresh pages every step). Thread-safe.
std::shared_ptr<const Bytes> intern_bytes(const void* data, size_t bytes,
                                          std::shared_ptr<const Bytes> replaced = nullptr);

}  // namespace conv1d::core
