// Sizes of the kernels' blocks, and per-thread scratch for their tasks:
// it only grows, so after the first call of a given size no task allocates.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#if defined(__GLIBC__)
#include <unistd.h>
#endif

#include "core/strings.hpp"

namespace conv1d::core {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline size_t round_up_64(size_t bytes) { return (bytes + 63) / 64 * 64; }

#if defined(__GLIBC__) && defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
constexpr int kL1DataCacheName = _SC_LEVEL1_DCACHE_SIZE;
constexpr int kL2CacheName = _SC_LEVEL2_CACHE_SIZE;
#else
constexpr int kL1DataCacheName = -1;
constexpr int kL2CacheName = -1;
#endif

// The size sysconf reports for the cache `name`, or `otherwise` when it
// reports none or less than `at_least` bytes.
inline int64_t reported_cache_bytes([[maybe_unused]] int name, int64_t at_least,
                                    int64_t otherwise) {
  long detected = 0;
#if defined(__GLIBC__)
  if (name >= 0) detected = sysconf(name);
#endif
  return detected >= at_least ? static_cast<int64_t>(detected) : otherwise;
}

// This core's L1 data cache, for sizing the blocks that must stay in it
// (48 KiB when the C library cannot tell).
inline int64_t l1_data_bytes() {
  static const int64_t bytes = reported_cache_bytes(kL1DataCacheName, 16 * 1024, 48 * 1024);
  return bytes;
}

// This core's L2 cache (1 MiB when the C library cannot tell).
inline int64_t l2_bytes() {
  static const int64_t bytes = reported_cache_bytes(kL2CacheName, 64 * 1024, 1024 * 1024);
  return bytes;
}

// 64-byte aligned, at least `bytes` long, valid until the same thread asks
// the same slot again. `Slot` keeps buffers apart that one thread holds at
// the same time (a caller's buffer while it also runs tasks).
template <int Slot = 0>
void* thread_scratch(size_t bytes) {
  struct Storage {
    void* data = nullptr;
    size_t capacity = 0;
    ~Storage() { std::free(data); }
  };
  thread_local Storage storage;
  if (storage.capacity < bytes) {
    std::free(storage.data);
    storage.capacity = round_up_64(bytes);
    storage.data = std::aligned_alloc(64, storage.capacity);
    if (storage.data == nullptr) {
      storage.capacity = 0;
      throw Error(str_cat("cannot allocate ", bytes, " bytes of scratch"));
    }
  }
  return storage.data;
}

}  // namespace conv1d::core
