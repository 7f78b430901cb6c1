// Key/value cache for several independent sequences, stored as IEEE half floats.
// Layout: [seq][layer][pos][n_head_kv * head_dim] for K and for V, so one sequence's history
// for one layer is contiguous. Memory is reserved up front but pages are only touched (and
// counted in RSS) as positions fill.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "edgelm/model.hpp"

namespace edgelm {

class KvCache {
 public:
  KvCache(const ModelConfig& c, int n_ctx, int n_seq);

  int n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  int64_t kv_dim() const { return kv_dim_; }
  size_t bytes() const { return 2 * elems_ * sizeof(uint16_t); }

  uint16_t* k(int seq, int layer, int pos) { return k_.get() + offset(seq, layer, pos); }
  uint16_t* v(int seq, int layer, int pos) { return v_.get() + offset(seq, layer, pos); }
  const uint16_t* k(int seq, int layer, int pos) const { return k_.get() + offset(seq, layer, pos); }
  const uint16_t* v(int seq, int layer, int pos) const { return v_.get() + offset(seq, layer, pos); }

 private:
  size_t offset(int seq, int layer, int pos) const {
    return ((static_cast<size_t>(seq) * n_layer_ + layer) * n_ctx_ + pos) * kv_dim_;
  }
  int n_ctx_, n_seq_, n_layer_;
  int64_t kv_dim_;
  size_t elems_;
  std::unique_ptr<uint16_t[]> k_, v_;
};

}  // namespace edgelm
