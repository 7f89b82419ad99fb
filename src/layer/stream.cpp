// Streaming convolution: a window of [history + new samples] per stream,
// convolved by plans made for 'valid' problems.
//
// Positions are counted on the padded input (left pad, samples, right pad).
// Output j reads padded positions [j*stride, j*stride + span). The window
// buffer holds positions [emitted*stride, emitted*stride + filled) at buffer
// offset `begin`; filled < 0 means the next window starts past the samples
// received so far (stride > span) and that many positions are skipped.
// Between calls every computable output has been emitted, so filled < span:
// that is all the history kept.
#include <algorithm>
#include <conv1d/stream.hpp>
#include <cstring>
#include <limits>
#include <new>

#include "core/checked.hpp"
#include "core/overlap.hpp"
#include "core/scratch.hpp"
#include "core/strings.hpp"
#include "core/threads.hpp"
#include "plan/registry.hpp"

namespace conv1d {

using core::str_cat;

namespace {

// Zero-initialised, 64-byte aligned storage, allocated once.
class Buffer {
 public:
  void allocate(int64_t bytes) {
    const auto size = static_cast<size_t>(std::max<int64_t>(bytes, 1));
    data_.reset(static_cast<std::byte*>(::operator new (size, std::align_val_t{64})));
    std::memset(data_.get(), 0, size);
  }
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { ::operator delete (p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

using core::ceil_div;

template <class T>
TensorRef<T> slice(TensorRef<T> ref, int64_t start, int64_t length) {
  ref.data += start * ref.length_stride;
  ref.length = length;
  return ref;
}

// dst = src (same logical shape), with whole rows copied at once when both
// are contiguous along the length or along the channels.
template <class T>
void copy_activation(TensorRef<const T> src, TensorRef<T> dst) {
  if (src.length == 0) return;
  if (src.length_stride == 1 && dst.length_stride == 1) {
    for (int64_t n = 0; n < src.batch; ++n) {
      for (int64_t c = 0; c < src.channels; ++c) {
        std::memcpy(&dst.at(n, c, 0), &src.at(n, c, 0),
                    static_cast<size_t>(src.length) * sizeof(T));
      }
    }
  } else if (src.channel_stride == 1 && dst.channel_stride == 1) {
    for (int64_t n = 0; n < src.batch; ++n) {
      for (int64_t l = 0; l < src.length; ++l) {
        std::memcpy(&dst.at(n, 0, l), &src.at(n, 0, l),
                    static_cast<size_t>(src.channels) * sizeof(T));
      }
    }
  } else {
    for (int64_t n = 0; n < src.batch; ++n) {
      for (int64_t c = 0; c < src.channels; ++c) {
        for (int64_t l = 0; l < src.length; ++l) dst.at(n, c, l) = src.at(n, c, l);
      }
    }
  }
}

// FNV-1a: a fingerprint of the weights, so that a state saved for one layer
// is not restored into another layer of the same shape.
uint64_t fingerprint(uint64_t hash, const Tensor& tensor) {
  if (tensor.rank() == 0) return hash;
  const auto* bytes = tensor.dtype() == DType::f32
                          ? reinterpret_cast<const uint8_t*>(tensor.data<float>())
                          : reinterpret_cast<const uint8_t*>(tensor.data<double>());
  const auto size = static_cast<size_t>(tensor.numel() * dtype_size(tensor.dtype()));
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  return hash;
}

constexpr char kMagic[8] = {'c', 'o', 'n', 'v', '1', 'd', 's', 't'};
constexpr uint32_t kFormatVersion = 1;

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& bytes) : bytes_(bytes) {}
  void raw(const void* data, size_t size) {
    const auto* begin = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), begin, begin + size);
  }
  template <class V>
  void value(V v) {
    raw(&v, sizeof v);
  }

 private:
  std::vector<uint8_t>& bytes_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  const uint8_t* raw(size_t size, std::string_view what) {
    if (bytes_.size() - offset_ < size) {
      throw Error(str_cat("cannot restore stream state: the bytes are truncated (", bytes_.size(),
                          " bytes, ended while reading the ", what, ")"));
    }
    const uint8_t* data = bytes_.data() + offset_;
    offset_ += size;
    return data;
  }
  template <class V>
  V value(std::string_view what) {
    V v;
    std::memcpy(&v, raw(sizeof v, what), sizeof v);
    return v;
  }
  size_t remaining() const { return bytes_.size() - offset_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t offset_ = 0;
};

}  // namespace

struct Stream::Impl {
  // Configuration.
  DType dtype = DType::f32;
  Layout layout = Layout::ncl;
  bool separable = false;
  int64_t batch = 1;
  int64_t in_channels = 1;
  int64_t mid_channels = 1;  // output channels of the convolution with history
  int64_t out_channels = 1;
  int64_t stride = 1;
  int64_t span = 1;  // dilation*(K-1)+1
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  PaddingMode mode = PaddingMode::zeros;
  std::string description;
  uint64_t weights_fingerprint = 0;

  // Sizes derived from it.
  int64_t block = 1;            // outputs per full block
  int64_t block_window = 1;     // padded positions a full block reads
  int64_t capacity = 1;         // positions the window buffer holds
  int64_t need_left = 0;        // samples needed before the left pad is known
  int64_t prefix_capacity = 0;  // first samples kept (reflect / replicate left, circular right)
  int64_t tail_capacity = 0;    // last samples kept (reflect / replicate right)

  // Plans for sizes[i] outputs, ascending; the last is `block`.
  std::vector<int64_t> sizes;
  // The cost model's time for a full block.
  double block_seconds = 0;
  std::vector<Plan> conv_plans;
  std::vector<Plan> pointwise_plans;

  Buffer window;   // (batch, in_channels, capacity) in `layout`
  Buffer prefix;   // (batch, in_channels, prefix_capacity), NCL
  Buffer tail;     // (batch, in_channels, tail_capacity), NCL
  Buffer middle;   // separable: (batch, mid_channels, block) in `layout`
  Buffer scratch;  // (batch, out_channels, block) in `layout`

  // State.
  int64_t pushed = 0;
  int64_t emitted = 0;
  int64_t filled = 0;
  int64_t begin = 0;
  int64_t tail_length = 0;
  bool pad_fed = true;
  bool finished = false;
  int tensor_rank = 3;

  void configure(const ConvParams& params, const StreamOptions& options, DType layer_dtype) {
    if (options.batch < 0) {
      throw Error(str_cat("stream batch must be non-negative, got batch=", options.batch));
    }
    if (options.block_outputs <= 0) {
      throw Error(
          str_cat("block_outputs must be positive, got block_outputs=", options.block_outputs));
    }
    const auto [left, right] =
        params.padding.resolve(params.kernel_size, params.stride, params.dilation);
    if (params.padding_mode == PaddingMode::circular && left > 0) {
      throw Error(str_cat("cannot stream circular padding with pad_left=", left,
                          ": the left pad wraps around to the end of the stream, which has not "
                          "arrived; use pad_left=0 (padding=(0, right)) or another padding mode"));
    }
    dtype = layer_dtype;
    layout = options.layout;
    batch = options.batch;
    in_channels = params.in_channels;
    mid_channels = params.out_channels;
    stride = params.stride;
    span = core::checked_add(
        core::checked_mul(params.dilation, params.kernel_size - 1, "dilation*(kernel_size-1)"), 1,
        "kernel span");
    pad_left = left;
    pad_right = right;
    mode = params.padding_mode;

    block = options.block_outputs;
    block_window = core::checked_add(core::checked_mul(block - 1, stride, "block window"), span,
                                     "block window");
    capacity = core::checked_mul(block_window, 2, "stream window");
    if (pad_left == 0) {
      need_left = 0;
    } else {
      need_left = mode == PaddingMode::reflect ? pad_left + 1 : 1;
    }
    prefix_capacity = 0;
    if (pad_left > 0 && mode == PaddingMode::reflect) prefix_capacity = pad_left + 1;
    if (pad_left > 0 && mode == PaddingMode::replicate) prefix_capacity = 1;
    if (mode == PaddingMode::circular) prefix_capacity = pad_right;
    tail_capacity = 0;
    if (pad_right > 0 && mode == PaddingMode::reflect) tail_capacity = pad_right + 1;
    if (pad_right > 0 && mode == PaddingMode::replicate) tail_capacity = 1;
    // Plans for 1, 2, 3, 4, 6, 8, 12, ... outputs and for every multiple of
    // block/8: a remainder runs in one call on the smallest plan that covers
    // it, computing at most a third or block/8 more outputs than needed.
    for (int64_t size = 1; size < block; size *= 2) {
      sizes.push_back(size);
      if (size >= 2 && size + size / 2 < block) sizes.push_back(size + size / 2);
    }
    for (int64_t eighth = block / 8, size = eighth; eighth > 0 && size < block; size += eighth) {
      sizes.push_back(size);
    }
    sizes.push_back(block);
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  }

  Problem valid_problem(const ConvParams& params, int64_t outputs) const {
    ConvParams valid = params;
    valid.padding = Padding::valid();
    valid.padding_mode = PaddingMode::zeros;
    const int64_t length = (outputs - 1) * valid.stride + span_of(valid);
    return Problem::make(valid, batch, length, dtype, layout);
  }
  static int64_t span_of(const ConvParams& params) {
    return params.dilation * (params.kernel_size - 1) + 1;
  }

  // Shares the weights of an `earlier` plan (another chunk size) when it can.
  static Plan make_plan(const Problem& problem, const PlanOptions& options, const Tensor& weight,
                        const Tensor& bias, const std::vector<Plan>& earlier) {
    Plan plan(problem, options);
    for (const Plan& other : earlier) {
      if (plan.share_weights(other)) return plan;
    }
    if (problem.dtype == DType::f32) {
      plan.set_weights(weight.data<float>(), bias.rank() ? bias.data<float>() : nullptr);
    } else {
      plan.set_weights(weight.data<double>(), bias.rank() ? bias.data<double>() : nullptr);
    }
    return plan;
  }

  void allocate() {
    const int64_t element = dtype_size(dtype);
    auto bytes = [&](int64_t channels, int64_t length) {
      return core::checked_mul(
          core::checked_mul(core::checked_mul(batch, channels, "stream buffer"), length,
                            "stream buffer"),
          element, "stream buffer");
    };
    window.allocate(bytes(in_channels, capacity));
    prefix.allocate(bytes(in_channels, prefix_capacity));
    tail.allocate(bytes(in_channels, tail_capacity));
    if (separable) middle.allocate(bytes(mid_channels, block));
    scratch.allocate(bytes(out_channels, block));
  }

  // Runs every plan once so that their per-thread scratch exists before the
  // first push.
  template <class T>
  void warm_up() {
    for (size_t i = 0; i < sizes.size(); ++i) {
      execute<T>(i, window_ref<T>(0, window_length(sizes[i])), scratch_ref<T>(sizes[i]));
    }
  }
  void warm_up() {
    if (dtype == DType::f32) {
      warm_up<float>();
    } else {
      warm_up<double>();
    }
  }

  int64_t window_length(int64_t outputs) const { return (outputs - 1) * stride + span; }

  template <class T>
  TensorRef<T> activation(const Buffer& buffer, int64_t channels, int64_t length, int64_t capacity_,
                          int64_t offset) const {
    TensorRef<T> ref = TensorRef<T>::contiguous(buffer.as<T>(), batch, channels, capacity_, layout);
    ref.data += offset * ref.length_stride;
    ref.length = length;
    return ref;
  }
  template <class T>
  TensorRef<T> window_ref(int64_t offset, int64_t length) const {
    return activation<T>(window, in_channels, length, capacity, offset);
  }
  template <class T>
  TensorRef<T> middle_ref(int64_t length) const {
    return activation<T>(middle, mid_channels, length, block, 0);
  }
  template <class T>
  TensorRef<T> scratch_ref(int64_t length) const {
    return activation<T>(scratch, out_channels, length, block, 0);
  }
  template <class T>
  T& prefix_at(int64_t n, int64_t c, int64_t i) const {
    return prefix.as<T>()[(n * in_channels + c) * prefix_capacity + i];
  }
  template <class T>
  T& tail_at(int64_t n, int64_t c, int64_t i) const {
    return tail.as<T>()[(n * in_channels + c) * tail_capacity + i];
  }

  // Outputs computable from the first `positions` padded positions.
  int64_t outputs_from(int64_t positions) const {
    return positions >= span ? (positions - span) / stride + 1 : 0;
  }
  // Padded positions received after `samples` input samples (without the
  // right pad): the left pad goes in once it is known.
  int64_t positions_after(int64_t samples) const {
    return samples >= need_left ? pad_left + samples : 0;
  }

  int64_t output_length(int64_t chunk_length) const {
    return outputs_from(positions_after(pushed + chunk_length)) - emitted;
  }
  int64_t flush_length() const {
    if (finished || pushed == 0) return 0;
    return outputs_from(pad_left + pushed + pad_right) - emitted;
  }

  // Moves the live window to the start of the buffer.
  template <class T>
  void compact() {
    if (begin == 0) return;
    T* data = window.as<T>();
    for (int64_t n = 0; n < batch; ++n) {
      if (layout == Layout::ncl) {
        for (int64_t c = 0; c < in_channels; ++c) {
          T* row = data + (n * in_channels + c) * capacity;
          std::memmove(row, row + begin, static_cast<size_t>(filled) * sizeof(T));
        }
      } else {
        T* rows = data + n * in_channels * capacity;
        std::memmove(rows, rows + begin * in_channels,
                     static_cast<size_t>(filled * in_channels) * sizeof(T));
      }
    }
    begin = 0;
  }

  // Runs the plans for sizes[index] outputs: input -> target.
  template <class T>
  void execute(size_t index, TensorRef<const T> input, TensorRef<T> target) const {
    if (separable) {
      const TensorRef<T> middle_part = middle_ref<T>(sizes[index]);
      conv_plans[index].forward(input, middle_part);
      pointwise_plans[index].forward(TensorRef<const T>(middle_part), target);
    } else {
      conv_plans[index].forward(input, target);
    }
  }

  // The first `count` (<= sizes[index]) outputs of the plan for
  // sizes[index] outputs from the window at `offset` into `target`: the
  // plan's extra outputs (read from stale positions past the received
  // samples, inside the buffer) go to the scratch buffer and are dropped.
  template <class T>
  void execute_first(size_t index, int64_t count, int64_t offset, TensorRef<T> target) const {
    const int64_t size = sizes[index];
    const TensorRef<const T> input = window_ref<T>(offset, window_length(size));
    if (count == size) {
      execute(index, input, target);
    } else {
      execute(index, input, scratch_ref<T>(size));
      copy_activation(TensorRef<const T>(scratch_ref<T>(count)), target);
    }
  }

  // Computes `count` (<= sizes[index]) outputs from the window at `begin`
  // into out[:, :, position...], with the plan for sizes[index] outputs.
  template <class T>
  void run(size_t index, int64_t count, TensorRef<T> out, int64_t& position) {
    // Positions past the received samples only need to lie inside the
    // buffer.
    if (begin + window_length(sizes[index]) > capacity) compact<T>();
    execute_first(index, count, begin, slice(out, position, count));
    position += count;
    emitted += count;
    begin += count * stride;
    filled -= count * stride;
    if (filled <= 0) begin = 0;
  }

  // Appends `count` padded positions to the window, copy(i, n, to) writing
  // positions [i, i + n) of them to the view `to`, and emits every full
  // block they complete.
  template <class T, class Copy>
  void feed(int64_t count, const Copy& copy, TensorRef<T> out, int64_t& position) {
    int64_t i = 0;
    while (i < count) {
      if (filled < 0) {
        const int64_t skipped = std::min(-filled, count - i);
        filled += skipped;
        i += skipped;
        continue;
      }
      if (begin + filled == capacity) compact<T>();
      const int64_t take = std::min(count - i, capacity - begin - filled);
      copy(i, take, window_ref<T>(begin + filled, take));
      filled += take;
      i += take;
      while (filled >= block_window) run(sizes.size() - 1, block, out, position);
    }
  }

  template <class T>
  void feed_view(TensorRef<const T> source, TensorRef<T> out, int64_t& position) {
    feed<T>(
        source.length,
        [&](int64_t i, int64_t take, TensorRef<T> to) {
          copy_activation(slice(source, i, take), to);
        },
        out, position);
  }

  // Padding values: value(n, c, i) for the i-th padded position.
  template <class T, class Value>
  void feed_values(int64_t count, const Value& value, TensorRef<T> out, int64_t& position) {
    feed<T>(
        count,
        [&](int64_t i, int64_t take, TensorRef<T> to) {
          for (int64_t n = 0; n < batch; ++n) {
            for (int64_t c = 0; c < in_channels; ++c) {
              for (int64_t t = 0; t < take; ++t) to.at(n, c, t) = value(n, c, i + t);
            }
          }
        },
        out, position);
  }

  // Emits the outputs the window holds beyond the full blocks.
  template <class T>
  void finish(TensorRef<T> out, int64_t& position) {
    const int64_t count = outputs_from(filled);
    if (count == 0) return;
    size_t index = 0;
    while (sizes[index] < count) ++index;
    run(index, count, out, position);
  }

  // Takes the samples of a chunk. Full blocks of outputs whose windows lie
  // inside the chunk run on the chunk itself, so a long chunk is not copied.
  // The outputs that straddle the history and the chunk, together with the
  // chunk's outputs beyond whole blocks, run on the window buffer: their
  // samples are copied in first, then every piece (a remainder on the
  // smallest plan that covers it, whole blocks in the buffer, whole blocks
  // in the chunk) runs in one loop, side by side on several threads where
  // that pays. Then the buffer keeps the chunk's tail as the new history.
  template <class T>
  void consume(TensorRef<const T> chunk, TensorRef<T> out, int64_t& position) {
    int64_t i = 0;
    if (filled < 0) {
      i = std::min(-filled, chunk.length);
      filled += i;
      if (filled < 0) return;
    }
    const int64_t straddling = ceil_div(filled, stride);
    const int64_t first_inside = i + straddling * stride - filled;
    const int64_t inside =
        first_inside < chunk.length ? outputs_from(chunk.length - first_inside) : 0;
    const int64_t blocks = inside / block;
    if (blocks == 0) {
      feed_view(slice(chunk, i, chunk.length - i), out, position);
      return;
    }
    const int64_t buffered = straddling + inside - blocks * block;
    const size_t index = sizes.size() - 1;
    const int64_t remainder = buffered % block;
    size_t remainder_index = 0;
    while (sizes[remainder_index] < remainder) ++remainder_index;
    const int64_t buffer_blocks = buffered / block;
    const int64_t first_block = remainder > 0 ? 1 : 0;
    const int64_t pieces = first_block + buffer_blocks + blocks;
    if (buffered > 0) {
      // The buffered outputs read (buffered - 1) * stride + span positions
      // from the window's start (and the remainder's plan up to a block's
      // window): less than 2 * block_window, as the history is under a
      // block's window, so they fit the buffer at once. (With stride > span
      // the history may already hold them all.)
      const int64_t reach =
          std::max((buffered - 1) * stride + span, window_length(sizes[remainder_index]));
      if (begin + reach > capacity) compact<T>();
      const int64_t end = i + (buffered - 1) * stride + span - filled;
      if (end > i) {
        copy_activation(slice(chunk, i, end - i), window_ref<T>(begin + filled, end - i));
        filled += end - i;
      }
    }
    const int64_t start = first_inside + (inside - blocks * block) * stride;
    const auto run_piece = [&](int64_t piece) {
      if (piece < first_block) {
        execute_first(remainder_index, remainder, begin, slice(out, position, remainder));
        return;
      }
      const int64_t b = piece - first_block;
      if (b < buffer_blocks) {
        const int64_t first = remainder + b * block;
        execute(index, TensorRef<const T>(window_ref<T>(begin + first * stride, block_window)),
                slice(out, position + first, block));
        return;
      }
      const int64_t c = b - buffer_blocks;
      execute(index, slice(chunk, start + c * block * stride, block_window),
              slice(out, position + buffered + c * block, block));
    };
    // The pieces are independent: on several threads they may run side by
    // side, a piece a thread (its plan's own parallel loop runs serially
    // inside this one), in one parallel loop instead of one per piece. That
    // pays unless the pieces are few and long (3 blocks on 2 threads take 2
    // block times that way) or one is much shorter (a block and a remainder
    // of a quarter block: the block's own loop on 2 threads is quicker).
    // Separable streams pass every piece through one middle buffer, so in
    // turn.
    const double remainder_seconds =
        block_seconds * static_cast<double>(sizes[remainder_index]) / static_cast<double>(block);
    // Pieces [piece, piece + count) one after another on one thread.
    const auto run_seconds = [&](int64_t piece, int64_t count) {
      const double seconds = static_cast<double>(count) * block_seconds;
      return piece < first_block && count > 0 ? seconds - block_seconds + remainder_seconds
                                              : seconds;
    };
    // In turn, each piece on its own plan's threads.
    const auto in_turn_seconds = [&](size_t plan, double seconds) {
      const int own = conv_plans[plan].forward_threads();
      return seconds / own + (own > 1 ? core::kParallelLoopSeconds : 0.0);
    };
    const double one_by_one =
        static_cast<double>(buffer_blocks + blocks) * in_turn_seconds(index, block_seconds) +
        (first_block > 0 ? in_turn_seconds(remainder_index, remainder_seconds) : 0.0);
    // A static schedule gives each thread a run of consecutive pieces, the
    // first pieces % threads one more.
    const int threads = separable ? 1 : conv_plans[index].threads();
    double side_by_side = 0;
    for (int64_t t = 0, piece = 0; t < threads && piece < pieces; ++t) {
      const int64_t count = pieces / threads + (t < pieces % threads ? 1 : 0);
      side_by_side = std::max(side_by_side, run_seconds(piece, count));
      piece += count;
    }
    side_by_side += core::kParallelLoopSeconds;
    if (threads > 1 && pieces > 1 && side_by_side < one_by_one) {
      core::parallel_for(pieces, threads, run_piece);
    } else {
      for (int64_t piece = 0; piece < pieces; ++piece) run_piece(piece);
    }
    position += buffered + blocks * block;
    emitted += buffered + blocks * block;
    // The window now starts inside the chunk (or past it when
    // stride > span): it holds the chunk's tail.
    const int64_t rest = start + blocks * block * stride;
    begin = 0;
    filled = std::min<int64_t>(chunk.length - rest, 0);
    if (rest < chunk.length) feed_view(slice(chunk, rest, chunk.length - rest), out, position);
  }

  template <class T>
  void feed_left_pad(TensorRef<T> out, int64_t& position) {
    switch (mode) {
      case PaddingMode::zeros:
      case PaddingMode::circular:  // only with pad_left == 0
        feed_values<T>(
            pad_left, [](int64_t, int64_t, int64_t) { return T(0); }, out, position);
        break;
      case PaddingMode::replicate:
        feed_values<T>(
            pad_left, [&](int64_t n, int64_t c, int64_t) { return prefix_at<T>(n, c, 0); }, out,
            position);
        break;
      case PaddingMode::reflect:
        feed_values<T>(
            pad_left,
            [&](int64_t n, int64_t c, int64_t i) { return prefix_at<T>(n, c, pad_left - i); }, out,
            position);
        break;
    }
  }

  template <class T>
  void feed_right_pad(TensorRef<T> out, int64_t& position) {
    switch (mode) {
      case PaddingMode::zeros:
        feed_values<T>(
            pad_right, [](int64_t, int64_t, int64_t) { return T(0); }, out, position);
        break;
      case PaddingMode::replicate:
        feed_values<T>(
            pad_right,
            [&](int64_t n, int64_t c, int64_t) { return tail_at<T>(n, c, tail_length - 1); }, out,
            position);
        break;
      case PaddingMode::reflect:
        feed_values<T>(
            pad_right,
            [&](int64_t n, int64_t c, int64_t i) { return tail_at<T>(n, c, tail_length - 2 - i); },
            out, position);
        break;
      case PaddingMode::circular:
        feed_values<T>(
            pad_right, [&](int64_t n, int64_t c, int64_t i) { return prefix_at<T>(n, c, i); }, out,
            position);
        break;
    }
  }

  template <class T>
  void check_dtype() const {
    if (dtype_of<T>() != dtype) {
      throw Error(str_cat("the stream's layer is ", to_string(dtype), " but the data is ",
                          to_string(dtype_of<T>())));
    }
  }

  template <class T>
  void check_out(const TensorRef<T>& out, int64_t count, std::string_view call) const {
    if (out.batch != batch || out.channels != out_channels) {
      throw Error(str_cat(call, ": out has batch ", out.batch, " and ", out.channels,
                          " channels but the stream has batch ", batch,
                          " and out_channels=", out_channels));
    }
    if (out.length < count) {
      throw Error(str_cat(call, ": out has room for ", out.length, " samples but ", count,
                          " outputs are ready (size it with max_output)"));
    }
    if (out.data == nullptr && count > 0 && batch * out_channels > 0) {
      throw Error(str_cat(call, ": out has no data"));
    }
  }

  template <class T>
  int64_t push(TensorRef<const T> chunk, TensorRef<T> out) {
    check_dtype<T>();
    if (finished) {
      throw Error("push after flush: the stream has ended; call reset() to start a new one");
    }
    if (chunk.batch != batch || chunk.channels != in_channels) {
      throw Error(str_cat("push: chunk has batch ", chunk.batch, " and ", chunk.channels,
                          " channels but the stream has batch ", batch,
                          " and in_channels=", in_channels));
    }
    if (chunk.length < 0) {
      throw Error(str_cat("push: chunk length must be non-negative, got ", chunk.length));
    }
    if (chunk.data == nullptr && chunk.length > 0 && batch * in_channels > 0) {
      throw Error("push: chunk has no data");
    }
    const int64_t length = chunk.length;
    core::checked_add(pushed, length, "stream length");
    const int64_t count = output_length(length);
    check_out(out, count, "push");
    TensorRef<T> written = out;
    written.length = count;
    core::check_no_overlap(chunk, "the chunk", written, "push: out");

    // The first samples, for padding that repeats them.
    for (int64_t i = pushed; i < std::min(prefix_capacity, pushed + length); ++i) {
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t c = 0; c < in_channels; ++c) {
          prefix_at<T>(n, c, i) = chunk.at(n, c, i - pushed);
        }
      }
    }
    int64_t position = 0;
    if (!pad_fed && pushed + length >= need_left) {
      // The left pad is known now: it goes in before the samples held so far.
      feed_left_pad<T>(out, position);
      const TensorRef<const T> held{
          prefix.as<T>(),  batch, in_channels, pushed, in_channels * prefix_capacity,
          prefix_capacity, 1};
      feed_view(held, out, position);
      pad_fed = true;
    }
    if (pad_fed) consume(chunk, out, position);
    update_tail(chunk);
    pushed += length;
    finish<T>(out, position);
    return position;
  }

  // Keeps the last tail_capacity samples of the stream.
  template <class T>
  void update_tail(const TensorRef<const T>& chunk) {
    if (tail_capacity == 0) return;
    const int64_t fresh = std::min(chunk.length, tail_capacity);
    const int64_t kept = std::min(tail_length, tail_capacity - fresh);
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < in_channels; ++c) {
        T* row = &tail_at<T>(n, c, 0);
        std::memmove(row, row + tail_length - kept, static_cast<size_t>(kept) * sizeof(T));
        for (int64_t i = 0; i < fresh; ++i)
          row[kept + i] = chunk.at(n, c, chunk.length - fresh + i);
      }
    }
    tail_length = kept + fresh;
  }

  template <class T>
  int64_t flush(TensorRef<T> out) {
    check_dtype<T>();
    if (finished) {
      throw Error("flush after flush: the stream has ended; call reset() to start a new one");
    }
    if (pushed > 0) {
      if (mode == PaddingMode::reflect && (pushed <= pad_left || pushed <= pad_right)) {
        throw Error(str_cat("flush: reflect padding=(", pad_left, ", ", pad_right,
                            ") needs a stream longer than the padding, got ", pushed, " samples"));
      }
      if (mode == PaddingMode::circular && pushed < pad_right) {
        throw Error(str_cat("flush: circular padding=(0, ", pad_right,
                            ") needs at least as many samples as the padding, got ", pushed));
      }
    }
    const int64_t count = flush_length();
    check_out(out, count, "flush");
    int64_t position = 0;
    if (pushed > 0) {
      feed_right_pad<T>(out, position);
      finish<T>(out, position);
    }
    finished = true;
    return position;
  }

  void reset() {
    pushed = 0;
    emitted = 0;
    filled = 0;
    begin = 0;
    tail_length = 0;
    pad_fed = need_left == 0;
    finished = false;
  }

  // Padded positions received, from the counters alone.
  int64_t positions_received(int64_t samples, bool ended) const {
    if (samples == 0) return 0;
    return positions_after(samples) + (ended ? pad_right : 0);
  }

  template <class T>
  void save_data(Writer& writer) const {
    const int64_t prefix_length = std::min(pushed, prefix_capacity);
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < in_channels; ++c) {
        writer.raw(&prefix_at<T>(n, c, 0), static_cast<size_t>(prefix_length) * sizeof(T));
        writer.raw(&tail_at<T>(n, c, 0), static_cast<size_t>(tail_length) * sizeof(T));
      }
    }
    const TensorRef<T> live = window_ref<T>(begin, std::max<int64_t>(filled, 0));
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < in_channels; ++c) {
        for (int64_t l = 0; l < live.length; ++l) writer.value(live.at(n, c, l));
      }
    }
  }

  std::vector<uint8_t> save() const {
    std::vector<uint8_t> bytes;
    Writer writer(bytes);
    writer.raw(kMagic, sizeof kMagic);
    writer.value(kFormatVersion);
    writer.value(static_cast<uint32_t>(description.size()));
    writer.raw(description.data(), description.size());
    writer.value(weights_fingerprint);
    writer.value(pushed);
    writer.value(emitted);
    writer.value(static_cast<uint8_t>(finished));
    if (dtype == DType::f32) {
      save_data<float>(writer);
    } else {
      save_data<double>(writer);
    }
    return bytes;
  }

  template <class T>
  void restore_data(const uint8_t* data, int64_t prefix_length, int64_t window_length_) {
    auto next = [&]() {
      T v;
      std::memcpy(&v, data, sizeof v);
      data += sizeof v;
      return v;
    };
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < in_channels; ++c) {
        for (int64_t i = 0; i < prefix_length; ++i) prefix_at<T>(n, c, i) = next();
        for (int64_t i = 0; i < tail_length; ++i) tail_at<T>(n, c, i) = next();
      }
    }
    const TensorRef<T> live = window_ref<T>(0, window_length_);
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < in_channels; ++c) {
        for (int64_t l = 0; l < window_length_; ++l) live.at(n, c, l) = next();
      }
    }
  }

  void restore(std::span<const uint8_t> bytes) {
    Reader reader(bytes);
    if (std::memcmp(reader.raw(sizeof kMagic, "header"), kMagic, sizeof kMagic) != 0) {
      throw Error("cannot restore stream state: the bytes are not a saved conv1d stream state");
    }
    const auto version = reader.value<uint32_t>("header");
    if (version != kFormatVersion) {
      throw Error(str_cat("cannot restore stream state: format version ", version,
                          " is not the supported version ", kFormatVersion));
    }
    const auto description_size = reader.value<uint32_t>("header");
    const auto* text = reader.raw(description_size, "header");
    const std::string saved(reinterpret_cast<const char*>(text), description_size);
    if (saved != description) {
      throw Error(str_cat("cannot restore stream state: it was saved for '", saved,
                          "' but this stream is '", description, "'"));
    }
    if (reader.value<uint64_t>("header") != weights_fingerprint) {
      throw Error(str_cat("cannot restore stream state: it was saved for a layer '", description,
                          "' with other weights"));
    }
    const auto saved_pushed = reader.value<int64_t>("counters");
    const auto saved_emitted = reader.value<int64_t>("counters");
    const auto saved_finished = reader.value<uint8_t>("counters");
    if (saved_pushed < 0 || saved_emitted < 0 || saved_finished > 1 ||
        saved_pushed > std::numeric_limits<int64_t>::max() / 2) {
      throw Error("cannot restore stream state: the counters are corrupt");
    }
    const int64_t positions = positions_received(saved_pushed, saved_finished != 0);
    const int64_t saved_filled = positions - saved_emitted * stride;
    if (saved_emitted != outputs_from(positions) || saved_filled >= span ||
        saved_filled <= -stride) {
      throw Error(str_cat("cannot restore stream state: the counters are corrupt (", saved_pushed,
                          " samples pushed, ", saved_emitted, " emitted)"));
    }
    const int64_t prefix_length = std::min(saved_pushed, prefix_capacity);
    const int64_t saved_tail = std::min(saved_pushed, tail_capacity);
    const int64_t live = std::max<int64_t>(saved_filled, 0);
    const auto expected = static_cast<size_t>(
        batch * in_channels * (prefix_length + saved_tail + live) * dtype_size(dtype));
    if (reader.remaining() != expected) {
      throw Error(str_cat("cannot restore stream state: expected ", expected,
                          " bytes of history, got ", reader.remaining(),
                          reader.remaining() < expected ? " (truncated)" : ""));
    }
    // Everything is checked: commit.
    const uint8_t* data = reader.raw(expected, "history");
    pushed = saved_pushed;
    emitted = saved_emitted;
    finished = saved_finished != 0;
    filled = saved_filled;
    begin = 0;
    tail_length = saved_tail;
    pad_fed = need_left == 0 || pushed >= need_left;
    if (dtype == DType::f32) {
      restore_data<float>(data, prefix_length, live);
    } else {
      restore_data<double>(data, prefix_length, live);
    }
  }
};

namespace {

std::string describe(std::string_view kind, int64_t batch, const ConvParams& params,
                     int64_t pad_left, int64_t pad_right, DType dtype) {
  std::string text =
      str_cat(kind, " mb", batch, "ic", params.in_channels, "oc", params.out_channels, "kw",
              params.kernel_size, "sw", params.stride, "dl", params.dilation, "pl", pad_left, "pr",
              pad_right, "g", params.groups);
  if (params.padding_mode != PaddingMode::zeros)
    text += str_cat("_", to_string(params.padding_mode));
  if (!params.bias) text += "_nobias";
  return str_cat(text, "_", to_string(dtype));
}

}  // namespace

Stream::Stream(const Conv1d& layer, const StreamOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  const ConvParams& params = layer.params();
  s.configure(params, options, layer.dtype());
  s.out_channels = params.out_channels;
  s.description = describe("conv", s.batch, params, s.pad_left, s.pad_right, s.dtype);
  s.weights_fingerprint =
      fingerprint(fingerprint(0xcbf29ce484222325ull, layer.weight()), layer.bias());
  for (int64_t size : s.sizes) {
    s.conv_plans.push_back(Impl::make_plan(s.valid_problem(params, size), options.plan,
                                           layer.weight(), layer.bias(), s.conv_plans));
  }
  const Plan& full = s.conv_plans.back();
  s.block_seconds = detail::find_algorithm(full.algorithm())->estimated_seconds(full.problem());
  s.allocate();
  s.reset();
  s.warm_up();
}

Stream::Stream(const SeparableConv1d& layer, const StreamOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  const ConvParams depthwise = layer.depthwise().params();
  const ConvParams pointwise = layer.pointwise().params();
  s.configure(depthwise, options, layer.depthwise().dtype());
  s.separable = true;
  s.out_channels = pointwise.out_channels;
  s.description =
      str_cat(describe("separable", s.batch, depthwise, s.pad_left, s.pad_right, s.dtype),
              " pointwise oc", pointwise.out_channels, pointwise.bias ? "" : "_nobias");
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const Conv1d* part : {&layer.depthwise(), &layer.pointwise()}) {
    hash = fingerprint(fingerprint(hash, part->weight()), part->bias());
  }
  s.weights_fingerprint = hash;
  for (int64_t size : s.sizes) {
    s.conv_plans.push_back(Impl::make_plan(s.valid_problem(depthwise, size), options.plan,
                                           layer.depthwise().weight(), layer.depthwise().bias(),
                                           s.conv_plans));
    s.pointwise_plans.push_back(Impl::make_plan(s.valid_problem(pointwise, size), options.plan,
                                                layer.pointwise().weight(),
                                                layer.pointwise().bias(), s.pointwise_plans));
  }
  s.allocate();
  s.reset();
  s.warm_up();
}

Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

int64_t Stream::batch() const { return impl_->batch; }
int64_t Stream::in_channels() const { return impl_->in_channels; }
int64_t Stream::out_channels() const { return impl_->out_channels; }
DType Stream::dtype() const { return impl_->dtype; }
Layout Stream::layout() const { return impl_->layout; }
int64_t Stream::pad_left() const { return impl_->pad_left; }
int64_t Stream::pad_right() const { return impl_->pad_right; }
int64_t Stream::samples_pushed() const { return impl_->pushed; }
int64_t Stream::samples_emitted() const { return impl_->emitted; }
bool Stream::flushed() const { return impl_->finished; }
std::string_view Stream::algorithm() const { return impl_->conv_plans.back().algorithm(); }
const std::string& Stream::description() const { return impl_->description; }

int64_t Stream::max_output(int64_t chunk_length) const {
  const Impl& s = *impl_;
  // At most one output per `stride` new padded positions; one push can add
  // the left pad and the samples held back for it.
  const int64_t held = std::max<int64_t>(s.need_left - 1, 0);
  return ceil_div(std::max<int64_t>(chunk_length, 0) + s.pad_left + held, s.stride);
}

int64_t Stream::output_length(int64_t chunk_length) const {
  return impl_->output_length(std::max<int64_t>(chunk_length, 0));
}

int64_t Stream::max_flush_output() const { return ceil_div(impl_->pad_right, impl_->stride); }

int64_t Stream::flush_length() const { return impl_->flush_length(); }

int64_t Stream::push(TensorRef<const float> chunk, TensorRef<float> out) {
  return impl_->push(chunk, out);
}
int64_t Stream::push(TensorRef<const double> chunk, TensorRef<double> out) {
  return impl_->push(chunk, out);
}
int64_t Stream::flush(TensorRef<float> out) { return impl_->flush(out); }
int64_t Stream::flush(TensorRef<double> out) { return impl_->flush(out); }

Tensor Stream::push(const Tensor& chunk) {
  Impl& s = *impl_;
  if (chunk.dtype() != s.dtype) {
    throw Error(str_cat("push: chunk dtype ", to_string(chunk.dtype()),
                        " does not match the "
                        "stream's ",
                        to_string(s.dtype)));
  }
  const auto& shape = chunk.shape();
  if (shape.size() != 3 && !(shape.size() == 2 && s.batch == 1)) {
    throw Error(str_cat("push: expected a 3-D chunk (batch, channels, length) in layout ",
                        to_string(s.layout), s.batch == 1 ? " or a 2-D unbatched one" : "",
                        ", got a ", shape.size(), "-D chunk"));
  }
  const size_t first = shape.size() == 3 ? 1 : 0;
  const int64_t batch = shape.size() == 3 ? shape[0] : 1;
  const int64_t channels = s.layout == Layout::ncl ? shape[first] : shape[first + 1];
  const int64_t length = s.layout == Layout::ncl ? shape[first + 1] : shape[first];
  if (batch != s.batch || channels != s.in_channels) {
    throw Error(str_cat("push: chunk has batch ", batch, " and ", channels, " channels (layout ",
                        to_string(s.layout), ") but the stream has batch ", s.batch,
                        " and in_channels=", s.in_channels));
  }
  if (s.finished) {
    throw Error("push after flush: the stream has ended; call reset() to start a new one");
  }
  const int64_t count = s.output_length(length);
  std::vector<int64_t> out_shape;
  if (shape.size() == 3) out_shape.push_back(batch);
  if (s.layout == Layout::ncl) {
    out_shape.insert(out_shape.end(), {s.out_channels, count});
  } else {
    out_shape.insert(out_shape.end(), {count, s.out_channels});
  }
  Tensor out(s.dtype, out_shape);
  if (s.dtype == DType::f32) {
    s.push(
        TensorRef<const float>::contiguous(chunk.data<float>(), batch, channels, length, s.layout),
        TensorRef<float>::contiguous(out.data<float>(), batch, s.out_channels, count, s.layout));
  } else {
    s.push(
        TensorRef<const double>::contiguous(chunk.data<double>(), batch, channels, length,
                                            s.layout),
        TensorRef<double>::contiguous(out.data<double>(), batch, s.out_channels, count, s.layout));
  }
  s.tensor_rank = static_cast<int>(shape.size());
  return out;
}

Tensor Stream::flush() {
  Impl& s = *impl_;
  if (s.finished) {
    throw Error("flush after flush: the stream has ended; call reset() to start a new one");
  }
  const int64_t count = s.flush_length();
  std::vector<int64_t> out_shape;
  if (s.tensor_rank == 3) out_shape.push_back(s.batch);
  if (s.layout == Layout::ncl) {
    out_shape.insert(out_shape.end(), {s.out_channels, count});
  } else {
    out_shape.insert(out_shape.end(), {count, s.out_channels});
  }
  Tensor out(s.dtype, out_shape);
  if (s.dtype == DType::f32) {
    s.flush(
        TensorRef<float>::contiguous(out.data<float>(), s.batch, s.out_channels, count, s.layout));
  } else {
    s.flush(TensorRef<double>::contiguous(out.data<double>(), s.batch, s.out_channels, count,
                                          s.layout));
  }
  return out;
}

void Stream::reset() { impl_->reset(); }

std::vector<uint8_t> Stream::save() const { return impl_->save(); }

void Stream::restore(std::span<const uint8_t> bytes) { impl_->restore(bytes); }

}  // namespace conv1d
