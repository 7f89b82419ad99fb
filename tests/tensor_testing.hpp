// Small helpers shared by the layer, plan and streaming tests.
#pragma once

#include <conv1d/layer.hpp>
#include <random>
#include <string>
#include <vector>

namespace conv1d::testing {

// The message of the conv1d::Error that `action` throws, or "(no error)".
template <class Action>
std::string error_of(Action action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

// Values uniform in [-1, 1), reproducible from `seed`.
inline Tensor random_tensor(DType dtype, std::vector<int64_t> shape, uint64_t seed) {
  Tensor tensor(dtype, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> value(-1, 1);
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    if (dtype == DType::f32) {
      tensor.data<float>()[i] = static_cast<float>(value(rng));
    } else {
      tensor.data<double>()[i] = value(rng);
    }
  }
  return tensor;
}

}  // namespace conv1d::testing
