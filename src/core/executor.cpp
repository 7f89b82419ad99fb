#include "core/executor.hpp"

#include "core/strings.hpp"

namespace conv1d::detail {

void Executor::unsupported(std::string_view what) const {
  throw Error(
      core::str_cat("internal error: this algorithm has no ", what, " for ", problem_.to_string()));
}

void Executor::get_weights(void*, void*) const { unsupported("copy of its weights"); }

void Executor::forward(TensorRef<const float>, TensorRef<float>, int) const {
  unsupported("float32 forward");
}
void Executor::forward(TensorRef<const double>, TensorRef<double>, int) const {
  unsupported("float64 forward");
}
void Executor::backward_data(TensorRef<const float>, TensorRef<float>, int) const {
  unsupported("float32 backward");
}
void Executor::backward_data(TensorRef<const double>, TensorRef<double>, int) const {
  unsupported("float64 backward");
}
void Executor::backward_weight(TensorRef<const float>, TensorRef<const float>, float*, float*,
                               int) const {
  unsupported("float32 backward");
}
void Executor::backward_weight(TensorRef<const double>, TensorRef<const double>, double*, double*,
                               int) const {
  unsupported("float64 backward");
}

}  // namespace conv1d::detail
