// Building error messages without a formatting dependency.
#pragma once

#include <sstream>
#include <string>

namespace conv1d::core {

template <class... Parts>
std::string str_cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace conv1d::core
