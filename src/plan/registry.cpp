#include "plan/registry.hpp"

#include "core/strings.hpp"

namespace conv1d::detail {

namespace {

constexpr AlgorithmEntry kAlgorithms[] = {
#define CONV1D_ALGORITHM(NAME, EXACTNESS)                                                         \
  {#NAME, Exactness::EXACTNESS, &algorithms::NAME::why_not, &algorithms::NAME::estimated_seconds, \
   &algorithms::NAME::create},
#include "plan/algorithms.inc"
#undef CONV1D_ALGORITHM
};

}  // namespace

std::span<const AlgorithmEntry> registry() { return kAlgorithms; }

const AlgorithmEntry* find_algorithm(std::string_view name) {
  for (const AlgorithmEntry& entry : kAlgorithms) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

const AlgorithmEntry& select_algorithm(const Problem& problem, bool exact_only) {
  const AlgorithmEntry* best = nullptr;
  double best_seconds = 0.0;
  for (const AlgorithmEntry& entry : kAlgorithms) {
    if (exact_only && entry.exactness != Exactness::exact) continue;
    if (entry.why_not(problem)) continue;
    const double seconds = entry.estimated_seconds(problem);
    if (best == nullptr || seconds < best_seconds) {
      best = &entry;
      best_seconds = seconds;
    }
  }
  // The reference supports every valid problem.
  return *best;
}

}  // namespace conv1d::detail

namespace conv1d {

std::vector<std::string> algorithm_names() {
  std::vector<std::string> names;
  for (const auto& entry : detail::registry()) names.emplace_back(entry.name);
  return names;
}

std::vector<AlgorithmStatus> algorithm_statuses(const Problem& problem) {
  problem.validate();
  std::vector<AlgorithmStatus> statuses;
  for (const auto& entry : detail::registry()) {
    auto why = entry.why_not(problem);
    statuses.push_back({std::string(entry.name), !why.has_value(), why.value_or("")});
  }
  return statuses;
}

}  // namespace conv1d
