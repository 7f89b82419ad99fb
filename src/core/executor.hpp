// What a registered algorithm makes for one Problem: the object a Plan runs.
#pragma once

#include <conv1d/conv1d.hpp>
#include <string>

namespace conv1d::detail {

// Each method serves the problem's dtype only; a Plan never calls the other.
// forward / backward must be safe to call from several threads at once and
// must not allocate (thread-local scratch that only grows is allowed).
class Executor {
 public:
  explicit Executor(const Problem& problem) : problem_(problem) {}
  virtual ~Executor() = default;

  // weight: contiguous (C_out, C_in/groups, K); bias (C_out) or nullptr.
  // Copies and repacks; called before any execution and whenever the
  // weights change.
  virtual void set_weights(const void* weight, const void* bias) = 0;

  virtual void forward(TensorRef<const float> input, TensorRef<float> output, int threads) const;
  virtual void forward(TensorRef<const double> input, TensorRef<double> output, int threads) const;

  // Takes the weights of `other`, an executor for the same weights (shape
  // and dtype) at another batch, length or layout, without copying or
  // repacking them, when it holds them in the form this one needs (the
  // same algorithm and packing: usually so across lengths). Returns false,
  // changing nothing, otherwise. A later set_weights on either executor
  // leaves the other's weights as they were.
  virtual bool share_weights(const Executor& other) {
    (void)other;
    return false;
  }
  // The object holding the weights, equal for executors that share them;
  // nullptr for executors that cannot share.
  virtual const void* weights_identity() const { return nullptr; }

  // Whether get_weights can give back what set_weights took (then a plan
  // need not keep a copy of the weights for the reference backward).
  virtual bool returns_weights() const { return false; }
  // Writes the weights and bias (bias may be null) as set_weights took them.
  virtual void get_weights(void* weight, void* bias) const;

  // Whether forward's answer for these input values stays within the
  // algorithm's error bound. A transform adds up a whole block, so one Inf
  // or NaN, or values large enough to overflow its sums, would spoil every
  // output of the block; a plan computes such inputs on an exact algorithm.
  virtual bool takes_values(TensorRef<const float> input) const {
    (void)input;
    return true;
  }
  virtual bool takes_values(TensorRef<const double> input) const {
    (void)input;
    return true;
  }

  virtual bool has_backward() const { return false; }
  virtual void backward_data(TensorRef<const float> grad_output, TensorRef<float> grad_input,
                             int threads) const;
  virtual void backward_data(TensorRef<const double> grad_output, TensorRef<double> grad_input,
                             int threads) const;
  virtual void backward_weight(TensorRef<const float> input, TensorRef<const float> grad_output,
                               float* grad_weight, float* grad_bias, int threads) const;
  virtual void backward_weight(TensorRef<const double> input, TensorRef<const double> grad_output,
                               double* grad_weight, double* grad_bias, int threads) const;

  const Problem& problem() const { return problem_; }

 protected:
  [[noreturn]] void unsupported(std::string_view what) const;

  Problem problem_;
};

}  // namespace conv1d::detail
