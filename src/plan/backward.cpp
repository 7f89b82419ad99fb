#include "plan/backward.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/finite.hpp"
#include "core/padding.hpp"
#include "core/scratch.hpp"
#include "core/threads.hpp"
#include "plan/registry.hpp"

namespace conv1d::detail {

namespace {

// The calling thread's scratch slot for the padded input's gradients,
// apart from the ones the forward kernels' tasks take on it (0 and 1).
constexpr int kPaddedSlot = 2;

// (C_out, C_in/G, K) -> (C_in, C_out/G, taps) holding the taps `taps`
// reversed.
template <class T>
std::vector<T> phase_weights(const Problem& p, const std::vector<int64_t>& taps, const T* weight) {
  const int64_t K = p.kernel_size;
  const auto m = static_cast<int64_t>(taps.size());
  const int64_t cin = p.in_channels_per_group();
  const int64_t cout = p.out_channels_per_group();
  std::vector<T> swapped(static_cast<size_t>(p.out_channels * cin * m));
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t o = 0; o < cout; ++o) {
      for (int64_t c = 0; c < cin; ++c) {
        const T* from = weight + ((g * cout + o) * cin + c) * K;
        T* to = swapped.data() + ((g * cin + c) * cout + o) * m;
        for (int64_t i = 0; i < m; ++i) to[i] = from[taps[static_cast<size_t>(m - 1 - i)]];
      }
    }
  }
  return swapped;
}

template <class T>
bool all_finite(const void* values, int64_t count) {
  return core::magnitudes_below(static_cast<const T*>(values), count, 1,
                                std::numeric_limits<T>::max_exponent);
}

}  // namespace

Backward::Backward(const Problem& problem)
    : problem_(problem), weight_target_(kernels::weight_gradient::chosen_target()) {}

void Backward::make_phases() {
  const Problem& p = problem_;
  const int64_t stride = p.stride;
  const int64_t out_length = p.out_length();
  padded_length_ = (out_length - 1) * stride + 1 + (p.kernel_size - 1) * p.dilation;
  // Taps of one phase lie stride / gcd apart, their samples dilation / gcd.
  const int64_t phase_dilation = p.dilation / std::gcd(stride, p.dilation);
  phases_.resize(static_cast<size_t>(stride));
  for (int64_t r = 0; r < stride; ++r) {
    Phase& phase = phases_[static_cast<size_t>(r)];
    for (int64_t k = 0; k < p.kernel_size; ++k) {
      if (k * p.dilation % stride == r) phase.taps.push_back(k);
    }
    // Outputs q: the positions q * stride + r of grad_input (sample
    // q * stride + r - pad_left) or of the padded input.
    int64_t first = 0, end = 0;
    if (writes_grad_input()) {
      first = p.pad_left > r ? (p.pad_left - r + stride - 1) / stride : 0;
      end = p.length + p.pad_left > r ? (p.length + p.pad_left - r - 1) / stride + 1 : 0;
    } else {
      end = padded_length_ > r ? (padded_length_ - r + stride - 1) / stride : 0;
    }
    phase.first_output = first;
    phase.outputs = std::max<int64_t>(0, end - first);
    if (phase.outputs == 0) phase.taps.clear();
    if (phase.taps.empty()) continue;
    // Output q = sum_i w'[i] * grad_output[q + i * phase_dilation - last],
    // w' the taps reversed, `last` the offset of the last tap's sample: a
    // padded sequence of outputs + span samples, the part of it inside
    // grad_output read in place.
    const auto m = static_cast<int64_t>(phase.taps.size());
    const int64_t last = (phase.taps.back() * p.dilation - r) / stride;
    const int64_t span = (m - 1) * phase_dilation;
    const int64_t shift = first - last;
    const int64_t begin = std::max<int64_t>(0, shift);
    const int64_t stop = std::min(out_length, phase.outputs + span + shift);
    if (stop <= begin) {  // reads only padding: zeros
      phase.taps.clear();
      continue;
    }
    Problem t = p;
    t.in_channels = p.out_channels;
    t.out_channels = p.in_channels;
    t.kernel_size = m;
    t.dilation = phase_dilation;
    t.stride = 1;
    t.padding_mode = PaddingMode::zeros;
    t.has_bias = false;
    t.length = stop - begin;
    t.pad_left = begin - shift;
    t.pad_right = phase.outputs + span - t.pad_left - t.length;
    try {
      t.validate();
    } catch (const Error&) {
      phases_valid_ = false;  // too large to index: grad_input on the reference
      return;
    }
    phase.problem = t;
    phase.input_offset = begin;
    phase.entry = &select_algorithm(t, /*exact_only=*/true);
    phase.seconds = phase.entry->estimated_seconds(t);
  }
}

Backward::~Backward() = default;

void Backward::set_weights(const Executor& executor, const void* weight, const void* bias) {
  std::lock_guard lock(mutex_);
  current_ = false;
  if (executor.returns_weights()) {
    weight_copy_.clear();
    bias_copy_.clear();
    return;
  }
  const Problem& p = problem_;
  const auto element = static_cast<size_t>(dtype_size(p.dtype));
  const auto* w = static_cast<const std::byte*>(weight);
  weight_copy_.assign(
      w, w + static_cast<size_t>(p.out_channels * p.in_channels_per_group() * p.kernel_size) *
                 element);
  const auto* b = static_cast<const std::byte*>(bias);
  if (b != nullptr) bias_copy_.assign(b, b + static_cast<size_t>(p.out_channels) * element);
}

void Backward::weights_shared() {
  std::lock_guard lock(mutex_);
  current_ = false;
}

bool Backward::prepare_data(const Executor& executor) {
  std::lock_guard lock(mutex_);
  if (current_) return use_phases_;
  if (phases_.empty()) make_phases();
  const Problem& p = problem_;
  const auto element = static_cast<size_t>(dtype_size(p.dtype));
  const int64_t weights = p.out_channels * p.in_channels_per_group() * p.kernel_size;
  std::vector<std::byte> weight, bias;
  const void* w = weight_copy_.data();
  const void* b = p.has_bias ? bias_copy_.data() : nullptr;
  if (executor.returns_weights()) {
    weight.resize(static_cast<size_t>(weights) * element);
    bias.resize(p.has_bias ? static_cast<size_t>(p.out_channels) * element : 0);
    executor.get_weights(weight.data(), p.has_bias ? bias.data() : nullptr);
    w = weight.data();
    b = p.has_bias ? bias.data() : nullptr;
  }
  const bool finite =
      p.dtype == DType::f32 ? all_finite<float>(w, weights) : all_finite<double>(w, weights);
  use_phases_ = finite && phases_valid_;
  if (use_phases_) {
    for (Phase& phase : phases_) {
      if (phase.taps.empty()) continue;
      if (!phase.executor) phase.executor = phase.entry->create(phase.problem);
      if (p.dtype == DType::f32) {
        phase.executor->set_weights(
            phase_weights(p, phase.taps, static_cast<const float*>(w)).data(), nullptr);
      } else {
        phase.executor->set_weights(
            phase_weights(p, phase.taps, static_cast<const double*>(w)).data(), nullptr);
      }
    }
  } else {
    if (!reference_) reference_ = find_algorithm("reference")->create(p);
    reference_->set_weights(w, b);
  }
  current_ = true;
  return use_phases_;
}

template <class T>
void Backward::run_phases(TensorRef<const T> grad_output, TensorRef<T> to, int64_t first_position,
                          int threads) const {
  const int64_t stride = problem_.stride;
  for (int64_t r = 0; r < stride; ++r) {
    const Phase& phase = phases_[static_cast<size_t>(r)];
    if (phase.outputs == 0) continue;
    TensorRef<T> out = to;
    out.data += (phase.first_output * stride + r - first_position) * to.length_stride;
    out.length = phase.outputs;
    out.length_stride *= stride;
    if (phase.taps.empty()) {
      for (int64_t n = 0; n < out.batch; ++n) {
        for (int64_t c = 0; c < out.channels; ++c) {
          for (int64_t q = 0; q < out.length; ++q) out.at(n, c, q) = T(0);
        }
      }
      continue;
    }
    TensorRef<const T> in = grad_output;
    in.data += phase.input_offset * grad_output.length_stride;
    in.length = phase.problem.length;
    phase.executor->forward(in, out, core::threads_for_work(phase.seconds, threads));
  }
}

template <class T>
void Backward::backward_data(const Executor& executor, TensorRef<const T> grad_output,
                             TensorRef<T> grad_input, int threads) {
  if (!prepare_data(executor)) {
    reference_->backward_data(grad_output, grad_input, threads);
    return;
  }
  const Problem& p = problem_;
  if (writes_grad_input()) {
    run_phases(grad_output, grad_input, p.pad_left, threads);
    return;
  }
  auto* buffer = static_cast<T*>(core::thread_scratch<kPaddedSlot>(
      static_cast<size_t>(p.batch * p.in_channels * padded_length_) * sizeof(T)));
  const auto padded =
      TensorRef<T>::contiguous(buffer, p.batch, p.in_channels, padded_length_, p.layout);
  run_phases<T>(grad_output, padded, 0, threads);
  // Each padded position's gradient goes to the sample it reads.
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < p.in_channels; ++c) {
      for (int64_t i = 0; i < p.length; ++i) grad_input.at(n, c, i) = T(0);
      for (int64_t j = 0; j < padded_length_; ++j) {
        const int64_t from = core::source_index(j - p.pad_left, p.length, p.padding_mode);
        if (from >= 0) grad_input.at(n, c, from) += padded.at(n, c, j);
      }
    }
  }
}

template <class T>
void Backward::backward_weight(TensorRef<const T> input, TensorRef<const T> grad_output,
                               T* grad_weight, T* grad_bias, int threads) const {
  kernels::weight_gradient::compute(weight_target_, problem_, input, grad_output, grad_weight,
                                    grad_bias, threads);
}

#define CONV1D_INSTANTIATE(T)                                                                     \
  template void Backward::backward_data<T>(const Executor&, TensorRef<const T>, TensorRef<T>,     \
                                           int);                                                  \
  template void Backward::backward_weight<T>(TensorRef<const T>, TensorRef<const T>, T*, T*, int) \
      const;
CONV1D_INSTANTIATE(float)
CONV1D_INSTANTIATE(double)
#undef CONV1D_INSTANTIATE

}  // namespace conv1d::detail
