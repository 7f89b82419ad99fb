// End-to-end tests of `conv1d stream`: the streamed output file equals the
// one `conv1d apply` writes, byte for byte, for every chunk schedule; bad
// input is one line on stderr, exit 2 and no file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <conv1d/layer.hpp>
#include <conv1d/npy.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_testing.hpp"
#include "tensor_testing.hpp"

#ifndef CONV1D_CLI
#error "CONV1D_CLI must name the conv1d program"
#endif

namespace {

using conv1d::testing::random_tensor;
using conv1d::testing::read_text;

namespace fs = std::filesystem;
using conv1d::DType;
using conv1d::Tensor;

class cli_stream : public conv1d::testing::CliTest {
 protected:
  std::string bytes(const std::string& name) const { return read_text(dir_ / name); }
  bool exists(const std::string& name) const { return fs::exists(dir_ / name); }

  // `apply` and `stream` with the same flags write identical files.
  void expect_same_as_apply(const std::string& flags, const std::vector<std::string>& chunks) {
    const Result applied = run("apply " + flags + " --output applied.npy");
    ASSERT_EQ(applied.status, 0) << applied.err;
    for (const std::string& chunk : chunks) {
      SCOPED_TRACE(flags + " --chunk " + chunk);
      fs::remove(dir_ / "streamed.npy");
      const Result streamed = run("stream " + flags + " --output streamed.npy --chunk " + chunk);
      ASSERT_EQ(streamed.status, 0) << streamed.err;
      EXPECT_EQ(streamed.err, "");
      EXPECT_EQ(bytes("streamed.npy"), bytes("applied.npy"));
    }
  }

  void expect_error(const std::string& args, const std::string& word) {
    SCOPED_TRACE(args);
    const Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_EQ(result.err.rfind("conv1d: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find(word), std::string::npos) << result.err;
    EXPECT_FALSE(exists("y.npy"));
  }
};

const std::vector<std::string> kChunks = {"1", "7", "1000", "random", "random:3 --seed 9"};

TEST_F(cli_stream, CausalDilatedMatchesApply) {
  save("x.npy", random_tensor(DType::f32, {2, 3, 200}, 1));
  save("w.npy", random_tensor(DType::f32, {4, 3, 3}, 2));
  save("b.npy", random_tensor(DType::f32, {4}, 3));
  expect_same_as_apply(
      "--input x.npy --weight w.npy --bias b.npy --padding causal --dilation 4 --algorithm "
      "reference",
      kChunks);
}

TEST_F(cli_stream, SameReflectAndStridesMatchApply) {
  save("x.npy", random_tensor(DType::f64, {1, 4, 150}, 4));
  save("w.npy", random_tensor(DType::f64, {6, 2, 5}, 5));
  expect_same_as_apply(
      "--input x.npy --weight w.npy --groups 2 --padding same --padding-mode reflect --algorithm "
      "reference",
      kChunks);
  std::vector<std::string> small_blocks;
  for (const std::string& chunk : kChunks) small_blocks.push_back(chunk + " --block 4");
  expect_same_as_apply(
      "--input x.npy --weight w.npy --groups 2 --padding 3,2 --padding-mode replicate --stride 3 "
      "--algorithm reference",
      small_blocks);
}

TEST_F(cli_stream, SeparableChannelsLastUnbatchedMatchesApply) {
  save("x.npy", random_tensor(DType::f32, {120, 3}, 6));  // (L, C)
  save("dw.npy", random_tensor(DType::f32, {6, 1, 4}, 7));
  save("pw.npy", random_tensor(DType::f32, {5, 6, 1}, 8));
  save("pb.npy", random_tensor(DType::f32, {5}, 9));
  expect_same_as_apply(
      "--input x.npy --weight dw.npy --pointwise-weight pw.npy --pointwise-bias pb.npy --layout "
      "nlc --padding 0,3 --padding-mode circular --stride 2 --algorithm reference",
      kChunks);
}

TEST_F(cli_stream, DefaultAlgorithmWithinTolerance) {
  save("x.npy", random_tensor(DType::f32, {1, 8, 300}, 10));
  save("w.npy", random_tensor(DType::f32, {16, 8, 2}, 11));
  ASSERT_EQ(run("apply --input x.npy --weight w.npy --padding causal --dilation 16 --output "
                "applied.npy")
                .status,
            0);
  ASSERT_EQ(run("stream --input x.npy --weight w.npy --padding causal --dilation 16 --output "
                "streamed.npy --chunk random:10 --seed 3")
                .status,
            0);
  const Tensor applied = conv1d::read_npy((dir_ / "applied.npy").string());
  const Tensor streamed = conv1d::read_npy((dir_ / "streamed.npy").string());
  ASSERT_EQ(streamed.shape(), applied.shape());
  double error = 0, scale = 0;
  for (int64_t i = 0; i < applied.numel(); ++i) {
    error = std::max(error, std::abs(streamed.value(i) - applied.value(i)));
    scale = std::max(scale, std::abs(applied.value(i)));
  }
  EXPECT_LE(error, 1e-6 * scale);
}

TEST_F(cli_stream, BadInputIsOneLineAndNoFile) {
  save("x.npy", random_tensor(DType::f32, {1, 3, 20}, 12));
  save("w.npy", random_tensor(DType::f32, {2, 3, 3}, 13));
  const std::string base = "stream --input x.npy --weight w.npy --output y.npy ";
  expect_error(base + "--chunk 0", "--chunk");
  expect_error(base + "--chunk -3", "--chunk");
  expect_error(base + "--chunk often", "--chunk");
  expect_error(base + "--chunk random:x", "--chunk");
  expect_error(base + "--chunk 4 --seed x", "--seed");
  expect_error(base + "--chunk 4 --block 0", "--block");
  expect_error(base + "--chunk 4 --padding 1 --padding-mode circular", "circular");
  expect_error(base + "--chunk 4 --groups 2", "groups");
  expect_error(base + "--chunk 4 --padding 25 --padding-mode reflect", "reflect");
  expect_error("stream --input x.npy --weight missing.npy --output y.npy --chunk 4", "missing");
  expect_error("stream --input x.npy --weight w.npy --output nowhere/y.npy --chunk 4", "nowhere");
  const Result no_chunk = run("stream --input x.npy --weight w.npy --output y.npy");
  EXPECT_EQ(no_chunk.status, 2);
  EXPECT_FALSE(exists("y.npy"));
}

}  // namespace
