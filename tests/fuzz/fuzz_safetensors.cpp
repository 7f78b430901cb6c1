// libFuzzer harness for the safetensors reader of edgelm convert. Every input must either open,
// with every byte of every tensor readable, or be refused with edgelm::Error.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "convert/safetensors.hpp"
#include "edgelm/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // SafetensorsFile::open takes a path; an in-memory file keeps the fuzzer off the disk.
  const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    const ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  try {
    const auto f = edgelm::convert::SafetensorsFile::open("/proc/self/fd/" + std::to_string(fd));
    unsigned sink = 0;
    for (const auto& t : f.tensors()) {
      for (uint64_t i = 0; i < t.nbytes; ++i) sink += static_cast<unsigned>(t.data[i]);
      sink += static_cast<unsigned>(t.numel());
      try {
        sink += static_cast<unsigned>(t.float_type(f.path()));
      } catch (const edgelm::Error&) {
      }
    }
    volatile unsigned keep = sink;
    (void)keep;
  } catch (const edgelm::Error&) {
  }
  close(fd);
  return 0;
}
