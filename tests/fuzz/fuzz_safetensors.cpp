// libFuzzer harness for the safetensors reader of edgelm convert. Every input must either open,
// with every byte of every tensor readable, or be refused with edgelm::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convert/safetensors.hpp"
#include "edgelm/error.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const edgelm::fuzz::MemoryFile file("fuzz.safetensors", data, size);
  if (!file.ok()) return 0;
  try {
    const auto f = edgelm::convert::SafetensorsFile::open(file.path());
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
  return 0;
}
