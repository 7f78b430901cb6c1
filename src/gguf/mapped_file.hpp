// A whole file mapped read-only (MAP_PRIVATE), so tensor data can be used in place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgelm::gguf {

class MappedFile {
 public:
  // Throws edgelm::Error naming `path` if it cannot be opened, is not a regular file, is empty,
  // or cannot be mapped.
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops the mapping's pages from this process's memory (MADV_DONTNEED); later reads fault
  // them in again from the file, so nothing changes but the resident size.
  void release_pages() const noexcept;

 private:
  void unmap() noexcept;

  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace edgelm::gguf
