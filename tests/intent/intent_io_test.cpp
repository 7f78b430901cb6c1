// Intent layer without the backbone: JSONL reading with line numbers, SHA-256, the head's GGUF
// round trip and backbone check, and the CLINC150 metrics.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("edgelm_intent_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string write(const std::string& name, const std::string& body) {
  const std::string p = temp_path(name);
  std::ofstream(p, std::ios::binary) << body;
  return p;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const unsigned char*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Crosses block boundaries unevenly in sha256_file's 1 MiB reads.
  std::string big(1000003, 'a');
  const std::string p = write("big", big);
  EXPECT_EQ(sha256_file(p), sha256_hex({reinterpret_cast<const unsigned char*>(big.data()), big.size()}));
  std::remove(p.c_str());
}

TEST(Examples, ReadsLabelOrIntentAndSkipsBlankLines) {
  const std::string p = write("ok.jsonl",
                              "{\"text\": \"play jazz\", \"label\": \"play_music\"}\n\n"
                              "{\"text\": \"call mom\", \"intent\": \"make_call\"}\n");
  const auto ex = read_examples(p);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].text, "call mom");
  EXPECT_EQ(ex[1].label, "make_call");
  std::remove(p.c_str());
}

TEST(Examples, ErrorsNameTheLine) {
  const std::string p = write("bad.jsonl",
                              "{\"text\": \"a\", \"label\": \"x\"}\n"
                              "{\"text\": \"b\", \"label\": \"y\"}\n"
                              "{\"text\": \"c\", \"label\": \n");
  const std::string m = error_of([&] { read_examples(p); });
  EXPECT_NE(m.find(p + ":3: malformed JSON"), std::string::npos) << m;
  const std::string q = write("empty_text.jsonl", "{\"text\": \"  \", \"label\": \"x\"}\n");
  EXPECT_NE(error_of([&] { read_examples(q); }).find(":1: the text is empty"), std::string::npos);
  const std::string r = write("no_label.jsonl", "{\"text\": \"hi\"}\n");
  EXPECT_NE(error_of([&] { read_examples(r); }).find(":1: missing \"label\""), std::string::npos);
  const std::string s = write("number.jsonl", "{\"text\": 5, \"label\": \"x\"}\n");
  EXPECT_NE(error_of([&] { read_examples(s); }).find("must be a string"), std::string::npos);
  EXPECT_NE(error_of([&] { read_examples(temp_path("absent.jsonl")); }).find("cannot open"), std::string::npos);
  for (const auto& f : {p, q, r, s}) std::remove(f.c_str());
}

Head make_head(train::Pooling pooling, int hidden) {
  Head h;
  h.labels = {"a", "b", "oos"};
  h.net = train::ClassifierHead({4, hidden, 3, pooling});
  train::Rng rng(1);
  h.net.init(rng);
  for (float& q : h.net.query.value) q = rng.normal();
  h.net.in_mean = {0.1f, 0.2f, 0.3f, 0.4f};
  h.backbone_name = "tiny";
  h.backbone_sha256 = std::string(64, 'a');
  h.oos_threshold = 0.25f;
  return h;
}

TEST(HeadFile, RoundTripKeepsEverything) {
  for (auto [pool, hidden] : {std::pair{train::Pooling::Attention, 5}, std::pair{train::Pooling::Last, 0}}) {
    Head h = make_head(pool, hidden);
    h.backbone_layers = hidden > 0 ? 8 : 0;  // early exit, and all blocks
    const std::string p = temp_path("head.gguf");
    save_head(h, p);
    const Head g = load_head(p);
    EXPECT_EQ(g.labels, h.labels);
    EXPECT_EQ(g.net.shape().pooling, pool);
    EXPECT_EQ(g.net.shape().n_hidden, hidden);
    EXPECT_EQ(g.backbone_sha256, h.backbone_sha256);
    EXPECT_EQ(g.oos_threshold, 0.25f);
    EXPECT_EQ(g.backbone_layers, h.backbone_layers);
    EXPECT_EQ(g.oos_index(), 2);
    EXPECT_EQ(g.net.w2.value, h.net.w2.value);
    EXPECT_EQ(g.net.in_mean, h.net.in_mean);
    if (pool == train::Pooling::Attention) {
      EXPECT_EQ(g.net.query.value, h.net.query.value);
    }
    std::remove(p.c_str());
  }
}

TEST(HeadFile, RejectsOtherFiles) {
  const std::string p = write("not_gguf.gguf", "hello");
  EXPECT_FALSE(error_of([&] { load_head(p); }).empty());
  std::remove(p.c_str());
}

TEST(Metrics, InScopeAccuracyAndOosRecall) {
  // classes: 0, 1, 2=oos. Rows are probabilities.
  const std::vector<float> probs = {
      0.9f, 0.05f, 0.05f,  // in 0, right
      0.4f, 0.35f, 0.25f,  // in 1, wrong (predicts 0)
      0.45f, 0.1f, 0.45f,  // oos, argmax 0 at 0.45 (first max)
      0.1f, 0.1f, 0.8f,    // oos, right
      0.55f, 0.4f, 0.05f,  // in 0, right but unsure
  };
  const std::vector<int> labels = {0, 1, 2, 2, 0};
  ScopeMetrics m = scope_metrics(probs, labels, 3, 2, 0.0f);
  EXPECT_EQ(m.n_in, 3u);
  EXPECT_EQ(m.n_oos, 2u);
  EXPECT_DOUBLE_EQ(m.in_scope_acc, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.oos_recall, 0.5);
  m = scope_metrics(probs, labels, 3, 2, 0.5f);  // the 0.45 and 0.4 rows become oos
  EXPECT_DOUBLE_EQ(m.oos_recall, 1.0);
  EXPECT_DOUBLE_EQ(m.in_scope_acc, 2.0 / 3);
  m = scope_metrics(probs, labels, 3, 2, 0.6f);
  EXPECT_DOUBLE_EQ(m.in_scope_acc, 1.0 / 3);
}

TEST(TokenStates, EmptyTextIsAnError) {
  // encode_text refuses blank text before touching the tokenizer.
  VocabularyData v;
  v.tokens = {"a", "b"};
  const Tokenizer tok = Tokenizer::from_vocabulary(v);
  EXPECT_NE(error_of([&] { encode_text(tok, "  \t", "{text}"); }).find("the text is empty"), std::string::npos);
  EXPECT_FALSE(encode_text(tok, "ab", "{text}").empty());
}

}  // namespace
}  // namespace edgelm::intent
