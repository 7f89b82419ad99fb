#include <conv1d/layer.hpp>

#include "core/checked.hpp"
#include "core/strings.hpp"

namespace conv1d {

namespace {

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw Error(core::str_cat("tensor dimensions must be non-negative, got ", dim));
    count = core::checked_mul(count, dim, "tensor size");
  }
  return count;
}

}  // namespace

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  const auto count = static_cast<size_t>(element_count(shape_));
  if (dtype_ == DType::f32) {
    f32_.assign(count, 0.0f);
  } else {
    f64_.assign(count, 0.0);
  }
}

template <class T>
Tensor Tensor::from_values(std::vector<int64_t> shape, std::vector<T> values) {
  Tensor tensor;
  tensor.dtype_ = dtype_of<T>();
  tensor.shape_ = std::move(shape);
  if (static_cast<int64_t>(values.size()) != element_count(tensor.shape_)) {
    throw Error(core::str_cat("tensor of ", element_count(tensor.shape_), " elements given ",
                              values.size(), " values"));
  }
  if constexpr (std::is_same_v<T, float>) {
    tensor.f32_ = std::move(values);
  } else {
    tensor.f64_ = std::move(values);
  }
  return tensor;
}

int64_t Tensor::numel() const { return element_count(shape_); }

template <class T>
T* Tensor::data() {
  return const_cast<T*>(static_cast<const Tensor&>(*this).data<T>());
}

template <class T>
const T* Tensor::data() const {
  if (dtype_of<T>() != dtype_) {
    throw Error(core::str_cat("tensor holds ", to_string(dtype_), ", not ",
                              to_string(dtype_of<T>())));
  }
  if constexpr (std::is_same_v<T, float>) {
    return f32_.data();
  } else {
    return f64_.data();
  }
}

double Tensor::value(int64_t i) const {
  return dtype_ == DType::f32 ? static_cast<double>(f32_.at(static_cast<size_t>(i)))
                              : f64_.at(static_cast<size_t>(i));
}

template Tensor Tensor::from_values<float>(std::vector<int64_t>, std::vector<float>);
template Tensor Tensor::from_values<double>(std::vector<int64_t>, std::vector<double>);
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

}  // namespace conv1d
