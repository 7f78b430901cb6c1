// Knowledge distillation's parts around the training loop: which blocks a pruned student drops
// (measured importance), the pruned student file, and the teacher's distributions (computed by
// the inference pass, or read from a cache file).
#include "edgelm/distill.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string_view>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/session.hpp"

namespace edgelm {
namespace {

// "blk.N.rest" -> N and "rest"; false for a tensor outside the blocks.
bool block_tensor(std::string_view name, int& block, std::string_view& rest) {
  if (!name.starts_with("blk.")) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string_view::npos) return false;
  block = 0;
  for (char ch : name.substr(4, dot - 4)) {
    if (ch < '0' || ch > '9') return false;
    block = block * 10 + (ch - '0');
  }
  rest = name.substr(dot + 1);
  return true;
}

int longest(const std::vector<LmExample>& data) {
  int n = 1;
  for (const LmExample& e : data) n = std::max(n, static_cast<int>(e.tokens.size()));
  return n;
}

// The teacher's inference session for examples of `data`.
std::unique_ptr<Session> teacher_session(const std::shared_ptr<const Model>& teacher, const std::vector<LmExample>& data,
                                         const TeacherOptions& o) {
  return std::make_unique<Session>(teacher,
                                   SessionOptions{.n_ctx = std::max(longest(data), o.n_ctx), .n_threads = o.n_threads});
}

// Appends the teacher's rows of every trained position of `ex` to `out`.
void append_example_rows(Session& s, const LmExample& ex, train::TeacherTargets& out) {
  const int64_t V = s.model().config().n_vocab;
  s.truncate(0, 0);
  const std::span<const float> logits = s.eval_all(ex.tokens);
  for (size_t i = 0; i < ex.tokens.size(); ++i)
    if (ex.targets[i] >= 0) out.add_row(logits.data() + i * static_cast<size_t>(V), V);
}

}  // namespace

std::vector<double> block_importance(const std::shared_ptr<const Model>& model, const std::vector<LmExample>& data,
                                     int n_threads, int64_t max_tokens) {
  const int L = model->config().n_layer;
  std::vector<double> cos_sum(static_cast<size_t>(L), 0.0);
  int64_t counted = 0;
  std::vector<float> prev;  // the residual stream leaving the previous block, this pass's rows
  SessionOptions so{.n_threads = n_threads};
  so.on_block_output = [&](int layer, const float* x, int64_t n_tok, int64_t n_embd) {
    if (layer > 0 && static_cast<int64_t>(prev.size()) == n_tok * n_embd)
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* a = prev.data() + t * n_embd;
        const float* b = x + t * n_embd;
        double ab = 0, aa = 0, bb = 0;
        for (int64_t i = 0; i < n_embd; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
        cos_sum[static_cast<size_t>(layer)] += aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 1.0;
      }
    prev.assign(x, x + n_tok * n_embd);
  };
  so.n_ctx = longest(data);
  Session s(model, so);
  for (const LmExample& e : data) {
    if (counted >= max_tokens) break;
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(e.tokens.size()), max_tokens - counted);
    s.truncate(0, 0);
    prev.clear();
    s.embed(std::span(e.tokens.data(), static_cast<size_t>(n)));
    counted += n;
  }
  if (counted == 0) throw Error("no text to measure the blocks' importance on");
  std::vector<double> imp(static_cast<size_t>(L));
  imp[0] = std::numeric_limits<double>::infinity();
  for (int il = 1; il < L; ++il) imp[static_cast<size_t>(il)] = 1.0 - cos_sum[static_cast<size_t>(il)] / double(counted);
  return imp;
}

std::vector<int> least_important(std::span<const double> importance, int n) {
  const int L = static_cast<int>(importance.size());
  if (n < 0 || n >= L)
    throw Error("cannot drop " + std::to_string(n) + " of the teacher's " + std::to_string(L) + " blocks",
                "drop between 0 and " + std::to_string(L - 1) + " blocks: a student needs at least one");
  std::vector<int> order(static_cast<size_t>(L));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return importance[a] < importance[b]; });
  order.resize(static_cast<size_t>(n));
  std::sort(order.begin(), order.end());
  return order;
}

void write_pruned(const Model& teacher, std::span<const int> drop, const std::string& teacher_sha256,
                  const std::string& path) {
  const ModelConfig& c = teacher.config();
  std::vector<int> new_index(static_cast<size_t>(c.n_layer), 0);
  for (int b : drop) {
    if (b < 0 || b >= c.n_layer)
      throw Error("block " + std::to_string(b) + " does not exist: the teacher has blocks 0.." + std::to_string(c.n_layer - 1));
    new_index[static_cast<size_t>(b)] = -1;
  }
  int kept = 0;
  for (int& ni : new_index) ni = ni < 0 ? -1 : kept++;
  if (kept == 0) throw Error("the pruning leaves no block", "drop fewer blocks");
  const gguf::File& f = teacher.file();
  gguf::Writer w;
  w.copy_metadata(f);
  const std::string p = c.arch + ".";
  w.set_u32(p + "block_count", static_cast<uint32_t>(kept));
  // Per-block arrays in the architecture's metadata (some families size heads per block) keep
  // the entries of the blocks kept.
  for (const std::string& k : f.keys()) {
    const gguf::Value* v = f.find(k);
    if (!k.starts_with(p) || v->type != gguf::ValueType::ARRAY || v->size() != static_cast<uint64_t>(c.n_layer))
      continue;
    const std::vector<gguf::Value> per_block = v->elements();
    gguf::Value nv = *v;
    nv.array.clear();
    nv.packed.clear();
    nv.packed_count = 0;
    for (int il = 0; il < c.n_layer; ++il)
      if (new_index[static_cast<size_t>(il)] >= 0) nv.array.push_back(per_block[static_cast<size_t>(il)]);
    w.set(k, nv);
  }
  for (const std::string& k : f.keys())  // a teacher that was itself distilled: its own lineage goes
    if (k.starts_with("edgelm.distill.") || k.starts_with("edgelm.checkpoint.")) w.remove(k);
  std::vector<int32_t> dropped(drop.begin(), drop.end());
  std::sort(dropped.begin(), dropped.end());
  w.set_string("edgelm.distill.teacher_name", c.name);
  w.set_string("edgelm.distill.teacher_sha256", teacher_sha256);
  w.set_u32("edgelm.distill.teacher_block_count", static_cast<uint32_t>(c.n_layer));
  w.set_i32_array("edgelm.distill.pruned_blocks", dropped);
  w.set_string("general.name", c.name + " (pruned to " + std::to_string(kept) + " blocks)");
  for (const gguf::TensorInfo& ti : f.tensors()) {
    int b = 0;
    std::string_view rest;
    std::string name = ti.name;
    if (block_tensor(ti.name, b, rest)) {
      if (b >= c.n_layer) throw Error(f.path() + ": tensor " + ti.name + " names a block the model does not have");
      if (new_index[static_cast<size_t>(b)] < 0) continue;
      name = "blk." + std::to_string(new_index[static_cast<size_t>(b)]) + "." + std::string(rest);
    }
    const TensorView v = f.view(ti);
    w.add_tensor_ref(name, ti.type, std::vector<int64_t>(ti.ne.begin(), ti.ne.begin() + std::max(1, ti.n_dims)), v.data,
                     v.nbytes);
  }
  w.write(path);
}

void check_same_vocabulary(const Model& teacher, const Model& student) {
  if (teacher.config().n_vocab != student.config().n_vocab ||
      !teacher.tokenizer().same_vocabulary(student.tokenizer()))
    throw Error("the teacher '" + teacher.config().name + "' and the student '" + student.config().name +
                    "' have different vocabularies",
                "distil into a student made from this teacher (--prune-layers) or one with its tokenizer");
}

namespace {

constexpr std::string_view kCache = "edgelm.kd.";

std::string data_sha256(const std::vector<LmExample>& data) {
  std::vector<unsigned char> bytes;
  for (const LmExample& e : data) {
    const size_t n = e.tokens.size();
    const auto* nb = reinterpret_cast<const unsigned char*>(&n);
    bytes.insert(bytes.end(), nb, nb + sizeof n);
    const auto* t = reinterpret_cast<const unsigned char*>(e.tokens.data());
    bytes.insert(bytes.end(), t, t + n * sizeof(int32_t));
    const auto* g = reinterpret_cast<const unsigned char*>(e.targets.data());
    bytes.insert(bytes.end(), g, g + n * sizeof(int32_t));
  }
  return intent::sha256_hex(bytes);
}

int64_t trained_positions(const LmExample& e) {
  return std::count_if(e.targets.begin(), e.targets.end(), [](int32_t t) { return t >= 0; });
}

std::vector<train::TeacherTargets> read_cache(const std::string& path, const std::string& teacher_sha256,
                                              const std::string& data_sha, const std::vector<LmExample>& data,
                                              int64_t k, float T, int64_t n_vocab) {
  const gguf::File f = gguf::File::open(path);
  auto key = [](const char* k) { return std::string(kCache) + k; };
  const std::string hint = "delete " + path + " (or pass another --kd-cache) to compute the teacher's distributions again";
  if (f.get_string_or("general.type", "") != "edgelm.teacher-cache")
    throw Error(path + " is not a teacher cache (general.type is not edgelm.teacher-cache)", hint);
  if (f.get_string(key("teacher_sha256")) != teacher_sha256)
    throw Error(path + " was made by another teacher ('" + f.get_string_or(key("teacher_name"), "?") + "')", hint);
  if (f.get_string(key("data_sha256")) != data_sha) throw Error(path + " was made for other training data", hint);
  if (f.get_f32(key("temperature")) != T || static_cast<int64_t>(f.get_u32(key("top_k"))) != k ||
      static_cast<int64_t>(f.get_u32(key("n_vocab"))) != n_vocab)
    throw Error(path + " holds the teacher at temperature " + std::to_string(f.get_f32(key("temperature"))) + ", top " +
                    std::to_string(f.get_u32(key("top_k"))) + ", not at this run's",
                hint);
  const TensorView rows = f.tensor("kd.rows"), lp = f.tensor("kd.logp"), lr = f.tensor("kd.log_rest");
  const bool dense = k == n_vocab;
  if (rows.type != DType::I32 || lp.type != DType::F32 || lr.type != DType::F32 ||
      rows.nelements() != static_cast<int64_t>(data.size()))
    throw Error(path + ": the teacher cache's tensors are damaged", hint);
  const auto* nrows = reinterpret_cast<const int32_t*>(rows.data);
  int64_t total = 0;
  for (size_t e = 0; e < data.size(); ++e) {
    if (nrows[e] != trained_positions(data[e])) throw Error(path + ": the teacher cache's rows do not fit the data", hint);
    total += nrows[e];
  }
  if (lr.nelements() != total || lp.nelements() != total * k) throw Error(path + ": the teacher cache's tensors are damaged", hint);
  const int32_t* ids = nullptr;
  if (!dense) {
    const TensorView iv = f.tensor("kd.ids");
    if (iv.type != DType::I32 || iv.nelements() != total * k) throw Error(path + ": the teacher cache's tensors are damaged", hint);
    ids = reinterpret_cast<const int32_t*>(iv.data);
  }
  const auto* logp = reinterpret_cast<const float*>(lp.data);
  const auto* rest = reinterpret_cast<const float*>(lr.data);
  std::vector<train::TeacherTargets> out(data.size());
  int64_t at = 0;
  for (size_t e = 0; e < data.size(); ++e) {
    train::TeacherTargets& t = out[e];
    t.k = k;
    t.temperature = T;
    const int64_t n = nrows[e];
    t.logp.assign(logp + at * k, logp + (at + n) * k);
    t.log_rest.assign(rest + at, rest + at + n);
    if (ids) t.ids.assign(ids + at * k, ids + (at + n) * k);
    for (int32_t id : t.ids)
      if (id < 0 || id >= n_vocab) throw Error(path + ": the teacher cache names a word outside the vocabulary", hint);
    at += n;
  }
  return out;
}

void write_cache(const std::string& path, const Model& teacher, const std::string& teacher_sha256,
                 const std::string& data_sha, const std::vector<train::TeacherTargets>& rows, int64_t k, float T) {
  std::vector<int32_t> nrows;
  train::TeacherTargets all{.k = k, .temperature = T};
  for (const train::TeacherTargets& t : rows) {
    nrows.push_back(static_cast<int32_t>(t.rows()));
    all.append(t);
  }
  const int64_t total = all.rows();
  const std::vector<int32_t>& ids = all.ids;
  const std::vector<float>&logp = all.logp, &rest = all.log_rest;
  gguf::Writer w;
  auto key = [](const char* k) { return std::string(kCache) + k; };
  w.set_string("general.type", "edgelm.teacher-cache");
  w.set_string(key("teacher_name"), teacher.config().name);
  w.set_string(key("teacher_sha256"), teacher_sha256);
  w.set_string(key("data_sha256"), data_sha);
  w.set_f32(key("temperature"), T);
  w.set_u32(key("top_k"), static_cast<uint32_t>(k));
  w.set_u32(key("n_vocab"), static_cast<uint32_t>(teacher.config().n_vocab));
  w.add_tensor_ref("kd.rows", DType::I32, {static_cast<int64_t>(nrows.size())}, nrows.data(), nrows.size() * 4);
  if (total > 0) {
    if (!ids.empty()) w.add_tensor_ref("kd.ids", DType::I32, {k, total}, ids.data(), ids.size() * 4);
    w.add_tensor_ref("kd.logp", DType::F32, {k, total}, logp.data(), logp.size() * 4);
    w.add_tensor_ref("kd.log_rest", DType::F32, {total}, rest.data(), rest.size() * 4);
  }
  w.write(path);
}

}  // namespace

std::vector<train::TeacherTargets> teacher_targets(const std::shared_ptr<const Model>& teacher,
                                                   const std::string& teacher_sha256,
                                                   const std::vector<LmExample>& data, const TeacherOptions& o,
                                                   const std::function<void(size_t, size_t)>& on_progress) {
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) throw Error("--kd-temperature must be a positive number");
  if (o.top_k < 0) throw Error("--kd-top-k must not be negative (0: the whole distribution)");
  const int64_t V = teacher->config().n_vocab;
  const int64_t k = o.top_k == 0 ? V : std::min<int64_t>(o.top_k, V);
  const std::string dsha = data_sha256(data);
  if (!o.cache.empty() && std::filesystem::exists(o.cache))
    return read_cache(o.cache, teacher_sha256, dsha, data, k, o.temperature, V);
  const std::unique_ptr<Session> s = teacher_session(teacher, data, o);
  std::vector<train::TeacherTargets> out(data.size());
  for (size_t e = 0; e < data.size(); ++e) {
    out[e] = {.k = k, .temperature = o.temperature};
    append_example_rows(*s, data[e], out[e]);
    if (on_progress) on_progress(e + 1, data.size());
  }
  if (!o.cache.empty()) write_cache(o.cache, *teacher, teacher_sha256, dsha, out, k, o.temperature);
  return out;
}

TeacherSignal::TeacherSignal(std::shared_ptr<const Model> teacher, const std::string& teacher_sha256,
                             const std::vector<LmExample>& data, const TeacherOptions& o,
                             const std::function<void(size_t, size_t)>& on_progress)
    : teacher_(std::move(teacher)), data_(&data), o_(o) {
  if (o.top_k > 0) {
    rows_ = teacher_targets(teacher_, teacher_sha256, data, o, on_progress);
    teacher_.reset();  // no longer needed
    return;
  }
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) throw Error("--kd-temperature must be a positive number");
  session_ = teacher_session(teacher_, data, o);
}

TeacherSignal::~TeacherSignal() = default;

void TeacherSignal::operator()(std::span<const int> ids, train::TeacherTargets& out) {
  if (!session_) {
    const train::TeacherTargets& first = rows_.at(static_cast<size_t>(ids[0]));
    out = {.k = first.k, .temperature = first.temperature};
    for (int id : ids) out.append(rows_.at(static_cast<size_t>(id)));
    return;
  }
  out = {.k = teacher_->config().n_vocab, .temperature = o_.temperature};
  for (int id : ids) append_example_rows(*session_, data_->at(static_cast<size_t>(id)), out);
}

DistillReport distill(std::shared_ptr<const Model> teacher, const std::vector<LmExample>& train,
                      const std::vector<LmExample>& val, const std::string& out_path, DistillOptions o,
                      const DistillCallbacks& cb) {
  if (o.prune_layers < 0) throw Error("the blocks to prune must be 0 or more, not " + std::to_string(o.prune_layers));
  o.teacher.n_ctx = o.n_ctx;
  o.teacher.n_threads = o.train.n_threads;
  const std::string sha = intent::sha256_file(teacher->path());
  DistillReport r;
  r.importance = block_importance(teacher, train, o.train.n_threads);
  r.dropped = least_important(r.importance, o.prune_layers);
  if (cb.on_pruned) cb.on_pruned(r.importance, r.dropped);
  if (o.train.epochs == 0) {  // the pruned student as it is, in the teacher's types
    write_pruned(*teacher, r.dropped, sha, out_path);
    const auto student = Model::load(out_path);
    r.student_blocks = student->config().n_layer;
    r.student_params = student->n_params();
    if (cb.on_student) cb.on_student(*student);
    return r;
  }
  const std::string init = out_path + ".pruned.tmp";
  write_pruned(*teacher, r.dropped, sha, init);
  std::shared_ptr<const Model> student;
  try {
    student = Model::load(init);
  } catch (...) {
    std::filesystem::remove(init);
    throw;
  }
  std::filesystem::remove(init);  // its weights stay mapped
  check_same_vocabulary(*teacher, *student);
  r.student_blocks = student->config().n_layer;
  r.student_params = student->n_params();
  if (cb.on_student) cb.on_student(*student);
  std::unique_ptr<TeacherSignal> signal;
  if (o.train.distill.alpha < 1) {  // alpha 1: the cross-entropy alone, no teacher needed
    signal = std::make_unique<TeacherSignal>(teacher, sha, train, o.teacher, cb.on_teacher_progress);
    o.train.teacher = [&signal](std::span<const int> ids, train::TeacherTargets& out) { (*signal)(ids, out); };
  } else {
    o.train.teacher = nullptr;
  }
  teacher.reset();  // the signal keeps it when it runs it batch by batch
  r.train = finetune(student, train, val, out_path, o.train, cb.train);
  r.trained = true;
  return r;
}

}  // namespace edgelm
