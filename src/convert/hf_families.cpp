// Facts about each family's layout follow llama.cpp's converter (convert_hf_to_gguf.py) and
// model graphs, which the converted files are tested against (tests/convert/).
#include "convert/hf_families.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>

#include "edgelm/error.hpp"

namespace edgelm::convert {
namespace {

using nlohmann::json;

struct Family {
  const char* arch;
  bool permute_qk;    // Llama: Q/K rows to llama.cpp's interleaved RoPE order
  bool gemma_norms;   // norm weights stored as w of (1 + w)
  bool tied_always;   // llama.cpp ignores lm_head
  bool layer_norm;    // LayerNorm (eps key differs)
};

const std::map<std::string, Family, std::less<>>& families() {
  static const std::map<std::string, Family, std::less<>> kByHfArch{
      {"LlamaForCausalLM", {"llama", true, false, false, false}},
      {"MistralForCausalLM", {"llama", true, false, false, false}},
      {"Qwen2ForCausalLM", {"qwen2", false, false, false, false}},
      {"GemmaForCausalLM", {"gemma", false, true, true, false}},
      {"Gemma2ForCausalLM", {"gemma2", false, true, true, false}},
      {"Gemma3ForCausalLM", {"gemma3", false, true, false, false}},
      {"Gemma3ForConditionalGeneration", {"gemma3", false, true, false, false}},
      {"Phi3ForCausalLM", {"phi3", false, false, false, false}},
      {"StableLmForCausalLM", {"stablelm", false, false, false, true}},
  };
  return kByHfArch;
}

// Reads config.json's keys with one-line errors.
class Config {
 public:
  Config(const json& j, const std::string& path) : j_(j), path_(path) {}
  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t integer(const char* key) const {
    const json* v = find(key);
    if (!v) throw Error(path_ + ": key \"" + key + "\" is missing", "the checkpoint's config.json is incomplete");
    return as_int(*v, key);
  }
  int64_t integer_or(const char* key, int64_t def) const { return find(key) ? as_int(*find(key), key) : def; }
  double number_or(const char* key, double def) const {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_number()) throw wrong(key, "a number");
    return v->get<double>();
  }
  bool boolean_or(const char* key, bool def) const {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_boolean()) throw wrong(key, "true or false");
    return v->get<bool>();
  }
  Error wrong(const std::string& key, const char* want) const {
    return Error(path_ + ": key \"" + key + "\" is not " + want, "fix config.json or save the checkpoint again");
  }
  const std::string& path() const { return path_; }

 private:
  int64_t as_int(const json& v, const char* key) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t{1} << 31))
      throw wrong(key, "a non-negative integer");
    return v.get<int64_t>();
  }
  const json& j_;
  std::string path_;
};

// rope_theta and the scaling, from transformers' older (rope_theta / rope_scaling) or newer
// (rope_parameters, optionally per attention kind) keys.
struct Rope {
  std::optional<double> theta;
  std::string type = "default";
  double factor = 0;
  int64_t original_ctx = 0;
  std::optional<double> partial_rotary_factor;
};

Rope read_rope(const json& config, const Config& c, const char* kind) {
  Rope r;
  const json* params = c.find("rope_parameters");
  if (params && params->is_object() && params->contains(kind)) params = &(*params)[kind];
  if (params && !params->is_object()) throw c.wrong("rope_parameters", "an object");
  if (const json* t = c.find("rope_theta")) {
    if (!t->is_number()) throw c.wrong("rope_theta", "a number");
    r.theta = t->get<double>();
  }
  const json* scaling = c.find("rope_scaling");
  if (scaling && !scaling->is_object()) throw c.wrong("rope_scaling", "an object");
  for (const json* p : {params, scaling}) {
    if (!p) continue;
    if (p->contains("rope_theta") && (*p)["rope_theta"].is_number()) r.theta = (*p)["rope_theta"].get<double>();
    for (const char* k : {"rope_type", "type"})
      if (p->contains(k) && (*p)[k].is_string()) r.type = (*p)[k].get<std::string>();
    if (p->contains("factor") && (*p)["factor"].is_number()) r.factor = (*p)["factor"].get<double>();
    if (p->contains("partial_rotary_factor") && (*p)["partial_rotary_factor"].is_number())
      r.partial_rotary_factor = (*p)["partial_rotary_factor"].get<double>();
    if (p->contains("original_max_position_embeddings") && (*p)["original_max_position_embeddings"].is_number_integer())
      r.original_ctx = (*p)["original_max_position_embeddings"].get<int64_t>();
  }
  if (r.type != "default" && r.type != "linear" && r.type != "yarn")
    throw Error(c.path() + ": RoPE scaling '" + r.type + "' is not supported",
                "edgelm runs linear and YaRN RoPE scaling; convert a checkpoint without " + r.type + " scaling");
  return r;
}

Error tensor_error(const Checkpoint& ck, const std::string& name, const std::string& what) {
  return Error(ck.file_of(name) + ": tensor '" + name + "' " + what, "the checkpoint does not match its config.json");
}

}  // namespace

void permute_rope_rows(const std::byte* in, std::byte* out, int64_t rows, size_t row_bytes, int heads, bool inverse) {
  const int64_t per_head = rows / heads, half = per_head / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t j = 0; j < half; ++j) {
        const int64_t interleaved = h * per_head + 2 * j + s, halves = h * per_head + s * half + j;
        const int64_t dst = inverse ? halves : interleaved, src = inverse ? interleaved : halves;
        std::memcpy(out + dst * row_bytes, in + src * row_bytes, row_bytes);
      }
}

std::string supported_hf_architectures() {
  std::string s;
  for (const auto& [name, f] : families()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

FamilyPlan plan_family(const json& config, const std::string& config_path, const Checkpoint& ck, gguf::Writer& w) {
  if (!config.is_object()) throw Error(config_path + ": not a JSON object", "save the checkpoint again");
  // Multimodal Gemma 3 keeps the language model's keys under text_config.
  const json& cj = config.contains("text_config") && config["text_config"].is_object() ? config["text_config"] : config;
  const Config c(cj, config_path);
  std::string hf_arch;
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
      config["architectures"][0].is_string())
    hf_arch = config["architectures"][0].get<std::string>();
  auto fit = families().find(hf_arch);
  if (fit == families().end())
    throw Error(config_path + ": architecture '" + (hf_arch.empty() ? std::string("(none)") : hf_arch) + "' is not supported",
                "edgelm convert reads " + supported_hf_architectures());
  const Family& fam = fit->second;
  FamilyPlan plan;
  plan.arch = fam.arch;
  const std::string a = plan.arch, p = a + ".";

  const int64_t n_embd = c.integer("hidden_size"), n_layer = c.integer("num_hidden_layers");
  const int64_t n_head = c.integer("num_attention_heads");
  const int64_t n_head_kv = c.integer_or("num_key_value_heads", n_head);
  const int64_t n_ff = c.integer("intermediate_size");
  if (n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ff <= 0 || n_head % n_head_kv != 0)
    throw Error(config_path + ": hidden_size, num_hidden_layers, intermediate_size and the head counts must be positive, "
                "num_attention_heads a multiple of num_key_value_heads", "fix config.json");
  const int64_t head_dim = c.integer_or("head_dim", n_embd / n_head);
  if (head_dim <= 0 || head_dim % 2) throw Error(config_path + ": head_dim must be positive and even", "fix config.json");

  w.set_string("general.architecture", a);
  w.set_u32(p + "context_length", static_cast<uint32_t>(c.integer_or("max_position_embeddings", 2048)));
  w.set_u32(p + "embedding_length", static_cast<uint32_t>(n_embd));
  w.set_u32(p + "block_count", static_cast<uint32_t>(n_layer));
  w.set_u32(p + "feed_forward_length", static_cast<uint32_t>(n_ff));
  w.set_u32(p + "attention.head_count", static_cast<uint32_t>(n_head));
  w.set_u32(p + "attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
  if (fam.layer_norm)
    w.set_f32(p + "attention.layer_norm_epsilon", static_cast<float>(c.number_or("layer_norm_eps", 1e-5)));
  else
    w.set_f32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.number_or("rms_norm_eps", 1e-6)));
  if (head_dim != n_embd / n_head || a.starts_with("gemma")) {
    w.set_u32(p + "attention.key_length", static_cast<uint32_t>(head_dim));
    w.set_u32(p + "attention.value_length", static_cast<uint32_t>(head_dim));
  }
  const Rope rope = read_rope(cj, c, "full_attention");
  const double theta_default = a == "gemma3" ? 1e6 : 10000.0;
  w.set_f32(p + "rope.freq_base", static_cast<float>(rope.theta.value_or(theta_default)));
  if (rope.type == "linear" && rope.factor > 0) {
    w.set_string(p + "rope.scaling.type", "linear");
    w.set_f32(p + "rope.scaling.factor", static_cast<float>(rope.factor));
  } else if (rope.type == "yarn") {
    w.set_string(p + "rope.scaling.type", "yarn");
    w.set_f32(p + "rope.scaling.factor", static_cast<float>(rope.factor));
    w.set_u32(p + "rope.scaling.original_context_length", static_cast<uint32_t>(rope.original_ctx));
  }
  int64_t n_rot = head_dim;
  if (a == "stablelm" || a == "phi3")
    n_rot = static_cast<int64_t>(std::lround(
        c.number_or("partial_rotary_factor", rope.partial_rotary_factor.value_or(a == "stablelm" ? 0.25 : 1.0)) * head_dim));
  if (n_rot <= 0 || n_rot > head_dim || n_rot % 2) throw Error(config_path + ": partial_rotary_factor gives an odd or empty rotation", "fix config.json");
  w.set_u32(p + "rope.dimension_count", static_cast<uint32_t>(n_rot));

  if (a == "gemma2") {
    w.set_f32(p + "attn_logit_softcapping", static_cast<float>(c.number_or("attn_logit_softcapping", 50.0)));
    w.set_f32(p + "final_logit_softcapping", static_cast<float>(c.number_or("final_logit_softcapping", 30.0)));
    w.set_u32(p + "attention.sliding_window", static_cast<uint32_t>(c.integer_or("sliding_window", 4096)));
  }
  if (a == "gemma3") {
    if (c.number_or("attn_logit_softcapping", 0) != 0)
      throw Error(config_path + ": Gemma 3 with attn_logit_softcapping is not supported", "llama.cpp and edgelm run Gemma 3 without it");
    if (const double cap = c.number_or("final_logit_softcapping", 0); cap > 0)
      w.set_f32(p + "final_logit_softcapping", static_cast<float>(cap));
    w.set_u32(p + "attention.sliding_window", static_cast<uint32_t>(c.integer_or("sliding_window", 512)));
    const Rope local = read_rope(cj, c, "sliding_attention");
    w.set_f32(p + "rope.freq_base_swa", static_cast<float>(c.number_or("rope_local_base_freq", local.theta.value_or(10000.0))));
    w.set_f32(p + "attention.query_pre_attn_scalar", static_cast<float>(c.number_or("query_pre_attn_scalar", head_dim)));
    // Every pattern-th layer is global; layer_types, where present, must say the same.
    int64_t pattern = c.integer_or("sliding_window_pattern", 6);
    if (const json* lt = c.find("layer_types")) {
      if (!lt->is_array() || static_cast<int64_t>(lt->size()) != n_layer) throw c.wrong("layer_types", "one entry per layer");
      int64_t first_global = -1;
      for (int64_t i = 0; i < n_layer && first_global < 0; ++i)
        if ((*lt)[i] == "full_attention") first_global = i;
      if (first_global >= 0) pattern = first_global + 1;
      for (int64_t i = 0; i < n_layer; ++i)
        if (((*lt)[i] == "full_attention") != (i % pattern == pattern - 1))
          throw Error(config_path + ": layer_types is not a repeating pattern of sliding layers and one global layer",
                      "edgelm and llama.cpp run Gemma 3's regular pattern only");
    }
    w.set_u32(p + "attention.sliding_window_pattern", static_cast<uint32_t>(pattern));
  }
  if (a == "stablelm") {
    if (c.boolean_or("use_parallel_residual", false) || c.boolean_or("qk_layernorm", false))
      throw Error(config_path + ": StableLM with use_parallel_residual or qk_layernorm is not supported",
                  "convert a StableLM 2 checkpoint of 1.6B or 3B");
  }

  // Tensors. Multimodal checkpoints keep the language model under a prefix; vision parts are left out.
  const bool top_tied = config.contains("tie_word_embeddings") && config["tie_word_embeddings"].is_boolean() &&
                        config["tie_word_embeddings"].get<bool>();
  const bool tied = fam.tied_always || c.boolean_or("tie_word_embeddings", top_tied);
  static const std::map<std::string, std::string, std::less<>> kLayerNames{
      {"input_layernorm", "attn_norm"},
      {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},
      {"self_attn.qkv_proj", "attn_qkv"},
      {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},
      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},
      {"mlp.gate_up_proj", "ffn_up"},  // phi3: gate rows first, as llama.cpp's graph reads them
      {"mlp.down_proj", "ffn_down"},
  };
  const bool gemma_post = a == "gemma2" || a == "gemma3";
  for (const SafetensorsTensor* t : ck.tensors()) {
    std::string n = t->name;
    for (const char* prefix : {"model.language_model.", "language_model.model.", "language_model."})
      if (n.starts_with(prefix)) n = "model." + n.substr(std::strlen(prefix));
    if (n.starts_with("vision_tower.") || n.starts_with("multi_modal_projector.") || n.starts_with("model.vision_tower.") ||
        n.starts_with("model.multi_modal_projector."))
      continue;
    if (n.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
    TensorMapping m;
    m.src = t;
    std::string suffix;
    if (n == "model.embed_tokens.weight") m.name = "token_embd.weight";
    else if (n == "model.norm.weight" || n == "model.norm.bias") m.name = "output_norm." + n.substr(11);
    else if (n == "lm_head.weight") {
      if (tied) continue;
      m.name = "output.weight";
    } else if (n.starts_with("model.layers.")) {
      const size_t dot = n.find('.', 13);
      const std::string idx = n.substr(13, dot == std::string::npos ? 0 : dot - 13);
      if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos || std::stoll(idx) >= n_layer)
        throw tensor_error(ck, t->name, "names a layer outside num_hidden_layers = " + std::to_string(n_layer));
      const std::string rest = n.substr(dot + 1);
      const size_t last = rest.rfind('.');
      const std::string module = rest.substr(0, last), kind = rest.substr(last + 1);
      std::string g;
      if (module == "post_attention_layernorm") g = gemma_post ? "post_attention_norm" : "ffn_norm";
      else if (module == "pre_feedforward_layernorm" && gemma_post) g = "ffn_norm";
      else if (module == "post_feedforward_layernorm" && gemma_post) g = "post_ffw_norm";
      else if (auto it = kLayerNames.find(module); it != kLayerNames.end()) g = it->second;
      if (g.empty() || (kind != "weight" && kind != "bias"))
        throw tensor_error(ck, t->name, "is not a tensor edgelm convert knows for " + hf_arch);
      m.name = "blk." + idx + "." + g + "." + kind;
      if (fam.permute_qk && kind == "weight" && (g == "attn_q" || g == "attn_k")) {
        m.op = TensorOp::kPermuteRope;
        m.rope_heads = static_cast<int>(g == "attn_q" ? n_head : n_head_kv);
      }
    } else {
      throw tensor_error(ck, t->name, "is not a tensor edgelm convert knows for " + hf_arch);
    }
    if (fam.gemma_norms && m.name.ends_with("norm.weight")) m.op = TensorOp::kPlusOne;
    if (t->shape.empty() || t->shape.size() > 2) throw tensor_error(ck, t->name, "has " + std::to_string(t->shape.size()) + " dimensions; 1 or 2 expected");
    t->float_type(ck.file_of(t->name));
    if (m.op == TensorOp::kPermuteRope && (t->shape.size() != 2 || t->shape[0] != m.rope_heads * head_dim))
      throw tensor_error(ck, t->name, "has " + std::to_string(t->shape[0]) + " rows, not heads x head_dim");
    if (m.name == "token_embd.weight") {
      if (t->shape.size() != 2 || t->shape[1] != n_embd) throw tensor_error(ck, t->name, "is not vocabulary x hidden_size");
      plan.n_vocab = static_cast<int>(t->shape[0]);
    }
    plan.tensors.push_back(std::move(m));
  }
  if (plan.n_vocab == 0)
    throw Error(config_path + ": the checkpoint has no model.embed_tokens.weight", "point edgelm convert at a whole causal LM checkpoint");
  // Layers in order, then the rest as llama.cpp lays them out: embeddings first, output last.
  auto rank = [](const std::string& n) -> std::pair<int64_t, std::string> {
    if (n == "token_embd.weight") return {-1, n};
    if (n.starts_with("blk.")) return {std::stoll(n.substr(4)), n};
    return {1 << 30, n};
  };
  std::stable_sort(plan.tensors.begin(), plan.tensors.end(),
                   [&](const TensorMapping& x, const TensorMapping& y) { return rank(x.name) < rank(y.name); });
  return plan;
}

}  // namespace edgelm::convert
