// Helpers shared by the subcommands of the conv1d program.
#pragma once

#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conv1d::cli {

// A whole decimal integer; throws Error naming `what` otherwise.
int64_t parse_int(std::string_view text, std::string_view what);
// "2,3,10" -> {2, 3, 10}; every dimension non-negative.
std::vector<int64_t> parse_shape(std::string_view text, std::string_view what);
// --threads: 0 (all available) up to a sane maximum.
int parse_threads(std::string_view text);
// "(2, 3, 10)", "(4,)", as NumPy prints shapes.
std::string shape_string(const std::vector<int64_t>& shape);

// Fails early, before any computing, when `path` cannot be an output file:
// its folder does not exist or it names a folder.
void check_output_path(const std::string& path, std::string_view what);

// Writes every (path, tensor) or none: with several outputs each is first
// written next to its destination and all are renamed into place only when
// every write succeeded.
void write_outputs(const std::vector<std::pair<std::string, const Tensor*>>& outputs);

}  // namespace conv1d::cli
