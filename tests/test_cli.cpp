// End-to-end tests of the `conv1d` program: they run the built binary on
// .npy files in a fresh temporary folder per test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <conv1d/layer.hpp>
#include <conv1d/npy.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
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

Tensor f32(std::vector<int64_t> shape, std::vector<float> values) {
  return Tensor::from_values<float>(std::move(shape), std::move(values));
}

Tensor filled(std::vector<int64_t> shape, double value, conv1d::DType dtype = conv1d::DType::f32) {
  Tensor tensor(dtype, std::move(shape));
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    if (dtype == conv1d::DType::f32) {
      tensor.data<float>()[i] = static_cast<float>(value);
    } else {
      tensor.data<double>()[i] = value;
    }
  }
  return tensor;
}

std::vector<double> values_of(const Tensor& tensor) {
  std::vector<double> values;
  for (int64_t i = 0; i < tensor.numel(); ++i) values.push_back(tensor.value(i));
  return values;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

class cli : public conv1d::testing::CliTest {
 protected:
  void save_bytes(const std::string& name, const std::string& bytes) {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  Tensor load(const std::string& name) const { return conv1d::read_npy(path(name).string()); }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
      names.insert(fs::relative(entry.path(), dir_).string());
    }
    return names;
  }

  // Exit status 2, exactly one line "conv1d: error: ..." on stderr holding
  // every word of `words` (case-insensitive), nothing on stdout, and no file
  // created or removed.
  void expect_error(const std::string& args, const std::vector<std::string>& words) {
    SCOPED_TRACE("conv1d " + args);
    const auto before = files();
    const Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    ASSERT_FALSE(result.err.empty());
    EXPECT_EQ(result.err.back(), '\n') << result.err;
    EXPECT_EQ(result.err.rfind("conv1d: error: ", 0), 0u) << result.err;
    for (const std::string& word : words) {
      EXPECT_NE(lower(result.err).find(lower(word)), std::string::npos)
          << "'" << word << "' not in: " << result.err;
    }
    EXPECT_EQ(files(), before) << "files were created or removed";
  }

  void expect_ok(const Result& result) const {
    EXPECT_EQ(result.status, 0) << result.err;
    EXPECT_EQ(result.err, "");
  }

  // The hand-computed case: input (1, 2, 4), weight (2, 2, 2), bias (2).
  //   out[0] = x0[l] + x0[l+1] + 2*x1[l] + 0.5 = 3.5, 7.5, 7.5
  //   out[1] = -x0[l+1] + x1[l] + x1[l+1] - 1  = -2, -3, -6
  void save_small_case() {
    save("x.npy", f32({1, 2, 4}, {1, 2, 3, 4, 0, 1, 0, -1}));
    save("w.npy", f32({2, 2, 2}, {1, 1, 2, 0, 0, -1, 1, 1}));
    save("b.npy", f32({2}, {0.5f, -1.0f}));
  }

  // Input (1, 4, 10) float32 and a matching weight (2, 4, 3), bias (2).
  void save_standard() {
    save("x.npy", filled({1, 4, 10}, 1.0));
    save("w.npy", filled({2, 4, 3}, 1.0));
    save("b.npy", filled({2}, 0.0));
  }
};

const std::string kApply = "apply --input x.npy --weight w.npy --output y.npy ";

// ---------------------------------------------------------------- positive

TEST_F(cli, ApplyMatchesHandComputedValues) {
  save_small_case();
  expect_ok(run(kApply + "--bias b.npy"));
  const Tensor y = load("y.npy");
  EXPECT_EQ(y.dtype(), conv1d::DType::f32);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(values_of(y), (std::vector<double>{3.5, 7.5, 7.5, -2, -3, -6}));
}

TEST_F(cli, ApplyStridedReflectPadding) {
  // xpad = [2, 1, 2, 3, 4, 3]; sums of 3 at stride 2: 5, 9.
  save("x.npy", f32({1, 1, 4}, {1, 2, 3, 4}));
  save("w.npy", f32({1, 1, 3}, {1, 1, 1}));
  expect_ok(run(kApply + "--padding 1 --padding-mode reflect --stride 2"));
  EXPECT_EQ(values_of(load("y.npy")), (std::vector<double>{5, 9}));
}

TEST_F(cli, ApplyFloat64AndAsymmetricPadding) {
  // xpad = [0, 0, 1, 2, 3, 0]; x[l] - x[l+1] at dilation 2: [0-1, 0-2, 1-3, 2-0].
  conv1d::write_npy(path("x.npy").string(),
                    Tensor::from_values<double>({1, 1, 3}, {1.0, 2.0, 3.0}));
  conv1d::write_npy(path("w.npy").string(), Tensor::from_values<double>({1, 1, 2}, {1.0, -1.0}));
  expect_ok(run(kApply + "--padding 2,1 --dilation 2"));
  const Tensor y = load("y.npy");
  EXPECT_EQ(y.dtype(), conv1d::DType::f64);
  EXPECT_EQ(values_of(y), (std::vector<double>{-1, -2, -2, 2}));
}

TEST_F(cli, UnbatchedInputGivesUnbatchedOutput) {
  save_small_case();
  save("x.npy", f32({2, 4}, {1, 2, 3, 4, 0, 1, 0, -1}));
  expect_ok(run(kApply + "--bias b.npy"));
  const Tensor y = load("y.npy");
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values_of(y), (std::vector<double>{3.5, 7.5, 7.5, -2, -3, -6}));
}

TEST_F(cli, ChannelsLastLayout) {
  save_small_case();
  save("x.npy", f32({1, 4, 2}, {1, 0, 2, 1, 3, 0, 4, -1}));  // (N, L, C)
  expect_ok(run(kApply + "--bias b.npy --layout nlc"));
  const Tensor y = load("y.npy");
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(values_of(y), (std::vector<double>{3.5, -2, 7.5, -3, 7.5, -6}));
}

TEST_F(cli, EmptyBatchGivesEmptyOutput) {
  save_small_case();
  save("x.npy", Tensor(conv1d::DType::f32, {0, 2, 4}));
  expect_ok(run(kApply + "--bias b.npy"));
  EXPECT_EQ(load("y.npy").shape(), (std::vector<int64_t>{0, 2, 3}));
}

TEST_F(cli, SeparableWithPointwiseWeight) {
  // Depthwise [1, 1] and [1, -1]: mid0 = 3, 5, 7; mid1 = -1, 1, 1.
  // Pointwise [1, 2] + 1: 2, 8, 10.
  save("x.npy", f32({1, 2, 4}, {1, 2, 3, 4, 0, 1, 0, -1}));
  save("w.npy", f32({2, 1, 2}, {1, 1, 1, -1}));
  save("pw.npy", f32({1, 2, 1}, {1, 2}));
  save("pb.npy", f32({1}, {1}));
  expect_ok(run(kApply + "--pointwise-weight pw.npy --pointwise-bias pb.npy"));
  const Tensor y = load("y.npy");
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(values_of(y), (std::vector<double>{2, 8, 10}));
}

TEST_F(cli, BackwardWritesThreeGradients) {
  save("x.npy", filled({2, 3, 10}, 1.0));
  save("w.npy", filled({4, 3, 3}, 1.0));
  save("b.npy", filled({4}, 0.25));
  save("gy.npy", filled({2, 4, 8}, 1.0));
  expect_ok(
      run("backward --input x.npy --weight w.npy --bias b.npy --grad-output gy.npy "
          "--grad-input gx.npy --grad-weight gw.npy --grad-bias gb.npy"));
  const Tensor gx = load("gx.npy");
  const Tensor gw = load("gw.npy");
  const Tensor gb = load("gb.npy");
  ASSERT_EQ(gx.shape(), (std::vector<int64_t>{2, 3, 10}));
  ASSERT_EQ(gw.shape(), (std::vector<int64_t>{4, 3, 3}));
  ASSERT_EQ(gb.shape(), (std::vector<int64_t>{4}));
  // Input sample i is seen by 4 output channels times the taps k with 0 <= i-k < 8.
  const std::vector<double> row{4, 8, 12, 12, 12, 12, 12, 12, 8, 4};
  for (int64_t i = 0; i < gx.numel(); ++i) EXPECT_EQ(gx.value(i), row[i % 10]) << i;
  for (int64_t i = 0; i < gw.numel(); ++i) EXPECT_EQ(gw.value(i), 16.0) << i;  // N * L_out
  for (int64_t i = 0; i < gb.numel(); ++i) EXPECT_EQ(gb.value(i), 16.0) << i;
}

TEST_F(cli, SeparableBackward) {
  // The separable case above with grad_output = 1: d mid0 = 1, d mid1 = 2.
  save("x.npy", f32({1, 2, 4}, {1, 2, 3, 4, 0, 1, 0, -1}));
  save("w.npy", f32({2, 1, 2}, {1, 1, 1, -1}));
  save("pw.npy", f32({1, 2, 1}, {1, 2}));
  save("pb.npy", f32({1}, {1}));
  save("gy.npy", filled({1, 1, 3}, 1.0));
  expect_ok(
      run("backward --input x.npy --weight w.npy --grad-output gy.npy "
          "--pointwise-weight pw.npy --pointwise-bias pb.npy --grad-input gx.npy "
          "--grad-weight gw.npy --grad-pointwise-weight gpw.npy "
          "--grad-pointwise-bias gpb.npy"));
  EXPECT_EQ(values_of(load("gx.npy")), (std::vector<double>{1, 2, 2, 1, 2, 0, 0, -2}));
  EXPECT_EQ(load("gw.npy").shape(), (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(values_of(load("gw.npy")), (std::vector<double>{6, 9, 2, 0}));
  EXPECT_EQ(load("gpw.npy").shape(), (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(values_of(load("gpw.npy")), (std::vector<double>{15, 1}));
  EXPECT_EQ(values_of(load("gpb.npy")), (std::vector<double>{3}));
}

TEST_F(cli, BackwardWritesOnlyWhatIsAsked) {
  save("x.npy", filled({3, 10}, 1.0));
  save("w.npy", filled({4, 3, 3}, 1.0));
  save("gy.npy", filled({4, 8}, 1.0));
  expect_ok(run("backward --input x.npy --weight w.npy --grad-output gy.npy --grad-weight gw.npy"));
  EXPECT_EQ(files(), (std::set<std::string>{"x.npy", "w.npy", "gy.npy", "gw.npy"}));
  EXPECT_EQ(load("gw.npy").shape(), (std::vector<int64_t>{4, 3, 3}));
}

TEST_F(cli, InfoDescribesTheProblem) {
  const Result result =
      run("info --input-shape 1,80,3000 --weight-shape 512,80,3 --padding 1 --threads 1");
  expect_ok(result);
  for (const std::string word :
       {"mb1ic80oc512iw3000kw3sw1dl1pl1pr1g1", "output shape", "(1, 512, 3000)", "737280000",
        "0.73728 GFLOP", "algorithms", "reference", "ok", "plan picks", "isa"}) {
    EXPECT_NE(result.out.find(word), std::string::npos) << word << " not in:\n" << result.out;
  }
}

TEST_F(cli, InfoSaysWhenALayerRunsOnFewerThreads) {
  const Result small = run("info --input-shape 1,8,16 --weight-shape 8,8,3 --threads 4");
  expect_ok(small);
  EXPECT_NE(small.out.find("4 (forward runs on 1: too little work to share out)"),
            std::string::npos)
      << small.out;
  const Result large = run("info --input-shape 1,512,3000 --weight-shape 512,512,3 --threads 4");
  expect_ok(large);
  EXPECT_EQ(large.out.find("forward runs on"), std::string::npos) << large.out;
}

TEST_F(cli, InfoUnbatchedNoBiasFloat64) {
  const Result result =
      run("info --input-shape 16,100 --weight-shape 16,1,5 --groups 16 --padding same --no-bias "
          "--dtype float64 --isa scalar");
  expect_ok(result);
  for (const std::string word :
       {"mb1ic16oc16iw100kw5sw1dl1pl2pr2g16_nobias_f64", "(16, 100)", "scalar"}) {
    EXPECT_NE(result.out.find(word), std::string::npos) << word << " not in:\n" << result.out;
  }
}

TEST_F(cli, InfoDescribesASeparableLayer) {
  const std::string layer =
      "info --input-shape 1,128,400 --weight-shape 128,1,9 --padding same "
      "--pointwise-weight-shape 256,128,1 --threads 1";
  const Result result = run(layer);
  expect_ok(result);
  // 2*128*400*9 + 2*256*400*128 multiply-adds' FLOPs.
  for (const std::string word :
       {"mb1ic128oc128iw400kw9sw1dl1pl4pr4g128", "mb1ic128oc256iw400kw1sw1dl1pl0pr0g1",
        "(1, 256, 400)", "27136000", "depthwise plan picks", "pointwise plan picks",
        "layer runs            fused"}) {
    EXPECT_NE(result.out.find(word), std::string::npos) << word << " not in:\n" << result.out;
  }
  const Result forced = run(layer + " --algorithm direct --no-pointwise-bias");
  expect_ok(forced);
  for (const std::string word :
       {"mb1ic128oc256iw400kw1sw1dl1pl0pr0g1_nobias", "layer runs            two-pass"}) {
    EXPECT_NE(forced.out.find(word), std::string::npos) << word << " not in:\n" << forced.out;
  }
}

TEST_F(cli, InfoRejectsMismatchedSeparableShapes) {
  const Result result =
      run("info --input-shape 1,128,400 --weight-shape 128,1,9 --pointwise-weight-shape 256,64,1");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("pointwise weight shape (256, 64, 1)"), std::string::npos)
      << result.err;
  EXPECT_EQ(run("info --input-shape 1,128,400 --weight-shape 128,1,9 --no-pointwise-bias").status,
            2);
}

// The suites shipped in bench/ parse and every layer passes the problem
// checks. `--algorithm fused` runs only separable rows: the plain layers are
// read and checked, not timed.
TEST_F(cli, ShippedSuitesAreValid) {
  for (const char* name : {"suite.csv", "separable.csv", "selection.csv", "random.csv",
                           "codecs.csv", "padding_modes.csv"}) {
    const std::string file = std::string(CONV1D_SOURCE_DIR) + "/bench/" + name;
    const Result result =
        run("bench --suite '" + file + "' --algorithm fused --budget-ms 1 --threads 1");
    expect_ok(result);
    EXPECT_EQ(result.err.find("line"), std::string::npos) << name << ": " << result.err;
  }
  save_bytes("bad.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "bad,1,4,8,64,3,1,same,1,3\n");
  EXPECT_EQ(run("bench --suite bad.csv --algorithm fused --budget-ms 1 --threads 1").status, 2);
}

TEST_F(cli, BenchWritesJson) {
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "tiny,2,4,8,64,3,1,same,1,1\n"
             "tiny_dw,1,8,8,32,5,2,2,1,8\n");
  const Result result = run("bench --suite suite.csv --budget-ms 5 --threads 1 --json out.json");
  expect_ok(result);
  EXPECT_NE(result.out.find("tiny_dw"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("GFLOP/s"), std::string::npos) << result.out;
  const auto json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["name"], "tiny");
  EXPECT_EQ(json[1]["name"], "tiny_dw");
  // The FMA peak is probed before and after the layers; the JSON rates them
  // against the higher of the two.
  const auto probe = [&](const std::string& prefix) {
    const size_t at = result.out.find(prefix);
    EXPECT_NE(at, std::string::npos) << result.out;
    return at == std::string::npos ? 0.0 : std::stod(result.out.substr(at + prefix.size()));
  };
  const double peak =
      std::max(probe("machine peak on 1 thread(s): "), probe("machine peak at the end: "));
  ASSERT_GT(peak, 0.0);
  for (const auto& row : json) {
    EXPECT_TRUE(row["algorithm"].is_string());
    EXPECT_EQ(row["threads"], 1);
    EXPECT_GT(row["ms"].get<double>(), 0.0);
    EXPECT_GT(row["gflops"].get<double>(), 0.0);
    // The printed peak is rounded to 0.05 GFLOP/s (a slow sanitizer build
    // probes ~10 GFLOP/s).
    const double expected = 100.0 * row["gflops"].get<double>();
    EXPECT_NEAR(row["percent_of_peak"].get<double>() * peak, expected,
                expected * (0.051 / peak + 1e-9));
    EXPECT_GT(row["plan_ms"].get<double>(), 0.0);
    EXPECT_GT(row["new_length_ms"].get<double>(), 0.0);
  }
  EXPECT_NE(result.out.find("new length ms"), std::string::npos) << result.out;
}

// --compare reads each worker's medians from its reply line: oneDNN's also
// times its kernels alone ("kernel-ms="), which gets columns of its own.
// Stand-in workers answer with fixed times; a garbled kernel time makes the
// reply unreadable (no number is taken from it).
TEST_F(cli, BenchComparesWithWorkers) {
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "tiny,1,4,8,64,3,1,same,1,1\n");
  save_bytes("torch.py",
             "import sys\n"
             "print('ready', flush=True)\n"
             "for line in sys.stdin:\n"
             "    print('3.0 torch-standin', flush=True)\n");
  const auto onednn_worker = [&](const std::string& reply) {
    save_bytes("onednn.sh",
               "#!/bin/sh\necho ready\nwhile read line; do echo '" + reply + "'; done\n");
    std::filesystem::permissions(path("onednn.sh"), std::filesystem::perms::owner_all);
  };
  ::setenv("CONV1D_TORCH_WORKER", path("torch.py").c_str(), 1);
  ::setenv("CONV1D_ONEDNN_WORKER", path("onednn.sh").c_str(), 1);
  const auto compare = [&] {
    const Result result =
        run("bench --suite suite.csv --budget-ms 5 --threads 1 --compare --json out.json");
    EXPECT_EQ(result.status, 0) << result.err;
    return std::make_pair(result, nlohmann::json::parse(read_text(path("out.json"))));
  };

  onednn_worker("2.5 standin kernel-ms=1.25");
  auto [result, json] = compare();
  expect_ok(result);
  EXPECT_NE(result.out.find("kernel ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("geometric mean speedup over onednn kernels alone"), std::string::npos)
      << result.out;
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["torch_ms"], 3.0);
  EXPECT_EQ(json[0]["onednn_ms"], 2.5);
  EXPECT_EQ(json[0]["onednn_kernel_ms"], 1.25);
  EXPECT_FALSE(json[0].contains("torch_kernel_ms"));

  onednn_worker("2.5 standin kernel-ms=fast");
  std::tie(result, json) = compare();
  EXPECT_TRUE(json[0]["onednn_ms"].is_null()) << json.dump();
  EXPECT_TRUE(json[0]["onednn_kernel_ms"].is_null()) << json.dump();
  EXPECT_EQ(json[0]["torch_ms"], 3.0);

  // A worker that never says it is ready is left out, with a note.
  save_bytes("onednn.sh", "#!/bin/sh\necho 'cannot load the library'\n");
  std::tie(result, json) = compare();
  EXPECT_NE(result.err.find("oneDNN comparison unavailable: the worker did not say it was ready"),
            std::string::npos)
      << result.err;
  EXPECT_FALSE(json[0].contains("onednn_ms")) << json.dump();
  EXPECT_EQ(json[0]["torch_ms"], 3.0);
  ::unsetenv("CONV1D_TORCH_WORKER");
  ::unsetenv("CONV1D_ONEDNN_WORKER");
}

// --backward times the gradients: the PyTorch worker is asked for the
// descriptor with "_backward" (this stand-in answers nothing else), oneDNN
// is not started, and separable rows are skipped with the reason.
TEST_F(cli, BenchTimesBackward) {
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels\n"
             "tiny,1,4,8,64,3,2,1,1,1\n"
             "sep,1,8,8,100,5,1,same,1,8,12\n");
  save_bytes("torch.py",
             "import sys\n"
             "print('ready', flush=True)\n"
             "for line in sys.stdin:\n"
             "    ok = line.split()[0].endswith('_backward')\n"
             "    print('3.0 torch-standin' if ok else 'unsupported forward', flush=True)\n");
  save_bytes("onednn.sh", "#!/bin/sh\necho ready\nwhile read line; do echo '1.0 standin'; done\n");
  std::filesystem::permissions(path("onednn.sh"), std::filesystem::perms::owner_all);
  ::setenv("CONV1D_TORCH_WORKER", path("torch.py").c_str(), 1);
  ::setenv("CONV1D_ONEDNN_WORKER", path("onednn.sh").c_str(), 1);
  const Result result =
      run("bench --backward --suite suite.csv --budget-ms 5 --threads 1 --compare --json out.json");
  ::unsetenv("CONV1D_TORCH_WORKER");
  ::unsetenv("CONV1D_ONEDNN_WORKER");
  EXPECT_EQ(result.status, 0) << result.err;
  EXPECT_NE(result.out.find("backward: grad_input, grad_weight and grad_bias"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("--backward times single convolutions"), std::string::npos)
      << result.out;
  EXPECT_NE(result.err.find("oneDNN is compared on forward only"), std::string::npos) << result.err;
  const auto json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["torch_ms"], 3.0);
  EXPECT_FALSE(json[0].contains("onednn_ms")) << json.dump();
  // Both gradients' multiply-adds: twice the forward's 2 * 8 * 4 * 3 * 32.
  const double seconds = json[0]["ms"].get<double>() * 1e-3;
  EXPECT_NEAR(json[0]["gflops"].get<double>() * 1e9 * seconds, 2.0 * 2 * 8 * 4 * 3 * 32, 1.0);
}

// The PyTorch worker times aten's convolution_backward for a "_backward"
// descriptor, padding modes included (a copy of the input padded first);
// a separable descriptor is not timed backward.
TEST_F(cli, TorchWorkerTimesBackward) {
  const std::string python = "/usr/bin/python3";
  const std::string worker = std::string(CONV1D_SOURCE_DIR) + "/bench/compare/torch_worker.py";
  if (!std::filesystem::exists(python) ||
      std::system((python + " -c 'import torch' 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "no PyTorch";
  }
  save_bytes("requests.txt",
             "mb2ic4oc6iw50kw3sw2dl1pl1pr1g1_backward 1 3\n"
             "mb1ic4oc4iw40kw5sw1dl2pl4pr4g2_reflect_nobias_backward 1 3\n"
             "mb1ic4oc4iw40kw5sw1dl2pl4pr4g4+mb1ic4oc8iw40kw1sw1dl1pl0pr0g1_backward 1 3\n");
  const std::string command = python + " " + worker + " < " + path("requests.txt").string() +
                              " > " + path("replies.txt").string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string replies = read_text(path("replies.txt"));
  std::istringstream lines(replies);
  std::vector<std::string> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(line);
  ASSERT_EQ(answers.size(), 4u) << replies;
  EXPECT_EQ(answers[0], "ready");
  for (size_t i = 1; i <= 2; ++i) {
    EXPECT_GT(std::strtod(answers[i].c_str(), nullptr), 0.0) << answers[i];
    EXPECT_NE(answers[i].find("torch-"), std::string::npos) << answers[i];
  }
  EXPECT_EQ(answers[3].rfind("unsupported", 0), 0u) << answers[3];
}

// A separable row (pointwise_out_channels set) runs fused by default, and
// in two passes with --algorithm two-pass, which skips the plain rows.
TEST_F(cli, BenchRunsSeparableLayers) {
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels\n"
             "plain,1,4,8,64,3,1,same,1,1\n"
             "sep,2,8,16,100,5,1,same,1,8,12\n");
  const Result fused = run("bench --suite suite.csv --budget-ms 5 --threads 1 --json out.json");
  expect_ok(fused);
  auto json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[1]["problem"],
            "mb2ic8oc16iw100kw5sw1dl1pl2pr2g8+mb2ic16oc12iw100kw1sw1dl1pl0pr0g1");
  EXPECT_EQ(json[1]["algorithm"], "fused");
  const Result two_pass =
      run("bench --suite suite.csv --budget-ms 5 --threads 1 --algorithm two-pass --json out.json");
  expect_ok(two_pass);
  EXPECT_NE(two_pass.out.find("not a separable layer"), std::string::npos) << two_pass.out;
  json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["algorithm"], "two-pass");
  save_bytes("bad.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels\n"
             "sep,1,8,16,100,5,1,same,1,1,12\n");
  expect_error("bench --suite bad.csv", {"line 2", "depthwise", "groups=1"});
}

// An optional padding_mode column after pointwise_out_channels; rows may
// stop before it, and an unknown mode names its line and column.
TEST_F(cli, BenchReadsPaddingModes) {
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels,padding_mode\n"
             "plain,1,4,8,64,3,1,same,1,1\n"
             "reflected,1,4,8,64,4,2,3,1,1,,reflect\n"
             "circular_dw,1,8,8,40,5,1,same,1,8,,circular\n"
             "replicated_sep,1,8,8,50,3,1,1,1,8,6,replicate\n"
             "zeros,1,4,8,64,3,1,same,1,1,,zeros\n");
  const Result result = run("bench --suite suite.csv --budget-ms 5 --threads 1 --json out.json");
  expect_ok(result);
  const auto json = nlohmann::json::parse(read_text(path("out.json")));
  ASSERT_EQ(json.size(), 5u);
  EXPECT_EQ(json[0]["problem"], "mb1ic4oc8iw64kw3sw1dl1pl1pr1g1");
  EXPECT_EQ(json[1]["problem"], "mb1ic4oc8iw64kw4sw2dl1pl3pr3g1_reflect");
  EXPECT_EQ(json[2]["problem"], "mb1ic8oc8iw40kw5sw1dl1pl2pr2g8_circular");
  EXPECT_EQ(json[3]["problem"],
            "mb1ic8oc8iw50kw3sw1dl1pl1pr1g8_replicate+mb1ic8oc6iw50kw1sw1dl1pl0pr0g1");
  EXPECT_EQ(json[4]["problem"], "mb1ic4oc8iw64kw3sw1dl1pl1pr1g1");
  std::filesystem::remove(path("out.json"));

  save_bytes("mode.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels,padding_mode\n"
             "plain,1,4,8,64,3,1,same,1,1\n"
             "bad,1,4,8,64,3,1,1,1,1,,mirror\n");
  expect_error("bench --suite mode.csv --json out.json",
               {"line 3", "padding_mode", "mirror", "reflect"});
  // PyTorch's rule for reflect holds in a suite too.
  save_bytes("wide.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups,pointwise_out_channels,padding_mode\n"
             "wide,1,4,8,8,3,1,8,1,1,,reflect\n");
  expect_error("bench --suite wide.csv --json out.json", {"line 2", "reflect"});
  // A header without the column takes no row that has it.
  save_bytes("short.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "reflected,1,4,8,64,3,1,1,1,1,,reflect\n");
  expect_error("bench --suite short.csv --json out.json", {"line 2", "10 to 10", "12"});
  EXPECT_FALSE(std::filesystem::exists(path("out.json")));
}

TEST_F(cli, HelpExitsZero) {
  const Result result = run("apply --help");
  EXPECT_EQ(result.status, 0);
  EXPECT_NE(result.out.find("--pointwise-weight"), std::string::npos);
}

// ------------------------------------------------ bad input: exit 2, no file

TEST_F(cli, GroupsThatDoNotDivideTheChannels) {
  save_standard();
  save("w6.npy", filled({6, 2, 3}, 1.0));
  expect_error("apply --input x.npy --weight w6.npy --output y.npy --groups 3",
               {"groups=3", "in_channels=4"});
  save("w3.npy", filled({3, 2, 3}, 1.0));
  expect_error("apply --input x.npy --weight w3.npy --output y.npy --groups 2",
               {"groups=2", "out_channels=3"});
}

TEST_F(cli, GroupsNotPositive) {
  save_standard();
  expect_error(kApply + "--groups 0", {"groups", "positive", "0"});
  expect_error(kApply + "--groups -2", {"groups", "positive", "-2"});
}

TEST_F(cli, StrideDilationKernelNotPositive) {
  save_standard();
  expect_error(kApply + "--stride 0", {"stride", "positive"});
  expect_error(kApply + "--stride -1", {"stride", "positive"});
  expect_error(kApply + "--dilation 0", {"dilation", "positive"});
  expect_error(kApply + "--dilation -3", {"dilation", "positive"});
  save("w.npy", Tensor(conv1d::DType::f32, {2, 4, 0}));
  expect_error(kApply, {"kernel_size", "positive", "0"});
}

TEST_F(cli, SameWithStride) {
  save_standard();
  expect_error(kApply + "--padding same --stride 2", {"same", "stride=2"});
}

TEST_F(cli, NegativePadding) {
  save_standard();
  expect_error(kApply + "--padding -1", {"padding", "non-negative"});
  expect_error(kApply + "--padding 1,-2", {"padding", "non-negative", "-2"});
}

TEST_F(cli, KernelWiderThanPaddedInput) {
  save("x.npy", filled({1, 4, 3}, 1.0));
  save("w.npy", filled({2, 4, 5}, 1.0));
  expect_error(kApply, {"kernel", "wider", "padded input"});
  save("w.npy", filled({2, 4, 2}, 1.0));
  expect_error(kApply + "--dilation 4", {"kernel", "wider", "padded input"});
}

TEST_F(cli, WeightOfTheWrongShape) {
  save_standard();
  save("w.npy", filled({8, 3, 3}, 1.0));
  expect_error(kApply + "--groups 2",
               {"weight shape (8, 3, 3)", "in_channels=4", "groups=2", "weight.shape[1] = 2"});
  save("w.npy", filled({2, 5, 3}, 1.0));
  expect_error(kApply, {"weight shape (2, 5, 3)", "weight.shape[1] = 4"});
  save("w.npy", filled({2, 12}, 1.0));
  expect_error(kApply, {"weight", "3-D", "(2, 12)"});
}

TEST_F(cli, WeightOrBiasOfTheWrongDtype) {
  save_standard();
  save("w.npy", filled({2, 4, 3}, 1.0, conv1d::DType::f64));
  expect_error(kApply, {"weight", "float64", "float32"});
  save_standard();
  save("b.npy", filled({2}, 1.0, conv1d::DType::f64));
  expect_error(kApply + "--bias b.npy", {"bias", "float64", "float32"});
}

TEST_F(cli, BiasOfTheWrongShape) {
  save_standard();
  save("b.npy", filled({3}, 1.0));
  expect_error(kApply + "--bias b.npy", {"bias shape (3,)", "out_channels=2", "(2,)"});
  save("b.npy", filled({1, 2}, 1.0));
  expect_error(kApply + "--bias b.npy", {"bias shape (1, 2)", "(2,)"});
}

TEST_F(cli, ReflectPaddingNotSmallerThanTheInput) {
  save("x.npy", filled({1, 4, 4}, 1.0));
  save("w.npy", filled({2, 4, 3}, 1.0));
  expect_error(kApply + "--padding 4 --padding-mode reflect", {"reflect", "input length 4"});
  expect_error(kApply + "--padding 5 --padding-mode circular", {"circular", "input length 4"});
}

TEST_F(cli, MalformedFiles) {
  save_standard();
  const std::string good = conv1d::serialize_npy(filled({1, 4, 10}, 1.0));
  save_bytes("x.npy", good.substr(0, good.size() - 4));
  expect_error(kApply, {"truncated", "x.npy"});
  save_bytes("x.npy", good.substr(0, 20));
  expect_error(kApply, {"truncated", "x.npy"});
  save_bytes("x.npy", "name,value\n1,2\n");
  expect_error(kApply, {"not a .npy file", "x.npy"});
  save_bytes("x.npy", "");
  expect_error(kApply, {"x.npy", "empty"});

  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string bytes = good;
    const auto at = bytes.find(from);
    EXPECT_NE(at, std::string::npos);
    return bytes.replace(at, from.size(), to);
  };
  save_bytes("x.npy", replaced("'<f4'", "'<i4'"));
  expect_error(kApply, {"dtype", "<i4", "x.npy"});
  save_bytes("x.npy", replaced("'<f4'", "'>f4'"));
  expect_error(kApply, {"big-endian", "x.npy"});
  save_bytes("x.npy", replaced("False", "True "));
  expect_error(kApply, {"fortran", "x.npy"});
}

TEST_F(cli, WrongRankFiles) {
  save_standard();
  save("x.npy", filled({1, 1, 4, 10}, 1.0));
  expect_error(kApply, {"input", "3-D", "4-D", "(1, 1, 4, 10)"});
  save("x.npy", filled({10}, 1.0));
  expect_error(kApply, {"input", "1-D"});
  save("x.npy", filled({}, 1.0));
  expect_error(kApply, {"input", "0-D"});
}

TEST_F(cli, MissingFile) {
  save_standard();
  expect_error("apply --input missing.npy --weight w.npy --output y.npy",
               {"cannot open", "missing.npy"});
  expect_error(kApply + "--bias nobias.npy", {"cannot open", "nobias.npy"});
}

TEST_F(cli, UnwritableOutputPath) {
  save_standard();
  expect_error("apply --input x.npy --weight w.npy --output nodir/y.npy",
               {"cannot write", "nodir/y.npy"});
  fs::create_directory(path("sub"));
  expect_error("apply --input x.npy --weight w.npy --output sub", {"cannot write", "sub"});
  expect_error("apply --input x.npy --weight w.npy --output ''", {"--output"});
}

TEST_F(cli, BackwardWritesNothingWhenOneOutputIsUnwritable) {
  save("x.npy", filled({2, 3, 10}, 1.0));
  save("w.npy", filled({4, 3, 3}, 1.0));
  save("b.npy", filled({4}, 1.0));
  save("gy.npy", filled({2, 4, 8}, 1.0));
  const std::string backward =
      "backward --input x.npy --weight w.npy --bias b.npy --grad-output gy.npy ";
  expect_error(backward + "--grad-input gx.npy --grad-weight nodir/gw.npy --grad-bias gb.npy",
               {"cannot write", "nodir/gw.npy"});
  expect_error(backward + "--grad-input gx.npy --grad-weight gx.npy",
               {"--grad-input", "--grad-weight", "same file"});
  expect_error(backward, {"nothing to write"});
  expect_error("backward --input x.npy --weight w.npy --grad-output gy.npy --grad-bias gb.npy",
               {"--grad-bias", "--bias"});
}

// The folder exists, so only the write itself can fail: /proc takes no new
// files, even from root.
TEST_F(cli, FailedWritesLeaveNothingBehind) {
  if (!fs::is_directory("/proc/self")) GTEST_SKIP() << "no /proc";
  save("x.npy", filled({2, 3, 10}, 1.0));
  save("w.npy", filled({4, 3, 3}, 1.0));
  save("b.npy", filled({4}, 1.0));
  save("gy.npy", filled({2, 4, 8}, 1.0));
  expect_error("apply --input x.npy --weight w.npy --output /proc/conv1d_y.npy",
               {"cannot", "/proc/conv1d_y.npy"});
  // gx.npy is written first and must be taken back when gw.npy fails.
  expect_error(
      "backward --input x.npy --weight w.npy --bias b.npy --grad-output gy.npy "
      "--grad-input gx.npy --grad-weight /proc/conv1d_gw.npy --grad-bias gb.npy",
      {"cannot write '/proc/conv1d_gw.npy'"});
  EXPECT_FALSE(fs::exists("/proc/conv1d_y.npy"));
}

TEST_F(cli, BackwardGradOutputOfTheWrongShapeOrDtype) {
  save("x.npy", filled({2, 3, 10}, 1.0));
  save("w.npy", filled({4, 3, 3}, 1.0));
  save("gy.npy", filled({2, 4, 9}, 1.0));
  const std::string backward =
      "backward --input x.npy --weight w.npy --grad-output gy.npy --grad-input gx.npy";
  expect_error(backward, {"grad-output shape (2, 4, 9)", "(2, 4, 8)"});
  save("gy.npy", filled({2, 4, 8}, 1.0, conv1d::DType::f64));
  expect_error(backward, {"grad-output", "float64", "float32"});
}

TEST_F(cli, SeparableShapeMismatch) {
  save("x.npy", filled({1, 2, 8}, 1.0));
  save("w.npy", filled({2, 2, 3}, 1.0));
  save("pw.npy", filled({3, 2, 1}, 1.0));
  const std::string separable = kApply + "--pointwise-weight pw.npy";
  expect_error(separable, {"depthwise weight shape (2, 2, 3)", "in_channels=2"});
  save("w.npy", filled({4, 1, 3}, 1.0));  // depth multiplier 2
  expect_error(separable, {"pointwise weight shape (3, 2, 1)", "(3, 4, 1)"});
  save("pw.npy", filled({3, 4, 1}, 1.0));
  expect_error(separable + " --groups 1", {"--groups=1", "in_channels=2"});
  save("pb.npy", filled({4}, 1.0));
  expect_error(separable + " --pointwise-bias pb.npy", {"pointwise bias shape (4,)", "(3,)"});
  expect_error(kApply + "--pointwise-bias pb.npy", {"--pointwise-bias", "--pointwise-weight"});
}

TEST_F(cli, SizesWhoseProductsOverflow) {
  expect_error("info --input-shape 9223372036854775807,2,2 --weight-shape 4,2,3",
               {"too large", "overflows"});
  expect_error("info --input-shape 1,2,10 --weight-shape 4611686018427387904,2,3",
               {"too large", "overflows"});
  expect_error("info --input-shape 1,2,10 --weight-shape 4,2,3 --padding 9223372036854775807",
               {"too large", "overflows"});
  expect_error("info --input-shape 1,2,10 --weight-shape 4,2,3 --dilation 4611686018427387904",
               {"too large", "overflows"});
  expect_error("info --input-shape 1,2,99999999999999999999 --weight-shape 4,2,3",
               {"--input-shape", "64-bit"});
}

TEST_F(cli, UnknownFlagsAndValues) {
  save_standard();
  expect_error(kApply + "--frobnicate 3", {"--frobnicate"});
  expect_error("frobnicate --input x.npy", {"unknown subcommand", "frobnicate"});
  expect_error("", {"subcommand"});
  expect_error("apply --input x.npy --weight w.npy", {"--output", "required"});
  expect_error(kApply + "--padding-mode mirror", {"padding_mode", "mirror"});
  expect_error(kApply + "--layout lnc", {"layout", "lnc"});
  expect_error(kApply + "--padding wide", {"padding", "wide"});
  expect_error(kApply + "--stride two", {"--stride", "two"});
  expect_error(kApply + "--stride 1.5", {"--stride", "1.5"});
  expect_error(kApply + "--dilation ''", {"--dilation", "integer"});
  expect_error(kApply + "--threads -1", {"--threads", "-1"});
  expect_error(kApply + "--algorithm nonesuch", {"algorithm", "nonesuch"});
  expect_error(kApply + "--isa avx9000", {"isa", "avx9000"});
  expect_error(kApply + "--stride 1 --stride 2", {"--stride"});
  expect_error("info --input-shape 1,4,10 --weight-shape 2,4,3 --dtype float16",
               {"dtype", "float16"});
  expect_error("info --input-shape 1,4,-10 --weight-shape 2,4,3", {"--input-shape", "-10"});
  expect_error("info --input-shape 1,,10 --weight-shape 2,4,3", {"--input-shape", "integer"});
  expect_error("info --input-shape 1,4,10 --weight-shape 2,4", {"weight", "3-D"});
}

TEST_F(cli, BenchBadInput) {
  save_bytes("bad_header.csv", "name,batch\nx,1\n");
  expect_error("bench --suite bad_header.csv --json out.json", {"header", "bad_header.csv"});
  save_bytes("bad_row.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "ok,1,4,4,16,3,1,1,1,1\n"
             "bad,1,4,4,16,3,1,1,1,3\n");
  expect_error("bench --suite bad_row.csv --json out.json", {"line 3", "groups=3"});
  expect_error("bench --suite missing.csv", {"cannot open", "missing.csv"});
  save_bytes("suite.csv",
             "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,"
             "groups\n"
             "ok,1,4,4,16,3,1,1,1,1\n");
  expect_error("bench --suite suite.csv --json nodir/out.json", {"--json", "nodir/out.json"});
  expect_error("bench --suite suite.csv --budget-ms -1", {"--budget-ms"});
  expect_error("bench --suite suite.csv --algorithm nonesuch", {"nonesuch"});
}

}  // namespace
