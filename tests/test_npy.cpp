// Tests for the .npy reader/writer: round trips, byte-exact agreement with
// what numpy.save writes, every rejection path, and atomic file writes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <conv1d/npy.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace conv1d {
namespace {

namespace fs = std::filesystem;

template <class T>
Tensor make_tensor(std::vector<int64_t> shape) {
  Tensor t(dtype_of<T>(), std::move(shape));
  T* data = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) data[i] = static_cast<T>(0.37 * i - 1.5);
  // Values whose bits a text or lossy path would change.
  if (t.numel() > 3) {
    data[1] = std::numeric_limits<T>::infinity();
    data[2] = static_cast<T>(-0.0);
    data[3] = std::numeric_limits<T>::denorm_min();
  }
  return t;
}

void expect_same(const Tensor& expected, const Tensor& actual) {
  ASSERT_EQ(expected.dtype(), actual.dtype());
  ASSERT_EQ(expected.shape(), actual.shape());
  ASSERT_EQ(expected.numel(), actual.numel());
  for (int64_t i = 0; i < expected.numel(); ++i) {
    // Compare bits so -0.0 and +0.0 differ.
    const double e = expected.value(i);
    const double a = actual.value(i);
    EXPECT_EQ(std::signbit(e), std::signbit(a)) << "element " << i;
    EXPECT_EQ(e, a) << "element " << i;
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// An .npy byte string with an arbitrary header dict, for malformed inputs.
std::string npy_bytes(const std::string& dict, const std::string& data = "", int major = 1) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const size_t length = dict.size() + 1;
  out += static_cast<char>(length & 0xff);
  out += static_cast<char>(length >> 8);
  if (major != 1) out += std::string(2, '\0');
  return out + dict + "\n" + data;
}

std::string f4_dict(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

void expect_error(const std::string& bytes, std::initializer_list<std::string> words) {
  try {
    parse_npy(bytes, "X.npy");
    ADD_FAILURE() << "no error; expected one containing '" << *words.begin() << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("X.npy"), std::string::npos) << message;
    for (const auto& word : words) {
      EXPECT_NE(message.find(word), std::string::npos) << "'" << word << "' not in: " << message;
    }
  }
}

class NpyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "conv1d-npy-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ignored);
    for (const auto& entry : fs::recursive_directory_iterator(dir_, ignored)) {
      fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add, ignored);
    }
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

TEST(Npy, RoundTripInMemory) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{7}, {3, 5}, {2, 3, 4}, {1, 1, 1}, {}}) {
    SCOPED_TRACE(testing::PrintToString(shape));
    Tensor f = make_tensor<float>(shape);
    expect_same(f, parse_npy(serialize_npy(f)));
    Tensor d = make_tensor<double>(shape);
    expect_same(d, parse_npy(serialize_npy(d)));
  }
}

TEST(Npy, RoundTripZeroSizeDims) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{0}, {0, 3, 5}, {3, 0}, {2, 3, 0}}) {
    SCOPED_TRACE(testing::PrintToString(shape));
    for (DType dtype : {DType::f32, DType::f64}) {
      std::string bytes = serialize_npy(Tensor(dtype, shape));
      EXPECT_EQ(bytes.size() % 64, 0u);  // header only, no data
      Tensor back = parse_npy(bytes);
      EXPECT_EQ(back.dtype(), dtype);
      EXPECT_EQ(back.shape(), shape);
      EXPECT_EQ(back.numel(), 0);
    }
  }
}

TEST(Npy, MatchesNumpyBytesForFloat32Matrix) {
  // np.save(f, np.array([[0, 1, 2], [-2, 0.5, 3]], dtype='<f4')): the dict,
  // numpy's 20 spare spaces for growing axis 0, then padding and '\n' to 128.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict;
  expected += std::string(128 - 1 - expected.size(), ' ') + "\n";
  ASSERT_EQ(expected.size(), 128u);
  expected += std::string(
      "\x00\x00\x00\x00"
      "\x00\x00\x80\x3f"
      "\x00\x00\x00\x40"
      "\x00\x00\x00\xc0"
      "\x00\x00\x00\x3f"
      "\x00\x00\x40\x40",
      24);

  Tensor t = Tensor::from_values<float>({2, 3}, {0.f, 1.f, 2.f, -2.f, 0.5f, 3.f});
  EXPECT_EQ(serialize_npy(t), expected);
  Tensor back = parse_npy(expected);
  expect_same(t, back);
  EXPECT_EQ(back.data<float>()[3], -2.f);
}

TEST(Npy, MatchesNumpyBytesForRank1AndRank0Float64) {
  std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                         "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  expected += std::string(127 - expected.size(), ' ') + "\n";
  expected += std::string(
      "\x00\x00\x00\x00\x00\x00\xf0\x3f"
      "\x00\x00\x00\x00\x00\x00\x04\xc0",
      16);
  EXPECT_EQ(serialize_npy(Tensor::from_values<double>({2}, {1.0, -2.5})), expected);

  std::string scalar = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (), }";
  scalar += std::string(127 - scalar.size(), ' ') + "\n";
  scalar += std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
  EXPECT_EQ(serialize_npy(Tensor::from_values<double>({}, {1.0})), scalar);
  Tensor back = parse_npy(scalar);
  EXPECT_EQ(back.rank(), 0);
  EXPECT_EQ(back.value(0), 1.0);
}

TEST(Npy, GrowthSpaceMovesHeaderToNextBlockLikeNumpy) {
  // Rank 15: the 98-character dict fits in 128 bytes, but numpy's 20 spare
  // spaces (21 digits minus len("1")) push the header to 192.
  const std::vector<int64_t> shape(15, 1);
  std::string bytes = serialize_npy(Tensor(DType::f32, shape));
  ASSERT_EQ(bytes.size(), 192u + 4u);
  EXPECT_EQ(bytes.substr(8, 2), std::string("\xb6\x00", 2));
  EXPECT_EQ(bytes[191], '\n');
  EXPECT_EQ(parse_npy(bytes).shape(), shape);
}

TEST(Npy, ReadsOtherVersionsAndHeaderSpellings) {
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1, 2
  for (int major : {1, 2, 3}) {
    Tensor t = parse_npy(npy_bytes(f4_dict("(2,)"), data, major));
    ASSERT_EQ(t.shape(), std::vector<int64_t>{2});
    EXPECT_EQ(t.data<float>()[1], 2.f);
  }
  for (const std::string& dict : {
           std::string("{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4'}"),
           std::string("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(1,2,),}   "),
           std::string("{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 1 , 2 ) }"),
           std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }"),
       }) {
    SCOPED_TRACE(dict);
    Tensor t = parse_npy(npy_bytes(dict, data));
    EXPECT_EQ(t.shape(), (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(t.data<float>()[0], 1.f);
  }
}

TEST(Npy, RejectsBadPreamble) {
  expect_error("", {"not a .npy file", "empty"});
  expect_error("PK\x03\x04 this is a zip", {"not a .npy file"});
  expect_error(std::string("\x93NUMPX\x01\x00", 8), {"not a .npy file"});
  expect_error("\x93NUM", {"truncated header"});
  expect_error(std::string("\x93NUMPY\x01\x00\x76", 9), {"truncated header"});
  expect_error(std::string("\x93NUMPY\x02\x00\x76\x00\x00", 11), {"truncated header"});
  expect_error(std::string("\x93NUMPY\x01\x00\x76\x00{'descr'", 17),
               {"truncated header", "header length 118"});
  std::string v4 = npy_bytes(f4_dict("(1,)"), std::string(4, '\0'));
  v4[6] = 4;
  expect_error(v4, {"unsupported .npy format version 4.0", "expected 1.0, 2.0 or 3.0"});
  std::string v11 = npy_bytes(f4_dict("(1,)"), std::string(4, '\0'));
  v11[7] = 1;
  expect_error(v11, {"unsupported .npy format version 1.1"});
}

TEST(Npy, RejectsUnsupportedDtypes) {
  try {
    parse_npy(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }",
                        std::string(4, '\0')),
              "X.npy");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "unsupported dtype '<i4' in X.npy: expected float32 ('<f4') or float64 ('<f8')");
  }
  expect_error(
      npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')),
      {"big-endian", "'>f4'"});
  expect_error(
      npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')),
      {"big-endian", "'>f8'"});
  expect_error(npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }"),
               {"unsupported dtype '<f2'"});
  expect_error(npy_bytes("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
               {"unsupported dtype [('x', '<f4')]"});
}

TEST(Npy, RejectsFortranOrder) {
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                         std::string(24, '\0')),
               {"Fortran-order arrays are not supported"});
}

TEST(Npy, RejectsDataSizeMismatch) {
  expect_error(npy_bytes(f4_dict("(2, 3)"), std::string(20, '\0')),
               {"truncated data", "expected 24", "found 20"});
  expect_error(npy_bytes(f4_dict("(2, 3)"), std::string(28, '\0')),
               {"trailing bytes", "expected 24", "found 28", "4 extra"});
  expect_error(npy_bytes(f4_dict("(0, 3)"), std::string(1, '\0')), {"trailing bytes"});
  expect_error(npy_bytes(f4_dict("()")), {"truncated data", "expected 4"});
}

TEST(Npy, RejectsBadShapes) {
  expect_error(npy_bytes(f4_dict("(2, -3)")), {"negative dimension -3"});
  expect_error(npy_bytes(f4_dict("(1099511627776, 1099511627776)")), {"is too large"});
  expect_error(npy_bytes(f4_dict("(4611686018427387904,)")), {"is too large"});  // 2^62 * 4
  expect_error(npy_bytes(f4_dict("(99999999999999999999,)")), {"is too large"});
  // Overflow is found whatever the position of a zero, as numpy does.
  expect_error(npy_bytes(f4_dict("(0, 1099511627776, 1099511627776)")), {"is too large"});
  expect_error(npy_bytes(f4_dict("(5)")), {"'shape' must be a tuple"});
  expect_error(npy_bytes(f4_dict("[2, 3]")), {"'shape' must be a tuple"});
  expect_error(npy_bytes(f4_dict("(2, '3')")), {"'shape' must be a tuple"});
}

TEST(Npy, RejectsMalformedHeaders) {
  expect_error(npy_bytes("{'fortran_order': False, 'shape': (1,), }"), {"missing key 'descr'"});
  expect_error(npy_bytes("{'descr': '<f4', 'shape': (1,), }"), {"missing key 'fortran_order'"});
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False}"), {"missing key 'shape'"});
  expect_error(npy_bytes("{}"), {"missing key"});
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
               {"unexpected key 'x'"});
  expect_error(npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False}"),
               {"duplicate key 'descr'"});
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }"),
               {"'fortran_order' must be True or False"});
  expect_error(npy_bytes("'descr': '<f4'"), {"malformed .npy header", "'{'"});
  expect_error(npy_bytes("{'descr': '<f4"), {"malformed .npy header", "closing quote"});
  expect_error(npy_bytes("{'descr' '<f4'}"), {"malformed .npy header", "':'"});
  expect_error(npy_bytes("{'descr': '<f4' 'shape': (1,)}"), {"malformed .npy header"});
  expect_error(npy_bytes(f4_dict("(1,)") + " x"), {"malformed .npy header", "padding"});
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "),
               {"malformed .npy header", "end of the header"});
  expect_error(npy_bytes("{'descr': eval('1'), }"), {"malformed .npy header"});
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (,), }"),
               {"malformed .npy header"});
  expect_error(npy_bytes("{'a': " + std::string(1000, '(') + "}"),
               {"malformed .npy header", "nested"});
}

TEST_F(NpyFileTest, RoundTripThroughFiles) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{9}, {4, 6}, {2, 3, 5}, {0, 3, 5}}) {
    SCOPED_TRACE(testing::PrintToString(shape));
    const fs::path path = dir_ / "t.npy";
    Tensor f = make_tensor<float>(shape);
    write_npy(path, f);
    expect_same(f, read_npy(path));
    EXPECT_EQ(read_file(path), serialize_npy(f));
    Tensor d = make_tensor<double>(shape);
    write_npy(path, d);
    expect_same(d, read_npy(path));
  }
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"t.npy"});
}

TEST_F(NpyFileTest, ReadErrorsNameTheFile) {
  const std::string missing = (dir_ / "missing.npy").string();
  try {
    read_npy(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot open '" + missing + "': No such file or directory");
  }
  try {
    read_npy(dir_.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Is a directory"), std::string::npos) << e.what();
  }

  const fs::path path = dir_ / "short.npy";
  const std::string full = serialize_npy(make_tensor<double>({2, 3}));
  write_file(path, full.substr(0, full.size() - 8));
  try {
    read_npy(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("truncated data in " + path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("expected 48"), std::string::npos) << message;
    EXPECT_NE(message.find("found 40"), std::string::npos) << message;
  }
  write_file(path, full + "x");
  EXPECT_THROW(read_npy(path), Error);
  // A lying header must be rejected from the file size, not by allocating.
  write_file(path, npy_bytes(f4_dict("(1099511627776, 1024)")));
  try {
    read_npy(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated data"), std::string::npos) << e.what();
  }
  write_file(path, "not numpy at all");
  EXPECT_THROW(read_npy(path), Error);
}

TEST_F(NpyFileTest, WriteToMissingDirectoryThrowsAndCreatesNothing) {
  const Tensor t = make_tensor<float>({3});
  try {
    write_npy("/nonexistent-dir/x.npy", t);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot write '/nonexistent-dir/x.npy': No such file or directory");
  }
  EXPECT_FALSE(fs::exists("/nonexistent-dir"));

  write_file(dir_ / "plain", "x");
  EXPECT_THROW(write_npy(dir_ / "plain" / "x.npy", t), Error);
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"plain"});
}

TEST_F(NpyFileTest, WriteToReadOnlyDirectoryThrowsAndCreatesNothing) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const fs::path locked = dir_ / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  try {
    write_npy(locked / "x.npy", make_tensor<float>({3}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
  fs::permissions(locked, fs::perms::owner_all);
  EXPECT_TRUE(list_dir(locked).empty());
}

TEST_F(NpyFileTest, FailedRenameRemovesTemporaryFile) {
  // A non-empty directory cannot be renamed over, so the last step fails.
  const fs::path target = dir_ / "target.npy";
  fs::create_directory(target);
  write_file(target / "keep", "x");
  try {
    write_npy(target, make_tensor<float>({3}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + target.string() + "'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"target.npy"});
  EXPECT_EQ(list_dir(target), std::vector<std::string>{"keep"});
}

TEST_F(NpyFileTest, OverwriteReplacesFileAtomically) {
  const fs::path path = dir_ / "w.npy";
  const fs::path old_link = dir_ / "old-link";
  const Tensor old_tensor = make_tensor<double>({4, 4});
  write_npy(path, old_tensor);
  const std::string old_bytes = read_file(path);
  // A hard link keeps the old inode: if write_npy truncated and rewrote the
  // file in place (not atomic), the link would show the new data.
  fs::create_hard_link(path, old_link);

  const Tensor new_tensor = make_tensor<float>({2, 5});
  write_npy(path, new_tensor);
  expect_same(new_tensor, read_npy(path));
  EXPECT_EQ(read_file(old_link), old_bytes);
  EXPECT_EQ(list_dir(dir_), (std::vector<std::string>{"old-link", "w.npy"}));
}

TEST_F(NpyFileTest, WrittenFilesFollowTheUmask) {
  // mkstemp-style 0600 files would be unreadable to others, unlike numpy's.
  const mode_t previous = umask(022);
  const fs::path path = dir_ / "m.npy";
  write_npy(path, make_tensor<float>({2}));
  umask(previous);
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
}

TEST_F(NpyFileTest, TensorWithoutStorageIsNotWritten) {
  // A default-constructed Tensor has shape () but no element to write.
  const fs::path path = dir_ / "empty.npy";
  EXPECT_THROW(write_npy(path, Tensor()), Error);
  EXPECT_THROW(serialize_npy(Tensor()), Error);
  EXPECT_TRUE(list_dir(dir_).empty());
}

}  // namespace
}  // namespace conv1d
