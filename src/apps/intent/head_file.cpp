// A classifier head as its own GGUF: edgelm.classifier.* metadata plus F32 tensors.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {

namespace {
constexpr const char* kArch = "edgelm-classifier";
constexpr const char* kPrefix = "edgelm.classifier.";
std::string key(const char* k) { return std::string(kPrefix) + k; }

void add(gguf::Writer& w, const std::string& name, const std::vector<float>& v, std::vector<int64_t> ne) {
  w.add_tensor(name, DType::F32, ne, v.data(), v.size() * sizeof(float));
}

std::vector<float> read(const gguf::File& f, const std::string& name, int64_t ne0, int64_t ne1) {
  const gguf::TensorInfo* info = f.find_tensor(name);
  if (!info) throw Error("classifier head '" + f.path() + "' lacks tensor " + name, "retrain the head with edgelm train-classifier");
  if (info->type != DType::F32 || info->ne[0] != ne0 || info->ne[1] != ne1 || info->ne[2] != 1 || info->ne[3] != 1)
    throw Error("classifier head '" + f.path() + "': tensor " + name + " has the wrong type or shape (expected F32 " +
                    std::to_string(ne0) + " x " + std::to_string(ne1) + ")",
                "the file is damaged or not a head of this version; retrain it");
  const TensorView v = f.view(*info);
  std::vector<float> out(static_cast<size_t>(ne0 * ne1));
  std::memcpy(out.data(), v.data, out.size() * sizeof(float));
  for (float x : out)
    if (!std::isfinite(x)) throw Error("classifier head '" + f.path() + "': tensor " + name + " holds a non-finite value", "retrain the head");
  return out;
}
// A head tensor "cls.blk.<i>.<name>" is the fine-tuned copy of backbone tensor
// "blk.<i>.<name>" (or its LoRA adapter, "<name>.lora_a" / ".lora_b"); heads whose block
// tensors lack the ".weight" suffix name them as well.
std::string backbone_name(const std::string& head_name) {
  std::string n = head_name.substr(4);
  if (!n.ends_with(".weight") && !n.ends_with(".bias") && !n.ends_with(".lora_a") && !n.ends_with(".lora_b"))
    n += ".weight";
  return n;
}
}  // namespace

int Head::oos_index() const {
  const auto it = std::find(labels.begin(), labels.end(), kOosLabel);
  return it == labels.end() ? -1 : static_cast<int>(it - labels.begin());
}

void save_head(const Head& head, const std::string& path) {
  const train::HeadShape& s = head.net.shape();
  gguf::Writer w;
  w.set_string("general.architecture", kArch);
  w.set_string("general.name", "intent classifier head for " + head.backbone_name);
  w.set_string_array(key("labels"), head.labels);
  w.set_string(key("pooling"), train::pooling_name(s.pooling));
  w.set_u32(key("n_embd"), static_cast<uint32_t>(s.n_embd));
  w.set_u32(key("hidden_size"), static_cast<uint32_t>(s.n_hidden));
  w.set_u32(key("n_class"), static_cast<uint32_t>(s.n_class));
  w.set_string(key("head"), s.n_hidden > 0 ? "mlp" : "linear");
  w.set_string(key("backbone.name"), head.backbone_name);
  w.set_string(key("backbone.sha256"), head.backbone_sha256);
  w.set_string(key("template"), head.templ);
  if (head.backbone_layers > 0) w.set_u32(key("backbone.layers"), static_cast<uint32_t>(head.backbone_layers));
  w.set_string(key("oos_label"), kOosLabel);
  w.set_f32(key("oos_threshold"), head.oos_threshold);
  const int d = s.n_embd, h = s.n_hidden, c = s.n_class;
  add(w, "cls.input.mean", head.net.in_mean, {d});
  add(w, "cls.input.scale", head.net.in_scale, {d});
  if (s.pooling == train::Pooling::Attention) add(w, head.net.query.name, head.net.query.value, {d});
  if (h > 0) {
    add(w, head.net.w1.name, head.net.w1.value, {d, h});
    add(w, head.net.b1.name, head.net.b1.value, {h});
  }
  add(w, head.net.w2.name, head.net.w2.value, {h > 0 ? h : d, c});
  add(w, head.net.b2.name, head.net.b2.value, {c});
  if (!head.blocks.empty()) {
    w.set_u32(key("blocks.first"), static_cast<uint32_t>(head.first_block));
    if (head.lora_alpha > 0) w.set_f32(key("blocks.lora_alpha"), head.lora_alpha);
    for (const train::Param& p : head.blocks)
      add(w, "cls." + p.name, p.value,
          p.shape.empty() ? std::vector<int64_t>{static_cast<int64_t>(p.value.size())} : p.shape);
  }
  w.write(path);
}

Head load_head(const std::string& path) {
  gguf::File f = gguf::File::open(path);
  if (f.get_string_or("general.architecture", "") != kArch)
    throw Error("'" + path + "' is not an edgelm classifier head (general.architecture is '" +
                    f.get_string_or("general.architecture", "") + "')",
                "pass a head written by edgelm train-classifier to --head, and the backbone to -m");
  Head h;
  h.labels = f.get_string_array(key("labels"));
  train::HeadShape s;
  s.pooling = train::parse_pooling(f.get_string(key("pooling")));
  s.n_embd = static_cast<int>(f.get_u32(key("n_embd")));
  s.n_hidden = static_cast<int>(f.get_u32(key("hidden_size")));
  s.n_class = static_cast<int>(f.get_u32(key("n_class")));
  if (static_cast<int>(h.labels.size()) != s.n_class)
    throw Error("classifier head '" + path + "' has " + std::to_string(h.labels.size()) + " labels but " +
                    std::to_string(s.n_class) + " classes", "the file is damaged; retrain it");
  h.net = train::ClassifierHead(s);
  h.backbone_name = f.get_string(key("backbone.name"));
  h.backbone_sha256 = f.get_string(key("backbone.sha256"));
  h.templ = f.get_string_or(key("template"), "{text}");
  const uint32_t layers = f.get_u32_or(key("backbone.layers"), 0);
  if (layers > 4096) throw Error("classifier head '" + path + "' uses " + std::to_string(layers) + " backbone blocks",
                                 "the file is damaged; retrain it");
  h.backbone_layers = static_cast<int>(layers);
  h.oos_threshold = f.get_f32_or(key("oos_threshold"), 0.0f);
  const int d = s.n_embd, hid = s.n_hidden, c = s.n_class;
  h.net.in_mean = read(f, "cls.input.mean", d, 1);
  h.net.in_scale = read(f, "cls.input.scale", d, 1);
  if (s.pooling == train::Pooling::Attention) h.net.query.value = read(f, h.net.query.name, d, 1);
  if (hid > 0) {
    h.net.w1.value = read(f, h.net.w1.name, d, hid);
    h.net.b1.value = read(f, h.net.b1.name, hid, 1);
  }
  h.net.w2.value = read(f, h.net.w2.name, hid > 0 ? hid : d, c);
  h.net.b2.value = read(f, h.net.b2.name, c, 1);
  h.first_block = static_cast<int>(f.get_u32_or(key("blocks.first"), 0));
  h.lora_alpha = f.get_f32_or(key("blocks.lora_alpha"), 0.0f);
  if (!(h.lora_alpha >= 0) || !std::isfinite(h.lora_alpha))
    throw Error("classifier head '" + path + "' has a LoRA alpha of " + std::to_string(h.lora_alpha),
                "the file is damaged; retrain it");
  for (const gguf::TensorInfo& info : f.tensors()) {
    if (!info.name.starts_with("cls.blk.")) continue;
    train::Param p;
    p.name = backbone_name(info.name);
    for (int d = 0; d < 4; ++d)
      if (d == 0 || info.ne[d] > 1) p.shape.push_back(info.ne[d]);
    p.value = read(f, info.name, info.ne[0], info.ne[1] * info.ne[2] * info.ne[3]);
    h.blocks.push_back(std::move(p));
  }
  return h;
}

void check_backbone(const Head& head, const Model& model, const std::string& model_sha256) {
  if (head.net.shape().n_embd != model.config().n_embd || head.backbone_sha256 != model_sha256)
    throw Error("the classifier head was trained on backbone '" + head.backbone_name + "' (sha256 " +
                    head.backbone_sha256.substr(0, 12) + "...) but -m is '" + model.config().name + "' (sha256 " +
                    model_sha256.substr(0, 12) + "...)",
                "pass the backbone the head was trained with, or retrain the head on this one");
  if (head.backbone_layers > model.config().n_layer)
    throw Error("the classifier head reads block " + std::to_string(head.backbone_layers) + " of backbone '" +
                    model.config().name + "', which has " + std::to_string(model.config().n_layer),
                "the file is damaged; retrain the head on this backbone");
  if (head.lora_alpha > 0) {
    head.lora_adapter(model);  // throws unless every adapter fits the backbone
  } else if (!head.blocks.empty()) {
    // Every tensor of the fine-tuned blocks, and nothing else, with the backbone's sizes.
    const int used = head.layers_used(model.config());
    size_t expected = 0;
    bool fits = head.first_block >= 0 && head.first_block < used;
    for (const gguf::TensorInfo& info : model.file().tensors()) {
      if (!info.name.starts_with("blk.")) continue;
      const int blk = std::atoi(info.name.c_str() + 4);
      if (blk < head.first_block || blk >= used) continue;
      ++expected;
      const auto it = std::find_if(head.blocks.begin(), head.blocks.end(),
                                   [&](const train::Param& p) { return p.name == info.name; });
      const int64_t n = info.ne[0] * info.ne[1] * info.ne[2] * info.ne[3];
      fits = fits && it != head.blocks.end() && static_cast<int64_t>(it->value.size()) == n;
    }
    if (!fits || expected != head.blocks.size())
      throw Error("the classifier head's fine-tuned blocks do not fit backbone '" + model.config().name + "'",
                  "the file is damaged; retrain the head on this backbone");
  }
}

std::shared_ptr<const LoraAdapter> Head::lora_adapter(const Model& model) const {
  const std::string what = "the classifier head's LoRA adapters";
  auto a = std::make_shared<LoraAdapter>();
  a->arch = model.file().get_string_or("general.architecture", "");
  a->alpha = lora_alpha;
  const int used = layers_used(model.config());
  for (const train::Param& pa : blocks) {
    if (!pa.name.ends_with(".lora_a")) {
      if (!pa.name.ends_with(".lora_b"))
        throw Error(what + " hold " + pa.name + ", which is neither a .lora_a nor a .lora_b", "retrain the head");
      continue;
    }
    const std::string target = pa.name.substr(0, pa.name.size() - 7);
    const auto pb = std::find_if(blocks.begin(), blocks.end(), [&](const train::Param& p) { return p.name == target + ".lora_b"; });
    if (pb == blocks.end() || pa.shape.size() != 2 || pb->shape.size() != 2)
      throw Error(what + " have no complete pair for " + target, "the file is damaged; retrain the head");
    const int blk = target.starts_with("blk.") ? std::atoi(target.c_str() + 4) : -1;
    if (blk < first_block || blk >= used)
      throw Error(what + " adapt " + target + ", outside the blocks the head reads", "the file is damaged; retrain the head");
    LoraMatrix m;
    m.target = target;
    m.n_in = pa.shape[0];
    m.rank = pa.shape[1];
    m.n_out = pb->shape[1];
    m.a = pa.value;
    m.b = pb->value;
    a->matrices.push_back(std::move(m));
  }
  if (a->matrices.empty()) throw Error(what + " are missing", "the file is damaged; retrain the head");
  a->check(model, what);
  return a;
}

}  // namespace edgelm::intent
