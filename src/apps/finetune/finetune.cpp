// Full fine-tuning: the data (chat messages rendered with the model's chat format, the loss on
// the assistant's tokens; plain text), the optimisation loop around train::LanguageModel, and
// the result as a GGUF with the base's metadata.
#include "edgelm/finetune.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numbers>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgelm/assistant.hpp"
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/train.hpp"
#include "tensor/fp16.hpp"

namespace edgelm {
namespace {

using Clock = std::chrono::steady_clock;

std::string where(const std::string& path, size_t line) { return path + ":" + std::to_string(line) + ": "; }

// Targets of plain text: every position predicts the next token.
LmExample text_example(std::vector<int32_t> tokens) {
  LmExample e;
  e.targets.assign(tokens.size(), -1);
  for (size_t i = 0; i + 1 < tokens.size(); ++i) e.targets[i] = tokens[i + 1];
  e.tokens = std::move(tokens);
  return e;
}

// A conversation: the loss on each assistant message's tokens (its text and the template's
// end-of-turn marks), found as the tokens between the conversation up to the message with a
// generation prompt and the conversation including it.
LmExample chat_example(const Tokenizer& tok, const ChatFormat& fmt, const std::vector<ChatMessage>& msgs,
                       const std::string& at) {
  auto encode = [&](const std::vector<ChatMessage>& m, bool gen) {
    return tok.encode(fmt.render(m, gen), tok.add_bos(), /*parse_special=*/true);
  };
  LmExample e;
  e.tokens = encode(msgs, false);
  e.targets.assign(e.tokens.size(), -1);
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i));
    const std::vector<ChatMessage> through(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    const size_t a = encode(before, true).size(), b = encode(through, false).size();
    if (a == 0 || b > e.tokens.size())
      throw Error(at + "the chat format renders message " + std::to_string(i + 1) + " inconsistently",
                  "check the messages' roles and order");
    for (size_t p = a; p < b; ++p) e.targets[p - 1] = e.tokens[p];
  }
  return e;
}

}  // namespace

std::vector<LmExample> load_lm_data(const Model& model, const std::string& path, const LmDataOptions& o) {
  if (o.n_ctx < 2) throw Error("the context must hold at least 2 tokens", "pass a larger --ctx");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open data file '" + path + "'", "check the path");
  const Tokenizer& tok = model.tokenizer();
  std::vector<LmExample> out;
  auto add = [&](LmExample e, const std::string& at) {
    if (static_cast<int>(e.tokens.size()) > o.n_ctx)
      throw Error(at + "the example has " + std::to_string(e.tokens.size()) + " tokens, more than --ctx " +
                      std::to_string(o.n_ctx),
                  "raise --ctx or shorten the example");
    if (std::none_of(e.targets.begin(), e.targets.end(), [](int32_t t) { return t >= 0; }))
      throw Error(at + "the example has no token to train on", "give it an assistant message or more text");
    out.push_back(std::move(e));
  };
  if (!path.ends_with(".jsonl")) {  // plain text, cut into windows of n_ctx tokens
    std::stringstream ss;
    ss << f.rdbuf();
    const std::vector<int32_t> all = tok.encode(ss.str(), tok.add_bos(), false);
    for (size_t b = 0; b + 1 < all.size(); b += static_cast<size_t>(o.n_ctx))
      add(text_example({all.begin() + static_cast<std::ptrdiff_t>(b),
                        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), b + o.n_ctx))}),
          path + ": ");
    if (out.empty()) throw Error("'" + path + "' holds no text", "give a text file, or JSON Lines named *.jsonl");
    return out;
  }
  std::unique_ptr<ChatFormat> fmt;
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = where(path, n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(at + "not valid JSON", "write one JSON object per line");
    }
    if (j.is_object() && j.contains("messages")) {
      const nlohmann::json& m = j["messages"];
      if (!m.is_array() || m.empty()) throw Error(at + "\"messages\" must be a non-empty array");
      std::vector<ChatMessage> msgs;
      for (const auto& x : m) {
        if (!x.is_object() || !x.contains("role") || !x["role"].is_string() || !x.contains("content") ||
            !x["content"].is_string())
          throw Error(at + "each message needs a string \"role\" and \"content\"");
        const std::string role = x["role"];
        if (role != "system" && role != "user" && role != "assistant")
          throw Error(at + "unknown role '" + role + "'", "use system, user or assistant");
        msgs.push_back({role, x["content"]});
      }
      if (!fmt) fmt = make_chat_format(model, o.chat_format);
      add(chat_example(tok, *fmt, msgs, at), at);
    } else if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      add(text_example(tok.encode(j["text"].get<std::string>(), tok.add_bos(), false)), at);
    } else {
      throw Error(at + "expected {\"messages\": [...]} or {\"text\": \"...\"}");
    }
  }
  if (out.empty()) throw Error("'" + path + "' holds no examples", "one JSON object per line");
  return out;
}

namespace {

train::TokenBatch make_batch(const std::vector<LmExample>& data, const std::vector<int>& order, size_t b, size_t n) {
  train::TokenBatch tb;
  for (size_t i = b; i < std::min(order.size(), b + n); ++i) {
    const LmExample& e = data[static_cast<size_t>(order[i])];
    tb.tokens.push_back(e.tokens);
    tb.targets.push_back(e.targets);
  }
  return tb;
}

// Mean loss over every target of `data`.
double mean_loss(train::LanguageModel& lm, const std::vector<LmExample>& data, int batch) {
  if (data.empty()) return std::nan("");
  std::vector<int> order(data.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  double sum = 0;
  int64_t n = 0;
  for (size_t b = 0; b < order.size(); b += static_cast<size_t>(batch)) {
    const train::TokenBatch tb = make_batch(data, order, b, static_cast<size_t>(batch));
    sum += lm.loss(tb, false) * static_cast<double>(tb.n_targets());
    n += tb.n_targets();
  }
  return sum / static_cast<double>(n);
}

// A distilled student (trained with `kd`, or a pruned student trained on the cross-entropy
// alone): how it was trained joins its lineage (edgelm.distill.*).
void write_model(const Model& base, train::LanguageModel& lm, const std::string& path, bool f16,
                 const train::DistillLoss* kd = nullptr, const train::TeacherTargets* teacher = nullptr,
                 int64_t tokens_trained = 0) {
  gguf::Writer w;
  w.copy_metadata(base.file());
  for (const std::string& k : base.file().keys())  // a base that is a training checkpoint
    if (k.starts_with("edgelm.checkpoint.")) w.remove(k);
  if (kd || base.file().has("edgelm.distill.teacher_name")) {  // a student: trained without its teacher too
    const int64_t before = base.file().has("edgelm.distill.tokens_trained")
                               ? base.file().get_i64("edgelm.distill.tokens_trained") : 0;
    gguf::Value tokens;
    tokens.type = gguf::ValueType::U64;
    tokens.u = static_cast<uint64_t>(before + tokens_trained);
    w.set("edgelm.distill.tokens_trained", tokens);
    w.set_f32("edgelm.distill.alpha", kd ? kd->alpha : 1.0f);
    w.set_string("edgelm.distill.loss", !kd ? "cross_entropy" : kd->reverse ? "reverse_kl" : "forward_kl");
    if (kd) w.set_bool("edgelm.distill.t_squared", kd->t_squared);
    if (kd && teacher) {
      w.set_f32("edgelm.distill.temperature", teacher->temperature);
      w.set_u32("edgelm.distill.top_k", static_cast<uint32_t>(teacher->k));
    }
  }
  w.set_u32("general.file_type", f16 ? 1 : 0);  // llama.cpp's MOSTLY_F16 / ALL_F32
  // Float32 tensors are written from the params themselves, F16 ones from their conversions,
  // made after the gradients are freed: writing never needs more memory than training did.
  std::vector<std::vector<uint16_t>> halves;
  for (train::Param* p : lm.params()) std::vector<float>().swap(p->grad);
  for (train::Param* p : lm.params()) {
    if (p->shape.size() >= 2 && f16) {
      std::vector<uint16_t>& half = halves.emplace_back(p->value.size());
      for (size_t i = 0; i < half.size(); ++i) half[i] = f32_to_fp16(p->value[i]);
      w.add_tensor_ref(p->name, DType::F16, p->shape, half.data(), half.size() * sizeof(uint16_t));
    } else {
      w.add_tensor_ref(p->name, DType::F32, p->shape, p->value.data(), p->value.size() * sizeof(float));
    }
  }
  w.write(path);
}

// What a checkpoint holds besides the weights: where the run stands and the state of
// everything that decides what comes next.
// A run's position: the training loop's, and the plateau schedule's learning rate.
struct RunState {
  train::LoopState loop;
  float plateau_lr = 0;
};

constexpr const char* kCkpt = "edgelm.checkpoint.";

// Doubles as C99 hex floats (exact, and inf survives), read back with strtod.
std::string exact(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%a", v);
  return b;
}

std::string hex_u64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// The weights as F32 tensors (so a checkpoint also loads as a model), AdamW's moments beside
// them, and the run's state in metadata; written atomically.
void write_checkpoint(const Model& base, train::LanguageModel& lm, train::AdamW& opt, const train::Rng& rng,
                      const train::ReduceLROnPlateau& plateau, const train::EarlyStopping& stopper, const RunState& st,
                      const std::string& path) {
  gguf::Writer w;
  w.copy_metadata(base.file());
  w.set_u32("general.file_type", 0);
  w.set_u32(std::string(kCkpt) + "epoch", static_cast<uint32_t>(st.loop.epoch));
  w.set_string(std::string(kCkpt) + "next_batch", std::to_string(st.loop.next_batch));
  w.set_string(std::string(kCkpt) + "updates", std::to_string(st.loop.updates));
  w.set_string(std::string(kCkpt) + "adam_steps", std::to_string(opt.steps()));
  w.set_f32(std::string(kCkpt) + "plateau_lr", st.plateau_lr);
  const auto ps = plateau.state();
  w.set_string(std::string(kCkpt) + "plateau",
               exact(ps.best) + " " + std::to_string(ps.bad) + " " + std::to_string(ps.cooldown_left));
  w.set_string(std::string(kCkpt) + "early_stopping", std::to_string(stopper.has_best() ? 1 : 0) + " " +
                                                          exact(stopper.best()) + " " +
                                                          std::to_string(stopper.bad_epochs()));
  std::string rs;
  for (uint64_t x : rng.state()) rs += hex_u64(x);
  w.set_string(std::string(kCkpt) + "rng", rs);
  w.set_i32_array(std::string(kCkpt) + "order", std::vector<int32_t>(st.loop.order.begin(), st.loop.order.end()));
  w.set_string(std::string(kCkpt) + "loss_sum", exact(st.loop.loss_sum));
  w.set_string(std::string(kCkpt) + "tokens", std::to_string(st.loop.tokens));
  const std::vector<train::Param*> params = lm.params();
  for (train::Param* p : params)
    w.add_tensor_ref(p->name, DType::F32, p->shape, p->value.data(), p->value.size() * sizeof(float));
  for (size_t k = 0; k < params.size(); ++k) {
    w.add_tensor_ref("adam.m." + params[k]->name, DType::F32, params[k]->shape, opt.moment1(k).data(),
                     opt.moment1(k).size() * sizeof(float));
    w.add_tensor_ref("adam.v." + params[k]->name, DType::F32, params[k]->shape, opt.moment2(k).data(),
                     opt.moment2(k).size() * sizeof(float));
  }
  w.write(path);
}

// Puts a checkpoint's weights, optimizer and run state back. Throws edgelm::Error naming the
// file for one that is corrupt, incomplete, or made for another model or data set.
void read_checkpoint(const std::string& path, train::LanguageModel& lm, train::AdamW& opt, train::Rng& rng,
                     train::ReduceLROnPlateau& plateau, train::EarlyStopping& stopper, RunState& st, size_t n_examples) {
  const std::string hint = "pass a checkpoint that --checkpoint wrote for this model and data";
  try {
    const gguf::File f = gguf::File::open(path);
    auto num = [&](const char* key) {
      const std::string v = f.get_string(std::string(kCkpt) + key);
      size_t used = 0;
      const long long x = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(key);
      return static_cast<int64_t>(x);
    };
    auto number = [&](const std::string& text) {
      char* end = nullptr;
      const double x = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0') throw std::invalid_argument(text);
      return x;
    };
    auto words = [&](const char* key) {
      std::istringstream in(f.get_string(std::string(kCkpt) + key));
      std::vector<double> out;
      for (std::string w; in >> w;) out.push_back(number(w));
      if (out.size() != 3) throw std::invalid_argument(key);
      return out;
    };
    st.loop.epoch = static_cast<int>(f.get_u32(std::string(kCkpt) + "epoch"));
    st.loop.next_batch = num("next_batch");
    st.loop.loss_count = static_cast<double>(st.loop.next_batch);  // each batch counts once (its mean loss)
    st.loop.updates = num("updates");
    st.plateau_lr = f.get_f32(std::string(kCkpt) + "plateau_lr");
    const auto pl = words("plateau");
    plateau.set_state({pl[0], static_cast<int>(pl[1]), static_cast<int>(pl[2])});
    const auto es = words("early_stopping");
    stopper.set_state(es[0] != 0, static_cast<float>(es[1]), static_cast<int>(es[2]));
    const std::string rs = f.get_string(std::string(kCkpt) + "rng");
    if (rs.size() != 64) throw std::invalid_argument("rng");
    std::array<uint64_t, 4> state{};
    for (size_t i = 0; i < 4; ++i) state[i] = std::stoull(rs.substr(i * 16, 16), nullptr, 16);
    rng.set_state(state);
    const std::vector<int32_t> order = f.get_i32_array(std::string(kCkpt) + "order");
    if (order.size() != n_examples)
      throw Error(path + ": the checkpoint was made on " + std::to_string(order.size()) + " training examples, not " +
                      std::to_string(n_examples),
                  hint);
    st.loop.order.assign(order.begin(), order.end());
    for (int x : st.loop.order)
      if (x < 0 || static_cast<size_t>(x) >= n_examples) throw std::invalid_argument("order");
    st.loop.loss_sum = number(f.get_string(std::string(kCkpt) + "loss_sum"));
    st.loop.tokens = num("tokens");
    const std::vector<train::Param*> params = lm.params();
    auto load = [&](const std::string& name, std::vector<float>& dst, const train::Param& like) {
      const gguf::TensorInfo* t = f.find_tensor(name);
      if (!t) throw Error(path + ": the checkpoint has no tensor " + name, hint);
      if (t->type != DType::F32 || static_cast<size_t>(t->nbytes) != dst.size() * sizeof(float) ||
          !std::equal(like.shape.begin(), like.shape.end(), t->ne.begin()))
        throw Error(path + ": tensor " + name + " has another type or shape than the model's", hint);
      std::memcpy(dst.data(), f.view(*t).data, dst.size() * sizeof(float));
    };
    for (size_t k = 0; k < params.size(); ++k) {
      load(params[k]->name, params[k]->value, *params[k]);
      load("adam.m." + params[k]->name, opt.moment1(k), *params[k]);
      load("adam.v." + params[k]->name, opt.moment2(k), *params[k]);
    }
    opt.set_steps(num("adam_steps"));
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    throw Error(path + ": the checkpoint's run state is damaged", hint);
  }
}

}  // namespace

FinetuneReport finetune(const std::shared_ptr<const Model>& model, const std::vector<LmExample>& train,
                        const std::vector<LmExample>& val, const std::string& out_path, const FinetuneOptions& o,
                        const FinetuneCallbacks& cb) {
  if (train.empty()) throw Error("no training examples");
  if (out_path.empty()) throw Error("no output file", "pass -o tuned.gguf");
  if (o.epochs < 1) throw Error("--epochs must be at least 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw Error("--lr must be a positive number");
  if (o.batch < 1 || o.grad_accum < 1) throw Error("--batch and --grad-accum must be at least 1");
  if (o.schedule != "constant" && o.schedule != "cosine" && o.schedule != "plateau")
    throw Error("unknown schedule '" + o.schedule + "'", "use --schedule constant, cosine or plateau");
  if (o.warmup < 0 || !(o.clip >= 0) || !(o.weight_decay >= 0))
    throw Error("--warmup, --clip and --weight-decay must not be negative");
  if (o.eval_every < 0 || o.patience < 0) throw Error("--eval-every and --patience must not be negative");
  if (o.teacher && o.lora.rank > 0) throw Error("distillation trains a whole student; it does not take LoRA options");
  if (val.empty() && (o.patience > 0 || o.schedule == "plateau" || o.eval_every > 0))
    throw Error("--patience, --eval-every and --schedule plateau need validation data", "pass --val FILE");
  const int threads = o.n_threads > 0 ? o.n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  train::LoraOptions lora = o.lora;
  lora.seed = o.seed;
  train::LanguageModel lm(model, {.n_threads = threads, .recompute = o.recompute, .lora = lora});
  std::vector<train::Param*> params = lm.params();
  for (train::Param* p : params) p->decay = p->shape.size() >= 2;  // no decay on norms and biases
  train::AdamW opt(params, {.lr = o.lr, .weight_decay = o.weight_decay, .n_threads = threads});
  train::Rng rng(o.seed);
  // PyTorch's ReduceLROnPlateau on the validation loss (mode min, relative threshold).
  train::ReduceLROnPlateau plateau({.factor = o.plateau_factor,
                                    .patience = o.plateau_patience,
                                    .threshold = o.plateau_threshold,
                                    .cooldown = o.plateau_cooldown,
                                    .min_lr = o.plateau_min_lr});
  train::TrainingLoop loop(params, {&opt},
                           {.epochs = o.epochs, .batch = static_cast<size_t>(o.batch), .grad_accum = o.grad_accum,
                            .clip = o.clip, .eval_every = o.eval_every, .patience = o.patience});
  const int64_t total = loop.updates_per_epoch(train.size()) * o.epochs;
  RunState st;
  st.plateau_lr = o.lr;
  auto lr_at = [&](int64_t u) {  // learning rate of update u (from 0)
    const float base = o.schedule == "plateau" ? st.plateau_lr : o.lr;
    if (u < o.warmup) return base * static_cast<float>(u + 1) / static_cast<float>(o.warmup);
    if (o.schedule != "cosine" || total <= o.warmup) return base;
    const double t = static_cast<double>(u - o.warmup) / static_cast<double>(total - o.warmup);
    return static_cast<float>(o.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * t)));
  };

  FinetuneReport rep;
  if (!o.resume.empty()) {
    read_checkpoint(o.resume, lm, opt, rng, plateau, loop.stopper(), st, train.size());
    if (st.loop.epoch > o.epochs)
      throw Error(o.resume + ": the checkpoint is at epoch " + std::to_string(st.loop.epoch) + ", past --epochs " +
                      std::to_string(o.epochs),
                  "pass a larger --epochs to train on");
    loop.state() = st.loop;
  }
  rep.initial_val_loss = mean_loss(lm, val, o.batch);
  train::LoopHooks h;
  train::TeacherTargets batch_teacher;
  train::DistillLoss kd = o.distill;
  kd.teacher = &batch_teacher;
  h.train_batch = [&](std::span<const int> ids) {
    const train::TokenBatch tb = make_batch(train, std::vector<int>(ids.begin(), ids.end()), 0, ids.size());
    rep.tokens_trained += tb.n_tokens();
    if (!o.teacher) return train::BatchLoss{.sum = lm.loss(tb, true), .count = 1, .tokens = tb.n_tokens()};
    o.teacher(ids, batch_teacher);
    return train::BatchLoss{.sum = lm.loss(tb, true, &kd), .count = 1, .tokens = tb.n_tokens()};
  };
  if (!val.empty()) h.validate = [&] { return mean_loss(lm, val, o.batch); };
  h.set_lr = [&](int64_t u) { opt.set_lr(lr_at(u)); };
  h.on_update = [&](const train::LoopUpdate& u) {
    if (cb.on_step) cb.on_step(u.update, total, u.loss);
  };
  h.on_validation = [&](const train::LoopValidation& v) {
    rep.evals.push_back({v.update, v.epoch, v.loss, opt.lr()});
    if (o.schedule == "plateau") {  // PyTorch's ReduceLROnPlateau on the validation loss
      opt.set_lr(st.plateau_lr);
      if (plateau.step(v.loss, opt)) st.plateau_lr = opt.lr();
    }
    if (cb.on_eval) cb.on_eval(rep.evals.back());
  };
  h.checkpoint = [&] {
    if (o.checkpoint.empty()) return;
    st.loop = loop.state();
    write_checkpoint(*model, lm, opt, rng, plateau, loop.stopper(), st, o.checkpoint);
  };
  h.on_epoch = [&](const train::LoopEpoch& e) {
    FinetuneEpoch ep{.epoch = e.epoch, .train_loss = e.train_loss,
                     .val_loss = rep.evals.empty() ? std::nan("") : rep.evals.back().val_loss, .seconds = e.seconds,
                     .tokens_per_second = static_cast<double>(e.tokens) / std::max(1e-9, e.seconds)};
    rep.epochs.push_back(ep);
    if (cb.on_epoch) cb.on_epoch(ep);
  };
  const bool stop = loop.run(train.size(), rng, h);
  rep.updates = loop.state().updates;
  rep.stopped_early = stop;
  if (o.lora.rank > 0)
    lm.lora_adapter().save(out_path);
  else
    write_model(*model, lm, out_path, o.f16, o.teacher ? &o.distill : nullptr,
                batch_teacher.rows() > 0 ? &batch_teacher : nullptr, rep.tokens_trained);
  return rep;
}

}  // namespace edgelm
