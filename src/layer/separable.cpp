#include <conv1d/layer.hpp>

#include "core/overlap.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "kernels/separable/executor.hpp"
#include "layer/activation.hpp"
#include "plan/registry.hpp"

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
                                 PlanOptions options, SeparableOptions separable_options)
    : params_(params),
      options_(options),
      separable_options_(std::move(separable_options)),
      depthwise_(params.depthwise_params(), dtype, seed, options),
      pointwise_(params.pointwise_params(), dtype, seed + kPointwiseSeedOffset, options) {
  if (options_.threads < 0) {
    throw Error(
        core::str_cat("threads must be non-negative (0 = all), got threads=", options_.threads));
  }
  const std::string& execution = separable_options_.execution;
  if (execution != "auto" && execution != "fused" && execution != "two-pass") {
    throw Error(core::str_cat("unknown separable execution '", execution,
                              "': expected auto, fused or two-pass"));
  }
}

SeparableConv1d::~SeparableConv1d() = default;

const detail::SeparableExecutor* SeparableConv1d::fused_for(int64_t batch, int64_t length,
                                                            Layout layout, int* threads) const {
  std::lock_guard lock(paths_mutex_);
  CachedPath& cached = paths_[{batch, length, layout}];
  if (!cached.decided) {
    const Problem depthwise = Problem::make(depthwise_.params(), batch, length, dtype(), layout);
    const Problem pointwise =
        Problem::make(pointwise_.params(), batch, depthwise.out_length(), dtype(), layout);
    std::optional<std::string> why_not;
    if (separable_options_.execution == "two-pass") {
      why_not = "two-pass execution was requested";
    } else if (options_.algorithm != "auto" && separable_options_.execution == "auto") {
      why_not = "PlanOptions::algorithm names an algorithm for each part";
    } else {
      why_not = algorithms::separable::why_not(depthwise, pointwise);
    }
    if (why_not && separable_options_.execution == "fused") {
      throw Error(core::str_cat("fused separable execution is not available for ",
                                depthwise.to_string(), ": ", *why_not));
    }
    if (!why_not) {
      cached.fused = algorithms::separable::create(depthwise, pointwise);
      const auto seconds = [](const Problem& part) {
        return detail::select_algorithm(part).estimated_seconds(part);
      };
      cached.threads = core::threads_for_work(seconds(depthwise) + seconds(pointwise),
                                              core::resolve_threads(options_.threads));
    }
    cached.decided = true;
  }
  const auto current = [&](const CachedPath& path) {
    return path.depthwise_version == depthwise_.weights_version() &&
           path.pointwise_version == pointwise_.weights_version();
  };
  // Another length's packed weights, when current and packed the same way.
  const auto share = [&] {
    for (const auto& [key, other] : paths_) {
      if (other.fused && &other != &cached && current(other) &&
          cached.fused->share_weights(*other.fused)) {
        return true;
      }
    }
    return false;
  };
  if (cached.fused && !current(cached) && share()) {
    cached.depthwise_version = depthwise_.weights_version();
    cached.pointwise_version = pointwise_.weights_version();
  }
  if (cached.fused && !current(cached)) {
    const auto data = [](const Tensor& tensor) -> const void* {
      if (tensor.rank() == 0) return nullptr;
      if (tensor.dtype() == DType::f32) return tensor.data<float>();
      return tensor.data<double>();
    };
    cached.fused->set_weights(data(depthwise_.weight()), data(depthwise_.bias()),
                              data(pointwise_.weight()), data(pointwise_.bias()));
    cached.depthwise_version = depthwise_.weights_version();
    cached.pointwise_version = pointwise_.weights_version();
  }
  if (threads != nullptr) *threads = cached.threads;
  return cached.fused.get();
}

std::string_view SeparableConv1d::algorithm_for(int64_t batch, int64_t length,
                                                Layout layout) const {
  return fused_for(batch, length, layout) != nullptr ? "fused" : "two-pass";
}

Tensor SeparableConv1d::forward(const Tensor& input, Layout layout) const {
  layer::check_dtype(input, dtype(), "input");
  const auto dims = layer::activation_dims(input, layout, "input");
  if (dims[1] != params_.in_channels) {
    throw Error(core::str_cat("expected input with in_channels=", params_.in_channels,
                              " channels, got ", dims[1], " channels in input of shape ",
                              layer::shape_string(input.shape()), " (layout ", to_string(layout),
                              ")"));
  }
  int threads = 1;
  const detail::SeparableExecutor* fused = fused_for(dims[0], dims[2], layout, &threads);
  if (fused == nullptr) return pointwise_.forward(depthwise_.forward(input, layout), layout);
  const int64_t out_length =
      Problem::make(depthwise_.params(), dims[0], dims[2], dtype(), layout).out_length();
  const std::array<int64_t, 3> out_dims{dims[0], params_.out_channels, out_length};
  Tensor output(input.dtype(), layer::activation_shape(input.rank(), out_dims[0], out_dims[1],
                                                       out_dims[2], layout));
  if (input.dtype() == DType::f32) {
    fused->forward(layer::activation_ref(input.data<float>(), dims, layout),
                   layer::activation_ref(output.data<float>(), out_dims, layout), threads);
  } else {
    fused->forward(layer::activation_ref(input.data<double>(), dims, layout),
                   layer::activation_ref(output.data<double>(), out_dims, layout), threads);
  }
  return output;
}

template <class T>
void SeparableConv1d::forward(TensorRef<const T> input, TensorRef<T> output) const {
  if (dtype_of<T>() != dtype()) {
    throw Error(core::str_cat("input dtype ", to_string(dtype_of<T>()),
                              " does not match the layer's ", to_string(dtype())));
  }
  if (input.channels != params_.in_channels) {
    throw Error(core::str_cat("expected input with in_channels=", params_.in_channels,
                              " channels, got ", input.channels));
  }
  // Channels-last views run the kernels made for NLC.
  const Layout layout =
      input.channel_stride == 1 && input.length_stride != 1 ? Layout::nlc : Layout::ncl;
  const Problem depthwise =
      Problem::make(depthwise_.params(), input.batch, input.length, dtype(), layout);
  if (output.batch != input.batch || output.channels != params_.out_channels ||
      output.length != depthwise.out_length()) {
    throw Error(core::str_cat("output of shape (", output.batch, ", ", output.channels, ", ",
                              output.length, ") does not match the expected (", input.batch, ", ",
                              params_.out_channels, ", ", depthwise.out_length(), ")"));
  }
  core::check_no_overlap(input, "input", output, "output");
  int threads = 1;
  if (const detail::SeparableExecutor* fused =
          fused_for(input.batch, input.length, layout, &threads)) {
    fused->forward(input, output, threads);
    return;
  }
  Tensor middle(dtype(), {input.batch, depthwise.out_channels, depthwise.out_length()});
  const auto middle_ref = TensorRef<T>::contiguous(
      middle.data<T>(), input.batch, depthwise.out_channels, depthwise.out_length(), Layout::ncl);
  depthwise_.forward(input, middle_ref);
  pointwise_.forward(TensorRef<const T>(middle_ref), output);
}

SeparableConv1d::Gradients SeparableConv1d::backward(const Tensor& input, const Tensor& grad_output,
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

template void SeparableConv1d::forward<float>(TensorRef<const float>, TensorRef<float>) const;
template void SeparableConv1d::forward<double>(TensorRef<const double>, TensorRef<double>) const;

}  // namespace conv1d
