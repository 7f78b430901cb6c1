// LoRA products beside the forward pass's matrix products (ForwardSeam::adapter): for every
// adapted (block, projection), y += s * B (A x) on the rows the calling thread computed. The
// same code serves inference (adapters loaded from files, Session) and training (A and B are a
// LanguageModel's parameters, with dropout on the adapter's input).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "model/forward.hpp"

namespace edgelm {

// One adapter's update of one product, on float storage the caller keeps alive and unchanged
// while a pass runs: a is rank rows of n_in, b is n_out rows of rank.
struct LoraProduct {
  const float* a = nullptr;
  const float* b = nullptr;
  int64_t rank = 0;
  float scale = 1.0f;
  int adapter = 0;  // index into LoraProducts::token_scales' rows
};

inline constexpr int kProjections = static_cast<int>(Projection::kOutput) + 1;

// The (block, projection) that multiplies by the base tensor `name`, if any. Fused tensors
// (one matrix for Q, K and V) are not targets.
std::optional<std::pair<int, Projection>> lora_target(const Model& base, const std::string& name);
// The tensor name of block `layer`'s projection in `base` ("blk.3.attn_q.weight"), empty if the
// block has none or it is fused.
std::string lora_tensor_name(const Model& base, int layer, Projection p);

class LoraProducts {
 public:
  explicit LoraProducts(int n_layer) : by_(static_cast<size_t>(n_layer + 1) * kProjections) {}
  void add(int layer, Projection p, const LoraProduct& m) { by_[index(layer, p)].push_back(m); }
  // Every matrix of an adapter checked against `base`, its products scaled by `scale` on top
  // of alpha / rank, as adapter number `index` of token_scales. The adapter must outlive this
  // object.
  void add(const Model& base, const LoraAdapter& a, float scale, int index = 0);
  std::span<const LoraProduct> at(int layer, Projection p) const { return by_[index(layer, p)]; }
  bool empty() const;

  // Training: inverted dropout on each adapter's input. Element i of token t's input row is
  // kept (and scaled by 1 / (1 - dropout)) by a hash of (seed, layer, projection, t, i), so a
  // pass run again with the same seed (recomputation, the backward pass) sees the same mask.
  float dropout = 0;
  uint64_t seed = 0;
  // Per batch entry scales (inference with several sequences, each with its own adapter
  // scales): the product of adapter k on entry t is further scaled by
  // token_scales[t * n_adapters + k]. Empty: 1 for all.
  std::span<const float> token_scales;
  int n_adapters = 0;

  // Token t's adapter input: x with dropout applied (a copy in `out`), or x itself.
  const float* input(int layer, Projection p, int64_t t, const float* x, int64_t n, float* out) const;

  // The seam: y += s * B (A x) for rows [r0, r1) of every token.
  void apply(const ProductRows& r) const;
  AdapterHook hook() const {
    return [this](const ProductRows& r) { apply(r); };
  }

 private:
  size_t index(int layer, Projection p) const {
    return static_cast<size_t>(layer + 1) * kProjections + static_cast<size_t>(p);
  }
  std::vector<std::vector<LoraProduct>> by_;  // [(layer + 1) * kProjections + projection]; layer -1: output
};

}  // namespace edgelm
