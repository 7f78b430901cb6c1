// Loading a model: read the configuration from metadata, find and shape-check every weight.
#include <filesystem>
#include <string>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "kernels/kernels.hpp"
#include "model/arch.hpp"

namespace edgelm {
namespace {

std::string shape_str(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

// Fetches a tensor and checks its shape; every mismatch names the tensor, the shape found
// and the one the configuration implies.
TensorView require(const gguf::File& f, const std::string& name, std::vector<int64_t> shape,
                   bool computed) {
  const gguf::TensorInfo* info = f.find_tensor(name);
  if (!info)
    throw Error(f.path() + ": tensor '" + name + "' is missing",
                "the file is not a complete model of its architecture; re-convert it");
  TensorView t = f.view(*info);
  bool ok = t.n_dims == static_cast<int>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = t.ne[i] == shape[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw Error(f.path() + ": tensor '" + name + "' has shape " + shape_str(t) + ", expected " +
                    want + "]",
                "the metadata and the weights disagree; re-convert the model");
  }
  if (computed && !kernels::can_compute(t.type))
    throw Error(f.path() + ": tensor '" + name + "' has type " + std::string(dtype_name(t.type)) +
                    ", which edgelm cannot compute with yet",
                "requantize the model to Q8_0, Q4_0 or Q4_1");
  if (!computed && t.type != DType::F32)
    throw Error(f.path() + ": norm tensor '" + name + "' must be F32, found " +
                std::string(dtype_name(t.type)));
  return t;
}

// An optional tensor (data == nullptr when absent), shape-checked when present.
TensorView optional(const gguf::File& f, const std::string& name, std::vector<int64_t> shape) {
  if (!f.find_tensor(name)) return {};
  return require(f, name, std::move(shape), false);
}

// Rows [r0, r0 + n) of a matrix, as a view into the same bytes.
TensorView row_slice(const TensorView& t, int64_t r0, int64_t n) {
  TensorView v = t;
  v.ne[1] = n;
  v.data = t.row(r0);
  v.nbytes = static_cast<size_t>(n) * t.row_bytes();
  return v;
}

// Elements [i0, i0 + n) of an F32 vector.
TensorView vec_slice(const TensorView& t, int64_t i0, int64_t n) {
  TensorView v = t;
  v.ne[0] = n;
  v.data = t.data + static_cast<size_t>(i0) * sizeof(float);
  v.nbytes = static_cast<size_t>(n) * sizeof(float);
  return v;
}

}  // namespace

Model::Model(gguf::File file, std::string path) : file_(std::move(file)), path_(std::move(path)) {
  const gguf::File& f = file_;
  config_ = read_config(f);
  const ModelConfig& c = config_;
  const int64_t E = c.n_embd, q_dim = int64_t{c.n_head} * c.head_dim,
                kv_dim = int64_t{c.n_head_kv} * c.head_dim;

  weights_.token_embd = require(f, "token_embd.weight", {E, c.n_vocab}, true);
  weights_.output_norm = require(f, "output_norm.weight", {E}, false);
  const bool layer_norm = c.norm == ModelConfig::Norm::kLayer;
  if (layer_norm) weights_.output_norm_b = optional(f, "output_norm.bias", {E});
  if (!c.tied_output && f.find_tensor("output.weight")) {
    weights_.output = require(f, "output.weight", {E, c.n_vocab}, true);
  } else {
    weights_.output = weights_.token_embd;  // tied embeddings
    config_.tied_output = true;
  }
  if (f.find_tensor("rope_factors_long.weight") || f.find_tensor("rope_factors_short.weight"))
    throw Error(f.path() + ": LongRoPE frequency factors (rope_factors_*) are not supported yet",
                "use a model with the short (4k) context, which has none");
  weights_.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& L = weights_.layers[i];
    L.attn_norm = require(f, p + "attn_norm.weight", {E}, false);
    if (f.find_tensor(p + "attn_qkv.weight")) {
      // fused Q, K, V (phi3): rows [0, q_dim) are Q, then K, then V
      const TensorView qkv = require(f, p + "attn_qkv.weight", {E, q_dim + 2 * kv_dim}, true);
      L.wq = row_slice(qkv, 0, q_dim);
      L.wk = row_slice(qkv, q_dim, kv_dim);
      L.wv = row_slice(qkv, q_dim + kv_dim, kv_dim);
      if (f.find_tensor(p + "attn_qkv.bias")) {
        const TensorView b = optional(f, p + "attn_qkv.bias", {q_dim + 2 * kv_dim});
        L.bq = vec_slice(b, 0, q_dim);
        L.bk = vec_slice(b, q_dim, kv_dim);
        L.bv = vec_slice(b, q_dim + kv_dim, kv_dim);
      }
    } else {
      L.wq = require(f, p + "attn_q.weight", {E, q_dim}, true);
      L.wk = require(f, p + "attn_k.weight", {E, kv_dim}, true);
      L.wv = require(f, p + "attn_v.weight", {E, kv_dim}, true);
    }
    if (!L.bq.data) {
      L.bq = optional(f, p + "attn_q.bias", {q_dim});
      L.bk = optional(f, p + "attn_k.bias", {kv_dim});
      L.bv = optional(f, p + "attn_v.bias", {kv_dim});
    }
    L.wo = require(f, p + "attn_output.weight", {q_dim, E}, true);
    if (f.find_tensor(p + "attn_output.bias"))
      throw Error(f.path() + ": tensor '" + p + "attn_output.bias' (an attention output bias) is not supported yet");
    L.ffn_norm = require(f, p + "ffn_norm.weight", {E}, false);
    if (layer_norm) {
      L.attn_norm_b = optional(f, p + "attn_norm.bias", {E});
      L.ffn_norm_b = optional(f, p + "ffn_norm.bias", {E});
    }
    if (!f.find_tensor(p + "ffn_gate.weight") && f.find_tensor(p + "ffn_up.weight") &&
        f.find_tensor(p + "ffn_up.weight")->ne[1] == 2 * int64_t{c.n_ff}) {
      // fused gate and up (phi3): the first n_ff rows are the gate, the next n_ff the up projection
      const TensorView gu = require(f, p + "ffn_up.weight", {E, 2 * int64_t{c.n_ff}}, true);
      L.ffn_gate = row_slice(gu, 0, c.n_ff);
      L.ffn_up = row_slice(gu, c.n_ff, c.n_ff);
    } else {
      L.ffn_gate = require(f, p + "ffn_gate.weight", {E, c.n_ff}, true);
      L.ffn_up = require(f, p + "ffn_up.weight", {E, c.n_ff}, true);
    }
    L.ffn_down = require(f, p + "ffn_down.weight", {c.n_ff, E}, true);
    if (c.qk_norm) {
      L.attn_q_norm = require(f, p + "attn_q_norm.weight", {c.head_dim}, false);
      L.attn_k_norm = require(f, p + "attn_k_norm.weight", {c.head_dim}, false);
    } else if (f.find_tensor(p + "attn_q_norm.weight")) {
      throw Error(f.path() + ": Q/K norms ('" + p + "attn_q_norm.weight') are not supported for " + c.arch + " yet");
    }
    if (c.post_norms) {
      L.attn_post_norm = require(f, p + "post_attention_norm.weight", {E}, false);
      L.ffn_post_norm = require(f, p + "post_ffw_norm.weight", {E}, false);
    }
  }
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(f));
  if (tokenizer_->n_vocab() != c.n_vocab)
    throw Error(path_ + ": vocabulary has " + std::to_string(tokenizer_->n_vocab()) +
                " tokens but the embedding has " + std::to_string(c.n_vocab) + " rows");
}

std::shared_ptr<const Model> Model::load(const std::string& path_or_alias) {
  const std::string path = resolve_model_path(path_or_alias);
  return std::make_shared<const Model>(gguf::File::open(path), path);
}

std::optional<std::string> Model::chat_template() const {
  if (!file_.has("tokenizer.chat_template")) return std::nullopt;
  return file_.get_string("tokenizer.chat_template");
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& t : file_.tensors()) {
    int64_t e = 1;
    for (int i = 0; i < t.n_dims; ++i) e *= t.ne[i];
    n += e;
  }
  return n;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& t : file_.tensors()) n += t.nbytes;
  return n;
}

}  // namespace edgelm
