// Tiny random-weight models, one per architecture family, for checking each family's forward
// pass against llama.cpp (tests/runtime/test_families.cpp, tests/oracle/gen_family_fixtures.py).
// A model is a few F32 layers of small width with the family's metadata and tensor names and a
// REAL vocabulary copied from a model in the cache (SmolLM2's BPE vocabulary, or Gemma 3's
// SentencePiece one), so llama.cpp loads it like a converted checkpoint. The weights come from
// a seeded generator: the same family always gives the same bytes, so the test recreates the
// file instead of committing it, and `weights_hash` proves it matches the one the fixtures were
// made from.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"

namespace edgelm::test {

struct FamilySpec {
  std::string name;         // fixture key (e.g. "llama_swa")
  std::string arch;         // general.architecture
  std::string vocab_file;   // model in the cache whose tokenizer.* metadata is copied
  int n_layer = 3, n_embd = 64, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 96;
  int n_rot = 0;            // rope.dimension_count (0: head_dim, key omitted)
  bool key_length = false;  // write attention.key_length / value_length (head_dim != n_embd / n_head)
  bool tied = true;         // no output.weight
  bool qkv_bias = false;    // attn_q/k/v.bias
  bool fused_qkv = false;   // attn_qkv.weight (phi3)
  bool fused_up = false;    // ffn_up.weight holds gate and up (phi3)
  bool layer_norm = false;  // LayerNorm with bias (stablelm)
  bool post_norms = false;  // post_attention_norm / post_ffw_norm (gemma2/3)
  bool qk_norm = false;     // attn_q_norm / attn_k_norm (gemma3)
  int n_swa = 0;            // attention.sliding_window (0: key omitted)
  int swa_pattern = 0;      // attention.sliding_window_pattern (0: key omitted)
  float attn_softcap = 0, final_softcap = 0;  // 0: keys omitted
  float rope_base = 10000.0f, rope_base_swa = 0;  // rope_base_swa 0: key omitted
  float rope_linear = 0;    // rope.scaling.type linear with this factor (0: keys omitted)
  float rope_yarn = 0;      // rope.scaling.type yarn with this factor (0: keys omitted)
  int yarn_orig_ctx = 0;    // rope.scaling.original_context_length
  float q_scale_mult = 1;   // Q/K weights times this (sharper attention, so soft-capping bites)
};

inline std::vector<FamilySpec> family_specs() {
  // The two models scripts/fetch-models.sh installs (smollm2, gemma3).
  const std::string smol = "SmolLM2-135M-Instruct.Q4_1.gguf", gemma = "gemma-3-270m-q4_k_m.gguf";
  std::vector<FamilySpec> v;
  {  // SmolLM-style llama with an untied output, linear RoPE scaling and a Mistral-style window
     // key (llama.cpp ignores sliding_window for llama, so the window must have no effect)
    FamilySpec s{.name = "llama", .arch = "llama", .vocab_file = smol};
    s.tied = false;
    s.n_swa = 8;
    s.rope_linear = 4;
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "qwen2", .arch = "qwen2", .vocab_file = smol};
    s.qkv_bias = true;
    s.rope_base = 1e6f;
    v.push_back(s);
  }
  {  // qwen2 with YaRN scaling (as Qwen2.5 long-context configs)
    FamilySpec s{.name = "qwen2_yarn", .arch = "qwen2", .vocab_file = smol};
    s.qkv_bias = true;
    s.rope_yarn = 4;
    s.yarn_orig_ctx = 4096;  // correction dims 2..6 of the 8 rotary pairs: a real mix
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "phi3", .arch = "phi3", .vocab_file = smol};
    s.tied = false;
    s.fused_qkv = s.fused_up = true;
    s.n_head_kv = 4;  // Phi-3 mini has no GQA; the fused layout must still split right
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "gemma", .arch = "gemma", .vocab_file = gemma};
    s.head_dim = 32;  // q_dim 128 != n_embd 64, as in Gemma 7B
    s.key_length = true;
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "gemma2", .arch = "gemma2", .vocab_file = gemma};
    s.head_dim = 32;
    s.key_length = true;
    s.post_norms = true;
    s.n_swa = 8;
    s.attn_softcap = 3.0f;   // small caps so that tanh is far from linear
    s.final_softcap = 20.0f;
    s.q_scale_mult = 2.0f;
    s.n_layer = 4;
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "gemma3", .arch = "gemma3", .vocab_file = gemma};
    s.head_dim = 32;
    s.key_length = true;
    s.post_norms = s.qk_norm = true;
    s.n_swa = 8;
    s.swa_pattern = 2;
    s.rope_base = 1e6f;
    s.rope_base_swa = 1e4f;
    s.final_softcap = 25.0f;  // gemma3's optional final cap (llama.cpp reads it if present)
    s.n_layer = 4;
    v.push_back(s);
  }
  {
    FamilySpec s{.name = "stablelm", .arch = "stablelm", .vocab_file = smol};
    s.tied = false;
    s.layer_norm = true;
    s.qkv_bias = true;  // StableLM 2 1.6B has Q/K/V biases
    s.n_rot = 4;        // 25 % partial rotary, as StableLM 2
    s.n_head_kv = 4;
    v.push_back(s);
  }
  return v;
}

inline const FamilySpec& family_spec(const std::string& name) {
  static const std::vector<FamilySpec> specs = family_specs();
  for (const auto& s : specs)
    if (s.name == name) return s;
  throw Error("unknown synthetic family '" + name + "'");
}

// splitmix64: a small, well-mixed, portable generator.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float a) {  // in [-a, a)
    return static_cast<float>((static_cast<double>(next() >> 11) * 0x1.0p-53) * 2.0 - 1.0) * a;
  }

 private:
  uint64_t s_;
};

inline uint64_t fnv1a(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001B3ull;
  return h;
}

// Changes a tensor's generated values (row-major, ne[0] contiguous) before they are written.
using WeightEdit = std::function<void(const std::string& tensor_name, std::vector<float>& data)>;

// Writes the family's model to out_path (vocabulary from vocab_path); returns a hash of all
// tensor names and bytes. `edit`, if given, sees every tensor first (the generator's sequence
// is unchanged, so the other tensors keep their values).
inline uint64_t write_family_model(const FamilySpec& s, const std::string& vocab_path, const std::string& out_path,
                                   const WeightEdit& edit = {}) {
  const gguf::File voc = gguf::File::open(vocab_path);
  const int64_t n_vocab = static_cast<int64_t>(voc.get_string_array("tokenizer.ggml.tokens").size());
  gguf::Writer w;
  const std::string p = s.arch + ".";
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", "edgelm synthetic model");  // (llama.cpp keys vocab quirks on names like "phi3")
  w.set_u32(p + "context_length", 256);
  w.set_u32(p + "embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32(p + "block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32(p + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32(p + "attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32(p + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  if (s.layer_norm)
    w.set_f32(p + "attention.layer_norm_epsilon", 1e-5f);
  else
    w.set_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_f32(p + "rope.freq_base", s.rope_base);
  if (s.rope_base_swa > 0) w.set_f32(p + "rope.freq_base_swa", s.rope_base_swa);
  if (s.n_rot > 0) w.set_u32(p + "rope.dimension_count", static_cast<uint32_t>(s.n_rot));
  if (s.key_length) {
    w.set_u32(p + "attention.key_length", static_cast<uint32_t>(s.head_dim));
    w.set_u32(p + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  }
  if (s.n_swa > 0) w.set_u32(p + "attention.sliding_window", static_cast<uint32_t>(s.n_swa));
  if (s.swa_pattern > 0) w.set_u32(p + "attention.sliding_window_pattern", static_cast<uint32_t>(s.swa_pattern));
  if (s.attn_softcap > 0) w.set_f32(p + "attn_logit_softcapping", s.attn_softcap);
  if (s.final_softcap > 0) w.set_f32(p + "final_logit_softcapping", s.final_softcap);
  if (s.rope_linear > 0) {
    w.set_string(p + "rope.scaling.type", "linear");
    w.set_f32(p + "rope.scaling.factor", s.rope_linear);
  }
  if (s.rope_yarn > 0) {
    w.set_string(p + "rope.scaling.type", "yarn");
    w.set_f32(p + "rope.scaling.factor", s.rope_yarn);
    w.set_u32(p + "rope.scaling.original_context_length", static_cast<uint32_t>(s.yarn_orig_ctx));
  }
  for (const std::string& k : voc.keys())
    if (k.rfind("tokenizer.", 0) == 0 && k != "tokenizer.chat_template") w.set(k, *voc.find(k));

  // Weights: deterministic per family (seed from the name), uniform with unit-ish variance.
  uint64_t seed = 0x5EED;
  for (char ch : s.name) seed = seed * 131 + static_cast<unsigned char>(ch);
  SplitMix rng(seed);
  uint64_t hash = 0xCBF29CE484222325ull;
  auto add = [&](const std::string& name, std::vector<int64_t> ne, float center, float spread) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> data(static_cast<size_t>(n));
    for (auto& x : data) x = center + rng.uniform(spread);
    if (edit) edit(name, data);
    hash = fnv1a(hash, name.data(), name.size());
    hash = fnv1a(hash, data.data(), data.size() * sizeof(float));
    w.add_tensor(name, DType::F32, ne, data.data(), data.size() * sizeof(float));  // copied
  };
  const int64_t E = s.n_embd, q_dim = int64_t{s.n_head} * s.head_dim, kv_dim = int64_t{s.n_head_kv} * s.head_dim;
  const auto lin = [](int64_t fan_in) { return std::sqrt(3.0f / static_cast<float>(fan_in)); };
  add("token_embd.weight", {E, n_vocab}, 0, 1.0f);
  add("output_norm.weight", {E}, 1, 0.2f);
  if (s.layer_norm) add("output_norm.bias", {E}, 0, 0.2f);
  if (!s.tied) add("output.weight", {E, n_vocab}, 0, lin(E));
  for (int il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    add(b + "attn_norm.weight", {E}, 1, 0.2f);
    if (s.layer_norm) add(b + "attn_norm.bias", {E}, 0, 0.2f);
    if (s.fused_qkv) {
      add(b + "attn_qkv.weight", {E, q_dim + 2 * kv_dim}, 0, lin(E) * s.q_scale_mult);
    } else {
      add(b + "attn_q.weight", {E, q_dim}, 0, lin(E) * s.q_scale_mult);
      add(b + "attn_k.weight", {E, kv_dim}, 0, lin(E) * s.q_scale_mult);
      add(b + "attn_v.weight", {E, kv_dim}, 0, lin(E));
    }
    if (s.qkv_bias) {
      add(b + "attn_q.bias", {q_dim}, 0, 0.5f);
      add(b + "attn_k.bias", {kv_dim}, 0, 0.5f);
      add(b + "attn_v.bias", {kv_dim}, 0, 0.5f);
    }
    if (s.qk_norm) {
      add(b + "attn_q_norm.weight", {s.head_dim}, 1, 0.2f);
      add(b + "attn_k_norm.weight", {s.head_dim}, 1, 0.2f);
    }
    add(b + "attn_output.weight", {q_dim, E}, 0, lin(q_dim));
    if (s.post_norms) add(b + "post_attention_norm.weight", {E}, 1, 0.2f);
    add(b + "ffn_norm.weight", {E}, 1, 0.2f);
    if (s.layer_norm) add(b + "ffn_norm.bias", {E}, 0, 0.2f);
    if (s.fused_up) {
      add(b + "ffn_up.weight", {E, 2 * int64_t{s.n_ff}}, 0, lin(E) * 2);
    } else {
      add(b + "ffn_gate.weight", {E, s.n_ff}, 0, lin(E) * 2);
      add(b + "ffn_up.weight", {E, s.n_ff}, 0, lin(E));
    }
    add(b + "ffn_down.weight", {s.n_ff, E}, 0, lin(s.n_ff));
    if (s.post_norms) add(b + "post_ffw_norm.weight", {E}, 1, 0.2f);
  }
  w.write(out_path);
  return hash;
}

}  // namespace edgelm::test
