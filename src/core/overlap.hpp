// Checks that a view the library writes does not share memory with a view
// it reads at the same time, nor repeat an element.
#pragma once

#include <algorithm>
#include <array>
#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/strings.hpp"

namespace conv1d::core {

// The bytes [first, last] a view touches; nullopt when it has no elements.
template <class T>
inline std::optional<std::pair<uintptr_t, uintptr_t>> byte_span(const TensorRef<T>& t) {
  if (t.batch == 0 || t.channels == 0 || t.length == 0) return std::nullopt;
  auto first = reinterpret_cast<uintptr_t>(t.data);
  uintptr_t last = first + sizeof(T) - 1;
  for (const auto& [extent, stride] :
       {std::pair{t.batch, t.batch_stride}, std::pair{t.channels, t.channel_stride},
        std::pair{t.length, t.length_stride}}) {
    const int64_t offset = (extent - 1) * stride * static_cast<int64_t>(sizeof(T));
    if (offset < 0) {
      first -= static_cast<uintptr_t>(-offset);
    } else {
      last += static_cast<uintptr_t>(offset);
    }
  }
  return std::pair{first, last};
}

// Whether a view's elements fill its byte span with no gaps: then any other
// view within that span shares elements with it.
template <class T>
inline bool fills_its_span(const TensorRef<T>& t) {
  std::array<std::pair<int64_t, int64_t>, 3> dims{{{std::abs(t.batch_stride), t.batch},
                                                   {std::abs(t.channel_stride), t.channels},
                                                   {std::abs(t.length_stride), t.length}}};
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, extent] : dims) {
    if (extent == 1) continue;
    if (stride != expected) return false;
    expected *= extent;
  }
  return true;
}

// The written view must not write one element twice (a zero stride), and
// must not share elements with the view that is read: the kernels read the
// input while they write the output. Decided from the byte spans: when they
// intersect and either view fills its span, the views share elements. When
// neither does (views interleaved in one buffer, say) they are not checked
// further, as PyTorch leaves the cases it cannot decide cheaply.
template <class In, class Out>
inline void check_no_overlap(const TensorRef<In>& read, std::string_view read_name,
                             const TensorRef<Out>& written, std::string_view written_name) {
  const auto b = byte_span(written);
  if (!b) return;  // writes nothing
  for (const auto& [extent, stride, what] :
       {std::tuple{written.batch, written.batch_stride, "batch"},
        std::tuple{written.channels, written.channel_stride, "channel"},
        std::tuple{written.length, written.length_stride, "length"}}) {
    if (extent > 1 && stride == 0) {
      throw Error(str_cat(written_name, " has ", what,
                          " stride 0: several of its elements are one memory location"));
    }
  }
  const auto a = byte_span(read);
  if (!a || a->second < b->first || b->second < a->first) return;
  if (fills_its_span(read) || fills_its_span(written)) {
    throw Error(str_cat(written_name, " overlaps ", read_name,
                        " in memory: the convolution reads the one while it writes the other"));
  }
}

}  // namespace conv1d::core
