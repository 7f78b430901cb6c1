// One forward pass: the steps of ForwardPass, run by every thread of one thread-pool job.
#include "model/forward.hpp"

#include <algorithm>

#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"
#include "model/forward_pass.hpp"

namespace edgelm {

ForwardScratch::ForwardScratch(const ModelConfig& c, int max_tokens, int n_ctx, int n_threads)
    : max_tokens_(max_tokens), n_ctx_(n_ctx), n_threads_(std::max(1, n_threads)) {
  const size_t T = static_cast<size_t>(max_tokens);
  const size_t E = static_cast<size_t>(c.n_embd);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  const size_t FF = static_cast<size_t>(c.n_ff);
  x.allocate(T * E);
  xn.allocate(T * E);
  q.allocate(T * q_dim);
  k.allocate(T * kv_dim);
  v.allocate(T * kv_dim);
  att.allocate(T * q_dim);
  tmp.allocate(T * E);
  gate.allocate(T * FF);
  up.allocate(T * FF);  // the FFN activation is written over gate
  const size_t half_rot = static_cast<size_t>(std::max(1, c.n_rot / 2));
  const size_t n_tables = c.n_swa > 0 ? 2 : 1;
  rope_cos.allocate(n_tables * T * half_rot);
  rope_sin.allocate(n_tables * T * half_rot);
  if (c.n_swa > 0) {
    // A window's positions span at most n_swa / kPosBlock + 2 blocks.
    kwin_elems_ = static_cast<size_t>(std::min(c.n_swa, n_ctx) / KvCache::kPosBlock + 2) * KvCache::kPosBlock *
                  static_cast<size_t>(c.head_dim);
    kwin.allocate(static_cast<size_t>(n_threads_) * kwin_elems_);
  }
  const size_t group = static_cast<size_t>(std::max(1, c.n_head / std::max(1, c.n_head_kv)));
  const size_t ctx_pad = static_cast<size_t>((n_ctx + KvCache::kPosBlock - 1) / KvCache::kPosBlock * KvCache::kPosBlock);
  scores.allocate(static_cast<size_t>(n_threads_) * group * ctx_pad);
  // Widest converted row: F32 activations (4 bytes per element) of the widest input.
  const size_t widest = std::max({E, q_dim, FF});
  act_row_bytes_ = (widest * sizeof(float) + 63) / 64 * 64;
  xq.allocate(kSlots * T * act_row_bytes_);
  local_bytes_ = (E * sizeof(float) + 63) / 64 * 64 + kInputSlots * act_row_bytes_;
  local.allocate(static_cast<size_t>(n_threads_) * local_bytes_);
}

void rope_table(const ModelConfig& c, int64_t pos, bool local, float* cos, float* sin) {
  const float base = local ? c.rope_freq_base_swa : c.rope_freq_base;
  const float scale = local ? c.rope_freq_scale_swa : c.rope_freq_scale;
  if (c.rope_yarn)
    kernels::yarn_angles(c.n_rot, pos, base, scale, c.yarn_orig_ctx, c.yarn_attn_factor, cos, sin);
  else
    kernels::simd::rope_angles(c.n_rot, pos, base, scale, cos, sin);
}

void ActivationTape::prepare(const ModelConfig& c, int first, int end, int64_t n) {
  const size_t N = static_cast<size_t>(n), E = static_cast<size_t>(c.n_embd), FF = static_cast<size_t>(c.n_ff);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim, kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  first_block = first;
  blocks.resize(static_cast<size_t>(std::max(0, end - first)));
  std::vector<Block*> full;  // blocks that record everything
  for (Block& b : blocks) {
    b.x.resize(N * E);
    if (!checkpoints_only) full.push_back(&b);
  }
  if (checkpoints_only) full.push_back(&work);
  for (Block* bp : full) {
    Block& b = *bp;
    for (auto* v : {&b.xn1, &b.h, &b.xn2}) v->resize(N * E);
    b.q.resize(N * q_dim), b.k.resize(N * kv_dim), b.v.resize(N * kv_dim), b.att.resize(N * q_dim);
    b.lse.resize(N * static_cast<size_t>(c.n_head));
    b.gate.resize(N * FF), b.up.resize(N * FF);
    b.q_pre.resize(c.qk_norm ? N * q_dim : 0), b.k_pre.resize(c.qk_norm ? N * kv_dim : 0);
    b.o.resize(c.post_norms ? N * E : 0), b.down.resize(c.post_norms ? N * E : 0);
  }
  x_out.resize(N * E);
  n_tokens = n;
}

void forward(const Model& model, std::span<const BatchEntry> batch, KvCache& kv, ForwardScratch& scratch,
             kernels::ThreadPool& pool, float* logits, float* hidden) {
  forward(model.config(), model.weights(), batch, kv, scratch, pool, logits, hidden);
}

void forward(const ModelConfig& config, const ModelWeights& weights, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& scratch, kernels::ThreadPool& pool, float* logits, float* hidden) {
  if (batch.empty()) return;
  ForwardPass pass(config, weights, batch, kv, scratch, pool, logits, hidden);
  pool.run([&](int ith, int nth) {
    pass.embed(ith, nth);
    for (int il = pass.first_block(); il < pass.n_layer(); ++il) {
      pass.attention_input(il, ith, nth);
      pass.attention(il, ith, nth);
      pass.attention_output(il, ith, nth);
      pass.feed_forward(il, ith, nth);
      pass.block_output(il, ith);
    }
    pass.output(ith, nth);
  });
}

}  // namespace edgelm
