#include <conv1d/layer.hpp>

#include "core/strings.hpp"

namespace conv1d {

ConvParams SeparableParams::depthwise_params() const {
  if (depth_multiplier <= 0) {
    throw Error(core::str_cat("depth_multiplier must be positive, got depth_multiplier=",
                              depth_multiplier));
  }
  ConvParams params;
  params.in_channels = in_channels;
  params.out_channels = in_channels * depth_multiplier;
  params.kernel_size = kernel_size;
  params.stride = stride;
  params.padding = padding;
  params.dilation = dilation;
  params.groups = in_channels;
  params.bias = depthwise_bias;
  params.padding_mode = padding_mode;
  return params;
}

ConvParams SeparableParams::pointwise_params() const {
  ConvParams params;
  params.in_channels = in_channels * depth_multiplier;
  params.out_channels = out_channels;
  params.kernel_size = 1;
  params.bias = pointwise_bias;
  return params;
}

// The pointwise part draws from a different stream than the depthwise part.
constexpr uint64_t kPointwiseSeedOffset = 0x9e3779b97f4a7c15ull;

SeparableConv1d::SeparableConv1d(const SeparableParams& params, DType dtype, uint64_t seed,
                                 PlanOptions options)
    : params_(params),
      depthwise_(params.depthwise_params(), dtype, seed, options),
      pointwise_(params.pointwise_params(), dtype, seed + kPointwiseSeedOffset, options) {}

Tensor SeparableConv1d::forward(const Tensor& input, Layout layout) const {
  return pointwise_.forward(depthwise_.forward(input, layout), layout);
}

SeparableConv1d::Gradients SeparableConv1d::backward(const Tensor& input,
                                                     const Tensor& grad_output,
                                                     Layout layout) const {
  const Tensor middle = depthwise_.forward(input, layout);
  Gradients grads;
  grads.pointwise = pointwise_.backward(middle, grad_output, layout);
  grads.depthwise = depthwise_.backward(input, grads.pointwise.input, layout);
  grads.input = std::move(grads.depthwise.input);
  grads.depthwise.input = Tensor();
  grads.pointwise.input = Tensor();
  return grads;
}

}  // namespace conv1d
