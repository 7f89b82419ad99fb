#include "compare.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace conv1d::cli {

namespace {

// Where a worker lives: an environment override, the build tree, or the
// installed share/libexec folders next to this program.
std::string locate(const char* environment, const char* build_path, const char* installed) {
  if (const char* path = std::getenv(environment); path != nullptr && *path != '\0') return path;
  if (std::filesystem::exists(build_path)) return build_path;
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const auto candidate = self.parent_path().parent_path() / installed;
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  return "";
}

}  // namespace

std::unique_ptr<ComparisonWorker> ComparisonWorker::start(std::string label,
                                                          const std::vector<std::string>& command,
                                                          bool times_kernels, std::string& why) {
  // Close-on-exec: a worker started later must not inherit this worker's
  // pipe ends, or this worker would never see end-of-file on its input.
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) {
    why = "cannot create a pipe";
    return nullptr;
  }
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    close(to_child[0]);
    close(to_child[1]);
    why = "cannot create a pipe";
    return nullptr;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    why = "cannot fork";
    for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
    return nullptr;
  }
  if (pid == 0) {
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    // Library warnings would garble the table.
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
    for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
    std::vector<char*> argv;
    for (const auto& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  auto worker = std::unique_ptr<ComparisonWorker>(new ComparisonWorker());
  worker->label_ = std::move(label);
  worker->times_kernels_ = times_kernels;
  worker->pid_ = pid;
  worker->to_worker_ = fdopen(to_child[1], "w");
  worker->from_worker_ = fdopen(from_child[0], "r");
  // The worker says "ready" once it has loaded its library (importing torch
  // takes a core for a second or two): the FMA probe and the first layer
  // must not run beside that.
  char line[256];
  if (std::fgets(line, sizeof line, worker->from_worker_) == nullptr) {
    why = "the worker exited before it was ready";
    return nullptr;
  }
  if (std::string(line).rfind("ready", 0) != 0) {
    why = "the worker did not say it was ready";
    return nullptr;
  }
  return worker;
}

ComparisonWorker::~ComparisonWorker() {
  if (to_worker_ != nullptr) std::fclose(to_worker_);
  if (from_worker_ != nullptr) std::fclose(from_worker_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

std::optional<WorkerTiming> ComparisonWorker::time(const std::string& descriptor, int threads,
                                                   int repetitions, std::string& note) {
  if (std::fprintf(to_worker_, "%s %d %d\n", descriptor.c_str(), threads, repetitions) < 0 ||
      std::fflush(to_worker_) != 0) {
    note = "worker exited";
    return std::nullopt;
  }
  char line[4096];
  if (std::fgets(line, sizeof line, from_worker_) == nullptr) {
    note = "worker exited";
    return std::nullopt;
  }
  std::string reply(line);
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  const auto space = reply.find(' ');
  const std::string first = reply.substr(0, space);
  note = space == std::string::npos ? "" : reply.substr(space + 1);
  if (first == "unsupported") return std::nullopt;
  const auto number = [](const std::string& text) -> std::optional<double> {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || !(value >= 0.0)) return std::nullopt;
    return value;
  };
  WorkerTiming timing;
  const std::optional<double> ms = number(first);
  if (!ms) {
    note = "unreadable reply: " + reply;
    return std::nullopt;
  }
  timing.ms = *ms;
  // "<implementation> kernel-ms=<median>": the kernels alone.
  const std::string kernel_key = " kernel-ms=";
  if (const auto at = note.rfind(kernel_key); at != std::string::npos) {
    const std::optional<double> kernel_ms = number(note.substr(at + kernel_key.size()));
    if (!kernel_ms) {
      note = "unreadable reply: " + reply;
      return std::nullopt;
    }
    timing.kernel_ms = *kernel_ms;
    note.erase(at);
  }
  return timing;
}

std::vector<std::unique_ptr<ComparisonWorker>> start_comparison_workers(bool backward) {
  // A worker that dies must not kill the benchmark with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::unique_ptr<ComparisonWorker>> workers;
  std::string why;
  const std::string torch_script =
      locate("CONV1D_TORCH_WORKER", CONV1D_TORCH_WORKER_BUILD, "share/conv1d/torch_worker.py");
  const char* python = "/usr/bin/python3";
  if (torch_script.empty() || !std::filesystem::exists(python)) {
    fmt::print(stderr, "note: PyTorch comparison unavailable (no {} or torch_worker.py)\n", python);
  } else if (auto worker = ComparisonWorker::start("torch", {python, torch_script}, false, why)) {
    workers.push_back(std::move(worker));
  } else {
    fmt::print(stderr, "note: PyTorch comparison unavailable: {}\n", why);
  }
  if (backward) {
    fmt::print(stderr, "note: oneDNN is compared on forward only\n");
    return workers;
  }
  const std::string onednn = locate("CONV1D_ONEDNN_WORKER", CONV1D_ONEDNN_WORKER_BUILD,
                                    "libexec/conv1d/conv1d_onednn_worker");
  if (onednn.empty()) {
    fmt::print(stderr, "note: oneDNN comparison unavailable (build with libdnnl-dev installed)\n");
  } else if (auto worker = ComparisonWorker::start("onednn", {onednn}, true, why)) {
    workers.push_back(std::move(worker));
  } else {
    fmt::print(stderr, "note: oneDNN comparison unavailable: {}\n", why);
  }
  return workers;
}

}  // namespace conv1d::cli
