#include "core/large_array.hpp"

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "core/scratch.hpp"
#include "core/strings.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

// Kept mappings are poisoned for AddressSanitizer, so that a plan reading
// its weights after releasing them is still reported.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

namespace conv1d::core {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;
// Arrays from half a huge page up are mapped (at least half of every huge
// page they take is used).
constexpr size_t kMappedFrom = kHugePage / 2;
// Arrays from 64 KiB up to that are mapped on 4 KiB pages and populated by
// the mapping call, which costs about half of faulting them in one by one
// (512 KiB: 0.66 instead of 1.6 ms here). They are written whole right
// after (packing), so nothing is committed in vain.
constexpr size_t kPopulatedFrom = size_t{64} << 10;

size_t round_up(size_t bytes, size_t unit) { return (bytes + unit - 1) / unit * unit; }

#if defined(__linux__)
// Bytes mapped for an array of `bytes` >= kPopulatedFrom: whole 4 KiB pages
// below kMappedFrom; from there whole huge pages, unless the last one would
// be less than half used (then 4 KiB pages for the tail).
size_t mapped_bytes(size_t bytes) {
  if (bytes < kMappedFrom) return round_up(bytes, kPage);
  const size_t tail = bytes % kHugePage;
  return tail == 0 || tail >= kHugePage / 2 ? round_up(bytes, kHugePage) : round_up(bytes, kPage);
}

// Mappings released by plans, kept for the next array of the same mapped
// size (fresh plans of one layer, a layer's plans made again): reusing
// one touches no fresh page. Bounded, so that a process never holds more
// than kKeptBytes of memory no plan uses.
class KeptMappings {
 public:
  // Room for every mapping it may keep: giving one back never allocates.
  KeptMappings() { kept_.reserve(kKeptCount); }

  // A kept mapping of exactly `mapped` bytes, or nullptr.
  void* take(size_t mapped) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < kept_.size(); ++i) {
      if (kept_[i].bytes == mapped) {
        void* data = kept_[i].data;
        kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
        total_ -= mapped;
        ASAN_UNPOISON_MEMORY_REGION(data, mapped);
        return data;
      }
    }
    return nullptr;
  }

  // Keeps the mapping, unmapping the oldest kept ones to stay within the
  // bounds (the latest released are the likeliest to be asked for again).
  void give(void* data, size_t mapped) noexcept {
    if (mapped > kKeptBytes) {
      munmap(data, mapped);
      return;
    }
    Mapping evicted[kKeptCount];
    size_t evicted_count = 0;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      size_t oldest = 0;
      while (total_ + mapped > kKeptBytes || kept_.size() - oldest == kKeptCount) {
        evicted[evicted_count++] = kept_[oldest];
        total_ -= kept_[oldest].bytes;
        ++oldest;
      }
      kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(oldest));
      kept_.push_back({data, mapped});
      total_ += mapped;
      ASAN_POISON_MEMORY_REGION(data, mapped);
    }
    // Unpoisoned first: a later mapping at the same addresses starts clean.
    for (size_t i = 0; i < evicted_count; ++i) {
      ASAN_UNPOISON_MEMORY_REGION(evicted[i].data, evicted[i].bytes);
      munmap(evicted[i].data, evicted[i].bytes);
    }
  }

 private:
  static constexpr size_t kKeptBytes = size_t{16} << 20;
  static constexpr size_t kKeptCount = 8;
  struct Mapping {
    void* data;
    size_t bytes;
  };
  std::mutex mutex_;
  std::vector<Mapping> kept_;
  size_t total_ = 0;
};

KeptMappings& kept_mappings() {
  // Never destroyed: plans may be released during static destruction.
  static auto* kept = new KeptMappings;
  return *kept;
}

void* map_huge_aligned(size_t bytes, size_t mapped) {
  // Map a huge page more than needed, keep the 2 MiB-aligned part.
  const size_t reserved = mapped + kHugePage;
  void* region =
      mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) throw Error(str_cat("cannot allocate ", bytes, " bytes"));
  const auto start = reinterpret_cast<uintptr_t>(region);
  const uintptr_t aligned = round_up(start, kHugePage);
  if (aligned > start) munmap(region, aligned - start);
  const uintptr_t end = start + reserved;
  if (end > aligned + mapped) {
    munmap(reinterpret_cast<void*>(aligned + mapped), end - aligned - mapped);
  }
  // Advice only: without transparent huge pages the array still works.
  madvise(reinterpret_cast<void*>(aligned), mapped, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void* map_populated(size_t bytes, size_t mapped) {
  void* region = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (region == MAP_FAILED) throw Error(str_cat("cannot allocate ", bytes, " bytes"));
  return region;
}
#endif

}  // namespace

void* allocate_large(size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(__linux__)
  if (bytes >= kPopulatedFrom) {
    const size_t mapped = mapped_bytes(bytes);
    if (void* kept = kept_mappings().take(mapped)) return kept;
    return bytes >= kMappedFrom ? map_huge_aligned(bytes, mapped) : map_populated(bytes, mapped);
  }
#endif
  void* data = std::aligned_alloc(64, round_up_64(bytes));
  if (data == nullptr) throw Error(str_cat("cannot allocate ", bytes, " bytes"));
  return data;
}

void free_large(void* data, size_t bytes) noexcept {
  if (data == nullptr) return;
  if (bytes == 0) bytes = 1;
#if defined(__linux__)
  if (bytes >= kPopulatedFrom) {
    kept_mappings().give(data, mapped_bytes(bytes));
    return;
  }
#endif
  std::free(data);
}

}  // namespace conv1d::core
