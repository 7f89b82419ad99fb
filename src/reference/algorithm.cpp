// The reference as a registry entry: supports everything, chosen last.
#include <memory>
#include <utility>
#include <vector>

#include "core/executor.hpp"
#include "core/interned.hpp"
#include "reference/reference.hpp"

namespace conv1d::algorithms::reference {

namespace {

class ReferenceExecutor final : public detail::Executor {
 public:
  using Executor::Executor;

  void set_weights(const void* weight, const void* bias) override {
    const Problem& p = problem_;
    const size_t weight_count =
        static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size);
    weight_ = core::intern_bytes(weight, weight_count * static_cast<size_t>(dtype_size(p.dtype)),
                                 std::move(weight_));
    if (p.dtype == DType::f32) {
      copy_bias(static_cast<const float*>(bias), static_cast<size_t>(p.out_channels), bias_f32_);
    } else {
      copy_bias(static_cast<const double*>(bias), static_cast<size_t>(p.out_channels), bias_f64_);
    }
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    conv1d::reference::forward(problem_, input, weights<float>(), bias_or_null(bias_f32_), output,
                               threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    conv1d::reference::forward(problem_, input, weights<double>(), bias_or_null(bias_f64_), output,
                               threads);
  }

  bool has_backward() const override { return true; }
  void backward_data(TensorRef<const float> grad_output, TensorRef<float> grad_input,
                     int threads) const override {
    conv1d::reference::backward_data(problem_, grad_output, weights<float>(), grad_input, threads);
  }
  void backward_data(TensorRef<const double> grad_output, TensorRef<double> grad_input,
                     int threads) const override {
    conv1d::reference::backward_data(problem_, grad_output, weights<double>(), grad_input, threads);
  }
  void backward_weight(TensorRef<const float> input, TensorRef<const float> grad_output,
                       float* grad_weight, float* grad_bias, int threads) const override {
    conv1d::reference::backward_weight(problem_, input, grad_output, grad_weight, grad_bias,
                                       threads);
  }
  void backward_weight(TensorRef<const double> input, TensorRef<const double> grad_output,
                       double* grad_weight, double* grad_bias, int threads) const override {
    conv1d::reference::backward_weight(problem_, input, grad_output, grad_weight, grad_bias,
                                       threads);
  }

 private:
  template <class T>
  const T* weights() const {
    return reinterpret_cast<const T*>(weight_->data());
  }
  template <class T>
  static void copy_bias(const T* bias, size_t bias_count, std::vector<T>& biases) {
    if (bias != nullptr) {
      biases.assign(bias, bias + bias_count);
    } else {
      biases.clear();
    }
  }
  template <class T>
  static const T* bias_or_null(const std::vector<T>& biases) {
    return biases.empty() ? nullptr : biases.data();
  }

  // Shared with other plans holding the same weights (a layer's plans for
  // other input lengths).
  std::shared_ptr<const core::Bytes> weight_;
  std::vector<float> bias_f32_;
  std::vector<double> bias_f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem&) { return std::nullopt; }

// Deliberately far above any real algorithm: chosen only when nothing else fits.
double estimated_seconds(const Problem& problem) { return 1e3 + problem.flops() * 1e-8; }

std::unique_ptr<detail::Executor> create(const Problem& problem) {
  return std::make_unique<ReferenceExecutor>(problem);
}

}  // namespace conv1d::algorithms::reference
