#include "core/interned.hpp"

#include <cstring>
#include <mutex>
#include <vector>

namespace conv1d::core {

Bytes::Bytes(const void* data, size_t size)
    : data_(make_large_array<std::byte>(size)), size_(size) {
  if (size > 0) std::memcpy(data_.get(), data, size);
}

std::shared_ptr<const Bytes> intern_bytes(const void* data, size_t bytes,
                                          std::shared_ptr<const Bytes> replaced) {
  static std::mutex mutex;
  // The copies alive in the process, held by their users, not by this list.
  static std::vector<std::weak_ptr<const Bytes>> copies;
  std::lock_guard lock(mutex);
  std::erase_if(copies, [](const auto& copy) { return copy.expired(); });
  for (const auto& copy : copies) {
    if (auto alive = copy.lock();
        alive && alive->size() == bytes && std::memcmp(alive->data(), data, bytes) == 0) {
      return alive;
    }
  }
  // Other holders only gain a reference through the list, under this lock,
  // so a copy held once cannot be picked up while it changes.
  if (replaced && replaced.use_count() == 1 && replaced->size() == bytes) {
    if (bytes > 0) std::memcpy(replaced->data_.get(), data, bytes);
    return replaced;
  }
  std::shared_ptr<const Bytes> made = std::make_shared<Bytes>(data, bytes);
  copies.push_back(made);
  return made;
}

}  // namespace conv1d::core
