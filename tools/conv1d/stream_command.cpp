#include "stream_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <conv1d/layer.hpp>
#include <conv1d/stream.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "common.hpp"

namespace conv1d::cli {

namespace {

// --chunk: a fixed length N, or random lengths drawn uniformly from
// [1, 2N] (N = 64 when not given), so the mean chunk is about N samples.
struct ChunkSchedule {
  bool random = false;
  int64_t size = 64;
};

ChunkSchedule parse_chunk(const std::string& text) {
  ChunkSchedule schedule;
  std::string_view size = text;
  if (size.substr(0, 6) == "random") {
    schedule.random = true;
    size.remove_prefix(6);
    if (size.empty()) return schedule;
    if (size.front() != ':') {
      throw Error(fmt::format("--chunk must be N, random or random:N, got '{}'", text));
    }
    size.remove_prefix(1);
  }
  schedule.size = parse_int(size, "--chunk");
  if (schedule.size <= 0) {
    throw Error(fmt::format("--chunk must be a positive number of samples, got '{}'", text));
  }
  return schedule;
}

template <class T>
TensorRef<T> slice(TensorRef<T> ref, int64_t start, int64_t length) {
  ref.data += start * ref.length_stride;
  ref.length = length;
  return ref;
}

template <class T>
TensorRef<T> activation_view(T* data, const std::vector<int64_t>& shape, Layout layout) {
  const int64_t batch = shape.size() == 3 ? shape[0] : 1;
  const size_t first = shape.size() - 2;
  const int64_t channels = layout == Layout::ncl ? shape[first] : shape[first + 1];
  const int64_t length = layout == Layout::ncl ? shape[first + 1] : shape[first];
  return TensorRef<T>::contiguous(data, batch, channels, length, layout);
}

}  // namespace

CLI::App* add_stream_command(CLI::App& app, StreamCommandOptions& options,
                             void (*add_conv_flags)(CLI::App&, ConvFlags&)) {
  CLI::App* command = app.add_subcommand(
      "stream",
      "Run a convolution through the streaming object, --chunk samples at a time; the output "
      "equals apply's");
  ApplyOptions& apply = options.apply;
  command->add_option("--input", apply.input, "Input (N, C, L) or (C, L)")
      ->required()
      ->type_name("X.npy");
  command->add_option("--weight", apply.weight, "Weight (C_out, C_in/groups, K)")
      ->required()
      ->type_name("W.npy");
  command->add_option("--bias", apply.bias, "Bias (C_out)")->type_name("B.npy");
  command->add_option("--output", apply.output, "Output file (the concatenated outputs)")
      ->required()
      ->type_name("Y.npy");
  CLI::Option* pointwise_weight =
      command
          ->add_option("--pointwise-weight", apply.pointwise_weight,
                       "Separable: pointwise weight (C_out, C_mid, 1); --weight is then the "
                       "depthwise weight (C_mid, 1, K)")
          ->type_name("PW.npy");
  command->add_option("--pointwise-bias", apply.pointwise_bias, "Separable: pointwise bias")
      ->type_name("PB.npy")
      ->needs(pointwise_weight);
  command
      ->add_option("--chunk", options.chunk,
                   "Samples per push: N, or random (random:N) for lengths drawn uniformly from "
                   "1..2N (N = 64 by default) with --seed")
      ->required()
      ->type_name("N|random[:N]");
  command->add_option("--seed", options.seed, "Seed of --chunk random (default 0)")->type_name("S");
  command
      ->add_option("--block", options.block,
                   "Outputs the stream computes per plan execution (default 128)")
      ->type_name("B");
  add_conv_flags(*command, apply.conv);
  return command;
}

int run_stream(const StreamCommandOptions& options) {
  const ChunkSchedule schedule = parse_chunk(options.chunk);
  const auto seed = static_cast<uint64_t>(parse_int(options.seed, "--seed"));
  StreamOptions stream_options;
  stream_options.block_outputs = parse_int(options.block, "--block");
  if (stream_options.block_outputs <= 0) {
    throw Error(fmt::format("--block must be positive, got {}", stream_options.block_outputs));
  }
  const ApplyLayer layer = load_apply_layer(options.apply);
  const Tensor& input = layer.input;
  stream_options.batch = input.shape().size() == 3 ? input.shape()[0] : 1;
  stream_options.layout = layer.layout;
  stream_options.plan = layer.plan;
  Stream stream =
      layer.conv ? Stream(*layer.conv, stream_options) : Stream(*layer.separable, stream_options);

  Tensor output(input.dtype(), layer.output_shape);
  std::mt19937_64 rng(seed);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const TensorRef<const T> x = activation_view(input.data<T>(), input.shape(), layer.layout);
    const TensorRef<T> y = activation_view(output.data<T>(), output.shape(), layer.layout);
    int64_t produced = 0;
    for (int64_t consumed = 0; consumed < x.length;) {
      const int64_t wanted =
          schedule.random
              ? 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * schedule.size))
              : schedule.size;
      const int64_t size = std::min(wanted, x.length - consumed);
      produced += stream.push(slice(x, consumed, size), slice(y, produced, y.length - produced));
      consumed += size;
    }
    produced += stream.flush(slice(y, produced, y.length - produced));
    if (produced != y.length) {
      throw Error(fmt::format("internal error: the stream produced {} samples, apply {}", produced,
                              y.length));
    }
  };
  if (input.dtype() == DType::f32) {
    run(float{});
  } else {
    run(double{});
  }
  write_outputs({{options.apply.output, &output}});
  return 0;
}

namespace {

using Clock = std::chrono::steady_clock;

// One benchmarked layer (or a stack of layers fed the same chunks).
struct BenchLayer {
  std::string name;
  Layout layout = Layout::ncl;
  std::vector<ConvParams> params;
};

std::vector<BenchLayer> stream_bench_layers() {
  auto conv = [](int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                 int64_t groups) {
    ConvParams p;
    p.in_channels = in;
    p.out_channels = out;
    p.kernel_size = kernel;
    p.stride = stride;
    p.dilation = dilation;
    p.groups = groups;
    p.padding = Padding::causal();
    return p;
  };
  std::vector<ConvParams> wavenet;
  for (int64_t dilation = 1; dilation <= 512; dilation *= 2) {
    wavenet.push_back(conv(64, 128, 2, 1, dilation, 1));
  }
  const ConvParams mamba = conv(1536, 1536, 4, 1, 1, 1536);
  return {{"mamba dw C1536 K4", Layout::ncl, {mamba}},
          {"mamba dw C1536 K4", Layout::nlc, {mamba}},
          {"wavenet 64-128 K2 d1", Layout::ncl, {conv(64, 128, 2, 1, 1, 1)}},
          {"wavenet 64-128 K2 d512", Layout::ncl, {conv(64, 128, 2, 1, 512, 1)}},
          {"wavenet 10 layers d1..512", Layout::ncl, wavenet},
          {"encodec 128-256 K4 s2", Layout::ncl, {conv(128, 256, 4, 2, 1, 1)}}};
}

// The naive way: keep the input the next output needs, and at every push
// concatenate it with the chunk into a new tensor and run the offline
// forward of a 'valid' copy of the layer over it (what a hand-rolled
// PyTorch loop does with torch.cat and conv1d).
class NaiveStream {
 public:
  NaiveStream(const Conv1d& layer, Layout layout, const PlanOptions& options)
      : valid_(valid_params(layer.params()), layer.dtype(), 0, options), layout_(layout) {
    valid_.mutable_weight() = layer.weight();
    if (layer.params().bias) valid_.mutable_bias() = layer.bias();
    const ConvParams& p = layer.params();
    channels_ = p.in_channels;
    span_ = p.dilation * (p.kernel_size - 1) + 1;
    stride_ = p.stride;
    const auto pads = p.padding.resolve(p.kernel_size, p.stride, p.dilation);
    history_ = Tensor(layer.dtype(), shape(pads[0]));  // the causal zeros
  }

  // chunk: (1, C, n) or (1, n, C) in the layout.
  int64_t push(const Tensor& chunk) {
    const int64_t kept = length_of(history_);
    const int64_t length = kept + length_of(chunk);
    Tensor window(chunk.dtype(), shape(length));
    copy(history_, 0, kept, window, 0);
    copy(chunk, 0, length_of(chunk), window, kept);
    int64_t outputs = 0;
    if (length >= span_) outputs = length_of(valid_.forward(window, layout_));
    const int64_t consumed = outputs * stride_;
    history_ = Tensor(chunk.dtype(), shape(length - consumed));
    copy(window, consumed, length - consumed, history_, 0);
    return outputs;
  }

 private:
  static ConvParams valid_params(ConvParams params) {
    params.padding = Padding::valid();
    return params;
  }
  std::vector<int64_t> shape(int64_t length) const {
    return layout_ == Layout::ncl ? std::vector<int64_t>{1, channels_, length}
                                  : std::vector<int64_t>{1, length, channels_};
  }
  int64_t length_of(const Tensor& tensor) const {
    return tensor.shape()[layout_ == Layout::ncl ? 2 : 1];
  }
  // to[:, :, at + i] = from[:, :, start + i] for i < count.
  void copy(const Tensor& from, int64_t start, int64_t count, Tensor& to, int64_t at) const {
    const float* src = from.data<float>();
    float* dst = to.data<float>();
    if (layout_ == Layout::nlc) {
      std::copy_n(src + start * channels_, count * channels_, dst + at * channels_);
      return;
    }
    const int64_t from_length = length_of(from), to_length = length_of(to);
    for (int64_t c = 0; c < channels_; ++c) {
      std::copy_n(src + c * from_length + start, count, dst + c * to_length + at);
    }
  }

  Conv1d valid_;
  Layout layout_;
  Tensor history_;
  int64_t channels_ = 1;
  int64_t span_ = 1;
  int64_t stride_ = 1;
};

// The mean without the slowest 1%: pushes that produce outputs and pushes
// that only store samples (chunk < stride) both count, preemptions do not.
double trimmed_mean(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t kept = values.size() - values.size() / 100;
  double sum = 0;
  for (size_t i = 0; i < kept; ++i) sum += values[i];
  return sum / static_cast<double>(kept);
}

// Seconds per push (trimmed mean) of two ways of streaming, pushing alternately so
// that both see the same machine; pushes repeat until the budget is spent
// (at least 20 each).
template <class First, class Second>
std::pair<double, double> time_alternately(const First& first, const Second& second,
                                           double budget_seconds) {
  for (int i = 0; i < 5; ++i) {  // warm-up: steady-state history, plans made
    first();
    second();
  }
  std::vector<double> first_seconds, second_seconds;
  first_seconds.reserve(1 << 15);
  second_seconds.reserve(1 << 15);
  const auto start = Clock::now();
  while (first_seconds.size() < 20 ||
         (std::chrono::duration<double>(Clock::now() - start).count() < budget_seconds &&
          first_seconds.size() < (1 << 15))) {
    auto before = Clock::now();
    first();
    first_seconds.push_back(std::chrono::duration<double>(Clock::now() - before).count());
    before = Clock::now();
    second();
    second_seconds.push_back(std::chrono::duration<double>(Clock::now() - before).count());
  }
  return {trimmed_mean(std::move(first_seconds)), trimmed_mean(std::move(second_seconds))};
}

}  // namespace

int run_stream_bench(const BenchOptions& options) {
  if (!options.suite.empty() || options.compare) {
    throw Error("bench --stream times its own layers: it takes no --suite or --compare");
  }
  if (parse_dtype(options.dtype) != DType::f32) {
    throw Error("bench --stream runs float32 only");
  }
  if (!options.isa.empty()) set_max_isa(options.isa);
  PlanOptions plan;
  plan.algorithm = options.algorithm;
  plan.threads = parse_threads(options.threads);
  plan.tune = options.tune;
  plan.tune_cache = options.tune_cache;
  const int64_t budget_ms = parse_int(options.budget_ms, "--budget-ms");
  if (budget_ms < 0) {
    throw Error(fmt::format("--budget-ms must be non-negative, got {}", budget_ms));
  }
  if (!options.json.empty()) check_output_path(options.json, "--json");
  const double budget_seconds = static_cast<double>(budget_ms) * 1e-3;
  const int64_t chunks[] = {1, 16, 160, 1024};

  fmt::print(
      "per-push latency, batch 1, float32, causal padding: mean over pushes without the slowest "
      "1%, the two ways alternating\n");
  fmt::print("{:<27} {:<6} {:>6} {:<10} {:>7} {:>12} {:>12} {:>8}\n", "layer", "layout", "chunk",
             "algorithm", "threads", "stream us", "naive us", "speedup");
  nlohmann::json rows = nlohmann::json::array();
  for (const BenchLayer& bench : stream_bench_layers()) {
    std::vector<std::unique_ptr<Conv1d>> layers;
    for (const ConvParams& params : bench.params) {
      layers.push_back(std::make_unique<Conv1d>(params, DType::f32, 1, plan));
    }
    const int64_t channels = bench.params.front().in_channels;
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<float> value(-1, 1);
    for (int64_t chunk : chunks) {
      Tensor input(DType::f32, bench.layout == Layout::ncl
                                   ? std::vector<int64_t>{1, channels, chunk}
                                   : std::vector<int64_t>{1, chunk, channels});
      for (int64_t i = 0; i < input.numel(); ++i) input.data<float>()[i] = value(rng);
      const auto x =
          TensorRef<const float>::contiguous(input.data<float>(), 1, channels, chunk, bench.layout);

      StreamOptions stream_options;
      stream_options.layout = bench.layout;
      stream_options.plan = plan;
      std::vector<Stream> streams;
      std::vector<std::vector<float>> outputs;
      for (const auto& layer : layers) {
        streams.emplace_back(*layer, stream_options);
        outputs.emplace_back(
            static_cast<size_t>(layer->params().out_channels * streams.back().max_output(chunk)));
      }
      std::vector<std::unique_ptr<NaiveStream>> naive;
      for (const auto& layer : layers) {
        naive.push_back(std::make_unique<NaiveStream>(*layer, bench.layout, plan));
      }
      const auto [stream_seconds, naive_seconds] = time_alternately(
          [&] {
            for (size_t i = 0; i < streams.size(); ++i) {
              streams[i].push(
                  x, TensorRef<float>::contiguous(outputs[i].data(), 1, streams[i].out_channels(),
                                                  streams[i].max_output(chunk), bench.layout));
            }
          },
          [&] {
            for (const auto& stream : naive) stream->push(input);
          },
          budget_seconds);

      const std::string algorithm(streams.front().algorithm());
      const int threads = layers.front()->plan_for(1, chunk + 64, bench.layout).threads();
      fmt::print("{:<27} {:<6} {:>6} {:<10} {:>7} {:>12.1f} {:>12.1f} {:>7.2f}x\n", bench.name,
                 to_string(bench.layout), chunk, algorithm, threads, stream_seconds * 1e6,
                 naive_seconds * 1e6, naive_seconds / stream_seconds);
      std::fflush(stdout);
      rows.push_back({{"name", bench.name},
                      {"layout", to_string(bench.layout)},
                      {"chunk", chunk},
                      {"algorithm", algorithm},
                      {"threads", threads},
                      {"stream_us", stream_seconds * 1e6},
                      {"naive_us", naive_seconds * 1e6}});
    }
  }
  if (!options.json.empty()) {
    std::ofstream file(options.json);
    file << rows.dump(2) << "\n";
    if (!file) throw Error(fmt::format("cannot write --json '{}'", options.json));
  }
  return 0;
}

}  // namespace conv1d::cli
