#include "model/kv_cache.hpp"

#include <string>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"

namespace edgelm {

KvCache::KvCache(const ModelConfig& c, int n_ctx, int n_seq, DType type)
    : n_ctx_(n_ctx), n_seq_(n_seq), n_layer_(c.n_layer),
      kv_dim_(static_cast<int64_t>(c.n_head_kv) * c.head_dim), type_(type) {
  if (n_ctx <= 0 || n_seq <= 0) throw Error("context size and sequence count must be positive");
  n_ctx_pad_ = (n_ctx + kPosBlock - 1) / kPosBlock * kPosBlock;
  elems_ = static_cast<size_t>(n_seq) * n_layer_ * n_ctx_pad_ * kv_dim_;
  // Uninitialised on purpose: untouched pages cost no RSS until a position is written.
  if (type == DType::F16) {
    k_ = std::make_unique_for_overwrite<uint16_t[]>(elems_);
    v_ = std::make_unique_for_overwrite<uint16_t[]>(elems_);
  } else if (type == DType::Q8_0) {
    if (c.head_dim % 32 != 0)
      throw Error("an 8-bit KV cache needs a head size that is a multiple of 32 (this model's is " +
                      std::to_string(c.head_dim) + ")",
                  "use --kv-type f16");
    row_bytes_ = row_size(DType::Q8_0, kv_dim_);
    const size_t total = static_cast<size_t>(n_seq) * n_layer_ * n_ctx_pad_ * row_bytes_;
    k8_ = std::make_unique_for_overwrite<std::byte[]>(total);
    v8_ = std::make_unique_for_overwrite<std::byte[]>(total);
  } else {
    throw Error("KV cache type " + std::string(dtype_name(type)) + " is not supported", "use --kv-type f16 or q8_0");
  }
}

size_t KvCache::bytes() const {
  if (type_ == DType::Q8_0) return 2 * static_cast<size_t>(n_seq_) * n_layer_ * n_ctx_pad_ * row_bytes_;
  return 2 * elems_ * sizeof(uint16_t);
}

void KvCache::store_q8_0(bool key, int seq, int layer, int pos, int64_t c0, int64_t c1, const float* row) {
  std::byte* dst = (key ? k8_ : v8_).get() + row_offset(seq, layer, pos) + row_size(DType::Q8_0, c0);
  kernels::quantize_row(DType::Q8_0, row, dst, c1 - c0);
}

}  // namespace edgelm
