// A model file holding only the first K transformer blocks of another (with its embeddings,
// output norm, output head and tokenizer): the oracle for SessionOptions::n_layers, whose early
// exit must give exactly this shallower model's results.
#pragma once
#include <cstdlib>
#include <string>
#include <vector>

#include "edgelm/gguf.hpp"
#include "edgelm/model.hpp"

namespace edgelm::test {

inline void write_truncated_model(const std::string& src_path, int n_layers, const std::string& out_path) {
  const gguf::File f = gguf::File::open(src_path);
  const std::string arch = f.get_string("general.architecture");
  gguf::Writer w;
  w.copy_metadata(f);
  w.set_u32(arch + ".block_count", static_cast<uint32_t>(n_layers));
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name.rfind("blk.", 0) == 0 && std::strtol(t.name.c_str() + 4, nullptr, 10) >= n_layers) continue;
    const TensorView v = f.view(t);
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::max(1, t.n_dims));
    w.add_tensor(t.name, t.type, ne, v.data, v.nbytes);
  }
  w.write(out_path);
}

}  // namespace edgelm::test
