// Integer arithmetic that reports overflow instead of wrapping.
#pragma once

#include <cstdint>
#include <string_view>

namespace conv1d::core {

// a * b, or throws Error("<what> is too large ...") when it does not fit.
int64_t checked_mul(int64_t a, int64_t b, std::string_view what);
int64_t checked_add(int64_t a, int64_t b, std::string_view what);

}  // namespace conv1d::core
