#include "reference/reference.hpp"

#include <vector>

#include "core/padding.hpp"
#include "core/threads.hpp"

namespace conv1d::reference {

using core::parallel_for;
using core::source_index;

template <class T>
void forward(const Problem& p, TensorRef<const T> input, const T* weight, const T* bias,
             TensorRef<T> output, int threads) {
  const int64_t out_length = p.out_length();
  const int64_t cin_per_group = p.in_channels_per_group();
  const int64_t cout_per_group = p.out_channels_per_group();
  parallel_for(p.batch * p.out_channels, threads, [&](int64_t task) {
    const int64_t n = task / p.out_channels;
    const int64_t co = task % p.out_channels;
    const int64_t first_in = (co / cout_per_group) * cin_per_group;
    for (int64_t l = 0; l < out_length; ++l) {
      double sum = bias != nullptr ? static_cast<double>(bias[co]) : 0.0;
      for (int64_t ci = 0; ci < cin_per_group; ++ci) {
        const T* w = weight + (co * cin_per_group + ci) * p.kernel_size;
        for (int64_t k = 0; k < p.kernel_size; ++k) {
          const int64_t src =
              source_index(l * p.stride + k * p.dilation - p.pad_left, p.length, p.padding_mode);
          // Zero padding is multiplied like any input, as PyTorch does: an
          // infinite or NaN weight makes such an output NaN.
          const double x = src < 0 ? 0.0 : static_cast<double>(input.at(n, first_in + ci, src));
          sum += static_cast<double>(w[k]) * x;
        }
      }
      output.at(n, co, l) = static_cast<T>(sum);
    }
  });
}

template <class T>
void backward_data(const Problem& p, TensorRef<const T> grad_output, const T* weight,
                   TensorRef<T> grad_input, int threads) {
  const int64_t out_length = p.out_length();
  const int64_t cin_per_group = p.in_channels_per_group();
  const int64_t cout_per_group = p.out_channels_per_group();
  parallel_for(p.batch * p.in_channels, threads, [&](int64_t task) {
    const int64_t n = task / p.in_channels;
    const int64_t ci = task % p.in_channels;
    const int64_t group = ci / cin_per_group;
    const int64_t ci_in_group = ci % cin_per_group;
    // Reflect / replicate / circular padding sends several padded positions
    // to one input sample, so scatter into a per-channel accumulator.
    thread_local std::vector<double> sums;
    sums.assign(static_cast<size_t>(p.length), 0.0);
    for (int64_t co = group * cout_per_group; co < (group + 1) * cout_per_group; ++co) {
      const T* w = weight + (co * cin_per_group + ci_in_group) * p.kernel_size;
      for (int64_t k = 0; k < p.kernel_size; ++k) {
        for (int64_t l = 0; l < out_length; ++l) {
          const int64_t src =
              source_index(l * p.stride + k * p.dilation - p.pad_left, p.length, p.padding_mode);
          if (src < 0) continue;
          sums[src] += static_cast<double>(w[k]) * static_cast<double>(grad_output.at(n, co, l));
        }
      }
    }
    for (int64_t i = 0; i < p.length; ++i) grad_input.at(n, ci, i) = static_cast<T>(sums[i]);
  });
}

template <class T>
void backward_weight(const Problem& p, TensorRef<const T> input, TensorRef<const T> grad_output,
                     T* grad_weight, T* grad_bias, int threads) {
  const int64_t out_length = p.out_length();
  const int64_t cin_per_group = p.in_channels_per_group();
  const int64_t cout_per_group = p.out_channels_per_group();
  parallel_for(p.out_channels, threads, [&](int64_t co) {
    const int64_t first_in = (co / cout_per_group) * cin_per_group;
    for (int64_t ci = 0; ci < cin_per_group; ++ci) {
      for (int64_t k = 0; k < p.kernel_size; ++k) {
        double sum = 0.0;
        for (int64_t n = 0; n < p.batch; ++n) {
          for (int64_t l = 0; l < out_length; ++l) {
            const int64_t src =
                source_index(l * p.stride + k * p.dilation - p.pad_left, p.length, p.padding_mode);
            // Zero padding multiplied, as in forward.
            const double x = src < 0 ? 0.0 : static_cast<double>(input.at(n, first_in + ci, src));
            sum += static_cast<double>(grad_output.at(n, co, l)) * x;
          }
        }
        grad_weight[(co * cin_per_group + ci) * p.kernel_size + k] = static_cast<T>(sum);
      }
    }
    if (grad_bias != nullptr) {
      double sum = 0.0;
      for (int64_t n = 0; n < p.batch; ++n) {
        for (int64_t l = 0; l < out_length; ++l) sum += grad_output.at(n, co, l);
      }
      grad_bias[co] = static_cast<T>(sum);
    }
  });
}

#define CONV1D_INSTANTIATE(T)                                                                      \
  template void forward<T>(const Problem&, TensorRef<const T>, const T*, const T*, TensorRef<T>,   \
                           int);                                                                   \
  template void backward_data<T>(const Problem&, TensorRef<const T>, const T*, TensorRef<T>, int); \
  template void backward_weight<T>(const Problem&, TensorRef<const T>, TensorRef<const T>, T*, T*, \
                                   int);
CONV1D_INSTANTIATE(float)
CONV1D_INSTANTIATE(double)
#undef CONV1D_INSTANTIATE

}  // namespace conv1d::reference
