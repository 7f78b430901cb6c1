// Whole-model oracle tests on SmolLM2-135M (requantized from its Q4_1 file): for every file type,
// edgelm's quantized file must be byte-identical, tensor for tensor, to llama.cpp's
// llama-quantize output (with and without an importance matrix); on those files edgelm's
// perplexity must agree with llama-perplexity within 0.5 %, and its greedy continuation with
// llama-cpp-python's up to llama.cpp's first near-tie. Fixtures: tests/oracle/gen_quant_model_fixtures.py.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_models.hpp"

namespace edgelm {
namespace {

using nlohmann::json;
constexpr double kNearTie = 0.5;
constexpr double kPplTolerance = 0.005;

uint32_t crc32(const std::byte* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ static_cast<uint8_t>(p[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string hex8(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

const json& fixture() {
  static const json j = json::parse(test::read_file(test::fixture_path("quant/smollm2_files.json")));
  return j;
}

std::string temp_dir() { return test::scratch_dir().string(); }

// The synthetic importance matrix the fixture generator gave llama-quantize, rebuilt in
// llama.cpp's file layout and read back through ImportanceMatrix::load.
const quant::ImportanceMatrix& synthetic_imatrix(const std::string& model_path) {
  static const quant::ImportanceMatrix m = [&] {
    const int layers = fixture()["imatrix"]["layers"].get<int>();
    const gguf::File f = gguf::File::open(model_path);
    gguf::Writer w;
    w.set_string("general.type", "imatrix");
    w.set_u32("imatrix.chunk_count", 1);
    w.set_u32("imatrix.chunk_size", 512);
    const std::regex blk(R"(blk\.(\d+)\..*)");
    for (const auto& t : f.tensors()) {
      std::smatch sm;
      if (t.n_dims < 2 || !std::regex_match(t.name, sm, blk) || std::stoi(sm[1]) >= layers) continue;
      std::vector<float> v(static_cast<size_t>(t.ne[0]));
      for (size_t j = 0; j < v.size(); ++j) v[j] = 0.25f + static_cast<float>((j * 7919) % 61) / 16.0f;
      const float one = 1.0f;
      w.add_tensor(t.name + ".in_sum2", DType::F32, {t.ne[0], 1}, v.data(), v.size() * 4);
      w.add_tensor(t.name + ".counts", DType::F32, {1, 1}, &one, 4);
    }
    const std::string path = temp_dir() + "/synthetic.imatrix.gguf";
    w.write(path);
    return quant::ImportanceMatrix::load(path);
  }();
  return m;
}

// Quantizes once per (type, imatrix) and returns the output path.
std::string quantized(const std::string& model_path, const std::string& type, bool with_imatrix) {
  static std::map<std::string, std::string> done;
  const std::string key = type + (with_imatrix ? ".imatrix" : "");
  if (auto it = done.find(key); it != done.end()) return it->second;
  quant::QuantizeOptions o;
  o.file_type = *quant::file_type_from_name(type);
  o.n_threads = 2;
  if (with_imatrix) o.imatrix = &synthetic_imatrix(model_path);
  const std::string out = temp_dir() + "/" + key + ".gguf";
  quant::quantize_file(model_path, out, o);
  return done[key] = out;
}

void expect_same_as_llama(const std::string& path, const json& want, const std::string& what) {
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(f.get_u32("general.file_type"), want["file_type"].get<uint32_t>()) << what;
  const auto& tensors = want["tensors"];
  ASSERT_EQ(f.tensors().size(), tensors.size()) << what;
  int type_diff = 0, byte_diff = 0;
  for (const auto& t : f.tensors()) {
    ASSERT_TRUE(tensors.contains(t.name)) << what << ": unexpected tensor " << t.name;
    const auto& w = tensors[t.name];
    if (std::string(dtype_name(t.type)) != w[0].get<std::string>()) {
      if (type_diff++ < 3) ADD_FAILURE() << what << ": " << t.name << " is " << dtype_name(t.type) << ", llama.cpp wrote " << w[0];
      continue;
    }
    const TensorView v = f.view(t);
    if (hex8(crc32(v.data, v.nbytes)) != w[1].get<std::string>()) {
      if (byte_diff++ < 3) ADD_FAILURE() << what << ": bytes of " << t.name << " (" << dtype_name(t.type) << ") differ from llama.cpp's";
    }
  }
  EXPECT_EQ(type_diff, 0) << what;
  EXPECT_EQ(byte_diff, 0) << what;
}

class ModelQuant : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelQuant, ByteIdenticalToLlamaQuantize) {
  const std::string model = test::require_model(fixture()["model"].get<std::string>());
  if (model.empty()) return;
  const std::string type = GetParam();
  expect_same_as_llama(quantized(model, type, false), fixture()["types"][type], type);
}

INSTANTIATE_TEST_SUITE_P(Types, ModelQuant,
                         ::testing::Values("F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M",
                                           "Q4_0", "Q4_1", "Q3_K_M", "Q2_K"));

class ModelQuantImatrix : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelQuantImatrix, ByteIdenticalToLlamaQuantizeWithImatrix) {
  const std::string model = test::require_model(fixture()["model"].get<std::string>());
  if (model.empty()) return;
  const std::string type = GetParam();
  const std::string path = quantized(model, type, true);
  expect_same_as_llama(path, fixture()["imatrix_types"][type], type + " with imatrix");
  // The importance matrix changed the quantized bytes of a tensor it covers (Q4_1 keeps the
  // input's Q4_1 tensors as they are, with or without it).
  if (type == "Q4_1") return;
  const gguf::File with = gguf::File::open(path), without = gguf::File::open(quantized(model, type, false));
  int compared = 0;
  for (const char* name : {"blk.0.ffn_down.weight", "blk.0.attn_q.weight"}) {
    const TensorView a = with.tensor(name), b = without.tensor(name);
    if (a.type != b.type || !quant::uses_importance(a.type)) continue;  // the mix or a fallback changed it
    ++compared;
    EXPECT_NE(std::memcmp(a.data, b.data, a.nbytes), 0) << "the imatrix had no effect on " << name << " in " << type;
  }
  EXPECT_GT(compared, 0);
}

INSTANTIATE_TEST_SUITE_P(Types, ModelQuantImatrix,
                         ::testing::Values("Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_0", "Q4_1", "Q3_K_M", "Q2_K"));

class ModelPerplexity : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelPerplexity, AgreesWithLlamaPerplexity) {
  const std::string model = test::require_model(fixture()["model"].get<std::string>());
  if (model.empty()) return;
  const std::string type = GetParam();
  const json& want = fixture()["perplexity"][type];
  const std::string text = test::read_file(test::fixture_path("text/essays.txt"));
  quant::PerplexityOptions o;
  o.n_ctx = want["ctx"].get<int>();
  o.n_chunks = want["chunks"].get<int>();
  o.n_threads = 2;
  const auto r = quant::perplexity(Model::load(quantized(model, type, false)), text, o);
  const double ref = want["ppl"].get<double>();
  std::printf("[ oracle   ] %s: perplexity %.4f +/- %.4f, llama-perplexity %.4f +/- %.4f (%.3f%%)\n", type.c_str(),
              r.ppl, r.stderr_ppl, ref, want["stderr"].get<double>(), 100 * (r.ppl / ref - 1));
  EXPECT_NEAR(r.ppl / ref, 1.0, kPplTolerance);
  EXPECT_NEAR(r.stderr_ppl / want["stderr"].get<double>(), 1.0, 0.02);
  const auto running = want["running"].get<std::vector<double>>();
  ASSERT_EQ(r.running.size(), running.size());
  // A single chunk scores only 63 predictions: a looser bound for the running values.
  for (size_t i = 0; i < running.size(); ++i) EXPECT_NEAR(r.running[i] / running[i], 1.0, 0.025) << "chunk " << i + 1;
}

// Three types, as the issue asks. Q4_0 is measured but not held to 0.5 %: llama.cpp computes
// Q4_0 through its repacked 8x8 GEMM, whose sums are ordered differently from its vector dot
// product, and 8-bit activation rounding amplifies such last-bit differences; on these 192
// predictions that put llama-perplexity 0.94 % away from ours (0.73 % at 4 chunks).
INSTANTIATE_TEST_SUITE_P(Types, ModelPerplexity, ::testing::Values("F16", "Q8_0", "Q4_K_M"));

class ModelGreedy : public ::testing::TestWithParam<std::string> {};

// llama-cpp-python loaded llama.cpp's file, which the byte test proves is ours.
TEST_P(ModelGreedy, SameGreedyTokensAsLlamaCpp) {
  const std::string model = test::require_model(fixture()["model"].get<std::string>());
  if (model.empty()) return;
  const std::string type = GetParam();
  auto m = Model::load(quantized(model, type, false));
  Session s(m, {.n_ctx = 256, .n_threads = 2});
  for (const auto& c : fixture()["greedy"][type]) {
    s.truncate(0, 0);
    const auto ids = c["tokens"].get<std::vector<int32_t>>();
    auto l = s.eval(ids);
    std::vector<float> row(l.begin(), l.end());
    const auto want = c["greedy"].get<std::vector<int32_t>>();
    const auto margins = c["margins"].get<std::vector<double>>();
    std::vector<int32_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      got.push_back(next);
      const int32_t one[1] = {next};
      auto r = s.eval(one);
      row.assign(r.begin(), r.end());
    }
    size_t clear = 0, same = 0;
    while (clear < margins.size() && margins[clear] >= kNearTie) ++clear;
    while (same < want.size() && got[same] == want[same]) ++same;
    std::printf("[ oracle   ] %s: greedy matches %zu/%zu tokens (first near-tie at step %zu)\n", type.c_str(), same,
                want.size(), clear);
    EXPECT_GE(same, std::max<size_t>(clear, 1)) << type << ": " << c["prompt"];
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ModelGreedy, ::testing::Values("Q8_0", "Q4_K_M", "Q3_K_M"));

}  // namespace
}  // namespace edgelm
