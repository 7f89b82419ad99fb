// `conv1d bench`: times forward (or backward) convolution on a suite of
// model layers.
#pragma once

#include <string>

namespace conv1d::cli {

struct BenchOptions {
  std::string suite;  // empty: the built-in suite
  std::string json;   // empty: no JSON file
  std::string algorithm = "auto";
  std::string threads = "0";
  std::string isa;
  std::string dtype = "float32";
  std::string budget_ms = "300";
  bool compare = false;
  // Time the backward pass (grad_input, grad_weight, grad_bias) instead.
  bool backward = false;
  std::string rounds = "5";
  bool tune = false;
  std::string tune_cache;
};

int run_bench(const BenchOptions& options);

}  // namespace conv1d::cli
