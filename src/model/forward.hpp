// The transformer forward pass over a batch of tokens that may belong to different sequences.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "edgelm/model.hpp"
#include "kernels/thread_pool.hpp"
#include "model/kv_cache.hpp"

namespace edgelm {

struct BatchEntry {
  int32_t token;
  int32_t pos;   // position within its sequence; K/V are written there
  int32_t seq;
  bool logits;   // produce the next-token logits after this entry
};

// Activations for up to max_tokens tokens in flight; allocated once per session.
class ForwardScratch {
 public:
  ForwardScratch(const ModelConfig& c, int max_tokens, int n_ctx, int n_threads);
  int max_tokens() const { return max_tokens_; }

 private:
  friend void forward(const Model&, std::span<const BatchEntry>, KvCache&, ForwardScratch&,
                      kernels::ThreadPool&, float*);
  int max_tokens_;
  int n_ctx_;
  std::vector<float> x, xn, q, k, v, att, tmp, gate, up, hidden, scores;
  std::vector<std::byte> xq;
};

// Runs the model on `batch` (at most scratch.max_tokens() entries; positions must be inside the
// cache and each sequence's earlier positions already filled). For every entry with
// logits=true, n_vocab floats are written to `logits`, in batch order.
void forward(const Model& model, std::span<const BatchEntry> batch, KvCache& kv,
             ForwardScratch& scratch, kernels::ThreadPool& pool, float* logits);

}  // namespace edgelm
