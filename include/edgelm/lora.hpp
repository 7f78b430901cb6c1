// LoRA adapters: a low-rank update W x + s * B (A x) beside a model's matrix products, with
// s = alpha / rank times the user's scale. Files use llama.cpp's adapter layout, so llama.cpp
// loads them with --lora and edgelm loads llama.cpp's:
//   general.type = "adapter", general.architecture = the base's, adapter.type = "lora",
//   adapter.lora.alpha (float); per adapted matrix "<base tensor>.lora_a" (ne = [n_in, rank])
//   and "<base tensor>.lora_b" (ne = [rank, n_out]).
//
//   auto model = edgelm::Model::load("smollm2");
//   auto lora = edgelm::LoraAdapter::load("facts.gguf", *model);
//   edgelm::Session s(model, {.lora = {{lora, 1.0f}}});
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgelm {

class Model;

struct LoraMatrix {
  std::string target;    // the base tensor, e.g. "blk.0.attn_q.weight"
  int64_t n_in = 0, n_out = 0, rank = 0;
  std::vector<float> a;  // rank rows of n_in
  std::vector<float> b;  // n_out rows of rank
};

class LoraAdapter {
 public:
  // Reads an adapter file and checks it against `base`: architecture, and every target a
  // matrix product of the base with matching shapes. Throws edgelm::Error naming the file and
  // what does not fit (not an adapter, another architecture or model, an unknown tensor).
  static std::shared_ptr<const LoraAdapter> load(const std::string& path, const Model& base);
  // Checks an adapter against `base` (as load does).
  void check(const Model& base, const std::string& what) const;
  // Writes the adapter atomically, with A and B as F32.
  void save(const std::string& path) const;

  std::string arch;       // the base's general.architecture
  std::string base_name;  // the base's general.name, when it has one
  float alpha = 0;        // 0: no alpha in the file; the scale is then 1 (llama.cpp's rule)
  std::vector<LoraMatrix> matrices;
  // alpha / rank (1 without alpha).
  float scale(const LoraMatrix& m) const { return alpha > 0 ? alpha / static_cast<float>(m.rank) : 1.0f; }
};

// An adapter applied at run time, its products scaled by `scale` on top of alpha / rank.
struct LoraUse {
  std::shared_ptr<const LoraAdapter> adapter;
  float scale = 1.0f;
};

// The base with the adapters' products folded into its weights (W + s B A), every matrix
// written as F16 (F32 with `f32`), vectors as F32, the base's metadata kept: what `edgelm
// export --merge-lora` writes and `edgelm quantize` then shrinks. Atomic.
void merge_lora(const Model& base, const std::vector<LoraUse>& adapters, const std::string& out_path, bool f32 = false);

}  // namespace edgelm
