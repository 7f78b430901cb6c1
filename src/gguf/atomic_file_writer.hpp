// Writes a file so that `path` either keeps its old content or gets the complete new one:
// data goes to a temporary file in the same directory, is fsynced, and is renamed into place.
#pragma once
#include <cstddef>
#include <string>

namespace edgelm::gguf {

class AtomicFileWriter {
 public:
  // Creates the temporary file; throws edgelm::Error naming `path` on failure.
  explicit AtomicFileWriter(std::string path);
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFileWriter();

  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  // fsync, close, rename over `path`, fsync the directory.
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace edgelm::gguf
