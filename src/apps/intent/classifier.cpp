// Classifier: a trained head bound to its backbone.
#include <algorithm>
#include <numeric>
#include <thread>

#include "apps/intent/finetune.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {

Classifier::Classifier(std::shared_ptr<const Model> model, const std::string& head_path, int n_threads, int max_batch)
    : Classifier(model, load_head(head_path), sha256_file(model->path()), n_threads, max_batch) {}

Classifier::Classifier(std::shared_ptr<const Model> model, Head head, const std::string& model_sha256, int n_threads,
                       int max_batch)
    : model_(std::move(model)), head_(std::move(head)), max_batch_(std::clamp(max_batch, 1, 256)) {
  check_backbone(head_, *model_, model_sha256);
  if (!head_.blocks.empty() && head_.lora_alpha == 0) {  // whole blocks, in float32
    tuned_ = tuned_blocks(model_, head_, n_threads);
    session_ = frozen_session(model_, head_.first_block, kMaxTokens, max_batch_, n_threads);
    return;
  }
  SessionOptions so;
  so.n_ctx = kMaxTokens;
  so.n_seq = max_batch_;
  so.n_threads = n_threads;
  so.n_batch = 512;
  so.n_layers = head_.backbone_layers;
  if (head_.lora_alpha > 0) so.lora = {{head_.lora_adapter(*model_), 1.0f}};  // beside the backbone's products
  session_ = std::make_unique<Session>(model_, so);
}

Classifier::~Classifier() = default;

Prediction Classifier::predict(const float* states, int n_tokens, int top_k) const {
  const int c = head_.net.shape().n_class;
  std::vector<float> logits(c), probs(c);
  head_.net.forward(states, n_tokens, logits.data());
  train::softmax(logits.data(), probs.data(), c);
  std::vector<int> idx(c);
  std::iota(idx.begin(), idx.end(), 0);
  const int k = std::clamp(top_k, 1, c);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return probs[a] != probs[b] ? probs[a] > probs[b] : a < b;
  });
  Prediction p;
  for (int i = 0; i < k; ++i) p.top.push_back({head_.labels[idx[i]], probs[idx[i]]});
  p.confidence = probs[idx[0]];
  p.oos = idx[0] == head_.oos_index() || p.confidence < head_.oos_threshold;
  p.intent = p.oos ? kOosLabel : head_.labels[idx[0]];
  return p;
}

Prediction Classifier::classify(std::string_view text, int top_k) {
  const std::string s(text);
  return classify_batch(std::span<const std::string>(&s, 1), top_k).front();
}

std::vector<Prediction> Classifier::classify_batch(std::span<const std::string> texts, int top_k) {
  const Tokenizer& tok = model_->tokenizer();
  const size_t n_skip = tok.add_bos() ? 1 : 0;
  const int d = model_->config().n_embd;
  std::vector<Prediction> out;
  out.reserve(texts.size());
  for (size_t b = 0; b < texts.size(); b += max_batch_) {
    const size_t e = std::min(texts.size(), b + max_batch_);
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = b; i < e; ++i) {
      ids.push_back(encode_text(tok, texts[i], head_.templ));
      if (ids.back().size() <= n_skip) throw Error("the text produced no tokens", "give a non-empty utterance");
      if (ids.back().size() > static_cast<size_t>(kMaxTokens))
        throw Error("the text has " + std::to_string(ids.back().size()) + " tokens; the classifier reads at most " +
                        std::to_string(kMaxTokens),
                    "shorten the utterance");
    }
    std::vector<float> tuned;
    std::span<const float> h;
    if (tuned_) {
      size_t rows = 0;
      for (const auto& v : ids) rows += v.size();
      tuned.resize(rows * d);
      tuned_states(session_.get(), *model_, *tuned_, ids, tuned.data());
      h = tuned;
    } else {
      h = session_->embed_batch(ids);
    }
    size_t row = 0;
    for (const auto& v : ids) {
      out.push_back(predict(h.data() + (row + n_skip) * d, static_cast<int>(v.size() - n_skip), top_k));
      row += v.size();
    }
  }
  return out;
}

}  // namespace edgelm::intent
