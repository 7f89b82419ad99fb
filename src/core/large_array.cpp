#include "core/large_array.hpp"

#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <cstdlib>

#include "core/scratch.hpp"
#include "core/strings.hpp"

#if defined(__linux__)
#include <sys/mman.h>
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
// Bytes mapped for an array of `bytes` >= kMappedFrom: whole huge pages,
// unless the last one would be less than half used (then 4 KiB pages for
// the tail).
size_t mapped_bytes(size_t bytes) {
  const size_t tail = bytes % kHugePage;
  return tail == 0 || tail >= kHugePage / 2 ? round_up(bytes, kHugePage) : round_up(bytes, kPage);
}
#endif

}  // namespace

void* allocate_large(size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(__linux__)
  if (bytes >= kMappedFrom) {
    const size_t mapped = mapped_bytes(bytes);
    // Map a huge page more than needed, keep the 2 MiB-aligned part.
    const size_t reserved = mapped + kHugePage;
    void* region =
        mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw Error(str_cat("cannot allocate ", bytes, " bytes"));
    const auto start = reinterpret_cast<uintptr_t>(region);
    const uintptr_t aligned = round_up(start, kHugePage);
    if (aligned > start) munmap(region, aligned - start);
    const uintptr_t end = start + reserved;
    if (end > aligned + mapped)
      munmap(reinterpret_cast<void*>(aligned + mapped), end - aligned - mapped);
    // Advice only: without transparent huge pages the array still works.
    madvise(reinterpret_cast<void*>(aligned), mapped, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(aligned);
  }
  if (bytes >= kPopulatedFrom) {
    void* region = mmap(nullptr, round_up(bytes, kPage), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (region == MAP_FAILED) throw Error(str_cat("cannot allocate ", bytes, " bytes"));
    return region;
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
  if (bytes >= kMappedFrom) {
    munmap(data, mapped_bytes(bytes));
    return;
  }
  if (bytes >= kPopulatedFrom) {
    munmap(data, round_up(bytes, kPage));
    return;
  }
#endif
  std::free(data);
}

}  // namespace conv1d::core
