// Tune mode: choose an algorithm by timing the candidates instead of by the
// cost model, and remember the choice (README "Tune mode").
#pragma once

#include <conv1d/conv1d.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "plan/registry.hpp"

namespace conv1d::detail {

struct TunedChoice {
  const AlgorithmEntry* entry = nullptr;
  // How the choice was made: Plan::selection() of a tuned plan.
  std::string_view how;
};

// The fastest algorithm for `problem` (batch > 0) on `isa` at `threads`:
// from the cache file `cache_path` (when not empty, read on first use), from
// this process's memory, or measured, then remembered in both. Thread-safe;
// one tuning runs at a time so that measurements do not disturb each other.
TunedChoice tuned_algorithm(const Problem& problem, const std::string& isa, int threads,
                            const std::string& cache_path);

// The median time in seconds of a candidate that `run_once` runs once per
// call and times: a warm-up run, then at least 3 runs, and more up to 9
// within 20 ms. Nothing when the candidate cannot win against the best
// median so far, `best_seconds`: its warm-up and the run after it each
// took over 3 times as long. One slow warm-up alone does not drop it: the
// first call pays one-time costs.
std::optional<double> time_candidate(const std::function<double()>& run_once, double best_seconds);

// Forgets every tuned choice and every cache file read, as in a new process
// (for tests).
void clear_tune_cache();

}  // namespace conv1d::detail
