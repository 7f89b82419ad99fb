// A WaveNet-style stack run in real time: an input projection (1 -> C),
// ten causal dilated layers (K = 2, dilation 1, 2, 4, ..., 512) with a ReLU
// and a residual connection, and an output projection (C -> 1), with random
// seeded weights. The audio goes through it chunk by chunk, as it would
// arrive from a sound card; the program prints the real-time factor and,
// with --check, compares the streamed output with the offline forward of the
// whole file.
//
//   wavenet_stream [input.wav] [--chunk N] [--channels C] [--threads T]
//                  [--output out.wav] [--check]
//
// Without an input file it writes a 10-second 16 kHz test signal (a chirp
// with noise) to the temporary folder and processes that.
#include <sndfile.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <conv1d/layer.hpp>
#include <conv1d/stream.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using conv1d::Conv1d;
using conv1d::ConvParams;
using conv1d::DType;
using conv1d::Padding;
using conv1d::Stream;
using conv1d::Tensor;
using conv1d::TensorRef;

struct Options {
  std::string input;
  std::string output;
  int64_t chunk = 160;  // 10 ms at 16 kHz
  int64_t channels = 32;
  int threads = 1;  // one core per stream keeps the latency predictable
  bool check = false;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--chunk") {
      options.chunk = std::stoll(value());
    } else if (arg == "--channels") {
      options.channels = std::stoll(value());
    } else if (arg == "--threads") {
      options.threads = std::stoi(value());
    } else if (arg == "--output") {
      options.output = value();
    } else if (arg == "--check") {
      options.check = true;
    } else if (!arg.empty() && arg[0] != '-' && options.input.empty()) {
      options.input = arg;
    } else {
      throw std::runtime_error("unknown argument '" + arg + "'");
    }
  }
  if (options.chunk <= 0 || options.channels <= 0) {
    throw std::runtime_error("--chunk and --channels must be positive");
  }
  return options;
}

std::string write_test_signal() {
  const std::string path =
      (std::filesystem::temp_directory_path() / "wavenet_stream_test.wav").string();
  const int rate = 16000;
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr)
    throw std::runtime_error("cannot write " + path + ": " + sf_strerror(nullptr));
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  std::vector<float> samples(10 * rate);
  for (size_t i = 0; i < samples.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    samples[i] = 0.5f * static_cast<float>(std::sin(2 * std::numbers::pi * (100 + 200 * t) * t)) +
                 noise(rng);
  }
  sf_writef_float(file, samples.data(), static_cast<sf_count_t>(samples.size()));
  sf_close(file);
  return path;
}

ConvParams conv(int64_t in, int64_t out, int64_t kernel, int64_t dilation) {
  ConvParams params;
  params.in_channels = in;
  params.out_channels = out;
  params.kernel_size = kernel;
  params.dilation = dilation;
  params.padding = Padding::causal();
  return params;
}

// The network: layers[0] projects in, layers[1..10] are dilated, the last
// projects out.
std::vector<std::unique_ptr<Conv1d>> make_network(int64_t channels, int threads) {
  conv1d::PlanOptions plan;
  plan.threads = threads;
  std::vector<std::unique_ptr<Conv1d>> layers;
  uint64_t seed = 1;
  layers.push_back(std::make_unique<Conv1d>(conv(1, channels, 1, 1), DType::f32, seed++, plan));
  for (int64_t dilation = 1; dilation <= 512; dilation *= 2) {
    layers.push_back(
        std::make_unique<Conv1d>(conv(channels, channels, 2, dilation), DType::f32, seed++, plan));
  }
  layers.push_back(std::make_unique<Conv1d>(conv(channels, 1, 1, 1), DType::f32, seed++, plan));
  return layers;
}

// h += relu(t), elementwise.
void add_relu(float* h, const float* t, int64_t count) {
  for (int64_t i = 0; i < count; ++i) h[i] += std::max(t[i], 0.0f);
}

// The same network on the whole signal at once.
std::vector<float> offline(const std::vector<std::unique_ptr<Conv1d>>& layers,
                           const std::vector<float>& signal) {
  const auto length = static_cast<int64_t>(signal.size());
  Tensor h = layers.front()->forward(Tensor::from_values<float>({1, 1, length}, signal));
  for (size_t i = 1; i + 1 < layers.size(); ++i) {
    const Tensor t = layers[i]->forward(h);
    add_relu(h.data<float>(), t.data<float>(), t.numel());
  }
  const Tensor y = layers.back()->forward(h);
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

int run(const Options& options) {
  const std::string input = options.input.empty() ? write_test_signal() : options.input;
  SF_INFO info{};
  SNDFILE* file = sf_open(input.c_str(), SFM_READ, &info);
  if (file == nullptr) {
    throw std::runtime_error("cannot read " + input + ": " + sf_strerror(nullptr));
  }
  const int64_t chunk = options.chunk;
  const int64_t channels = options.channels;
  std::printf(
      "%s: %lld frames, %d Hz, %d channel(s); chunks of %lld samples, %lld channels, "
      "%d thread(s)\n",
      input.c_str(), static_cast<long long>(info.frames), info.samplerate, info.channels,
      static_cast<long long>(chunk), static_cast<long long>(channels), options.threads);

  const auto layers = make_network(channels, options.threads);
  conv1d::StreamOptions stream_options;
  stream_options.plan.threads = options.threads;
  std::vector<Stream> streams;
  for (const auto& layer : layers) streams.emplace_back(*layer, stream_options);

  // Every buffer is allocated here; the loop below allocates nothing.
  std::vector<float> frames(static_cast<size_t>(chunk * info.channels));
  std::vector<float> x(static_cast<size_t>(chunk));
  std::vector<float> h(static_cast<size_t>(channels * chunk));
  std::vector<float> t(static_cast<size_t>(channels * chunk));
  std::vector<float> y(static_cast<size_t>(chunk));
  std::vector<float> signal, streamed;
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(info.frames / chunk + 1));

  SNDFILE* out = nullptr;
  if (!options.output.empty()) {
    SF_INFO out_info{};
    out_info.samplerate = info.samplerate;
    out_info.channels = 1;
    out_info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    out = sf_open(options.output.c_str(), SFM_WRITE, &out_info);
    if (out == nullptr) throw std::runtime_error("cannot write " + options.output);
  }

  double seconds = 0;
  for (;;) {
    const sf_count_t read = sf_readf_float(file, frames.data(), chunk);
    if (read <= 0) break;
    const int64_t n = read;
    for (int64_t i = 0; i < n; ++i) {
      float sum = 0;
      for (int c = 0; c < info.channels; ++c)
        sum += frames[static_cast<size_t>(i * info.channels + c)];
      x[static_cast<size_t>(i)] = sum / static_cast<float>(info.channels);
    }

    const auto start = std::chrono::steady_clock::now();
    // Causal layers with stride 1: every push returns exactly n samples.
    // The views have length n and row pitch `chunk` (the buffers' width).
    auto view = [&](float* data, int64_t rows) {
      return TensorRef<float>{data, 1, rows, n, rows * chunk, chunk, 1};
    };
    streams.front().push(TensorRef<const float>(view(x.data(), 1)), view(h.data(), channels));
    for (size_t i = 1; i + 1 < streams.size(); ++i) {
      streams[i].push(TensorRef<const float>(view(h.data(), channels)), view(t.data(), channels));
      for (int64_t c = 0; c < channels; ++c) add_relu(&h[c * chunk], &t[c * chunk], n);
    }
    streams.back().push(TensorRef<const float>(view(h.data(), channels)), view(y.data(), 1));
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds += elapsed;
    latencies.push_back(elapsed);

    if (out != nullptr) sf_writef_float(out, y.data(), n);
    if (options.check) {
      signal.insert(signal.end(), x.begin(), x.begin() + n);
      streamed.insert(streamed.end(), y.begin(), y.begin() + n);
    }
  }
  sf_close(file);
  if (out != nullptr) sf_close(out);

  const double audio_seconds = static_cast<double>(info.frames) / info.samplerate;
  std::sort(latencies.begin(), latencies.end());
  std::printf(
      "processed %.2f s of audio in %.3f s: real-time factor %.4f (%.0fx faster than "
      "real time)\n",
      audio_seconds, seconds, seconds / audio_seconds, audio_seconds / seconds);
  if (!latencies.empty()) {
    std::printf("per chunk (%.1f ms of audio): median %.1f us, max %.1f us\n",
                1e3 * static_cast<double>(chunk) / info.samplerate,
                1e6 * latencies[latencies.size() / 2], 1e6 * latencies.back());
  }
  if (options.check) {
    const std::vector<float> expected = offline(layers, signal);
    double difference = 0, scale = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      difference = std::max(difference, std::abs(double(expected[i]) - streamed[i]));
      scale = std::max(scale, std::abs(double(expected[i])));
    }
    std::printf("streamed vs offline forward: max |difference| %.3g (max |output| %.3g)\n",
                difference, scale);
    if (difference > 1e-5 * std::max(scale, 1.0)) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "wavenet_stream: %s\n", error.what());
    return 2;
  }
}
