// Shared by the libFuzzer harnesses: an input split into a few fields, an input as a file, the
// model cache for harnesses that need a real vocabulary, and a property check that ends the run
// on failure.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace edgelm::fuzz {

// Reads an input as fields separated by a byte that input text rarely holds (0xFF), so that
// one input can carry e.g. a template and the messages it renders.
class Fields {
 public:
  Fields(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}
  std::string_view next() {
    const size_t cut = rest_.find('\xff');
    const std::string_view f = rest_.substr(0, cut);
    rest_ = cut == std::string_view::npos ? std::string_view() : rest_.substr(cut + 1);
    return f;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// The input as a file in memory, for readers that take a path (path()); keeps the fuzzer off
// the disk. ok() is false if the system refused one (the input is then skipped).
class MemoryFile {
 public:
  MemoryFile(const char* name, const uint8_t* data, size_t size) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    for (size_t done = 0; fd_ >= 0 && done < size;) {
      const ssize_t w = write(fd_, data + done, size - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
  }
  ~MemoryFile() {
    if (fd_ >= 0) close(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// A property that must hold for every input: a failure is a finding, reported like a crash.
[[noreturn]] inline void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline std::string model_path(const char* file) {
  const char* env = std::getenv("EDGELM_MODELS");
  std::string dir = env && *env ? env : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/edgelm/models";
  return dir + "/" + file;
}

}  // namespace edgelm::fuzz
