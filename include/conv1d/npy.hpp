// Reading and writing conv1d::Tensor as NumPy .npy files.
//
// Only what a Tensor can hold is accepted: little-endian float32 ('<f4') or
// float64 ('<f8'), C order, any rank (including 0) and zero-size dimensions.
// Format versions 1.0, 2.0 and 3.0 are read; files are written like
// numpy.save does (version 1.0, header padded so the data is 64-byte
// aligned), so numpy reads them back and byte comparisons with numpy work.
#pragma once

#include <conv1d/conv1d.hpp>
#include <conv1d/layer.hpp>
#include <string>
#include <string_view>

namespace conv1d {

// Throws Error naming the file and the problem (cannot open, not a .npy
// file, unsupported dtype, Fortran order, truncated or oversized data, ...).
Tensor read_npy(const std::string& path);

// Writes atomically: the data goes to a temporary file next to `path` that
// is renamed over it, so readers see either the old file or the complete new
// one, and a failure leaves nothing behind. Throws Error("cannot write ...").
void write_npy(const std::string& path, const Tensor& tensor);

// The same format in memory. `what` names the data in error messages.
Tensor parse_npy(std::string_view bytes, std::string_view what = "npy data");
std::string serialize_npy(const Tensor& tensor);

}  // namespace conv1d
