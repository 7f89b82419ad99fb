// `conv1d stream`: apply a layer through conv1d::Stream chunk by chunk, and
// `conv1d bench --stream`: per-push latency of streaming against the naive
// way (recompute over the needed window at every push).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "bench.hpp"
#include "commands.hpp"

namespace conv1d::cli {

struct StreamCommandOptions {
  ApplyOptions apply;
  std::string chunk;  // "N", "random" or "random:N"
  std::string seed = "0";
  std::string block = "128";
};

// Registers the subcommand with apply's flags; `add_conv_flags` adds the
// convolution flags every subcommand shares.
CLI::App* add_stream_command(CLI::App& app, StreamCommandOptions& options,
                             void (*add_conv_flags)(CLI::App&, ConvFlags&));

int run_stream(const StreamCommandOptions& options);
int run_stream_bench(const BenchOptions& options);

}  // namespace conv1d::cli
