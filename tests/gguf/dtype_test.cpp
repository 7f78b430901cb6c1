// Tensor type ids and block layouts must match ggml's exactly, or every offset in a file is off.
#include <gtest/gtest.h>

#include "edgelm/error.hpp"
#include "edgelm/tensor.hpp"

namespace edgelm {
namespace {

struct Layout {
  DType type;
  uint32_t id;
  const char* name;
  int64_t block_size;
  size_t block_bytes;
  bool quantized;
};

// Expected values written out from the GGUF / ggml documentation, independent of dtype.cpp.
constexpr Layout kLayouts[] = {
    {DType::F32, 0, "F32", 1, 4, false},        {DType::F16, 1, "F16", 1, 2, false},
    {DType::Q4_0, 2, "Q4_0", 32, 18, true},     {DType::Q4_1, 3, "Q4_1", 32, 20, true},
    {DType::Q5_0, 6, "Q5_0", 32, 22, true},     {DType::Q5_1, 7, "Q5_1", 32, 24, true},
    {DType::Q8_0, 8, "Q8_0", 32, 34, true},     {DType::Q8_1, 9, "Q8_1", 32, 36, true},
    {DType::Q2_K, 10, "Q2_K", 256, 84, true},   {DType::Q3_K, 11, "Q3_K", 256, 110, true},
    {DType::Q4_K, 12, "Q4_K", 256, 144, true},  {DType::Q5_K, 13, "Q5_K", 256, 176, true},
    {DType::Q6_K, 14, "Q6_K", 256, 210, true},  {DType::Q8_K, 15, "Q8_K", 256, 292, true},
    {DType::I8, 24, "I8", 1, 1, false},         {DType::I16, 25, "I16", 1, 2, false},
    {DType::I32, 26, "I32", 1, 4, false},       {DType::I64, 27, "I64", 1, 8, false},
    {DType::F64, 28, "F64", 1, 8, false},       {DType::BF16, 30, "BF16", 1, 2, false},
};

TEST(DType, TraitsMatchGgmlLayouts) {
  for (const Layout& l : kLayouts) {
    SCOPED_TRACE(l.name);
    ASSERT_EQ(dtype_from_id(l.id), l.type);
    const DTypeTraits& t = dtype_traits(l.type);
    EXPECT_EQ(t.name, l.name);
    EXPECT_EQ(dtype_name(l.type), l.name);
    EXPECT_EQ(t.block_size, l.block_size);
    EXPECT_EQ(t.block_bytes, l.block_bytes);
    EXPECT_EQ(t.quantized, l.quantized);
  }
}

TEST(DType, UnknownIdsHaveNoType) {
  // 4/5 are removed Q4_2/Q4_3, 16..23 and 29 are IQ types, 34/35 ternary, 39 MXFP4.
  for (uint32_t id : {4u, 5u, 16u, 23u, 29u, 31u, 34u, 35u, 39u, 40u, 1000u, 0xffffffffu}) {
    EXPECT_FALSE(dtype_from_id(id).has_value()) << id;
  }
  EXPECT_THROW(dtype_traits(static_cast<DType>(16)), Error);
}

TEST(DType, FromNameIgnoresCase) {
  EXPECT_EQ(dtype_from_name("q4_1"), DType::Q4_1);
  EXPECT_EQ(dtype_from_name("Q8_0"), DType::Q8_0);
  EXPECT_EQ(dtype_from_name("f16"), DType::F16);
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("q6_k"), DType::Q6_K);
  EXPECT_FALSE(dtype_from_name("q4").has_value());
  EXPECT_FALSE(dtype_from_name("").has_value());
  EXPECT_FALSE(dtype_from_name("q4_1 ").has_value());
}

TEST(DType, RowSize) {
  EXPECT_EQ(row_size(DType::Q4_1, 576), 18u * 20u);
  EXPECT_EQ(row_size(DType::Q8_0, 576), 18u * 34u);
  EXPECT_EQ(row_size(DType::Q4_K, 1536), 6u * 144u);
  EXPECT_EQ(row_size(DType::F32, 7), 28u);
  EXPECT_EQ(row_size(DType::BF16, 3), 6u);
  EXPECT_EQ(row_size(DType::Q8_0, 0), 0u);
}

TEST(DType, RowSizeRejectsPartialBlocksAndNegativeCounts) {
  EXPECT_THROW(row_size(DType::Q4_1, 33), Error);
  EXPECT_THROW(row_size(DType::Q6_K, 128), Error);
  EXPECT_THROW(row_size(DType::F32, -1), Error);
  EXPECT_THROW(row_size(DType::F64, INT64_MAX), Error);  // 8 * (2^63 - 1) bytes cannot exist
  try {
    row_size(DType::Q4_1, 33);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block size 32"), std::string::npos) << e.what();
  }
}

TEST(TensorView, RowsAreContiguousBlocks) {
  std::byte storage[3 * 40] = {};
  TensorView v;
  v.type = DType::Q4_1;
  v.n_dims = 2;
  v.ne = {64, 3, 1, 1};
  v.data = storage;
  v.nbytes = sizeof storage;
  EXPECT_EQ(v.nelements(), 192);
  EXPECT_EQ(v.nrows(), 3);
  EXPECT_EQ(v.row_bytes(), 40u);
  EXPECT_EQ(v.row(2), storage + 80);
}

}  // namespace
}  // namespace edgelm
