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
  return {{"mamba dw C1536 K4", {conv(1536, 1536, 4, 1, 1, 1536)}},
          {"wavenet 64-128 K2 d1", {conv(64, 128, 2, 1, 1, 1)}},
          {"wavenet 64-128 K2 d512", {conv(64, 128, 2, 1, 512, 1)}},
          {"wavenet 10 layers d1..512", wavenet},
          {"encodec 128-256 K4 s2", {conv(128, 256, 4, 2, 1, 1)}}};
}

// The naive way: keep the input the next output needs, and at every push
// concatenate it with the chunk into a new tensor and run the offline
// forward of a 'valid' copy of the layer over it (what a hand-rolled
// PyTorch loop does with torch.cat and conv1d).
class NaiveStream {
 public:
  NaiveStream(const Conv1d& layer, const PlanOptions& options)
      : valid_(valid_params(layer.params()), layer.dtype(), 0, options) {
    valid_.mutable_weight() = layer.weight();
    if (layer.params().bias) valid_.mutable_bias() = layer.bias();
    const ConvParams& p = layer.params();
    span_ = p.dilation * (p.kernel_size - 1) + 1;
    stride_ = p.stride;
    const auto pads = p.padding.resolve(p.kernel_size, p.stride, p.dilation);
    history_ = Tensor(layer.dtype(), {1, p.in_channels, pads[0]});  // the causal zeros
  }

  int64_t push(const Tensor& chunk) {
    const int64_t channels = chunk.shape()[1];
    const int64_t kept = history_.shape()[2];
    const int64_t length = kept + chunk.shape()[2];
    Tensor window(chunk.dtype(), {1, channels, length});
    for (int64_t c = 0; c < channels; ++c) {
      std::copy_n(history_.data<float>() + c * kept, kept, window.data<float>() + c * length);
      std::copy_n(chunk.data<float>() + c * chunk.shape()[2], chunk.shape()[2],
                  window.data<float>() + c * length + kept);
    }
    int64_t outputs = 0;
    if (length >= span_) {
      const Tensor out = valid_.forward(window);
      outputs = out.shape()[2];
    }
    const int64_t consumed = outputs * stride_;
    history_ = Tensor(chunk.dtype(), {1, channels, length - consumed});
    for (int64_t c = 0; c < channels; ++c) {
      std::copy_n(window.data<float>() + c * length + consumed, length - consumed,
                  history_.data<float>() + c * (length - consumed));
    }
    return outputs;
  }

 private:
  static ConvParams valid_params(ConvParams params) {
    params.padding = Padding::valid();
    return params;
  }
  Conv1d valid_;
  Tensor history_;
  int64_t span_ = 1;
  int64_t stride_ = 1;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Seconds per push: pushes repeat until the budget is spent (at least 20).
template <class Push>
double time_pushes(const Push& push, double budget_seconds) {
  for (int i = 0; i < 5; ++i) push();  // warm-up: steady-state history, plans made
  std::vector<double> seconds;
  seconds.reserve(1 << 16);
  const auto start = Clock::now();
  while (seconds.size() < 20 ||
         (std::chrono::duration<double>(Clock::now() - start).count() < budget_seconds &&
          seconds.size() < (1 << 16))) {
    const auto before = Clock::now();
    push();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - before).count());
  }
  return median(std::move(seconds));
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
  const int64_t budget_ms = parse_int(options.budget_ms, "--budget-ms");
  if (budget_ms < 0)
    throw Error(fmt::format("--budget-ms must be non-negative, got {}", budget_ms));
  if (!options.json.empty()) check_output_path(options.json, "--json");
  const double budget_seconds = static_cast<double>(budget_ms) * 1e-3;
  const int64_t chunks[] = {1, 16, 160, 1024};
  const int threads =
      Plan(Problem::make(stream_bench_layers().front().params.front(), 1, 64), plan).threads();

  fmt::print("streaming latency per push, batch 1, float32, causal padding; median of pushes\n");
  fmt::print("{:<27} {:>6} {:<10} {:>8} {:>14} {:>14} {:>8}\n", "layer", "chunk", "algorithm",
             "threads", "stream us", "naive us", "speedup");
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
      Tensor input(DType::f32, {1, channels, chunk});
      for (int64_t i = 0; i < input.numel(); ++i) input.data<float>()[i] = value(rng);

      std::vector<Stream> streams;
      std::vector<Tensor> outputs;
      StreamOptions stream_options;
      stream_options.plan = plan;
      for (const auto& layer : layers) {
        streams.emplace_back(*layer, stream_options);
        outputs.emplace_back(DType::f32, std::vector<int64_t>{1, layer->params().out_channels,
                                                              streams.back().max_output(chunk)});
      }
      const auto x = TensorRef<const float>::contiguous(input.data<float>(), 1, channels, chunk);
      const double stream_seconds = time_pushes(
          [&] {
            for (size_t i = 0; i < streams.size(); ++i) {
              const auto& shape = outputs[i].shape();
              streams[i].push(
                  x, TensorRef<float>::contiguous(outputs[i].data<float>(), 1, shape[1], shape[2]));
            }
          },
          budget_seconds);

      std::vector<std::unique_ptr<NaiveStream>> naive;
      for (const auto& layer : layers) naive.push_back(std::make_unique<NaiveStream>(*layer, plan));
      const double naive_seconds = time_pushes(
          [&] {
            for (const auto& stream : naive) stream->push(input);
          },
          budget_seconds);

      const std::string algorithm(streams.front().algorithm());
      fmt::print("{:<27} {:>6} {:<10} {:>8} {:>14.2f} {:>14.2f} {:>7.1f}x\n", bench.name, chunk,
                 algorithm, threads, stream_seconds * 1e6, naive_seconds * 1e6,
                 naive_seconds / stream_seconds);
      std::fflush(stdout);
      rows.push_back({{"name", bench.name},
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
