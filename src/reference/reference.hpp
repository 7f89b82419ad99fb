// The oracle: plain loops over the definition, accumulating in double, for
// every parameter. Slow, obvious, trusted; every other algorithm is tested
// against it.
#pragma once

#include <conv1d/conv1d.hpp>

namespace conv1d::reference {

// weight: contiguous (C_out, C_in/groups, K); bias: (C_out) or nullptr.
template <class T>
void forward(const Problem& problem, TensorRef<const T> input, const T* weight, const T* bias,
             TensorRef<T> output, int threads);

template <class T>
void backward_data(const Problem& problem, TensorRef<const T> grad_output, const T* weight,
                   TensorRef<T> grad_input, int threads);

// grad_weight (C_out, C_in/groups, K) and grad_bias (C_out, may be null) are
// overwritten.
template <class T>
void backward_weight(const Problem& problem, TensorRef<const T> input,
                     TensorRef<const T> grad_output, T* grad_weight, T* grad_bias, int threads);

}  // namespace conv1d::reference
