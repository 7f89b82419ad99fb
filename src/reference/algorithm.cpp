// The reference as a registry entry: supports everything, chosen last.
#include <memory>
#include <vector>

#include "core/executor.hpp"
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
    if (p.dtype == DType::f32) {
      copy(static_cast<const float*>(weight), static_cast<const float*>(bias), weight_count,
           static_cast<size_t>(p.out_channels), weight_f32_, bias_f32_);
    } else {
      copy(static_cast<const double*>(weight), static_cast<const double*>(bias), weight_count,
           static_cast<size_t>(p.out_channels), weight_f64_, bias_f64_);
    }
  }

  void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const override {
    conv1d::reference::forward(problem_, input, weight_f32_.data(), bias_or_null(bias_f32_),
                               output, threads);
  }
  void forward(TensorRef<const double> input, TensorRef<double> output,
               int threads) const override {
    conv1d::reference::forward(problem_, input, weight_f64_.data(), bias_or_null(bias_f64_),
                               output, threads);
  }

  bool has_backward() const override { return true; }
  void backward_data(TensorRef<const float> grad_output, TensorRef<float> grad_input,
                     int threads) const override {
    conv1d::reference::backward_data(problem_, grad_output, weight_f32_.data(), grad_input,
                                     threads);
  }
  void backward_data(TensorRef<const double> grad_output, TensorRef<double> grad_input,
                     int threads) const override {
    conv1d::reference::backward_data(problem_, grad_output, weight_f64_.data(), grad_input,
                                     threads);
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
  static void copy(const T* weight, const T* bias, size_t weight_count, size_t bias_count,
                   std::vector<T>& weights, std::vector<T>& biases) {
    weights.assign(weight, weight + weight_count);
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

  std::vector<float> weight_f32_, bias_f32_;
  std::vector<double> weight_f64_, bias_f64_;
};

}  // namespace

std::optional<std::string> why_not(const Problem&) { return std::nullopt; }

// Deliberately far above any real algorithm: chosen only when nothing else fits.
double estimated_seconds(const Problem& problem) { return 1e3 + problem.flops() * 1e-8; }

std::unique_ptr<detail::Executor> create(const Problem& problem) {
  return std::make_unique<ReferenceExecutor>(problem);
}

}  // namespace conv1d::algorithms::reference
