// Times oneDNN's convolution on the same problems as `conv1d bench --compare`.
//
// A line protocol on stdin/stdout so the benchmark can interleave rounds of
// conv1d, PyTorch and oneDNN in one run:
//   out: ready   (once, at start)
//   in:  <problem descriptor> <threads> <repetitions>
//   out: <median milliseconds> <implementation name> kernel-ms=<median>
//        or   unsupported <why>
// The user's data is plain NCL float32, as PyTorch users have it: the timed
// region includes the reorders into and out of oneDNN's preferred blocked
// layout; weights are reordered once, as conv1d packs them once per plan.
// kernel-ms times the convolution primitives alone, without those reorders:
// oneDNN's best case, for a user whose whole network keeps its layout. A
// separable layer ("<depthwise>+<pointwise>") is two convolution primitives
// back to back, the second reading the first's output in oneDNN's layout (a
// reorder between them only where their preferred layouts differ).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <conv1d/conv1d.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Setup {
  dnnl::convolution_forward primitive;
  std::string implementation;
  memory user_src, user_dst, src, dst, weights, bias;
  bool reorder_src = false, reorder_dst = false;
};

// `previous`: the part whose output this one reads (nullptr: the user's
// input); `last`: whether this part writes the user's output.
std::unique_ptr<Setup> make_setup(const conv1d::Problem& p, dnnl::engine& engine,
                                  dnnl::stream& stream, const Setup* previous, bool last) {
  auto setup = std::make_unique<Setup>();
  const memory::dims src_dims = {p.batch, p.in_channels, p.length};
  const memory::dims dst_dims = {p.batch, p.out_channels, p.out_length()};
  const memory::dims weight_dims = p.groups == 1
                                       ? memory::dims{p.out_channels, p.in_channels, p.kernel_size}
                                       : memory::dims{p.groups, p.out_channels / p.groups,
                                                      p.in_channels / p.groups, p.kernel_size};
  const tag weight_tag = p.groups == 1 ? tag::oiw : tag::goiw;
  auto any = [](const memory::dims& dims) { return memory::desc(dims, dt::f32, tag::any); };
  // oneDNN counts dilation from 0 (0 = dense); PyTorch from 1.
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, any(src_dims),
      any(weight_dims), memory::desc({p.out_channels}, dt::f32, tag::x), any(dst_dims), {p.stride},
      {p.dilation - 1}, {p.pad_left}, {p.pad_right});
  dnnl::convolution_forward::primitive_desc pd(desc, engine);
  setup->primitive = dnnl::convolution_forward(pd);
  setup->implementation = pd.impl_info_str();

  setup->user_src =
      previous != nullptr ? previous->dst : memory({src_dims, dt::f32, tag::ncw}, engine);
  setup->user_dst = memory({dst_dims, dt::f32, tag::ncw}, engine);
  if (previous == nullptr) {
    std::fill_n(static_cast<float*>(setup->user_src.get_data_handle()),
                p.batch * p.in_channels * p.length, 0.5f);
  }
  setup->reorder_src = pd.src_desc() != setup->user_src.get_desc();
  setup->reorder_dst = last && pd.dst_desc() != setup->user_dst.get_desc();
  setup->src = setup->reorder_src ? memory(pd.src_desc(), engine) : setup->user_src;
  setup->dst = setup->reorder_dst ? memory(pd.dst_desc(), engine) : setup->user_dst;
  memory user_weights({weight_dims, dt::f32, weight_tag}, engine);
  std::fill_n(static_cast<float*>(user_weights.get_data_handle()),
              p.out_channels * (p.in_channels / p.groups) * p.kernel_size, 0.25f);
  setup->weights = memory(pd.weights_desc(), engine);
  dnnl::reorder(user_weights, setup->weights).execute(stream, user_weights, setup->weights);
  setup->bias = memory(pd.bias_desc(), engine);
  std::fill_n(static_cast<float*>(setup->bias.get_data_handle()), p.out_channels, 0.0f);
  stream.wait();
  return setup;
}

using Chain = std::vector<std::unique_ptr<Setup>>;

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Runs the chain once; returns the milliseconds spent in the convolution
// primitives (the stream waits after each step, so the reorders' time is
// not counted there).
double run_once(Chain& chain, dnnl::stream& stream) {
  double primitive_ms = 0;
  for (auto& part : chain) {
    Setup& s = *part;
    if (s.reorder_src) dnnl::reorder(s.user_src, s.src).execute(stream, s.user_src, s.src);
    stream.wait();
    const auto start = Clock::now();
    s.primitive.execute(stream, {{DNNL_ARG_SRC, s.src},
                                 {DNNL_ARG_WEIGHTS, s.weights},
                                 {DNNL_ARG_BIAS, s.bias},
                                 {DNNL_ARG_DST, s.dst}});
    stream.wait();
    primitive_ms += milliseconds_since(start);
    if (s.reorder_dst) dnnl::reorder(s.dst, s.user_dst).execute(stream, s.dst, s.user_dst);
  }
  stream.wait();
  return primitive_ms;
}

double median(std::vector<double>& samples) {
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(samples.size() / 2),
                   samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main() {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  std::cout << "ready" << std::endl;
  std::map<std::string, Chain> setups;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string descriptor;
    int threads = 1, repetitions = 1;
    words >> descriptor >> threads >> repetitions;
    try {
      std::vector<conv1d::Problem> problems;
      for (size_t begin = 0; begin <= descriptor.size();) {
        const size_t end = std::min(descriptor.find('+', begin), descriptor.size());
        problems.push_back(conv1d::Problem::parse(descriptor.substr(begin, end - begin)));
        begin = end + 1;
      }
      if (std::any_of(problems.begin(), problems.end(), [](const conv1d::Problem& problem) {
            return problem.padding_mode != conv1d::PaddingMode::zeros ||
                   problem.dtype != conv1d::DType::f32 || problem.layout != conv1d::Layout::ncl;
          })) {
        std::cout << "unsupported oneDNN has zero padding and is timed on float32 NCL only"
                  << std::endl;
        continue;
      }
      omp_set_num_threads(threads);
      auto& setup = setups[descriptor + "@" + std::to_string(threads)];
      if (setup.empty()) {
        for (size_t i = 0; i < problems.size(); ++i) {
          setup.push_back(make_setup(problems[i], engine, stream,
                                     i == 0 ? nullptr : setup.back().get(),
                                     i + 1 == problems.size()));
        }
        run_once(setup, stream);  // warm-up: creates reorder primitives, touches memory
      }
      std::vector<double> times, kernel_times;
      for (int r = 0; r < repetitions; ++r) {
        const auto start = Clock::now();
        kernel_times.push_back(run_once(setup, stream));
        times.push_back(milliseconds_since(start));
      }
      std::string implementation;
      for (const auto& part : setup) {
        implementation += (implementation.empty() ? "" : "+") + part->implementation;
      }
      std::cout << median(times) << " " << implementation << " kernel-ms=" << median(kernel_times)
                << std::endl;
    } catch (const std::exception& error) {
      std::string message = error.what();
      std::replace(message.begin(), message.end(), '\n', ' ');
      std::cout << "unsupported " << message << std::endl;
    }
  }
  return 0;
}
