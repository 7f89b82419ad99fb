#include "commands.hpp"

#include <fmt/format.h>

#include <array>
#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <conv1d/npy.hpp>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common.hpp"

namespace conv1d::cli {

namespace {

// ConvFlags parsed; what still needs the shapes of the data comes later.
struct Flags {
  int64_t stride = 1;
  int64_t dilation = 1;
  std::optional<int64_t> groups;
  Padding padding;
  PaddingMode padding_mode = PaddingMode::zeros;
  Layout layout = Layout::ncl;
  PlanOptions plan;
};

Flags parse_flags(const ConvFlags& text) {
  // The ISA cap applies to plans made afterwards, so it comes first.
  if (!text.isa.empty()) set_max_isa(text.isa);
  Flags flags;
  flags.stride = parse_int(text.stride, "--stride");
  flags.dilation = parse_int(text.dilation, "--dilation");
  if (!text.groups.empty()) flags.groups = parse_int(text.groups, "--groups");
  flags.padding = Padding::parse(text.padding);
  flags.padding_mode = parse_padding_mode(text.padding_mode);
  flags.layout = parse_layout(text.layout);
  flags.plan.algorithm = text.algorithm;
  flags.plan.threads = parse_threads(text.threads);
  flags.plan.tune = text.tune;
  flags.plan.tune_cache = text.tune_cache;
  return flags;
}

// (batch, channels, length) of an activation array of rank 3 (batched) or 2
// (unbatched), stored in `layout` order.
std::array<int64_t, 3> activation_dims(const std::vector<int64_t>& shape, Layout layout,
                                       std::string_view what) {
  const bool ncl = layout == Layout::ncl;
  if (shape.size() != 2 && shape.size() != 3) {
    throw Error(fmt::format("{} must be 3-D {} or 2-D {} for layout {}, got {}-D shape {}", what,
                            ncl ? "(N, C, L)" : "(N, L, C)", ncl ? "(C, L)" : "(L, C)",
                            to_string(layout), shape.size(), shape_string(shape)));
  }
  const int64_t batch = shape.size() == 3 ? shape[0] : 1;
  const size_t first = shape.size() - 2;
  return ncl ? std::array{batch, shape[first], shape[first + 1]}
             : std::array{batch, shape[first + 1], shape[first]};
}

std::vector<int64_t> activation_shape(size_t rank, int64_t batch, int64_t channels, int64_t length,
                                      Layout layout) {
  std::vector<int64_t> shape;
  if (rank == 3) shape.push_back(batch);
  if (layout == Layout::ncl) {
    shape.insert(shape.end(), {channels, length});
  } else {
    shape.insert(shape.end(), {length, channels});
  }
  return shape;
}

void require_rank3_weight(const std::vector<int64_t>& shape, std::string_view what,
                          std::string_view dims) {
  if (shape.size() != 3) {
    throw Error(fmt::format("{} must be 3-D {}, got {}-D shape {}", what, dims, shape.size(),
                            shape_string(shape)));
  }
}

void require_bias_shape(const Tensor& bias, int64_t channels, std::string_view what,
                        std::string_view channels_name) {
  if (bias.shape() != std::vector<int64_t>{channels}) {
    throw Error(fmt::format("{} shape {} does not match {}={}: expected ({},)", what,
                            shape_string(bias.shape()), channels_name, channels, channels));
  }
}

void require_dtype(const Tensor& tensor, DType expected, std::string_view what) {
  if (tensor.dtype() != expected) {
    throw Error(
        fmt::format("{} dtype {} does not match the input dtype {}: all inputs must share "
                    "one dtype",
                    what, to_string(tensor.dtype()), to_string(expected)));
  }
}

// One standard (possibly grouped / depthwise / dilated) convolution of an
// input of the given shape by a weight of the given shape.
struct Conv {
  Problem problem;
  std::vector<int64_t> output_shape;
};

Conv describe(const std::vector<int64_t>& input_shape, const std::vector<int64_t>& weight_shape,
              bool has_bias, DType dtype, const Flags& flags) {
  const auto [batch, channels, length] = activation_dims(input_shape, flags.layout, "input");
  require_rank3_weight(weight_shape, "weight", "(out_channels, in_channels/groups, kernel_size)");
  ConvParams params;
  params.in_channels = channels;
  params.out_channels = weight_shape[0];
  params.kernel_size = weight_shape[2];
  params.stride = flags.stride;
  params.padding = flags.padding;
  params.dilation = flags.dilation;
  params.groups = flags.groups.value_or(1);
  params.bias = has_bias;
  params.padding_mode = flags.padding_mode;
  params.validate();
  if (weight_shape[1] != channels / params.groups) {
    throw Error(
        fmt::format("weight shape {} does not match in_channels={} / groups={}: expected "
                    "weight.shape[1] = {}",
                    shape_string(weight_shape), channels, params.groups, channels / params.groups));
  }
  Conv conv;
  conv.problem = Problem::make(params, batch, length, dtype, flags.layout);
  conv.output_shape = activation_shape(input_shape.size(), batch, params.out_channels,
                                       conv.problem.out_length(), flags.layout);
  return conv;
}

template <class T>
TensorRef<const T> input_ref(const Tensor& tensor, const Problem& p) {
  return TensorRef<const T>::contiguous(tensor.data<T>(), p.batch, p.in_channels, p.length,
                                        p.layout);
}

template <class T>
TensorRef<T> input_ref(Tensor& tensor, const Problem& p) {
  return TensorRef<T>::contiguous(tensor.data<T>(), p.batch, p.in_channels, p.length, p.layout);
}

template <class T>
TensorRef<const T> output_ref(const Tensor& tensor, const Problem& p) {
  return TensorRef<const T>::contiguous(tensor.data<T>(), p.batch, p.out_channels, p.out_length(),
                                        p.layout);
}

template <class T>
TensorRef<T> output_ref(Tensor& tensor, const Problem& p) {
  return TensorRef<T>::contiguous(tensor.data<T>(), p.batch, p.out_channels, p.out_length(),
                                  p.layout);
}

// Calls body(T{}) with T the C++ type of `dtype`.
template <class Body>
void with_dtype(DType dtype, const Body& body) {
  if (dtype == DType::f32) {
    body(float{});
  } else {
    body(double{});
  }
}

Tensor apply_standard(const ApplyOptions& options, const Flags& flags, const Tensor& input,
                      const Tensor& weight, const std::optional<Tensor>& bias) {
  const Conv conv = describe(input.shape(), weight.shape(), bias.has_value(), input.dtype(), flags);
  if (bias) require_bias_shape(*bias, conv.problem.out_channels, "bias", "out_channels");
  check_output_path(options.output, "--output");

  Plan plan(conv.problem, flags.plan);
  Tensor output(input.dtype(), conv.output_shape);
  with_dtype(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    plan.set_weights(weight.data<T>(), bias ? bias->data<T>() : nullptr);
    plan.forward(input_ref<T>(input, conv.problem), output_ref<T>(output, conv.problem));
  });
  return output;
}

// A separable convolution: depthwise (C_mid, 1, K) then pointwise
// (C_out, C_mid, 1), each with an optional bias.
struct SeparableShapes {
  SeparableParams params;
  Problem depthwise;
  Problem pointwise;
  std::vector<int64_t> output_shape;
};

// Checks the shapes of a separable layer as apply, backward and info read
// them; every shape error comes before any work.
SeparableShapes describe_separable_shapes(const std::vector<int64_t>& input_shape,
                                          const std::vector<int64_t>& depthwise_shape,
                                          const std::vector<int64_t>& pointwise_shape,
                                          bool depthwise_bias, bool pointwise_bias, DType dtype,
                                          const Flags& flags) {
  const auto [batch, channels, length] = activation_dims(input_shape, flags.layout, "input");
  if (channels <= 0) {
    throw Error(fmt::format("in_channels must be positive, got in_channels={} (input shape {})",
                            channels, shape_string(input_shape)));
  }
  if (flags.groups && *flags.groups != channels) {
    throw Error(
        fmt::format("--groups={} but a separable convolution (--pointwise-weight) is "
                    "depthwise: groups must be in_channels={} (or be left out)",
                    *flags.groups, channels));
  }
  require_rank3_weight(depthwise_shape, "depthwise weight",
                       "(in_channels * depth_multiplier, 1, kernel_size)");
  if (depthwise_shape[1] != 1 || depthwise_shape[0] <= 0 || depthwise_shape[0] % channels != 0) {
    throw Error(
        fmt::format("depthwise weight shape {} does not match in_channels={}: expected "
                    "(in_channels * depth_multiplier, 1, kernel_size)",
                    shape_string(depthwise_shape), channels));
  }
  const int64_t middle = depthwise_shape[0];
  require_rank3_weight(pointwise_shape, "pointwise weight", "(out_channels, middle_channels, 1)");
  if (pointwise_shape[1] != middle || pointwise_shape[2] != 1) {
    throw Error(
        fmt::format("pointwise weight shape {} does not match the depthwise output of {} "
                    "channels: expected ({}, {}, 1)",
                    shape_string(pointwise_shape), middle, pointwise_shape[0], middle));
  }

  SeparableParams params;
  params.in_channels = channels;
  params.out_channels = pointwise_shape[0];
  params.kernel_size = depthwise_shape[2];
  params.stride = flags.stride;
  params.padding = flags.padding;
  params.dilation = flags.dilation;
  params.depth_multiplier = middle / channels;
  params.padding_mode = flags.padding_mode;
  params.depthwise_bias = depthwise_bias;
  params.pointwise_bias = pointwise_bias;
  const Problem depthwise =
      Problem::make(params.depthwise_params(), batch, length, dtype, flags.layout);
  const Problem pointwise =
      Problem::make(params.pointwise_params(), batch, depthwise.out_length(), dtype, flags.layout);
  return {params, depthwise, pointwise,
          activation_shape(input_shape.size(), batch, params.out_channels, pointwise.out_length(),
                           flags.layout)};
}

struct Separable {
  SeparableParams params;
  std::vector<int64_t> output_shape;
  Tensor pointwise_weight;
  std::optional<Tensor> pointwise_bias;
};

Separable describe_separable(const Tensor& input, const Tensor& weight,
                             const std::optional<Tensor>& bias, const std::string& pointwise_weight,
                             const std::string& pointwise_bias, const Flags& flags) {
  Separable separable;
  separable.pointwise_weight = read_npy(pointwise_weight);
  require_dtype(separable.pointwise_weight, input.dtype(), "pointwise weight");
  if (!pointwise_bias.empty()) {
    separable.pointwise_bias = read_npy(pointwise_bias);
    require_dtype(*separable.pointwise_bias, input.dtype(), "pointwise bias");
  }
  const SeparableShapes shapes = describe_separable_shapes(
      input.shape(), weight.shape(), separable.pointwise_weight.shape(), bias.has_value(),
      separable.pointwise_bias.has_value(), input.dtype(), flags);
  separable.params = shapes.params;
  separable.output_shape = shapes.output_shape;
  if (bias)
    require_bias_shape(*bias, shapes.depthwise.out_channels, "depthwise bias", "middle_channels");
  if (separable.pointwise_bias) {
    require_bias_shape(*separable.pointwise_bias, shapes.params.out_channels, "pointwise bias",
                       "out_channels");
  }
  return separable;
}

// The layer runs the two parts (and may fuse them); it holds a mutex, so it
// lives on the heap to be returned.
std::unique_ptr<SeparableConv1d> make_separable(const Separable& separable, const Tensor& weight,
                                                const std::optional<Tensor>& bias, DType dtype,
                                                const PlanOptions& options) {
  auto layer = std::make_unique<SeparableConv1d>(separable.params, dtype, 0, options);
  layer->depthwise().mutable_weight() = weight;
  if (bias) layer->depthwise().mutable_bias() = *bias;
  layer->pointwise().mutable_weight() = separable.pointwise_weight;
  if (separable.pointwise_bias) layer->pointwise().mutable_bias() = *separable.pointwise_bias;
  return layer;
}

Tensor apply_separable(const ApplyOptions& options, const Flags& flags, const Tensor& input,
                       const Tensor& weight, const std::optional<Tensor>& bias) {
  const Separable separable = describe_separable(input, weight, bias, options.pointwise_weight,
                                                 options.pointwise_bias, flags);
  check_output_path(options.output, "--output");
  return make_separable(separable, weight, bias, input.dtype(), flags.plan)
      ->forward(input, flags.layout);
}

std::optional<Tensor> read_optional(const std::string& path, DType dtype, std::string_view what) {
  if (path.empty()) return std::nullopt;
  Tensor tensor = read_npy(path);
  require_dtype(tensor, dtype, what);
  return tensor;
}

}  // namespace

int run_apply(const ApplyOptions& options) {
  const Flags flags = parse_flags(options.conv);
  const Tensor input = read_npy(options.input);
  const Tensor weight = read_npy(options.weight);
  require_dtype(weight, input.dtype(), "weight");
  const std::optional<Tensor> bias = read_optional(options.bias, input.dtype(), "bias");
  const Tensor output = options.pointwise_weight.empty()
                            ? apply_standard(options, flags, input, weight, bias)
                            : apply_separable(options, flags, input, weight, bias);
  write_outputs({{options.output, &output}});
  return 0;
}

int run_backward(const BackwardOptions& options) {
  const bool separable = !options.pointwise_weight.empty();
  // (path, flag) of every gradient asked for.
  std::vector<std::pair<std::string, std::string_view>> requested;
  auto want = [&](const std::string& path, std::string_view flag) {
    if (!path.empty()) requested.emplace_back(path, flag);
  };
  want(options.grad_input, "--grad-input");
  want(options.grad_weight, "--grad-weight");
  want(options.grad_bias, "--grad-bias");
  want(options.grad_pointwise_weight, "--grad-pointwise-weight");
  want(options.grad_pointwise_bias, "--grad-pointwise-bias");
  if (requested.empty()) {
    throw Error(
        fmt::format("backward has nothing to write: give --grad-input, --grad-weight or "
                    "--grad-bias{}",
                    separable ? ", --grad-pointwise-weight or --grad-pointwise-bias" : ""));
  }
  if (!options.grad_bias.empty() && options.bias.empty()) {
    throw Error("--grad-bias needs --bias: without a bias the layer has no bias gradient");
  }
  if (!options.grad_pointwise_bias.empty() && options.pointwise_bias.empty()) {
    throw Error(
        "--grad-pointwise-bias needs --pointwise-bias: without it the pointwise part has "
        "no bias gradient");
  }
  for (size_t i = 0; i < requested.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (requested[i].first == requested[j].first) {
        throw Error(fmt::format("{} and {} name the same file '{}'", requested[j].second,
                                requested[i].second, requested[i].first));
      }
    }
  }

  const Flags flags = parse_flags(options.conv);
  const Tensor input = read_npy(options.input);
  const Tensor weight = read_npy(options.weight);
  require_dtype(weight, input.dtype(), "weight");
  // The bias values do not enter any gradient; the file says the layer has one.
  const std::optional<Tensor> bias = read_optional(options.bias, input.dtype(), "bias");
  const Tensor grad_output = read_npy(options.grad_output);
  require_dtype(grad_output, input.dtype(), "grad-output");

  auto check_grad_output = [&](const std::vector<int64_t>& output_shape) {
    if (grad_output.shape() != output_shape) {
      throw Error(
          fmt::format("grad-output shape {} does not match the output shape {} of this "
                      "convolution",
                      shape_string(grad_output.shape()), shape_string(output_shape)));
    }
    for (const auto& [path, flag] : requested) check_output_path(path, flag);
  };

  std::vector<std::pair<std::string, const Tensor*>> outputs;
  auto output = [&](const std::string& path, const Tensor& tensor) {
    if (!path.empty()) outputs.emplace_back(path, &tensor);
  };

  if (separable) {
    const Separable description = describe_separable(input, weight, bias, options.pointwise_weight,
                                                     options.pointwise_bias, flags);
    check_grad_output(description.output_shape);
    const SeparableConv1d::Gradients grads =
        make_separable(description, weight, bias, input.dtype(), flags.plan)
            ->backward(input, grad_output, flags.layout);
    output(options.grad_input, grads.input);
    output(options.grad_weight, grads.depthwise.weight);
    output(options.grad_bias, grads.depthwise.bias);
    output(options.grad_pointwise_weight, grads.pointwise.weight);
    output(options.grad_pointwise_bias, grads.pointwise.bias);
    write_outputs(outputs);
    return 0;
  }

  const Conv conv = describe(input.shape(), weight.shape(), bias.has_value(), input.dtype(), flags);
  const Problem& problem = conv.problem;
  if (bias) require_bias_shape(*bias, problem.out_channels, "bias", "out_channels");
  check_grad_output(conv.output_shape);

  Plan plan(problem, flags.plan);
  Tensor grad_input(input.dtype(), input.shape());
  Tensor grad_weight(input.dtype(), weight.shape());
  Tensor grad_bias = bias ? Tensor(input.dtype(), {problem.out_channels}) : Tensor();
  with_dtype(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    plan.set_weights(weight.data<T>(), bias ? bias->data<T>() : nullptr);
    const auto gy = output_ref<T>(grad_output, problem);
    if (!options.grad_input.empty()) plan.backward_data(gy, input_ref<T>(grad_input, problem));
    if (!options.grad_weight.empty() || !options.grad_bias.empty()) {
      plan.backward_weight(input_ref<T>(input, problem), gy, grad_weight.data<T>(),
                           bias ? grad_bias.data<T>() : nullptr);
    }
  });
  output(options.grad_input, grad_input);
  output(options.grad_weight, grad_weight);
  output(options.grad_bias, grad_bias);
  write_outputs(outputs);
  return 0;
}

ApplyLayer load_apply_layer(const ApplyOptions& options) {
  const Flags flags = parse_flags(options.conv);
  ApplyLayer layer;
  layer.layout = flags.layout;
  layer.plan = flags.plan;
  layer.input = read_npy(options.input);
  const DType dtype = layer.input.dtype();
  const Tensor weight = read_npy(options.weight);
  require_dtype(weight, dtype, "weight");
  const std::optional<Tensor> bias = read_optional(options.bias, dtype, "bias");
  if (options.pointwise_weight.empty()) {
    const Conv conv = describe(layer.input.shape(), weight.shape(), bias.has_value(), dtype, flags);
    const Problem& p = conv.problem;
    if (bias) require_bias_shape(*bias, p.out_channels, "bias", "out_channels");
    ConvParams params;
    params.in_channels = p.in_channels;
    params.out_channels = p.out_channels;
    params.kernel_size = p.kernel_size;
    params.stride = p.stride;
    params.padding = flags.padding;
    params.dilation = p.dilation;
    params.groups = p.groups;
    params.bias = p.has_bias;
    params.padding_mode = p.padding_mode;
    layer.conv = std::make_unique<Conv1d>(params, dtype, 0, flags.plan);
    layer.conv->mutable_weight() = weight;
    if (bias) layer.conv->mutable_bias() = *bias;
    layer.output_shape = conv.output_shape;
  } else {
    const Separable separable = describe_separable(
        layer.input, weight, bias, options.pointwise_weight, options.pointwise_bias, flags);
    layer.separable = make_separable(separable, weight, bias, dtype, flags.plan);
    layer.output_shape = separable.output_shape;
  }
  check_output_path(options.output, "--output");
  return layer;
}

namespace {

void print_line(std::string_view label, std::string_view value) {
  fmt::print("{:<22}{}\n", label, value);
}

// The algorithms for the plan's problem and the one it picked.
void print_algorithms(const Plan& plan, std::string_view part) {
  const std::vector<AlgorithmStatus> statuses = algorithm_statuses(plan.problem());
  fmt::print("{}\n", part.empty() ? std::string("algorithms") : fmt::format("{} algorithms", part));
  size_t width = 0;
  for (const AlgorithmStatus& status : statuses) width = std::max(width, status.name.size());
  for (const AlgorithmStatus& status : statuses) {
    fmt::print("  {:<{}}  {}\n", status.name, width,
               status.supported ? std::string("ok") : status.reason);
  }
  const std::string prefix = part.empty() ? std::string() : fmt::format("{} ", part);
  print_line(prefix + "plan picks", plan.algorithm());
  print_line(prefix + "selection", plan.selection());
}

int run_separable_info(const InfoOptions& options, const Flags& flags,
                       const std::vector<int64_t>& input_shape,
                       const std::vector<int64_t>& weight_shape, DType dtype) {
  const std::vector<int64_t> pointwise_shape =
      parse_shape(options.pointwise_weight_shape, "--pointwise-weight-shape");
  const SeparableShapes shapes =
      describe_separable_shapes(input_shape, weight_shape, pointwise_shape, !options.no_bias,
                                !options.no_pointwise_bias, dtype, flags);
  const SeparableConv1d layer(shapes.params, dtype, 0, flags.plan);
  print_line("depthwise", shapes.depthwise.to_string());
  print_line("pointwise", shapes.pointwise.to_string());
  print_line("input shape", fmt::format("{}, {}, layout {}", shape_string(input_shape),
                                        to_string(dtype), to_string(shapes.depthwise.layout)));
  print_line("weight shapes", fmt::format("depthwise {}, pointwise {}", shape_string(weight_shape),
                                          shape_string(pointwise_shape)));
  print_line("output shape", shape_string(shapes.output_shape));
  const double flops = shapes.depthwise.flops() + shapes.pointwise.flops();
  print_line("FLOPs", fmt::format("{:.0f} ({:.6g} GFLOP)", flops, flops * 1e-9));
  const Plan depthwise(shapes.depthwise, flags.plan);
  const Plan pointwise(shapes.pointwise, flags.plan);
  print_algorithms(depthwise, "depthwise");
  print_algorithms(pointwise, "pointwise");
  print_line("layer runs", layer.algorithm_for(shapes.depthwise.batch, shapes.depthwise.length,
                                               shapes.depthwise.layout));
  print_line("isa", depthwise.isa());
  print_line("threads", fmt::format("{}", depthwise.threads()));
  return 0;
}

}  // namespace

int run_info(const InfoOptions& options) {
  const Flags flags = parse_flags(options.conv);
  const std::vector<int64_t> input_shape = parse_shape(options.input_shape, "--input-shape");
  const std::vector<int64_t> weight_shape = parse_shape(options.weight_shape, "--weight-shape");
  const DType dtype = parse_dtype(options.dtype);
  if (!options.pointwise_weight_shape.empty()) {
    return run_separable_info(options, flags, input_shape, weight_shape, dtype);
  }
  const Conv conv = describe(input_shape, weight_shape, !options.no_bias, dtype, flags);
  const Problem& problem = conv.problem;
  const Plan plan(problem, flags.plan);

  print_line("problem", problem.to_string());
  print_line("input shape", fmt::format("{}, {}, layout {}", shape_string(input_shape),
                                        to_string(dtype), to_string(problem.layout)));
  print_line("weight shape", shape_string(weight_shape));
  print_line("output shape", shape_string(conv.output_shape));
  print_line("FLOPs",
             fmt::format("{:.0f} ({:.6g} GFLOP)", problem.flops(), problem.flops() * 1e-9));
  print_algorithms(plan, "");
  print_line("isa", plan.isa());
  if (plan.forward_threads() == plan.threads()) {
    print_line("threads", fmt::format("{}", plan.threads()));
  } else {
    print_line("threads", fmt::format("{} (forward runs on {}: too little work to share out)",
                                      plan.threads(), plan.forward_threads()));
  }
  return 0;
}

}  // namespace conv1d::cli
