#include "model/arch.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <string_view>

#include "edgelm/error.hpp"

namespace edgelm {
namespace {

using Norm = ModelConfig::Norm;
using Act = ModelConfig::Act;

// What a family's block does differently from the Llama block. Facts follow llama.cpp's graph
// for the architecture (src/models/<arch>.cpp there), which is the reference edgelm is tested
// against (tests/runtime/test_families.cpp).
struct ArchInfo {
  std::string_view name;
  bool rope_neox;     // rotary pairs (i, i + n_rot/2) instead of adjacent pairs
  Norm norm;          // block and output norms
  Act ffn_act;        // gated feed-forward activation
  bool scale_embd;    // embeddings times sqrt(n_embd)
  bool q_prescale;    // queries scaled after RoPE (scores then unscaled)
  bool post_norms;    // norms of the attention and FFN outputs before the residual adds
  bool qk_norm;       // per-head Q/K RMSNorm
  bool softcap;       // reads attn_logit_softcapping / final_logit_softcapping
  bool tied_always;   // the output projection is always token_embd (llama.cpp ignores output.weight)
  int swa_pattern;    // with a sliding window: every swa_pattern-th layer is global; 0: no local layers
  int swa_default;    // sliding window when the metadata has none (0: none)
};

// llama:    the Llama block (RMSNorm, GQA + RoPE, SwiGLU), also Llama 3, SmolLM, Mistral.
//           llama.cpp ignores llama.attention.sliding_window, and so does edgelm.
// qwen2:    Llama block with NeoX RoPE and Q/K/V biases.
// phi3:     NeoX RoPE, fused attn_qkv, fused ffn_up (gate half first), queries pre-scaled;
//           llama.cpp disables Phi-3's sliding window, and so does edgelm.
// gemma:    embeddings times sqrt(n_embd), GeGLU, NeoX RoPE, queries pre-scaled by
//           1/sqrt(key_length), output tied to token_embd. Norm weights hold Gemma's (1 + w):
//           llama.cpp's converter adds the 1, so every norm is a plain RMSNorm here.
// gemma2:   gemma plus post-attention / post-FFN norms, attention and final logit
//           soft-capping, sliding window on even layers (pattern 2, default window 4096).
// gemma3:   gemma2's block without soft-capping, plus Q/K head norms; five local layers
//           (RoPE base 10000) per global one.
// stablelm: LayerNorm with bias, NeoX RoPE on the first rope.dimension_count dims of a
//           head (partial rotary), SwiGLU, untied output, optional Q/K/V biases.
constexpr std::array<ArchInfo, 7> kArchs{{
    //  name        neox   norm         act         embd   qpre   post   qkn    cap    tied   swa  swa_def
    {"llama",    false, Norm::kRms,   Act::kSilu, false, false, false, false, false, false, 0, 0},
    {"qwen2",    true,  Norm::kRms,   Act::kSilu, false, false, false, false, false, false, 0, 0},
    {"phi3",     true,  Norm::kRms,   Act::kSilu, false, true,  false, false, false, false, 0, 0},
    {"gemma",    true,  Norm::kRms,   Act::kGelu, true,  true,  false, false, false, true,  0, 0},
    {"gemma2",   true,  Norm::kRms,   Act::kGelu, true,  true,  true,  false, true,  true,  2, 4096},
    {"gemma3",   true,  Norm::kRms,   Act::kGelu, true,  true,  true,  true,  false, false, 6, 0},
    {"stablelm", true,  Norm::kLayer, Act::kSilu, false, false, false, false, false, false, 0, 0},
}};

}  // namespace

std::string supported_architectures() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

ModelConfig read_config(const gguf::File& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  const ArchInfo* info = nullptr;
  for (const auto& a : kArchs)
    if (a.name == c.arch) info = &a;
  if (!info)
    throw Error(f.path() + ": architecture '" + c.arch + "' is not supported",
                "supported: " + supported_architectures());
  const std::string p = c.arch + ".";
  c.name = f.get_string_or("general.name", std::filesystem::path(f.path()).stem().string());
  c.n_layer = static_cast<int>(f.get_u32(p + "block_count"));
  c.n_embd = static_cast<int>(f.get_u32(p + "embedding_length"));
  c.n_ff = static_cast<int>(f.get_u32(p + "feed_forward_length"));
  c.n_head = static_cast<int>(f.get_u32(p + "attention.head_count"));
  c.n_head_kv = static_cast<int>(f.get_u32_or(p + "attention.head_count_kv", c.n_head));
  c.n_ctx_train = static_cast<int>(f.get_u32_or(p + "context_length", 2048));
  c.norm = info->norm;
  c.norm_eps = info->norm == Norm::kLayer ? f.get_f32_or(p + "attention.layer_norm_epsilon", 1e-5f)
                                          : f.get_f32_or(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_freq_base = f.get_f32_or(p + "rope.freq_base", 10000.0f);
  // RoPE scaling: linear (positions divided by the factor) and YaRN; not LongRoPE.
  const std::string scaling = f.get_string_or(p + "rope.scaling.type", "linear");
  if (scaling != "linear" && scaling != "none" && scaling != "yarn")
    throw Error(f.path() + ": RoPE scaling '" + scaling + "' is not supported yet",
                "edgelm supports linear and YaRN RoPE scaling; use a model without " + scaling + " scaling");
  float scale = f.get_f32_or(p + "rope.scaling.factor", 0.0f);
  if (scale == 0.0f) scale = f.get_f32_or(p + "rope.scale_linear", 0.0f);
  c.rope_freq_scale = scale > 0 && scaling != "none" ? 1.0f / scale : 1.0f;
  if (scaling == "yarn") {
    if (f.get_f32_or(p + "rope.scaling.yarn_log_multiplier", 0.0f) != 0.0f)
      throw Error(f.path() + ": YaRN with rope.scaling.yarn_log_multiplier is not supported yet",
                  "use a model whose YaRN scaling has no log multiplier");
    c.rope_yarn = true;
    c.yarn_orig_ctx = static_cast<int>(f.get_u32_or(p + "rope.scaling.original_context_length", c.n_ctx_train));
    // llama.cpp: get_mscale(factor) cancelled by the rotation's own 1 + 0.1 ln(factor), times
    // rope.scaling.attn_factor (all rounded as it rounds them)
    const float factor = 1.0f / c.rope_freq_scale;
    float af = factor <= 1.0f ? 1.0f : 0.1f * std::log(factor) + 1.0f;
    af *= 1.0f / (1.0f + 0.1f * std::log(factor));
    c.yarn_attn_factor = af * f.get_f32_or(p + "rope.scaling.attn_factor", 1.0f);
  }
  c.rope_neox = info->rope_neox;
  c.ffn_act = info->ffn_act;
  c.scale_embd = info->scale_embd;
  c.q_prescale = info->q_prescale;
  c.post_norms = info->post_norms;
  c.qk_norm = info->qk_norm;
  c.gemma_block = c.scale_embd && c.post_norms && c.qk_norm;  // gemma3's full set
  c.tied_output = info->tied_always;

  auto bad = [&](const std::string& what) {
    return Error(f.path() + ": " + what, "the model metadata is inconsistent; re-convert it");
  };
  if (c.n_layer <= 0 || c.n_layer > 1024) throw bad("block_count out of range");
  if (c.n_embd <= 0 || c.n_embd > 65536) throw bad("embedding_length out of range");
  if (c.n_ff <= 0 || c.n_ff > 1 << 20) throw bad("feed_forward_length out of range");
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    throw bad("head_count must be a positive multiple of head_count_kv");
  if (c.n_embd % c.n_head != 0) throw bad("embedding_length is not a multiple of head_count");
  c.head_dim = static_cast<int>(f.get_u32_or(p + "attention.key_length", c.n_embd / c.n_head));
  if (c.head_dim <= 0 || c.head_dim > 1024 || c.head_dim % 2 != 0)
    throw bad("attention head size must be even and at most 1024");
  if (static_cast<int>(f.get_u32_or(p + "attention.value_length", c.head_dim)) != c.head_dim)
    throw Error(f.path() + ": attention.value_length differs from attention.key_length",
                "edgelm needs equal key and value head sizes");
  c.n_rot = static_cast<int>(f.get_u32_or(p + "rope.dimension_count", c.head_dim));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0) throw bad("rope.dimension_count out of range");
  if (c.q_prescale) {
    if (c.arch == "gemma3") {
      // Gemma's converter stores the norm weights with the +1 of its (1 + w) scaling included.
      c.attn_scale = f.get_f32_or(p + "attention.query_pre_attn_scalar", 0.0f) > 0
                         ? 1.0f / std::sqrt(f.get_f32(p + "attention.query_pre_attn_scalar"))
                         : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    } else if (c.arch == "gemma2" && c.n_layer == 46) {
      // llama.cpp: Gemma 2 27B (46 layers) scales by 1/sqrt(n_embd / n_head), the others by
      // 1/sqrt(head size); it does not read query_pre_attn_scalar.
      c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_embd / c.n_head));
    } else {
      c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    }
  }
  if (info->softcap) {  // gemma2 always caps; llama.cpp's defaults are 50 and 30
    c.attn_softcap = f.get_f32_or(p + "attn_logit_softcapping", 50.0f);
    c.final_softcap = f.get_f32_or(p + "final_logit_softcapping", 30.0f);
  } else if (c.arch == "gemma3") {  // gemma3: an optional final cap
    c.final_softcap = f.get_f32_or(p + "final_logit_softcapping", 0.0f);
  }
  if (c.attn_softcap < 0 || c.final_softcap < 0) throw bad("logit soft-capping must not be negative");
  c.n_swa = static_cast<int>(f.get_u32_or(p + "attention.sliding_window", info->swa_default));
  if (info->swa_pattern == 0) c.n_swa = 0;  // the family has no local layers (in llama.cpp either)
  if (c.n_swa > 0) {
    const int pattern = static_cast<int>(f.get_u32_or(p + "attention.sliding_window_pattern", info->swa_pattern));
    c.swa_layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) c.swa_layers[il] = pattern == 0 || il % pattern < pattern - 1;
    if (c.arch == "gemma3") {
      c.rope_freq_base_swa = f.get_f32_or(p + "rope.freq_base_swa", 10000.0f);
      c.rope_freq_scale_swa = 1.0f;
    } else {  // gemma2: local layers rotate like the global ones unless the metadata says otherwise
      c.rope_freq_base_swa = f.get_f32_or(p + "rope.freq_base_swa", c.rope_freq_base);
      c.rope_freq_scale_swa = c.rope_freq_scale;
    }
  }
  const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) throw bad("tensor 'token_embd.weight' is missing");
  if (emb->n_dims != 2 || emb->ne[1] <= 0 || emb->ne[1] > (1 << 22)) throw bad("token_embd.weight has a bad shape");
  c.n_vocab = static_cast<int>(emb->ne[1]);
  return c;
}

}  // namespace edgelm
