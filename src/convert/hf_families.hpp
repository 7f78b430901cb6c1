// The families convert reads: config.json -> GGUF metadata, Hugging Face tensor -> GGUF tensor.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/safetensors.hpp"
#include "edgelm/gguf.hpp"

namespace edgelm::convert {

// How a tensor's data changes on the way to GGUF.
enum class TensorOp {
  kCopy,           // bytes as they are
  kPermuteRope,    // Llama's Q/K: each head's rows reordered from halves to interleaved pairs
  kPlusOne,        // Gemma's norms: the stored w of (1 + w) scaling becomes 1 + w
};

struct TensorMapping {
  const SafetensorsTensor* src = nullptr;
  std::string name;            // GGUF name
  TensorOp op = TensorOp::kCopy;
  int rope_heads = 0;          // kPermuteRope: heads in the tensor
};

struct FamilyPlan {
  std::string arch;            // general.architecture
  int n_vocab = 0;             // rows of the embedding
  std::vector<TensorMapping> tensors;
};

// Sets the architecture's metadata on `w` and maps every tensor of the checkpoint (throws
// edgelm::Error naming config.json or the tensor for an unsupported architecture, a missing or
// mistyped key, an unknown or missing tensor, or a shape that does not fit the configuration).
FamilyPlan plan_family(const nlohmann::json& config, const std::string& config_path, const Checkpoint& ck,
                       gguf::Writer& w);

// Rows of one head block: out row (h, 2j + s) = in row (h, s * half + j), half = rows per head / 2.
// `inverse` undoes it (for export).
void permute_rope_rows(const std::byte* in, std::byte* out, int64_t rows, size_t row_bytes, int heads, bool inverse);

}  // namespace edgelm::convert
