// Other libraries timed in the same run as conv1d: each runs in a worker
// process (bench/compare/) that answers one timing request per line, so the
// benchmark can interleave rounds of conv1d, PyTorch and oneDNN.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace conv1d::cli {

class ComparisonWorker {
 public:
  // Starts the worker; on failure returns nullptr and says why in `why`.
  static std::unique_ptr<ComparisonWorker> start(std::string label,
                                                 const std::vector<std::string>& command,
                                                 std::string& why);
  ~ComparisonWorker();
  ComparisonWorker(const ComparisonWorker&) = delete;
  ComparisonWorker& operator=(const ComparisonWorker&) = delete;

  const std::string& label() const { return label_; }
  // Median milliseconds of `repetitions` runs of the problem, or nullopt
  // with the worker's reason in `note`; on success `note` names the
  // implementation the library used.
  std::optional<double> time(const std::string& descriptor, int threads, int repetitions,
                             std::string& note);

 private:
  ComparisonWorker() = default;
  std::string label_;
  int pid_ = -1;
  std::FILE* to_worker_ = nullptr;
  std::FILE* from_worker_ = nullptr;
};

// The PyTorch and oneDNN workers that exist on this machine (a missing one
// is reported on stderr and left out).
std::vector<std::unique_ptr<ComparisonWorker>> start_comparison_workers();

}  // namespace conv1d::cli
