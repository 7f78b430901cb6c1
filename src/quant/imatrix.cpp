// The importance matrix: per matrix, the sum of squared activations of every input column and
// the number of rows seen; saved in llama.cpp's GGUF imatrix layout so either tool can read the
// other's file.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::quant {
namespace {

constexpr std::string_view kSum2 = ".in_sum2";
constexpr std::string_view kCounts = ".counts";
constexpr size_t kMaxColumns = 1 << 22;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

void ImportanceMatrix::add(const std::string& weight_name, const float* x, int64_t n_tokens, int64_t n_cols) {
  Stat& s = stats_[weight_name];
  if (s.sum2.empty()) s.sum2.assign(static_cast<size_t>(n_cols), 0.0);
  if (static_cast<int64_t>(s.sum2.size()) != n_cols)
    throw Error("internal: '" + weight_name + "' seen with " + std::to_string(n_cols) + " columns, before with " +
                std::to_string(s.sum2.size()));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * n_cols;
    for (int64_t j = 0; j < n_cols; ++j) s.sum2[j] += static_cast<double>(row[j]) * row[j];
  }
  s.count += n_tokens;
  s.mean.clear();
}

void ImportanceMatrix::finalize() {
  for (auto& [name, s] : stats_) {
    if (!s.mean.empty() || s.sum2.empty()) continue;
    s.mean.resize(s.sum2.size());
    for (size_t j = 0; j < s.sum2.size(); ++j)
      s.mean[j] = s.count > 0 ? static_cast<float>(s.sum2[j] / static_cast<double>(s.count)) : 0.0f;
  }
}

const std::vector<float>* ImportanceMatrix::find(std::string_view weight_name) const {
  auto it = stats_.find(weight_name);
  if (it == stats_.end()) return nullptr;
  const_cast<ImportanceMatrix*>(this)->finalize();
  return &it->second.mean;
}

void ImportanceMatrix::save(const std::string& path, int chunk_size) const {
  gguf::Writer w;
  w.set_string("general.type", "imatrix");
  w.set_string_array("imatrix.datasets", {dataset_.empty() ? std::string("unknown") : dataset_});
  w.set_u32("imatrix.chunk_count", static_cast<uint32_t>(std::max(0, chunks_)));
  w.set_u32("imatrix.chunk_size", static_cast<uint32_t>(std::max(0, chunk_size)));
  for (const auto& [name, s] : stats_) {
    std::vector<float> sum2(s.sum2.begin(), s.sum2.end());
    const float count = static_cast<float>(s.count);
    w.add_tensor(name + std::string(kSum2), DType::F32, {static_cast<int64_t>(sum2.size()), 1}, sum2.data(),
                 sum2.size() * sizeof(float));
    w.add_tensor(name + std::string(kCounts), DType::F32, {1, 1}, &count, sizeof(float));
  }
  w.write(path);
}

ImportanceMatrix ImportanceMatrix::load(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("imatrix file '" + path + "' does not exist", "make one with 'edgelm imatrix -m MODEL -f TEXT -o FILE'");
  const gguf::File f = gguf::File::open(path);
  const std::string hint = "expected an importance matrix made by 'edgelm imatrix' or llama-imatrix (GGUF)";
  ImportanceMatrix m;
  m.chunks_ = static_cast<int>(f.get_u32_or("imatrix.chunk_count", 0));
  for (const auto& t : f.tensors()) {
    if (!ends_with(t.name, kSum2)) continue;
    const std::string name = t.name.substr(0, t.name.size() - kSum2.size());
    const gguf::TensorInfo* c = f.find_tensor(name + std::string(kCounts));
    if (!c) throw Error(path + ": '" + t.name + "' has no matching '" + name + ".counts'", hint);
    if (t.type != DType::F32 || c->type != DType::F32)
      throw Error(path + ": imatrix tensors of '" + name + "' must be F32", hint);
    if (t.ne[2] != 1 || t.ne[3] != 1 || t.ne[1] != 1 || c->ne[0] != 1 || c->ne[1] * c->ne[2] * c->ne[3] != 1)
      throw Error(path + ": '" + name + "' has expert slices or a bad shape, which edgelm does not support", hint);
    if (t.ne[0] <= 0 || static_cast<size_t>(t.ne[0]) > kMaxColumns)
      throw Error(path + ": '" + t.name + "' has an implausible size", hint);
    const TensorView sv = f.view(t), cv = f.view(*c);
    const float* sum2 = reinterpret_cast<const float*>(sv.data);
    float count;
    std::memcpy(&count, cv.data, sizeof count);
    if (!std::isfinite(count) || count < 0) throw Error(path + ": '" + name + ".counts' is not a count", hint);
    Stat s;
    s.sum2.assign(sum2, sum2 + t.ne[0]);
    for (double v : s.sum2)
      if (!std::isfinite(v) || v < 0) throw Error(path + ": '" + t.name + "' holds a negative or non-finite value", hint);
    s.count = static_cast<int64_t>(count);
    m.stats_[name] = std::move(s);
  }
  if (m.stats_.empty()) throw Error(path + ": no '*.in_sum2' tensors found", hint);
  return m;
}

ImportanceMatrix compute_imatrix(const Model& model, std::string_view text, const ImatrixOptions& o) {
  if (o.n_ctx < 8) throw Error("context -c " + std::to_string(o.n_ctx) + " is too small", "use -c 128 or more");
  const Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> ids = tok.encode(text, true, false);
  const int64_t n_avail = static_cast<int64_t>(ids.size()) / o.n_ctx;
  if (n_avail == 0)
    throw Error("the text has " + std::to_string(ids.size()) + " tokens, fewer than one chunk of " +
                    std::to_string(o.n_ctx),
                "use a longer text or a smaller -c");
  const int n_chunks = static_cast<int>(o.n_chunks > 0 ? std::min<int64_t>(o.n_chunks, n_avail) : n_avail);
  ImportanceMatrix m;
  const bool bos = tok.add_bos() && tok.bos() >= 0;
  for (int ci = 0; ci < n_chunks; ++ci) {
    std::vector<int32_t> chunk(ids.begin() + static_cast<int64_t>(ci) * o.n_ctx,
                               ids.begin() + static_cast<int64_t>(ci + 1) * o.n_ctx);
    if (bos) chunk[0] = tok.bos();
    collect_matmul_inputs(model, chunk,
                          [&](const std::string& name, const float* x, int64_t n, int64_t cols) {
                            m.add(name, x, n, cols);
                          },
                          o.n_threads);
    m.set_chunks(ci + 1);
    if (o.on_chunk) o.on_chunk(ci + 1, n_chunks);
  }
  return m;
}

}  // namespace edgelm::quant
