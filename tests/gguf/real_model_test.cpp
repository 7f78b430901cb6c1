// The default model (SmolLM2-135M-Instruct, Q4_1, written by llama.cpp's converter): facts about
// it checked against what gguf-py reports for the same file. A missing model fails (scripts/test.sh
// fetches it).
#include <gtest/gtest.h>

#include <set>

#include "gguf/gguf_test_support.hpp"

namespace edgelm::gguf {
namespace {

class RealModel : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
  }
  void SetUp() override {  // opened once, by the first test; a missing model fails every test
    if (file_ != nullptr) return;
    const std::string path = testing::real_model_path();
    ASSERT_FALSE(path.empty());
    file_ = new File(File::open(path));
  }
  static const File& f() { return *file_; }
  static File* file_;
};

File* RealModel::file_ = nullptr;

TEST_F(RealModel, Header) {
  EXPECT_EQ(f().version(), 3u);
  EXPECT_EQ(f().alignment(), 32u);
  EXPECT_EQ(f().tensors().size(), 272u);
  EXPECT_EQ(f().keys().size(), 33u);
  EXPECT_EQ(f().keys().front(), "general.architecture");
  EXPECT_EQ(f().keys().back(), "general.quantization_version");
  EXPECT_EQ(f().get_string("general.architecture"), "llama");
  EXPECT_EQ(f().get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f().get_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f().get_u32("llama.attention.head_count"), 9u);
  EXPECT_EQ(f().get_u32("llama.attention.head_count_kv"), 3u);
}

TEST_F(RealModel, Tokenizer) {
  const auto tokens = f().get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(f().get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f().get_i32_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f().find("tokenizer.ggml.tokens")->elem_type, ValueType::STRING);
  EXPECT_EQ(f().get_string_array("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(f().get_u32("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_FALSE(f().get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f().get_f32("llama.rope.freq_base"), 100000.f);
  EXPECT_NE(f().get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);
}

TEST_F(RealModel, TokenEmbedding) {
  const TensorInfo* info = f().find_tensor("token_embd.weight");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->type, DType::Q8_0);
  EXPECT_EQ(info->n_dims, 2);
  EXPECT_EQ(info->ne[0], 576);
  EXPECT_EQ(info->ne[1], 49152);
  EXPECT_EQ(info->nbytes, 49152u * 18u * 34u);
  const TensorView v = f().tensor("token_embd.weight");
  EXPECT_EQ(v.nbytes, info->nbytes);
  EXPECT_EQ(v.row_bytes(), 18u * 34u);
}

TEST_F(RealModel, EveryTensorIsAlignedInsideTheFileAndDistinct) {
  std::set<std::string> names;
  const std::byte* lowest = nullptr;
  const std::byte* highest_end = nullptr;
  size_t total = 0;
  for (const TensorInfo& t : f().tensors()) {
    names.insert(t.name);
    const TensorView v = f().view(t);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 32, 0u) << t.name;
    EXPECT_EQ(v.nrows() * static_cast<int64_t>(v.row_bytes()), static_cast<int64_t>(t.nbytes));
    if (lowest == nullptr || v.data < lowest) lowest = v.data;
    if (highest_end == nullptr || v.data + v.nbytes > highest_end) highest_end = v.data + v.nbytes;
    total += t.nbytes;
  }
  EXPECT_EQ(names.size(), f().tensors().size());
  // Tensors are packed: the data section is their sizes plus at most 31 padding bytes each.
  EXPECT_LE(static_cast<size_t>(highest_end - lowest), total + 31 * f().tensors().size());
  EXPECT_LE(static_cast<uint64_t>(highest_end - lowest), f().file_size());
  EXPECT_EQ(f().find_tensor("blk.29.ffn_down.weight")->type, DType::Q4_1);
  EXPECT_EQ(f().find_tensor("output_norm.weight")->type, DType::F32);
}

TEST_F(RealModel, RewritingTheModelReproducesItExactly) {
  // The writer follows the same layout rules as llama.cpp's writer, so copying every key and
  // tensor in order gives back the identical file.
  testing::ScratchDir dir;
  Writer w;
  w.copy_metadata(f());
  for (const TensorInfo& t : f().tensors()) {
    const TensorView v = f().view(t);
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                 v.data, v.nbytes);
  }
  const std::string out = dir.file("copy.gguf");
  w.write(out);
  EXPECT_EQ(testing::read_file(out), testing::read_file(f().path()));
}

}  // namespace
}  // namespace edgelm::gguf
