// Benchmark suites: CSV files of named convolution layers. The built-in one
// is bench/suite.csv, compiled into the program.
#pragma once

#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace conv1d::cli {

struct SuiteLayer {
  std::string name;
  int64_t batch = 1;
  int64_t length = 1;
  ConvParams params;
  // > 0: a separable layer, `params` (depthwise) then a 1x1 pointwise
  // convolution to this many channels.
  int64_t pointwise_out_channels = 0;

  bool separable() const { return pointwise_out_channels > 0; }
  SeparableParams separable_params() const;
  // The problem(s) this layer runs; a separable layer's descriptor joins its
  // two parts with '+'.
  Problem problem(DType dtype) const;
  Problem pointwise_problem(DType dtype) const;
  std::string descriptor(DType dtype) const;
};

// CSV with the header
//   name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,groups
// (padding an integer, same, valid or causal), optionally followed by the
// columns pointwise_out_channels (empty for a plain convolution) and
// padding_mode (empty for zeros); rows may leave out the optional columns at
// their end. Blank lines are skipped. Every layer is checked; errors name
// `source` and the line.
std::vector<SuiteLayer> parse_suite(std::string_view csv, std::string_view source);
std::vector<SuiteLayer> builtin_suite();
std::vector<SuiteLayer> read_suite(const std::string& path);

}  // namespace conv1d::cli
