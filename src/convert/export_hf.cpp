// export_hf: a llama-family GGUF with float weights back to a Hugging Face checkpoint, the
// inverse of convert_hf's mapping (Q/K rows back to halves order, names back to transformers').
#include <filesystem>

#include "convert/hf_families.hpp"
#include "convert/hf_tokenizer.hpp"
#include "convert/safetensors.hpp"
#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"
#include "model/arch.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::convert {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string hf_name(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},  {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},       {"ffn_down", "mlp.down_proj"}};
  if (g.starts_with("blk.")) {
    const size_t dot = g.find('.', 4), last = g.rfind('.');
    const std::string module = g.substr(dot + 1, last - dot - 1), kind = g.substr(last + 1);
    for (auto [from, to] : kLayer)
      if (module == from) return "model.layers." + g.substr(4, dot - 4) + "." + to + "." + kind;
  }
  return "";
}

}  // namespace

ExportReport export_hf(const std::string& gguf_path, const std::string& out_dir) {
  const gguf::File f = gguf::File::open(gguf_path);
  const ModelConfig c = read_config(f);
  if (c.arch != "llama")
    throw Error(gguf_path + ": export --hf writes llama-family models, not '" + c.arch + "'",
                "export a model edgelm trained from a Llama-architecture base such as SmolLM2");
  if (c.rope_yarn) throw Error(gguf_path + ": export --hf does not write YaRN RoPE scaling");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error(out_dir + ": cannot create the directory", "choose a writable output directory");

  ExportReport r;
  r.arch = c.arch;
  std::vector<SafetensorsOut> out;
  bool has_output = false;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.type != DType::F32 && t.type != DType::F16 && t.type != DType::BF16)
      throw Error(gguf_path + ": tensor '" + t.name + "' is " + std::string(dtype_name(t.type)) +
                      "; export --hf writes float weights only",
                  "export the F32/F16 model edgelm trained or merged (edgelm export --merge-lora), not a quantized one");
    const std::string name = hf_name(t.name);
    if (name.empty()) throw Error(gguf_path + ": tensor '" + t.name + "' has no Hugging Face Llama counterpart");
    has_output |= t.name == "output.weight";
    SafetensorsOut o;
    o.name = name;
    for (int d = t.n_dims - 1; d >= 0; --d) o.shape.push_back(t.ne[d]);
    const int64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    o.data.resize(static_cast<size_t>(n));
    const TensorView v = f.view(t);
    kernels::reference_ops(t.type)->to_float(v.data, o.data.data(), n);
    const bool q = t.name.ends_with("attn_q.weight"), k = t.name.ends_with("attn_k.weight");
    if (q || k) {
      std::vector<float> tmp(o.data.size());
      permute_rope_rows(reinterpret_cast<const std::byte*>(o.data.data()), reinterpret_cast<std::byte*>(tmp.data()),
                        t.ne[1], static_cast<size_t>(t.ne[0]) * 4, q ? c.n_head : c.n_head_kv, true);
      o.data.swap(tmp);
    }
    out.push_back(std::move(o));
  }
  write_safetensors((fs::path(out_dir) / "model.safetensors").string(), out);
  r.files.push_back("model.safetensors");
  r.n_tensors = out.size();

  ojson cfg = {{"architectures", {"LlamaForCausalLM"}},
               {"model_type", "llama"},
               {"hidden_size", c.n_embd},
               {"intermediate_size", c.n_ff},
               {"num_hidden_layers", c.n_layer},
               {"num_attention_heads", c.n_head},
               {"num_key_value_heads", c.n_head_kv},
               {"head_dim", c.head_dim},
               {"max_position_embeddings", c.n_ctx_train},
               {"rms_norm_eps", c.norm_eps},
               {"rope_theta", c.rope_freq_base},
               {"vocab_size", c.n_vocab},
               {"tie_word_embeddings", !has_output},
               {"hidden_act", "silu"},
               {"attention_bias", false},
               {"mlp_bias", false},
               {"torch_dtype", "float32"}};
  if (c.rope_freq_scale != 1.0f) cfg["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 1.0f / c.rope_freq_scale}};
  for (const char* key : {"bos", "eos", "padding"}) {
    const std::string k = std::string("tokenizer.ggml.") + key + "_token_id";
    if (f.has(k)) cfg[std::string(key == std::string("padding") ? "pad" : key) + "_token_id"] = f.get_i64(k);
  }
  write_text_file((fs::path(out_dir) / "config.json").string(), cfg.dump(2) + "\n");
  r.files.push_back("config.json");
  export_tokenizer(f, out_dir, r.files);
  return r;
}

}  // namespace edgelm::convert
