#include "model/kv_cache.hpp"

#include "edgelm/error.hpp"

namespace edgelm {

KvCache::KvCache(const ModelConfig& c, int n_ctx, int n_seq)
    : n_ctx_(n_ctx), n_seq_(n_seq), n_layer_(c.n_layer),
      kv_dim_(static_cast<int64_t>(c.n_head_kv) * c.head_dim) {
  if (n_ctx <= 0 || n_seq <= 0) throw Error("context size and sequence count must be positive");
  n_ctx_pad_ = (n_ctx + kPosBlock - 1) / kPosBlock * kPosBlock;
  elems_ = static_cast<size_t>(n_seq) * n_layer_ * n_ctx_pad_ * kv_dim_;
  // Uninitialised on purpose: untouched pages cost no RSS until a position is written.
  k_ = std::make_unique_for_overwrite<uint16_t[]>(elems_);
  v_ = std::make_unique_for_overwrite<uint16_t[]>(elems_);
}

}  // namespace edgelm
