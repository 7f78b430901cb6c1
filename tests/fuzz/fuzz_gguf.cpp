// libFuzzer harness for the GGUF reader (docs/fuzzing.md). Every input must either open, with
// every vouched-for byte readable, or be refused with edgelm::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "fuzz_common.hpp"

namespace {

// Exercises what a loader would do with an accepted file: every getter on every key and every
// byte of every tensor, so ASan sees any access the validation should have ruled out.
void use(const edgelm::gguf::File& f) {
  unsigned sink = 0;
  for (const std::string& key : f.keys()) {
    const auto try_get = [&](auto get) {
      try {
        get();
      } catch (const edgelm::Error&) {
      }
    };
    try_get([&] { sink += f.get_string(key).size(); });
    try_get([&] { sink += f.get_u32(key); });
    try_get([&] { sink += static_cast<unsigned>(f.get_i64(key)); });
    try_get([&] { sink += static_cast<unsigned>(f.get_f32(key) != 0); });
    try_get([&] { sink += f.get_bool(key); });
    try_get([&] { sink += f.get_string_array(key).size(); });
    try_get([&] { sink += f.get_f32_array(key).size(); });
    try_get([&] { sink += f.get_i32_array(key).size(); });
  }
  for (const auto& info : f.tensors()) {
    const edgelm::TensorView v = f.view(info);
    for (size_t i = 0; i < v.nbytes; ++i) sink += static_cast<unsigned>(v.data[i]);
    if (v.nrows() > 0) sink += static_cast<unsigned>(v.row(v.nrows() - 1)[0]);
  }
  volatile unsigned keep = sink;
  (void)keep;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const edgelm::fuzz::MemoryFile file("fuzz.gguf", data, size);
  if (!file.ok()) return 0;
  try {
    use(edgelm::gguf::File::open(file.path()));
  } catch (const edgelm::Error&) {
  }
  return 0;
}
