// .npy reader and writer (format described in numpy/lib/format.py).
//
// Standard library and POSIX only, so the library keeps no I/O dependency.
// The header is a Python dict literal; rather than evaluate Python we parse
// the small literal subset numpy writes (strings, True/False, ints, tuples)
// and reject everything else with a message naming the file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <conv1d/npy.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conv1d {
namespace {

// The data bytes are the in-memory representation, which is only right when
// the host matches the '<' (little-endian) descr we read and write.
static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kArrayAlign = 64;  // numpy's ARRAY_ALIGN
// numpy leaves room after the dict so the first dimension can grow in place
// (GROWTH_AXIS_MAX_DIGITS); we copy it to produce byte-identical files.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr std::string_view kExpectedDtypes = "expected float32 ('<f4') or float64 ('<f8')";

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out += part;
  return out;
}

std::string num(uint64_t value) { return std::to_string(value); }

// Python's repr of a shape tuple: "()", "(5,)", "(2, 3)".
std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

std::string_view dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }
std::string_view dtype_descr(DType dtype) { return dtype == DType::f32 ? "<f4" : "<f8"; }
size_t dtype_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

// Printable form of header bytes for error messages, cut short because a
// hostile header can be gigabytes long.
std::string quoted_excerpt(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out = "\"";
  for (char c : text.substr(0, kMax)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += text.size() > kMax ? "\"..." : "\"";
  return out;
}

// A value from the header dict, in the subset of Python literals numpy uses.
struct Literal {
  enum class Kind { string, boolean, integer, tuple, list, none };
  Kind kind = Kind::none;
  std::string_view source;  // the literal's own text, for messages
  std::string_view string;
  bool boolean = false;
  int64_t integer = 0;
  bool too_large = false;  // integer does not fit in int64
  std::vector<Literal> items;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view what) : text_(text), what_(what) {}

  // Entries of the top-level dict, in file order, keys unique.
  std::vector<std::pair<std::string_view, Literal>> parse_dict() {
    std::vector<std::pair<std::string_view, Literal>> entries;
    skip_space();
    expect('{', "the header to start with '{'");
    while (true) {
      skip_space();
      if (peek() == '}') break;
      size_t key_start = pos_;
      Literal key = parse_value(0);
      if (key.kind != Literal::Kind::string) {
        pos_ = key_start;
        fail("a quoted key");
      }
      for (const auto& entry : entries) {
        if (entry.first == key.string) {
          throw Error(cat({"malformed .npy header in ", what_, ": duplicate key '", key.string,
                           "' in ", quoted_excerpt(text_)}));
        }
      }
      skip_space();
      expect(':', "':' after the key");
      skip_space();
      entries.emplace_back(key.string, parse_value(0));
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("',' or '}'");
      }
    }
    ++pos_;
    // numpy pads with spaces and ends with '\n'; anything else is garbage.
    skip_space();
    if (pos_ != text_.size()) fail("only padding after the closing '}'");
    return entries;
  }

 private:
  static constexpr int kMaxDepth = 16;  // bounds recursion on hostile input

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\n' || peek() == '\t' || peek() == '\r')) {
      ++pos_;
    }
  }

  void expect(char c, std::string_view expected) {
    if (at_end() || peek() != c) fail(expected);
    ++pos_;
  }

  [[noreturn]] void fail(std::string_view expected) const {
    const std::string found =
        at_end() ? std::string("the end of the header") : quoted_excerpt(text_.substr(pos_, 1));
    throw Error(cat({"malformed .npy header in ", what_, ": expected ", expected, " at offset ",
                     num(pos_), ", found ", found, " in ", quoted_excerpt(text_)}));
  }

  Literal parse_value(int depth) {
    if (depth > kMaxDepth) fail("less deeply nested values");
    size_t start = pos_;
    Literal value;
    char c = peek();
    if (at_end()) fail("a value");
    if (c == '\'' || c == '"') {
      value.kind = Literal::Kind::string;
      ++pos_;
      size_t body = pos_;
      while (!at_end() && peek() != c) {
        // Valid descrs never need escapes; refusing them keeps this simple.
        if (peek() == '\n') fail("a closing quote");
        if (peek() == '\\') fail("a simple string without escapes");
        ++pos_;
      }
      if (at_end()) fail("a closing quote");
      value.string = text_.substr(body, pos_ - body);
      ++pos_;
    } else if (c == '(' || c == '[') {
      value.kind = c == '(' ? Literal::Kind::tuple : Literal::Kind::list;
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      bool saw_comma = false;
      while (true) {
        skip_space();
        if (peek() == close) break;
        value.items.push_back(parse_value(depth + 1));
        skip_space();
        if (peek() == ',') {
          saw_comma = true;
          ++pos_;
        } else if (peek() != close) {
          fail(cat({"',' or '", std::string_view(&close, 1), "'"}));
        }
      }
      ++pos_;
      // Python: "(5)" is the int 5, only "(5,)" is a tuple.
      if (value.kind == Literal::Kind::tuple && value.items.size() == 1 && !saw_comma) {
        value = std::move(value.items[0]);
      }
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      value.kind = Literal::Kind::integer;
      const bool negative = c == '-';
      if (c == '-' || c == '+') ++pos_;
      if (!(peek() >= '0' && peek() <= '9') || at_end()) fail("a digit");
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        const int64_t digit = peek() - '0';
        if (__builtin_mul_overflow(value.integer, 10, &value.integer) ||
            __builtin_add_overflow(value.integer, negative ? -digit : digit, &value.integer)) {
          value.too_large = true;
        }
        ++pos_;
      }
      // Python 2 era numpy wrote longs as "3L"; numpy still reads them.
      if (peek() == 'L' && !at_end()) ++pos_;
    } else {
      size_t end = pos_;
      while (end < text_.size() && std::isalnum(static_cast<unsigned char>(text_[end]))) ++end;
      std::string_view word = text_.substr(pos_, end - pos_);
      if (word == "True" || word == "False") {
        value.kind = Literal::Kind::boolean;
        value.boolean = word == "True";
      } else if (word == "None") {
        value.kind = Literal::Kind::none;
      } else {
        fail("a string, True, False, an integer or a tuple");
      }
      pos_ = end;
    }
    value.source = text_.substr(start, pos_ - start);
    return value;
  }

  std::string_view text_;
  std::string_view what_;
  size_t pos_ = 0;
};

struct Preamble {
  size_t header_offset = 0;  // where the dict starts
  size_t header_length = 0;
};

// `bytes` holds the first min(file size, 12) bytes; `total` is the size of
// the whole file, so a length field pointing past it is caught before any
// large read.
Preamble parse_preamble(std::string_view bytes, uint64_t total, std::string_view what) {
  if (total == 0) throw Error(cat({"not a .npy file: ", what, " is empty"}));
  const size_t magic_seen = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, magic_seen) != kMagic.substr(0, magic_seen)) {
    throw Error(cat({"not a .npy file: ", what, " does not start with the magic string ",
                     quoted_excerpt(kMagic), " (it starts with ",
                     quoted_excerpt(bytes.substr(0, kMagic.size())), ")"}));
  }
  if (bytes.size() < kMagic.size() + 2) {
    throw Error(cat({"truncated header in ", what, ": the file ends after ", num(bytes.size()),
                     " bytes, inside the magic string and version"}));
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  const auto minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw Error(cat({"unsupported .npy format version ", num(major), ".", num(minor), " in ", what,
                     ": expected 1.0, 2.0 or 3.0"}));
  }
  const size_t length_bytes = major == 1 ? 2 : 4;
  Preamble p;
  p.header_offset = 8 + length_bytes;
  if (bytes.size() < p.header_offset) {
    throw Error(cat({"truncated header in ", what, ": the file ends after ", num(bytes.size()),
                     " bytes, inside the header length field"}));
  }
  for (size_t i = 0; i < length_bytes; ++i) {
    p.header_length |= size_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
  }
  if (p.header_offset + p.header_length > total) {
    throw Error(cat({"truncated header in ", what, ": header length ", num(p.header_length),
                     " extends past the end of the file (", num(total), " bytes, header starts at ",
                     num(p.header_offset), ")"}));
  }
  return p;
}

struct Header {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t data_bytes = 0;
};

Header parse_header(std::string_view text, std::string_view what) {
  auto entries = HeaderParser(text, what).parse_dict();
  const Literal* descr = nullptr;
  const Literal* fortran = nullptr;
  const Literal* shape = nullptr;
  for (const auto& [key, value] : entries) {
    if (key == "descr") {
      descr = &value;
    } else if (key == "fortran_order") {
      fortran = &value;
    } else if (key == "shape") {
      shape = &value;
    } else {
      throw Error(cat({"malformed .npy header in ", what, ": unexpected key '", key,
                       "' (expected exactly 'descr', 'fortran_order' and 'shape')"}));
    }
  }
  for (auto [name, found] : {std::pair<std::string_view, const Literal*>{"descr", descr},
                             {"fortran_order", fortran},
                             {"shape", shape}}) {
    if (found == nullptr) {
      throw Error(cat({"malformed .npy header in ", what, ": missing key '", name, "' in ",
                       quoted_excerpt(text)}));
    }
  }

  Header h;
  if (descr->kind != Literal::Kind::string) {
    // e.g. a structured dtype [('x', '<f4'), ...]
    throw Error(cat({"unsupported dtype ", descr->source, " in ", what, ": ", kExpectedDtypes}));
  }
  if (descr->string == "<f4") {
    h.dtype = DType::f32;
  } else if (descr->string == "<f8") {
    h.dtype = DType::f64;
  } else if (descr->string == ">f4" || descr->string == ">f8") {
    throw Error(cat({"unsupported big-endian dtype '", descr->string, "' in ", what,
                     ": expected little-endian float32 ('<f4') or float64 ('<f8'); convert with "
                     "arr.astype(arr.dtype.newbyteorder('<'))"}));
  } else {
    throw Error(cat({"unsupported dtype '", descr->string, "' in ", what, ": ", kExpectedDtypes}));
  }

  if (fortran->kind != Literal::Kind::boolean) {
    throw Error(cat({"malformed .npy header in ", what, ": 'fortran_order' must be True or False, ",
                     "found ", fortran->source}));
  }
  if (fortran->boolean) {
    throw Error(cat({"Fortran-order arrays are not supported (", what,
                     " has 'fortran_order': True); save a C-order copy with "
                     "np.save(path, np.ascontiguousarray(arr))"}));
  }

  if (shape->kind != Literal::Kind::tuple) {
    throw Error(cat({"malformed .npy header in ", what, ": 'shape' must be a tuple of integers, ",
                     "found ", shape->source}));
  }
  // Like numpy, zero dims are skipped so that overflow does not depend on
  // where the zero is; the rest times the item size must fit in int64.
  int64_t bytes = static_cast<int64_t>(dtype_bytes(h.dtype));
  bool empty = false;
  for (const Literal& dim : shape->items) {
    if (dim.kind != Literal::Kind::integer) {
      throw Error(cat({"malformed .npy header in ", what, ": 'shape' must be a tuple of integers, ",
                       "found ", shape->source}));
    }
    if (dim.integer < 0 || dim.source.starts_with('-')) {
      throw Error(
          cat({"negative dimension ", dim.source, " in shape ", shape->source, " of ", what}));
    }
    if (dim.too_large || (dim.integer > 0 && __builtin_mul_overflow(bytes, dim.integer, &bytes))) {
      throw Error(cat({"shape ", shape->source, " in ", what, " is too large: its ",
                       dtype_name(h.dtype), " data would exceed 2^63 bytes"}));
    }
    empty = empty || dim.integer == 0;
    h.shape.push_back(dim.integer);
  }
  h.data_bytes = empty ? 0 : static_cast<uint64_t>(bytes);
  return h;
}

void check_data_size(const Header& h, uint64_t available, std::string_view what) {
  if (available == h.data_bytes) return;
  const bool truncated = available < h.data_bytes;
  std::string message =
      cat({truncated ? "truncated data in " : "trailing bytes in ", what, ": expected ",
           num(h.data_bytes), " data bytes for shape ", shape_repr(h.shape), " of ",
           dtype_name(h.dtype), ", found ", num(available)});
  if (!truncated) message += cat({" (", num(available - h.data_bytes), " extra)"});
  throw Error(message);
}

// A tensor with the header's dtype and shape, checked to have exactly the
// storage the data needs before anything is copied into it.
Tensor make_tensor(const Header& h, std::string_view what) {
  Tensor t(h.dtype, h.shape);
  if (static_cast<uint64_t>(t.numel()) * dtype_bytes(h.dtype) != h.data_bytes) {
    throw Error(cat({"cannot load ", what, ": a tensor of shape ", shape_repr(h.shape), " holds ",
                     num(static_cast<uint64_t>(t.numel())), " elements, the file ",
                     num(h.data_bytes / dtype_bytes(h.dtype))}));
  }
  return t;
}

char* bytes_of(Tensor& t) {
  return t.dtype() == DType::f32 ? reinterpret_cast<char*>(t.data<float>())
                                 : reinterpret_cast<char*>(t.data<double>());
}

// The tensor's data as bytes; throws if the storage does not match the shape.
std::string_view bytes_of(const Tensor& t) {
  const uint64_t numel = static_cast<uint64_t>(t.numel());
  const size_t size = numel * dtype_bytes(t.dtype());
  if (size == 0) return {};
  const char* data = t.dtype() == DType::f32 ? reinterpret_cast<const char*>(t.data<float>())
                                             : reinterpret_cast<const char*>(t.data<double>());
  if (data == nullptr) {
    throw Error(cat({"cannot serialize a tensor of shape ", shape_repr(t.shape()),
                     " without storage (a default-constructed Tensor?)"}));
  }
  return {data, size};
}

// Magic, version, header length and the padded dict, exactly as numpy.save
// writes them: version 1.0 unless the header needs a 4-byte length.
std::string serialize_header(const Tensor& t) {
  for (const auto& s : t.shape()) {
    if (s < 0) throw Error("cannot serialize a tensor with shape " + shape_repr(t.shape()));
  }
  std::string dict = cat({"{'descr': '", dtype_descr(t.dtype()),
                          "', 'fortran_order': False, 'shape': ", shape_repr(t.shape()), ", }"});
  if (!t.shape().empty()) {
    dict.append(kGrowthAxisMaxDigits - std::to_string(t.shape()[0]).size(), ' ');
  }
  for (unsigned major : {1u, 2u}) {
    const size_t length_bytes = major == 1 ? 2 : 4;
    const size_t used = kMagic.size() + 2 + length_bytes + dict.size() + 1;  // +1 for '\n'
    // Always 1..64 spaces, as numpy does (a full block when already aligned).
    const size_t pad = kArrayAlign - used % kArrayAlign;
    const size_t header_length = dict.size() + pad + 1;
    if (major == 1 && header_length > 0xffff) continue;
    std::string out(kMagic);
    out += static_cast<char>(major);
    out += '\0';
    for (size_t i = 0; i < length_bytes; ++i) {
      out += static_cast<char>((header_length >> (8 * i)) & 0xff);
    }
    out += dict;
    out.append(pad, ' ');
    out += '\n';
    return out;
  }
  throw Error("cannot serialize a tensor of rank " + num(t.shape().size()) + ": header too long");
}

[[noreturn]] void throw_errno(std::string_view action, std::string_view path, int error) {
  throw Error(cat({"cannot ", action, " '", path, "': ", std::strerror(error)}));
}

class File {
 public:
  explicit File(int fd) : fd_(fd) {}
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Returns 0 or the errno of a failed close (which can report write errors).
  int close() {
    int result = ::close(std::exchange(fd_, -1));
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Reads up to n bytes, stopping early only at end of file.
size_t read_up_to(int fd, char* out, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::read(fd, out + done, std::min<size_t>(n - done, size_t{1} << 30));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", path, errno);
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

// Returns 0 or the errno of the failed write.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t put = ::write(fd, bytes.data(), std::min<size_t>(bytes.size(), size_t{1} << 30));
    if (put < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<size_t>(put));
  }
  return 0;
}

// Creates path + ".tmp-XXXXXX" exclusively. Not mkstemp: that makes the file
// 0600, while open(0666) lets the umask decide, as numpy.save's files do.
std::pair<int, std::string> create_temp(const std::string& path) {
  constexpr std::string_view kChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device device;
  std::uniform_int_distribution<size_t> pick(0, kChars.size() - 1);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string temp = path + ".tmp-";
    for (int i = 0; i < 6; ++i) temp += kChars[pick(device)];
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return {fd, temp};
    if (errno != EEXIST) throw_errno("write", path, errno);
  }
  throw_errno("write", path, EEXIST);
}

}  // namespace

Tensor parse_npy(std::string_view bytes, std::string_view what) {
  const Preamble p = parse_preamble(bytes.substr(0, 12), bytes.size(), what);
  const Header h = parse_header(bytes.substr(p.header_offset, p.header_length), what);
  const std::string_view data = bytes.substr(p.header_offset + p.header_length);
  check_data_size(h, data.size(), what);
  Tensor t = make_tensor(h, what);
  if (!data.empty()) std::memcpy(bytes_of(t), data.data(), data.size());
  return t;
}

Tensor read_npy(const std::string& path) {
  File file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw_errno("open", path, errno);
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) throw_errno("read", path, errno);
  if (S_ISDIR(info.st_mode)) throw_errno("read", path, EISDIR);

  if (!S_ISREG(info.st_mode)) {
    // Pipes and devices have no size to check against: read them whole.
    std::string all;
    std::array<char, 1 << 16> chunk;
    while (size_t got = read_up_to(file.get(), chunk.data(), chunk.size(), path)) {
      all.append(chunk.data(), got);
      if (got < chunk.size()) break;
    }
    return parse_npy(all, path);
  }

  // Regular file: validate the header against the file size before
  // allocating, so a lying header cannot make us allocate terabytes.
  const auto total = static_cast<uint64_t>(info.st_size);
  std::array<char, 12> head{};
  const size_t head_size = read_up_to(file.get(), head.data(), head.size(), path);
  const Preamble p = parse_preamble({head.data(), head_size}, total, path);
  std::string header(p.header_length, '\0');
  const size_t header_in_head =
      std::min(head_size - std::min(head_size, p.header_offset), p.header_length);
  std::memcpy(header.data(), head.data() + p.header_offset, header_in_head);
  const size_t rest = p.header_length - header_in_head;
  if (read_up_to(file.get(), header.data() + header_in_head, rest, path) != rest) {
    throw Error(cat({"truncated header in ", path, ": the file shrank while being read"}));
  }
  const Header h = parse_header(header, path);
  // The preamble may have read past the header into the data.
  const size_t data_in_head = head_size - std::min(head_size, p.header_offset + p.header_length);
  const uint64_t header_end = p.header_offset + p.header_length;
  check_data_size(h, total - header_end, path);
  // Only if the file grew after fstat; never copy past the tensor.
  if (data_in_head > h.data_bytes) check_data_size(h, data_in_head, path);

  Tensor t = make_tensor(h, path);
  char* out = h.data_bytes > 0 ? bytes_of(t) : nullptr;
  if (data_in_head > 0) std::memcpy(out, head.data() + header_end, data_in_head);
  const size_t want = h.data_bytes - data_in_head;
  const size_t got = want > 0 ? read_up_to(file.get(), out + data_in_head, want, path) : 0;
  char extra = 0;
  const size_t more = read_up_to(file.get(), &extra, 1, path);
  if (got != want || more != 0) {
    // The file changed size between fstat and read.
    check_data_size(h, data_in_head + got + more, path);
  }
  return t;
}

std::string serialize_npy(const Tensor& tensor) {
  std::string out = serialize_header(tensor);
  out += bytes_of(tensor);
  return out;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  // Everything that can fail without touching the disk happens first.
  const std::string header = serialize_header(tensor);
  const std::string_view data = bytes_of(tensor);

  auto [fd, temp] = create_temp(path);
  File file(fd);
  int error = write_all(file.get(), header);
  if (error == 0) error = write_all(file.get(), data);
  const int close_error = file.close();
  if (error == 0) error = close_error;
  if (error == 0 && ::rename(temp.c_str(), path.c_str()) != 0) error = errno;
  if (error != 0) {
    ::unlink(temp.c_str());
    throw_errno("write", path, error);
  }
}

}  // namespace conv1d
