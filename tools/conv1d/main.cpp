// conv1d: torch.nn.Conv1d on .npy files, problem inspection and benchmarks.
//
// Every failure ends the same way: one line "conv1d: error: <message>" on
// stderr and exit status 2, with no output file written.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <conv1d/conv1d.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "bench.hpp"
#include "commands.hpp"
#include "stream_command.hpp"

namespace {

using namespace conv1d::cli;

constexpr int kErrorStatus = 2;

int fail(std::string message) {
  // One line, whatever the message holds.
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  fmt::print(stderr, "conv1d: error: {}\n", message);
  return kErrorStatus;
}

void add_tune_flags(CLI::App& command, bool& tune, std::string& tune_cache) {
  CLI::Option* tune_flag = command.add_flag(
      "--tune", tune,
      "With --algorithm auto: time the algorithms on this shape and use the fastest");
  command
      .add_option("--tune-cache", tune_cache,
                  "With --tune: keep the choices in this file, and reuse the ones it holds")
      ->type_name("FILE")
      ->needs(tune_flag);
}

void add_conv_flags(CLI::App& command, ConvFlags& flags) {
  command.add_option("--stride", flags.stride, "Stride (default 1)")->type_name("S");
  command
      .add_option("--padding", flags.padding,
                  "Padding: P (both sides), L,R, same, valid or causal (default 0)")
      ->type_name("P");
  command
      .add_option("--padding-mode", flags.padding_mode,
                  "zeros, reflect, replicate or circular (default zeros)")
      ->type_name("MODE");
  command.add_option("--dilation", flags.dilation, "Dilation (default 1)")->type_name("D");
  command
      .add_option("--groups", flags.groups,
                  "Groups (default 1; in_channels for a separable convolution)")
      ->type_name("G");
  command
      .add_option("--layout", flags.layout,
                  "ncl: arrays are (N, C, L) as in PyTorch; nlc: (N, L, C) (default ncl)")
      ->type_name("ncl|nlc");
  command.add_option("--algorithm", flags.algorithm, "Algorithm name, or auto (default auto)")
      ->type_name("NAME");
  command.add_option("--threads", flags.threads, "Threads, 0 for all available (default 0)")
      ->type_name("T");
  command.add_option("--isa", flags.isa, "Cap the SIMD target: avx512, avx2, sse4 or scalar")
      ->type_name("ISA");
  add_tune_flags(command, flags.tune, flags.tune_cache);
}

int run(int argc, char** argv) {
  CLI::App app{"conv1d: 1-D convolution (torch.nn.Conv1d semantics) on .npy files", "conv1d"};
  app.require_subcommand(1);

  ApplyOptions apply;
  CLI::App* apply_command = app.add_subcommand("apply", "Run a convolution forward");
  apply_command->add_option("--input", apply.input, "Input (N, C, L) or (C, L)")
      ->required()
      ->type_name("X.npy");
  apply_command->add_option("--weight", apply.weight, "Weight (C_out, C_in/groups, K)")
      ->required()
      ->type_name("W.npy");
  apply_command->add_option("--bias", apply.bias, "Bias (C_out)")->type_name("B.npy");
  apply_command->add_option("--output", apply.output, "Output file")
      ->required()
      ->type_name("Y.npy");
  CLI::Option* pointwise_weight =
      apply_command
          ->add_option("--pointwise-weight", apply.pointwise_weight,
                       "Separable: pointwise weight (C_out, C_mid, 1); --weight is then the "
                       "depthwise weight (C_mid, 1, K)")
          ->type_name("PW.npy");
  apply_command->add_option("--pointwise-bias", apply.pointwise_bias, "Separable: pointwise bias")
      ->type_name("PB.npy")
      ->needs(pointwise_weight);
  add_conv_flags(*apply_command, apply.conv);

  BackwardOptions backward;
  CLI::App* backward_command =
      app.add_subcommand("backward", "Gradients of a convolution given the output gradient");
  backward_command->add_option("--input", backward.input, "Input (N, C, L) or (C, L)")
      ->required()
      ->type_name("X.npy");
  backward_command->add_option("--weight", backward.weight, "Weight (C_out, C_in/groups, K)")
      ->required()
      ->type_name("W.npy");
  backward_command->add_option("--grad-output", backward.grad_output, "Gradient of the output")
      ->required()
      ->type_name("GY.npy");
  backward_command
      ->add_option("--bias", backward.bias, "Bias (C_out): says that the layer has a bias")
      ->type_name("B.npy");
  backward_command->add_option("--grad-input", backward.grad_input, "Write the input gradient")
      ->type_name("GX.npy");
  backward_command->add_option("--grad-weight", backward.grad_weight, "Write the weight gradient")
      ->type_name("GW.npy");
  backward_command->add_option("--grad-bias", backward.grad_bias, "Write the bias gradient")
      ->type_name("GB.npy");
  CLI::Option* backward_pointwise_weight =
      backward_command
          ->add_option("--pointwise-weight", backward.pointwise_weight,
                       "Separable: pointwise weight (C_out, C_mid, 1); --weight is then the "
                       "depthwise weight (C_mid, 1, K)")
          ->type_name("PW.npy");
  backward_command
      ->add_option("--pointwise-bias", backward.pointwise_bias,
                   "Separable: says that the pointwise part has a bias")
      ->type_name("PB.npy")
      ->needs(backward_pointwise_weight);
  backward_command
      ->add_option("--grad-pointwise-weight", backward.grad_pointwise_weight,
                   "Separable: write the pointwise weight gradient")
      ->type_name("GPW.npy")
      ->needs(backward_pointwise_weight);
  backward_command
      ->add_option("--grad-pointwise-bias", backward.grad_pointwise_bias,
                   "Separable: write the pointwise bias gradient")
      ->type_name("GPB.npy")
      ->needs(backward_pointwise_weight);
  add_conv_flags(*backward_command, backward.conv);

  InfoOptions info;
  CLI::App* info_command = app.add_subcommand(
      "info", "Describe a problem: output shape, FLOPs, algorithms and the one a plan picks");
  info_command
      ->add_option("--input-shape", info.input_shape,
                   "Input array shape N,C,L or C,L (N,L,C or L,C with --layout nlc)")
      ->required()
      ->type_name("N,C,L");
  info_command->add_option("--weight-shape", info.weight_shape, "Weight shape O,I,K")
      ->required()
      ->type_name("O,I,K");
  info_command->add_flag("--no-bias", info.no_bias, "The layer has no bias");
  CLI::Option* info_pointwise =
      info_command->add_option("--pointwise-weight-shape", info.pointwise_weight_shape,
                               "Separable: pointwise weight shape C_out,C_mid,1; --weight-shape "
                               "is then the depthwise weight (C_mid, 1, K)");
  info_command
      ->add_flag("--no-pointwise-bias", info.no_pointwise_bias,
                 "Separable: the pointwise part has no bias")
      ->needs(info_pointwise);
  info_command->add_option("--dtype", info.dtype, "float32 or float64 (default float32)")
      ->type_name("DTYPE");
  add_conv_flags(*info_command, info.conv);

  BenchOptions bench;
  CLI::App* bench_command =
      app.add_subcommand("bench", "Time convolution on a suite of model layers");
  bench_command
      ->add_option("--suite", bench.suite, "Suite CSV (default: the built-in bench/suite.csv)")
      ->type_name("FILE.csv");
  bench_command->add_option("--json", bench.json, "Also write the results as JSON")
      ->type_name("OUT.json");
  bench_command
      ->add_option(
          "--algorithm", bench.algorithm,
          "Algorithm name, or auto; fused or two-pass run only the separable layers that way")
      ->type_name("NAME");
  bench_command->add_option("--threads", bench.threads, "Threads, 0 for all available")
      ->type_name("T");
  bench_command->add_option("--isa", bench.isa, "Cap the SIMD target")->type_name("ISA");
  add_tune_flags(*bench_command, bench.tune, bench.tune_cache);
  bench_command->add_option("--dtype", bench.dtype, "float32 or float64 (default float32)")
      ->type_name("DTYPE");
  bench_command
      ->add_option("--budget-ms", bench.budget_ms,
                   "Time per layer after a warm-up run; at least 3 runs unless the warm-up "
                   "alone exceeds it (default 300)")
      ->type_name("MS");
  bench_command->add_flag("--compare", bench.compare,
                          "Also time PyTorch and oneDNN on the same layers, interleaved in "
                          "rounds, and print the speedups");
  bench_command
      ->add_option("--rounds", bench.rounds,
                   "With --compare: rounds per layer; each library runs once a round "
                   "(default 5)")
      ->type_name("R");
  bench_command->add_flag("--backward", bench.backward,
                          "Time the backward pass (the input, weight and bias gradients) "
                          "instead of forward; --compare then times PyTorch's");

  bool bench_stream = false;
  bench_command->add_flag("--stream", bench_stream,
                          "Per-push latency of streaming convolution against recomputing the "
                          "window at every push (docs/streaming.md)");
  StreamCommandOptions stream;
  CLI::App* stream_command = add_stream_command(app, stream, add_conv_flags);

  // CLI11 would only say "A subcommand is required" for a misspelt one.
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' && first != "apply" && first != "backward" &&
      first != "info" && first != "bench" && first != "stream") {
    return fail(fmt::format(
        "unknown subcommand '{}': expected apply, backward, info, bench or stream", argv[1]));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help
    return fail(error.what());
  }

  if (*apply_command) return run_apply(apply);
  if (*backward_command) return run_backward(backward);
  if (*info_command) return run_info(info);
  if (*stream_command) return run_stream(stream);
  if (bench_stream) return run_stream_bench(bench);
  return run_bench(bench);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& error) {
    return fail(error.what());
  } catch (...) {
    return fail("unexpected error");
  }
}
