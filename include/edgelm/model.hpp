// A loaded model: configuration, weights (used in place from the memory map) and tokenizer.
// Immutable once loaded and shareable across threads and sessions.
//
//   auto model = edgelm::Model::load("smollm2");          // a path or a model-cache alias
//   std::cout << model->config().n_layer << " layers\n";
//   auto ids = model->tokenizer().encode("Hello", true, false);
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgelm/gguf.hpp"
#include "edgelm/tensor.hpp"
#include "edgelm/tokenizer.hpp"

namespace edgelm {

struct ModelConfig {
  std::string arch;       // general.architecture
  std::string name;       // general.name (or the file name)
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;      // < n_head: grouped-query attention
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_rot = 0;          // rotary dimensions per head
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  float norm_eps = 1e-5f;
  bool rope_neox = false;
  bool tied_output = false;  // output projection shares token_embd.weight
  // Gemma-style block (gemma3): embeddings times sqrt(n_embd), RMSNorm of each Q and K head,
  // RMSNorm of the attention and feed-forward outputs before their residual adds, GeGLU.
  // The per-family switches below say which of these (and other) variations a block has;
  // gemma_block is gemma3's full set.
  bool gemma_block = false;
  float attn_scale = 0.0f;   // query scale; 0: 1 / sqrt(head_dim)
  enum class Norm { kRms, kLayer };  // RMSNorm, or LayerNorm (mean removed; optional bias)
  Norm norm = Norm::kRms;
  enum class Act { kSilu, kGelu };   // gated feed-forward: act(gate) * up
  Act ffn_act = Act::kSilu;
  bool scale_embd = false;    // embeddings times sqrt(n_embd) (Gemma)
  bool qk_norm = false;       // RMSNorm of every Q and K head before RoPE (gemma3)
  bool post_norms = false;    // RMSNorm of attention / FFN outputs before the residual (gemma2/3)
  bool q_prescale = false;    // queries times attn_scale after RoPE, scores unscaled (gemma, phi3)
  float attn_softcap = 0.0f;  // scores -> c * tanh(scores / c) before softmax (0: none; gemma2)
  float final_softcap = 0.0f; // logits -> c * tanh(logits / c) (0: none; gemma2)
  // Sliding-window attention: a local layer sees the last n_swa positions (0: none) and
  // rotates with its own RoPE base/scale; swa_layers[il] says which layers are local.
  int n_swa = 0;
  std::vector<bool> swa_layers;
  float rope_freq_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;
  // YaRN RoPE scaling (rope.scaling.type "yarn"), as llama.cpp applies it: angles mixed between
  // interpolated and extrapolated per rotary pair (ramp over the correction dims computed from
  // yarn_orig_ctx and betas 32 / 1), cos and sin times yarn_attn_factor * (1 + 0.1 ln(1/scale)).
  bool rope_yarn = false;
  int yarn_orig_ctx = 0;
  float yarn_attn_factor = 1.0f;
  bool is_swa(int il) const { return n_swa > 0 && il < static_cast<int>(swa_layers.size()) && swa_layers[il]; }
};

// One transformer block's weights (views into the memory map).
struct LayerWeights {
  TensorView attn_norm, wq, wk, wv, wo;
  TensorView ffn_norm, ffn_gate, ffn_up, ffn_down;
  // Optional (data == nullptr when absent): Q/K/V biases (qwen2), LayerNorm biases (stablelm).
  // A fused attn_qkv (phi3) is split into wq/wk/wv views and a fused ffn_up holding gate and
  // up halves into ffn_gate/ffn_up views, so the forward pass sees one layout.
  TensorView bq, bk, bv, attn_norm_b, ffn_norm_b;
  // Gemma 3 only (data == nullptr otherwise): per-head Q/K norms, post-attention and
  // post-feed-forward norms.
  TensorView attn_q_norm, attn_k_norm, attn_post_norm, ffn_post_norm;
};

struct ModelWeights {
  TensorView token_embd, output_norm, output;
  TensorView output_norm_b;  // LayerNorm bias (stablelm); data == nullptr otherwise
  std::vector<LayerWeights> layers;
};

// Called with the input of every matrix product the forward pass computes: the float rows
// (n_tokens x n_cols) that multiply the weight `weight_name`, before they are converted to the
// weight's activation format. Calls come from one thread, layer by layer; `x` is valid only
// during the call. A fused tensor split into several products (Phi-3's attn_qkv) is reported
// once per input. Used by `edgelm imatrix`.
using MatmulInputHook =
    std::function<void(const std::string& weight_name, const float* x, int64_t n_tokens, int64_t n_cols)>;
// Called with the residual stream after block `layer`: n_tok rows of n_embd floats, row t for
// the forward pass's token t, from one thread once every thread has finished the block; `x` is
// valid only during the call. Used by `edgelm distill` to measure how much each block changes
// its input.
using BlockOutputHook = std::function<void(int layer, const float* x, int64_t n_tok, int64_t n_embd)>;

class Model {
 public:
  // Loads a GGUF from a path, or resolves a cache alias ("smollm2") via resolve_model_path.
  // Throws edgelm::Error for a missing, corrupt or unsupported model.
  static std::shared_ptr<const Model> load(const std::string& path_or_alias);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const gguf::File& file() const { return file_; }
  const std::string& path() const { return path_; }
  std::optional<std::string> chat_template() const;
  int64_t n_params() const;
  uint64_t weight_bytes() const;

  Model(gguf::File file, std::string path);  // use load()

 private:
  gguf::File file_;
  std::string path_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// The model cache: $EDGELM_MODELS, else ~/.cache/edgelm/models.
std::string model_cache_dir();
// A path that exists is returned as is; otherwise the name is looked up as an alias
// ("smollm2", "gemma3") or a file name in the model cache. Throws edgelm::Error saying how to
// fetch the model when nothing matches.
std::string resolve_model_path(const std::string& name_or_path);

}  // namespace edgelm
