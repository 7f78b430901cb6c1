// Speculative decoding: greedy output equal to plain decoding, the rejection rule's output
// distribution equal to the target's, the KV cache after rejections equal to a plain one, the
// drafters and their errors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/distill.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"
#include "support/family_models.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

constexpr const char* kSmol = "SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr float kDraftNoise = 0.5f, kPeak = 5.0f;

std::shared_ptr<const Model> smollm2() {
  static std::shared_ptr<const Model> m = [] {
    const std::string path = test::require_model(kSmol);
    return path.empty() ? nullptr : Model::load(path);
  }();
  return m;
}

// A draft made from the target: its 18 most important blocks of 30 (edgelm distill's pruning,
// untrained), written once per test process.
std::shared_ptr<const Model> pruned_smollm2() {
  static std::shared_ptr<const Model> m = [] () -> std::shared_ptr<const Model> {
    const auto target = smollm2();
    if (!target) return nullptr;
    const std::string path = test::scratch_path("smollm2-pruned.gguf");
    std::vector<int> drop;
    for (int b = 18; b < 30; ++b) drop.push_back(b);
    write_pruned(*target, drop, "unhashed", path);
    return Model::load(path);
  }();
  return m;
}

std::vector<int32_t> speculative(Session& s, Drafter& d, SamplerParams sp, std::span<const int32_t> prompt, int n,
                                 SpeculativeOptions o = {}, SpeculativeStats* stats = nullptr) {
  Sampler sampler(sp);
  std::vector<int32_t> out;
  generate_speculative(s, sampler, d, prompt, n, [&](int32_t t) { out.push_back(t); return true; }, o, stats);
  return out;
}

struct Prompt {
  std::string text;
  std::vector<int32_t> tokens;
};

// The prompts of the SmolLM2 oracle fixture.
std::vector<Prompt> oracle_prompts() {
  const auto j = nlohmann::json::parse(test::read_file(test::fixture_path("model/smollm2.json")));
  std::vector<Prompt> v;
  for (const auto& c : j.at("cases")) v.push_back({c.at("prompt"), c.at("tokens").get<std::vector<int32_t>>()});
  return v;
}

// Plain greedy decoding, one token per forward pass, with each step's gap between the two best
// logits.
std::vector<int32_t> plain_greedy(const std::shared_ptr<const Model>& m, std::span<const int32_t> prompt, int n,
                                  std::vector<float>& margins) {
  Session s(m, {.n_ctx = 512, .n_threads = 2});
  std::vector<int32_t> out;
  std::span<const float> logits = s.eval(prompt);
  for (int i = 0; i < n; ++i) {
    std::vector<float> top(2);
    std::partial_sort_copy(logits.begin(), logits.end(), top.begin(), top.end(), std::greater<>());
    const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (m->tokenizer().is_eog(t)) break;
    out.push_back(t);
    margins.push_back(top[0] - top[1]);
    const int32_t one[1] = {t};
    logits = s.eval(one);
  }
  return out;
}

// Each drafter gives plain greedy decoding's text up to a step where the target's two best
// logits are within 1e-3 (a forward pass over several tokens sums attention in another order
// than one over a single token, as llama.cpp's does; such near ties are reported).
TEST(Speculative, GreedyOutputIsPlainDecodingsOnTheOraclePrompts) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  std::vector<std::pair<std::string, std::unique_ptr<Drafter>>> drafters;
  drafters.emplace_back("pruned", make_model_drafter(pruned_smollm2(), *m, {.n_ctx = 512, .n_threads = 2}));
  drafters.emplace_back("exit", make_model_drafter(m, *m, {.n_ctx = 512, .n_threads = 2, .n_layers = 10}));
  drafters.emplace_back("lookup", make_lookup_drafter());
  constexpr int kTokens = 16;
  int near_ties = 0;
  for (const Prompt& p : oracle_prompts()) {
    std::vector<float> margins;
    const std::vector<int32_t> want = plain_greedy(m, p.tokens, kTokens, margins);
    for (auto& [name, d] : drafters) {
      {
        const bool adaptive = name != "pruned";
        Session s(m, {.n_ctx = 512, .n_threads = 2});
        SpeculativeStats st;
        const std::vector<int32_t> got =
            speculative(s, *d, {.temp = 0}, p.tokens, kTokens, {.draft_max = 5, .adaptive = adaptive}, &st);
        size_t same = 0;
        while (same < got.size() && same < want.size() && got[same] == want[same]) ++same;
        if (same == want.size()) {
          EXPECT_EQ(got.size(), want.size()) << name << " on '" << p.text << "'";
        } else {  // plain decoding and verification round alike, so only a tie could do this
          ++near_ties;

          EXPECT_LT(margins[same], 1e-3f) << name << " differs from plain decoding at token " << same << " of '"
                                          << p.text << "' where the margin is " << margins[same];
          std::printf("[ near tie ] %s on '%s': token %zu, margin %.2g\n", name.c_str(), p.text.c_str(), same,
                      margins[same]);
        }
        EXPECT_EQ(st.generated, static_cast<int64_t>(got.size()));
        EXPECT_LE(st.accepted, st.drafted);
        if (!adaptive && name != "lookup") {
          EXPECT_GT(st.drafted, 0) << name;
        }
      }
    }
  }
  EXPECT_LE(near_ties, 2) << "more near ties than rounding explains";
}

TEST(Speculative, LookupDraftsAreKeptWhereTheTextRepeatsThePrompt) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<int32_t> copy = m->tokenizer().encode(
      "Repeat the list exactly.\nList: apples, pears, plums, cherries, grapes, figs, dates, limes.\n"
      "Repeated: apples, pears,", false, false);
  Session s(m, {.n_ctx = 512, .n_threads = 2});
  auto lookup = make_lookup_drafter();
  SpeculativeStats st;
  const std::vector<int32_t> got =
      speculative(s, *lookup, {.temp = 0}, copy, 16, {.draft_max = 4, .adaptive = false}, &st);
  std::printf("[ accept   ] %s: %.2f of %lld drafted, %.2f kept per step, %d steps for %zu tokens\n",
              lookup->describe().c_str(), st.acceptance_rate(), static_cast<long long>(st.drafted), st.mean_accepted(),
              st.steps, got.size());
  EXPECT_GT(st.acceptance_rate(), 0.6);
  EXPECT_LT(st.steps, static_cast<int>(got.size()) / 2) << "most tokens should come two or more per pass";
}

TEST(Speculative, VerificationRowsAreOneTokenPassesBitForBit) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<int32_t> toks =
      m->tokenizer().encode("The quick brown fox jumps over the lazy dog while the cat sleeps", false, false);
  ASSERT_GT(toks.size(), 12u);
  const size_t V = static_cast<size_t>(m->config().n_vocab), head = 3;
  const std::span<const int32_t> all(toks);
  Session a(m, {.n_ctx = 64, .n_threads = 2}), b(m, {.n_ctx = 64, .n_threads = 2});
  a.eval(all.first(head));
  b.eval(all.first(head));
  const std::span<const float> batched = a.eval_as_decoded(all.subspan(head));
  for (size_t i = head; i < toks.size(); ++i) {
    const std::span<const float> r = b.eval(all.subspan(i, 1));
    EXPECT_EQ(std::memcmp(r.data(), batched.data() + (i - head) * V, V * sizeof(float)), 0) << "token " << i;
  }
}

// A tiny target and a draft that disagrees with it, over a vocabulary cut to 8 words by top-k.
// The first token comes from the prompt's pass; the second is the first that speculation
// draws, so the test counts pairs: the first token's distribution and, for each first token,
// the second's.
TEST(Speculative, SampledTokensFollowTheTargetsDistribution) {
  test::FamilySpec spec = test::family_spec("llama");
  const std::string vocab = test::require_model(spec.vocab_file);
  ASSERT_FALSE(vocab.empty());
  const std::string target_path = test::scratch_path("spec-target.gguf"), draft_path = test::scratch_path("spec-draft.gguf");
  std::mt19937 noise(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  test::write_family_model(spec, vocab, target_path, [](const std::string& name, std::vector<float>& w) {
    if (name == "output.weight")
      for (float& x : w) x *= kPeak;  // a few words matter
  });
  test::write_family_model(spec, vocab, draft_path, [&](const std::string& name, std::vector<float>& w) {
    if (name == "output.weight")
      for (float& x : w) x = kPeak * x * (1.0f + kDraftNoise * gauss(noise));
  });
  const std::shared_ptr<const Model> target = Model::load(target_path), draft = Model::load(draft_path);
  const std::vector<int32_t> prompt = target->tokenizer().encode("The weather today is", false, false);
  const SamplerParams sp{.temp = 1.0f, .top_k = 8, .top_p = 1.0f, .min_p = 0.0f};

  // The distribution after `text` under a model, by token id.
  auto dist = [&](const std::shared_ptr<const Model>& mm, std::vector<int32_t> text) {
    Session s(mm, {.n_ctx = 64, .n_threads = 2});
    Sampler sampler(sp);
    std::map<int32_t, double> d;
    for (const TokenProb& t : sampler.distribution(s.eval(text))) d[t.id] = t.p;
    return d;
  };
  auto with = [&](int32_t t) {
    std::vector<int32_t> v = prompt;
    v.push_back(t);
    return v;
  };
  const std::map<int32_t, double> p1 = dist(target, prompt);
  ASSERT_EQ(p1.size(), 8u);
  std::map<int32_t, std::map<int32_t, double>> p2, q2;  // by first token
  double overlap = 0;
  for (const auto& [t1, pt1] : p1) {
    p2[t1] = dist(target, with(t1));
    q2[t1] = dist(draft, with(t1));
    for (const auto& [t2, pp] : p2[t1]) overlap += pt1 * (q2[t1].contains(t2) ? std::min(pp, q2[t1].at(t2)) : 0.0);
  }
  ASSERT_GT(overlap, 0.15) << "the draft should be accepted sometimes";
  ASSERT_LT(overlap, 0.85) << "the draft should be rejected sometimes";

  // Pairs expected fewer than 5 times share one bin (the chi-square approximation needs it).
  constexpr int kDraws = 2000;
  std::map<std::pair<int32_t, int32_t>, int> bin_of;
  std::vector<double> want_p(1, 0.0), draft_p(1, 0.0);  // bin 0: the rare pairs
  for (const auto& [t1, pt1] : p1)
    for (const auto& [t2, pp] : p2[t1]) {
      const double qq = pt1 * (q2[t1].contains(t2) ? q2[t1].at(t2) : 0.0);
      const int b = kDraws * pt1 * pp >= 5 ? static_cast<int>(want_p.size()) : 0;
      if (b) want_p.push_back(0.0), draft_p.push_back(0.0);
      want_p[b] += pt1 * pp;
      draft_p[b] += qq;  // what keeping every draft would give (the first token is the target's)
      bin_of[{t1, t2}] = b;
    }
  if (kDraws * want_p[0] < 5) want_p[0] = draft_p[0] = 0;  // too rare to test even together
  const int dof = static_cast<int>(std::count_if(want_p.begin(), want_p.end(), [](double x) { return x > 0; })) - 1;
  ASSERT_GE(dof, 4);
  // The 0.999 quantile of chi-square with dof degrees of freedom (Wilson-Hilferty).
  const double h = 2.0 / (9.0 * dof), critical = dof * std::pow(1 - h + 3.09 * std::sqrt(h), 3);
  auto statistic = [&](const std::vector<double>& counts) {
    double c = 0;
    for (size_t b = 0; b < want_p.size(); ++b)
      if (want_p[b] > 0) c += std::pow(counts[b] - kDraws * want_p[b], 2) / (kDraws * want_p[b]);
    return c;
  };
  std::vector<double> kept_all(want_p.size());
  for (size_t b = 0; b < want_p.size(); ++b) kept_all[b] = kDraws * draft_p[b];
  const double power = statistic(kept_all);
  ASSERT_GT(power, 3 * critical) << "too few draws to catch a wrong acceptance rule";

  Session s(target, {.n_ctx = 64, .n_threads = 2});
  auto drafter = make_model_drafter(draft, *target, {.n_ctx = 64, .n_threads = 2});
  std::map<std::pair<int32_t, int32_t>, int> counts;
  SpeculativeStats st;
  for (int i = 0; i < kDraws; ++i) {
    s.truncate(0, 0);
    SamplerParams seeded = sp;
    seeded.seed = 1000 + static_cast<uint64_t>(i);
    const std::vector<int32_t> got =
        speculative(s, *drafter, seeded, prompt, 2, {.draft_max = 1, .adaptive = false}, &st);
    ASSERT_EQ(got.size(), 2u);
    ++counts[{got[0], got[1]}];
  }
  std::vector<double> observed(want_p.size(), 0.0);
  int outside = 0;
  for (const auto& [pair, c] : counts) {
    const auto it = bin_of.find(pair);
    if (it == bin_of.end()) outside += c;
    else observed[static_cast<size_t>(it->second)] += c;
  }
  const double chi2 = statistic(observed);
  EXPECT_EQ(outside, 0) << "pairs outside the target's top-k were sampled";
  EXPECT_LT(chi2, critical) << "speculative samples do not follow the target's distribution";
  EXPECT_GT(st.accepted, kDraws / 10);
  EXPECT_LT(st.accepted, kDraws * 9 / 10);
  std::printf("[ chi2     ] %.1f, %d degrees of freedom (critical %.1f; if drafts were simply kept, ~%.0f); %lld of %d "
              "drafts kept\n", chi2, dof, critical, power, static_cast<long long>(st.accepted), kDraws);
}

// After rejections the target's cache is exactly the one plain decoding of the accepted text
// builds: the prompt in one pass, then one token per pass.
TEST(Speculative, RejectedDraftsLeaveNoTraceInTheCache) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<int32_t> prompt = m->tokenizer().encode("In 1969, Neil Armstrong", false, false);
  Session a(m, {.n_ctx = 128, .n_threads = 2});
  auto drafter = make_model_drafter(m, *m, {.n_ctx = 128, .n_threads = 2, .n_layers = 6});
  SpeculativeStats st;
  speculative(a, *drafter, {.temp = 0}, prompt, 40, {.draft_max = 4, .adaptive = false}, &st);
  ASSERT_GT(st.drafted - st.accepted, 5) << "the test needs rejections";
  const std::vector<int32_t> text = a.tokens();
  ASSERT_GE(text.size(), prompt.size() + 38);

  Session b(m, {.n_ctx = 128, .n_threads = 2});
  b.eval(prompt);
  for (size_t i = prompt.size(); i < text.size(); ++i) b.eval(std::span<const int32_t>(text).subspan(i, 1));
  const std::vector<int32_t> probe = m->tokenizer().encode(" and then", false, false);
  const std::vector<float> la = [&] {
    auto r = a.eval_all(probe);
    return std::vector<float>(r.begin(), r.end());
  }();
  const std::span<const float> lb = b.eval_all(probe);
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
}

TEST(Speculative, StopsWhereGenerateStops) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  const std::vector<int32_t> prompt = m->tokenizer().encode("1, 2, 3, 4, 5, 6,", false, false);
  auto lookup = make_lookup_drafter(1, 3);
  for (int max : {0, 1, 2, 7, 13}) {
    Session s(m, {.n_ctx = 128, .n_threads = 2});
    EXPECT_EQ(speculative(s, *lookup, {.temp = 0}, prompt, max, {.draft_max = 6}).size(), static_cast<size_t>(max));
  }
  {  // on_token returning false stops at once, mid-draft too
    Session s(m, {.n_ctx = 128, .n_threads = 2});
    Sampler sampler({.temp = 0});
    int seen = 0;
    const int n = generate_speculative(s, sampler, *lookup, prompt, 50, [&](int32_t) { return ++seen < 5; },
                                       {.draft_max = 6, .adaptive = false});
    EXPECT_EQ(n, 5);
    EXPECT_EQ(seen, 5);
  }
  {  // a full context ends generation
    Session s(m, {.n_ctx = static_cast<int>(prompt.size()) + 10, .n_threads = 2});
    const auto got = speculative(s, *lookup, {.temp = 0}, prompt, 50, {.draft_max = 6});
    EXPECT_EQ(got.size(), 11u);
    EXPECT_EQ(s.n_past(), s.n_ctx());
  }
  {  // an end-of-generation token: the chat prompt's answer ends
    const std::vector<int32_t> chat = m->tokenizer().encode(
        "<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\n", false, true);
    Session s(m, {.n_ctx = 256, .n_threads = 2});
    auto exit = make_model_drafter(m, *m, {.n_ctx = 256, .n_threads = 2, .n_layers = 24});
    const auto got = speculative(s, *exit, {.temp = 0}, chat, 100, {.draft_max = 4});
    EXPECT_LT(got.size(), 100u);
    for (int32_t t : got) EXPECT_FALSE(m->tokenizer().is_eog(t));
  }
  Session s(m, {.n_ctx = 8, .n_threads = 2});
  EXPECT_THROW(speculative(s, *lookup, {.temp = 0}, prompt, 4), Error) << "a prompt longer than the context";
}

TEST(Speculative, LookupProposesWhatFollowedTheLatestMatch) {
  auto d = make_lookup_drafter(2, 3);
  Draft out;
  const std::vector<int32_t> ctx = {1, 2, 3, 4, 9, 2, 3, 5, 6, 7, 2, 3};
  d->propose(ctx, 3, nullptr, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{5, 6, 7})) << "the latest earlier '2 3' is followed by 5 6 7";
  EXPECT_TRUE(out.probs.empty());
  d->propose(std::vector<int32_t>{1, 2, 3, 8, 1, 2, 3}, 5, nullptr, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{8, 1, 2, 3})) << "the 3-gram match, up to the end of the text";
  d->propose(std::vector<int32_t>{1, 2, 3, 4}, 4, nullptr, out);
  EXPECT_TRUE(out.tokens.empty());
  EXPECT_THROW(make_lookup_drafter(0, 2), Error);
  EXPECT_THROW(make_lookup_drafter(3, 2), Error);
}

TEST(Speculative, DraftsNeedTheTargetsVocabularyAndAnExitInsideTheModel) {
  const auto m = smollm2();
  ASSERT_TRUE(m);
  const std::string gemma_path = test::require_model("gemma-3-270m-q4_k_m.gguf");
  ASSERT_FALSE(gemma_path.empty());
  const auto gemma = Model::load(gemma_path);
  try {
    make_model_drafter(gemma, *m, {});
    ADD_FAILURE() << "a draft with another vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("different vocabularies"), std::string::npos) << e.message();
  }
  EXPECT_THROW(make_model_drafter(m, *m, {.n_layers = 30}), Error);
  EXPECT_THROW(make_model_drafter(m, *m, {.n_layers = 0}), Error);
  EXPECT_NO_THROW(make_model_drafter(m, *m, {.n_ctx = 64, .n_layers = 29}));
}

}  // namespace
}  // namespace edgelm
