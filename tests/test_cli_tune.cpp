// End-to-end tests of tune mode in the `conv1d` program: --tune and
// --tune-cache on bench, apply and info.
#include <gtest/gtest.h>

#include <algorithm>
#include <conv1d/layer.hpp>
#include <conv1d/npy.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli_testing.hpp"

#ifndef CONV1D_CLI
#error "CONV1D_CLI must name the conv1d program"
#endif

namespace {

namespace fs = std::filesystem;
using conv1d::Tensor;
using conv1d::testing::read_text;

// A depthwise layer (two algorithms can run it) and a standard one (only
// direct can, besides the reference).
const std::string kSuite =
    "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,groups\n"
    "tiny_dw,1,8,8,64,5,1,2,1,8\n"
    // Only direct runs it: the dilated kernel spans more than fft's longest
    // transform, and 17 input channels are more than depthwise takes.
    "single,1,17,2,1100000,2,1,0,1050000,1\n";
const std::string kTinyDw = "mb1ic8oc8iw64kw5sw1dl1pl2pr2g8";
const std::string kBench = "bench --suite suite.csv --budget-ms 1 --threads 1 --isa scalar ";

class cli_tune : public conv1d::testing::CliTest {
 protected:
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  void expect_ok(const Result& result) const {
    EXPECT_EQ(result.status, 0) << result.err;
    EXPECT_EQ(result.err, "");
  }

  // Exit status 2, one line on stderr holding every word, no file created.
  void expect_error(const std::string& args, const std::vector<std::string>& words) const {
    SCOPED_TRACE("conv1d " + args);
    const auto before = files();
    const Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_EQ(result.err.rfind("conv1d: error: ", 0), 0u) << result.err;
    for (const std::string& word : words) {
      EXPECT_NE(result.err.find(word), std::string::npos)
          << "'" << word << "' not in " << result.err;
    }
    EXPECT_EQ(files(), before);
  }

  // The line of the bench table for one layer.
  static std::string row_of(const std::string& out, const std::string& name) {
    const size_t start = out.find("\n" + name + " ");
    if (start == std::string::npos) return "";
    return out.substr(start + 1, out.find('\n', start + 1) - start - 1);
  }
};

TEST_F(cli_tune, BenchTunesAndReusesTheCacheFile) {
  write("suite.csv", kSuite);
  const std::string args = kBench + "--tune --tune-cache cache.txt --json out.json";
  const Result first = run(args);
  expect_ok(first);
  for (const std::string column : {"algorithm", "heuristic", "tune ms", "plan ms", "weights ms"}) {
    EXPECT_NE(first.out.find(column), std::string::npos) << column << " not in\n" << first.out;
  }
  const std::string cache = read_text(path("cache.txt"));
  EXPECT_NE(cache.find(kTinyDw + " scalar 1 "), std::string::npos) << cache;
  auto json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["selection"], "tuned");
  EXPECT_EQ(json[1]["selection"], "tuned (only candidate)");
  for (const auto& row : json) {
    EXPECT_TRUE(row["heuristic_algorithm"].is_string());
    EXPECT_GE(row["tune_ms"].get<double>(), 0.0);
    EXPECT_GT(row["plan_ms"].get<double>(), 0.0);
    EXPECT_GE(row["weights_ms"].get<double>(), 0.0);
    EXPECT_GT(row["new_length_ms"].get<double>(), 0.0);
  }

  // A new process reads the choice back instead of timing again.
  expect_ok(run(args));
  json = nlohmann::json::parse(read_text(path("out.json")));
  EXPECT_EQ(json[0]["selection"], "tuned (cached)");
  EXPECT_EQ(read_text(path("cache.txt")), cache);
}

TEST_F(cli_tune, BenchShowsTheHeuristicWhenTheChoiceDiffers) {
  write("suite.csv", kSuite);
  // Timing never picks the reference: only the file can.
  write("cache.txt", kTinyDw + " scalar 1 reference 1.0\n");
  const Result result = run(kBench + "--tune --tune-cache cache.txt --json out.json");
  expect_ok(result);
  const std::string row = row_of(result.out, "tiny_dw");
  const auto json = nlohmann::json::parse(read_text(path("out.json")));
  EXPECT_EQ(json[0]["algorithm"], "reference");
  EXPECT_EQ(json[0]["selection"], "tuned (cached)");
  const std::string heuristic = json[0]["heuristic_algorithm"];
  EXPECT_NE(heuristic, "reference");
  EXPECT_NE(row.find("reference  " + heuristic), std::string::npos) << result.out;
  EXPECT_NE(row_of(result.out, "single").find("same"), std::string::npos) << result.out;
  // Without --tune the table has no tuning columns but still the plan times.
  const Result plain = run(kBench);
  expect_ok(plain);
  EXPECT_EQ(plain.out.find("heuristic"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("plan ms"), std::string::npos) << plain.out;
}

TEST_F(cli_tune, ApplyAndInfoWithTune) {
  Tensor x(conv1d::DType::f32, {1, 8, 64});
  Tensor w(conv1d::DType::f32, {8, 1, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 5 - 2);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = static_cast<float>(i % 3 - 1);
  save("x.npy", x);
  save("w.npy", w);
  const std::string apply = "apply --input x.npy --weight w.npy --groups 8 --padding 2 ";
  expect_ok(run(apply + "--output plain.npy"));
  expect_ok(run(apply + "--output tuned.npy --tune --tune-cache cache.txt"));
  const Tensor plain = conv1d::read_npy(path("plain.npy").string());
  const Tensor tuned = conv1d::read_npy(path("tuned.npy").string());
  ASSERT_EQ(tuned.shape(), plain.shape());
  for (int64_t i = 0; i < plain.numel(); ++i) ASSERT_EQ(tuned.value(i), plain.value(i)) << i;
  EXPECT_NE(read_text(path("cache.txt")).find(kTinyDw), std::string::npos);

  const Result info =
      run("info --input-shape 1,8,64 --weight-shape 8,1,5 --groups 8 --padding 2 --tune "
          "--tune-cache cache.txt");
  expect_ok(info);
  EXPECT_NE(info.out.find("tuned"), std::string::npos) << info.out;
  const Result heuristic = run("info --input-shape 1,8,64 --weight-shape 8,1,5 --groups 8");
  EXPECT_NE(heuristic.out.find("heuristic"), std::string::npos) << heuristic.out;
}

TEST_F(cli_tune, BadTuneOptions) {
  write("suite.csv", kSuite);
  expect_error(kBench + "--tune-cache cache.txt", {"--tune-cache", "--tune"});
  expect_error(kBench + "--tune --tune-cache nodir/cache.txt", {"nodir/cache.txt"});
  write("bad.txt", "# comment\n" + kTinyDw + " scalar 1 direct\n");
  expect_error(kBench + "--tune --tune-cache bad.txt", {"bad.txt", "line 2"});
  save("x.npy", Tensor(conv1d::DType::f32, {1, 8, 64}));
  save("w.npy", Tensor(conv1d::DType::f32, {8, 1, 5}));
  expect_error(
      "apply --input x.npy --weight w.npy --groups 8 --output y.npy --tune --tune-cache "
      "nodir/cache.txt",
      {"cannot write tune cache", "nodir/cache.txt"});
}

}  // namespace
