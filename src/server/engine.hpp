// The generation engine behind `edgelm serve`: one thread owns a multi-sequence Session and runs
// continuous batching over its slots. Each step it prefills one prompt chunk and then decodes
// one token for every generating slot in a single forward pass; a finished request frees its
// slot for the next job in the bounded queue. A freed slot keeps its KV cache, and a new job
// goes to the free slot whose cached tokens share the longest prefix with its prompt.
//
//   Engine engine(model, {.n_slots = 4, .queue_max = 16, .session = {.n_ctx = 2048}});
//   auto job = std::make_shared<Job>(GenerationParams{prompt_ids, sampling, 64, {"\n\n"}});
//   if (!engine.submit(job)) { /* queue full: 503 */ }
//   for (;;) { auto u = job->wait(std::chrono::milliseconds(100)); ...; if (u.finished) break; }
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"

namespace edgelm::server {

struct GenerationParams {
  std::vector<int32_t> prompt;    // non-empty, shorter than the slot context
  SamplerParams sampling{};
  int max_tokens = -1;            // < 0: until the context is full
  std::vector<std::string> stop;  // the output ends before the first of these
  // One scale per adapter of the session's SessionOptions::lora; empty: the slot's current ones.
  std::vector<float> lora_scales;
  // What the reply must follow (response_format, tool calls); null: free text.
  std::shared_ptr<const Grammar> grammar;
};

struct JobResult {
  std::string finish_reason;  // "stop", "length", "cancelled" or "error"
  std::string error;          // set when finish_reason is "error"
  int prompt_tokens = 0;
  int cached_tokens = 0;      // prompt tokens found in the slot's KV cache
  int completion_tokens = 0;
  double queue_seconds = 0;   // submit to slot
  double first_token_seconds = 0;  // slot to first generated token (prefill)
  double generation_seconds = 0;   // first generated token to the end
};

// One request. The HTTP thread waits on it and reads text pieces; the engine thread writes them.
class Job {
 public:
  explicit Job(GenerationParams p) : params_(std::move(p)) {}
  const GenerationParams& params() const { return params_; }

  struct Update {
    std::vector<std::string> pieces;  // text produced since the last wait, in order
    bool finished = false;            // no more pieces will come; result() is final
  };
  // Waits up to `timeout` for text or the end, and takes what is there.
  Update wait(std::chrono::milliseconds timeout);
  // Asks the engine to stop this job (it finishes with "cancelled" unless already done).
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  JobResult result() const;

  // Engine side.
  void emit(std::string piece);
  void finish(JobResult r);
  std::chrono::steady_clock::time_point submitted{};  // set by Engine::submit

 private:
  GenerationParams params_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> pieces_;
  bool done_ = false;
  JobResult result_;
};

struct EngineOptions {
  int n_slots = 1;        // concurrent sequences (Session::n_seq)
  int queue_max = 16;     // jobs that may wait for a slot
  SessionOptions session{};  // n_ctx is per slot; n_seq is set from n_slots
  // Speculative decoding: each slot gets a drafter from this factory; every decode pass then
  // verifies each generating slot's draft beside the others' (empty: plain decoding).
  std::function<std::unique_ptr<Drafter>()> make_drafter{};
  SpeculativeOptions speculative{};
};

struct EngineStats {
  int slots = 0, slots_busy = 0, queue_depth = 0;
  uint64_t completed = 0, cancelled = 0, failed = 0, rejected = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  uint64_t decode_steps = 0, decode_rows = 0;  // rows / steps = average batch size
  uint64_t drafted_tokens = 0, accepted_draft_tokens = 0;  // speculative decoding
  double prefill_seconds = 0, decode_seconds = 0;
  double recent_tokens_per_second = 0;  // generated tokens over the last 10 s
};

class Engine {
 public:
  Engine(std::shared_ptr<const Model> model, EngineOptions opts);
  ~Engine();  // finishes waiting and running jobs with an error, joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues the job; false (and the job untouched) when the queue is full.
  bool submit(std::shared_ptr<Job> job);
  // Call after Job::cancel so that a waiting engine notices at once.
  void wake();
  void stop();
  EngineStats stats() const;
  // Seconds a client turned away now might wait before a slot frees (at least 1).
  int retry_after_seconds() const;
  int n_ctx() const { return n_ctx_; }
  int n_slots() const { return static_cast<int>(slots_.size()); }
  const Model& model() const { return *model_; }

 private:
  struct Slot;
  void loop();
  void step();
  void start_slot(Slot& s);
  void on_logits(Slot& s, std::span<const float> logits);
  // A generated token the sampler has accepted: streams it and finishes the slot at a stop
  // string, max_tokens or (with needs_room) a full context. False when the slot finished.
  bool on_token(Slot& s, int32_t t, bool needs_room);
  void verify_draft(Slot& s, std::span<const float> rows, int cached_before, double pass_seconds);
  void finish_slot(Slot& s, const std::string& reason, const std::string& error = {});
  Slot* pick_slot(const GenerationParams& p);
  void count_generated(int n);

  std::shared_ptr<const Model> model_;
  EngineOptions opts_;
  std::unique_ptr<Session> session_;
  int n_ctx_ = 0;
  int n_batch_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t use_clock_ = 0;
  std::shared_ptr<const TokenTrie> trie_;  // the vocabulary's, built for the first grammar

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  int busy_ = 0;
  EngineStats totals_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int>> recent_;  // generated tokens
  double avg_job_seconds_ = 0;
  std::thread thread_;
};

}  // namespace edgelm::server
