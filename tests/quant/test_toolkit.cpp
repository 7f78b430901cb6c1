// The quantization toolkit's smaller parts: file-type names, the per-tensor plan and --keep,
// bad input, memory accounting, the importance matrix (collection, file round trip, errors).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

const char* kModel = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::string tmp(const std::string& name) { return test::scratch_path(name); }

TEST(FileTypes, NamesAndIds) {
  EXPECT_EQ(quant::file_type_from_name("q4_k_m"), quant::FileType::Q4_K_M);
  EXPECT_EQ(quant::file_type_from_name("BF16"), quant::FileType::BF16);
  EXPECT_FALSE(quant::file_type_from_name("Q4_K_S").has_value());
  EXPECT_FALSE(quant::file_type_from_name("").has_value());
  EXPECT_EQ(quant::llama_ftype_id(quant::FileType::Q4_K_M), 15u);
  EXPECT_EQ(quant::llama_ftype_id(quant::FileType::Q2_K), 10u);
  EXPECT_EQ(quant::base_type(quant::FileType::Q3_K_M), DType::Q3_K);
  EXPECT_NE(quant::supported_file_types().find("Q5_K_M"), std::string::npos);
}

TEST(FileTypes, TensorClasses) {
  EXPECT_EQ(quant::tensor_class("blk.12.attn_v.weight"), "attn_v");
  EXPECT_EQ(quant::tensor_class("blk.0.ffn_norm.weight"), "norm");
  EXPECT_EQ(quant::tensor_class("output_norm.weight"), "norm");
  EXPECT_EQ(quant::tensor_class("token_embd.weight"), "token_embd");
  EXPECT_EQ(quant::tensor_class("output.weight"), "output");
}

TEST(Plan, KeepOverridesAndFallbacks) {
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  const gguf::File f = gguf::File::open(model);
  quant::QuantizeOptions o;
  o.file_type = quant::FileType::Q4_0;
  o.keep = {{"blk.0.*", DType::Q8_0}, {"blk.1.attn_q.weight", DType::Q6_K}};
  std::vector<std::string> notes;
  const auto plan = quant::plan_quantization(f, o, &notes);
  for (const auto& p : plan) {
    if (p.klass == "norm") {
      EXPECT_EQ(p.to, DType::F32) << p.name;
    } else if (p.name.rfind("blk.0.", 0) == 0) {
      EXPECT_EQ(p.to, DType::Q8_0) << p.name;
    } else if (p.name == "blk.1.attn_q.weight") {
      EXPECT_EQ(p.to, DType::Q8_0) << "Q6_K does not fit rows of 576: falls back to Q8_0";
    } else if (p.name == "token_embd.weight") {
      EXPECT_EQ(p.to, DType::Q8_0) << "tied output: Q6_K does not fit, Q8_0 as llama.cpp";
    } else {
      EXPECT_EQ(p.to, DType::Q4_0) << p.name;
    }
  }
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("Q6_K -> Q8_0"), std::string::npos) << notes[0];
}

TEST(BadInput, CorruptAndMissingFilesGiveClearErrors) {
  quant::QuantizeOptions o;
  o.file_type = quant::FileType::Q8_0;
  const std::string out = tmp("never.gguf");
  try {
    quant::quantize_file(tmp("does-not-exist.gguf"), out, o);
    ADD_FAILURE() << "no error for a missing file";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("does-not-exist"), std::string::npos) << e.message();
  }
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  // The first 1 MiB of a real model: a valid header whose tensors run past the end.
  const std::string cut = tmp("truncated.gguf");
  {
    std::ifstream in(model, std::ios::binary);
    std::vector<char> b(1 << 20);
    in.read(b.data(), static_cast<std::streamsize>(b.size()));
    std::ofstream(cut, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  EXPECT_THROW(quant::quantize_file(cut, out, o), Error);
  const std::string junk = tmp("junk.gguf");
  std::ofstream(junk) << "this is not a model";
  EXPECT_THROW(quant::quantize_file(junk, out, o), Error);
  EXPECT_FALSE(std::filesystem::exists(out));
  // An output directory that does not exist: an error, and nothing left behind.
  EXPECT_THROW(quant::quantize_file(model, tmp("no/such/dir/out.gguf"), o), Error);
}

TEST(BadInput, ImatrixForAnotherModelIsRejected) {
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  quant::ImportanceMatrix m;
  std::vector<float> x(100, 1.0f);
  m.add("blk.0.attn_q.weight", x.data(), 1, 100);  // the real rows have 576 values
  const std::string path = tmp("wrong.imatrix.gguf");
  m.save(path, 512);
  const auto loaded = quant::ImportanceMatrix::load(path);
  quant::QuantizeOptions o;
  o.file_type = quant::FileType::Q4_0;
  o.imatrix = &loaded;
  try {
    quant::quantize_file(model, tmp("wrong.gguf"), o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("another model"), std::string::npos) << e.message();
  }
}

TEST(Memory, KvBytesForF16AndQ8_0) {
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  auto m = Model::load(model);
  const auto r = quant::memory_report(*m, 2048);
  // 30 layers x 3 KV heads x 64 dims, keys and values.
  EXPECT_EQ(r.kv_f16_bytes, 2ull * 30 * 3 * 64 * 2048 * 2);
  EXPECT_EQ(r.kv_q8_0_bytes, 2ull * 30 * 3 * 2 * 34 * 2048);
  EXPECT_EQ(r.weights_by_type.at("Q4_1").tensors, 210);
  EXPECT_EQ(r.weights_by_type.at("F32").tensors, 61);
  EXPECT_EQ(r.weights_by_type.at("Q8_0").tensors, 1);
  uint64_t sum = 0;
  for (const auto& [t, e] : r.weights_by_type) sum += e.bytes;
  EXPECT_EQ(sum, r.weight_bytes);
}

TEST(Imatrix, MeansSaveAndLoad) {
  quant::ImportanceMatrix m;
  const float a[6] = {1, 2, 3, -1, 0, 1};  // two rows of three
  m.add("w", a, 2, 3);
  const float b[3] = {2, 2, 2};
  m.add("w", b, 1, 3);
  const auto* v = m.find("w");
  ASSERT_NE(v, nullptr);
  EXPECT_FLOAT_EQ((*v)[0], (1 + 1 + 4) / 3.0f);
  EXPECT_FLOAT_EQ((*v)[1], (4 + 0 + 4) / 3.0f);
  EXPECT_FLOAT_EQ((*v)[2], (9 + 1 + 4) / 3.0f);
  EXPECT_EQ(m.find("other"), nullptr);
  m.set_chunks(3);
  const std::string path = tmp("m.imatrix.gguf");
  m.save(path, 64);
  const auto r = quant::ImportanceMatrix::load(path);
  EXPECT_EQ(r.chunks(), 3);
  ASSERT_NE(r.find("w"), nullptr);
  EXPECT_EQ(*r.find("w"), *v);
}

TEST(Imatrix, BadFilesGiveClearErrors) {
  EXPECT_THROW(quant::ImportanceMatrix::load(tmp("missing.imatrix")), Error);
  const std::string junk = tmp("junk.imatrix");
  std::ofstream(junk) << "garbage";
  EXPECT_THROW(quant::ImportanceMatrix::load(junk), Error);
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  try {
    quant::ImportanceMatrix::load(model);  // a model, not an imatrix
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("in_sum2"), std::string::npos) << e.message();
  }
}

// The imatrix collector is the session's own forward pass with the matrix-input hook: its
// logits are the session's bit for bit, and it reports every product's input once.
TEST(Imatrix, CollectorIsTheSessionsForwardPass) {
  const std::string model = test::require_model(kModel);
  if (model.empty()) return;
  auto m = Model::load(model);
  const auto ids = m->tokenizer().encode("The river slowed as it reached the plain, and it began to drop", false, false);
  std::map<std::string, int64_t> seen;
  std::map<std::string, double> first_sum;
  const auto logits = quant::collect_matmul_inputs(
      *m, ids,
      [&](const std::string& name, const float* x, int64_t n, int64_t cols) {
        EXPECT_EQ(n, static_cast<int64_t>(ids.size())) << name;
        EXPECT_FALSE(seen.count(name)) << name << " reported twice";
        double sum = 0;
        for (int64_t i = 0; i < n * cols; ++i) sum += x[i] * x[i];
        EXPECT_TRUE(std::isfinite(sum) && sum > 0) << name;
        seen[name] = cols;
        first_sum[name] = sum;
      },
      2);
  EXPECT_EQ(seen.size(), 30u * 7 + 1);  // q, k, v, output, gate, up, down per layer + the output projection
  EXPECT_EQ(seen.at("blk.3.ffn_down.weight"), 1536);
  EXPECT_EQ(seen.at("blk.3.attn_output.weight"), 576);
  EXPECT_EQ(seen.at("token_embd.weight"), 576);  // the tied output projection
  // Q, K and V read the same normed input.
  EXPECT_EQ(first_sum.at("blk.7.attn_q.weight"), first_sum.at("blk.7.attn_v.weight"));
  Session s(m, {.n_ctx = 128, .n_threads = 2});
  const auto ref = s.eval(ids);
  ASSERT_EQ(ref.size(), logits.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(ref[i], logits[i]) << "logit " << i;
}

}  // namespace
}  // namespace edgelm
