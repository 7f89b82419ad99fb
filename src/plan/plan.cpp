// Plan: choose an algorithm once, execute many times.
#include <conv1d/conv1d.hpp>
#include <cstddef>
#include <mutex>
#include <vector>

#include "core/executor.hpp"
#include "core/overlap.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "plan/backward.hpp"
#include "plan/registry.hpp"
#include "plan/tune.hpp"

namespace conv1d {

using core::str_cat;

namespace {

bool is_auto(const std::string& name) { return name.empty() || name == "auto"; }

const detail::AlgorithmEntry& forced(const Problem& problem, const std::string& name) {
  const detail::AlgorithmEntry* entry = detail::find_algorithm(name);
  if (entry == nullptr) {
    std::string known;
    for (const auto& candidate : detail::registry()) {
      known += str_cat(known.empty() ? "" : ", ", candidate.name);
    }
    throw Error(str_cat("unknown algorithm '", name, "'; known: auto, ", known));
  }
  if (auto why = entry->why_not(problem)) {
    throw Error(
        str_cat("algorithm '", name, "' does not support ", problem.to_string(), ": ", *why));
  }
  return *entry;
}

template <class T>
void check_dtype(const Problem& problem) {
  if (dtype_of<T>() != problem.dtype) {
    throw Error(str_cat("dtype mismatch: the plan is for ", to_string(problem.dtype),
                        " but the data is ", to_string(dtype_of<T>())));
  }
}

template <class T>
void check_shape(const TensorRef<T>& tensor, std::string_view name, int64_t batch, int64_t channels,
                 int64_t length) {
  if (tensor.batch != batch || tensor.channels != channels || tensor.length != length) {
    throw Error(str_cat(name, " has shape (", tensor.batch, ", ", tensor.channels, ", ",
                        tensor.length, ") but the plan expects (", batch, ", ", channels, ", ",
                        length, ")"));
  }
  if (tensor.data == nullptr && batch * channels * length > 0) {
    throw Error(str_cat(name, " has no data"));
  }
}

}  // namespace

namespace detail {

// Gives `to` the weights `from` holds (an executor that returns weights),
// in their original layout.
void copy_weights(const Executor& from, Executor& to) {
  const Problem& p = to.problem();
  const auto element = static_cast<size_t>(dtype_size(p.dtype));
  std::vector<std::byte> weight(
      static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size) * element);
  std::vector<std::byte> bias(p.has_bias ? static_cast<size_t>(p.out_channels) * element : 0);
  from.get_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
  to.set_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
}

// Forward on an exact algorithm, for a plan whose own is not (fft), on
// inputs its executor does not take (see Executor::takes_values): a
// transform would spread one Inf or NaN over every output of its block (an
// infinite weight turns its whole output channel to NaN), where PyTorch's
// sums, like the exact algorithms, make non-finite only the outputs whose
// window holds it. Made on first need, with the weights copied back from
// the plan's executor.
class ExactForward {
 public:
  explicit ExactForward(const Problem& problem) : problem_(problem) {}

  // After set_weights or share_weights.
  void weights_changed() {
    std::lock_guard lock(mutex_);
    current_ = false;
  }

  // The exact executor with the weights `executor` holds.
  const Executor& executor(const Executor& executor) {
    std::lock_guard lock(mutex_);
    if (!exact_) exact_ = select_algorithm(problem_, /*exact_only=*/true).create(problem_);
    if (!current_) {
      copy_weights(executor, *exact_);
      current_ = true;
    }
    return *exact_;
  }

 private:
  Problem problem_;
  std::mutex mutex_;
  bool current_ = false;
  std::unique_ptr<Executor> exact_;
};

}  // namespace detail

Plan::Plan(const Problem& problem, const PlanOptions& options)
    : problem_(problem), options_(options) {
  problem_.validate();
  if (options_.threads < 0) {
    throw Error(str_cat("threads must be non-negative (0 = all), got threads=", options_.threads));
  }
  options_.threads = core::resolve_threads(options_.threads);
  isa_ = active_isa();
  const detail::AlgorithmEntry* entry = nullptr;
  if (!is_auto(options_.algorithm)) {
    entry = &forced(problem_, options_.algorithm);
    selection_ = "forced";
  } else if (options_.tune && problem_.batch > 0) {  // an empty batch has nothing to time
    const detail::TunedChoice choice =
        detail::tuned_algorithm(problem_, isa_, options_.threads, options_.tune_cache);
    entry = choice.entry;
    selection_ = choice.how;
  } else {
    entry = &detail::select_algorithm(problem_);
    selection_ = "heuristic";
  }
  options_.algorithm = std::string(entry->name);
  forward_threads_ = core::threads_for_work(entry->estimated_seconds(problem_), options_.threads);
  executor_ = entry->create(problem_);
  if (!executor_->has_backward()) backward_ = std::make_unique<detail::Backward>(problem_);
  if (entry->exactness != detail::Exactness::exact) {
    // ExactForward copies the weights back from the executor.
    if (!executor_->returns_weights()) {
      throw Error(str_cat("internal: algorithm '", entry->name,
                          "' is not exact and cannot give its weights back"));
    }
    exact_forward_ = std::make_unique<detail::ExactForward>(problem_);
  }
}

Plan::~Plan() = default;
Plan::Plan(Plan&&) noexcept = default;
Plan& Plan::operator=(Plan&&) noexcept = default;

std::string_view Plan::algorithm() const { return options_.algorithm; }

template <class T>
void Plan::set_weights(const T* weight, const T* bias) {
  check_dtype<T>(problem_);
  if (weight == nullptr) throw Error("set_weights: weight is null");
  if (problem_.has_bias && bias == nullptr) {
    throw Error("set_weights: the problem has a bias but bias is null");
  }
  if (!problem_.has_bias && bias != nullptr) {
    throw Error("set_weights: the problem has no bias but a bias was given");
  }
  executor_->set_weights(weight, bias);
  if (backward_) backward_->set_weights(*executor_, weight, bias);
  if (exact_forward_) exact_forward_->weights_changed();
  weights_set_ = true;
}

bool Plan::share_weights(const Plan& other) {
  const Problem& a = problem_;
  const Problem& b = other.problem_;
  if (a.in_channels != b.in_channels || a.out_channels != b.out_channels ||
      a.kernel_size != b.kernel_size || a.groups != b.groups || a.has_bias != b.has_bias ||
      a.dtype != b.dtype) {
    throw Error(str_cat("share_weights: the plans are for different weights (", a.to_string(),
                        " and ", b.to_string(), ")"));
  }
  if (!other.weights_set_)
    throw Error("share_weights: set_weights was not called on the other plan");
  if (&other == this) return true;
  // Backward copies the weights back from the executor.
  if (backward_ && !executor_->returns_weights()) return false;
  if (!executor_->share_weights(*other.executor_)) return false;
  if (backward_) backward_->weights_shared();
  if (exact_forward_) exact_forward_->weights_changed();
  weights_set_ = true;
  return true;
}

bool Plan::shares_weights_with(const Plan& other) const {
  if (&other == this) return weights_set_;
  const void* identity = executor_->weights_identity();
  return weights_set_ && other.weights_set_ && identity != nullptr &&
         identity == other.executor_->weights_identity();
}

template <class T>
void Plan::forward(TensorRef<const T> input, TensorRef<T> output) const {
  check_dtype<T>(problem_);
  if (!weights_set_) throw Error("forward: set_weights was not called on this plan");
  check_shape(input, "input", problem_.batch, problem_.in_channels, problem_.length);
  check_shape(output, "output", problem_.batch, problem_.out_channels, problem_.out_length());
  core::check_no_overlap(input, "input", output, "output");
  if (problem_.batch == 0) return;
  if (exact_forward_ && !executor_->takes_values(input)) {
    exact_forward_->executor(*executor_).forward(input, output, forward_threads_);
    return;
  }
  executor_->forward(input, output, forward_threads_);
}

template <class T>
void Plan::backward_data(TensorRef<const T> grad_output, TensorRef<T> grad_input) const {
  check_dtype<T>(problem_);
  if (!weights_set_) throw Error("backward_data: set_weights was not called on this plan");
  check_shape(grad_output, "grad_output", problem_.batch, problem_.out_channels,
              problem_.out_length());
  check_shape(grad_input, "grad_input", problem_.batch, problem_.in_channels, problem_.length);
  core::check_no_overlap(grad_output, "grad_output", grad_input, "grad_input");
  if (problem_.batch == 0) return;
  if (backward_) {
    backward_->backward_data(*executor_, grad_output, grad_input, options_.threads);
  } else {
    executor_->backward_data(grad_output, grad_input, options_.threads);
  }
}

template <class T>
void Plan::backward_weight(TensorRef<const T> input, TensorRef<const T> grad_output, T* grad_weight,
                           T* grad_bias) const {
  check_dtype<T>(problem_);
  check_shape(input, "input", problem_.batch, problem_.in_channels, problem_.length);
  check_shape(grad_output, "grad_output", problem_.batch, problem_.out_channels,
              problem_.out_length());
  if (grad_weight == nullptr) throw Error("backward_weight: grad_weight is null");
  if (problem_.has_bias != (grad_bias != nullptr)) {
    throw Error(problem_.has_bias
                    ? "backward_weight: the problem has a bias but grad_bias is null"
                    : "backward_weight: the problem has no bias but grad_bias was given");
  }
  if (backward_) {
    backward_->backward_weight(input, grad_output, grad_weight, grad_bias, options_.threads);
  } else {
    executor_->backward_weight(input, grad_output, grad_weight, grad_bias, options_.threads);
  }
}

#define CONV1D_INSTANTIATE(T)                                                   \
  template void Plan::set_weights<T>(const T*, const T*);                       \
  template void Plan::forward<T>(TensorRef<const T>, TensorRef<T>) const;       \
  template void Plan::backward_data<T>(TensorRef<const T>, TensorRef<T>) const; \
  template void Plan::backward_weight<T>(TensorRef<const T>, TensorRef<const T>, T*, T*) const;
CONV1D_INSTANTIATE(float)
CONV1D_INSTANTIATE(double)
#undef CONV1D_INSTANTIATE

}  // namespace conv1d
