// A test fixture that runs the built `conv1d` program (CONV1D_CLI) in a
// scratch folder of its own and captures its exit status and output.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <conv1d/layer.hpp>
#include <conv1d/npy.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace conv1d::testing {

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

class CliTest : public ::testing::Test {
 protected:
  struct Result {
    int status = -1;
    std::string out;
    std::string err;
  };

  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("conv1d_" + std::string(test->test_suite_name()) + "_" + test->name() + "_" +
            std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Logs live outside the folder so that it holds only the test's files.
    log_ = std::filesystem::path(dir_.string() + ".log");
  }

  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove(log_.string() + ".out");
    std::filesystem::remove(log_.string() + ".err");
  }

  std::filesystem::path path(const std::string& name) const { return dir_ / name; }
  void save(const std::string& name, const Tensor& tensor) const {
    write_npy(path(name).string(), tensor);
  }

  // Runs `conv1d <args>` inside the test's folder.
  Result run(const std::string& args) const {
    const std::string out = log_.string() + ".out";
    const std::string err = log_.string() + ".err";
    const std::string command = "cd '" + dir_.string() + "' && '" + std::string(CONV1D_CLI) + "' " +
                                args + " >'" + out + "' 2>'" + err + "'";
    const int raw = std::system(command.c_str());
    Result result;
    result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
  }

  std::filesystem::path dir_;
  std::filesystem::path log_;
};

}  // namespace conv1d::testing
