// A shallower backbone for fast classification: the first K transformer blocks of a model (plus
// its embedding and output norm) written as a model file of its own.
#include <cstdlib>
#include <string>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {

void write_truncated_backbone(const std::string& src_path, int n_layers, const std::string& out_path) {
  const gguf::File f = gguf::File::open(resolve_model_path(src_path));
  const std::string arch = f.get_string("general.architecture");
  const uint32_t n = f.get_u32(arch + ".block_count");
  if (n_layers < 1 || static_cast<uint32_t>(n_layers) > n)
    throw Error("--layers " + std::to_string(n_layers) + " is outside 1.." + std::to_string(n),
                "the backbone has " + std::to_string(n) + " blocks");
  gguf::Writer w;
  w.copy_metadata(f);
  w.set_u32(arch + ".block_count", static_cast<uint32_t>(n_layers));
  w.set_string("general.name", f.get_string_or("general.name", "model") + " (first " + std::to_string(n_layers) +
                                   " of " + std::to_string(n) + " blocks)");
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name.rfind("blk.", 0) == 0) {
      const long blk = std::strtol(t.name.c_str() + 4, nullptr, 10);
      if (blk >= n_layers) continue;
    }
    const TensorView v = f.view(t);
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::max(1, t.n_dims));
    w.add_tensor(t.name, t.type, ne, v.data, v.nbytes);
  }
  w.write(out_path);
}

}  // namespace edgelm::intent
