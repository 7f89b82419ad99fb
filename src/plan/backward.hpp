// Backward for plans whose algorithm has none of its own, on the fast
// kernels instead of the reference's loops.
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/executor.hpp"
#include "kernels/weight_gradient/weight_gradient.hpp"
#include "plan/registry.hpp"

namespace conv1d::detail {

// grad_input is made of forward convolutions of grad_output, one per phase
// of the stride: the padded input's positions j = q * stride + r take
// grad_output's samples through the taps k with k * dilation = r (mod
// stride), a stride-1 convolution by those taps reversed, with input and
// output channels swapped (at stride 1, one phase of every tap). Each
// phase writes its positions of grad_input (zero padding), or of the
// padded input, whose gradients the padding mode then sends back to the
// samples they read. The weight gradient is a GEMM per tap of grad_output
// with the shifted input (kernels/weight_gradient).
//
// Plans whose weights hold an infinite or NaN value run grad_input on the
// reference: a phase's zero padding would turn such a weight's products
// into NaN where PyTorch's sums have none.
class Backward {
 public:
  explicit Backward(const Problem& problem);
  ~Backward();

  // After the plan's set_weights (`weight` and `bias` as it took them): kept
  // only when `executor` cannot give them back; otherwise taken from it on
  // the next backward_data, so that a plan used for inference only holds
  // no second copy.
  void set_weights(const Executor& executor, const void* weight, const void* bias);
  // The executor took another's weights (Plan::share_weights).
  void weights_shared();

  template <class T>
  void backward_data(const Executor& executor, TensorRef<const T> grad_output,
                     TensorRef<T> grad_input, int threads);
  template <class T>
  void backward_weight(TensorRef<const T> input, TensorRef<const T> grad_output, T* grad_weight,
                       T* grad_bias, int threads) const;

 private:
  // One phase r of the stride: outputs q in [first_output, first_output +
  // outputs) are positions q * stride + r (of grad_input, or of the padded
  // input), from grad_output's samples from input_offset on.
  struct Phase {
    std::vector<int64_t> taps;  // ascending; none: the positions read nothing
    Problem problem;
    int64_t first_output = 0;
    int64_t outputs = 0;
    int64_t input_offset = 0;
    const AlgorithmEntry* entry = nullptr;
    double seconds = 0;
    std::unique_ptr<Executor> executor;
  };

  // The phases and their problems, on the first backward_data: a plan used
  // for inference only does not pay for them.
  void make_phases();
  // Gives the phases the plan's current weights (true), or the reference,
  // for non-finite weights or phases too large to index (false).
  bool prepare_data(const Executor& executor);
  template <class T>
  void run_phases(TensorRef<const T> grad_output, TensorRef<T> to, int64_t first_position,
                  int threads) const;

  Problem problem_;
  const kernels::weight_gradient::Target& weight_target_;
  // With zero padding the phases write grad_input itself; otherwise the
  // padded input's positions [0, padded_length) go through a buffer.
  bool writes_grad_input() const { return problem_.padding_mode == PaddingMode::zeros; }
  int64_t padded_length_ = 0;
  bool phases_valid_ = true;
  std::vector<Phase> phases_;
  std::mutex mutex_;
  bool current_ = false;
  bool use_phases_ = false;
  std::vector<std::byte> weight_copy_, bias_copy_;
  std::unique_ptr<Executor> reference_;
};

}  // namespace conv1d::detail
