// Memory accounting: what a model needs resident at a given context, by weight type and for
// the KV cache in half precision and in Q8_0.
#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::quant {

MemoryReport memory_report(const Model& model, int n_ctx) {
  if (n_ctx <= 0) throw Error("context -c must be positive");
  MemoryReport r;
  r.n_ctx = n_ctx;
  for (const auto& t : model.file().tensors()) {
    auto& e = r.weights_by_type[std::string(dtype_name(t.type))];
    ++e.tensors;
    e.bytes += t.nbytes;
    r.weight_bytes += t.nbytes;
  }
  const ModelConfig& c = model.config();
  // Keys and values for every layer and position: n_head_kv * head_dim values each.
  const uint64_t values = 2ull * static_cast<uint64_t>(c.n_layer) * static_cast<uint64_t>(c.n_head_kv) *
                          static_cast<uint64_t>(c.head_dim) * static_cast<uint64_t>(n_ctx);
  r.kv_f16_bytes = values * 2;
  // Q8_0 stores each run of 32 values in 34 bytes (a half-precision scale + 32 int8); a row of
  // head_dim values that is not a multiple of 32 cannot be stored that way, so count it rounded
  // up to whole blocks per head.
  const uint64_t blocks_per_head = (static_cast<uint64_t>(c.head_dim) + 31) / 32;
  r.kv_q8_0_bytes = 2ull * c.n_layer * c.n_head_kv * blocks_per_head * 34ull * static_cast<uint64_t>(n_ctx);
  return r;
}

}  // namespace edgelm::quant
