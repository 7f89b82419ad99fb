// Memory for a plan's long-lived arrays that can run to megabytes: packed
// weights, kernel spectra, the weights kept for the reference backward.
// Arrays of 1 MiB or more are mapped 2 MiB-aligned and advised for
// transparent huge pages (Linux), so that their first touch faults once per
// 2 MiB instead of once per 4 KiB: in the VMs this project is measured on a
// 4 KiB fault costs ~10 us, and a fresh plan's 3 MB of weights took ~9 ms to
// touch instead of ~0.3 ms. A last huge page at least half used is mapped
// whole (1.8 MB take 2 MB, 3 MB take 4 MB); a smaller tail stays on 4 KiB
// pages. Arrays from 64 KiB are mapped on 4 KiB pages populated at once;
// smaller ones come from the C library. Released mappings (up to 8, 16 MiB
// together, the latest kept) serve the next arrays of their size, so that
// plans made again for a layer touch no fresh memory.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

namespace conv1d::core {

// At least 64-byte aligned and `bytes` long (1 byte for 0); throws Error
// when the memory cannot be had.
void* allocate_large(size_t bytes);
// Releases what allocate_large(bytes) returned (nullptr: nothing).
void free_large(void* data, size_t bytes) noexcept;

class LargeDeleter {
 public:
  explicit LargeDeleter(size_t bytes = 0) : bytes_(bytes) {}
  void operator()(void* data) const noexcept { free_large(data, bytes_); }

 private:
  size_t bytes_;
};

// Uninitialised elements of a trivial type.
template <class T>
using LargeArray = std::unique_ptr<T[], LargeDeleter>;

template <class T>
LargeArray<T> make_large_array(size_t count) {
  static_assert(std::is_trivially_default_constructible_v<T> &&
                std::is_trivially_destructible_v<T>);
  const size_t bytes = count * sizeof(T);
  return LargeArray<T>(static_cast<T*>(allocate_large(bytes)), LargeDeleter(bytes));
}

}  // namespace conv1d::core
