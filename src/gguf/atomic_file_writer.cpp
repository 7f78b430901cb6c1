#include "gguf/atomic_file_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"

namespace edgelm::gguf {
namespace {

std::string random_suffix() {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d.%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(r));
  return buf;
}

// Temporary files in progress, for the signal handler: fixed storage, since a handler may
// neither allocate nor lock. A slot is claimed, filled, then published; the handler reads only
// published slots.
constexpr int kSlots = 32;
constexpr size_t kPathBytes = 4096;
char g_paths[kSlots][kPathBytes];
std::atomic<bool> g_claimed[kSlots];
std::atomic<bool> g_published[kSlots];
struct sigaction g_previous[3];
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temporaries_and_reraise(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_published[i].load(std::memory_order_acquire)) ::unlink(g_paths[i]);
  for (int i = 0; i < 3; ++i)
    if (kSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  ::raise(sig);  // the default action now: the process ends as it would have
}

// Checked at every new temporary file (a program may set its own handlers at any time): a
// signal still at its default action gets the handler.
void install_handlers() {
  static std::mutex m;
  const std::lock_guard lock(m);
  for (int i = 0; i < 3; ++i) {
    struct sigaction current {};
    if (::sigaction(kSignals[i], nullptr, &current) != 0 || current.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&sa.sa_mask);
    ::sigaction(kSignals[i], &sa, &g_previous[i]);
  }
}

int publish(const std::string& path) {
  if (path.size() >= kPathBytes) return -1;  // not removable by the handler; still by the destructor
  install_handlers();
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (!g_claimed[i].compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_published[i].store(true, std::memory_order_release);
    return i;
  }
  return -1;
}

void unpublish(int slot) {
  if (slot < 0) return;
  g_published[slot].store(false, std::memory_order_release);
  g_claimed[slot].store(false, std::memory_order_release);
}

// Temporary files of `path` whose process no longer exists: removed, each with a note.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // PID.HEX
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || rest.find_first_not_of("0123456789") != dot) continue;
    const long pid = std::strtol(rest.substr(0, dot).c_str(), nullptr, 10);
    // Only a file whose process is gone: a live writer (or one we may not signal) keeps its own.
    if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    if (fs::remove(entry.path(), rm))
      std::fprintf(stderr, "note: removed %s, left by an interrupted write (process %ld)\n", entry.path().c_str(), pid);
  }
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  remove_stale_temporaries(path_);
  // O_EXCL with a random name instead of mkstemp: mkstemp creates mode 0600, while open() applies
  // the user's umask to 0666 like any other newly written file.
  // Each name is published for the signal handler before the file is created: a signal that
  // arrives just after open() must find it (removing a name that was never created is harmless).
  int err = 0;
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_path_ = path_ + ".tmp." + random_suffix();
    signal_slot_ = publish(temp_path_);
    do {
      fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ >= 0) break;
    err = errno;
    unpublish(signal_slot_);
    signal_slot_ = -1;
    if (err != EEXIST) break;
  }
  if (fd_ < 0) {
    temp_path_.clear();  // nothing of ours to remove
    fail("cannot create a temporary file next to it", err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::write(const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFileWriter::write_zeros(size_t n) {
  static constexpr char kZeros[256] = {};
  while (n > 0) {
    const size_t chunk = n < sizeof kZeros ? n : sizeof kZeros;
    write(kZeros, chunk);
    n -= chunk;
  }
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0) fail("cannot flush to disk", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close", errno);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename into place", errno);
  committed_ = true;
  unpublish(signal_slot_);
  signal_slot_ = -1;
  // The rename itself is only durable once the directory entry is on disk. Failing to sync the
  // directory does not undo a completed write, so it is not reported.
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void AtomicFileWriter::fail(const std::string& what, int err) {
  discard();
  throw Error(path_ + ": " + what + ": " + std::strerror(err),
              "check that the directory exists, is writable and has free space");
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
  unpublish(signal_slot_);
  signal_slot_ = -1;
}

void write_file_atomically(const std::string& path, const void* data, size_t nbytes) {
  AtomicFileWriter out(path);
  out.write(data, nbytes);
  out.commit();
}

}  // namespace edgelm::gguf
