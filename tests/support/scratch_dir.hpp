// One scratch directory per test process (under the system temp directory), removed with all it
// holds when the process exits normally: tests that write models there leave no gigabytes behind.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace edgelm::test {

// The process's scratch directory (created on first use).
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() : path(std::filesystem::temp_directory_path() / ("edgelm-test-" + std::to_string(::getpid()))) {
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Path of `name` inside it.
inline std::string scratch_path(const std::string& name) { return (scratch_dir() / name).string(); }

}  // namespace edgelm::test
