// Shape math, PyTorch's validation rules and the canonical descriptor.
#include <conv1d/conv1d.hpp>

#include <cctype>
#include <charconv>
#include <limits>

#include "core/checked.hpp"
#include "core/strings.hpp"

namespace conv1d {

using core::str_cat;

namespace core {

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  int64_t result = 0;
  if (__builtin_mul_overflow(a, b, &result)) {
    throw Error(str_cat(what, " is too large: ", a, " * ", b, " overflows a 64-bit integer"));
  }
  return result;
}

int64_t checked_add(int64_t a, int64_t b, std::string_view what) {
  int64_t result = 0;
  if (__builtin_add_overflow(a, b, &result)) {
    throw Error(str_cat(what, " is too large: ", a, " + ", b, " overflows a 64-bit integer"));
  }
  return result;
}

}  // namespace core

std::string_view to_string(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::string_view to_string(Layout layout) { return layout == Layout::ncl ? "ncl" : "nlc"; }

std::string_view to_string(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::zeros:
      return "zeros";
    case PaddingMode::reflect:
      return "reflect";
    case PaddingMode::replicate:
      return "replicate";
    case PaddingMode::circular:
      return "circular";
  }
  return "?";
}

DType parse_dtype(std::string_view text) {
  if (text == "float32" || text == "f32") return DType::f32;
  if (text == "float64" || text == "f64") return DType::f64;
  throw Error(str_cat("dtype must be float32 or float64, got '", text, "'"));
}

Layout parse_layout(std::string_view text) {
  if (text == "ncl") return Layout::ncl;
  if (text == "nlc") return Layout::nlc;
  throw Error(str_cat("layout must be ncl or nlc, got '", text, "'"));
}

PaddingMode parse_padding_mode(std::string_view text) {
  for (PaddingMode mode : {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                           PaddingMode::circular}) {
    if (text == to_string(mode)) return mode;
  }
  throw Error(str_cat("padding_mode must be one of zeros, reflect, replicate, circular, got '",
                      text, "'"));
}

int64_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

namespace {

// A whole decimal integer (optionally negative), or nullopt.
std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

void require_positive(int64_t value, std::string_view name) {
  if (value <= 0) throw Error(str_cat(name, " must be positive, got ", name, "=", value));
}

}  // namespace

Padding Padding::parse(std::string_view text) {
  text = trim(text);
  if (text == "same") return same();
  if (text == "valid") return valid();
  if (text == "causal") return causal();
  const auto comma = text.find(',');
  if (comma == std::string_view::npos) {
    if (auto amount = parse_int(text)) return symmetric(*amount);
  } else {
    auto left = parse_int(trim(text.substr(0, comma)));
    auto right = parse_int(trim(text.substr(comma + 1)));
    if (left && right) return asymmetric(*left, *right);
  }
  throw Error(str_cat("padding must be an integer, 'left,right', 'same', 'valid' or 'causal', got '",
                      text, "'"));
}

std::string Padding::to_string() const {
  switch (kind) {
    case Kind::same:
      return "same";
    case Kind::valid:
      return "valid";
    case Kind::causal:
      return "causal";
    case Kind::explicit_amounts:
      break;
  }
  return left == right ? std::to_string(left) : str_cat(left, ",", right);
}

std::array<int64_t, 2> Padding::resolve(int64_t kernel_size, int64_t stride,
                                        int64_t dilation) const {
  switch (kind) {
    case Kind::valid:
      return {0, 0};
    case Kind::same: {
      if (stride != 1) {
        throw Error(str_cat("padding='same' is not supported for strided convolutions (stride=",
                            stride, "); use explicit padding"));
      }
      // PyTorch puts the odd element on the right.
      const int64_t total = core::checked_mul(dilation, kernel_size - 1, "dilation*(kernel_size-1)");
      return {total / 2, total - total / 2};
    }
    case Kind::causal:
      return {core::checked_mul(dilation, kernel_size - 1, "dilation*(kernel_size-1)"), 0};
    case Kind::explicit_amounts:
      if (left < 0 || right < 0) {
        throw Error(str_cat("padding must be non-negative, got padding=(", left, ", ", right, ")"));
      }
      return {left, right};
  }
  return {0, 0};
}

void ConvParams::validate() const {
  require_positive(in_channels, "in_channels");
  require_positive(out_channels, "out_channels");
  require_positive(kernel_size, "kernel_size");
  require_positive(stride, "stride");
  require_positive(dilation, "dilation");
  require_positive(groups, "groups");
  if (in_channels % groups != 0) {
    throw Error(str_cat("groups=", groups, " must divide in_channels=", in_channels));
  }
  if (out_channels % groups != 0) {
    throw Error(str_cat("groups=", groups, " must divide out_channels=", out_channels));
  }
  padding.resolve(kernel_size, stride, dilation);
}

Problem Problem::make(const ConvParams& params, int64_t batch, int64_t length, DType dtype,
                      Layout layout) {
  params.validate();
  const auto [left, right] = params.padding.resolve(params.kernel_size, params.stride,
                                                     params.dilation);
  Problem problem;
  problem.batch = batch;
  problem.in_channels = params.in_channels;
  problem.out_channels = params.out_channels;
  problem.length = length;
  problem.kernel_size = params.kernel_size;
  problem.stride = params.stride;
  problem.dilation = params.dilation;
  problem.groups = params.groups;
  problem.pad_left = left;
  problem.pad_right = right;
  problem.padding_mode = params.padding_mode;
  problem.has_bias = params.bias;
  problem.layout = layout;
  problem.dtype = dtype;
  problem.validate();
  return problem;
}

int64_t Problem::out_length() const {
  const int64_t padded = length + pad_left + pad_right;
  const int64_t span = dilation * (kernel_size - 1) + 1;
  if (padded < span) return 0;
  return (padded - span) / stride + 1;
}

double Problem::flops() const {
  return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) *
         static_cast<double>(out_length()) * static_cast<double>(in_channels_per_group()) *
         static_cast<double>(kernel_size);
}

void Problem::validate() const {
  if (batch < 0) throw Error(str_cat("batch must be non-negative, got batch=", batch));
  ConvParams params;
  params.in_channels = in_channels;
  params.out_channels = out_channels;
  params.kernel_size = kernel_size;
  params.stride = stride;
  params.dilation = dilation;
  params.groups = groups;
  params.padding = Padding::asymmetric(pad_left, pad_right);
  params.validate();
  require_positive(length, "input length");

  // Every size an algorithm may form must fit comfortably in 64 bits.
  using core::checked_add;
  using core::checked_mul;
  const int64_t padded =
      checked_add(checked_add(length, pad_left, "padded input length"), pad_right,
                  "padded input length");
  const int64_t span = checked_add(
      checked_mul(dilation, kernel_size - 1, "dilation*(kernel_size-1)"), 1, "kernel span");
  checked_mul(checked_mul(checked_mul(batch, in_channels, "input size"), padded, "input size"),
              8, "input size in bytes");
  checked_mul(checked_mul(checked_mul(out_channels, in_channels_per_group(), "weight size"),
                          kernel_size, "weight size"),
              8, "weight size in bytes");
  if (padded < span) {
    throw Error(str_cat("kernel is wider than the padded input: padded input length ", padded,
                        " (length ", length, " + padding ", pad_left, "+", pad_right,
                        ") < dilation*(kernel_size-1)+1 = ", span));
  }
  checked_mul(checked_mul(checked_mul(batch, out_channels, "output size"), out_length(),
                          "output size"),
              8, "output size in bytes");

  if (padding_mode == PaddingMode::reflect && (pad_left >= length || pad_right >= length)) {
    throw Error(str_cat("reflect padding must be smaller than the input length: padding=(",
                        pad_left, ", ", pad_right, ") with input length ", length));
  }
  if (padding_mode == PaddingMode::circular && (pad_left > length || pad_right > length)) {
    throw Error(str_cat("circular padding must not exceed the input length: padding=(", pad_left,
                        ", ", pad_right, ") with input length ", length,
                        " would wrap around more than once"));
  }
}

std::string Problem::to_string() const {
  std::string text = str_cat("mb", batch, "ic", in_channels, "oc", out_channels, "iw", length,
                             "kw", kernel_size, "sw", stride, "dl", dilation, "pl", pad_left, "pr",
                             pad_right, "g", groups);
  if (padding_mode != PaddingMode::zeros) text += str_cat("_", conv1d::to_string(padding_mode));
  if (!has_bias) text += "_nobias";
  if (layout == Layout::nlc) text += "_nlc";
  if (dtype == DType::f64) text += "_f64";
  return text;
}

Problem Problem::parse(std::string_view text) {
  const std::string original(text);
  auto fail = [&](std::string_view why) -> Error {
    return Error(str_cat("cannot parse problem '", original, "': ", why));
  };
  Problem problem;
  const auto underscore = text.find('_');
  std::string_view numbers = text.substr(0, underscore);
  std::string_view suffixes =
      underscore == std::string_view::npos ? std::string_view() : text.substr(underscore);

  struct Field {
    std::string_view key;
    int64_t* value;
    bool seen = false;
  };
  Field fields[] = {{"mb", &problem.batch},       {"ic", &problem.in_channels},
                    {"oc", &problem.out_channels}, {"iw", &problem.length},
                    {"kw", &problem.kernel_size},  {"sw", &problem.stride},
                    {"dl", &problem.dilation},     {"pl", &problem.pad_left},
                    {"pr", &problem.pad_right},    {"g", &problem.groups}};
  while (!numbers.empty()) {
    size_t key_end = 0;
    while (key_end < numbers.size() && std::isalpha(static_cast<unsigned char>(numbers[key_end]))) {
      ++key_end;
    }
    size_t value_end = key_end;
    while (value_end < numbers.size() &&
           std::isdigit(static_cast<unsigned char>(numbers[value_end]))) {
      ++value_end;
    }
    const std::string_view key = numbers.substr(0, key_end);
    const auto value = parse_int(numbers.substr(key_end, value_end - key_end));
    if (key.empty() || !value) throw fail(str_cat("expected <key><number> at '", numbers, "'"));
    Field* field = nullptr;
    for (Field& candidate : fields) {
      if (candidate.key == key) field = &candidate;
    }
    if (field == nullptr) throw fail(str_cat("unknown key '", key, "'"));
    if (field->seen) throw fail(str_cat("key '", key, "' given twice"));
    field->seen = true;
    *field->value = *value;
    numbers.remove_prefix(value_end);
  }
  for (const Field& field : fields) {
    if (!field.seen && (field.key == "ic" || field.key == "oc" || field.key == "iw" ||
                        field.key == "kw")) {
      throw fail(str_cat("missing '", field.key, "'"));
    }
  }
  while (!suffixes.empty()) {
    suffixes.remove_prefix(1);
    const std::string_view word = suffixes.substr(0, suffixes.find('_'));
    suffixes.remove_prefix(word.size());
    if (word == "nobias") {
      problem.has_bias = false;
    } else if (word == "nlc") {
      problem.layout = Layout::nlc;
    } else if (word == "f64") {
      problem.dtype = DType::f64;
    } else if (word == "reflect" || word == "replicate" || word == "circular") {
      problem.padding_mode = parse_padding_mode(word);
    } else {
      throw fail(str_cat("unknown suffix '_", word, "'"));
    }
  }
  problem.validate();
  return problem;
}

}  // namespace conv1d
