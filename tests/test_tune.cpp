// Tune mode: choosing by timing, the in-memory cache and the cache file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <conv1d/conv1d.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "conv_testing.hpp"
#include "plan/registry.hpp"
#include "plan/tune.hpp"
#include "tensor_testing.hpp"

namespace conv1d {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::Workload;

// Two algorithms (direct, depthwise) support it, so there is a choice.
Problem depthwise_problem() { return Problem::parse("mb2ic16oc16iw300kw5sw1dl1pl2pr2g16"); }
Problem standard_problem() { return Problem::parse("mb1ic12oc8iw100kw3sw1dl1pl1pr1g1"); }
// Only direct (and the reference) support it: the dilated kernel spans more
// than fft's longest transform, and a group has more input channels (17)
// than depthwise takes.
Problem single_candidate_problem() {
  return Problem::parse("mb1ic17oc2iw1100000kw2sw1dl1050000pl0pr0g1");
}

PlanOptions tuned(int threads, std::string cache = "") {
  PlanOptions options;
  options.tune = true;
  options.threads = threads;
  options.tune_cache = std::move(cache);
  return options;
}

std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool supports(const Problem& problem, std::string_view algorithm) {
  for (const AlgorithmStatus& status : algorithm_statuses(problem)) {
    if (status.name == algorithm) return status.supported;
  }
  return false;
}

template <class T>
int64_t mismatches_against_reference(const Problem& problem, const PlanOptions& options) {
  std::mt19937_64 rng(7);
  const Workload<T> work(problem, rng);
  Plan plan(problem, options);
  plan.set_weights(work.weight.data(), work.bias_data());
  auto output = work.output();
  plan.forward(work.input.cview(), output.view);
  if (detail::find_algorithm(plan.algorithm())->exactness == detail::Exactness::exact) {
    return testing::count_mismatches<T>(output.cview(), work.expected.cview());
  }
  // On a noisy machine timing may pick fft: within its tolerance, far
  // tighter than any indexing error (test_algorithms checks the bound).
  int64_t mismatches = 0;
  const auto actual = output.cview();
  const auto expected = work.expected.cview();
  for (int64_t n = 0; n < problem.batch; ++n) {
    for (int64_t c = 0; c < problem.out_channels; ++c) {
      for (int64_t l = 0; l < problem.out_length(); ++l) {
        const double want = static_cast<double>(expected.at(n, c, l));
        const double got = static_cast<double>(actual.at(n, c, l));
        if (std::abs(got - want) > 1e-4 * std::max(1.0, std::abs(want))) ++mismatches;
      }
    }
  }
  return mismatches;
}

// Every test starts as a new process would: nothing tuned, no file read.
class Tune : public ::testing::Test {
 protected:
  void SetUp() override {
    detail::clear_tune_cache();
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("conv1d_tune_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    detail::clear_tune_cache();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // Only the named files: no temporary left behind.
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }
  // "problem isa threads algorithm median_ms" for this machine's ISA.
  static std::string entry(const Problem& problem, int threads, const std::string& algorithm) {
    return problem.to_string() + " " + active_isa() + " " + std::to_string(threads) + " " +
           algorithm + " 0.5\n";
  }

  fs::path dir_;
};

TEST_F(Tune, PicksASupportedAlgorithmThatMatchesTheReference) {
  for (const Problem& base : {depthwise_problem(), standard_problem()}) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      for (const Layout layout : {Layout::ncl, Layout::nlc}) {
        Problem problem = base;
        problem.dtype = dtype;
        problem.layout = layout;
        SCOPED_TRACE(problem.to_string());
        const Plan plan(problem, tuned(1));
        EXPECT_TRUE(supports(problem, plan.algorithm())) << plan.algorithm();
        EXPECT_NE(plan.algorithm(), "reference");
        EXPECT_TRUE(plan.selection() == "tuned" || plan.selection() == "tuned (only candidate)")
            << plan.selection();
        EXPECT_EQ(dtype == DType::f32 ? mismatches_against_reference<float>(problem, tuned(2))
                                      : mismatches_against_reference<double>(problem, tuned(2)),
                  0);
      }
    }
  }
}

// A candidate's first call may pay one-time costs (an FFT plan's first
// call took 8x its median): a slow warm-up alone must not drop it.
TEST(TuneTiming, SlowWarmUpIsRunAgainBeforeDroppingACandidate) {
  int calls = 0;
  const auto first_call_slow = [&] { return ++calls == 1 ? 1.0 : 1e-3; };
  const auto seconds = detail::time_candidate(first_call_slow, 2e-3);
  ASSERT_TRUE(seconds.has_value());
  EXPECT_DOUBLE_EQ(*seconds, 1e-3);
  EXPECT_GE(calls, 4);  // the warm-up, then at least three timed runs
}

TEST(TuneTiming, HopelessCandidateStopsAfterTwoRuns) {
  int calls = 0;
  const auto slow = [&] {
    ++calls;
    return 1.0;
  };
  EXPECT_FALSE(detail::time_candidate(slow, 2e-3).has_value());
  EXPECT_EQ(calls, 2);
}

TEST(TuneTiming, MedianOfTheRunsAfterTheWarmUp) {
  int calls = 0;
  // Warm-up 5 s, then 2, 1, 3, 2, 1, 3, ... ms: the median is 2 ms.
  const auto runs = [&] {
    return ++calls == 1 ? 5.0 : 1e-3 * static_cast<double>(1 + (calls * 2) % 3);
  };
  const auto seconds = detail::time_candidate(runs, std::numeric_limits<double>::infinity());
  ASSERT_TRUE(seconds.has_value());
  EXPECT_DOUBLE_EQ(*seconds, 2e-3);
}

TEST_F(Tune, OneCandidateNeedsNoTiming) {
  const Plan plan(single_candidate_problem(), tuned(1));
  EXPECT_EQ(plan.selection(), "tuned (only candidate)");
  EXPECT_EQ(plan.algorithm(), "direct");
  EXPECT_TRUE(supports(depthwise_problem(), "depthwise"));  // the other problem has a choice
}

TEST_F(Tune, SecondPlanUsesTheMemoryCache) {
  const Problem problem = depthwise_problem();
  const Plan first(problem, tuned(1));
  EXPECT_EQ(first.selection(), "tuned");
  const Plan second(problem, tuned(1));
  EXPECT_EQ(second.selection(), "tuned (cached)");
  EXPECT_EQ(second.algorithm(), first.algorithm());
  // Another thread count is another entry.
  EXPECT_EQ(Plan(problem, tuned(2)).selection(), "tuned");
  EXPECT_EQ(Plan(problem, tuned(2)).selection(), "tuned (cached)");
  detail::clear_tune_cache();
  EXPECT_EQ(Plan(problem, tuned(1)).selection(), "tuned");
}

TEST_F(Tune, ConcurrentPlansTuneOnce) {
  const Problem problem = depthwise_problem();
  std::vector<std::string> selections(4), algorithms(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < selections.size(); ++i) {
    threads.emplace_back([&, i] {
      const Plan plan(problem, tuned(1));
      selections[i] = plan.selection();
      algorithms[i] = plan.algorithm();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(std::count(selections.begin(), selections.end(), "tuned"), 1);
  EXPECT_EQ(std::count(selections.begin(), selections.end(), "tuned (cached)"), 3);
  for (const std::string& algorithm : algorithms) EXPECT_EQ(algorithm, algorithms.front());
}

TEST_F(Tune, HeuristicAndForcedSelection) {
  const Problem problem = depthwise_problem();
  const Plan heuristic(problem, {"auto", 1});
  EXPECT_EQ(heuristic.selection(), "heuristic");
  PlanOptions forced = tuned(1, path("cache.txt"));
  forced.algorithm = "reference";
  const Plan plan(problem, forced);
  EXPECT_EQ(plan.algorithm(), "reference");
  EXPECT_EQ(plan.selection(), "forced");
  EXPECT_TRUE(files().empty()) << "a forced plan neither tunes nor writes the cache";
  // tune_cache without tune is not used.
  PlanOptions untuned;
  untuned.tune_cache = path("cache.txt");
  EXPECT_EQ(Plan(problem, untuned).selection(), "heuristic");
  EXPECT_TRUE(files().empty());
  // Nothing to time in an empty batch.
  Problem empty = problem;
  empty.batch = 0;
  EXPECT_EQ(Plan(empty, tuned(1)).selection(), "heuristic");
}

TEST_F(Tune, CacheFileIsReadWithoutTiming) {
  const Problem problem = depthwise_problem();
  // The reference is never the fastest: only the file can make it the choice.
  write_text(path("cache.txt"), "# written by the test\n\n" + entry(problem, 1, "reference"));
  const Plan plan(problem, tuned(1, path("cache.txt")));
  EXPECT_EQ(plan.algorithm(), "reference");
  EXPECT_EQ(plan.selection(), "tuned (cached)");
  EXPECT_EQ(mismatches_against_reference<float>(problem, tuned(1, path("cache.txt"))), 0);
  // Another thread count, or no file: not that entry.
  EXPECT_NE(Plan(problem, tuned(2, path("cache.txt"))).algorithm(), "reference");
  EXPECT_NE(Plan(problem, tuned(1)).algorithm(), "reference");
}

TEST_F(Tune, RoundTripThroughTheFile) {
  const Problem problem = depthwise_problem();
  const std::string cache = path("cache.txt");
  std::string chosen;
  {
    const Plan plan(problem, tuned(1, cache));
    EXPECT_EQ(plan.selection(), "tuned");
    chosen = plan.algorithm();
  }
  const std::string text = read_text(cache);
  EXPECT_EQ(text.rfind("# conv1d tune cache", 0), 0u) << text;
  EXPECT_NE(text.find(problem.to_string() + " " + active_isa() + " 1 " + chosen + " "),
            std::string::npos)
      << text;
  EXPECT_EQ(files(), std::vector<std::string>{"cache.txt"});

  detail::clear_tune_cache();  // as a new process
  const Plan again(problem, tuned(1, cache));
  EXPECT_EQ(again.selection(), "tuned (cached)");
  EXPECT_EQ(again.algorithm(), chosen);

  // A new entry keeps the old ones; a choice from memory is added to a new file.
  Problem other = problem;
  other.length = 123;
  EXPECT_EQ(Plan(other, tuned(1, cache)).selection(), "tuned");
  const std::string both = read_text(cache);
  EXPECT_NE(both.find(problem.to_string()), std::string::npos) << both;
  EXPECT_NE(both.find(other.to_string()), std::string::npos) << both;
  const std::string copy = path("copy.txt");
  EXPECT_EQ(Plan(other, tuned(1, copy)).selection(), "tuned (cached)");
  EXPECT_NE(read_text(copy).find(other.to_string()), std::string::npos);
}

TEST_F(Tune, StaleEntriesAreTunedAgain) {
  const Problem problem = depthwise_problem();
  Problem elsewhere = problem;
  elsewhere.length = 77;
  const std::string cache = path("cache.txt");
  write_text(cache, entry(problem, 1, "winograd9") + entry(elsewhere, 1, "fft3"));
  const Plan plan(problem, tuned(1, cache));
  EXPECT_EQ(plan.selection(), "tuned");
  EXPECT_TRUE(supports(problem, plan.algorithm()));
  const std::string text = read_text(cache);
  EXPECT_EQ(text.find("winograd9"), std::string::npos) << text;
  EXPECT_NE(text.find(problem.to_string() + " " + active_isa() + " 1 " +
                      std::string(plan.algorithm()) + " "),
            std::string::npos)
      << text;
  // Entries for other problems stay, even with names this build does not know.
  EXPECT_NE(text.find(entry(elsewhere, 1, "fft3")), std::string::npos) << text;

  // An algorithm that does not support the problem is stale too. This
  // problem has one candidate, which is not remembered: the entry goes.
  const Problem standard = single_candidate_problem();
  ASSERT_FALSE(supports(standard, "depthwise"));
  write_text(path("unsupported.txt"),
             entry(elsewhere, 1, "fft3") + entry(standard, 1, "depthwise"));
  const Plan only(standard, tuned(1, path("unsupported.txt")));
  EXPECT_EQ(only.algorithm(), "direct");
  EXPECT_EQ(only.selection(), "tuned (only candidate)");
  const std::string kept = read_text(path("unsupported.txt"));
  EXPECT_EQ(kept.find(standard.to_string()), std::string::npos) << kept;
  EXPECT_NE(kept.find(entry(elsewhere, 1, "fft3")), std::string::npos) << kept;
}

TEST_F(Tune, CorruptFileIsAnErrorNamingFileAndLine) {
  const Problem problem = depthwise_problem();
  const std::string good = entry(problem, 1, "direct");
  const std::string isa = " " + active_isa() + " ";
  const std::pair<std::string, std::string> cases[] = {
      {"direct 1", "expected 'problem isa threads algorithm median_ms'"},
      {problem.to_string() + isa + "1 direct 0.5 extra", "expected"},
      {"mb1ic4xx" + isa + "1 direct 0.5", "cannot parse problem"},
      {"mb1ic4oc6iw10kw3sw1dl1pl0pr0g4" + isa + "1 direct 0.5", "groups"},
      {problem.to_string() + isa + "two direct 0.5", "threads"},
      {problem.to_string() + isa + "0 direct 0.5", "threads"},
      {problem.to_string() + isa + "1 direct fast", "median_ms"},
      {problem.to_string() + isa + "1 direct -1", "median_ms"},
      {std::string("\x01\x02\x03 \xff", 5), "expected"},
  };
  for (const auto& [line, words] : cases) {
    SCOPED_TRACE(line);
    detail::clear_tune_cache();
    write_text(path("bad.txt"), good + line + "\n");
    const std::string message = error_of([&] { Plan(problem, tuned(1, path("bad.txt"))); });
    EXPECT_NE(message.find("tune cache '" + path("bad.txt") + "' line 2"), std::string::npos)
        << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
    EXPECT_EQ(read_text(path("bad.txt")), good + line + "\n") << "the file is left as it was";
  }
  // Not a file at all.
  fs::create_directories(path("folder"));
  const std::string folder = error_of([&] { Plan(problem, tuned(1, path("folder"))); });
  EXPECT_NE(folder.find(path("folder")), std::string::npos) << folder;
  EXPECT_NE(folder.find("folder, not a file"), std::string::npos) << folder;
}

TEST_F(Tune, UnwritablePathIsAnError) {
  const Problem problem = depthwise_problem();
  const std::string missing = path("no_such_folder/cache.txt");
  const std::string message = error_of([&] { Plan(problem, tuned(1, missing)); });
  EXPECT_NE(message.find("cannot write tune cache '" + missing + "'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path("no_such_folder")));
}

}  // namespace
}  // namespace conv1d
