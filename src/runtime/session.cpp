#include "edgelm/session.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <thread>

#include "edgelm/error.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "model/lora.hpp"

namespace edgelm {

namespace {
ModelConfig with_layers(ModelConfig c, int n_layers) {
  if (n_layers > 0) c.n_layer = n_layers;
  return c;
}
}  // namespace

struct Session::Impl {
  Impl(const Model& m, const SessionOptions& o, int threads)
      : kv(with_layers(m.config(), o.n_layers), o.n_ctx, o.n_seq, o.kv_type),
        scratch(m.config(), std::max(o.n_batch, o.n_seq), o.n_ctx, threads),
        pool(threads),
        history(o.n_seq) {}
  KvCache kv;
  ForwardScratch scratch;
  kernels::ThreadPool pool;
  std::vector<std::vector<int32_t>> history;
  std::vector<float> logits;
  std::vector<float> hidden;  // embed() / embed_batch() results
  std::vector<BatchEntry> batch;
  std::unique_ptr<LoraProducts> lora;  // SessionOptions::lora, on the forward pass's adapter seam
  AdapterHook lora_hook;
  int n_lora = 0;
  std::vector<float> lora_scales;  // [seq][adapter]
  std::vector<float> token_scales;  // [batch entry][adapter], for the pass being run

  // One forward pass over `batch`, each entry's adapters scaled by its sequence's scales.
  void run(const Model& m, float* logits, float* hidden_out = nullptr) {
    if (lora) {
      token_scales.resize(batch.size() * static_cast<size_t>(n_lora));
      for (size_t t = 0; t < batch.size(); ++t)
        std::copy_n(lora_scales.begin() + static_cast<ptrdiff_t>(batch[t].seq) * n_lora, n_lora,
                    token_scales.begin() + static_cast<ptrdiff_t>(t) * n_lora);
      lora->token_scales = token_scales;
    }
    forward(m, batch, kv, scratch, pool, logits, hidden_out);
  }

  // Appends toks to sequence seq in forward passes of at most the scratch's batch size. With
  // `every`, each token's row goes to row i of `logits` / `hidden` (either may be null);
  // otherwise only the last token's logits are written, to `logits`.
  void append(const Model& m, std::span<const int32_t> toks, int seq, bool every, float* logits, float* hidden_out) {
    auto& hist = history[seq];
    const size_t n_vocab = m.config().n_vocab, n_embd = m.config().n_embd;
    const size_t chunk = static_cast<size_t>(scratch.max_tokens());
    for (size_t i = 0; i < toks.size(); i += chunk) {
      const size_t n = std::min(chunk, toks.size() - i);
      batch.clear();
      for (size_t j = 0; j < n; ++j)
        batch.push_back({toks[i + j], static_cast<int32_t>(hist.size() + j), seq, every || i + j + 1 == toks.size()});
      run(m, logits && every ? logits + i * n_vocab : logits, hidden_out ? hidden_out + i * n_embd : nullptr);
      hist.insert(hist.end(), toks.begin() + i, toks.begin() + i + n);
    }
  }
};

namespace {
int resolve_threads(int n) {
  if (n > 0) return std::min(n, 256);
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}
}  // namespace

Session::Session(std::shared_ptr<const Model> model, SessionOptions opts)
    : model_(std::move(model)), opts_(opts) {
  if (!model_) throw Error("internal: session created without a model");
  if (opts_.n_ctx <= 0) opts_.n_ctx = model_->config().n_ctx_train;
  if (opts_.n_ctx > (1 << 20)) throw Error("context size " + std::to_string(opts_.n_ctx) + " is too large", "use -c 131072 or less");
  if (opts_.n_seq <= 0 || opts_.n_seq > 256) throw Error("sequence count must be between 1 and 256");
  if (opts_.n_layers < 0 || opts_.n_layers > model_->config().n_layer)
    throw Error("cannot stop after block " + std::to_string(opts_.n_layers) + ": the model has " +
                    std::to_string(model_->config().n_layer) + " blocks",
                "choose 1.." + std::to_string(model_->config().n_layer) + ", or 0 for all of them");
  if (opts_.n_batch <= 0) opts_.n_batch = 256;
  opts_.n_batch = std::min(opts_.n_batch, opts_.n_ctx);
  impl_ = std::make_unique<Impl>(*model_, opts_, resolve_threads(opts_.n_threads));
  if (opts_.on_matmul_input) impl_->scratch.seam.on_matmul_input = &opts_.on_matmul_input;
  if (opts_.on_block_output) impl_->scratch.seam.on_block_output = &opts_.on_block_output;
  impl_->scratch.seam.residual_hidden = opts_.residual_hidden;
  if (!opts_.lora.empty()) {
    impl_->lora = std::make_unique<LoraProducts>(model_->config().n_layer);
    impl_->n_lora = static_cast<int>(opts_.lora.size());
    impl_->lora->n_adapters = impl_->n_lora;
    for (const LoraUse& u : opts_.lora) {
      if (!u.adapter) throw Error("internal: a LoRA use without its adapter");
      u.adapter->check(*model_, "LoRA adapter");
      impl_->lora->add(*model_, *u.adapter, 1.0f, static_cast<int>(&u - opts_.lora.data()));
    }
    for (int q = 0; q < opts_.n_seq; ++q)
      for (const LoraUse& u : opts_.lora) impl_->lora_scales.push_back(u.scale);
    impl_->lora_hook = impl_->lora->hook();
    impl_->scratch.seam.adapter = &impl_->lora_hook;
  }
}

Session::~Session() = default;

int Session::n_threads() const { return impl_->pool.size(); }

const std::vector<int32_t>& Session::tokens(int seq) const {
  if (seq < 0 || seq >= opts_.n_seq) throw Error("sequence " + std::to_string(seq) + " does not exist");
  return impl_->history[seq];
}

std::span<const float> Session::lora_scales(int seq) const {
  tokens(seq);  // validates seq
  return std::span<const float>(impl_->lora_scales).subspan(static_cast<size_t>(seq * impl_->n_lora),
                                                            static_cast<size_t>(impl_->n_lora));
}

void Session::set_lora_scales(int seq, std::span<const float> scales) {
  tokens(seq);  // validates seq
  if (scales.size() != static_cast<size_t>(impl_->n_lora))
    throw Error("got " + std::to_string(scales.size()) + " LoRA scales for " + std::to_string(impl_->n_lora) +
                " adapters", "give one scale per adapter the session was created with");
  float* cur = impl_->lora_scales.data() + static_cast<ptrdiff_t>(seq) * impl_->n_lora;
  if (std::equal(scales.begin(), scales.end(), cur)) return;
  std::copy(scales.begin(), scales.end(), cur);
  truncate(seq, 0);  // the cached keys and values were computed with the old scales
}

DType parse_kv_type(std::string_view name) {
  std::string n(name);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "f16") return DType::F16;
  if (n == "q8_0") return DType::Q8_0;
  throw Error("unknown KV cache type '" + std::string(name) + "'", "use f16 or q8_0");
}

uint64_t Session::kv_bytes() const { return impl_->kv.bytes(); }

namespace {
void check_fit(int n_past, size_t n_new, int n_ctx) {
  if (n_past + n_new > static_cast<size_t>(n_ctx))
    throw Error("the prompt needs " + std::to_string(n_past + n_new) + " positions but the context holds " +
                    std::to_string(n_ctx),
                "shorten the prompt or raise the context size with -c");
}
}  // namespace

void Session::check_append(std::span<const int32_t> toks, int seq) const {
  const auto& hist = tokens(seq);  // validates seq
  if (toks.empty()) throw Error("nothing to evaluate: the token list is empty");
  check_fit(static_cast<int>(hist.size()), toks.size(), opts_.n_ctx);
}

std::span<const float> Session::eval(std::span<const int32_t> toks, int seq) {
  check_append(toks, seq);
  impl_->logits.resize(model_->config().n_vocab);
  impl_->append(*model_, toks, seq, false, impl_->logits.data(), nullptr);
  return impl_->logits;
}

std::span<const float> Session::eval_all(std::span<const int32_t> toks, int seq) {
  check_append(toks, seq);
  impl_->logits.resize(toks.size() * model_->config().n_vocab);
  impl_->append(*model_, toks, seq, true, impl_->logits.data(), nullptr);
  return impl_->logits;
}

std::span<const float> Session::eval_as_decoded(std::span<const int32_t> toks, int seq) {
  impl_->scratch.seam.one_token_order = true;
  struct Restore {
    ForwardSeam& seam;
    ~Restore() { seam.one_token_order = false; }
  } restore{impl_->scratch.seam};
  return eval_all(toks, seq);
}

std::span<const float> Session::embed(std::span<const int32_t> toks, int seq) {
  check_append(toks, seq);
  impl_->hidden.resize(toks.size() * model_->config().n_embd);
  impl_->append(*model_, toks, seq, true, nullptr, impl_->hidden.data());
  return impl_->hidden;
}

std::span<const float> Session::embed_batch(std::span<const std::vector<int32_t>> texts) {
  if (texts.size() > static_cast<size_t>(opts_.n_seq))
    throw Error("embed_batch got " + std::to_string(texts.size()) + " texts but the session has " +
                    std::to_string(opts_.n_seq) + " sequences",
                "create the session with n_seq >= the number of texts per call");
  size_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].empty()) throw Error("text " + std::to_string(i) + " has no tokens", "skip empty texts");
    check_fit(0, texts[i].size(), opts_.n_ctx);
    total += texts[i].size();
  }
  for (size_t i = 0; i < texts.size(); ++i) impl_->history[i].clear();
  const size_t n_embd = model_->config().n_embd;
  impl_->hidden.resize(total * n_embd);
  const size_t chunk = static_cast<size_t>(impl_->scratch.max_tokens());
  // Walk the texts in order, filling each forward pass up to the batch size.
  size_t done = 0, ti = 0, tj = 0;
  while (done < total) {
    impl_->batch.clear();
    while (impl_->batch.size() < chunk && ti < texts.size()) {
      impl_->batch.push_back({texts[ti][tj], static_cast<int32_t>(tj), static_cast<int32_t>(ti), true});
      if (++tj == texts[ti].size()) ++ti, tj = 0;
    }
    impl_->run(*model_, nullptr, impl_->hidden.data() + done * n_embd);
    for (const auto& e : impl_->batch) impl_->history[e.seq].push_back(e.token);
    done += impl_->batch.size();
  }
  return impl_->hidden;
}

std::span<const float> Session::decode(std::span<const int32_t> toks, std::span<const int> seqs) {
  if (toks.size() != seqs.size() || toks.empty())
    throw Error("internal: decode needs one sequence per token");
  if (toks.size() > static_cast<size_t>(impl_->scratch.max_tokens()))
    throw Error("internal: more tokens in one decode step than the session's batch holds");
  impl_->batch.clear();
  for (size_t i = 0; i < toks.size(); ++i) {
    const auto& hist = tokens(seqs[i]);
    int32_t pos = static_cast<int32_t>(hist.size());  // after this sequence's earlier rows here
    for (size_t j = 0; j < i; ++j) pos += seqs[j] == seqs[i] ? 1 : 0;
    check_fit(pos, 1, opts_.n_ctx);
    impl_->batch.push_back({toks[i], pos, seqs[i], true});
  }
  const size_t n_vocab = model_->config().n_vocab;
  impl_->logits.resize(toks.size() * n_vocab);
  impl_->scratch.seam.one_token_order = true;
  struct Restore {
    ForwardSeam& seam;
    ~Restore() { seam.one_token_order = false; }
  } restore{impl_->scratch.seam};
  impl_->run(*model_, impl_->logits.data());
  for (size_t i = 0; i < toks.size(); ++i) impl_->history[seqs[i]].push_back(toks[i]);
  return impl_->logits;
}

void Session::truncate(int seq, int n_keep) {
  tokens(seq);  // validates seq
  auto& hist = impl_->history[seq];
  if (n_keep < 0) n_keep = 0;
  if (static_cast<size_t>(n_keep) < hist.size()) hist.resize(n_keep);
}

int Session::reuse_prefix(int seq, std::span<const int32_t> toks) {
  const auto& hist = tokens(seq);
  size_t n = 0;
  while (n < hist.size() && n < toks.size() && hist[n] == toks[n]) ++n;
  if (n == toks.size() && n > 0) --n;  // keep something to evaluate
  truncate(seq, static_cast<int>(n));
  return static_cast<int>(n);
}

std::optional<std::vector<int32_t>> shift_context(Session& s, int seq, const ContextShift* shift) {
  const int n_past = s.n_past(seq);
  const int n_keep = shift ? std::max(0, shift->n_keep) : n_past;
  if (n_keep >= n_past - 1) return std::nullopt;
  const int n_drop = std::max(1, (n_past - n_keep) / 2);
  const std::vector<int32_t>& cached = s.tokens(seq);
  std::vector<int32_t> feed(cached.begin() + n_keep + n_drop, cached.end());
  s.truncate(seq, n_keep);
  if (shift->on_shift) shift->on_shift(n_drop);
  return feed;
}

int generate(Session& s, Sampler& sampler, std::span<const int32_t> prompt, int max_tokens,
             const std::function<bool(int32_t)>& on_token, int seq, const ContextShift* shift) {
  const Tokenizer& tok = s.model().tokenizer();
  sampler.accept_prompt(prompt);
  std::span<const float> logits = s.eval(prompt, seq);
  int n = 0;
  while (n < max_tokens) {
    const int32_t next = sampler.sample(logits);
    if (tok.is_eog(next)) break;
    sampler.accept(next);
    ++n;
    if (!on_token(next)) break;
    const int32_t one[1] = {next};
    if (s.n_past(seq) < s.n_ctx()) {
      logits = s.eval(one, seq);
      continue;
    }
    std::optional<std::vector<int32_t>> feed = shift_context(s, seq, shift);
    if (!feed) break;  // no shift asked for, or nothing it may drop
    feed->push_back(next);
    logits = s.eval(*feed, seq);
  }
  return n;
}

}  // namespace edgelm
