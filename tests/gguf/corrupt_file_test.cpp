// Hand-made broken files: each must be refused with a one-line edgelm::Error that names the file
// and the problem — never a crash, an abort or a giant allocation.
#include <gtest/gtest.h>

#include <random>

#include "gguf/gguf_test_support.hpp"

namespace edgelm::gguf {
namespace {

using testing::GgufBytes;
using testing::ScratchDir;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_1 = 3;
constexpr uint64_t kHuge = ~uint64_t{0};

class CorruptFile : public ::testing::Test {
 protected:
  // Writes `bytes`, opens them, and checks the error names the file, contains every fragment
  // of `expected`, and fits on one line.
  void expect_rejected(const std::string& bytes, std::initializer_list<std::string> expected) {
    const std::string path = dir_.file("bad.gguf");
    testing::write_file(path, bytes);
    const std::string message = testing::open_error(path);
    ASSERT_FALSE(message.empty()) << "the file was accepted";
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const std::string& fragment : expected) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "'" << fragment << "' not in: " << message;
    }
  }

  void expect_accepted(const std::string& bytes) {
    const std::string path = dir_.file("good.gguf");
    testing::write_file(path, bytes);
    EXPECT_EQ(testing::open_error(path), "");
  }

  // A one-tensor file: `ne` elements of `type` at data offset `offset`, with `data_bytes` of
  // tensor data after the aligned header.
  static std::string one_tensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset,
                                size_t data_bytes) {
    GgufBytes b;
    b.header(3, 1, 0).tensor_info("w", ne, type, offset).pad_to(32).zeros(data_bytes);
    return b.bytes();
  }

  ScratchDir dir_;
};

TEST_F(CorruptFile, ValidBaselinesAreAccepted) {
  // The broken files below are small edits of these, so the edit is what gets rejected.
  expect_accepted(one_tensor({4, 2}, kF32, 0, 32));
  expect_accepted(one_tensor({64}, kQ4_1, 0, 40));
  GgufBytes b;
  b.header(3, 0, 1).kv_u32("general.alignment", 64);
  expect_accepted(b.bytes());
}

TEST_F(CorruptFile, MissingFile) {
  const std::string path = dir_.file("absent.gguf");
  const std::string m = testing::open_error(path);
  EXPECT_NE(m.find(path + ": cannot open"), std::string::npos) << m;
  EXPECT_NE(m.find("No such file"), std::string::npos) << m;
  EXPECT_NE(m.find("fetch-models"), std::string::npos) << m;
}

TEST_F(CorruptFile, DirectoryAndEmptyFile) {
  const std::string m = testing::open_error(dir_.path().string());
  EXPECT_NE(m.find("not a regular file"), std::string::npos) << m;
  expect_rejected("", {"empty"});
}

TEST_F(CorruptFile, BadMagic) {
  GgufBytes b;
  b.raw("GGUX").u32(3).u64(0).u64(0);
  expect_rejected(b.bytes(), {"not a GGUF file", "GGUX"});
  expect_rejected(std::string("\x7f" "ELF\x02\x01\x01\x00", 8), {"not a GGUF file", "\\x7fELF"});
  expect_rejected("tjgg\x01\x00\x00\x00", {"legacy GGML"});
}

TEST_F(CorruptFile, UnsupportedVersions) {
  GgufBytes v1;
  v1.header(1, 0, 0);
  expect_rejected(v1.bytes(), {"version 1 is no longer supported", "re-convert"});
  GgufBytes v99;
  v99.header(99, 0, 0);
  expect_rejected(v99.bytes(), {"unsupported GGUF version 99"});
  GgufBytes big_endian;
  big_endian.header(0x03000000, 0, 0);
  expect_rejected(big_endian.bytes(), {"big-endian"});
}

TEST_F(CorruptFile, EveryTruncationIsRejected) {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_string_array("tokenizer.ggml.tokens", {"<s>", "</s>", "hello"});
  w.set_f32_array("tokenizer.ggml.scores", {0.f, 1.f, 2.f});
  Value nested;
  nested.type = ValueType::ARRAY;
  nested.elem_type = ValueType::ARRAY;
  nested.array.resize(1);
  nested.array[0].type = ValueType::ARRAY;
  nested.array[0].elem_type = ValueType::BOOL;
  nested.array[0].array.resize(2);
  for (auto& e : nested.array[0].array) e.type = ValueType::BOOL;
  w.set("x.nested", nested);
  w.set_bool("x.flag", true);
  // Tensor sizes are multiples of 32, so the last tensor ends exactly at the end of the file and
  // every shorter prefix lacks bytes some part of the file needs.
  std::vector<std::byte> data(64, std::byte{1});
  w.add_tensor("a.weight", DType::Q4_1, {32}, data.data(), 20);
  w.add_tensor("b.weight", DType::F32, {8}, data.data(), 32);
  w.add_tensor("c.weight", DType::F16, {16, 2}, data.data(), 64);
  const std::string path = dir_.file("full.gguf");
  w.write(path);
  const std::string full = testing::read_file(path);
  {
    // No trailing padding after the last tensor, or a prefix ending inside it would be valid.
    const File f = File::open(path);
    const TensorInfo& last = f.tensors().back();
    ASSERT_EQ((last.offset + last.nbytes) % 32, 0u);
    ASSERT_EQ(f.file_size(), full.size());
  }
  const std::string cut = dir_.file("cut.gguf");
  for (size_t len = 0; len < full.size(); ++len) {
    testing::write_file(cut, std::string_view(full).substr(0, len));
    const std::string m = testing::open_error(cut);
    ASSERT_FALSE(m.empty()) << "prefix of " << len << " bytes accepted";
    ASSERT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST_F(CorruptFile, TruncationMessageSaysWhereAndWhatToDo) {
  GgufBytes kv;
  kv.header(3, 0, 1).str("general.name").u32(static_cast<uint32_t>(ValueType::U64)).u32(7);
  expect_rejected(kv.bytes(), {"truncated at byte " + std::to_string(kv.size()),
                               "while reading metadata entry 0 ('general.name')",
                               "the file is incomplete; download it again"});
  GgufBytes tensor;
  const std::string name(30, 'w');  // long enough to pass the tensor-count plausibility check
  tensor.header(3, 1, 0).str(name).u32(1);  // ends where the first dimension should be
  expect_rejected(tensor.bytes(), {"truncated at byte " + std::to_string(tensor.size()),
                                   "while reading tensor info 0 ('" + name + "')"});
}

TEST_F(CorruptFile, HugeCounts) {
  GgufBytes tensors;
  tensors.header(3, kHuge, 0);
  expect_rejected(tensors.bytes(), {"18446744073709551615 tensors"});
  GgufBytes kvs;
  kvs.header(3, 0, uint64_t{1} << 62);
  expect_rejected(kvs.bytes(), {"metadata entries"});
  // Below the caps, but more than a 40-byte file could hold.
  GgufBytes plausible;
  plausible.header(3, 1000, 1000).zeros(16);
  expect_rejected(plausible.bytes(), {"1000 tensors and 1000 metadata entries", "file can hold"});
}

TEST_F(CorruptFile, HugeStringLengths) {
  GgufBytes key;
  key.header(3, 0, 1).u64(kHuge).raw("general.name");
  expect_rejected(key.bytes(), {"metadata key", "18446744073709551615"});
  GgufBytes value;
  value.header(3, 0, 1).str("general.name").u32(static_cast<uint32_t>(ValueType::STRING));
  value.u64(uint64_t{1} << 40).raw("abc").zeros(16);
  expect_rejected(value.bytes(), {"1099511627776 bytes", "remain"});
  GgufBytes name;
  name.header(3, 1, 0).u64(kHuge - 7).raw("w").zeros(64);
  expect_rejected(name.bytes(), {"tensor name"});
}

TEST_F(CorruptFile, HugeArrayLengths) {
  GgufBytes u8s;
  u8s.header(3, 0, 1).str("a").u32(static_cast<uint32_t>(ValueType::ARRAY));
  u8s.u32(static_cast<uint32_t>(ValueType::U8)).u64(uint64_t{1} << 62).zeros(64);
  expect_rejected(u8s.bytes(), {"4611686018427387904 u8 elements"});
  GgufBytes strings;
  strings.header(3, 0, 1).str("a").u32(static_cast<uint32_t>(ValueType::ARRAY));
  strings.u32(static_cast<uint32_t>(ValueType::STRING)).u64(20).zeros(100);  // 20 strings need 160
  expect_rejected(strings.bytes(), {"20 string elements"});
}

TEST_F(CorruptFile, ArrayElementsInTotalAreCapped) {
  // Each element fits in the file, but 5M of them would cost ~450 MB as in-memory Values.
  const uint64_t count = 5'000'000;
  GgufBytes b;
  b.header(3, 0, 1).str("a").u32(static_cast<uint32_t>(ValueType::ARRAY));
  b.u32(static_cast<uint32_t>(ValueType::U8)).u64(count).zeros(count);
  expect_rejected(b.bytes(), {"elements in total"});
}

std::string nested_arrays(int levels) {
  GgufBytes b;
  b.header(3, 0, 1).str("deep").u32(static_cast<uint32_t>(ValueType::ARRAY));
  for (int l = 1; l < levels; ++l) b.u32(static_cast<uint32_t>(ValueType::ARRAY)).u64(1);
  b.u32(static_cast<uint32_t>(ValueType::U8)).u64(1).u8(5);
  return b.bytes();
}

TEST_F(CorruptFile, NestedArrayDepthIsCapped) {
  expect_accepted(nested_arrays(8));
  expect_rejected(nested_arrays(9), {"nested more than 8 levels"});
  expect_rejected(nested_arrays(100000), {"nested"});  // would overflow the stack if uncapped
}

TEST_F(CorruptFile, UnknownValueTypes) {
  GgufBytes b;
  b.header(3, 0, 1).str("k").u32(13).u32(0);
  expect_rejected(b.bytes(), {"unknown metadata value type 13", "'k'"});
  GgufBytes arr;
  arr.header(3, 0, 1).str("k").u32(static_cast<uint32_t>(ValueType::ARRAY)).u32(0xdeadbeef).u64(0);
  expect_rejected(arr.bytes(), {"unknown metadata value type 3735928559"});
}

TEST_F(CorruptFile, BadBool) {
  GgufBytes b;
  b.header(3, 0, 1).str("k").u32(static_cast<uint32_t>(ValueType::BOOL)).u8(2);
  expect_rejected(b.bytes(), {"bool value 2"});
}

TEST_F(CorruptFile, DuplicateKey) {
  GgufBytes b;
  b.header(3, 0, 2).kv_u32("llama.block_count", 30).kv_u32("llama.block_count", 31);
  expect_rejected(b.bytes(), {"duplicate metadata key 'llama.block_count'"});
}

TEST_F(CorruptFile, EmptyAndOverlongNames) {
  GgufBytes key;
  key.header(3, 0, 1).kv_u32("", 1);
  expect_rejected(key.bytes(), {"empty key"});
  GgufBytes long_key;
  long_key.header(3, 0, 1).kv_u32(std::string(65536, 'k'), 1);
  expect_rejected(long_key.bytes(), {"65536 bytes long"});
  GgufBytes empty_name;
  empty_name.header(3, 1, 0).tensor_info("", {4}, kF32, 0).pad_to(32).zeros(32);
  expect_rejected(empty_name.bytes(), {"empty name"});
  GgufBytes long_name;
  long_name.header(3, 1, 0).tensor_info(std::string(65, 't'), {4}, kF32, 0).pad_to(32).zeros(32);
  expect_rejected(long_name.bytes(), {"65 bytes long"});
  GgufBytes ok_name;  // the spec's limit is 64 bytes
  ok_name.header(3, 1, 0).tensor_info(std::string(64, 't'), {4}, kF32, 0).pad_to(32).zeros(32);
  expect_accepted(ok_name.bytes());
}

TEST_F(CorruptFile, DuplicateTensorName) {
  GgufBytes b;
  b.header(3, 2, 0).tensor_info("w", {8}, kF32, 0).tensor_info("w", {8}, kF32, 32);
  b.pad_to(32).zeros(64);
  expect_rejected(b.bytes(), {"duplicate tensor 'w'"});
}

TEST_F(CorruptFile, DimensionCounts) {
  expect_rejected(one_tensor({}, kF32, 0, 32), {"tensor 'w' has 0 dimensions"});
  expect_rejected(one_tensor({1, 1, 1, 1, 1}, kF32, 0, 32), {"tensor 'w' has 5 dimensions"});
  GgufBytes huge;
  huge.header(3, 1, 0).str("w").u32(0xffffffff).zeros(64);
  expect_rejected(huge.bytes(), {"4294967295 dimensions"});
}

TEST_F(CorruptFile, BadDimensions) {
  expect_rejected(one_tensor({4, 0}, kF32, 0, 32), {"invalid size 0 in dimension 1"});
  expect_rejected(one_tensor({kHuge}, kF32, 0, 32), {"invalid size 18446744073709551615"});
  const uint64_t big = uint64_t{1} << 32;
  expect_rejected(one_tensor({big, big, big}, kF32, 0, 32), {"too large"});  // 2^96 elements
  // 2^62 elements fit in int64 but 2^64 bytes do not.
  expect_rejected(one_tensor({uint64_t{1} << 31, uint64_t{1} << 31}, kF32, 0, 32), {"too large"});
}

TEST_F(CorruptFile, UnknownTensorType) {
  expect_rejected(one_tensor({256}, 16, 0, 96), {"IQ2_XXS", "id 16", "unsupported"});
  expect_rejected(one_tensor({32}, 1000, 0, 32), {"type (id 1000)", "unsupported"});
}

TEST_F(CorruptFile, RowsMustHoldWholeBlocks) {
  expect_rejected(one_tensor({33}, kQ4_1, 0, 64), {"33 elements", "Q4_1 block size 32"});
}

TEST_F(CorruptFile, TensorDataOutsideTheFile) {
  expect_rejected(one_tensor({8}, kF32, 0, 31), {"extends past the end"});
  expect_rejected(one_tensor({8}, kF32, 32, 32), {"extends past the end"});
  expect_rejected(one_tensor({8}, kF32, kHuge - 31, 32), {"extends past the end"});  // no wrap
}

TEST_F(CorruptFile, MisalignedOffset) {
  expect_rejected(one_tensor({1}, kF32, 4, 64), {"offset 4", "alignment 32"});
}

TEST_F(CorruptFile, BadAlignmentValues) {
  for (uint32_t alignment : {0u, 48u, 3u}) {
    GgufBytes b;
    b.header(3, 0, 1).kv_u32("general.alignment", alignment);
    expect_rejected(b.bytes(), {"general.alignment is " + std::to_string(alignment)});
  }
  GgufBytes text;
  text.header(3, 0, 1).kv_string("general.alignment", "32");
  expect_rejected(text.bytes(), {"'general.alignment' has type string"});
  // A valid but larger alignment makes an otherwise fine offset misaligned.
  GgufBytes b;
  b.header(3, 1, 1).kv_u32("general.alignment", 64).tensor_info("w", {8}, kF32, 32);
  b.pad_to(64).zeros(96);
  expect_rejected(b.bytes(), {"offset 32", "alignment 64"});
}

TEST_F(CorruptFile, OverlappingTensors) {
  GgufBytes b;
  b.header(3, 2, 0).tensor_info("a", {16}, kF32, 0).tensor_info("b", {8}, kF32, 32);
  b.pad_to(32).zeros(64);
  expect_rejected(b.bytes(), {"'a' and 'b' overlap"});
}

TEST_F(CorruptFile, HostileNamesStayOnOneLine) {
  GgufBytes b;
  b.header(3, 0, 2).kv_u32("bad\nkey\x01", 1).kv_u32("bad\nkey\x01", 2);
  expect_rejected(b.bytes(), {"bad\\x0akey\\x01"});
}

TEST_F(CorruptFile, RandomByteFlipsNeverCrash) {
  // Not a fuzzer, but under ASan/UBSan it catches any read the validation forgot to guard.
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
  w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 3, 3});
  std::vector<std::byte> data(256);
  w.add_tensor("a", DType::Q8_0, {64}, data.data(), 68);
  w.add_tensor("b", DType::F32, {4, 2}, data.data(), 32);
  const std::string path = dir_.file("seed.gguf");
  w.write(path);
  const std::string seed = testing::read_file(path);

  constexpr int kIterations = 600;
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iter = 0; iter < kIterations; ++iter) {
    std::string bytes = seed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    }
    testing::write_file(path, bytes);
    try {
      const File f = File::open(path);
      ++accepted;
      // Touch every byte the reader vouched for.
      unsigned sum = 0;
      for (const TensorInfo& t : f.tensors()) {
        const TensorView v = f.view(t);
        for (size_t i = 0; i < v.nbytes; ++i) sum += static_cast<unsigned>(v.data[i]);
      }
      for (const std::string& k : f.keys()) sum += static_cast<unsigned>(f.find(k)->type);
      (void)sum;
    } catch (const Error& e) {
      ASSERT_EQ(e.message().find('\n'), std::string::npos) << e.message();
    }
  }
  EXPECT_LT(accepted, kIterations);  // most flips land in the header and must be caught
}

}  // namespace
}  // namespace edgelm::gguf
