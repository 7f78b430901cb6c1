// edgelm convert against its oracles (tests/oracle/gen_convert_fixtures.py): tiny random
// checkpoints saved by transformers, one per family, converted here. edgelm's logits must be
// within kMaxRelLlamaCpp of llama.cpp's on the same converted file (both keep the KV cache in
// F16) and within kMaxRelTransformers of transformers' (which keeps it in F32: the F16 rounding
// of keys and values is what separates them; with an F32 KV cache llama.cpp is within 1.2e-5 of
// transformers on these files, see expected.json), relative to the sequence's largest |logit|;
// The training forward pass (the same pass, keeping keys and values in float32 on its tape)
// must be within kMaxRelTransformersF32 of transformers': that isolates the conversion itself
// (tensor layouts, norms, RoPE order) from the cache's rounding.
// And the converted vocabulary must tokenize the corpus exactly as Hugging Face's tokenizer does.
#include <algorithm>
#include <bit>
#include <map>
#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/tokenizer.hpp"
#include "edgelm/train.hpp"
#include "support/test_models.hpp"
#include "tensor/fp16.hpp"

namespace edgelm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kMaxRelLlamaCpp = 1e-3;      // as tests/runtime/test_families.cpp
constexpr double kMaxRelTransformers = 5e-3;  // F16 keys and values: 2^-11 relative each
constexpr double kMaxRelTransformersF32 = 1e-4;  // float32 throughout

const json& expected() {
  static const json j = json::parse(test::read_file(test::fixture_path("convert/expected.json")));
  return j;
}

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("edgelm_convert_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string checkpoint(const std::string& family) { return test::fixture_path("convert/" + family); }

std::string convert_f32(const std::string& family, const fs::path& dir) {
  const std::string out = (dir / (family + ".gguf")).string();
  convert::ConvertOptions o;
  o.type = "f32";
  o.n_threads = 1;
  convert::convert_hf(checkpoint(family), out, o);
  return out;
}

// Largest |edgelm - oracle| over every position and every id_stride-th id, divided by the
// oracle's largest |logit| in the sequence.
double worst_diff(std::span<const float> all, size_t n_vocab, size_t n_tokens, const json& want) {
  const size_t stride = expected()["id_stride"].get<size_t>();
  double worst = 0, scale = 1e-6;
  for (size_t p = 0; p < n_tokens; ++p) {
    const auto row = want[p].get<std::vector<double>>();
    for (size_t k = 0; k < row.size(); ++k) {
      worst = std::max(worst, std::abs(static_cast<double>(all[p * n_vocab + k * stride]) - row[k]));
      scale = std::max(scale, std::abs(row[k]));
    }
  }
  return worst / scale;
}

void expect_same_tensors(const gguf::File& a, const gguf::File& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const gguf::TensorInfo& t = a.tensors()[i];
    EXPECT_EQ(b.tensors()[i].name, t.name);  // the same order
    const gguf::TensorInfo* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    const TensorView va = a.view(t), vb = b.view(*u);
    EXPECT_EQ(va.type, vb.type) << t.name;
    EXPECT_EQ(va.ne, vb.ne) << t.name;
    ASSERT_EQ(va.nbytes, vb.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(va.data, vb.data, va.nbytes), 0) << t.name << " differs";
  }
}

class Checkpoints : public ::testing::TestWithParam<std::string> {};

TEST_P(Checkpoints, LogitsEqualTransformersAndLlamaCpp) {
  const std::string family = GetParam();
  const json& fx = expected()["families"][family];
  const fs::path dir = temp_dir(family);
  const auto model = Model::load(convert_f32(family, dir));
  EXPECT_EQ(model->config().arch, family == "llama3" ? "llama" : family);
  const size_t V = static_cast<size_t>(model->config().n_vocab);
  for (size_t i = 0; i < fx["sequences"].size(); ++i) {
    const auto toks = fx["sequences"][i].get<std::vector<int32_t>>();
    Session s(model, {.n_ctx = 32, .n_threads = 1});
    const std::span<const float> all = s.eval_all(toks);
    const double hf = worst_diff(all, V, toks.size(), fx["transformers"][i]);
    const double lc = worst_diff(all, V, toks.size(), fx["llama_cpp"][i]);
    std::printf("%s sequence %zu (%zu tokens): max relative |edgelm - transformers| %.2e, |edgelm - llama.cpp| %.2e\n",
                family.c_str(), i, toks.size(), hf, lc);
    EXPECT_LE(hf, kMaxRelTransformers) << family << " sequence " << i;
    EXPECT_LE(lc, kMaxRelLlamaCpp) << family << " sequence " << i;
    train::LanguageModel lm(model, 1);
    const std::vector<float> f32 = lm.logits({.tokens = {toks}, .targets = {std::vector<int32_t>(toks.size(), -1)}});
    const double hf32 = worst_diff(f32, V, toks.size(), fx["transformers"][i]);
    std::printf("%s sequence %zu: float32 forward, max relative |edgelm - transformers| %.2e\n", family.c_str(), i, hf32);
    EXPECT_LE(hf32, kMaxRelTransformersF32) << family << " sequence " << i;
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Convert, Checkpoints,
                         ::testing::Values("llama", "llama3", "qwen2", "stablelm", "phi3", "gemma", "gemma2", "gemma3"),
                         [](const auto& info) { return info.param; });

class Tokenizers : public ::testing::TestWithParam<std::string> {};

TEST_P(Tokenizers, EqualHuggingFaceOnTheCorpus) {
  const json& fx = expected()["tokenizers"][GetParam()];
  const std::string family = fx["family"].get<std::string>();
  const fs::path dir = temp_dir("tok_" + GetParam());
  const gguf::File f = gguf::File::open(convert_f32(family, dir));
  const Tokenizer tok = Tokenizer::from_gguf(f);
  int mismatches = 0;
  for (const json& c : fx["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text, /*add_special=*/false, /*parse_special=*/true);
    if (got != want && ++mismatches <= 5) ADD_FAILURE() << GetParam() << ": '" << text << "' tokenizes differently";
  }
  EXPECT_EQ(mismatches, 0) << "of " << fx["cases"].size() << " strings";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Convert, Tokenizers, ::testing::Values("smollm", "llama3", "qwen2", "gpt2", "spm", "spm-phi3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Convert, MetadataLlamaCppReads) {
  const fs::path dir = temp_dir("meta");
  const gguf::File f = gguf::File::open(convert_f32("llama", dir));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_NE(f.get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);
  const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens[f.get_u32("tokenizer.ggml.eos_token_id")], "<|im_end|>");
  EXPECT_EQ(f.get_u32("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied embeddings
  const gguf::File l3 = gguf::File::open(convert_f32("llama3", dir));
  EXPECT_EQ(l3.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_TRUE(l3.get_bool("tokenizer.ggml.add_bos_token"));  // from the post-processor
  EXPECT_EQ(l3.get_u32("tokenizer.ggml.bos_token_id"), 0u);
  EXPECT_NE(l3.find_tensor("output.weight"), nullptr);
  const gguf::File g = gguf::File::open(convert_f32("gemma3", dir));
  EXPECT_EQ(g.get_u32("gemma3.attention.sliding_window_pattern"), 3u);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_FALSE(g.get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_TRUE(g.get_bool("tokenizer.ggml.add_bos_token"));
  fs::remove_all(dir);
}

TEST(Convert, QuantizedOutputLoads) {
  const fs::path dir = temp_dir("q8");
  const std::string out = (dir / "llama-q8_0.gguf").string();
  convert::ConvertOptions o;
  o.type = "q8_0";
  o.n_threads = 1;
  convert::convert_hf(checkpoint("llama"), out, o);
  const gguf::File f = gguf::File::open(out);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, DType::Q8_0);
  EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->type, DType::F32);
  const auto model = Model::load(out);
  Session s(model, {.n_ctx = 16, .n_threads = 1});
  const auto toks = expected()["families"]["llama"]["sequences"][1].get<std::vector<int32_t>>();
  const auto logits = s.eval(toks);
  const auto want = expected()["families"]["llama"]["transformers"][1].back().get<std::vector<double>>();
  double worst = 0;
  for (size_t k = 0; k < want.size(); ++k)
    worst = std::max(worst, std::abs(logits[k * expected()["id_stride"].get<size_t>()] - want[k]));
  EXPECT_LT(worst, 0.1);  // 8-bit weights: close, not equal
  EXPECT_FALSE(fs::exists(out + ".convert.tmp.gguf"));
  fs::remove_all(dir);
}

TEST(Convert, ExportHfThenConvertGivesTheSameTensorsBitForBit) {
  const fs::path dir = temp_dir("roundtrip");
  const std::string first = convert_f32("llama", dir);
  const fs::path hf = dir / "hf";
  const auto r = convert::export_hf(first, hf.string());
  EXPECT_EQ(r.n_tensors, 20u);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(hf / f)) << f;
  const std::string second = (dir / "again.gguf").string();
  convert::ConvertOptions o;
  o.type = "f32";
  convert::convert_hf(hf.string(), second, o);
  const gguf::File a = gguf::File::open(first), b = gguf::File::open(second);
  expect_same_tensors(a, b);
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
    EXPECT_EQ(a.get_string_array(key), b.get_string_array(key)) << key;
  EXPECT_EQ(a.get_i32_array("tokenizer.ggml.token_type"), b.get_i32_array("tokenizer.ggml.token_type"));
  EXPECT_EQ(a.get_string("tokenizer.ggml.pre"), b.get_string("tokenizer.ggml.pre"));
  EXPECT_EQ(a.get_string("tokenizer.chat_template"), b.get_string("tokenizer.chat_template"));
  EXPECT_EQ(a.get_u32("tokenizer.ggml.eos_token_id"), b.get_u32("tokenizer.ggml.eos_token_id"));
  fs::remove_all(dir);
}

TEST(Convert, ExportHfRefusesQuantizedModels) {
  const fs::path dir = temp_dir("export_q");
  const std::string out = (dir / "q.gguf").string();
  convert::ConvertOptions o;
  o.type = "q8_0";
  convert::convert_hf(checkpoint("llama"), out, o);
  try {
    convert::export_hf(out, (dir / "hf").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("float weights only"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// --- bad input: one clear error each --------------------------------------------------------

// A copy of the llama checkpoint whose files a test then damages.
fs::path damaged_copy(const std::string& name) {
  const fs::path dir = temp_dir(name) / "ckpt";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(checkpoint("llama"))) fs::copy_file(e.path(), dir / e.path().filename());
  return dir;
}

std::string convert_error(const fs::path& dir) {
  try {
    convert::convert_hf(dir.string(), (dir.parent_path() / "out.gguf").string(), {.type = "f32"});
  } catch (const Error& e) {
    EXPECT_FALSE(fs::exists(dir.parent_path() / "out.gguf"));
    const std::string m = e.message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Rewrites model.safetensors with `header` as its JSON header and `data_bytes` of data.
void write_safetensors(const fs::path& dir, const std::string& header, size_t data_bytes, uint64_t claimed_len = 0) {
  std::ofstream f(dir / "model.safetensors", std::ios::binary | std::ios::trunc);
  const uint64_t len = claimed_len ? claimed_len : header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>(len >> (8 * i)));
  f << header << std::string(data_bytes, '\0');
}

TEST(ConvertErrors, DamagedSafetensors) {
  const fs::path dir = damaged_copy("bad_st");
  struct Case {
    std::string header;
    size_t data;
    uint64_t claimed;
    const char* want;
  };
  const Case cases[] = {
      {"{}", 0, 1ull << 40, "does not fit in a file"},
      {"{not json", 0, 0, "not valid JSON"},
      {"[1,2]", 0, 0, "not a JSON object"},
      {R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8, 0, "unknown dtype 'Q4'"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}})", 8, 0, "lie outside"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, 0, "shape x F32 is 12 bytes"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, 0, "overlap"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, 0, "shape holds"},
      {R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, 0, "lacks dtype, shape or data_offsets"},
      {R"({"model.embed_tokens.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8, 0, "has dtype I64"},
  };
  for (const Case& c : cases) {
    write_safetensors(dir, c.header, c.data, c.claimed);
    const std::string m = convert_error(dir);
    EXPECT_NE(m.find(c.want), std::string::npos) << "header " << c.header << " gave: " << m;
  }
  std::ofstream(dir / "model.safetensors", std::ios::trunc) << "abc";
  EXPECT_NE(convert_error(dir).find("shorter than the 8-byte header length"), std::string::npos);
  fs::remove_all(dir.parent_path());
}

TEST(ConvertErrors, DamagedConfigAndTokenizer) {
  const fs::path dir = damaged_copy("bad_cfg");
  const std::string good = test::read_file((dir / "config.json").string());
  auto set_config = [&](const std::string& text) { std::ofstream(dir / "config.json", std::ios::trunc) << text; };
  set_config("{\"architectures\": [\"LlamaForCausalLM\"");
  EXPECT_NE(convert_error(dir).find("config.json: not valid JSON"), std::string::npos);
  json j = json::parse(good);
  j["architectures"] = {"BertModel"};
  set_config(j.dump());
  EXPECT_NE(convert_error(dir).find("architecture 'BertModel' is not supported"), std::string::npos);
  j = json::parse(good);
  j.erase("hidden_size");
  set_config(j.dump());
  EXPECT_NE(convert_error(dir).find("\"hidden_size\" is missing"), std::string::npos);
  j = json::parse(good);
  j["num_attention_heads"] = "four";
  set_config(j.dump());
  EXPECT_NE(convert_error(dir).find("\"num_attention_heads\" is not a non-negative integer"), std::string::npos);
  j = json::parse(good);
  j["num_attention_heads"] = 8;  // head_dim 4: Q's rows no longer match
  j["num_key_value_heads"] = 8;
  set_config(j.dump());
  EXPECT_NE(convert_error(dir).find("does not match its config.json"), std::string::npos);
  set_config(good);
  std::ofstream(dir / "tokenizer.json", std::ios::trunc) << "{\"model\": {\"type\": \"WordPiece\"}}";
  EXPECT_NE(convert_error(dir).find("tokenizer.json"), std::string::npos);
  std::ofstream(dir / "tokenizer.json", std::ios::trunc) << "{\"model\": {\"type\": 5}, \"pre_tokenizer\": [1]}";
  EXPECT_NE(convert_error(dir).find("tokenizer.json"), std::string::npos);
  fs::remove(dir / "tokenizer.json");
  EXPECT_NE(convert_error(dir).find("tokenizer.json: cannot open"), std::string::npos);
  fs::remove(dir / "model.safetensors");
  EXPECT_NE(convert_error(dir).find("no *.safetensors weights"), std::string::npos);
  EXPECT_NE(convert_error(dir.parent_path() / "missing").find("not a directory"), std::string::npos);
  fs::remove_all(dir.parent_path());
}

TEST(ConvertErrors, ShardIndexNamesAMissingFile) {
  const fs::path dir = damaged_copy("bad_index");
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}})";
  EXPECT_NE(convert_error(dir).find("names shard 'model-00001-of-00002.safetensors', which is missing"), std::string::npos);
  fs::remove_all(dir.parent_path());
}

TEST(Convert, ShardedCheckpointGivesTheSameFile) {
  // Split the llama checkpoint's tensors over two shards with an index, as save_pretrained does
  // for large models.
  const fs::path dir = damaged_copy("sharded");
  const std::string st = test::read_file((dir / "model.safetensors").string());
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = hlen << 8 | static_cast<uint8_t>(st[i]);
  const json h = json::parse(st.substr(8, hlen));
  const std::string data = st.substr(8 + hlen);
  json shard[2] = {json::object(), json::object()}, index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  std::string bytes[2];
  int k = 0;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const int s = k++ % 2;
    const auto off = it.value()["data_offsets"].get<std::vector<uint64_t>>();
    json e = it.value();
    e["data_offsets"] = {bytes[s].size(), bytes[s].size() + off[1] - off[0]};
    bytes[s] += data.substr(off[0], off[1] - off[0]);
    shard[s][it.key()] = e;
    index["weight_map"][it.key()] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  fs::remove(dir / "model.safetensors");
  for (int s = 0; s < 2; ++s) {
    const std::string hs = shard[s].dump();
    std::ofstream f(dir / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"), std::ios::binary);
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>(static_cast<uint64_t>(hs.size()) >> (8 * i)));
    f << hs << bytes[s];
  }
  std::ofstream(dir / "model.safetensors.index.json") << index.dump();
  const std::string sharded = (dir.parent_path() / "sharded.gguf").string();
  convert::convert_hf(dir.string(), sharded, {.type = "f32"});
  const std::string single = convert_f32("llama", dir.parent_path());
  expect_same_tensors(gguf::File::open(sharded), gguf::File::open(single));
  fs::remove_all(dir.parent_path());
}

// The llama checkpoint rewritten with 16-bit weights (bf16: the top half of each float; f16:
// rounded by the tensor layer's conversion), converted to F32: every value must be exactly the
// 16-bit one, Q/K permuted like the F32 ones.
class SixteenBit : public ::testing::TestWithParam<DType> {};

TEST_P(SixteenBit, WeightsConvertExactly) {
  const DType type = GetParam();
  const std::string tname = type == DType::BF16 ? "BF16" : "F16";
  const fs::path dir = damaged_copy("sixteen_" + tname);
  const std::string st = test::read_file((dir / "model.safetensors").string());
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = hlen << 8 | static_cast<uint8_t>(st[i]);
  json h = json::parse(st.substr(8, hlen));
  std::string data;
  std::map<std::string, std::vector<float>> want;  // the 16-bit values, widened
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto off = it.value()["data_offsets"].get<std::vector<uint64_t>>();
    const size_t n = (off[1] - off[0]) / 4;
    std::vector<float> f(n);
    std::memcpy(f.data(), st.data() + 8 + hlen + off[0], n * 4);
    std::vector<uint16_t> half(n);
    for (size_t i = 0; i < n; ++i) {
      half[i] = type == DType::BF16 ? static_cast<uint16_t>(std::bit_cast<uint32_t>(f[i]) >> 16) : f32_to_fp16(f[i]);
      f[i] = type == DType::BF16 ? bf16_to_f32(half[i]) : fp16_to_f32(half[i]);
    }
    it.value()["dtype"] = tname;
    it.value()["data_offsets"] = {data.size(), data.size() + 2 * n};
    data.append(reinterpret_cast<const char*>(half.data()), 2 * n);
    want[it.key()] = std::move(f);
  }
  const std::string hs = h.dump();
  {
    std::ofstream out(dir / "model.safetensors", std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(static_cast<uint64_t>(hs.size()) >> (8 * i)));
    out << hs << data;
  }
  const std::string out = (dir.parent_path() / "sixteen.gguf").string();
  convert::convert_hf(dir.string(), out, {.type = "f32"});
  const gguf::File f = gguf::File::open(out);
  const gguf::File ref = gguf::File::open(convert_f32("llama", dir.parent_path()));
  // Same layout as the F32 conversion: compare against it with each value narrowed the same way.
  for (const auto& t : ref.tensors()) {
    const TensorView a = ref.view(t), b = f.tensor(t.name);
    ASSERT_EQ(b.type, DType::F32) << t.name;
    const auto* fa = reinterpret_cast<const float*>(a.data);
    const auto* fb = reinterpret_cast<const float*>(b.data);
    size_t bad = 0;
    for (int64_t i = 0; i < a.nelements(); ++i) {
      const uint16_t hv = type == DType::BF16 ? static_cast<uint16_t>(std::bit_cast<uint32_t>(fa[i]) >> 16) : f32_to_fp16(fa[i]);
      const float narrowed = type == DType::BF16 ? bf16_to_f32(hv) : fp16_to_f32(hv);
      bad += narrowed != fb[i];
    }
    EXPECT_EQ(bad, 0u) << t.name;
  }
  EXPECT_EQ(want.size(), ref.tensors().size());
  fs::remove_all(dir.parent_path());
}

INSTANTIATE_TEST_SUITE_P(Convert, SixteenBit, ::testing::Values(DType::BF16, DType::F16),
                         [](const auto& info) { return std::string(info.param == DType::BF16 ? "bf16" : "f16"); });

}  // namespace
}  // namespace edgelm
