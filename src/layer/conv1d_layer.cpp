#include <cmath>
#include <conv1d/layer.hpp>
#include <random>

#include "core/strings.hpp"
#include "layer/activation.hpp"

namespace conv1d {

using core::str_cat;

using layer::activation_dims;
using layer::activation_ref;
using layer::activation_shape;
using layer::check_dtype;
using layer::shape_string;

Conv1d::Conv1d(const ConvParams& params, DType dtype, uint64_t seed, PlanOptions options)
    : params_(params), options_(std::move(options)) {
  params_.validate();
  weight_ = Tensor(
      dtype, {params_.out_channels, params_.in_channels / params_.groups, params_.kernel_size});
  if (params_.bias) bias_ = Tensor(dtype, {params_.out_channels});
  reset_parameters(seed);
}

Tensor& Conv1d::mutable_weight() {
  ++weights_version_;
  return weight_;
}

Tensor& Conv1d::mutable_bias() {
  if (!params_.bias) throw Error("this Conv1d was made with bias=false and has no bias");
  ++weights_version_;
  return bias_;
}

void Conv1d::reset_parameters(uint64_t seed) {
  // PyTorch: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in), and the
  // bias uses the same bound.
  const double fan_in = static_cast<double>(params_.in_channels / params_.groups) *
                        static_cast<double>(params_.kernel_size);
  const double bound = 1.0 / std::sqrt(fan_in);
  std::mt19937_64 generator(seed);
  auto fill = [&](Tensor& tensor) {
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      const double unit = static_cast<double>(generator() >> 11) * 0x1.0p-53;  // [0, 1)
      const double value = -bound + 2.0 * bound * unit;
      if (tensor.dtype() == DType::f32) {
        tensor.data<float>()[i] = static_cast<float>(value);
      } else {
        tensor.data<double>()[i] = value;
      }
    }
  };
  fill(weight_);
  if (params_.bias) fill(bias_);
  ++weights_version_;
}

const Plan& Conv1d::plan_for(int64_t batch, int64_t length, Layout layout) const {
  std::lock_guard lock(plans_mutex_);
  CachedPlan& cached = plans_[{batch, length, layout}];
  if (!cached.plan) {
    cached.plan = std::make_unique<Plan>(
        Problem::make(params_, batch, length, weight_.dtype(), layout), options_);
  }
  if (cached.weights_version != weights_version_ && !share_current_weights(*cached.plan)) {
    if (weight_.dtype() == DType::f32) {
      cached.plan->set_weights(weight_.data<float>(), params_.bias ? bias_.data<float>() : nullptr);
    } else {
      cached.plan->set_weights(weight_.data<double>(),
                               params_.bias ? bias_.data<double>() : nullptr);
    }
  }
  cached.weights_version = weights_version_;
  return *cached.plan;
}

// A plan for a new input length usually packs the weights as the plans for
// other lengths do: it shares their copy (microseconds, no memory) instead
// of packing its own (Whisper's 3 MB layers: ~1 ms, more in fresh pages).
bool Conv1d::share_current_weights(Plan& plan) const {
  for (const auto& [key, other] : plans_) {
    if (other.plan && other.plan.get() != &plan && other.weights_version == weights_version_ &&
        plan.share_weights(*other.plan)) {
      return true;
    }
  }
  return false;
}

template <class T>
void Conv1d::forward(TensorRef<const T> input, TensorRef<T> output) const {
  if (input.channels != params_.in_channels) {
    throw Error(str_cat("expected input with in_channels=", params_.in_channels, " channels, got ",
                        input.channels));
  }
  plan_for(input.batch, input.length, Layout::ncl).forward(input, output);
}

Tensor Conv1d::forward(const Tensor& input, Layout layout) const {
  check_dtype(input, weight_.dtype(), "input");
  const auto dims = activation_dims(input, layout, "input");
  if (dims[1] != params_.in_channels) {
    throw Error(str_cat("expected input with in_channels=", params_.in_channels, " channels, got ",
                        dims[1], " channels in input of shape ", shape_string(input.shape()),
                        " (layout ", to_string(layout), ")"));
  }
  const Plan& plan = plan_for(dims[0], dims[2], layout);
  const int64_t out_length = plan.problem().out_length();
  Tensor output(input.dtype(),
                activation_shape(input.rank(), dims[0], params_.out_channels, out_length, layout));
  const std::array<int64_t, 3> out_dims{dims[0], params_.out_channels, out_length};
  if (input.dtype() == DType::f32) {
    plan.forward(activation_ref(input.data<float>(), dims, layout),
                 activation_ref(output.data<float>(), out_dims, layout));
  } else {
    plan.forward(activation_ref(input.data<double>(), dims, layout),
                 activation_ref(output.data<double>(), out_dims, layout));
  }
  return output;
}

Conv1d::Gradients Conv1d::backward(const Tensor& input, const Tensor& grad_output,
                                   Layout layout) const {
  check_dtype(input, weight_.dtype(), "input");
  check_dtype(grad_output, weight_.dtype(), "grad_output");
  const auto dims = activation_dims(input, layout, "input");
  if (dims[1] != params_.in_channels) {
    throw Error(str_cat("expected input with in_channels=", params_.in_channels, " channels, got ",
                        dims[1], " channels in input of shape ", shape_string(input.shape())));
  }
  const Plan& plan = plan_for(dims[0], dims[2], layout);
  const std::array<int64_t, 3> out_dims{dims[0], params_.out_channels, plan.problem().out_length()};
  const auto expected_grad_shape =
      activation_shape(input.rank(), out_dims[0], out_dims[1], out_dims[2], layout);
  if (grad_output.shape() != expected_grad_shape) {
    throw Error(str_cat("grad_output has shape ", shape_string(grad_output.shape()),
                        " but the output has shape ", shape_string(expected_grad_shape)));
  }
  Gradients grads{Tensor(input.dtype(), input.shape()), Tensor(input.dtype(), weight_.shape()),
                  params_.bias ? Tensor(input.dtype(), bias_.shape()) : Tensor()};
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const auto x = activation_ref(input.data<T>(), dims, layout);
    const auto gy = activation_ref(grad_output.data<T>(), out_dims, layout);
    plan.backward_data(gy, activation_ref(grads.input.data<T>(), dims, layout));
    plan.backward_weight(x, gy, grads.weight.data<T>(),
                         params_.bias ? grads.bias.data<T>() : static_cast<T*>(nullptr));
  };
  if (input.dtype() == DType::f32) {
    run(float{});
  } else {
    run(double{});
  }
  return grads;
}

template void Conv1d::forward<float>(TensorRef<const float>, TensorRef<float>) const;
template void Conv1d::forward<double>(TensorRef<const double>, TensorRef<double>) const;

}  // namespace conv1d
