// Activation tensors of the layers: logical (batch, channels, length) of a
// rank-2 (unbatched) or rank-3 Tensor stored in NCL or NLC order, and the
// checks with messages that name the offending shape.
#pragma once

#include <array>
#include <conv1d/layer.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/strings.hpp"

namespace conv1d::layer {

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += core::str_cat(i ? ", " : "", shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

inline std::array<int64_t, 3> activation_dims(const Tensor& tensor, Layout layout,
                                              std::string_view name) {
  const auto& shape = tensor.shape();
  if (shape.size() != 2 && shape.size() != 3) {
    throw Error(core::str_cat("expected a 2-D (unbatched) or 3-D (batched) ", name, ", got ",
                              shape.size(), "-D ", name, " of shape ", shape_string(shape)));
  }
  const int64_t batch = shape.size() == 3 ? shape[0] : 1;
  const size_t first = shape.size() == 3 ? 1 : 0;
  if (layout == Layout::ncl) return {batch, shape[first], shape[first + 1]};
  return {batch, shape[first + 1], shape[first]};
}

inline std::vector<int64_t> activation_shape(int64_t rank, int64_t batch, int64_t channels,
                                             int64_t length, Layout layout) {
  std::vector<int64_t> shape;
  if (rank == 3) shape.push_back(batch);
  if (layout == Layout::ncl) {
    shape.insert(shape.end(), {channels, length});
  } else {
    shape.insert(shape.end(), {length, channels});
  }
  return shape;
}

template <class T>
TensorRef<T> activation_ref(T* data, const std::array<int64_t, 3>& dims, Layout layout) {
  return TensorRef<T>::contiguous(data, dims[0], dims[1], dims[2], layout);
}

inline void check_dtype(const Tensor& tensor, DType expected, std::string_view name) {
  if (tensor.dtype() != expected) {
    throw Error(core::str_cat(name, " dtype ", to_string(tensor.dtype()),
                              " does not match the layer's ", to_string(expected)));
  }
}

}  // namespace conv1d::layer
