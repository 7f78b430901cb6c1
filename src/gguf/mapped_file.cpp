#include "gguf/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "edgelm/error.hpp"

namespace edgelm::gguf {
namespace {

// Closes the descriptor on every exit path; the mapping stays valid after close.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

[[noreturn]] void fail_errno(const std::string& path, const char* what, int err) {
  std::string hint = "check that the path is right and the file is readable";
  if (err == ENOENT) hint = "check the path, or fetch the model with scripts/fetch-models.sh";
  throw Error(path + ": " + what + ": " + std::strerror(err), hint);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail_errno(path, "cannot open", errno);
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) fail_errno(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) {
    throw Error(path + ": not a regular file", "pass the path of a .gguf model file");
  }
  if (st.st_size == 0) {
    throw Error(path + ": the file is empty", "the file is incomplete; download it again");
  }
  if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    throw Error(path + ": the file is too large to map on this system",
                "use a 64-bit build of edgelm");
  }
  size_ = static_cast<uint64_t>(st.st_size);

  void* p = ::mmap(nullptr, static_cast<size_t>(size_), PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail_errno(path, "cannot map the file into memory", errno);
  data_ = static_cast<const std::byte*>(p);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { unmap(); }

void MappedFile::release_pages() const noexcept {
  if (data_ != nullptr) ::madvise(const_cast<std::byte*>(data_), static_cast<size_t>(size_), MADV_DONTNEED);
}

void MappedFile::unmap() noexcept {
  if (data_ != nullptr) {
    ::munmap(const_cast<std::byte*>(data_), static_cast<size_t>(size_));
    data_ = nullptr;
    size_ = 0;
  }
}

}  // namespace edgelm::gguf
