// Key/value cache for several independent sequences, stored as IEEE half floats (F16, the
// default) or as 8-bit blocks (Q8_0, `--kv-type q8_0`: 34 bytes per 32 values, 53 % of F16).
// F16 layout:
// V layout: [seq][layer][pos][n_head_kv * head_dim], one row per position.
// K layout: [seq][layer][block][n_head_kv * head_dim][kPosBlock], positions grouped in blocks
// of kPosBlock with the dimension outermost, so one vector of kPosBlock lanes holds one
// dimension of consecutive positions: attention scores for a block of positions come out of
// one multiply-add per dimension, each position's sum taken in dimension order.
// Memory is reserved up front but pages are only touched (and counted in RSS) as positions
// fill.
// Q8_0 layout: K and V alike, [seq][layer][pos][kv_dim / 32 blocks], one row per position
// (head h at block h * head_dim / 32); the head size must be a multiple of 32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "edgelm/model.hpp"

namespace edgelm {

class KvCache {
 public:
  static constexpr int kPosBlock = 16;

  KvCache(const ModelConfig& c, int n_ctx, int n_seq, DType type = DType::F16);

  DType type() const { return type_; }

  int n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  int n_layer() const { return n_layer_; }  // blocks with a cache (may be fewer than the model's)
  int64_t kv_dim() const { return kv_dim_; }
  size_t bytes() const;

  // K of block `block` (positions block * kPosBlock ...): element (dim i, position p) at
  // [i * kPosBlock + p % kPosBlock].
  uint16_t* k_block(int seq, int layer, int block) { return k_.get() + k_offset(seq, layer, block); }
  const uint16_t* k_block(int seq, int layer, int block) const { return k_.get() + k_offset(seq, layer, block); }
  // Elements between consecutive blocks.
  size_t k_block_stride() const { return static_cast<size_t>(kv_dim_) * kPosBlock; }
  // Writes K columns [c0, c1) of position pos (row holds c1 - c0 halves).
  void store_k(int seq, int layer, int pos, int64_t c0, int64_t c1, const uint16_t* row) {
    uint16_t* b = k_block(seq, layer, pos / kPosBlock) + pos % kPosBlock;
    for (int64_t i = c0; i < c1; ++i) b[i * kPosBlock] = row[i - c0];
  }
  uint16_t k_at(int seq, int layer, int pos, int64_t i) const {
    return k_block(seq, layer, pos / kPosBlock)[i * kPosBlock + pos % kPosBlock];
  }

  uint16_t* v(int seq, int layer, int pos) { return v_.get() + v_offset(seq, layer, pos); }
  const uint16_t* v(int seq, int layer, int pos) const { return v_.get() + v_offset(seq, layer, pos); }

  // Q8_0 cache: the row of position pos (row_bytes() bytes).
  size_t row_bytes() const { return row_bytes_; }
  const std::byte* k_row(int seq, int layer, int pos) const { return k8_.get() + row_offset(seq, layer, pos); }
  const std::byte* v_row(int seq, int layer, int pos) const { return v8_.get() + row_offset(seq, layer, pos); }
  // Quantizes columns [c0, c1) of position pos (c0, c1 multiples of 32) into the Q8_0 cache.
  void store_q8_0(bool key, int seq, int layer, int pos, int64_t c0, int64_t c1, const float* row);

 private:
  size_t row_offset(int seq, int layer, int pos) const {
    return ((static_cast<size_t>(seq) * n_layer_ + layer) * n_ctx_pad_ + pos) * row_bytes_;
  }
  size_t v_offset(int seq, int layer, int pos) const {
    return ((static_cast<size_t>(seq) * n_layer_ + layer) * n_ctx_pad_ + pos) * kv_dim_;
  }
  size_t k_offset(int seq, int layer, int block) const {
    return ((static_cast<size_t>(seq) * n_layer_ + layer) * n_ctx_pad_ + static_cast<size_t>(block) * kPosBlock) *
           kv_dim_;
  }
  int n_ctx_, n_ctx_pad_, n_seq_, n_layer_;
  int64_t kv_dim_;
  size_t elems_;
  DType type_;
  size_t row_bytes_ = 0;
  std::unique_ptr<uint16_t[]> k_, v_;
  std::unique_ptr<std::byte[]> k8_, v8_;
};

}  // namespace edgelm
