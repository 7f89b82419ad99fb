// The algorithm registry, expanded from algorithms.inc.
#pragma once

#include <conv1d/conv1d.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/executor.hpp"

namespace conv1d::algorithms {

#define CONV1D_ALGORITHM(NAME, EXACTNESS)                           \
  namespace NAME {                                                  \
  std::optional<std::string> why_not(const Problem& problem);       \
  double estimated_seconds(const Problem& problem);                 \
  std::unique_ptr<detail::Executor> create(const Problem& problem); \
  }
#include "plan/algorithms.inc"
#undef CONV1D_ALGORITHM

}  // namespace conv1d::algorithms

namespace conv1d::detail {

// How the tests hold an algorithm to the reference (see algorithms.inc).
enum class Exactness { exact, within_tolerance };

struct AlgorithmEntry {
  std::string_view name;
  Exactness exactness;
  std::optional<std::string> (*why_not)(const Problem&);
  double (*estimated_seconds)(const Problem&);
  std::unique_ptr<Executor> (*create)(const Problem&);
};

std::span<const AlgorithmEntry> registry();
// nullptr when no algorithm has that name.
const AlgorithmEntry* find_algorithm(std::string_view name);
// The supported algorithm with the lowest estimated cost (among the exact
// ones only, with exact_only).
const AlgorithmEntry& select_algorithm(const Problem& problem, bool exact_only = false);

}  // namespace conv1d::detail
