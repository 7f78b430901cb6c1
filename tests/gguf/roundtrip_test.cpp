// Writer -> reader round trips: every metadata value type and several tensor types come back
// exactly as written, in order, with tensor data aligned in the file.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "gguf/gguf_test_support.hpp"

namespace edgelm::gguf {
namespace {

using testing::GgufBytes;
using testing::ScratchDir;
using testing::same_value;

Value scalar(ValueType t) {
  Value v;
  v.type = t;
  return v;
}
Value unsigned_value(ValueType t, uint64_t u) {
  Value v = scalar(t);
  v.u = u;
  return v;
}
Value signed_value(ValueType t, int64_t i) {
  Value v = scalar(t);
  v.i = i;
  return v;
}
Value float_value(ValueType t, double f) {
  Value v = scalar(t);
  v.f = f;
  return v;
}
Value string_value(std::string s) {
  Value v = scalar(ValueType::STRING);
  v.s = std::move(s);
  return v;
}
Value array_value(ValueType elem, std::vector<Value> items) {
  Value v = scalar(ValueType::ARRAY);
  v.elem_type = elem;
  v.array = std::move(items);
  return v;
}

// An array long enough that the reader keeps it packed (a vocabulary's size class).
Value long_array(ValueType elem, size_t n) {
  std::vector<Value> items;
  for (size_t k = 0; k < n; ++k) {
    switch (elem) {
      case ValueType::STRING: items.push_back(string_value(std::string(k % 40, static_cast<char>('a' + k % 26)))); break;
      case ValueType::F32: items.push_back(float_value(elem, static_cast<float>(k) * -0.25f)); break;
      case ValueType::BOOL: items.push_back(unsigned_value(elem, k % 2)); break;
      default: items.push_back(signed_value(elem, static_cast<int64_t>(k % 7) - 3)); break;
    }
  }
  return array_value(elem, std::move(items));
}

// One entry per value type, at the edges of its range, plus arrays of each element kind.
std::vector<std::pair<std::string, Value>> every_value_type() {
  using VT = ValueType;
  return {
      {"t.long_strings", long_array(VT::STRING, 3000)},
      {"t.long_f32", long_array(VT::F32, 1500)},
      {"t.long_i32", long_array(VT::I32, 1024)},
      {"t.long_bool", long_array(VT::BOOL, 2048)},
      {"t.u8", unsigned_value(VT::U8, 255)},
      {"t.i8", signed_value(VT::I8, -128)},
      {"t.u16", unsigned_value(VT::U16, 65535)},
      {"t.i16", signed_value(VT::I16, -32768)},
      {"t.u32", unsigned_value(VT::U32, 4294967295u)},
      {"t.i32", signed_value(VT::I32, std::numeric_limits<int32_t>::min())},
      {"t.f32", float_value(VT::F32, -1.5)},
      {"t.bool_true", unsigned_value(VT::BOOL, 1)},
      {"t.bool_false", unsigned_value(VT::BOOL, 0)},
      {"t.string", string_value("héllo\n{{ chat }}")},
      {"t.empty_string", string_value("")},
      {"t.u64", unsigned_value(VT::U64, std::numeric_limits<uint64_t>::max())},
      {"t.i64", signed_value(VT::I64, std::numeric_limits<int64_t>::min())},
      {"t.f64", float_value(VT::F64, 3.141592653589793)},
      {"t.arr_u8", array_value(VT::U8, {unsigned_value(VT::U8, 0), unsigned_value(VT::U8, 7)})},
      {"t.arr_i16", array_value(VT::I16, {signed_value(VT::I16, -2), signed_value(VT::I16, 300)})},
      {"t.arr_u64", array_value(VT::U64, {unsigned_value(VT::U64, 1ull << 40)})},
      {"t.arr_f64",
       array_value(VT::F64, {float_value(VT::F64, 1e-300), float_value(VT::F64, 2)})},
      {"t.arr_bool",
       array_value(VT::BOOL, {unsigned_value(VT::BOOL, 1), unsigned_value(VT::BOOL, 0)})},
      {"t.arr_string",
       array_value(VT::STRING, {string_value("a"), string_value(""), string_value("ccc")})},
      {"t.arr_empty", array_value(VT::I32, {})},
      {"t.arr_nested",
       array_value(VT::ARRAY,
                   {array_value(VT::I32, {signed_value(VT::I32, 1), signed_value(VT::I32, 2)}),
                    array_value(VT::I32, {})})},
  };
}

std::vector<std::byte> random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

struct TensorSpec {
  std::string name;
  DType type;
  std::vector<int64_t> ne;
};

const std::vector<TensorSpec> kTensors = {
    {"tok.weight", DType::Q8_0, {64, 3}},
    {"norm.weight", DType::F32, {5}},
    {"q.weight", DType::Q4_1, {32, 2, 2}},
    {"k.weight", DType::Q4_K, {256, 1, 1, 2}},
    {"h.weight", DType::F16, {3, 3}},
    {"ids", DType::I32, {7}},
    {"b.weight", DType::BF16, {2}},
};

size_t spec_nbytes(const TensorSpec& s) {
  size_t rows = 1;
  for (size_t d = 1; d < s.ne.size(); ++d) rows *= static_cast<size_t>(s.ne[d]);
  return row_size(s.type, s.ne[0]) * rows;
}

void check_round_trip(uint64_t alignment) {
  ScratchDir dir;
  const std::string path = dir.file("rt.gguf");
  Writer w;
  if (alignment != 32) w.set_alignment(alignment);
  const auto values = every_value_type();
  for (const auto& [k, v] : values) w.set(k, v);
  std::vector<std::vector<std::byte>> data;
  for (size_t i = 0; i < kTensors.size(); ++i) {
    data.push_back(random_bytes(spec_nbytes(kTensors[i]), static_cast<unsigned>(i)));
    w.add_tensor(kTensors[i].name, kTensors[i].type, kTensors[i].ne, data.back().data(),
                 data.back().size());
  }
  w.write(path);

  const File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.file_size(), testing::fs::file_size(path));

  // Metadata: same keys in the same order (plus general.alignment first if it was set).
  std::vector<std::string> expected_keys;
  if (alignment != 32) expected_keys.push_back("general.alignment");
  for (const auto& [k, v] : values) expected_keys.push_back(k);
  EXPECT_EQ(f.keys(), expected_keys);
  for (const auto& [k, v] : values) {
    ASSERT_TRUE(f.has(k)) << k;
    EXPECT_TRUE(same_value(*f.find(k), v)) << k;
  }

  ASSERT_EQ(f.tensors().size(), kTensors.size());
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const TensorSpec& s = kTensors[i];
    SCOPED_TRACE(s.name);
    const TensorInfo& info = f.tensors()[i];
    EXPECT_EQ(info.name, s.name);
    EXPECT_EQ(info.type, s.type);
    EXPECT_EQ(info.n_dims, static_cast<int>(s.ne.size()));
    for (int d = 0; d < 4; ++d) {
      EXPECT_EQ(info.ne[d], d < static_cast<int>(s.ne.size()) ? s.ne[d] : 1);
    }
    EXPECT_EQ(info.offset % alignment, 0u);
    EXPECT_EQ(info.nbytes, data[i].size());

    const TensorView v = f.tensor(s.name);
    EXPECT_EQ(v.name, s.name);
    EXPECT_EQ(v.type, s.type);
    EXPECT_EQ(v.ne, info.ne);
    ASSERT_EQ(v.nbytes, data[i].size());
    EXPECT_EQ(std::memcmp(v.data, data[i].data(), v.nbytes), 0);
    // The mapping starts on a page boundary, so file alignment is memory alignment.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % alignment, 0u);
    EXPECT_EQ(v.nrows() * static_cast<int64_t>(v.row_bytes()), static_cast<int64_t>(v.nbytes));
  }
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  EXPECT_THROW(f.tensor("missing"), Error);
}

TEST(RoundTrip, EveryValueTypeAndTensorTypeDefaultAlignment) { check_round_trip(32); }
TEST(RoundTrip, EveryValueTypeAndTensorTypeAlignment64) { check_round_trip(64); }
TEST(RoundTrip, EveryValueTypeAndTensorTypeAlignment1) { check_round_trip(1); }

TEST(RoundTrip, TypedSettersReadBackThroughTypedGetters) {
  ScratchDir dir;
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 30);
  w.set_i32("x.neg", -5);
  w.set_f32("llama.rope.freq_base", 10000.5f);
  w.set_bool("x.flag", true);
  w.set_string_array("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.set_f32_array("tokenizer.ggml.scores", {0.f, -1.25f, 3.5f});
  w.set_i32_array("tokenizer.ggml.token_type", {3, 1, -1});
  w.write(dir.file("t.gguf"));

  const File f = File::open(dir.file("t.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f.get_i64("x.neg"), -5);
  EXPECT_EQ(f.get_f32("llama.rope.freq_base"), 10000.5f);
  EXPECT_TRUE(f.get_bool("x.flag"));
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"<s>", "a", "bc"}));
  EXPECT_EQ(f.get_f32_array("tokenizer.ggml.scores"), (std::vector<float>{0.f, -1.25f, 3.5f}));
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type"), (std::vector<int32_t>{3, 1, -1}));
  EXPECT_EQ(f.find("general.architecture")->type, ValueType::STRING);
  EXPECT_EQ(f.find("llama.block_count")->type, ValueType::U32);
  EXPECT_EQ(f.find("x.neg")->type, ValueType::I32);
  EXPECT_EQ(f.find("tokenizer.ggml.scores")->elem_type, ValueType::F32);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(RoundTrip, LongArraysAreKeptPackedAndReadThroughTheGetters) {
  ScratchDir dir;
  Writer w;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int k = 0; k < 5000; ++k) {
    tokens.push_back(k % 3 ? "tok" + std::to_string(k) : std::string(20 + k % 5, 'x'));
    scores.push_back(-0.5f * static_cast<float>(k));
    types.push_back(k % 6);
  }
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_i32_array("short", {1, 2});
  w.write(dir.file("t.gguf"));
  const File f = File::open(dir.file("t.gguf"));
  // Packed: no Value per element.
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->packed_count, 5000u);
  EXPECT_TRUE(f.find("tokenizer.ggml.tokens")->array.empty());
  EXPECT_EQ(f.find("tokenizer.ggml.scores")->size(), 5000u);
  EXPECT_EQ(f.find("short")->packed_count, 0u);
  EXPECT_EQ(f.find("short")->array.size(), 2u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), tokens);
  EXPECT_EQ(f.get_f32_array("tokenizer.ggml.scores"), scores);
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type"), types);
  const std::vector<Value> e = f.find("tokenizer.ggml.tokens")->elements();
  ASSERT_EQ(e.size(), 5000u);
  EXPECT_EQ(e[4999].s, tokens[4999]);
  EXPECT_EQ(e[4999].type, ValueType::STRING);
}

TEST(RoundTrip, CopyMetadataCopiesEveryKeyInOrder) {
  ScratchDir dir;
  Writer a;
  a.set_alignment(64);
  for (const auto& [k, v] : every_value_type()) a.set(k, v);
  a.write(dir.file("a.gguf"));
  const File src = File::open(dir.file("a.gguf"));

  Writer b;
  b.copy_metadata(src);
  b.set_u32("edgelm.extra", 1);
  const auto bytes = random_bytes(row_size(DType::Q8_0, 32), 9);
  b.add_tensor("x", DType::Q8_0, {32}, bytes.data(), bytes.size());
  b.write(dir.file("b.gguf"));
  const File copy = File::open(dir.file("b.gguf"));

  std::vector<std::string> expected = src.keys();
  expected.push_back("edgelm.extra");
  EXPECT_EQ(copy.keys(), expected);
  for (const std::string& k : src.keys()) EXPECT_TRUE(same_value(*copy.find(k), *src.find(k))) << k;
  EXPECT_EQ(copy.alignment(), 64u);  // the copied general.alignment governs the new file
  EXPECT_EQ(copy.tensors()[0].offset, 0u);
}

TEST(RoundTrip, ReadsVersion2Files) {
  // v2 and v3 differ only in v3's permission to be big-endian; the layout is the same.
  GgufBytes b;
  b.header(2, 1, 1).kv_string("general.architecture", "llama");
  b.tensor_info("w", {4}, 0, 0).pad_to(32);
  b.raw(std::string("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40", 16));
  ScratchDir dir;
  testing::write_file(dir.file("v2.gguf"), b.bytes());
  const File f = File::open(dir.file("v2.gguf"));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  const TensorView v = f.tensor("w");
  float x[4];
  std::memcpy(x, v.data, sizeof x);
  EXPECT_EQ(x[0], 1.f);
  EXPECT_EQ(x[3], 4.f);
}

TEST(RoundTrip, FileWithoutTensorsOrMetadata) {
  ScratchDir dir;
  Writer().write(dir.file("empty.gguf"));
  const File f = File::open(dir.file("empty.gguf"));
  EXPECT_TRUE(f.keys().empty());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.alignment(), 32u);
}

TEST(RoundTrip, MovedFileKeepsViewsValid) {
  ScratchDir dir;
  Writer w;
  const auto bytes = random_bytes(16, 3);
  w.add_tensor("w", DType::F32, {4}, bytes.data(), bytes.size());
  w.write(dir.file("m.gguf"));
  File a = File::open(dir.file("m.gguf"));
  const TensorView v = a.tensor("w");
  File b = std::move(a);
  EXPECT_EQ(b.tensor("w").data, v.data);
  EXPECT_EQ(std::memcmp(v.data, bytes.data(), bytes.size()), 0);
}

}  // namespace
}  // namespace edgelm::gguf
