// libFuzzer harness for the LoRA adapter reader: the input is an adapter file, checked against
// SmolLM2 (read from the model cache, $EDGELM_MODELS). It either loads, with every matrix the
// shape its target has, or is refused with edgelm::Error.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "edgelm/error.hpp"
#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "fuzz_common.hpp"

namespace {

const edgelm::Model& base() {
  static const std::shared_ptr<const edgelm::Model> m = [] {
    const std::string path = edgelm::fuzz::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "fuzz_lora: %s not found: run scripts/fetch-models.sh (or set EDGELM_MODELS)\n", path.c_str());
      std::exit(2);
    }
    return edgelm::Model::load(path);
  }();
  return *m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  base();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const edgelm::fuzz::MemoryFile file("fuzz-lora.gguf", data, size);
  if (!file.ok()) return 0;
  try {
    const auto a = edgelm::LoraAdapter::load(file.path(), base());
    for (const edgelm::LoraMatrix& m : a->matrices)
      if (m.a.size() != static_cast<size_t>(m.rank * m.n_in) || m.b.size() != static_cast<size_t>(m.rank * m.n_out))
        edgelm::fuzz::fail("a loaded adapter's matrices do not have their shapes", m.target);
  } catch (const edgelm::Error&) {
  }
  return 0;
}
