// Other libraries timed in the same run as conv1d: each runs in a worker
// process (bench/compare/) that answers one timing request per line, so the
// benchmark can interleave rounds of conv1d, PyTorch and oneDNN.
#pragma once

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace conv1d::cli {

struct WorkerTiming {
  double ms = 0.0;  // median of the user-facing call
  // Median of the library's kernels alone (oneDNN: the convolution
  // primitives without the reorders of the user's data); NaN if the worker
  // does not say.
  double kernel_ms = std::nan("");
};

class ComparisonWorker {
 public:
  // Starts the worker; on failure returns nullptr and says why in `why`.
  // `times_kernels`: its replies also time the kernels alone.
  static std::unique_ptr<ComparisonWorker> start(std::string label,
                                                 const std::vector<std::string>& command,
                                                 bool times_kernels, std::string& why);
  ~ComparisonWorker();
  ComparisonWorker(const ComparisonWorker&) = delete;
  ComparisonWorker& operator=(const ComparisonWorker&) = delete;

  const std::string& label() const { return label_; }
  // Whether its replies time the kernels alone too (WorkerTiming::kernel_ms).
  bool times_kernels() const { return times_kernels_; }
  // Medians of `repetitions` runs of the problem, or nullopt with the
  // worker's reason in `note`; on success `note` names the implementation
  // the library used.
  std::optional<WorkerTiming> time(const std::string& descriptor, int threads, int repetitions,
                                   std::string& note);

 private:
  ComparisonWorker() = default;
  std::string label_;
  bool times_kernels_ = false;
  int pid_ = -1;
  std::FILE* to_worker_ = nullptr;
  std::FILE* from_worker_ = nullptr;
};

// The PyTorch and oneDNN workers that exist on this machine (a missing one
// is reported on stderr and left out); for the backward pass PyTorch's only.
std::vector<std::unique_ptr<ComparisonWorker>> start_comparison_workers(bool backward);

}  // namespace conv1d::cli
