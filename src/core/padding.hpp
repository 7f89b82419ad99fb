// Where a padded position reads from: the one rule every algorithm shares.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstdint>

namespace conv1d::core {

// Index into the unpadded input (length `length`) that padded position
// `position` (0 = first real sample; negative = left padding) reads, or -1
// when it reads a zero. Validation guarantees pads small enough for one
// reflection / one wrap (reflect: pad < length, circular: pad <= length).
inline int64_t source_index(int64_t position, int64_t length, PaddingMode mode) {
  if (position >= 0 && position < length) return position;
  switch (mode) {
    case PaddingMode::zeros:
      return -1;
    case PaddingMode::reflect:
      return position < 0 ? -position : 2 * (length - 1) - position;
    case PaddingMode::replicate:
      return position < 0 ? 0 : length - 1;
    case PaddingMode::circular:
      return position < 0 ? position + length : position - length;
  }
  return -1;
}

// As source_index, for a position anywhere: past the padding on either side
// (read only by a tile's discarded tail outputs) it reads a zero.
inline int64_t padded_source_index(int64_t position, int64_t length, int64_t pad_left,
                                   int64_t pad_right, PaddingMode mode) {
  if (position < -pad_left || position >= length + pad_right) return -1;
  return source_index(position, length, mode);
}

}  // namespace conv1d::core
