// The engine on the real model: continuous batching gives each request what it would get alone,
// the prompt cache is used, cancellation and a full queue release everything.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"
#include "server/engine.hpp"
#include "support/test_models.hpp"

namespace edgelm::server {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const Model> smollm2() {
  static std::shared_ptr<const Model> m = [] {
    const std::string p = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
    return p.empty() ? nullptr : Model::load(p);
  }();
  return m;
}

std::vector<int32_t> encode(const Model& m, const std::string& s) {
  return m.tokenizer().encode(s, m.tokenizer().add_bos(), true);
}

// What edgelm::generate produces alone, greedy.
std::string greedy_alone(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& prompt, int n) {
  Session s(m, {.n_ctx = 256, .n_threads = 2});
  Sampler sampler({.temp = 0});
  TokenStreamDecoder dec(m->tokenizer());
  std::string out;
  generate(s, sampler, prompt, n, [&](int32_t t) { out += dec.push(t); return true; });
  return out + dec.flush();
}

struct Collected {
  std::string text;
  JobResult result;
  int pieces = 0;
};

Collected collect(Job& j) {
  Collected c;
  for (int i = 0; i < 100000; ++i) {  // bounded: hang protection only
    auto u = j.wait(100ms);
    for (auto& p : u.pieces) {
      c.text += p;
      ++c.pieces;
    }
    if (u.finished) break;
  }
  c.result = j.result();
  return c;
}

std::shared_ptr<Job> greedy_job(const Model& m, const std::string& prompt, int n) {
  GenerationParams p;
  p.prompt = encode(m, prompt);
  p.sampling.temp = 0;
  p.max_tokens = n;
  return std::make_shared<Job>(std::move(p));
}

TEST(Engine, BatchedRequestsMatchTheirSingleRuns) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<std::string> prompts = {"The capital of France is", "Once upon a time,", "def add(a, b):"};
  const int n = 8;
  Engine e(m, {.n_slots = 3, .queue_max = 0, .session = {.n_ctx = 256, .n_threads = 2}});
  std::vector<std::shared_ptr<Job>> jobs;
  for (const auto& p : prompts) {
    jobs.push_back(greedy_job(*m, p, n));
    ASSERT_TRUE(e.submit(jobs.back()));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected c = collect(*jobs[i]);
    EXPECT_EQ(c.text, greedy_alone(m, encode(*m, prompts[i]), n)) << prompts[i];
    EXPECT_TRUE(c.result.finish_reason == "length" || c.result.finish_reason == "stop");
    EXPECT_EQ(c.result.prompt_tokens, static_cast<int>(encode(*m, prompts[i]).size()));
    EXPECT_GE(c.pieces, 2) << "not streamed piece by piece";
  }
  const EngineStats s = e.stats();
  EXPECT_EQ(s.completed, 3u);
  EXPECT_GT(s.decode_rows, s.decode_steps) << "requests were never decoded together";
  EXPECT_EQ(s.slots_busy, 0);
}

// Speculative decoding in the slots: each request still gets what it would get alone (greedy),
// drafts are verified beside the other slots' rows, stop strings and max_tokens still end a
// reply in the middle of a kept draft.
TEST(Engine, SpeculativeSlotsGiveWhatEachRequestGetsAlone) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<std::string> prompts = {
      "Repeat: red, green, blue, red, green, blue, red, green, blue, red,", "The capital of France is",
      "1, 2, 3, 4, 5, 6, 7, 8, 9,"};
  const int n = 20;
  for (const bool self : {false, true}) {
    EngineOptions o{.n_slots = 3, .queue_max = 2, .session = {.n_ctx = 256, .n_threads = 2}};
    o.make_drafter = self ? std::function<std::unique_ptr<Drafter>()>([&] {
      return make_model_drafter(m, *m, {.n_ctx = 256, .n_threads = 2, .n_layers = 12});
    })
                          : std::function<std::unique_ptr<Drafter>()>([] { return make_lookup_drafter(); });
    o.speculative = {.draft_max = 4, .adaptive = false};
    Engine e(m, o);
    std::vector<std::shared_ptr<Job>> jobs;
    for (const auto& p : prompts) {
      jobs.push_back(greedy_job(*m, p, n));
      ASSERT_TRUE(e.submit(jobs.back()));
    }
    GenerationParams stopped;  // a stop string inside the repeated text
    stopped.prompt = encode(*m, prompts[0]);
    stopped.sampling.temp = 0;
    stopped.max_tokens = n;
    stopped.stop = {"blue"};
    jobs.push_back(std::make_shared<Job>(stopped));
    ASSERT_TRUE(e.submit(jobs.back()));
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Collected c = collect(*jobs[i]);
      EXPECT_EQ(c.text, greedy_alone(m, encode(*m, prompts[i]), n)) << prompts[i] << (self ? " (early exit)" : " (lookup)");
      EXPECT_EQ(c.result.completion_tokens, n);
      EXPECT_EQ(c.result.finish_reason, "length");
    }
    const Collected c = collect(*jobs.back());
    const std::string alone = greedy_alone(m, encode(*m, prompts[0]), n);
    EXPECT_EQ(c.text, alone.substr(0, alone.find("blue")));
    EXPECT_EQ(c.result.finish_reason, "stop");
    const EngineStats st = e.stats();
    EXPECT_GT(st.drafted_tokens, 0u);
    EXPECT_GT(st.accepted_draft_tokens, 0u);
    EXPECT_LE(st.accepted_draft_tokens, st.drafted_tokens);
    EXPECT_LT(st.decode_steps, st.generated_tokens) << "kept drafts should save passes";
    EXPECT_EQ(st.slots_busy, 0);
  }
}

TEST(Engine, PromptCacheReusesAFinishedSlotsPrefix) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  Engine e(m, {.n_slots = 2, .queue_max = 2, .session = {.n_ctx = 256, .n_threads = 2}});
  const std::string shared = "A long shared preamble that both requests start with, word for word. ";
  auto a = greedy_job(*m, shared + "First question?", 2);
  ASSERT_TRUE(e.submit(a));
  collect(*a);
  auto b = greedy_job(*m, shared + "Second question?", 2);
  ASSERT_TRUE(e.submit(b));
  Collected cb = collect(*b);
  EXPECT_GE(cb.result.cached_tokens, static_cast<int>(encode(*m, shared).size()) - 2);
  EXPECT_EQ(cb.text, greedy_alone(m, encode(*m, shared + "Second question?"), 2));
}

TEST(Engine, StopStringEndsTheReply) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  Engine e(m, {.n_slots = 1, .queue_max = 1, .session = {.n_ctx = 256, .n_threads = 2}});
  const std::string prompt = "1, 2, 3, 4,";
  const std::string full = greedy_alone(m, encode(*m, prompt), 8);
  ASSERT_NE(full.find(" 7"), std::string::npos) << full;
  GenerationParams p;
  p.prompt = encode(*m, prompt);
  p.sampling.temp = 0;
  p.max_tokens = 8;
  p.stop = {" 7"};
  auto j = std::make_shared<Job>(p);
  ASSERT_TRUE(e.submit(j));
  Collected c = collect(*j);
  EXPECT_EQ(c.text, full.substr(0, full.find(" 7")));
  EXPECT_EQ(c.result.finish_reason, "stop");
}

TEST(Engine, FullQueueRejectsAndCancelFreesTheSlot) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  Engine e(m, {.n_slots = 1, .queue_max = 1, .session = {.n_ctx = 256, .n_threads = 2}});
  auto running = greedy_job(*m, "1, 2, 3, 4,", 200);
  auto waiting = greedy_job(*m, "Hello", 2);
  auto rejected = greedy_job(*m, "Hi", 2);
  ASSERT_TRUE(e.submit(running));
  // Wait until the first job holds the slot (its first piece arrived).
  std::string first;
  for (int i = 0; i < 10000 && first.empty(); ++i) {
    auto u = running->wait(100ms);
    for (auto& p : u.pieces) first += p;
    ASSERT_FALSE(u.finished);
  }
  ASSERT_TRUE(e.submit(waiting));
  EXPECT_FALSE(e.submit(rejected));
  EXPECT_GE(e.retry_after_seconds(), 1);
  EXPECT_EQ(e.stats().rejected, 1u);
  running->cancel();
  e.wake();
  Collected c = collect(*running);
  EXPECT_EQ(c.result.finish_reason, "cancelled");
  EXPECT_LT(c.result.completion_tokens, 200);
  Collected w = collect(*waiting);
  EXPECT_TRUE(w.result.finish_reason == "length" || w.result.finish_reason == "stop");
  // A job cancelled while it waits never takes a slot.
  auto blocker = greedy_job(*m, "1, 2, 3, 4,", 200);
  auto queued = greedy_job(*m, "Hey", 2);
  ASSERT_TRUE(e.submit(blocker));
  ASSERT_TRUE(e.submit(queued));
  queued->cancel();
  blocker->cancel();
  e.wake();
  EXPECT_EQ(collect(*queued).result.finish_reason, "cancelled");
  EXPECT_EQ(collect(*blocker).result.finish_reason, "cancelled");
  const EngineStats s = e.stats();
  EXPECT_EQ(s.slots_busy, 0);
  EXPECT_EQ(s.queue_depth, 0);
  EXPECT_EQ(s.cancelled, 3u);
}

TEST(Engine, ShutdownFinishesEveryJob) {
  auto m = smollm2();
  ASSERT_TRUE(m);
  auto a = greedy_job(*m, "1, 2, 3, 4,", 200);
  auto b = greedy_job(*m, "Hello", 200);
  {
    Engine e(m, {.n_slots = 1, .queue_max = 1, .session = {.n_ctx = 256, .n_threads = 2}});
    ASSERT_TRUE(e.submit(a));
    ASSERT_TRUE(e.submit(b));
  }
  EXPECT_FALSE(a->result().finish_reason.empty());
  EXPECT_EQ(b->result().finish_reason, "error");
}

}  // namespace
}  // namespace edgelm::server
