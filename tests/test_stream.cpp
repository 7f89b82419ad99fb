// Streaming convolution: the concatenated outputs of every chunk schedule
// equal the offline forward, exactly when one algorithm computes both;
// latency, save/restore, reset, bad input, and no allocation on push.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <conv1d/layer.hpp>
#include <conv1d/stream.hpp>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "tensor_testing.hpp"

// Every allocation of the program is counted, so a test can prove that
// push and flush allocate nothing. GCC cannot see that the replaced
// operators pair malloc with free and warns at every inlined new/delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {

using conv1d::testing::error_of;
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, std::align_val_t alignment) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto align = static_cast<size_t>(alignment);
  if (void* p =
          std::aligned_alloc(align, (std::max<size_t>(size, 1) + align - 1) / align * align)) {
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }

namespace conv1d {
namespace {

// A Conv1d or a SeparableConv1d, behind one interface.
struct Layer {
  std::unique_ptr<Conv1d> conv;
  std::unique_ptr<SeparableConv1d> separable;
  std::string name;

  int64_t in_channels() const {
    return conv ? conv->params().in_channels : separable->params().in_channels;
  }
  int64_t out_channels() const {
    return conv ? conv->params().out_channels : separable->params().out_channels;
  }
  DType dtype() const { return conv ? conv->dtype() : separable->depthwise().dtype(); }
  Tensor forward(const Tensor& input, Layout layout) const {
    return conv ? conv->forward(input, layout) : separable->forward(input, layout);
  }
  Stream stream(const StreamOptions& options) const {
    return conv ? Stream(*conv, options) : Stream(*separable, options);
  }
  std::vector<Tensor*> parameters() {
    std::vector<Tensor*> tensors;
    for (Conv1d* part :
         conv ? std::vector<Conv1d*>{conv.get()}
              : std::vector<Conv1d*>{&separable->depthwise(), &separable->pointwise()}) {
      tensors.push_back(&part->mutable_weight());
      if (part->bias().rank() > 0) tensors.push_back(&part->mutable_bias());
    }
    return tensors;
  }
};

Layer make_conv(const ConvParams& params, DType dtype, const std::string& algorithm,
                uint64_t seed = 1) {
  PlanOptions options;
  options.algorithm = algorithm;
  Layer layer;
  layer.conv = std::make_unique<Conv1d>(params, dtype, seed, options);
  layer.name = Problem::make(params, 1, int64_t{1} << 20, dtype).to_string();
  layer.name.append("_").append(params.padding.to_string());
  return layer;
}

Layer make_separable(const SeparableParams& params, DType dtype, const std::string& algorithm,
                     uint64_t seed = 1) {
  PlanOptions options;
  options.algorithm = algorithm;
  Layer layer;
  layer.separable = std::make_unique<SeparableConv1d>(params, dtype, seed, options);
  layer.name = "separable_" +
               Problem::make(params.depthwise_params(), 1, int64_t{1} << 20, dtype).to_string() +
               "_oc" + std::to_string(params.out_channels);
  return layer;
}

// Values in [-1, 1), or small integers in [-2, 2] that make every
// summation order exact.
void fill(Tensor& tensor, std::mt19937_64& rng, bool integers) {
  std::uniform_real_distribution<double> real(-1, 1);
  std::uniform_int_distribution<int> digit(-2, 2);
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    const double v = integers ? digit(rng) : real(rng);
    if (tensor.dtype() == DType::f32) {
      tensor.data<float>()[i] = static_cast<float>(v);
    } else {
      tensor.data<double>()[i] = v;
    }
  }
}

Tensor make_input(DType dtype, int64_t batch, int64_t channels, int64_t length, Layout layout,
                  std::mt19937_64& rng, bool integers) {
  Tensor input(dtype, layout == Layout::ncl ? std::vector<int64_t>{batch, channels, length}
                                            : std::vector<int64_t>{batch, length, channels});
  fill(input, rng, integers);
  return input;
}

// Chunk lengths summing to `length`: all `size`, or random in [0, 2*size].
std::vector<int64_t> schedule(int64_t length, int64_t size, bool random, std::mt19937_64& rng) {
  std::vector<int64_t> chunks;
  std::uniform_int_distribution<int64_t> draw(0, 2 * size);
  for (int64_t done = 0; done < length;) {
    const int64_t chunk = std::min(length - done, random ? draw(rng) : size);
    chunks.push_back(chunk);
    done += chunk;
  }
  return chunks;
}

template <class T>
TensorRef<T> view(Tensor& tensor, int64_t batch, int64_t channels, int64_t length, Layout layout) {
  return TensorRef<T>::contiguous(tensor.data<T>(), batch, channels, length, layout);
}

template <class T>
TensorRef<T> slice(TensorRef<T> ref, int64_t start, int64_t length) {
  ref.data += start * ref.length_stride;
  ref.length = length;
  return ref;
}

// Streams `input` through `stream` in `chunks` into a tensor shaped like
// `expected`, checking every count the stream announces.
template <class T>
Tensor run_stream(Stream& stream, const Tensor& input, const std::vector<int64_t>& chunks,
                  const Tensor& expected) {
  const Layout layout = stream.layout();
  const int64_t batch = stream.batch();
  Tensor in = input;
  const int64_t length = layout == Layout::ncl ? input.shape()[2] : input.shape()[1];
  const int64_t out_length = layout == Layout::ncl ? expected.shape()[2] : expected.shape()[1];
  Tensor output(expected.dtype(), expected.shape());
  const auto x = view<T>(in, batch, stream.in_channels(), length, layout);
  const auto y = view<T>(output, batch, stream.out_channels(), out_length, layout);
  int64_t consumed = 0, produced = 0;
  for (int64_t chunk : chunks) {
    const int64_t announced = stream.output_length(chunk);
    EXPECT_LE(announced, stream.max_output(chunk));
    const int64_t count = stream.push(TensorRef<const T>(slice(x, consumed, chunk)),
                                      slice(y, produced, out_length - produced));
    EXPECT_EQ(count, announced);
    consumed += chunk;
    produced += count;
  }
  const int64_t announced = stream.flush_length();
  EXPECT_LE(announced, stream.max_flush_output());
  const int64_t count = stream.flush(slice(y, produced, out_length - produced));
  EXPECT_EQ(count, announced);
  produced += count;
  EXPECT_EQ(produced, out_length);
  EXPECT_EQ(stream.samples_emitted(), out_length);
  return output;
}

Tensor run_stream(Stream& stream, const Tensor& input, const std::vector<int64_t>& chunks,
                  const Tensor& expected) {
  return stream.dtype() == DType::f32 ? run_stream<float>(stream, input, chunks, expected)
                                      : run_stream<double>(stream, input, chunks, expected);
}

int64_t count_different(const Tensor& a, const Tensor& b) {
  int64_t different = 0;
  for (int64_t i = 0; i < a.numel(); ++i) different += a.value(i) != b.value(i);
  return different;
}

// max |a - b| / max |b|.
double relative_error(const Tensor& a, const Tensor& b) {
  double error = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    error = std::max(error, std::abs(a.value(i) - b.value(i)));
    scale = std::max(scale, std::abs(b.value(i)));
  }
  return scale > 0 ? error / scale : error;
}

// One drawn configuration: a layer and how to stream it.
struct Case {
  enum Kind { standard, grouped, depthwise, dilated, separable } kind = standard;
  ConvParams params;         // the convolution with history (depthwise part when separable)
  int64_t out_channels = 1;  // separable: pointwise output channels
  bool pointwise_bias = true;
  DType dtype = DType::f32;
  Layout layout = Layout::ncl;
  int64_t batch = 1;
  int64_t length = 1;
  int64_t block = 128;

  Layer layer(const std::string& algorithm, uint64_t seed) const {
    if (kind != separable) return make_conv(params, dtype, algorithm, seed);
    SeparableParams p;
    p.in_channels = params.in_channels;
    p.out_channels = out_channels;
    p.kernel_size = params.kernel_size;
    p.stride = params.stride;
    p.padding = params.padding;
    p.dilation = params.dilation;
    p.depth_multiplier = params.out_channels / params.in_channels;
    p.padding_mode = params.padding_mode;
    p.depthwise_bias = params.bias;
    p.pointwise_bias = pointwise_bias;
    return make_separable(p, dtype, algorithm, seed);
  }
  std::string name() const {
    return layer("reference", 0).name + " mb" + std::to_string(batch) + " L" +
           std::to_string(length) + " block" + std::to_string(block) + " " +
           std::string(to_string(layout));
  }
};

Case draw_case(std::mt19937_64& rng) {
  auto pick = [&](std::initializer_list<int64_t> values) {
    std::uniform_int_distribution<size_t> index(0, values.size() - 1);
    return *(values.begin() + index(rng));
  };
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  Case c;
  c.kind = static_cast<Case::Kind>(uniform(0, 4));
  ConvParams& p = c.params;
  p.kernel_size = pick({1, 2, 3, 4, 5, 7, 8, 16, 31});
  p.stride = uniform(1, 4);
  p.dilation = c.kind == Case::dilated ? pick({2, 3, 8, 16, 64}) : pick({1, 1, 1, 2});
  p.bias = uniform(0, 3) != 0;
  switch (c.kind) {
    case Case::standard:
    case Case::dilated:
      p.in_channels = uniform(1, 5);
      p.out_channels = uniform(1, 5);
      break;
    case Case::grouped:
      p.groups = uniform(2, 3);
      p.in_channels = p.groups * uniform(1, 2);
      p.out_channels = p.groups * uniform(1, 3);
      break;
    case Case::depthwise:
    case Case::separable:
      p.in_channels = uniform(1, 5);
      p.groups = p.in_channels;
      p.out_channels = p.in_channels * uniform(1, 2);
      break;
  }
  c.out_channels = uniform(1, 5);
  c.pointwise_bias = uniform(0, 1) != 0;
  const int64_t span = p.dilation * (p.kernel_size - 1) + 1;
  p.padding_mode = static_cast<PaddingMode>(uniform(0, 3));
  switch (uniform(0, 3)) {
    case 0:
      p.padding = Padding::causal();
      break;
    case 1:
      p.padding = p.stride == 1 ? Padding::same() : Padding::valid();
      break;
    case 2:
      p.padding = Padding::valid();
      break;
    default:
      p.padding = Padding::asymmetric(uniform(0, span + 3), uniform(0, span + 3));
  }
  auto [left, right] = p.padding.resolve(p.kernel_size, p.stride, p.dilation);
  if (p.padding_mode == PaddingMode::circular && left > 0) {
    p.padding = Padding::asymmetric(0, right);
    left = 0;
  }
  int64_t minimum = std::max<int64_t>(1, span - left - right);
  if (p.padding_mode == PaddingMode::reflect)
    minimum = std::max(minimum, std::max(left, right) + 1);
  if (p.padding_mode == PaddingMode::circular) minimum = std::max(minimum, right);
  c.length = minimum + uniform(0, 150);
  c.batch = uniform(1, 3);
  c.layout = uniform(0, 1) ? Layout::nlc : Layout::ncl;
  c.dtype = uniform(0, 4) == 0 ? DType::f64 : DType::f32;
  c.block = pick({1, 2, 3, 7, 16, 128});
  return c;
}

// Streams one case with several schedules and compares with the offline
// forward: bit for bit with the reference algorithm on random data and
// with the default choice on small integers; within 1e-6 (float32) with
// the default choice on random data.
void check_case(const Case& c, std::mt19937_64& rng) {
  SCOPED_TRACE(c.name());
  struct Mode {
    std::string algorithm;
    bool integers;
    bool exact;
  };
  for (const Mode& mode :
       {Mode{"reference", false, true}, Mode{"auto", true, true}, Mode{"auto", false, false}}) {
    SCOPED_TRACE(mode.algorithm + (mode.integers ? " integers" : " reals"));
    Layer layer = c.layer(mode.algorithm, rng());
    for (Tensor* parameter : layer.parameters()) fill(*parameter, rng, mode.integers);
    const Tensor input =
        make_input(c.dtype, c.batch, c.params.in_channels, c.length, c.layout, rng, mode.integers);
    const Tensor expected = layer.forward(input, c.layout);
    StreamOptions options;
    options.batch = c.batch;
    options.layout = c.layout;
    options.block_outputs = c.block;
    options.plan.algorithm = mode.algorithm;
    Stream stream = layer.stream(options);
    const int64_t prime = std::uniform_int_distribution<int64_t>(0, 5)(rng);
    const int64_t primes[] = {2, 3, 5, 13, 31, 97};
    for (const auto& chunks :
         {schedule(c.length, 1, false, rng), schedule(c.length, primes[prime], false, rng),
          schedule(c.length, primes[prime], true, rng), schedule(c.length, c.length, false, rng)}) {
      SCOPED_TRACE("first chunk " + std::to_string(chunks[0]) + " of " +
                   std::to_string(chunks.size()));
      stream.reset();
      const Tensor actual = run_stream(stream, input, chunks, expected);
      if (mode.exact) {
        EXPECT_EQ(count_different(actual, expected), 0);
      } else {
        EXPECT_LE(relative_error(actual, expected), c.dtype == DType::f32 ? 1e-6 : 1e-12);
      }
    }
  }
}

TEST(StreamSweep, RandomLayersAndSchedulesMatchOffline) {
  std::mt19937_64 rng(2024);
  for (int i = 0; i < 400; ++i) check_case(draw_case(rng), rng);
}

// Every named kind, stride 1-4, kernel 1-31, dilation up to 64, explicitly.
TEST(StreamSweep, KindsStridesKernelsDilations) {
  std::mt19937_64 rng(7);
  for (auto kind :
       {Case::standard, Case::grouped, Case::depthwise, Case::dilated, Case::separable}) {
    for (int64_t stride : {1, 2, 3, 4}) {
      for (auto [kernel, dilation] :
           {std::pair<int64_t, int64_t>{1, 1}, {2, 64}, {3, 5}, {4, 1}, {31, 2}, {5, 64}}) {
        Case c;
        c.kind = kind;
        c.params.kernel_size = kernel;
        c.params.stride = stride;
        c.params.dilation = dilation;
        c.params.in_channels = 4;
        c.params.out_channels = 6;
        if (kind == Case::grouped) c.params.groups = 2;
        if (kind == Case::depthwise || kind == Case::separable) {
          c.params.groups = 4;
          c.params.out_channels = 8;  // depth multiplier 2
        }
        c.out_channels = 3;  // separable: pointwise outputs
        c.params.padding = stride == 1 ? Padding::same() : Padding::causal();
        c.batch = 2;
        c.length = dilation * (kernel - 1) + 40;
        c.block = 16;
        check_case(c, rng);
      }
    }
  }
}

StreamOptions options_for(int64_t batch, Layout layout = Layout::ncl,
                          const std::string& algorithm = "auto") {
  StreamOptions options;
  options.batch = batch;
  options.layout = layout;
  options.plan.algorithm = algorithm;
  return options;
}

ConvParams conv_params(int64_t in, int64_t out, int64_t kernel, Padding padding, int64_t stride = 1,
                       int64_t dilation = 1) {
  ConvParams p;
  p.in_channels = in;
  p.out_channels = out;
  p.kernel_size = kernel;
  p.padding = padding;
  p.stride = stride;
  p.dilation = dilation;
  return p;
}

// Streams `params` (batch 2, blocks of 16 outputs, two threads) over
// `chunks` of small integers, which make every summation order exact:
// the number of outputs that differ from the offline forward.
int64_t side_by_side_mismatches(const ConvParams& params, Layout layout,
                                const std::vector<int64_t>& chunks, uint64_t seed) {
  Conv1d layer(params, DType::f32, seed, PlanOptions{"auto", 2});
  std::mt19937_64 rng(seed);
  fill(layer.mutable_weight(), rng, true);
  fill(layer.mutable_bias(), rng, true);
  int64_t length = 0;
  for (const int64_t chunk : chunks) length += chunk;
  const Tensor input = make_input(DType::f32, 2, params.in_channels, length, layout, rng, true);
  const Tensor expected = layer.forward(input, layout);
  StreamOptions options = options_for(2, layout);
  options.block_outputs = 16;
  options.plan.threads = 2;
  Stream stream(layer, options);
  return count_different(run_stream(stream, input, chunks, expected), expected);
}

// Chunks of many blocks on two threads: the blocks run side by side, each
// on one thread.
TEST(StreamThreads, BlocksSideBySideMatchOffline) {
  for (const Layout layout : {Layout::ncl, Layout::nlc}) {
    EXPECT_EQ(side_by_side_mismatches(conv_params(64, 48, 3, Padding::causal(), 1, 2), layout,
                                      {1, 300, 7, 450, 0, 500, 242}, 12),
              0)
        << to_string(layout);
  }
}

// A history longer than a block (dilation 20: 40 samples, blocks of 16
// outputs): a long chunk's straddling outputs run as whole blocks and a
// remainder in the window buffer, side by side with the chunk's own blocks.
TEST(StreamThreads, LongHistoryBlocksSideBySideMatchOffline) {
  for (const int64_t stride : {1, 2}) {
    for (const Layout layout : {Layout::ncl, Layout::nlc}) {
      EXPECT_EQ(side_by_side_mismatches(conv_params(32, 40, 3, Padding::causal(), stride, 20),
                                        layout, {1, 300, 7, 450, 0, 33, 500, 90, 19, 600, 400}, 13),
                0)
          << "stride " << stride << " " << to_string(layout);
    }
  }
}

TEST(StreamLatency, CausalHasNoDelay) {
  const Conv1d layer(conv_params(3, 4, 5, Padding::causal(), 1, 3));
  Stream stream(layer, options_for(2));
  std::mt19937_64 rng(1);
  for (int64_t chunk : {1, 0, 1, 7, 2, 100}) {
    const Tensor out = stream.push(make_input(DType::f32, 2, 3, chunk, Layout::ncl, rng, false));
    EXPECT_EQ(out.shape(), (std::vector<int64_t>{2, 4, chunk}));
    EXPECT_EQ(stream.samples_emitted(), stream.samples_pushed());
  }
  EXPECT_EQ(stream.flush_length(), 0);
  EXPECT_EQ(stream.flush().shape(), (std::vector<int64_t>{2, 4, 0}));
}

TEST(StreamLatency, SameLagsByTheRightPadding) {
  const Conv1d layer(conv_params(2, 2, 4, Padding::same(), 1, 2));  // left 3, right 3
  Stream stream(layer, options_for(1));
  EXPECT_EQ(stream.pad_right(), 3);
  std::mt19937_64 rng(2);
  for (int64_t i = 1; i <= 10; ++i) {
    stream.push(make_input(DType::f32, 1, 2, 1, Layout::ncl, rng, false));
    EXPECT_EQ(stream.samples_emitted(), std::max<int64_t>(i - 3, 0));
  }
  EXPECT_EQ(stream.flush().shape(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(StreamLatency, StridePhaseAcrossSingleSamples) {
  // Output j needs padded positions up to 3j+3: samples up to 3j+1.
  const Conv1d layer(conv_params(1, 1, 4, Padding::asymmetric(2, 0), 3));
  Stream stream(layer, options_for(1));
  std::mt19937_64 rng(3);
  std::vector<int64_t> emitted;
  for (int i = 0; i < 10; ++i) {
    stream.push(make_input(DType::f32, 1, 1, 1, Layout::ncl, rng, false));
    emitted.push_back(stream.samples_emitted());
  }
  EXPECT_EQ(emitted, (std::vector<int64_t>{0, 1, 1, 1, 2, 2, 2, 3, 3, 3}));
}

TEST(StreamLatency, ReflectWaitsForTheSamplesItMirrors) {
  ConvParams p = conv_params(1, 1, 1, Padding::asymmetric(4, 0));
  p.padding_mode = PaddingMode::reflect;
  const Conv1d layer(p);
  Stream stream(layer, options_for(1));
  std::mt19937_64 rng(4);
  std::vector<int64_t> emitted;
  for (int i = 0; i < 6; ++i) {
    stream.push(make_input(DType::f32, 1, 1, 1, Layout::ncl, rng, false));
    emitted.push_back(stream.samples_emitted());
  }
  // Nothing until x[4] arrives, then the 4 mirrored outputs and x[0..4].
  EXPECT_EQ(emitted, (std::vector<int64_t>{0, 0, 0, 0, 9, 10}));
}

// A tensor-level offline vs stream comparison used by the state tests.
struct Fixture {
  Layer layer;
  Tensor input;
  Tensor expected;
  int64_t batch;
  Layout layout;
  int64_t length;

  Fixture(Layer l, int64_t batch_, Layout layout_, int64_t length_, uint64_t seed)
      : layer(std::move(l)), batch(batch_), layout(layout_), length(length_) {
    std::mt19937_64 rng(seed);
    input = make_input(layer.dtype(), batch, layer.in_channels(), length, layout, rng, false);
    expected = layer.forward(input, layout);
  }
  int64_t out_length() const {
    return layout == Layout::ncl ? expected.shape()[2] : expected.shape()[1];
  }
  TensorRef<const float> chunk(int64_t start, int64_t size) {
    return slice(
        TensorRef<const float>(view<float>(input, batch, layer.in_channels(), length, layout)),
        start, size);
  }
};

// Pushes input[from, to) into `stream`, writing outputs to `out` at `produced`.
void push_range(Stream& stream, Fixture& f, Tensor& out, int64_t from, int64_t to, int64_t step,
                int64_t& produced) {
  auto y = view<float>(out, f.batch, f.layer.out_channels(), f.out_length(), f.layout);
  for (int64_t start = from; start < to; start += step) {
    const int64_t size = std::min(step, to - start);
    produced += stream.push(f.chunk(start, size), slice(y, produced, f.out_length() - produced));
  }
}

int64_t flush_into(Stream& stream, Fixture& f, Tensor& out, int64_t produced) {
  auto y = view<float>(out, f.batch, f.layer.out_channels(), f.out_length(), f.layout);
  return produced + stream.flush(slice(y, produced, f.out_length() - produced));
}

Fixture same_reflect_fixture(Layout layout = Layout::ncl) {
  ConvParams p = conv_params(3, 5, 5, Padding::same(), 1, 2);
  p.padding_mode = PaddingMode::reflect;
  return Fixture(make_conv(p, DType::f32, "reference"), 2, layout, 97, 11);
}

TEST(StreamState, SaveAndRestoreMidStream) {
  Fixture f = same_reflect_fixture();
  Stream first(*f.layer.conv, options_for(2, Layout::ncl, "reference"));
  Tensor out(DType::f32, f.expected.shape());
  int64_t produced = 0;
  push_range(first, f, out, 0, 41, 3, produced);
  const std::vector<uint8_t> saved = first.save();
  // Another worker: other layout, block size and algorithm settings.
  StreamOptions other = options_for(2, Layout::nlc, "reference");
  other.block_outputs = 4;
  Stream second(*f.layer.conv, other);
  second.restore(saved);
  EXPECT_EQ(second.samples_pushed(), 41);
  EXPECT_EQ(second.samples_emitted(), first.samples_emitted());
  push_range(second, f, out, 41, 97, 7, produced);
  produced = flush_into(second, f, out, produced);
  EXPECT_EQ(produced, f.out_length());
  EXPECT_EQ(count_different(out, f.expected), 0);

  // Rolling the first stream back and finishing it gives the same result.
  Tensor again(DType::f32, f.expected.shape());
  int64_t discarded = 0;
  push_range(first, f, again, 41, 60, 5, discarded);
  first.restore(saved);
  produced = first.samples_emitted();
  std::copy(out.data<float>(), out.data<float>() + out.numel(), again.data<float>());
  push_range(first, f, again, 41, 97, 97, produced);
  produced = flush_into(first, f, again, produced);
  EXPECT_EQ(count_different(again, f.expected), 0);
}

TEST(StreamState, SaveAndRestoreSeparableAndAtEveryPoint) {
  SeparableParams p;
  p.in_channels = 2;
  p.out_channels = 3;
  p.kernel_size = 3;
  p.stride = 2;
  p.padding = Padding::asymmetric(1, 4);
  p.depth_multiplier = 2;
  p.padding_mode = PaddingMode::replicate;
  Fixture f(make_separable(p, DType::f32, "reference"), 1, Layout::ncl, 40, 5);
  for (int64_t cut = 0; cut <= 40; cut += 3) {
    Stream a(*f.layer.separable, options_for(1, Layout::ncl, "reference"));
    Tensor out(DType::f32, f.expected.shape());
    int64_t produced = 0;
    push_range(a, f, out, 0, cut, 2, produced);
    Stream b(*f.layer.separable, options_for(1, Layout::ncl, "reference"));
    b.restore(a.save());
    push_range(b, f, out, cut, 40, 5, produced);
    produced = flush_into(b, f, out, produced);
    EXPECT_EQ(count_different(out, f.expected), 0) << "cut " << cut;
  }
}

TEST(StreamState, ResetStartsANewStream) {
  Fixture f = same_reflect_fixture(Layout::nlc);
  Stream stream(*f.layer.conv, options_for(2, Layout::nlc, "reference"));
  Tensor out(DType::f32, f.expected.shape());
  int64_t produced = 0;
  push_range(stream, f, out, 50, 90, 9, produced);  // some other stream
  stream.reset();
  EXPECT_EQ(stream.samples_pushed(), 0);
  EXPECT_EQ(stream.samples_emitted(), 0);
  produced = 0;
  push_range(stream, f, out, 0, 97, 10, produced);
  produced = flush_into(stream, f, out, produced);
  EXPECT_EQ(count_different(out, f.expected), 0);
  // reset after flush allows a new stream too.
  stream.reset();
  produced = 0;
  push_range(stream, f, out, 0, 97, 1, produced);
  flush_into(stream, f, out, produced);
  EXPECT_EQ(count_different(out, f.expected), 0);
}

TEST(StreamTensorApi, UnbatchedAndBatchedChunks) {
  const Conv1d layer(conv_params(3, 2, 3, Padding::symmetric(1)), DType::f64, 9);
  std::mt19937_64 rng(6);
  const Tensor input = make_input(DType::f64, 1, 3, 30, Layout::nlc, rng, false);
  const Tensor unbatched = Tensor::from_values<double>(
      {30, 3}, std::vector<double>(input.data<double>(), input.data<double>() + 90));
  const Tensor expected = layer.forward(unbatched, Layout::nlc);
  Stream stream(layer, options_for(1, Layout::nlc));
  std::vector<double> values;
  for (int64_t start = 0; start < 30; start += 4) {
    const int64_t size = std::min<int64_t>(4, 30 - start);
    const Tensor chunk = Tensor::from_values<double>(
        {size, 3}, std::vector<double>(input.data<double>() + start * 3,
                                       input.data<double>() + (start + size) * 3));
    const Tensor out = stream.push(chunk);
    ASSERT_EQ(out.rank(), 2);
    values.insert(values.end(), out.data<double>(), out.data<double>() + out.numel());
  }
  const Tensor tail = stream.flush();
  ASSERT_EQ(tail.rank(), 2);
  values.insert(values.end(), tail.data<double>(), tail.data<double>() + tail.numel());
  ASSERT_EQ(static_cast<int64_t>(values.size()), expected.numel());
  for (int64_t i = 0; i < expected.numel(); ++i) {
    EXPECT_NEAR(values[static_cast<size_t>(i)], expected.value(i), 1e-12);
  }
}

TEST(StreamTensorApi, NonContiguousChunkViews) {
  // Chunks taken from every other element of a wider buffer.
  const Conv1d layer(conv_params(2, 3, 3, Padding::causal(), 2, 2), DType::f32, 3,
                     PlanOptions{"reference", 1});
  std::mt19937_64 rng(8);
  const Tensor input = make_input(DType::f32, 2, 2, 50, Layout::ncl, rng, false);
  const Tensor expected = layer.forward(input, Layout::ncl);
  std::vector<float> wide(static_cast<size_t>(2 * 2 * 50 * 2));
  for (int64_t i = 0; i < input.numel(); ++i)
    wide[static_cast<size_t>(2 * i)] = input.data<float>()[i];
  TensorRef<const float> x{wide.data(), 2, 2, 50, 200, 100, 2};
  Stream stream(layer, options_for(2, Layout::nlc, "reference"));
  std::vector<float> out(static_cast<size_t>(expected.numel()));
  const auto y = TensorRef<float>::contiguous(out.data(), 2, 3, 25, Layout::ncl);
  int64_t produced = 0;
  for (int64_t start = 0; start < 50; start += 6) {
    produced += stream.push(slice(x, start, std::min<int64_t>(6, 50 - start)),
                            slice(y, produced, 25 - produced));
  }
  produced += stream.flush(slice(y, produced, 25 - produced));
  EXPECT_EQ(produced, 25);
  for (int64_t i = 0; i < expected.numel(); ++i) {
    EXPECT_EQ(out[static_cast<size_t>(i)], expected.data<float>()[i]) << i;
  }
}

TEST(StreamAllocation, PushAndFlushDoNotAllocate) {
  for (const char* algorithm : {"auto", "reference"}) {
    SeparableParams sp;
    sp.in_channels = 8;
    sp.out_channels = 16;
    sp.kernel_size = 4;
    sp.padding = Padding::same();
    sp.padding_mode = PaddingMode::reflect;
    Layer layers[] = {
        make_conv(conv_params(16, 32, 2, Padding::causal(), 1, 64), DType::f32, algorithm),
        make_conv(conv_params(8, 8, 4, Padding::symmetric(3), 2), DType::f32, algorithm),
        make_separable(sp, DType::f32, algorithm)};
    for (Layer& layer : layers) {
      SCOPED_TRACE(layer.name + " " + algorithm);
      StreamOptions options = options_for(2, Layout::ncl, algorithm);
      options.block_outputs = 32;
      Stream stream = layer.stream(options);
      std::mt19937_64 rng(1);
      Tensor input = make_input(DType::f32, 2, layer.in_channels(), 1000, Layout::ncl, rng, false);
      const auto x = view<float>(input, 2, layer.in_channels(), 1000, Layout::ncl);
      std::vector<float> out(static_cast<size_t>(2 * layer.out_channels() * 1000));
      const auto y = TensorRef<float>::contiguous(out.data(), 2, layer.out_channels(), 1000);
      const int64_t before = g_allocations.load();
      int64_t consumed = 0;
      for (int64_t size : {1, 1, 16, 160, 5, 300, 1, 0, 200}) {
        stream.push(TensorRef<const float>(slice(x, consumed, size)), y);
        consumed += size;
      }
      stream.flush(y);
      EXPECT_EQ(g_allocations.load() - before, 0);
    }
  }
}

// Bad input: a clear error, and the stream goes on as if it had not happened.
TEST(StreamErrors, BadInputLeavesTheStateUnchanged) {
  Fixture f = same_reflect_fixture();
  Stream stream(*f.layer.conv, options_for(2, Layout::ncl, "reference"));
  Tensor out(DType::f32, f.expected.shape());
  auto y = view<float>(out, 2, 5, f.out_length(), Layout::ncl);
  int64_t produced = 0;
  push_range(stream, f, out, 0, 20, 6, produced);
  const std::vector<uint8_t> before = stream.save();

  std::vector<float> wrong(1000);
  const TensorRef<const float> wrong_channels{wrong.data(), 2, 4, 3, 12, 3, 1};
  EXPECT_NE(error_of([&] { stream.push(wrong_channels, y); }).find("in_channels=3"),
            std::string::npos);
  const TensorRef<const float> wrong_batch{wrong.data(), 3, 3, 3, 9, 3, 1};
  EXPECT_NE(error_of([&] { stream.push(wrong_batch, y); }).find("batch 2"), std::string::npos);
  std::vector<double> doubles(1000);
  std::vector<double> double_out(1000);
  EXPECT_NE(error_of([&] {
              stream.push(TensorRef<const double>{doubles.data(), 2, 3, 3, 9, 3, 1},
                          TensorRef<double>{double_out.data(), 2, 5, 100, 500, 100, 1});
            }).find("float32"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              stream.push(Tensor(DType::f64, {2, 3, 4}));
            }).find("dtype"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              stream.push(Tensor(DType::f32, {2, 4, 4}));
            }).find("channels"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              stream.push(Tensor(DType::f32, {3, 4}));
            }).find("3-D"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { stream.push(f.chunk(20, 30), slice(y, produced, 2)); }).find("room for 2"),
      std::string::npos);
  // An output that shares memory with the chunk, or repeats an element.
  std::vector<float> shared(2 * 5 * 40, 1.0f);
  const TensorRef<const float> chunk_in_shared{shared.data(), 2, 3, 10, 30, 10, 1};
  const TensorRef<float> out_in_shared{shared.data() + 5, 2, 5, 40, 200, 40, 1};
  EXPECT_NE(error_of([&] {
              stream.push(chunk_in_shared, out_in_shared);
            }).find("push: out overlaps the chunk"),
            std::string::npos);
  TensorRef<float> repeated = slice(y, produced, 40);
  repeated.length_stride = 0;
  EXPECT_NE(error_of([&] { stream.push(f.chunk(20, 30), repeated); }).find("length stride 0"),
            std::string::npos);
  EXPECT_EQ(stream.save(), before);

  // Restoring foreign or damaged bytes.
  ConvParams other = conv_params(3, 5, 3, Padding::same(), 1, 2);
  other.padding_mode = PaddingMode::reflect;
  const Conv1d other_shape(other);
  Stream other_stream(other_shape, options_for(2));
  EXPECT_NE(error_of([&] { stream.restore(other_stream.save()); }).find("saved for"),
            std::string::npos);
  const Conv1d other_weights(f.layer.conv->params(), DType::f32, 12345);
  Stream twin(other_weights, options_for(2));
  EXPECT_NE(error_of([&] { stream.restore(twin.save()); }).find("other weights"),
            std::string::npos);
  Stream other_batch(*f.layer.conv, options_for(1));
  EXPECT_NE(error_of([&] { stream.restore(other_batch.save()); }).find("mb1"), std::string::npos);
  for (size_t size = 0; size < before.size(); size += std::max<size_t>(1, size / 7)) {
    const std::span<const uint8_t> truncated(before.data(), size);
    EXPECT_NE(error_of([&] { stream.restore(truncated); }), "(no error)") << size;
  }
  std::vector<uint8_t> longer = before;
  longer.push_back(0);
  EXPECT_NE(error_of([&] { stream.restore(longer); }), "(no error)");
  std::vector<uint8_t> garbage(before.size(), 0x5a);
  EXPECT_NE(error_of([&] { stream.restore(garbage); }).find("not a saved"), std::string::npos);
  std::vector<uint8_t> corrupt = before;
  // The pushed-samples counter follows magic, version, description and fingerprint.
  corrupt[8 + 4 + 4 + stream.description().size() + 8] ^= 1;
  EXPECT_NE(error_of([&] { stream.restore(corrupt); }).find("corrupt"), std::string::npos);
  EXPECT_EQ(stream.save(), before);

  // Everything still works, and gives the offline result.
  push_range(stream, f, out, 20, 97, 11, produced);
  produced = flush_into(stream, f, out, produced);
  EXPECT_EQ(produced, f.out_length());
  EXPECT_EQ(count_different(out, f.expected), 0);

  // After flush: pushing or flushing again is an error until reset().
  const std::vector<uint8_t> ended = stream.save();
  EXPECT_NE(error_of([&] { stream.push(f.chunk(0, 1), y); }).find("after flush"),
            std::string::npos);
  EXPECT_NE(error_of([&] { stream.flush(y); }).find("after flush"), std::string::npos);
  EXPECT_NE(error_of([&] {
              stream.push(Tensor(DType::f32, {2, 3, 1}));
            }).find("after flush"),
            std::string::npos);
  EXPECT_EQ(stream.save(), ended);
}

TEST(StreamErrors, PaddingThatCannotStream) {
  ConvParams p = conv_params(2, 2, 3, Padding::symmetric(1));
  p.padding_mode = PaddingMode::circular;
  EXPECT_NE(error_of([&] { Stream stream{Conv1d(p)}; }).find("circular"), std::string::npos);
  p.padding = Padding::asymmetric(0, 2);
  EXPECT_EQ(error_of([&] { Stream stream{Conv1d(p)}; }), "(no error)");

  // A reflected pad wider than the stream: flush fails, more samples fix it.
  ConvParams r = conv_params(1, 1, 3, Padding::symmetric(3));
  r.padding_mode = PaddingMode::reflect;
  const Conv1d layer(r);
  Stream stream(layer, options_for(1));
  std::mt19937_64 rng(1);
  const Tensor input = make_input(DType::f32, 1, 1, 6, Layout::ncl, rng, false);
  const Tensor first = Tensor::from_values<float>(
      {1, 1, 2}, std::vector<float>(input.data<float>(), input.data<float>() + 2));
  const Tensor rest = Tensor::from_values<float>(
      {1, 1, 4}, std::vector<float>(input.data<float>() + 2, input.data<float>() + 6));
  stream.push(first);
  EXPECT_NE(error_of([&] { stream.flush(); }).find("reflect"), std::string::npos);
  std::vector<float> values;
  for (const Tensor& t : {stream.push(rest), stream.flush()}) {
    values.insert(values.end(), t.data<float>(), t.data<float>() + t.numel());
  }
  const Tensor expected = layer.forward(input);
  ASSERT_EQ(static_cast<int64_t>(values.size()), expected.numel());
  for (int64_t i = 0; i < expected.numel(); ++i) {
    EXPECT_NEAR(values[static_cast<size_t>(i)], expected.value(i), 1e-6);
  }

  StreamOptions bad;
  bad.block_outputs = 0;
  EXPECT_NE(error_of([&] { Stream stream(layer, bad); }).find("block_outputs"), std::string::npos);
}

TEST(StreamErrors, EmptyStreamFlushesNothing) {
  const Conv1d layer(conv_params(2, 2, 3, Padding::symmetric(5)));
  Stream stream(layer, options_for(1));
  EXPECT_EQ(stream.push(Tensor(DType::f32, {1, 2, 0})).shape(), (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(stream.flush().shape(), (std::vector<int64_t>{1, 2, 0}));
}

}  // namespace
}  // namespace conv1d
