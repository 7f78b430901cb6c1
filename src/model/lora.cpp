// LoRA adapter files (llama.cpp's layout), their checks against a base, merging, and the
// products the forward pass's adapter seam runs.
#include "model/lora.hpp"

#include <algorithm>
#include <map>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "kernels/kernels.hpp"
#include "tensor/fp16.hpp"

namespace edgelm {

namespace {

// A block's projections and their weights, in Projection order.
std::array<const TensorView*, 7> projections(const LayerWeights& L) {
  return {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down};
}

// A view of part of a file tensor (phi3's Q/K/V in attn_qkv, gate and up in ffn_up): its rows
// are not the named tensor's.
bool fused(const Model& base, const TensorView& w) {
  const gguf::TensorInfo* t = base.file().find_tensor(w.name);
  return !t || t->ne[1] != w.ne[1];
}

// The elements of a tensor as float (any type the kernels can read).
std::vector<float> to_float(const TensorView& t, const std::string& what) {
  if (t.type != DType::F32 && !kernels::can_compute(t.type))
    throw Error(what + ": tensor " + t.name + " has type " + std::string(dtype_name(t.type)) +
                ", which edgelm cannot read");
  std::vector<float> v(static_cast<size_t>(t.nelements()));
  for (int64_t r = 0; r < t.nrows(); ++r) kernels::dequantize_row(t.type, t.row(r), v.data() + r * t.ne[0], t.ne[0]);
  return v;
}

}  // namespace

std::optional<std::pair<int, Projection>> lora_target(const Model& base, const std::string& name) {
  const auto& layers = base.weights().layers;
  for (size_t il = 0; il < layers.size(); ++il) {
    const auto ws = projections(layers[il]);
    for (size_t p = 0; p < ws.size(); ++p)
      if (ws[p]->data && ws[p]->name == name && !fused(base, *ws[p]))
        return std::pair{static_cast<int>(il), static_cast<Projection>(p)};
  }
  return std::nullopt;
}

std::string lora_tensor_name(const Model& base, int layer, Projection p) {
  const TensorView& w = *projections(base.weights().layers.at(static_cast<size_t>(layer)))[static_cast<size_t>(p)];
  return w.data && !fused(base, w) ? w.name : std::string();
}

// --- files -----------------------------------------------------------------------------------

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& path, const Model& base) {
  const gguf::File f = gguf::File::open(path);
  const std::string what = "LoRA adapter " + path;
  if (f.get_string_or("general.type", "") != "adapter" || f.get_string_or("adapter.type", "") != "lora")
    throw Error(what + " is not a LoRA adapter (general.type must be \"adapter\" and adapter.type \"lora\"); "
                "pass a file written by `edgelm finetune --lora-rank` or llama.cpp's convert_lora_to_gguf.py");
  auto a = std::make_shared<LoraAdapter>();
  a->arch = f.get_string_or("general.architecture", "");
  a->base_name = f.get_string_or("edgelm.lora.base_name", "");
  a->alpha = f.get_f32_or("adapter.lora.alpha", 0.0f);
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const bool is_a = t.name.ends_with(".lora_a"), is_b = t.name.ends_with(".lora_b");
    if (!is_a && !is_b) throw Error(what + ": tensor " + t.name + " is neither a .lora_a nor a .lora_b");
    auto& slot = pairs[t.name.substr(0, t.name.size() - 7)];
    (is_a ? slot.first : slot.second) = &t;
  }
  if (pairs.empty()) throw Error(what + " holds no tensors");
  for (const auto& [target, ab] : pairs) {
    if (!ab.first || !ab.second) throw Error(what + ": " + target + " has a lora_" + (ab.first ? "a" : "b") +
                                             " without its lora_" + (ab.first ? "b" : "a"));
    const TensorView ta = f.view(*ab.first), tb = f.view(*ab.second);
    if (ta.n_dims != 2 || tb.n_dims != 2 || ta.ne[1] != tb.ne[0] || ta.ne[1] <= 0)
      throw Error(what + ": " + target + "'s lora_a and lora_b shapes do not fit (lora_a must be [n_in, rank], "
                  "lora_b [rank, n_out])");
    LoraMatrix& m = a->matrices.emplace_back();
    m.target = target;
    m.n_in = ta.ne[0];
    m.rank = ta.ne[1];
    m.n_out = tb.ne[1];
    m.a = to_float(ta, what);
    m.b = to_float(tb, what);
  }
  a->check(base, what);
  return a;
}

void LoraAdapter::check(const Model& base, const std::string& what) const {
  const std::string base_arch = base.file().get_string_or("general.architecture", "");
  if (!arch.empty() && arch != base_arch)
    throw Error(what + " was made for a " + arch + " model, not this " + base_arch + " one (" + base.path() + ")");
  const std::string name = base.file().get_string_or("general.name", "");
  if (!base_name.empty() && !name.empty() && base_name != name)
    throw Error(what + " was made for the model \"" + base_name + "\", not \"" + name + "\" (" + base.path() + ")");
  for (const LoraMatrix& m : matrices) {
    const gguf::TensorInfo* t = base.file().find_tensor(m.target);
    if (!t) throw Error(what + " adapts " + m.target + ", which the model " + base.path() + " does not have");
    if (!lora_target(base, m.target))
      throw Error(what + " adapts " + m.target + ", which is not a separate matrix product of the model");
    if (t->ne[0] != m.n_in || t->ne[1] != m.n_out)
      throw Error(what + ": " + m.target + " is " + std::to_string(t->ne[0]) + " x " + std::to_string(t->ne[1]) +
                  " in the model but " + std::to_string(m.n_in) + " x " + std::to_string(m.n_out) +
                  " in the adapter: it was made for another model");
    if (m.rank <= 0 || m.a.size() != static_cast<size_t>(m.rank * m.n_in) ||
        m.b.size() != static_cast<size_t>(m.rank * m.n_out))
      throw Error(what + ": " + m.target + " has inconsistent LoRA matrices");
  }
}

void LoraAdapter::save(const std::string& path) const {
  gguf::Writer w;
  w.set_string("general.architecture", arch);
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", alpha);
  if (!base_name.empty()) w.set_string("edgelm.lora.base_name", base_name);
  for (const LoraMatrix& m : matrices) {
    w.add_tensor_ref(m.target + ".lora_a", DType::F32, {m.n_in, m.rank}, m.a.data(), m.a.size() * sizeof(float));
    w.add_tensor_ref(m.target + ".lora_b", DType::F32, {m.rank, m.n_out}, m.b.data(), m.b.size() * sizeof(float));
  }
  w.write(path);
}

void merge_lora(const Model& base, const std::vector<LoraUse>& adapters, const std::string& out_path, bool f32) {
  std::map<std::string, std::vector<std::pair<const LoraMatrix*, float>>> updates;
  for (const LoraUse& u : adapters) {
    u.adapter->check(base, "LoRA adapter");
    for (const LoraMatrix& m : u.adapter->matrices) updates[m.target].push_back({&m, u.scale * u.adapter->scale(m)});
  }
  const gguf::File& f = base.file();
  gguf::Writer w;
  w.copy_metadata(f);
  w.set_u32("general.file_type", f32 ? 0 : 1);  // llama.cpp's ALL_F32 / MOSTLY_F16
  for (const gguf::TensorInfo& info : f.tensors()) {
    const TensorView t = f.view(info);
    std::vector<float> v = to_float(t, "model " + base.path());
    if (auto it = updates.find(t.name); it != updates.end())
      for (const auto& [m, s] : it->second) {  // W += s B A
        std::vector<float> sb(m->b);
        for (float& x : sb) x *= s;
        kernels::gemm({.K = m->rank, .a = sb.data(), .lda = static_cast<size_t>(m->rank), .b = m->a.data(),
                       .ldb = static_cast<size_t>(m->n_in), .c = v.data(), .ldc = static_cast<size_t>(m->n_in),
                       .accumulate = true, .m0 = 0, .m1 = m->n_out, .n0 = 0, .n1 = m->n_in});
      }
    const std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::max(1, t.n_dims));
    if (t.n_dims >= 2 && !f32) {
      std::vector<uint16_t> half(v.size());
      for (size_t i = 0; i < v.size(); ++i) half[i] = f32_to_fp16(v[i]);
      w.add_tensor(t.name, DType::F16, ne, half.data(), half.size() * sizeof(uint16_t));
    } else {
      w.add_tensor(t.name, DType::F32, ne, v.data(), v.size() * sizeof(float));
    }
  }
  w.write(out_path);
}

// --- the products ----------------------------------------------------------------------------

void LoraProducts::add(const Model& base, const LoraAdapter& a, float scale, int index) {
  for (const LoraMatrix& m : a.matrices) {
    const auto target = lora_target(base, m.target);
    if (!target) throw Error("LoRA adapter: " + m.target + " is not a matrix product of the model");
    add(target->first, target->second, {m.a.data(), m.b.data(), m.rank, scale * a.scale(m), index});
  }
}

bool LoraProducts::empty() const {
  return std::all_of(by_.begin(), by_.end(), [](const auto& v) { return v.empty(); });
}

namespace {
uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

const float* LoraProducts::input(int layer, Projection p, int64_t t, const float* x, int64_t n, float* out) const {
  if (dropout <= 0) return x;
  const float keep = 1.0f - dropout, inv = 1.0f / keep;
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(keep) * 4294967296.0);
  uint64_t s = mix(seed ^ mix(static_cast<uint64_t>(layer + 1) * kProjections + static_cast<uint64_t>(p)) ^
                   mix(static_cast<uint64_t>(t) + 0x9e3779b97f4a7c15ULL));
  for (int64_t i = 0; i < n; i += 2) {
    s += 0x9e3779b97f4a7c15ULL;
    const uint64_t r = mix(s);
    out[i] = static_cast<uint32_t>(r) < threshold ? x[i] * inv : 0.0f;
    if (i + 1 < n) out[i + 1] = static_cast<uint32_t>(r >> 32) < threshold ? x[i + 1] * inv : 0.0f;
  }
  return out;
}

void LoraProducts::apply(const ProductRows& r) const {
  const auto list = at(r.layer, r.proj);
  if (list.empty() || r.r0 >= r.r1) return;
  thread_local std::vector<float> u, xd;
  const float* x = r.x;
  size_t xs = r.x_stride;
  if (dropout > 0) {
    xd.resize(static_cast<size_t>(r.n_tok * r.n_in));
    for (int64_t t = 0; t < r.n_tok; ++t) input(r.layer, r.proj, t, r.x + t * r.x_stride, r.n_in, xd.data() + t * r.n_in);
    x = xd.data();
    xs = static_cast<size_t>(r.n_in);
  }
  for (const LoraProduct& m : list) {
    u.resize(static_cast<size_t>(r.n_tok * m.rank));
    kernels::gemm({.trans_b = true, .K = r.n_in, .a = x, .lda = xs, .b = m.a, .ldb = static_cast<size_t>(r.n_in),
                   .c = u.data(), .ldc = static_cast<size_t>(m.rank), .m0 = 0, .m1 = r.n_tok, .n0 = 0, .n1 = m.rank});
    if (token_scales.empty()) {
      for (float& v : u) v *= m.scale;
    } else {
      for (int64_t t = 0; t < r.n_tok; ++t) {
        const float s = m.scale * token_scales[static_cast<size_t>(t * n_adapters + m.adapter)];
        for (int64_t j = 0; j < m.rank; ++j) u[static_cast<size_t>(t * m.rank + j)] *= s;
      }
    }
    kernels::gemm({.trans_b = true, .K = m.rank, .a = u.data(), .lda = static_cast<size_t>(m.rank), .b = m.b,
                   .ldb = static_cast<size_t>(m.rank), .c = r.y, .ldc = r.y_stride, .accumulate = true, .m0 = 0,
                   .m1 = r.n_tok, .n0 = r.r0, .n1 = r.r1});
  }
}

}  // namespace edgelm
