// The whole language model in training: float32 master weights viewed as ModelWeights, the
// inference forward pass with an activation tape, the chunked cross-entropy over the
// vocabulary, and the backward pass block by block in reverse. Each backward step undoes one
// forward step of src/model/forward_pass.cpp:
//   output      logits = W_out norm(x) (soft-capped)        <- cross-entropy, chunks of rows
//   block       h = x + [post_norm](W_o attention(rope(norm_qk(W_{q,k,v} norm(x) + b))))
//               y = h + [post_norm](W_down act(W_gate norm(h), W_up norm(h)))
//   embedding   x = E[token] (* sqrt(n_embd))
// Matrix products split their output rows (weight gradients) or tokens (input gradients)
// between threads; attention splits KV heads; the norms, whose weight gradients every token
// adds to, run on one thread (O(tokens x width), small beside the products).
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <unordered_map>

#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/train.hpp"
#include "kernels/backward.hpp"
#include "kernels/kernels.hpp"
#include "kernels/simd.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "model/lora.hpp"

namespace edgelm::train {

int64_t TokenBatch::n_tokens() const {
  int64_t n = 0;
  for (const auto& s : tokens) n += static_cast<int64_t>(s.size());
  return n;
}

int64_t TokenBatch::n_targets() const {
  int64_t n = 0;
  for (const auto& s : targets)
    for (int32_t t : s) n += t >= 0;
  return n;
}

namespace {

constexpr int64_t kRowAlign = 16;
constexpr int64_t kLossChunk = 128;  // tokens whose logits are held at once
constexpr int64_t kVocabChunk = 8192;  // rows of a quantized output matrix dequantized at once

const float* fdata(const TensorView& t) { return reinterpret_cast<const float*>(t.data); }

}  // namespace

struct LanguageModel::Impl {
  std::shared_ptr<const Model> base;
  ModelConfig c;
  std::vector<Param> params;
  ModelWeights w;
  std::unordered_map<const std::byte*, float*> grad_of;  // a weight view's data -> its gradient
  kernels::ThreadPool pool;
  std::unique_ptr<ForwardScratch> scratch;
  std::unique_ptr<KvCache> kv;
  ActivationTape tape;
  std::vector<BatchEntry> entries;
  std::vector<float> hidden;  // final norm output of every token
  bool taped = false;         // the last pass was recorded
  bool caller_residual = false;  // the last pass started from the caller's residual stream
  bool recompute = false;     // LanguageModelOptions::recompute
  struct Work {
    std::vector<float> dx, dh, dtmp, dxn, act, dact, dgate, dup, datt, dq, dk, dv;
  } work;                     // the backward pass's buffers
  std::vector<float> dhidden;

  // LoRA: the adapters on the seam; one slot per adapted product, with its parameters.
  struct LoraSlot {
    int layer;
    Projection proj;
    std::string target;
    int64_t n_in, n_out, rank;
    size_t a, b;  // params indices
  };
  LoraOptions lora_opts;
  float lora_scale = 1;        // alpha / rank, of every adapted product
  std::unique_ptr<LoraProducts> lora;
  AdapterHook lora_hook;
  std::vector<LoraSlot> lora_slots;
  uint64_t lora_passes = 0;    // training passes so far (each draws its own dropout masks)
  bool training_pass = false;  // the next pass is for a backward step (dropout on)
  std::vector<float> wbuf, lx, lu, ldu;  // dequantized weights, LoRA backward buffers

  int first = 0, end = 0;      // blocks run: [first, end)
  bool lm_head = true;
  std::vector<int> param_of;  // file tensor index -> params index, -1 when frozen

  Impl(std::shared_ptr<const Model> m, const LanguageModelOptions& o)
      : base(std::move(m)), c(base->config()), pool(std::max(1, o.n_threads)), recompute(o.recompute) {}

  TensorView remap(const TensorView& v);
  float* grad(const TensorView& v) const {
    const auto it = grad_of.find(v.data);
    return it == grad_of.end() ? nullptr : it->second;
  }
  void check_batch(const TokenBatch& b) const;
  void run_forward(const TokenBatch& b);
  void run(int max_len, int n_seq, const float* residual_in, bool record, float* hidden_out);
  double output_loss(const TokenBatch& b, float* dhidden, float* logits_out, const DistillLoss* kd = nullptr);
  void backward(const float* dhidden);
  void init_lora(const LoraOptions& o);
  void set_lora_seam(ForwardSeam& seam) const;
  const float* float_weights(const TensorView& w);
  void lora_backward(int il, Projection p, const float* dy, const float* x, float* dx);
  const ActivationTape::Block& block_record(int il);

  // --- helpers, each a pool job ---
  void weight_grad(const float* dy, int64_t n_out, const float* x, int64_t n_in, float* dw);
  void input_grad(const float* dy, int64_t n_out, const TensorView& w, float* dx, bool accumulate);
  void norm_backward(const float* x, const TensorView& nw, const TensorView& nb, const float* dy, int64_t rows,
                     int64_t width, float* dx, bool accumulate);
};

// The view of a weight in the float32 copy, when its tensor is trained; else the model's own.
TensorView LanguageModel::Impl::remap(const TensorView& v) {
  if (!v.data) return v;
  const gguf::File& f = base->file();
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorView t = f.view(f.tensors()[i]);
    if (v.data < t.data || v.data >= t.data + t.nbytes) continue;
    if (param_of[i] < 0) return v;
    const size_t off = static_cast<size_t>(v.data - t.data) / t.row_bytes() * static_cast<size_t>(t.ne[0]);
    Param& p = params[static_cast<size_t>(param_of[i])];
    TensorView out = v;
    out.type = DType::F32;
    out.data = reinterpret_cast<const std::byte*>(p.value.data() + off);
    out.nbytes = static_cast<size_t>(v.nelements()) * sizeof(float);
    grad_of[out.data] = p.grad.data() + off;
    return out;
  }
  throw Error("internal: weight " + v.name + " lies outside the model file's tensors");
}

namespace {
// Every weight of a block, in one order, for a const or a mutable LayerWeights.
template <class LW>
auto layer_fields(LW& L) {
  return std::array{&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_norm, &L.ffn_gate, &L.ffn_up, &L.ffn_down,
                    &L.bq, &L.bk, &L.bv, &L.attn_norm_b, &L.ffn_norm_b, &L.attn_q_norm, &L.attn_k_norm,
                    &L.attn_post_norm, &L.ffn_post_norm};
}

// Block index of a tensor named "blk.<i>.*", else -1.
int block_of(const std::string& name) {
  if (!name.starts_with("blk.")) return -1;
  try {
    return std::stoi(name.substr(4));
  } catch (const std::exception&) {
    return -1;
  }
}
}  // namespace

LanguageModel::LanguageModel(std::shared_ptr<const Model> base, LanguageModelOptions o)
    : impl_(std::make_unique<Impl>(std::move(base), o)) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  if (m.base->weights().layers.size() != static_cast<size_t>(c.n_layer))
    throw Error("internal: layer count mismatch");
  m.end = o.n_layers > 0 && o.n_layers < c.n_layer ? o.n_layers : c.n_layer;
  m.first = o.first_block;
  m.lm_head = o.lm_head;
  if (m.first < 0 || m.first >= m.end)
    throw Error("the first trained block (" + std::to_string(m.first) + ") must be below the blocks used (" +
                std::to_string(m.end) + ")");
  const gguf::File& f = m.base->file();
  const ModelWeights& b = m.base->weights();
  // Tensors the forward pass reads (a file may hold others, such as a checkpoint's optimizer state).
  std::vector<const TensorView*> views{&b.token_embd, &b.output_norm, &b.output_norm_b, &b.output};
  for (const LayerWeights& L : b.layers)
    for (const TensorView* v : layer_fields(L)) views.push_back(v);
  m.param_of.assign(f.tensors().size(), -1);
  bool every_read_trained = true;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorView t = f.view(f.tensors()[i]);
    const int blk = block_of(t.name);
    // Trained: the blocks run; the final norm; with the whole model, embeddings and output.
    // With LoRA nothing of the base trains.
    const bool trained = o.lora.rank > 0 ? false
                         : blk >= 0     ? blk >= m.first && blk < m.end
                                        : o.lm_head || t.name.starts_with("output_norm");
    const bool read = std::any_of(views.begin(), views.end(), [&](const TensorView* v) {
      return v->data && v->data >= t.data && v->data < t.data + t.nbytes;
    });
    if (read && !trained) every_read_trained = false;
    if (!trained || !read) continue;
    if (t.type != DType::F32 && !kernels::can_compute(t.type))
      throw Error("tensor " + t.name + " has type " + std::string(dtype_name(t.type)) + ", which edgelm cannot train");
    m.param_of[i] = static_cast<int>(m.params.size());
    Param& p = m.params.emplace_back();
    p.name = t.name;
    p.shape.assign(t.ne.begin(), t.ne.begin() + std::max(1, t.n_dims));
    p.resize(static_cast<size_t>(t.nelements()));
    // Gemma checkpoints store every norm weight as 1 + w (the framework's parameter is w), so
    // weight decay pulls those towards 1.
    if (c.arch.starts_with("gemma") && t.n_dims == 1 && t.name.ends_with("norm.weight")) p.decay_center = 1.0f;
    for (int64_t r = 0; r < t.nrows(); ++r) kernels::dequantize_row(t.type, t.row(r), p.value.data() + r * t.ne[0], t.ne[0]);
  }
  if (o.lora.rank > 0) {
    m.w = b;  // the base's own weights, in their own types
    m.init_lora(o.lora);
    return;
  }
  // Every weight copied: the file's pages are not read again during training.
  if (every_read_trained) f.release_pages();
  m.w.token_embd = m.remap(b.token_embd);
  m.w.output_norm = m.remap(b.output_norm);
  m.w.output_norm_b = m.remap(b.output_norm_b);
  m.w.output = m.remap(b.output);
  for (const LayerWeights& L : b.layers) {
    LayerWeights o;
    const auto src = layer_fields(L);
    const auto dst = layer_fields(o);
    for (size_t k = 0; k < src.size(); ++k) *dst[k] = m.remap(*src[k]);
    m.w.layers.push_back(std::move(o));
  }
}

void LanguageModel::Impl::init_lora(const LoraOptions& o) {
  lora_opts = o;
  if (o.alpha <= 0) throw Error("the LoRA alpha must be positive (got " + std::to_string(o.alpha) + ")");
  if (!(o.dropout >= 0 && o.dropout < 1))
    throw Error("the LoRA dropout must be in [0, 1) (got " + std::to_string(o.dropout) + ")");
  if (o.targets.empty()) throw Error("LoRA needs at least one target module (among q k v o gate up down)");
  static const std::pair<const char*, Projection> kNames[] = {
      {"q", Projection::kQ},       {"k", Projection::kK},   {"v", Projection::kV},      {"o", Projection::kO},
      {"gate", Projection::kGate}, {"up", Projection::kUp}, {"down", Projection::kDown}};
  std::vector<Projection> targets;
  for (const std::string& name : o.targets) {
    const auto* it = std::find_if(std::begin(kNames), std::end(kNames), [&](const auto& k) { return name == k.first; });
    if (it == std::end(kNames))
      throw Error("unknown LoRA target module '" + name + "'", "choose among q k v o gate up down");
    if (std::find(targets.begin(), targets.end(), it->second) == targets.end()) targets.push_back(it->second);
  }
  // The backward pass reads the frozen norms and biases as float32.
  const auto f32 = [&](const TensorView& v) {
    if (v.data && v.type != DType::F32)
      throw Error("tensor " + v.name + " has type " + std::string(dtype_name(v.type)) +
                  "; LoRA training needs norm weights and biases in F32");
  };
  f32(w.output_norm);
  f32(w.output_norm_b);
  for (int il = first; il < end; ++il)
    for (const TensorView* v : layer_fields(w.layers[il]))
      if (v->n_dims <= 1) f32(*v);
  Rng rng(o.seed);
  for (int il = first; il < end; ++il)
    for (Projection p : targets) {
      const std::string name = lora_tensor_name(*base, il, p);
      if (name.empty())
        throw Error("block " + std::to_string(il) + " has no separate matrix for LoRA target '" +
                    o.targets[static_cast<size_t>(std::find(targets.begin(), targets.end(), p) - targets.begin())] +
                    "' (a fused tensor)");
      const gguf::TensorInfo& info = *base->file().find_tensor(name);
      const struct {
        int64_t n_in, n_out;
      } t{info.ne[0], info.ne[1]};
      if (o.rank > std::min(t.n_in, t.n_out))
        throw Error("LoRA rank " + std::to_string(o.rank) + " is larger than the matrix " + name + " (" +
                        std::to_string(t.n_in) + " x " + std::to_string(t.n_out) + ")",
                    "choose a rank of at most " + std::to_string(std::min(t.n_in, t.n_out)));
      LoraSlot slot{il, p, name, t.n_in, t.n_out, o.rank, params.size(), params.size() + 1};
      Param& a = params.emplace_back();
      a.name = name + ".lora_a";
      a.shape = {t.n_in, o.rank};
      a.resize(static_cast<size_t>(t.n_in * o.rank));
      const float bound = 1.0f / std::sqrt(static_cast<float>(t.n_in));
      for (float& v : a.value) v = (2.0f * rng.uniform() - 1.0f) * bound;
      Param& bp = params.emplace_back();
      bp.name = name + ".lora_b";
      bp.shape = {o.rank, t.n_out};
      bp.resize(static_cast<size_t>(o.rank * t.n_out));
      lora_slots.push_back(slot);
    }
  lora = std::make_unique<LoraProducts>(c.n_layer);
  lora->dropout = o.dropout;
  lora_scale = o.alpha / static_cast<float>(o.rank);
  for (const LoraSlot& sl : lora_slots)
    lora->add(sl.layer, sl.proj, {params[sl.a].value.data(), params[sl.b].value.data(), sl.rank, lora_scale});
  lora_hook = lora->hook();
}

// The adapters on a pass's seam; dropout only in a pass that a backward step follows, with
// masks of its own (a replay of a block for recomputation reuses them).
void LanguageModel::Impl::set_lora_seam(ForwardSeam& seam) const {
  if (!lora) return;
  seam.adapter = &lora_hook;
}

LoraAdapter LanguageModel::lora_adapter() const {
  const Impl& m = *impl_;
  if (!m.lora) throw Error("internal: lora_adapter() of a model trained without LoRA");
  LoraAdapter a;
  a.arch = m.base->file().get_string_or("general.architecture", "");
  a.base_name = m.base->file().get_string_or("general.name", "");
  a.alpha = m.lora_opts.alpha;
  for (const Impl::LoraSlot& sl : m.lora_slots)
    a.matrices.push_back({sl.target, sl.n_in, sl.n_out, sl.rank, m.params[sl.a].value, m.params[sl.b].value});
  return a;
}

LanguageModel::~LanguageModel() = default;

const ModelConfig& LanguageModel::config() const { return impl_->c; }

std::vector<Param*> LanguageModel::params() {
  std::vector<Param*> v;
  for (Param& p : impl_->params) v.push_back(&p);
  return v;
}

Param* LanguageModel::find(const std::string& name) {
  for (Param& p : impl_->params)
    if (p.name == name) return &p;
  return nullptr;
}

void LanguageModel::Impl::check_batch(const TokenBatch& b) const {
  if (b.tokens.empty()) throw Error("a training batch needs at least one sequence");
  if (b.targets.size() != b.tokens.size()) throw Error("a training batch needs one target list per sequence");
  for (size_t s = 0; s < b.tokens.size(); ++s) {
    if (b.tokens[s].empty()) throw Error("sequence " + std::to_string(s) + " of the batch is empty");
    if (b.targets[s].size() != b.tokens[s].size())
      throw Error("sequence " + std::to_string(s) + " has " + std::to_string(b.tokens[s].size()) + " tokens but " +
                  std::to_string(b.targets[s].size()) + " targets");
    for (int32_t t : b.targets[s])
      if (t < -1 || t >= c.n_vocab) throw Error("target id " + std::to_string(t) + " is outside the vocabulary");
  }
}

void LanguageModel::Impl::run_forward(const TokenBatch& b) {
  check_batch(b);
  if (first > 0 || !lm_head) throw Error("internal: loss and logits need the whole model (first_block 0, lm_head)");
  entries.clear();
  int max_len = 0;
  for (size_t s = 0; s < b.tokens.size(); ++s) {
    max_len = std::max(max_len, static_cast<int>(b.tokens[s].size()));
    for (size_t i = 0; i < b.tokens[s].size(); ++i)
      entries.push_back({b.tokens[s][i], static_cast<int32_t>(i), static_cast<int32_t>(s), true});
  }
  hidden.resize(entries.size() * static_cast<size_t>(c.n_embd));
  run(max_len, static_cast<int>(b.tokens.size()), nullptr, true, hidden.data());
}

// The forward pass over `entries` (whole sequences), on the tape when recording.
void LanguageModel::Impl::run(int max_len, int n_seq, const float* residual_in, bool record, float* hidden_out) {
  const int N = static_cast<int>(entries.size());
  if (!scratch || scratch->max_tokens() < N || !kv || kv->n_ctx() < max_len) {
    scratch = std::make_unique<ForwardScratch>(c, N, max_len, pool.size());
    kv.reset();
  }
  if (!kv || kv->n_seq() < n_seq || kv->n_ctx() < max_len) {
    ModelConfig kc = c;
    kc.n_layer = end;  // blocks above the ones run need no cache
    kv = std::make_unique<KvCache>(kc, max_len, n_seq);
  }
  scratch->seam = ForwardSeam{};
  scratch->seam.tape = record ? &tape : nullptr;
  tape.checkpoints_only = recompute;
  tape.replay = false;
  taped = record;
  caller_residual = residual_in != nullptr;
  scratch->seam.first_block = first;
  scratch->seam.residual_in = residual_in;
  set_lora_seam(scratch->seam);
  if (lora) {
    const bool train = record && training_pass;
    lora->dropout = train ? lora_opts.dropout : 0.0f;
    if (train) lora->seed = lora_opts.seed * 0x9e3779b97f4a7c15ULL + ++lora_passes;
  }
  forward(c, w, entries, *kv, *scratch, pool, nullptr, hidden_out);
}

// Block il's activations: from the tape, or with recompute from a pass of that block alone
// over its checkpointed input (the same forward code, so the same values).
const ActivationTape::Block& LanguageModel::Impl::block_record(int il) {
  if (!recompute) return tape.block(il);
  scratch->seam = ForwardSeam{};
  scratch->seam.tape = &tape;
  scratch->seam.first_block = il;
  scratch->seam.end_block = il + 1;
  scratch->seam.residual_in = tape.block(il).x.data();
  set_lora_seam(scratch->seam);
  tape.replay = true;
  forward(c, w, entries, *kv, *scratch, pool, nullptr, nullptr);
  tape.replay = false;
  ActivationTape::Block& b = tape.work;
  b.x = tape.block(il).x;  // the backward pass reads x with the rest
  return b;
}

// Loss of the rows with targets, in chunks: logits of kLossChunk rows, their log-sum-exp, and
// for the backward pass dlogits -> dW_out and dhidden of those rows.
double LanguageModel::Impl::output_loss(const TokenBatch& b, float* dhidden, float* logits_out, const DistillLoss* kd) {
  const int64_t E = c.n_embd, V = c.n_vocab;
  std::vector<int64_t> rows;
  std::vector<int32_t> tgt, trow;  // trow: the teacher's row of a trained position
  {
    int64_t t = 0, r = 0;
    for (size_t s = 0; s < b.tokens.size(); ++s)
      for (size_t i = 0; i < b.tokens[s].size(); ++i, ++t)
        if (logits_out || b.targets[s][i] >= 0) {
          rows.push_back(t), tgt.push_back(b.targets[s][i]);
          trow.push_back(b.targets[s][i] >= 0 ? static_cast<int32_t>(r++) : -1);
        }
  }
  const int64_t n_targets = b.n_targets();
  const TeacherTargets* teacher = kd ? kd->teacher : nullptr;
  if (kd && !teacher) throw Error("internal: a distillation loss without a teacher");
  if (teacher) {
    if (teacher->rows() != n_targets)
      throw Error("the teacher has " + std::to_string(teacher->rows()) + " positions for a batch that trains " +
                  std::to_string(n_targets));
    const bool dense = teacher->ids.empty();
    if ((dense && teacher->k != V) || teacher->k < 1 || teacher->k > V ||
        teacher->logp.size() != static_cast<size_t>(teacher->rows() * teacher->k) ||
        (!dense && teacher->ids.size() != teacher->logp.size()))
      throw Error("the teacher's distributions do not fit this model's " + std::to_string(V) + "-word vocabulary");
    for (int32_t id : teacher->ids)
      if (id < 0 || id >= V) throw Error("the teacher names word " + std::to_string(id) + ", outside the vocabulary");
    if (!(teacher->temperature > 0)) throw Error("the distillation temperature must be positive");
    if (!(kd->alpha >= 0 && kd->alpha <= 1)) throw Error("the distillation alpha must be in [0, 1]");
  }
  const float ce_weight = teacher ? kd->alpha : 0.0f;
  const float kd_weight = teacher ? (1.0f - kd->alpha) * (kd->t_squared ? teacher->temperature * teacher->temperature : 1.0f)
                                  : 0.0f;
  const float scale = n_targets > 0 ? 1.0f / static_cast<float>(n_targets) : 0.0f;
  const DType xt = kernels::ops(w.output.type).vec_dot_type;
  const size_t xrow = row_size(xt, E);
  std::vector<std::byte> xq(static_cast<size_t>(kLossChunk) * xrow);
  std::vector<float> x(static_cast<size_t>(kLossChunk) * E), logits(static_cast<size_t>(kLossChunk) * V);
  std::vector<double> row_loss(static_cast<size_t>(kLossChunk));
  float* dW = dhidden ? grad(w.output) : nullptr;
  double total = 0;
  for (size_t j0 = 0; j0 < rows.size(); j0 += kLossChunk) {
    const int64_t n = std::min<int64_t>(kLossChunk, static_cast<int64_t>(rows.size() - j0));
    for (int64_t j = 0; j < n; ++j) {
      std::copy_n(hidden.data() + rows[j0 + j] * E, E, x.data() + j * E);
      kernels::ops(xt).from_float(x.data() + j * E, xq.data() + j * xrow, E);
    }
    pool.run([&](int ith, int nth) {
      auto [r0, r1] = kernels::split_range_aligned(V, ith, nth, kRowAlign);
      if (r0 >= r1) return;
      if (w.output.type == DType::F32)
        kernels::matmul_rows(w.output, xq.data(), xrow, logits.data(), static_cast<size_t>(V), n, r0, r1);
      else  // a frozen quantized output: exact in its dequantized values, as the backward pass reads it
        kernels::matmul_rows_exact(w.output, x.data(), static_cast<size_t>(E), logits.data(), static_cast<size_t>(V), n,
                                   r0, r1);
    });
    pool.run([&](int ith, int nth) {  // rows split; each row's loss kept apart, summed in order below
      std::vector<float> capped;      // one row's soft-capped logits, for the cap's backward
      std::vector<float> dkd;         // one row's distillation gradient
      std::vector<uint8_t> member;
      for (int64_t j = ith; j < n; j += nth) {
        float* l = logits.data() + j * V;
        row_loss[j] = 0;
        if (c.final_softcap > 0)
          for (int64_t r = 0; r < V; ++r) l[r] = std::tanh(l[r] / c.final_softcap) * c.final_softcap;
        if (logits_out) std::copy_n(l, V, logits_out + rows[j0 + j] * V);
        const int32_t target = tgt[j0 + j];
        if (target < 0) {
          if (dhidden) std::fill_n(l, V, 0.0f);
          continue;
        }
        if (teacher) {  // the distillation loss; its gradient through a row buffer, then over the logits
          const int64_t tr = trow[static_cast<size_t>(j0 + j)], k = teacher->k;
          const kernels::TeacherRow row{.ids = teacher->ids.empty() ? nullptr : teacher->ids.data() + tr * k,
                                        .logp = teacher->logp.data() + tr * k,
                                        .k = k,
                                        .log_rest = teacher->log_rest[static_cast<size_t>(tr)]};
          if (dhidden) dkd.resize(static_cast<size_t>(V));
          row_loss[j] = kernels::distill_xent_row(l, V, target, row, teacher->temperature, kd->reverse, ce_weight,
                                                  kd_weight, scale, dhidden ? dkd.data() : nullptr, member);
          if (!dhidden) continue;
          if (c.final_softcap > 0) capped.assign(l, l + V);
          std::copy(dkd.begin(), dkd.end(), l);
        } else {
          kernels::LogSumExp lse;
          lse.add(l, V);
          row_loss[j] = static_cast<double>(lse.value()) - l[target];
          if (!dhidden) continue;
          if (c.final_softcap > 0) capped.assign(l, l + V);
          kernels::xent_backward_chunk(l, V, lse.value(), target, scale, l);  // dlogits over the logits
        }
        if (c.final_softcap > 0) kernels::softcap_backward(capped.data(), l, V, c.final_softcap, l);
      }
    });
    for (int64_t j = 0; j < n; ++j) total += row_loss[j];
    if (!dhidden) continue;
    // dW_out += dlogits^T x; dx = dlogits W_out, for the n rows of the chunk
    if (dW)
      pool.run([&](int ith, int nth) {
        auto [r0, r1] = kernels::split_range_aligned(V, ith, nth, kRowAlign);
        kernels::matmul_backward_weight(logits.data(), static_cast<size_t>(V), x.data(), static_cast<size_t>(E), n, E,
                                        r0, r1, dW);
      });
    std::vector<float> dx(static_cast<size_t>(n) * E);
    // dx = dlogits W_out, columns split (each thread reads its part of W_out); a quantized
    // (frozen) W_out in chunks of vocabulary rows dequantized in turn.
    const int64_t vchunk = w.output.type == DType::F32 ? V : kVocabChunk;
    for (int64_t v0 = 0; v0 < V; v0 += vchunk) {
      const int64_t v1 = std::min(V, v0 + vchunk);
      const float* wv = w.output.type == DType::F32 ? fdata(w.output) + v0 * E : nullptr;
      if (w.output.type != DType::F32) {
        wbuf.resize(static_cast<size_t>(vchunk * E));
        pool.run([&](int ith, int nth) {
          auto [r0, r1] = kernels::split_range(v1 - v0, ith, nth);
          for (int64_t r = r0; r < r1; ++r)
            kernels::dequantize_row(w.output.type, w.output.row(v0 + r), wbuf.data() + r * E, E);
        });
        wv = wbuf.data();
      }
      pool.run([&](int ith, int nth) {
        auto [c0, c1] = kernels::split_range_aligned(E, ith, nth, kRowAlign);
        kernels::gemm({.K = v1 - v0, .a = logits.data() + v0, .lda = static_cast<size_t>(V), .b = wv,
                       .ldb = static_cast<size_t>(E), .c = dx.data(), .ldc = static_cast<size_t>(E),
                       .accumulate = v0 > 0, .m0 = 0, .m1 = n, .n0 = c0, .n1 = c1});
      });
    }
    for (int64_t j = 0; j < n; ++j) std::copy_n(dx.data() + j * E, E, dhidden + rows[j0 + j] * E);
  }
  return n_targets > 0 ? total / static_cast<double>(n_targets) : 0.0;
}

void LanguageModel::Impl::weight_grad(const float* dy, int64_t n_out, const float* x, int64_t n_in, float* dw) {
  if (!dw) return;  // a frozen weight
  const int64_t N = tape.n_tokens;
  pool.run([&](int ith, int nth) {
    auto [r0, r1] = kernels::split_range_aligned(n_out, ith, nth, kRowAlign);
    kernels::matmul_backward_weight(dy, static_cast<size_t>(n_out), x, static_cast<size_t>(n_in), N, n_in, r0, r1, dw);
  });
}

// A weight's values as float32: its own data, or (a frozen quantized weight of LoRA training)
// dequantized into a buffer that the next call reuses.
const float* LanguageModel::Impl::float_weights(const TensorView& wt) {
  if (wt.type == DType::F32) return fdata(wt);
  wbuf.resize(static_cast<size_t>(wt.nelements()));
  pool.run([&](int ith, int nth) {
    auto [r0, r1] = kernels::split_range(wt.nrows(), ith, nth);
    for (int64_t r = r0; r < r1; ++r) kernels::dequantize_row(wt.type, wt.row(r), wbuf.data() + r * wt.ne[0], wt.ne[0]);
  });
  return wbuf.data();
}

void LanguageModel::Impl::input_grad(const float* dy, int64_t n_out, const TensorView& wt, float* dx, bool accumulate) {
  const int64_t N = tape.n_tokens, n_in = wt.ne[0];
  const float* wf = float_weights(wt);
  pool.run([&](int ith, int nth) {
    auto [t0, t1] = kernels::split_range(N, ith, nth);
    kernels::matmul_backward_input(dy, static_cast<size_t>(n_out), wf, n_out, n_in, t0, t1, dx,
                                   static_cast<size_t>(n_in), accumulate);
  });
}

// The adapters' share of a product's backward step, for y = W x + s B (A x~) (x~: x after
// dropout): dB += s dy^T (A x~), dA += (s dy B)^T x~, dx += mask * ((s dy B) A).
void LanguageModel::Impl::lora_backward(int il, Projection p, const float* dy, const float* x, float* dx) {
  if (!lora) return;
  const int64_t N = tape.n_tokens;
  const float scale = lora_scale;  // the forward products' (LoraProducts)
  for (const LoraSlot& sl : lora_slots) {
    if (sl.layer != il || sl.proj != p) continue;
    const int64_t r = sl.rank, n_in = sl.n_in, n_out = sl.n_out;
    const size_t ur = static_cast<size_t>(r), ui = static_cast<size_t>(n_in), uo = static_cast<size_t>(n_out);
    const float* A = params[sl.a].value.data();
    const float* B = params[sl.b].value.data();
    float* gA = params[sl.a].grad.data();
    float* gB = params[sl.b].grad.data();
    const bool drop = lora->dropout > 0;
    if (drop) lx.resize(static_cast<size_t>(N) * ui);
    lu.resize(static_cast<size_t>(N) * ur);
    ldu.resize(lu.size());
    pool.run([&](int ith, int nth) {  // tokens split: x~, u = s A x~, du = s B^T dy
      auto [t0, t1] = kernels::split_range(N, ith, nth);
      if (drop)
        for (int64_t t = t0; t < t1; ++t) lora->input(il, p, t, x + t * n_in, n_in, lx.data() + t * n_in);
      const float* xin = drop ? lx.data() : x;
      kernels::gemm({.trans_b = true, .K = n_in, .a = xin, .lda = ui, .b = A, .ldb = ui, .c = lu.data(), .ldc = ur,
                     .m0 = t0, .m1 = t1, .n0 = 0, .n1 = r});
      kernels::gemm({.K = n_out, .a = dy, .lda = uo, .b = B, .ldb = ur, .c = ldu.data(), .ldc = ur, .m0 = t0, .m1 = t1,
                     .n0 = 0, .n1 = r});
      for (size_t i = static_cast<size_t>(t0) * ur; i < static_cast<size_t>(t1) * ur; ++i) lu[i] *= scale, ldu[i] *= scale;
    });
    const float* xin = drop ? lx.data() : x;
    pool.run([&](int ith, int nth) {  // dB's rows, then dA's columns
      auto [o0, o1] = kernels::split_range(n_out, ith, nth);
      kernels::gemm({.trans_a = true, .K = N, .a = dy, .lda = uo, .b = lu.data(), .ldb = ur, .c = gB, .ldc = ur,
                     .accumulate = true, .m0 = o0, .m1 = o1, .n0 = 0, .n1 = r});
      auto [c0, c1] = kernels::split_range(n_in, ith, nth);
      kernels::gemm({.trans_a = true, .K = N, .a = ldu.data(), .lda = ur, .b = xin, .ldb = ui, .c = gA, .ldc = ui,
                     .accumulate = true, .m0 = 0, .m1 = r, .n0 = c0, .n1 = c1});
    });
    pool.run([&](int ith, int nth) {  // dx, tokens split
      auto [t0, t1] = kernels::split_range(N, ith, nth);
      if (!drop) {
        kernels::gemm({.K = r, .a = ldu.data(), .lda = ur, .b = A, .ldb = ui, .c = dx, .ldc = ui, .accumulate = true,
                       .m0 = t0, .m1 = t1, .n0 = 0, .n1 = n_in});
        return;
      }
      kernels::gemm({.K = r, .a = ldu.data(), .lda = ur, .b = A, .ldb = ui, .c = lx.data(), .ldc = ui, .m0 = t0,
                     .m1 = t1, .n0 = 0, .n1 = n_in});
      for (int64_t t = t0; t < t1; ++t) {
        float* row = lx.data() + t * n_in;
        lora->input(il, p, t, row, n_in, row);  // the same mask (in place: each element read once first)
        for (int64_t i = 0; i < n_in; ++i) dx[t * n_in + i] += row[i];
      }
    });
  }
}

// dx (+)= norm'(x)^T dy for `rows` rows; the norm's weight (and bias) gradients accumulate.
void LanguageModel::Impl::norm_backward(const float* x, const TensorView& nw, const TensorView& nb, const float* dy,
                                        int64_t rows, int64_t width, float* dx, bool accumulate) {
  std::vector<float> tmp(static_cast<size_t>(width));
  float* gw = grad(nw);
  float* gb = grad(nb);
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * width;
    const float* dyt = dy + t * width;
    float* out = accumulate ? tmp.data() : dx + t * width;
    if (c.norm == ModelConfig::Norm::kLayer)
      kernels::layer_norm_backward(xt, fdata(nw), dyt, width, c.norm_eps, out, gw, gb);
    else
      kernels::rmsnorm_backward(xt, fdata(nw), dyt, width, c.norm_eps, out, gw);
    if (accumulate)
      for (int64_t i = 0; i < width; ++i) dx[t * width + i] += tmp[i];
  }
}

void LanguageModel::Impl::backward(const float* dhidden) {
  const int64_t N = tape.n_tokens, E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv, FF = c.n_ff;
  const int64_t q_dim = NH * HD, kv_dim = NKV * HD, group = NH / NKV, half_rot = std::max(1, c.n_rot / 2);
  const float q_scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(HD));
  const float kq_scale = c.q_prescale ? 1.0f : 1.0f / std::sqrt(static_cast<float>(HD));
  const auto& ks = kernels::simd::best();

  // Rotation tables of every token (global and, with sliding windows, local layers).
  std::vector<float> rcos(static_cast<size_t>(N * half_rot)), rsin(rcos.size()), lcos, lsin;
  if (c.n_swa > 0) lcos.resize(rcos.size()), lsin.resize(rcos.size());
  for (int64_t t = 0; t < N; ++t) {
    rope_table(c, entries[t].pos, false, rcos.data() + t * half_rot, rsin.data() + t * half_rot);
    if (c.n_swa > 0) rope_table(c, entries[t].pos, true, lcos.data() + t * half_rot, lsin.data() + t * half_rot);
  }

  // Work buffers, kept between steps (their pages are touched once).
  auto& [dx, dh, dtmp, dxn, act, dact, dgate, dup, datt, dq, dk, dv] = work;
  for (auto* v : {&dx, &dh, &dtmp, &dxn}) v->resize(static_cast<size_t>(N * E));
  for (auto* v : {&act, &dact, &dgate, &dup}) v->resize(static_cast<size_t>(N * FF));
  for (auto* v : {&datt, &dq}) v->resize(static_cast<size_t>(N * q_dim));
  for (auto* v : {&dk, &dv}) v->resize(static_cast<size_t>(N * kv_dim));
  std::vector<int64_t> seq_start;  // the first row of each sequence, then N
  for (int64_t t = 0; t < N; ++t)
    if (entries[t].pos == 0) seq_start.push_back(t);
  seq_start.push_back(N);
  std::vector<float> head(static_cast<size_t>(HD));

  // Final norm: dx = norm'(x_out)^T dhidden.
  norm_backward(tape.x_out.data(), w.output_norm, w.output_norm_b, dhidden, N, E, dx.data(), false);

  for (int il = end - 1; il >= first; --il) {
    const ActivationTape::Block& B = block_record(il);
    const LayerWeights& L = w.layers[il];

    // --- feed-forward: y = h + [post_norm](W_down act(gate, up)) ---
    const float* dd = dx.data();
    if (c.post_norms) {
      norm_backward(B.down.data(), L.ffn_post_norm, TensorView{}, dx.data(), N, E, dtmp.data(), false);
      dd = dtmp.data();
    }
    for (int64_t t = 0; t < N; ++t) {  // the activation as the forward computed it
      float* a = act.data() + t * FF;
      if (c.ffn_act == ModelConfig::Act::kGelu)
        kernels::geglu_exact(B.gate.data() + t * FF, B.up.data() + t * FF, a, FF);
      else
        ks.flt.swiglu(B.gate.data() + t * FF, B.up.data() + t * FF, a, FF);
    }
    weight_grad(dd, E, act.data(), FF, grad(L.ffn_down));
    input_grad(dd, E, L.ffn_down, dact.data(), false);
    lora_backward(il, Projection::kDown, dd, act.data(), dact.data());
    pool.run([&](int ith, int nth) {
      auto [t0, t1] = kernels::split_range(N, ith, nth);
      for (int64_t t = t0; t < t1; ++t) {
        const size_t o = static_cast<size_t>(t * FF);
        if (c.ffn_act == ModelConfig::Act::kGelu)
          kernels::geglu_backward(B.gate.data() + o, B.up.data() + o, dact.data() + o, FF, dgate.data() + o, dup.data() + o);
        else
          kernels::swiglu_backward(B.gate.data() + o, B.up.data() + o, dact.data() + o, FF, dgate.data() + o, dup.data() + o);
      }
    });
    weight_grad(dgate.data(), FF, B.xn2.data(), E, grad(L.ffn_gate));
    weight_grad(dup.data(), FF, B.xn2.data(), E, grad(L.ffn_up));
    input_grad(dgate.data(), FF, L.ffn_gate, dxn.data(), false);
    input_grad(dup.data(), FF, L.ffn_up, dxn.data(), true);
    lora_backward(il, Projection::kGate, dgate.data(), B.xn2.data(), dxn.data());
    lora_backward(il, Projection::kUp, dup.data(), B.xn2.data(), dxn.data());
    dh = dx;  // the residual
    norm_backward(B.h.data(), L.ffn_norm, L.ffn_norm_b, dxn.data(), N, E, dh.data(), true);

    // --- attention: h = x + [post_norm](W_o attention(q, k, v)) ---
    const float* dob = dh.data();
    if (c.post_norms) {
      norm_backward(B.o.data(), L.attn_post_norm, TensorView{}, dh.data(), N, E, dtmp.data(), false);
      dob = dtmp.data();
    }
    weight_grad(dob, E, B.att.data(), q_dim, grad(L.wo));
    input_grad(dob, E, L.wo, datt.data(), false);
    lora_backward(il, Projection::kO, dob, B.att.data(), datt.data());
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    pool.run([&](int ith, int nth) {  // items of (sequence, KV head): each owns its dq, dk, dv columns
      thread_local std::vector<float> scratch;
      const int64_t n_seq = static_cast<int64_t>(seq_start.size()) - 1;
      for (int64_t item = ith; item < n_seq * NKV; item += nth) {
        const int64_t sq = item / NKV, hk = item % NKV, t0 = seq_start[sq], len = seq_start[sq + 1] - t0;
        for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
          kernels::SeqAttention a{.n = len, .head_dim = HD, .scale = kq_scale, .softcap = c.attn_softcap,
                                  .window = c.is_swa(il) ? c.n_swa : 0,
                                  .q = B.q.data() + t0 * q_dim + h * HD, .q_stride = static_cast<size_t>(q_dim),
                                  .k = B.k.data() + t0 * kv_dim + hk * HD, .k_stride = static_cast<size_t>(kv_dim),
                                  .v = B.v.data() + t0 * kv_dim + hk * HD, .v_stride = static_cast<size_t>(kv_dim),
                                  .lse = B.lse.data() + t0 * NH + h,
                                  .lse_stride = static_cast<size_t>(NH)};
          kernels::attention_backward_seq(a, datt.data() + t0 * q_dim + h * HD, static_cast<size_t>(q_dim),
                                          dq.data() + t0 * q_dim + h * HD, static_cast<size_t>(q_dim),
                                          dk.data() + t0 * kv_dim + hk * HD, dv.data() + t0 * kv_dim + hk * HD, scratch);
        }
      }
    });
    // Back through the query scale, the rotation and the per-head norm, to W x + b.
    for (int64_t t = 0; t < N; ++t) {
      const bool local = c.is_swa(il);
      const float* cs = (local ? lcos : rcos).data() + t * half_rot;
      const float* sn = (local ? lsin : rsin).data() + t * half_rot;
      float* qt = dq.data() + t * q_dim;
      float* kt = dk.data() + t * kv_dim;
      if (c.q_prescale)
        for (int64_t i = 0; i < q_dim; ++i) qt[i] *= q_scale;
      kernels::rope_backward(qt, NH, HD, c.n_rot, cs, sn, c.rope_neox);
      kernels::rope_backward(kt, NKV, HD, c.n_rot, cs, sn, c.rope_neox);
      if (c.qk_norm) {
        for (int64_t h = 0; h < NH; ++h) {
          kernels::rmsnorm_backward(B.q_pre.data() + t * q_dim + h * HD, fdata(L.attn_q_norm), qt + h * HD, HD,
                                    c.norm_eps, head.data(), grad(L.attn_q_norm));
          std::copy(head.begin(), head.end(), qt + h * HD);
        }
        for (int64_t h = 0; h < NKV; ++h) {
          kernels::rmsnorm_backward(B.k_pre.data() + t * kv_dim + h * HD, fdata(L.attn_k_norm), kt + h * HD, HD,
                                    c.norm_eps, head.data(), grad(L.attn_k_norm));
          std::copy(head.begin(), head.end(), kt + h * HD);
        }
      }
      for (auto [bias, d, n] : {std::tuple{&L.bq, qt, q_dim}, {&L.bk, kt, kv_dim}, {&L.bv, dv.data() + t * kv_dim, kv_dim}})
        if (float* gb = grad(*bias))
          for (int64_t i = 0; i < n; ++i) gb[i] += d[i];
    }
    weight_grad(dq.data(), q_dim, B.xn1.data(), E, grad(L.wq));
    weight_grad(dk.data(), kv_dim, B.xn1.data(), E, grad(L.wk));
    weight_grad(dv.data(), kv_dim, B.xn1.data(), E, grad(L.wv));
    input_grad(dq.data(), q_dim, L.wq, dxn.data(), false);
    input_grad(dk.data(), kv_dim, L.wk, dxn.data(), true);
    input_grad(dv.data(), kv_dim, L.wv, dxn.data(), true);
    lora_backward(il, Projection::kQ, dq.data(), B.xn1.data(), dxn.data());
    lora_backward(il, Projection::kK, dk.data(), B.xn1.data(), dxn.data());
    lora_backward(il, Projection::kV, dv.data(), B.xn1.data(), dxn.data());
    dx = dh;
    norm_backward(B.x.data(), L.attn_norm, L.attn_norm_b, dxn.data(), N, E, dx.data(), true);
  }

  // Token embeddings (times sqrt(n_embd) for Gemma).
  float* ge = grad(w.token_embd);
  if (!ge || caller_residual) return;
  const float es = c.scale_embd ? std::sqrt(static_cast<float>(E)) : 1.0f;
  for (int64_t t = 0; t < N; ++t) {
    float* row = ge + static_cast<int64_t>(entries[t].token) * E;
    for (int64_t i = 0; i < E; ++i) row[i] += es * dx[t * E + i];
  }
}

double LanguageModel::loss(const TokenBatch& batch, bool backward, const DistillLoss* kd) {
  Impl& m = *impl_;
  m.training_pass = backward;
  m.run_forward(batch);
  if (!backward) return m.output_loss(batch, nullptr, nullptr, kd);
  m.dhidden.assign(m.hidden.size(), 0.0f);
  const double l = m.output_loss(batch, m.dhidden.data(), nullptr, kd);
  m.backward(m.dhidden.data());
  return l;
}

void LanguageModel::hidden_states(std::span<const int> lens, const float* residual_in, float* out, bool record) {
  Impl& m = *impl_;
  m.entries.clear();
  int max_len = 0;
  for (size_t s = 0; s < lens.size(); ++s) {
    if (lens[s] <= 0) throw Error("sequence " + std::to_string(s) + " is empty");
    max_len = std::max(max_len, lens[s]);
    for (int i = 0; i < lens[s]; ++i) m.entries.push_back({0, i, static_cast<int32_t>(s), true});
  }
  if (m.entries.empty()) return;
  m.training_pass = record;
  m.run(max_len, static_cast<int>(lens.size()), residual_in, record, out);
}

void LanguageModel::backward_hidden(const float* dout) {
  if (!impl_->taped) throw Error("internal: backward_hidden needs a recorded hidden_states() pass");
  impl_->backward(dout);
}

void TeacherTargets::add_row(const float* logits, int64_t n_vocab) {
  if (k < 1) throw Error("internal: a teacher row of no words");
  if (k > n_vocab) k = n_vocab;
  const int64_t kk = k;
  if (k >= n_vocab && !ids.empty()) throw Error("internal: a whole distribution after top-k rows");
  const size_t at = logp.size();
  logp.resize(at + static_cast<size_t>(kk));
  if (kk < n_vocab) ids.resize(at + static_cast<size_t>(kk));
  log_rest.push_back(kernels::teacher_top_k(logits, n_vocab, temperature, kk, kk < n_vocab ? ids.data() + at : nullptr,
                                            logp.data() + at));
}

void TeacherTargets::append(const TeacherTargets& t) {
  if (t.k != k || t.temperature != temperature) throw Error("internal: teacher rows of another k or temperature");
  ids.insert(ids.end(), t.ids.begin(), t.ids.end());
  logp.insert(logp.end(), t.logp.begin(), t.logp.end());
  log_rest.insert(log_rest.end(), t.log_rest.begin(), t.log_rest.end());
}

std::vector<float> LanguageModel::logits(const TokenBatch& batch) {
  Impl& m = *impl_;
  m.training_pass = false;
  m.run_forward(batch);
  std::vector<float> out(static_cast<size_t>(batch.n_tokens()) * m.c.n_vocab);
  m.output_loss(batch, nullptr, out.data());
  return out;
}

}  // namespace edgelm::train
