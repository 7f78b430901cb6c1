// Block layouts of the GGML tensor types, keyed by their GGUF type id.
#include <algorithm>
#include <cctype>
#include <limits>
#include <string>

#include "edgelm/error.hpp"
#include "edgelm/tensor.hpp"

namespace edgelm {
namespace {

struct DTypeEntry {
  DType type;
  DTypeTraits traits;
};

// Byte counts follow ggml's block structs (scales are fp16 unless noted):
//   Q4_0 d + 16 nibble bytes; Q4_1 d, m + 16; Q5_0 d + 4 high-bit bytes + 16; Q5_1 d, m + 4 + 16;
//   Q8_0 d + 32; Q8_1 d, s + 32; Q2_K 16 scales + 64 + d, dmin; Q3_K 32 hmask + 64 + 12 + d;
//   Q4_K d, dmin + 12 + 128; Q5_K d, dmin + 12 + 32 + 128; Q6_K 128 + 64 + 16 + d;
//   Q8_K f32 d + 256 + 16 int16 block sums.
constexpr DTypeEntry kTypes[] = {
    {DType::F32, {"F32", 1, 4, false}},
    {DType::F16, {"F16", 1, 2, false}},
    {DType::Q4_0, {"Q4_0", 32, 18, true}},
    {DType::Q4_1, {"Q4_1", 32, 20, true}},
    {DType::Q5_0, {"Q5_0", 32, 22, true}},
    {DType::Q5_1, {"Q5_1", 32, 24, true}},
    {DType::Q8_0, {"Q8_0", 32, 34, true}},
    {DType::Q8_1, {"Q8_1", 32, 36, true}},
    {DType::Q2_K, {"Q2_K", 256, 84, true}},
    {DType::Q3_K, {"Q3_K", 256, 110, true}},
    {DType::Q4_K, {"Q4_K", 256, 144, true}},
    {DType::Q5_K, {"Q5_K", 256, 176, true}},
    {DType::Q6_K, {"Q6_K", 256, 210, true}},
    {DType::Q8_K, {"Q8_K", 256, 292, true}},
    {DType::I8, {"I8", 1, 1, false}},
    {DType::I16, {"I16", 1, 2, false}},
    {DType::I32, {"I32", 1, 4, false}},
    {DType::I64, {"I64", 1, 8, false}},
    {DType::F64, {"F64", 1, 8, false}},
    {DType::BF16, {"BF16", 1, 2, false}},
};

const DTypeEntry* find_entry(uint32_t id) {
  for (const auto& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == id) return &e;
  }
  return nullptr;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<DType> dtype_from_id(uint32_t id) {
  if (const DTypeEntry* e = find_entry(id)) return e->type;
  return std::nullopt;
}

const DTypeTraits& dtype_traits(DType t) {
  // A DType can only hold an unknown id if someone cast it from a raw integer; that is a
  // programming error on the caller's side, but it must not become out-of-bounds access.
  if (const DTypeEntry* e = find_entry(static_cast<uint32_t>(t))) return e->traits;
  throw Error("unknown tensor type id " + std::to_string(static_cast<uint32_t>(t)),
              "this tensor type is unsupported by edgelm");
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kTypes) {
    if (equals_ignoring_case(name, e.traits.name)) return e.type;
  }
  return std::nullopt;
}

size_t row_size(DType t, int64_t n) {
  const DTypeTraits& tr = dtype_traits(t);
  if (n < 0) {
    throw Error("negative element count " + std::to_string(n) + " for a " +
                std::string(tr.name) + " row");
  }
  if (n % tr.block_size != 0) {
    throw Error("a " + std::string(tr.name) + " row of " + std::to_string(n) +
                    " elements is not a multiple of the block size " +
                    std::to_string(tr.block_size),
                "use a row length that is a multiple of " + std::to_string(tr.block_size) +
                    " or a type with smaller blocks");
  }
  const uint64_t blocks = static_cast<uint64_t>(n / tr.block_size);
  if (blocks > std::numeric_limits<size_t>::max() / tr.block_bytes) {
    throw Error("a " + std::string(tr.name) + " row of " + std::to_string(n) +
                " elements is too large to address");
  }
  return static_cast<size_t>(blocks) * tr.block_bytes;
}

}  // namespace edgelm
