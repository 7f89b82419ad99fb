// Layers that own their weights: Conv1d (standard, grouped, depthwise,
// dilated) and SeparableConv1d (depthwise then 1x1 pointwise).
#pragma once

#include <conv1d/conv1d.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace conv1d {

namespace detail {
class SeparableExecutor;
}

// An owning, contiguous (C order) tensor of float32 or float64 values.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, std::vector<int64_t> shape);  // zero-filled
  template <class T>
  static Tensor from_values(std::vector<int64_t> shape, std::vector<T> values);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const;
  // Throws Error when T is not the tensor's dtype.
  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  // Element i (row-major) as a double, whatever the dtype.
  double value(int64_t i) const;

 private:
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_;
  std::vector<float> f32_;
  std::vector<double> f64_;
};

// torch.nn.Conv1d. Weight (C_out, C_in/groups, K) and bias (C_out) are
// initialised like PyTorch's reset_parameters: uniform in +-1/sqrt(fan_in),
// fan_in = C_in/groups * K, drawn from `seed`.
class Conv1d {
 public:
  explicit Conv1d(const ConvParams& params, DType dtype = DType::f32, uint64_t seed = 0,
                  PlanOptions options = {});

  const ConvParams& params() const { return params_; }
  DType dtype() const { return weight_.dtype(); }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // empty (rank 0) when bias=false
  // Mutable access; plans repack the weights on their next use.
  Tensor& mutable_weight();
  Tensor& mutable_bias();
  void reset_parameters(uint64_t seed);
  // Changes whenever the weights may have (mutable access, reset): layers
  // built on this one compare it to repack only when needed.
  uint64_t weights_version() const { return weights_version_; }

  // input (N, C_in, L) or unbatched (C_in, L), in `layout` order; returns
  // the output with the same rank and layout.
  Tensor forward(const Tensor& input, Layout layout = Layout::ncl) const;
  template <class T>
  void forward(TensorRef<const T> input, TensorRef<T> output) const;

  struct Gradients {
    Tensor input;   // same shape as the input
    Tensor weight;  // (C_out, C_in/groups, K)
    Tensor bias;    // (C_out), empty when bias=false
  };
  Gradients backward(const Tensor& input, const Tensor& grad_output,
                     Layout layout = Layout::ncl) const;

  // The plan this layer uses for a given input (made on first use).
  const Plan& plan_for(int64_t batch, int64_t length, Layout layout) const;

 private:
  struct CachedPlan {
    std::unique_ptr<Plan> plan;
    uint64_t weights_version = 0;
  };
  // Gives `plan` the current weights of another cached plan; false if none
  // can share them. Called with plans_mutex_ held.
  bool share_current_weights(Plan& plan) const;
  ConvParams params_;
  PlanOptions options_;
  Tensor weight_;
  Tensor bias_;
  uint64_t weights_version_ = 1;
  mutable std::mutex plans_mutex_;
  mutable std::map<std::tuple<int64_t, int64_t, Layout>, CachedPlan> plans_;
};

// Depthwise convolution (groups = in_channels, out = in * depth_multiplier)
// followed by a 1x1 pointwise convolution to out_channels, as Keras'
// SeparableConv1D; each part has its own optional bias.
struct SeparableParams {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t kernel_size = 1;
  int64_t stride = 1;
  Padding padding = Padding::valid();
  int64_t dilation = 1;
  int64_t depth_multiplier = 1;
  PaddingMode padding_mode = PaddingMode::zeros;
  bool depthwise_bias = true;
  bool pointwise_bias = true;

  ConvParams depthwise_params() const;
  ConvParams pointwise_params() const;
};

// How SeparableConv1d runs forward: "auto" fuses the two parts (each tile
// of the depthwise result goes straight into the pointwise GEMM, never to
// memory) when the fused path supports the layer and PlanOptions::algorithm
// is "auto", and otherwise runs two Plans with an intermediate tensor;
// "fused" forces the first (forward throws when it declines, with the
// reason), "two-pass" the second.
struct SeparableOptions {
  std::string execution = "auto";
};

class SeparableConv1d {
 public:
  explicit SeparableConv1d(const SeparableParams& params, DType dtype = DType::f32,
                           uint64_t seed = 0, PlanOptions options = {},
                           SeparableOptions separable_options = {});
  ~SeparableConv1d();

  const SeparableParams& params() const { return params_; }
  DType dtype() const { return depthwise_.dtype(); }
  Conv1d& depthwise() { return depthwise_; }
  Conv1d& pointwise() { return pointwise_; }
  const Conv1d& depthwise() const { return depthwise_; }
  const Conv1d& pointwise() const { return pointwise_; }

  Tensor forward(const Tensor& input, Layout layout = Layout::ncl) const;
  // input (N, C_in, L) and output (N, C_out, L_out), any strides.
  template <class T>
  void forward(TensorRef<const T> input, TensorRef<T> output) const;

  // "fused" or "two-pass": how forward runs an input of this size and
  // layout (decided, and the fused weights packed, on first use).
  std::string_view algorithm_for(int64_t batch, int64_t length, Layout layout) const;

  struct Gradients {
    Tensor input;
    Conv1d::Gradients depthwise;  // .input unused (empty)
    Conv1d::Gradients pointwise;  // .input unused (empty)
  };
  Gradients backward(const Tensor& input, const Tensor& grad_output,
                     Layout layout = Layout::ncl) const;

 private:
  struct CachedPath {
    bool decided = false;
    std::unique_ptr<detail::SeparableExecutor> fused;  // null: two passes
    int threads = 1;                                   // the fused forward's (see Plan)
    uint64_t depthwise_version = 0;
    uint64_t pointwise_version = 0;
  };
  // The fused executor with current weights, or nullptr for two passes;
  // `threads`, when not null, receives the threads it runs on.
  const detail::SeparableExecutor* fused_for(int64_t batch, int64_t length, Layout layout,
                                             int* threads = nullptr) const;

  SeparableParams params_;
  PlanOptions options_;
  SeparableOptions separable_options_;
  Conv1d depthwise_;
  Conv1d pointwise_;
  mutable std::mutex paths_mutex_;
  mutable std::map<std::tuple<int64_t, int64_t, Layout>, CachedPath> paths_;
};

}  // namespace conv1d
