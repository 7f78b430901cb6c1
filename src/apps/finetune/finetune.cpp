// Full fine-tuning: the data (chat messages rendered with the model's chat format, the loss on
// the assistant's tokens; plain text), the optimisation loop around train::LanguageModel, and
// the result as a GGUF with the base's metadata.
#include "edgelm/finetune.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
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

void write_model(const Model& base, train::LanguageModel& lm, const std::string& path, bool f16) {
  gguf::Writer w;
  w.copy_metadata(base.file());
  w.set_u32("general.file_type", f16 ? 1 : 0);  // llama.cpp's MOSTLY_F16 / ALL_F32
  std::vector<uint16_t> half;
  for (const train::Param* p : lm.params()) {
    if (p->shape.size() >= 2 && f16) {
      half.resize(p->value.size());
      for (size_t i = 0; i < half.size(); ++i) half[i] = f32_to_fp16(p->value[i]);
      w.add_tensor(p->name, DType::F16, p->shape, half.data(), half.size() * sizeof(uint16_t));
    } else {
      w.add_tensor(p->name, DType::F32, p->shape, p->value.data(), p->value.size() * sizeof(float));
    }
  }
  w.write(path);
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
  if (o.schedule != "constant" && o.schedule != "cosine")
    throw Error("unknown schedule '" + o.schedule + "'", "use --schedule constant or cosine");
  if (o.warmup < 0 || !(o.clip >= 0) || !(o.weight_decay >= 0))
    throw Error("--warmup, --clip and --weight-decay must not be negative");
  const int threads = o.n_threads > 0 ? o.n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  train::LanguageModel lm(model, threads);
  std::vector<train::Param*> params = lm.params();
  for (train::Param* p : params) p->decay = p->shape.size() >= 2;  // no decay on norms and biases
  train::AdamW opt(params, {.lr = o.lr, .weight_decay = o.weight_decay, .n_threads = threads});
  train::Rng rng(o.seed);

  const size_t n_batches = (train.size() + static_cast<size_t>(o.batch) - 1) / static_cast<size_t>(o.batch);
  const int64_t per_epoch = static_cast<int64_t>((n_batches + o.grad_accum - 1) / o.grad_accum);
  const int64_t total = per_epoch * o.epochs;
  auto lr_at = [&](int64_t u) {  // learning rate of update u (from 0)
    if (u < o.warmup) return o.lr * static_cast<float>(u + 1) / static_cast<float>(o.warmup);
    if (o.schedule == "constant" || total <= o.warmup) return o.lr;
    const double t = static_cast<double>(u - o.warmup) / static_cast<double>(total - o.warmup);
    return static_cast<float>(o.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * t)));
  };

  FinetuneReport rep;
  rep.initial_val_loss = mean_loss(lm, val, o.batch);
  std::vector<int> order(train.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = Clock::now();
    rng.shuffle(order);
    double loss_sum = 0;
    int64_t tokens = 0;
    int pending = 0;
    for (size_t bi = 0; bi < n_batches; ++bi) {
      const train::TokenBatch tb = make_batch(train, order, bi * static_cast<size_t>(o.batch), static_cast<size_t>(o.batch));
      const double loss = lm.loss(tb, true);
      if (!std::isfinite(loss))
        throw Error("training diverged at epoch " + std::to_string(epoch) + " (the loss is not finite)", "lower --lr");
      loss_sum += loss;
      tokens += tb.n_tokens();
      if (++pending < o.grad_accum && bi + 1 < n_batches) continue;
      if (pending > 1)  // the mean of the accumulated steps' gradients
        for (train::Param* p : params)
          for (float& g : p->grad) g /= static_cast<float>(pending);
      pending = 0;
      if (o.clip > 0) train::clip_grad_norm(params, o.clip);
      opt.set_lr(lr_at(rep.updates));
      opt.step();
      opt.zero_grad();
      ++rep.updates;
      if (cb.on_step) cb.on_step(rep.updates, total, loss);
    }
    FinetuneEpoch st;
    st.epoch = epoch;
    st.train_loss = loss_sum / static_cast<double>(n_batches);
    st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    st.tokens_per_second = static_cast<double>(tokens) / std::max(1e-9, st.seconds);
    st.val_loss = mean_loss(lm, val, o.batch);
    if (!val.empty() && !std::isfinite(st.val_loss))
      throw Error("training diverged at epoch " + std::to_string(epoch) + " (the validation loss is not finite)",
                  "lower --lr");
    rep.epochs.push_back(st);
    if (cb.on_epoch) cb.on_epoch(st);
  }
  write_model(*model, lm, out_path, o.f16);
  return rep;
}

}  // namespace edgelm
