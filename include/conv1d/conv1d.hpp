// conv1d: torch.nn.Conv1d semantics on CPUs.
//
// The public API in one header:
//   Problem   - one convolution, fully described (shapes, padding, layout, dtype)
//   Plan      - made once per Problem: picks an algorithm, owns packed weights,
//               executes forward / backward many times without allocating
//   Conv1d, SeparableConv1d - layers that own their weights (see layer.hpp)
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace conv1d {

// Every error the library reports. The message names the bad parameter, the
// expected value and the actual one.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType { f32, f64 };
// Memory order of a contiguous activation tensor: NCL is PyTorch's
// (batch, channels, length); NLC is channels-last (batch, length, channels).
enum class Layout { ncl, nlc };
enum class PaddingMode { zeros, reflect, replicate, circular };

std::string_view to_string(DType dtype);
std::string_view to_string(Layout layout);
std::string_view to_string(PaddingMode mode);
DType parse_dtype(std::string_view text);
Layout parse_layout(std::string_view text);
PaddingMode parse_padding_mode(std::string_view text);
int64_t dtype_size(DType dtype);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}

// How much padding a layer asks for. Resolved into (left, right) amounts
// once the kernel size, dilation and stride are known.
struct Padding {
  enum class Kind { explicit_amounts, same, valid, causal };
  Kind kind = Kind::explicit_amounts;
  int64_t left = 0;
  int64_t right = 0;

  static Padding symmetric(int64_t amount) { return {Kind::explicit_amounts, amount, amount}; }
  static Padding asymmetric(int64_t left, int64_t right) {
    return {Kind::explicit_amounts, left, right};
  }
  static Padding same() { return {Kind::same, 0, 0}; }
  static Padding valid() { return {Kind::valid, 0, 0}; }
  // left = dilation * (kernel_size - 1), right = 0: output t sees inputs <= t.
  static Padding causal() { return {Kind::causal, 0, 0}; }

  // "3", "1,2", "same", "valid" or "causal".
  static Padding parse(std::string_view text);
  std::string to_string() const;
  // (left, right) for this kernel; throws for 'same' with stride != 1 and
  // for negative amounts.
  std::array<int64_t, 2> resolve(int64_t kernel_size, int64_t stride, int64_t dilation) const;
};

// The hyper-parameters of a Conv1d layer, as in torch.nn.Conv1d.
struct ConvParams {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t kernel_size = 1;
  int64_t stride = 1;
  Padding padding = Padding::valid();
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  PaddingMode padding_mode = PaddingMode::zeros;

  // Throws Error naming the first bad parameter.
  void validate() const;
};

// One convolution: everything an algorithm needs to know, and nothing that
// depends on the data. A plain value; copy it freely.
struct Problem {
  int64_t batch = 1;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t length = 1;  // input length L_in
  int64_t kernel_size = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t groups = 1;
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  PaddingMode padding_mode = PaddingMode::zeros;
  bool has_bias = true;
  Layout layout = Layout::ncl;
  DType dtype = DType::f32;

  static Problem make(const ConvParams& params, int64_t batch, int64_t length,
                      DType dtype = DType::f32, Layout layout = Layout::ncl);

  // floor((L_in + pad_left + pad_right - dilation*(K-1) - 1) / stride) + 1
  int64_t out_length() const;
  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  // Multiply-adds counted as two FLOPs: 2 * N * C_out * L_out * (C_in/G) * K.
  double flops() const;
  bool is_depthwise() const { return groups == in_channels && groups > 1; }

  // Throws Error naming the first bad parameter (PyTorch's rules).
  void validate() const;

  // Canonical one-line descriptor, e.g. "mb2ic16oc32iw100kw3sw1dl1pl1pr1g1"
  // with optional suffixes "_reflect", "_nobias", "_nlc", "_f64". Every
  // number has PyTorch's meaning (dl1 is a dense kernel).
  std::string to_string() const;
  static Problem parse(std::string_view text);

  bool operator==(const Problem&) const = default;
};

// A strided view of an activation tensor with logical shape
// (batch, channels, length). Strides are in elements and may be anything
// (non-contiguous slices, channels-last, ...).
template <class T>
struct TensorRef {
  T* data = nullptr;
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t length = 0;
  int64_t batch_stride = 0;
  int64_t channel_stride = 0;
  int64_t length_stride = 0;

  static TensorRef contiguous(T* data, int64_t batch, int64_t channels, int64_t length,
                              Layout layout = Layout::ncl) {
    if (layout == Layout::ncl) {
      return {data, batch, channels, length, channels * length, length, 1};
    }
    return {data, batch, channels, length, channels * length, 1, channels};
  }
  T& at(int64_t n, int64_t c, int64_t l) const {
    return data[n * batch_stride + c * channel_stride + l * length_stride];
  }
  operator TensorRef<const T>() const {
    return {data, batch, channels, length, batch_stride, channel_stride, length_stride};
  }
};

struct PlanOptions {
  // "auto" lets the plan choose; otherwise the name of a registered algorithm.
  std::string algorithm = "auto";
  // Threads one forward call may use; 0 means all available. A layer too
  // small to share out runs on fewer: each thread gets at least ~10 us of
  // the work by the cost model, as waking and joining threads costs a few
  // microseconds (Plan::forward_threads says how many).
  int threads = 0;
  // With algorithm "auto": choose by timing every algorithm that supports
  // the problem (scratch data, this plan's threads; a fraction of a second
  // for large layers) instead of by the cost model, and remember the choice
  // per (problem, ISA, threads) for the rest of the process. A named
  // algorithm wins over tune.
  bool tune = false;
  // With tune: a file that also keeps the choices, across processes; read on
  // first use, rewritten atomically after each new choice (format: README
  // "Tune mode"). Empty: this process only. (The initialiser keeps brace
  // initialisation like {"direct", 1} free of missing-initializer warnings.)
  std::string tune_cache = {};
};

struct AlgorithmStatus {
  std::string name;
  bool supported = false;
  std::string reason;  // why not, when unsupported
};

// SIMD targets. Kernels dispatch at run time to the best target the CPU
// supports, capped by set_max_isa or the CONV1D_MAX_ISA environment variable
// ("avx512", "avx2", "sse4" or "scalar"). Plans made after a change of cap
// use the new cap.
std::string active_isa();
// The targets this CPU can run, best first ("scalar" always last).
std::vector<std::string> available_isas();
void set_max_isa(std::string_view name);

// Names of all registered algorithms, best first, "reference" last.
std::vector<std::string> algorithm_names();
// Every algorithm with whether it supports `problem`, and why not.
std::vector<AlgorithmStatus> algorithm_statuses(const Problem& problem);

namespace detail {
class Executor;
class Backward;
class ExactForward;
}  // namespace detail

// A convolution ready to run. Create once per Problem; set_weights (which
// copies and repacks) whenever the weights change; then forward / backward
// as often as needed. forward and backward do not allocate after the first
// call on a thread and may be called from several threads at once;
// set_weights must not run concurrently with them.
class Plan {
 public:
  explicit Plan(const Problem& problem, const PlanOptions& options = {});
  ~Plan();
  Plan(Plan&&) noexcept;
  Plan& operator=(Plan&&) noexcept;

  const Problem& problem() const { return problem_; }
  std::string_view algorithm() const;
  // The SIMD target the plan's kernels run on ("avx512", ..., "scalar").
  std::string_view isa() const { return isa_; }
  int threads() const { return options_.threads; }
  // The threads forward runs on: threads(), or fewer for a small layer.
  int forward_threads() const { return forward_threads_; }
  // How the algorithm was chosen: "heuristic" (cost model), "forced"
  // (PlanOptions::algorithm named it), "tuned" (timed now), "tuned (cached)"
  // (timed before, in this process or the tune_cache file) or "tuned (only
  // candidate)" (one algorithm supports the problem: nothing to time).
  std::string_view selection() const { return selection_; }

  // weight: contiguous (C_out, C_in/groups, K); bias: (C_out), or nullptr
  // when the problem has no bias. T must match the problem's dtype.
  template <class T>
  void set_weights(const T* weight, const T* bias);
  // Uses the weights `other` holds: a plan for the same weights (equal
  // in_channels, out_channels, kernel_size, groups, bias and dtype; throws
  // Error otherwise, or when set_weights was not called on `other`) at
  // another batch, length or layout. When both plans keep them in the same
  // form (the same algorithm and packing, as plans of one layer usually do
  // across lengths), this plan shares other's copy: nothing is copied or
  // repacked, and it costs microseconds instead of a repack. Returns false,
  // changing nothing, when it cannot: call set_weights then. A later
  // set_weights on either plan changes only that plan's weights.
  bool share_weights(const Plan& other);
  // Whether this plan and `other` hold one shared copy of their weights.
  bool shares_weights_with(const Plan& other) const;

  // y = conv(x). x: (N, C_in, L_in), y: (N, C_out, L_out), any strides.
  // y must not share memory with x: an Error when either view is dense in
  // memory, or when y has a zero stride (as for grad_input and grad_output
  // in backward_data). A plan on an algorithm that is not exact (fft)
  // runs inputs holding Inf, NaN or values large enough to overflow its
  // transforms, and all inputs after weights holding Inf or NaN, on the
  // exact algorithm the cost model picks: the outputs that are not finite
  // are then those whose window holds such a value, as in PyTorch, instead
  // of a whole transform block.
  template <class T>
  void forward(TensorRef<const T> input, TensorRef<T> output) const;
  // grad_input = d(loss)/d(x) from grad_output (N, C_out, L_out).
  template <class T>
  void backward_data(TensorRef<const T> grad_output, TensorRef<T> grad_input) const;
  // grad_weight (C_out, C_in/groups, K) and grad_bias (C_out, may be null)
  // are overwritten, not accumulated. They do not depend on the weights, so
  // set_weights need not have been called.
  template <class T>
  void backward_weight(TensorRef<const T> input, TensorRef<const T> grad_output, T* grad_weight,
                       T* grad_bias) const;

 private:
  Problem problem_;
  PlanOptions options_;
  std::string isa_;
  std::string_view selection_;
  // options_.threads, or fewer for a layer too small to share out.
  int forward_threads_ = 1;
  std::unique_ptr<detail::Executor> executor_;
  // Backward on the forward kernels when the executor has none of its own.
  std::unique_ptr<detail::Backward> backward_;
  // Forward on an exact algorithm for non-finite values, when the plan's
  // algorithm is not exact.
  std::unique_ptr<detail::ExactForward> exact_forward_;
  bool weights_set_ = false;
};

}  // namespace conv1d
