// The fused separable convolution as the layer sees it. A separable layer is
// two Problems (depthwise, then 1x1 pointwise), so it does not fit the
// single-Problem registry: SeparableConv1d asks why_not() and makes the
// executor itself, falling back to two Plans when the fused path declines.
#pragma once

#include <conv1d/conv1d.hpp>
#include <memory>
#include <optional>
#include <string>

namespace conv1d::detail {

// forward must be safe to call from several threads at once and must not
// allocate (thread-local scratch that only grows is allowed); results are
// bit-identical for any thread count.
class SeparableExecutor {
 public:
  virtual ~SeparableExecutor() = default;

  // Contiguous depthwise weight (C_mid, 1, K) and bias (C_mid) or nullptr;
  // pointwise weight (C_out, C_mid, 1) and bias (C_out) or nullptr. Copies
  // and repacks; call before any forward and whenever the weights change.
  virtual void set_weights(const void* depthwise_weight, const void* depthwise_bias,
                           const void* pointwise_weight, const void* pointwise_bias) = 0;
  // Takes the packed weights of `other`, made for the same layer at another
  // batch or length, when they are packed the same way; false (nothing
  // changed) otherwise. A later set_weights on either leaves the other's
  // weights as they were.
  virtual bool share_weights(const SeparableExecutor& other) = 0;
  // The object holding the packed weights: equal for executors sharing them.
  virtual const void* weights_identity() const = 0;

  // output = pointwise(depthwise(input)); input (N, C_in, L_in) and output
  // (N, C_out, L_out) with any strides. Each serves the problems' dtype only.
  virtual void forward(TensorRef<const float> input, TensorRef<float> output,
                       int threads) const = 0;
  virtual void forward(TensorRef<const double> input, TensorRef<double> output,
                       int threads) const = 0;
};

}  // namespace conv1d::detail

namespace conv1d::algorithms::separable {

// nullopt when the fused path runs this pair, else why not.
std::optional<std::string> why_not(const Problem& depthwise, const Problem& pointwise);
// Requires why_not(depthwise, pointwise) == nullopt.
std::unique_ptr<detail::SeparableExecutor> create(const Problem& depthwise,
                                                  const Problem& pointwise);

}  // namespace conv1d::algorithms::separable
