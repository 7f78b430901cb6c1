// Fine-tuning the backbone's top blocks with the head: the frozen part runs once (its output,
// the residual stream entering the first trainable block, is kept as float16), then every
// epoch runs the trainable blocks forward and backward (train::LanguageModel: the engine's
// forward pass on float32 copies, with its tape) over packed mini-batches.
#include "apps/intent/finetune.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include "apps/intent/epoch_loop.hpp"
#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::intent {

namespace {

// Residual states entering the first trainable block, every token (BOS included).
TokenStates prefix_states(const std::shared_ptr<const Model>& model, int first_block,
                          const std::vector<std::vector<int32_t>>& ids, int n_threads,
                          const std::function<void(size_t, size_t)>& progress) {
  const int E = model->config().n_embd;
  TokenStates s;
  s.n_embd = E;
  s.offsets.push_back(0);
  size_t longest = 1;
  for (const auto& v : ids) {
    s.offsets.push_back(s.offsets.back() + v.size());
    longest = std::max(longest, v.size());
  }
  s.data.resize(s.offsets.back() * E);
  constexpr size_t kChunk = 32;
  const auto frozen = frozen_session(model, first_block, static_cast<int>(longest), kChunk, n_threads);
  std::vector<float> out;
  for (size_t b = 0; b < ids.size(); b += kChunk) {
    const size_t e = std::min(ids.size(), b + kChunk);
    out.resize((s.offsets[e] - s.offsets[b]) * E);
    frozen_states(frozen.get(), *model, std::span(ids).subspan(b, e - b), out.data());
    uint16_t* dst = s.data.data() + s.offsets[b] * E;
    for (size_t i = 0; i < out.size(); ++i) dst[i] = f32_to_fp16(out[i]);
    if (progress) progress(e, ids.size());
  }
  return s;
}

// One packed mini-batch through the trainable blocks and the final norm.
struct Packed {
  std::vector<int> lens;
  std::vector<float> x;    // input rows
  std::vector<float> out;  // output rows of the final norm
};

void run_blocks(train::LanguageModel& lm, const TokenStates& s, std::span<const int> idx, Packed& p, bool record) {
  const int E = s.n_embd;
  p.lens.clear();
  size_t T = 0;
  for (int i : idx) {
    p.lens.push_back(s.n_tokens(i));
    T += s.n_tokens(i);
  }
  p.x.resize(T * E);
  std::vector<float> rows;
  size_t off = 0;
  for (int i : idx) {
    s.get(i, rows);
    std::copy(rows.begin(), rows.end(), p.x.begin() + off * E);
    off += s.n_tokens(i);
  }
  p.out.resize(T * E);
  lm.hidden_states(p.lens, p.x.data(), p.out.data(), record);
}

}  // namespace

std::unique_ptr<Session> frozen_session(const std::shared_ptr<const Model>& model, int first_block, int n_ctx,
                                        int n_seq, int n_threads) {
  if (first_block <= 0) return nullptr;
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_seq = n_seq;
  so.n_threads = n_threads;
  so.n_batch = 512;
  so.n_layers = first_block;
  so.residual_hidden = true;
  return std::make_unique<Session>(model, so);
}

void frozen_states(Session* frozen, const Model& model, std::span<const std::vector<int32_t>> seqs, float* out) {
  if (frozen) {
    const std::span<const float> h = frozen->embed_batch(seqs);
    std::copy(h.begin(), h.end(), out);
    return;
  }
  const ModelConfig& c = model.config();
  const TensorView& emb = model.weights().token_embd;
  const float scale = c.scale_embd ? std::sqrt(static_cast<float>(c.n_embd)) : 1.0f;  // Gemma
  for (const auto& q : seqs)
    for (int32_t id : q) {
      if (id < 0 || id >= c.n_vocab) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
      kernels::dequantize_row(emb.type, emb.row(id), out, c.n_embd);
      for (int i = 0; i < c.n_embd; ++i) out[i] *= scale;
      out += c.n_embd;
    }
}

std::shared_ptr<train::LanguageModel> tuned_blocks(const std::shared_ptr<const Model>& model, const Head& head,
                                                   int n_threads, const train::LoraOptions& lora) {
  auto lm = std::make_shared<train::LanguageModel>(
      model, train::LanguageModelOptions{
                 .n_threads = n_threads > 0 ? n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency())),
                 .n_layers = head.layers_used(model->config()),
                 .first_block = head.first_block,
                 .lm_head = false,
                 .lora = lora});
  for (const train::Param& p : head.blocks) {
    train::Param* q = lm->find(p.name);
    if (!q || q->value.size() != p.value.size())
      throw Error("the classifier head's tensor " + p.name + " does not fit the backbone", "retrain the head");
    q->value = p.value;
  }
  return lm;
}

void tuned_states(Session* frozen, const Model& model, train::LanguageModel& tuned,
                  std::span<const std::vector<int32_t>> seqs, float* out) {
  std::vector<int> lens;
  for (const auto& q : seqs) lens.push_back(static_cast<int>(q.size()));
  frozen_states(frozen, model, seqs, out);
  tuned.hidden_states(lens, out, out, false);
}

std::vector<float> train_unfrozen(const std::shared_ptr<const Model>& model, Head& head,
                                  const std::vector<std::string>& x_tr, const std::vector<int>& y_tr,
                                  const std::vector<std::string>& x_va, const std::vector<int>& y_va,
                                  const TrainOptions& o, float head_lr, const TrainCallbacks& cb, TrainReport& rep,
                                  const std::string& out_path) {
  // The options were checked by train_classifier.
  const ModelConfig& cfg = model->config();
  const int E = cfg.n_embd;
  const int used = head.layers_used(cfg);
  const int first = used - o.unfreeze;
  const int n_threads =
      o.features.n_threads > 0 ? o.features.n_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  // --- the frozen part, once ---
  const auto t_feat = Clock::now();
  const Tokenizer& tok = model->tokenizer();
  const int n_skip = tok.add_bos() ? 1 : 0;
  auto encode_all = [&](const std::vector<std::string>& xs) {
    std::vector<std::vector<int32_t>> ids;
    for (const auto& x : xs) {
      ids.push_back(encode_text(tok, x, head.templ));
      if (static_cast<int>(ids.back().size()) <= n_skip)
        throw Error("the text '" + x + "' produced no tokens", "remove empty examples");
      if (ids.back().size() > static_cast<size_t>(Classifier::kMaxTokens))
        throw Error("the text '" + x.substr(0, 40) + "...' is longer than " + std::to_string(Classifier::kMaxTokens) +
                    " tokens", "shorten it");
    }
    return ids;
  };
  auto progress = [&](const char* stage) -> std::function<void(size_t, size_t)> {
    if (!cb.on_progress) return {};
    return [&cb, stage](size_t d, size_t t) { cb.on_progress(stage, d, t); };
  };
  const TokenStates s_tr = prefix_states(model, first, encode_all(x_tr), n_threads, progress("frozen blocks (train)"));
  const TokenStates s_va = prefix_states(model, first, encode_all(x_va), n_threads, progress("frozen blocks (val)"));
  rep.block_feature_seconds = seconds_since(t_feat);
  rep.blocks_tuned = o.unfreeze;

  const auto t_train = Clock::now();
  const int c = static_cast<int>(head.labels.size());
  train::Rng rng(o.seed + 1);
  head.first_block = first;
  head.blocks.clear();
  head.lora_alpha = o.lora_rank > 0 ? o.lora_alpha : 0.0f;
  const auto lm = tuned_blocks(model, head, n_threads,
                               {.rank = o.lora_rank, .alpha = o.lora_alpha, .targets = o.lora_targets, .seed = o.seed + 2});
  constexpr int kBatchRows = 32;  // examples per packed forward in evaluation
  Packed p;

  // The blocks' tensors train; the output norm stays the backbone's.
  std::vector<train::Param*> head_params = head.net.params(), block_params, all;
  for (train::Param* q : lm->params())
    if (q->name.starts_with("blk.")) block_params.push_back(q);
  all = head_params;
  all.insert(all.end(), block_params.begin(), block_params.end());
  auto sync_head = [&] {  // the head file holds copies of the blocks' values
    head.blocks.clear();
    for (const train::Param* q : block_params) head.blocks.push_back({.name = q->name, .value = q->value, .shape = q->shape});
  };
  train::AdamW opt(head_params, {.lr = head_lr, .weight_decay = o.weight_decay});
  const float block_lr = o.block_lr > 0 ? o.block_lr : o.lora_rank > 0 ? 1e-3f : 5e-5f;
  train::AdamW opt_blocks(block_params, {.lr = block_lr, .weight_decay = 0.0f});
  train::ReduceLROnPlateau sched(o.lr_factor, o.lr_patience), sched_blocks(o.lr_factor, o.lr_patience, 1e-4f, 1e-8f);
  EpochLoop loop(all, {{&opt, &sched}, {&opt_blocks, &sched_blocks}}, o.patience, head, out_path);
  loop.before_save(sync_head);
  double first_loss = 0, first_acc = 0;

  auto evaluate = [&](double& loss, double& acc) {
    std::vector<float> probs(y_va.size() * c), logits(c);
    std::vector<int> idx;
    loss = 0;
    size_t right = 0;
    for (size_t b = 0; b < y_va.size(); b += kBatchRows) {
      idx.clear();
      for (size_t i = b; i < std::min(y_va.size(), b + kBatchRows); ++i) idx.push_back(static_cast<int>(i));
      run_blocks(*lm, s_va, idx, p, false);
      size_t off = 0;
      for (size_t j = 0; j < idx.size(); ++j) {
        const int i = idx[j];
        head.net.forward(p.out.data() + (off + n_skip) * E, p.lens[j] - n_skip, logits.data());
        loss += train::softmax_cross_entropy(logits.data(), c, y_va[i], nullptr);
        float* pr = probs.data() + static_cast<size_t>(i) * c;
        train::softmax(logits.data(), pr, c);
        if (std::max_element(pr, pr + c) - pr == y_va[i]) ++right;
        off += p.lens[j];
      }
    }
    loss /= y_va.size();
    acc = static_cast<double>(right) / y_va.size();
    return probs;
  };

  std::vector<float> logits(c), dlogits(c), dfin;
  train::ClassifierHead::Trace trace;
  auto train_batch = [&](std::span<const int> idx, float scale, double& loss_sum) {
    run_blocks(*lm, s_tr, idx, p, true);
    const size_t T = p.out.size() / E;
    dfin.assign(T * E, 0.0f);
    std::vector<float> dtok;
    size_t off = 0;
    for (size_t j = 0; j < idx.size(); ++j) {
      const int i = idx[j], n = p.lens[j] - n_skip;
      head.net.forward(p.out.data() + (off + n_skip) * E, n, logits.data(), &trace, o.dropout, &rng);
      loss_sum += train::softmax_cross_entropy(logits.data(), c, y_tr[i], dlogits.data(), scale);
      dtok.resize(static_cast<size_t>(n) * E);
      head.net.backward(trace, dlogits.data(), dtok.data());
      std::copy(dtok.begin(), dtok.end(), dfin.begin() + (off + n_skip) * E);
      off += p.lens[j];
    }
    lm->backward_hidden(dfin.data());
  };
  // The frozen-backbone head is the checkpoint to beat.
  evaluate(first_loss, first_acc);
  loop.start_from(first_loss);
  const int epoch0 = rep.epochs.empty() ? 0 : rep.epochs.back().epoch;
  loop.run({.first_epoch = epoch0 + 1, .n_epochs = o.unfreeze_epochs, .batch_size = static_cast<size_t>(o.batch_size),
            .clip = o.clip, .progress_every = 4, .stage = "fine-tune epoch",
            .diverged_hint = "lower --lr or --block-lr"},
           y_tr.size(), rng, train_batch, evaluate, cb, rep);
  loop.restore_best();
  sync_head();
  double loss = 0, acc = 0;
  std::vector<float> probs = evaluate(loss, acc);
  rep.block_train_seconds = seconds_since(t_train);
  return probs;
}

}  // namespace edgelm::intent
