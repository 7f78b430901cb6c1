// Writes a file so that `path` either keeps its old content or gets the complete new one:
// data goes to a temporary file in the same directory, is fsynced, and is renamed into place.
// The temporary file ("PATH.tmp.PID.HEX") is removed on error, on destruction, and when the
// process is ended by SIGINT, SIGTERM or SIGHUP (a handler is installed for each that has its
// default action; the signal then ends the process as before). One left by a process that was
// killed outright (SIGKILL, power loss) is removed by the next writer of the same path, with a
// note on stderr.
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
  int signal_slot_ = -1;  // where the signal handler finds temp_path_
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace edgelm::gguf
