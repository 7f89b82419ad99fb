#include "core/interned.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace conv1d::core {

std::shared_ptr<const std::vector<std::byte>> intern_bytes(
    const void* data, size_t bytes, std::shared_ptr<const std::vector<std::byte>> replaced) {
  static std::mutex mutex;
  // The copies alive in the process, held by their users, not by this list.
  static std::vector<std::weak_ptr<const std::vector<std::byte>>> copies;
  std::lock_guard lock(mutex);
  std::erase_if(copies, [](const auto& copy) { return copy.expired(); });
  for (const auto& copy : copies) {
    if (auto alive = copy.lock();
        alive && alive->size() == bytes && std::memcmp(alive->data(), data, bytes) == 0) {
      return alive;
    }
  }
  const auto* first = static_cast<const std::byte*>(data);
  // Other holders only gain a reference through the list, under this lock,
  // so a copy held once cannot be picked up while it changes.
  if (replaced && replaced.use_count() == 1 && replaced->size() == bytes) {
    auto& storage = const_cast<std::vector<std::byte>&>(*replaced);
    std::copy(first, first + bytes, storage.begin());
    return replaced;
  }
  // Made non-const, so that the overwrite above is well defined.
  std::shared_ptr<const std::vector<std::byte>> made =
      std::make_shared<std::vector<std::byte>>(first, first + bytes);
  copies.push_back(made);
  return made;
}

}  // namespace conv1d::core
