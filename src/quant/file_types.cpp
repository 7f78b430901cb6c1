// File types and their mixes: which tensor type every tensor of a model gets.
//
// The mixes follow llama.cpp's documented choices for the Llama family (so that a Q4_K_M made
// here is laid out like one made by llama-quantize):
//  * 1-D tensors (norms) and tensors not named *.weight stay F32;
//  * the output projection (or the token embedding when it doubles as the output) gets Q6_K in
//    every quantized mix except Q8_0 (Q8_0 when its rows do not fit 256-element blocks);
//  * attn_v: Q2_K -> Q3_K (Q4_K with >= 4 query heads per KV head); Q3_K_M -> Q5_K in the first
//    two layers, else Q4_K; Q4_K_M / Q5_K_M -> Q6_K in the "more bits" layers (first and last
//    eighth, and every third layer between);
//  * ffn_down: Q2_K -> Q3_K; Q3_K_M -> Q5_K in the first sixteenth, else Q4_K; Q4_K_M / Q5_K_M
//    -> Q6_K in the "more bits" layers; Q4_0 / Q5_0 with an imatrix -> Q4_1 / Q5_1 in the first
//    eighth;
//  * attn_output: Q2_K -> Q3_K, Q3_K_M -> Q4_K;
//  * a row length that is not a multiple of the chosen type's block size falls back (Q2_K/Q3_K
//    -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16).
#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <map>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::quant {
namespace {

struct FileTypeInfo {
  FileType type;
  std::string_view name;
  DType base;
  uint32_t llama_id;
};

constexpr std::array<FileTypeInfo, 12> kFileTypes{{
    {FileType::F32, "F32", DType::F32, 0},
    {FileType::F16, "F16", DType::F16, 1},
    {FileType::BF16, "BF16", DType::BF16, 32},
    {FileType::Q8_0, "Q8_0", DType::Q8_0, 7},
    {FileType::Q6_K, "Q6_K", DType::Q6_K, 18},
    {FileType::Q5_K_M, "Q5_K_M", DType::Q5_K, 17},
    {FileType::Q5_0, "Q5_0", DType::Q5_0, 8},
    {FileType::Q4_K_M, "Q4_K_M", DType::Q4_K, 15},
    {FileType::Q4_0, "Q4_0", DType::Q4_0, 2},
    {FileType::Q4_1, "Q4_1", DType::Q4_1, 3},
    {FileType::Q3_K_M, "Q3_K_M", DType::Q3_K, 12},
    {FileType::Q2_K, "Q2_K", DType::Q2_K, 10},
}};

const FileTypeInfo& info(FileType t) {
  for (const auto& i : kFileTypes)
    if (i.type == t) return i;
  throw Error("internal: unknown file type");
}

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Layers that get more bits in the _M mixes: the first and last eighth, every third between.
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int layer_of(std::string_view name) {
  int layer = -1;
  if (name.rfind("blk.", 0) == 0) std::sscanf(std::string(name).c_str(), "blk.%d.", &layer);
  return layer;
}

DType fallback(DType t) {
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: return DType::Q4_0;
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    default: return DType::F16;
  }
}

bool fits(DType t, int64_t ncols) { return ncols % dtype_traits(t).block_size == 0; }

}  // namespace

std::optional<FileType> file_type_from_name(std::string_view name) {
  std::string up(name);
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& i : kFileTypes)
    if (i.name == up) return i.type;
  return std::nullopt;
}
std::string_view file_type_name(FileType t) { return info(t).name; }
DType base_type(FileType t) { return info(t).base; }
uint32_t llama_ftype_id(FileType t) { return info(t).llama_id; }
std::optional<FileType> file_type_from_llama_id(uint32_t id) {
  for (const auto& i : kFileTypes)
    if (i.llama_id == id) return i.type;
  return std::nullopt;
}
std::string supported_file_types() {
  std::string s;
  for (const auto& i : kFileTypes) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

std::string tensor_class(std::string_view name) {
  std::string_view s = name;
  if (s.rfind("blk.", 0) == 0) {
    const size_t dot = s.find('.', 4);
    s = dot == std::string_view::npos ? s : s.substr(dot + 1);
  }
  for (std::string_view suffix : {".weight", ".bias"})
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) s.remove_suffix(suffix.size());
  if (s.size() >= 5 && s.substr(s.size() - 5) == "_norm") return "norm";
  return std::string(s);
}

std::vector<TensorPlan> plan_quantization(const gguf::File& in, const QuantizeOptions& o,
                                          std::vector<std::string>* notes) {
  const FileType ft = o.file_type;
  const DType base = base_type(ft);
  const std::string arch = in.get_string_or("general.architecture", "");
  const uint32_t n_head = in.get_u32_or(arch + ".attention.head_count", 1);
  const uint32_t n_head_kv = std::max<uint32_t>(1, in.get_u32_or(arch + ".attention.head_count_kv", n_head));
  const uint32_t n_gqa = n_head / n_head_kv;
  const bool has_output = in.find_tensor("output.weight") != nullptr;
  int n_attn_v = 0, n_ffn_down = 0;
  for (const auto& t : in.tensors()) {
    n_attn_v += tensor_class(t.name) == "attn_v";
    n_ffn_down += tensor_class(t.name) == "ffn_down";
  }
  auto note = [&](std::string s) {
    if (notes) notes->push_back(std::move(s));
  };

  std::map<std::string, std::pair<int, std::string>> fallbacks;  // what -> count, first tensor
  std::vector<TensorPlan> plans;
  for (const auto& t : in.tensors()) {
    TensorPlan p;
    p.name = t.name;
    p.klass = tensor_class(t.name);
    p.from = t.type;
    p.bytes_in = t.nbytes;
    const bool is_weight = t.name.size() > 7 && t.name.substr(t.name.size() - 7) == ".weight";
    const int64_t ncols = t.ne[0];
    DType to = base;
    if (t.n_dims < 2 || !is_weight || p.klass == "norm") {
      to = is_float_type(t.type) ? t.type : DType::F32;
      if (t.n_dims < 2) to = DType::F32;
    } else if (dtype_traits(base).quantized) {
      const int il = layer_of(t.name);
      const bool is_output = p.klass == "output" || (!has_output && p.klass == "token_embd");
      if (is_output) {
        if (!fits(base, ncols)) {
          to = DType::Q8_0;
          p.reason = "output: rows of " + std::to_string(ncols) + " do not fit " +
                     std::string(dtype_name(base)) + " blocks";
        } else if (base != DType::Q8_0) {
          to = DType::Q6_K;
          p.reason = "output kept at Q6_K";
        }
      } else if (p.klass == "attn_v") {
        if (ft == FileType::Q2_K) to = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
        else if (ft == FileType::Q3_K_M) to = il < 2 ? DType::Q5_K : DType::Q4_K;
        else if ((ft == FileType::Q4_K_M || ft == FileType::Q5_K_M) && more_bits(il, n_attn_v)) to = DType::Q6_K;
        if (to != base) p.reason = "attn_v is sensitive";
      } else if (p.klass == "ffn_down") {
        if (ft == FileType::Q2_K) to = DType::Q3_K;
        else if (ft == FileType::Q3_K_M) to = il < n_ffn_down / 16 ? DType::Q5_K : DType::Q4_K;
        else if ((ft == FileType::Q4_K_M || ft == FileType::Q5_K_M) && more_bits(il, n_ffn_down)) to = DType::Q6_K;
        else if ((ft == FileType::Q4_0 || ft == FileType::Q5_0) && o.imatrix && il < n_ffn_down / 8)
          to = ft == FileType::Q4_0 ? DType::Q4_1 : DType::Q5_1;
        if (to != base) p.reason = "ffn_down is sensitive";
      } else if (p.klass == "attn_output") {
        if (ft == FileType::Q2_K) to = DType::Q3_K;
        else if (ft == FileType::Q3_K_M) to = DType::Q4_K;
        if (to != base) p.reason = "attn_output is sensitive";
      }
    }
    // --keep overrides (first match wins), for 2-D weights only.
    if (t.n_dims >= 2) {
      for (const auto& k : o.keep) {
        if (::fnmatch(k.glob.c_str(), t.name.c_str(), 0) == 0) {
          to = k.type;
          p.reason = "--keep " + k.glob;
          break;
        }
      }
    }
    if (!fits(to, ncols)) {
      DType f = fallback(to);
      if (!fits(f, ncols)) f = DType::F16;
      auto& fb = fallbacks[std::string(dtype_name(to)) + " -> " + std::string(dtype_name(f)) +
                           " (rows of " + std::to_string(ncols) + " values are not a multiple of " +
                           std::to_string(dtype_traits(to).block_size) + ")"];
      if (fb.first++ == 0) fb.second = t.name;
      p.reason = std::string(dtype_name(to)) + " does not fit the rows";
      to = f;
    }
    p.to = to;
    int64_t rows = t.ne[1] * t.ne[2] * t.ne[3];
    p.bytes_out = row_size(to, ncols) * static_cast<uint64_t>(rows);
    plans.push_back(std::move(p));
  }
  for (const auto& [what, e] : fallbacks)
    note("fallback " + what + ": " + std::to_string(e.first) + " tensor" + (e.first > 1 ? "s" : "") +
         ", e.g. " + e.second);
  return plans;
}

}  // namespace edgelm::quant
