#include "model/arch.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <string_view>

#include "edgelm/error.hpp"

namespace edgelm {
namespace {

struct ArchInfo {
  std::string_view name;
  bool rope_neox;     // rotary pairs (i, i + n/2) instead of adjacent pairs
  bool gemma_block;   // Gemma 3 block (see ModelConfig::gemma_block)
  int swa_pattern;    // with a sliding window: every swa_pattern-th layer is global
};

// llama: the Llama block (RMSNorm, GQA + RoPE, SwiGLU), also Llama 3, SmolLM, Mistral.
// gemma3: embeddings scaled by sqrt(n_embd), Q/K head norms, post-attention and post-FFN norms,
// GeGLU, NeoX RoPE, five local (sliding-window, RoPE base 10000) layers per global one.
constexpr std::array<ArchInfo, 2> kArchs{{
    {"llama", false, false, 0},
    {"gemma3", true, true, 6},
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
  c.norm_eps = f.get_f32_or(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_freq_base = f.get_f32_or(p + "rope.freq_base", 10000.0f);
  const float scale = f.get_f32_or(p + "rope.scale_linear", 1.0f);
  c.rope_freq_scale = scale > 0 ? 1.0f / scale : 1.0f;
  c.rope_neox = info->rope_neox;

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
  c.n_rot = static_cast<int>(f.get_u32_or(p + "rope.dimension_count", c.head_dim));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0) throw bad("rope.dimension_count out of range");
  if (info->gemma_block) {
    c.gemma_block = true;
    // Gemma's converter stores the norm weights with the +1 of its (1 + w) scaling included.
    c.attn_scale = f.get_f32_or(p + "attention.query_pre_attn_scalar", 0.0f) > 0
                       ? 1.0f / std::sqrt(f.get_f32(p + "attention.query_pre_attn_scalar"))
                       : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  }
  c.n_swa = static_cast<int>(f.get_u32_or(p + "attention.sliding_window", 0));
  if (info->swa_pattern == 0) c.n_swa = 0;  // the family has no local layers
  if (c.n_swa > 0) {
    const int pattern = static_cast<int>(f.get_u32_or(p + "attention.sliding_window_pattern", info->swa_pattern));
    c.swa_layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) c.swa_layers[il] = pattern == 0 || il % pattern < pattern - 1;
    c.rope_freq_base_swa = f.get_f32_or(p + "rope.freq_base_swa", 10000.0f);
    c.rope_freq_scale_swa = 1.0f;
  }
  const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) throw bad("tensor 'token_embd.weight' is missing");
  if (emb->n_dims != 2 || emb->ne[1] <= 0 || emb->ne[1] > (1 << 22)) throw bad("token_embd.weight has a bad shape");
  c.n_vocab = static_cast<int>(emb->ne[1]);
  return c;
}

}  // namespace edgelm
