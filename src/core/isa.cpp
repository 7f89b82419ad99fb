#include "core/isa.hpp"

#include <hwy/highway.h>
#include <hwy/targets.h>

#include <conv1d/conv1d.hpp>
#include <cstdlib>
#include <mutex>

#include "core/strings.hpp"

namespace conv1d {

namespace {

struct IsaName {
  std::string_view name;
  int64_t targets;  // the Highway targets this name stands for
};

// Best first. "avx512" covers AVX3 (F/BW/DQ/VL); "scalar" is the portable
// fallback that runs anywhere.
constexpr IsaName kIsas[] = {
    {"avx512", HWY_AVX3_DL | HWY_AVX3},
    {"avx2", HWY_AVX2},
    {"sse4", HWY_SSE4 | HWY_SSSE3},
    {"scalar", HWY_EMU128 | HWY_SCALAR},
};

std::mutex isa_mutex;
bool env_applied = false;
std::string current_cap = "avx512";
// The best target under the cap, found once per cap: Highway 1.0.3's
// SupportedTargets() detects the CPU anew on every call (~27 us in a VM,
// where CPUID traps), which made up most of the time to make a plan.
int64_t capped_target = 0;

void apply_cap(std::string_view name) {
  int64_t disabled = 0;
  bool found = false;
  for (const IsaName& isa : kIsas) {
    if (isa.name == name) {
      found = true;
      break;
    }
    disabled |= isa.targets;
  }
  if (!found) {
    throw Error(core::str_cat("unknown ISA '", name, "': expected avx512, avx2, sse4 or scalar"));
  }
  current_cap = std::string(name);
  hwy::SetSupportedTargetsForTest(0);
  hwy::DisableTargets(disabled);
  // SupportedTargets() points the dispatch at every target the CPU has,
  // ignoring DisableTargets, and returns the capped set: apply that.
  const int64_t supported = hwy::SupportedTargets();
  hwy::GetChosenTarget().Update(supported);
  capped_target = supported & -supported;  // lowest bit = best target
}

void apply_env_locked() {
  if (env_applied) return;
  env_applied = true;
  const char* cap = std::getenv("CONV1D_MAX_ISA");
  apply_cap(cap != nullptr && *cap != '\0' ? std::string_view(cap) : "avx512");
}

std::string_view name_of(int64_t target) {
  for (const IsaName& isa : kIsas) {
    if (isa.targets & target) return isa.name;
  }
  return "scalar";
}

}  // namespace

namespace core {

int64_t chosen_target() {
  std::lock_guard lock(isa_mutex);
  apply_env_locked();
  return capped_target;
}

}  // namespace core

std::string active_isa() { return std::string(name_of(core::chosen_target())); }

std::vector<std::string> available_isas() {
  std::lock_guard lock(isa_mutex);
  apply_env_locked();
  // What the CPU could run, whatever the current cap.
  hwy::DisableTargets(0);
  const int64_t all = hwy::SupportedTargets();
  apply_cap(std::string(current_cap));
  std::vector<std::string> names;
  for (const IsaName& isa : kIsas) {
    if (all & isa.targets) names.emplace_back(isa.name);
  }
  return names;
}

void set_max_isa(std::string_view name) {
  std::lock_guard lock(isa_mutex);
  env_applied = true;
  apply_cap(name);
}

}  // namespace conv1d
