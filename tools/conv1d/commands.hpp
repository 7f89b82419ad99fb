// The subcommands apply, backward and info. Options arrive as the text the
// user typed; the commands parse and check them, so every bad value is
// reported through conv1d::Error with one message.
#pragma once

#include <conv1d/layer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace conv1d::cli {

// Flags shared by every subcommand that describes one convolution.
struct ConvFlags {
  std::string stride = "1";
  std::string padding = "0";
  std::string padding_mode = "zeros";
  std::string dilation = "1";
  std::string groups;  // empty: 1, or in_channels for a separable convolution
  std::string layout = "ncl";
  std::string algorithm = "auto";
  std::string threads = "0";
  std::string isa;  // empty: no cap beyond CONV1D_MAX_ISA
  bool tune = false;
  std::string tune_cache;
};

struct ApplyOptions {
  std::string input, weight, bias, output;
  std::string pointwise_weight, pointwise_bias;
  ConvFlags conv;
};

struct BackwardOptions {
  std::string input, weight, bias, grad_output;
  std::string pointwise_weight, pointwise_bias;  // separable
  std::string grad_input, grad_weight, grad_bias;
  std::string grad_pointwise_weight, grad_pointwise_bias;  // separable
  ConvFlags conv;
};

struct InfoOptions {
  std::string input_shape, weight_shape;
  bool no_bias = false;
  // Separable: the pointwise weight's shape (C_out, C_mid, 1); weight_shape
  // is then the depthwise one and no_bias its bias.
  std::string pointwise_weight_shape;
  bool no_pointwise_bias = false;
  std::string dtype = "float32";
  ConvFlags conv;
};

// The layer `apply` would run, read and checked exactly as `apply` does
// (also the --output path): one of conv / separable is set.
struct ApplyLayer {
  Tensor input;
  std::unique_ptr<Conv1d> conv;
  std::unique_ptr<SeparableConv1d> separable;
  Layout layout = Layout::ncl;
  PlanOptions plan;
  std::vector<int64_t> output_shape;
};
ApplyLayer load_apply_layer(const ApplyOptions& options);

// Each returns the exit status; errors are thrown as conv1d::Error.
int run_apply(const ApplyOptions& options);
int run_backward(const BackwardOptions& options);
int run_info(const InfoOptions& options);

}  // namespace conv1d::cli
