// Streaming (chunk-by-chunk) inference of a Conv1d or SeparableConv1d layer.
//
// Push chunks of any length (one sample, none, or a million) for N
// independent streams at once and receive exactly the output samples that
// became computable. The concatenated outputs, followed by flush(), equal the
// layer's offline forward of the concatenated input:
//   - causal padding (left = dilation*(K-1), right = 0): no delay, and
//     flush() emits nothing;
//   - symmetric padding such as 'same': the output lags by the right
//     padding; flush() pads the end of the stream and emits the tail.
// Padding modes: zeros, replicate and reflect (a reflected left pad of width
// p needs samples 1..p, so outputs wait until they arrive), and circular only
// with pad_left = 0 (a circular left pad would need the end of the stream).
//
// Outputs come from Plans made for 'valid' problems over a window of
// [history + new samples] (or over the chunk itself, for whole blocks of
// `block_outputs` outputs that lie inside it): every buffer and plan is made
// at construction, so push and flush do not allocate (after the first call
// on a thread, as for Plan::forward). With the same algorithm as the offline
// plan (e.g. PlanOptions::algorithm = "reference") the results are
// bit-identical to the offline forward. A Stream is used by one thread at a
// time. docs/streaming.md describes the design and its performance.
#pragma once

#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace conv1d {

struct StreamOptions {
  // Independent streams, pushed together as the batch dimension.
  int64_t batch = 1;
  // Memory order of the internal buffers and of Tensor chunks; TensorRef
  // chunks may have any strides.
  Layout layout = Layout::ncl;
  // Outputs computed per plan execution; a longer chunk runs in several
  // blocks (side by side on several threads, when that is quicker).
  // Buffers and plans are sized by it.
  int64_t block_outputs = 128;
  // Algorithm and threads of the stream's plans.
  PlanOptions plan;
};

class Stream {
 public:
  // The weights are copied: later changes to the layer do not reach the
  // stream, and the layer may be destroyed.
  explicit Stream(const Conv1d& layer, const StreamOptions& options = {});
  explicit Stream(const SeparableConv1d& layer, const StreamOptions& options = {});
  ~Stream();
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;

  int64_t batch() const;
  int64_t in_channels() const;
  int64_t out_channels() const;
  DType dtype() const;
  Layout layout() const;
  int64_t pad_left() const;
  int64_t pad_right() const;
  // Input samples pushed and output samples emitted since construction or
  // reset(), per stream.
  int64_t samples_pushed() const;
  int64_t samples_emitted() const;
  bool flushed() const;
  // The algorithm of the (first stage's) block plan.
  std::string_view algorithm() const;
  // One-line description of the configuration, as recorded by save().
  const std::string& description() const;

  // Upper bound of the outputs of any push of `chunk_length` samples, in
  // any state: size output buffers once with it.
  int64_t max_output(int64_t chunk_length) const;
  // Exactly the outputs the next push of `chunk_length` samples returns.
  int64_t output_length(int64_t chunk_length) const;
  // Upper bound, and exact count, of the outputs of flush().
  int64_t max_flush_output() const;
  int64_t flush_length() const;

  // chunk: (batch, in_channels, L) with any strides and L >= 0. Writes the
  // new outputs to out[:, :, 0:count] and returns count; out must have
  // (batch, out_channels) and length >= output_length(L), and must not
  // overlap the chunk. The dtype must be the layer's. On error (Error) the
  // stream state is unchanged.
  int64_t push(TensorRef<const float> chunk, TensorRef<float> out);
  int64_t push(TensorRef<const double> chunk, TensorRef<double> out);
  // Ends the stream: pads its end and writes the remaining outputs. Later
  // pushes and flushes are errors until reset().
  int64_t flush(TensorRef<float> out);
  int64_t flush(TensorRef<double> out);

  // Convenience forms that allocate the output. The chunk is (N, C, L) or,
  // with batch 1, unbatched (C, L), in the stream's layout; the output has
  // the chunk's rank. flush() returns the rank of the last pushed Tensor.
  Tensor push(const Tensor& chunk);
  Tensor flush();

  // Back to the start of a new stream (same layer, same buffers).
  void reset();

  // The state (history, counters, stride phase) as bytes, with a header
  // naming the layer configuration and a fingerprint of its weights. restore
  // accepts bytes saved by a stream of the same layer and batch (the layout,
  // block size and algorithm may differ); anything else is an Error and
  // leaves the state unchanged.
  std::vector<uint8_t> save() const;
  void restore(std::span<const uint8_t> bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace conv1d
