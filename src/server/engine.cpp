#include "server/engine.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <optional>

#include "edgelm/error.hpp"
#include "server/stop_matcher.hpp"

namespace edgelm::server {

using Clock = std::chrono::steady_clock;

namespace {
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

// ---- Job -------------------------------------------------------------------------------------

Job::Update Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !pieces_.empty() || done_; });
  Update u;
  u.pieces.assign(std::make_move_iterator(pieces_.begin()), std::make_move_iterator(pieces_.end()));
  pieces_.clear();
  u.finished = done_;
  return u;
}

JobResult Job::result() const {
  std::lock_guard lk(mu_);
  return result_;
}

void Job::emit(std::string piece) {
  if (piece.empty()) return;
  {
    std::lock_guard lk(mu_);
    pieces_.push_back(std::move(piece));
  }
  cv_.notify_all();
}

void Job::finish(JobResult r) {
  {
    std::lock_guard lk(mu_);
    if (done_) return;
    result_ = std::move(r);
    done_ = true;
  }
  cv_.notify_all();
}

// ---- Engine ----------------------------------------------------------------------------------

struct Engine::Slot {
  enum class State { Free, Prefill, Generate };
  int seq = 0;
  State state = State::Free;
  std::shared_ptr<Job> job;
  std::optional<Sampler> sampler;
  std::optional<TokenStreamDecoder> decoder;
  StopMatcher stops;
  size_t n_prefilled = 0;   // prompt tokens in the KV cache
  int32_t pending = -1;     // sampled, not yet in the KV cache
  int n_generated = 0;
  uint64_t last_used = 0;
  uint64_t admitted = 0;    // admission order, for first-come prefill
  JobResult result;
  Clock::time_point t_start{}, t_first{};
  std::unique_ptr<Drafter> drafter;  // with speculative decoding
  std::optional<Speculator> spec;    // this job's drafting state
};

Engine::Engine(std::shared_ptr<const Model> model, EngineOptions opts)
    : model_(std::move(model)), opts_(opts) {
  if (opts_.n_slots < 1 || opts_.n_slots > 64)
    throw Error("--parallel " + std::to_string(opts_.n_slots) + " is out of range", "use 1 to 64 slots");
  if (opts_.queue_max < 0) throw Error("the queue size must not be negative");
  opts_.session.n_seq = opts_.n_slots;
  session_ = std::make_unique<Session>(model_, opts_.session);
  n_ctx_ = session_->n_ctx();
  n_batch_ = std::max(1, std::min(opts_.session.n_batch > 0 ? opts_.session.n_batch : 256, n_ctx_));
  for (int i = 0; i < opts_.n_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->seq = i;
    if (opts_.make_drafter) slots_.back()->drafter = opts_.make_drafter();
  }
  totals_.slots = opts_.n_slots;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lk(mu_);
    const int free_slots = static_cast<int>(slots_.size()) - busy_;
    if (stop_ || static_cast<int>(queue_.size()) >= std::max(0, free_slots) + opts_.queue_max) {
      ++totals_.rejected;
      return false;
    }
    job->submitted = Clock::now();
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

void Engine::wake() { cv_.notify_all(); }

EngineStats Engine::stats() const {
  std::lock_guard lk(mu_);
  EngineStats s = totals_;
  s.slots_busy = busy_;
  s.queue_depth = static_cast<int>(queue_.size());
  const auto now = Clock::now();
  int n = 0;
  for (const auto& [t, k] : recent_)
    if (now - t <= std::chrono::seconds(10)) n += k;
  s.recent_tokens_per_second = n / 10.0;
  return s;
}

int Engine::retry_after_seconds() const {
  std::lock_guard lk(mu_);
  // Jobs ahead of a new one, served n_slots at a time, each taking about the recent average.
  const double waves = std::ceil((queue_.size() + 1.0) / static_cast<double>(slots_.size()));
  const double est = waves * (avg_job_seconds_ > 0 ? avg_job_seconds_ : 1.0);
  return static_cast<int>(std::clamp(std::ceil(est), 1.0, 60.0));
}

void Engine::count_generated(int n) {
  std::lock_guard lk(mu_);
  totals_.generated_tokens += n;
  const auto now = Clock::now();
  if (!recent_.empty() && now - recent_.back().first < std::chrono::milliseconds(100)) {
    recent_.back().second += n;  // one bucket per 100 ms keeps the window small
  } else {
    recent_.emplace_back(now, n);
  }
  while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(10)) recent_.pop_front();
}

Engine::Slot* Engine::pick_slot(const GenerationParams& p) {
  const std::vector<int32_t>& prompt = p.prompt;
  Slot* best = nullptr;
  size_t best_len = 0;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (s.state != Slot::State::Free) continue;
    const auto& cached = session_->tokens(s.seq);
    size_t n = 0;
    const auto scales = session_->lora_scales(s.seq);  // a cache made with other adapter scales is no prefix
    if (p.lora_scales.empty() || std::equal(scales.begin(), scales.end(), p.lora_scales.begin(), p.lora_scales.end()))
      while (n < cached.size() && n < prompt.size() && cached[n] == prompt[n]) ++n;
    if (!best || n > best_len || (n == best_len && s.last_used < best->last_used)) {
      best = &s;
      best_len = n;
    }
  }
  return best;
}

void Engine::loop() {
  uint64_t admitted = 0;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled()) {
          JobResult r;
          r.finish_reason = "cancelled";
          r.prompt_tokens = static_cast<int>((*it)->params().prompt.size());
          (*it)->finish(r);
          ++totals_.cancelled;
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      if (stop_) break;
      while (!queue_.empty()) {
        Slot* s = pick_slot(queue_.front()->params());
        if (!s) break;
        s->job = std::move(queue_.front());
        queue_.pop_front();
        s->state = Slot::State::Prefill;
        s->admitted = ++admitted;
        ++busy_;
      }
      if (busy_ == 0) {
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        continue;
      }
    }
    step();
  }
  // Shutting down: nothing waits forever on a job.
  std::lock_guard lk(mu_);
  JobResult r;
  r.finish_reason = "error";
  r.error = "the server is shutting down";
  for (auto& j : queue_) j->finish(r);
  queue_.clear();
  for (auto& s : slots_)
    if (s->job) s->job->finish(r);
}

void Engine::start_slot(Slot& s) {
  const GenerationParams& p = s.job->params();
  s.result = {};
  s.result.prompt_tokens = static_cast<int>(p.prompt.size());
  s.t_start = Clock::now();
  s.result.queue_seconds = seconds(s.t_start - s.job->submitted);
  if (!p.lora_scales.empty()) session_->set_lora_scales(s.seq, p.lora_scales);
  const int reused = session_->reuse_prefix(s.seq, p.prompt);
  s.result.cached_tokens = reused;
  s.n_prefilled = static_cast<size_t>(reused);
  s.sampler.emplace(p.sampling);
  s.sampler->accept_prompt(p.prompt);  // as edgelm::generate does, for penalties
  if (p.grammar) {
    if (!trie_) trie_ = TokenTrie::build(model_->tokenizer());
    s.sampler->set_grammar(GrammarConstraint(p.grammar, trie_));
  }
  s.decoder.emplace(model_->tokenizer());
  s.stops = StopMatcher(p.stop);
  s.n_generated = 0;
  s.pending = -1;
  s.last_used = ++use_clock_;
  s.spec.reset();
  if (s.drafter) s.spec.emplace(*s.drafter, opts_.speculative);
  std::lock_guard lk(mu_);
  totals_.prompt_tokens += p.prompt.size();
  totals_.cached_prompt_tokens += reused;
}

void Engine::step() {
  // New jobs set up, cancelled ones released.
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (s.state == Slot::State::Free) continue;
    if (s.job->cancelled()) {
      finish_slot(s, "cancelled");
      continue;
    }
    if (s.state == Slot::State::Prefill && !s.sampler) {
      try {
        start_slot(s);
      } catch (const std::exception& e) {
        finish_slot(s, "error", e.what());
      }
    }
  }

  // One prompt chunk, for the slot admitted first (its later chunks come in later steps, so
  // a long prompt does not stall the replies already streaming).
  Slot* pre = nullptr;
  for (auto& sp : slots_)
    if (sp->state == Slot::State::Prefill && (!pre || sp->admitted < pre->admitted)) pre = sp.get();
  if (pre) {
    Slot& s = *pre;
    const auto& prompt = s.job->params().prompt;
    const size_t n = std::min(static_cast<size_t>(n_batch_), prompt.size() - s.n_prefilled);
    const auto t0 = Clock::now();
    try {
      auto logits = session_->eval(std::span<const int32_t>(prompt.data() + s.n_prefilled, n), s.seq);
      s.n_prefilled += n;
      {
        std::lock_guard lk(mu_);
        totals_.prefill_seconds += seconds(Clock::now() - t0);
      }
      if (s.n_prefilled == prompt.size()) on_logits(s, logits);
    } catch (const std::bad_alloc&) {
      session_->truncate(s.seq, 0);
      finish_slot(s, "error", "out of memory while reading the prompt");
    } catch (const std::exception& e) {
      session_->truncate(s.seq, 0);
      finish_slot(s, "error", e.what());
    }
  }

  // One token for every generating slot, in one forward pass, and with speculative decoding
  // each slot's draft beside it (drafts share what the pass has room for).
  std::vector<int32_t> toks;
  std::vector<int> seqs;
  std::vector<Slot*> rows;
  std::vector<size_t> first_row;
  std::vector<int> cached_before;
  int generating = 0;
  for (auto& sp : slots_) generating += sp->state == Slot::State::Generate ? 1 : 0;
  if (generating == 0) return;
  const int draft_room = std::max(0, (n_batch_ - generating) / generating);
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (s.state != Slot::State::Generate) continue;
    rows.push_back(&s);
    first_row.push_back(toks.size());
    cached_before.push_back(session_->n_past(s.seq));
    if (s.spec) {
      const int max_tokens = s.job->params().max_tokens;
      int room = std::min(draft_room, n_ctx_ - session_->n_past(s.seq) - 1);
      if (max_tokens >= 0) room = std::min(room, max_tokens - s.n_generated);
      std::span<const int32_t> plan;
      try {
        plan = s.spec->plan(session_->tokens(s.seq), s.pending, room, s.job->params().sampling);
      } catch (const std::exception& e) {  // the drafter failed: this slot goes on without a draft
        plan = std::span<const int32_t>(&s.pending, 1);
        s.spec.reset();
      }
      for (int32_t t : plan) toks.push_back(t), seqs.push_back(s.seq);
    } else {
      toks.push_back(s.pending);
      seqs.push_back(s.seq);
    }
  }
  const auto t0 = Clock::now();
  std::span<const float> logits;
  try {
    logits = session_->decode(toks, seqs);
  } catch (const std::exception& e) {
    for (size_t i = 0; i < rows.size(); ++i) session_->truncate(rows[i]->seq, cached_before[i]);
    for (Slot* s : rows) finish_slot(*s, "error", e.what());
    return;
  }
  const double pass_seconds = seconds(Clock::now() - t0);
  {
    std::lock_guard lk(mu_);
    totals_.decode_seconds += pass_seconds;
    ++totals_.decode_steps;
    totals_.decode_rows += toks.size();
  }
  const size_t n_vocab = static_cast<size_t>(model_->config().n_vocab);
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t end = i + 1 < rows.size() ? first_row[i + 1] : toks.size();
    const std::span<const float> slot_rows = logits.subspan(first_row[i] * n_vocab, (end - first_row[i]) * n_vocab);
    if (rows[i]->spec)
      verify_draft(*rows[i], slot_rows, cached_before[i], pass_seconds);
    else
      on_logits(*rows[i], slot_rows);
  }
}

void Engine::verify_draft(Slot& s, std::span<const float> rows, int cached_before, double pass_seconds) {
  const Tokenizer& tok = model_->tokenizer();
  const int64_t drafted = s.spec->stats().drafted, accepted = s.spec->stats().accepted;
  Speculator::Outcome o;
  try {
    o = s.spec->verify(*s.sampler, rows, tok, [&](int32_t t) { return on_token(s, t, false); }, pass_seconds);
  } catch (const std::exception& e) {
    session_->truncate(s.seq, cached_before);
    finish_slot(s, "error", e.what());
    return;
  }
  session_->truncate(s.seq, cached_before + o.keep);  // drops the rejected drafts
  {
    std::lock_guard lk(mu_);
    totals_.drafted_tokens += static_cast<uint64_t>(s.spec->stats().drafted - drafted);
    totals_.accepted_draft_tokens += static_cast<uint64_t>(s.spec->stats().accepted - accepted);
  }
  if (o.stopped) return;  // on_token finished the slot
  if (tok.is_eog(o.next)) {
    finish_slot(s, "stop");
    return;
  }
  try {
    s.sampler->accept(o.next);
  } catch (const std::exception& e) {
    finish_slot(s, "error", e.what());
    return;
  }
  if (on_token(s, o.next, true)) s.pending = o.next;
}

void Engine::on_logits(Slot& s, std::span<const float> logits) {
  int32_t t;
  try {
    t = s.sampler->sample(logits);
  } catch (const std::exception& e) {
    finish_slot(s, "error", e.what());
    return;
  }
  if (s.n_generated == 0) s.t_first = Clock::now();
  if (model_->tokenizer().is_eog(t)) {
    finish_slot(s, "stop");
    return;
  }
  s.sampler->accept(t);
  if (!on_token(s, t, true)) return;
  s.pending = t;
  s.state = Slot::State::Generate;
}

bool Engine::on_token(Slot& s, int32_t t, bool needs_room) {
  if (s.n_generated == 0) s.t_first = Clock::now();
  ++s.n_generated;
  count_generated(1);
  s.job->emit(s.stops.push(s.decoder->push(t)));
  const int max_tokens = s.job->params().max_tokens;
  if (s.stops.matched()) {
    finish_slot(s, "stop");
  } else if (max_tokens >= 0 && s.n_generated >= max_tokens) {
    finish_slot(s, "length");
  } else if (needs_room && session_->n_past(s.seq) >= n_ctx_) {
    finish_slot(s, "length");  // the token has no position left
  } else {
    return true;
  }
  return false;
}

void Engine::finish_slot(Slot& s, const std::string& reason, const std::string& error) {
  std::string reason_out = reason;
  if (reason != "error" && reason != "cancelled" && s.decoder) {
    std::string tail = s.stops.push(s.decoder->flush());
    if (s.stops.matched()) reason_out = "stop";
    tail += s.stops.flush();
    s.job->emit(std::move(tail));
  }
  const auto now = Clock::now();
  JobResult r = s.sampler ? s.result : JobResult{};  // a job cancelled before it started has none
  r.finish_reason = reason_out;
  r.error = error;
  r.prompt_tokens = static_cast<int>(s.job->params().prompt.size());
  r.completion_tokens = s.n_generated;
  if (s.t_start != Clock::time_point{}) {
    const auto first = s.t_first != Clock::time_point{} ? s.t_first : now;
    r.first_token_seconds = seconds(first - s.t_start);
    r.generation_seconds = seconds(now - first);
  }
  std::shared_ptr<Job> job = std::move(s.job);
  s.sampler.reset();  // (s.spec stays: a slot may finish inside its verification)
  s.decoder.reset();
  s.stops = StopMatcher();
  s.state = Slot::State::Free;
  s.n_generated = 0;
  s.result = {};
  s.t_start = s.t_first = Clock::time_point{};
  {
    // The slot is counted free before the client hears the job is done, so a client that sends
    // its next request at once finds room.
    std::lock_guard lk(mu_);
    --busy_;
    if (reason_out == "cancelled") {
      ++totals_.cancelled;
    } else if (reason_out == "error") {
      ++totals_.failed;
    } else {
      ++totals_.completed;
      const double d = r.first_token_seconds + r.generation_seconds;
      avg_job_seconds_ = avg_job_seconds_ == 0 ? d : 0.8 * avg_job_seconds_ + 0.2 * d;
    }
  }
  job->finish(r);
}

}  // namespace edgelm::server
