// Tensor element types (GGML/GGUF type ids and block layouts) and a read-only tensor view.
//
//   const auto& t = edgelm::dtype_traits(edgelm::DType::Q4_1);   // 32 elements in 20 bytes
//   size_t bytes = edgelm::row_size(edgelm::DType::Q4_1, 576);  // 18 blocks -> 360 bytes
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgelm {

// Values are the GGUF on-disk type ids, so a DType can be read straight from a file header.
enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct DTypeTraits {
  std::string_view name;  // "Q4_1", as GGUF tools print it
  int64_t block_size;     // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
  bool quantized;
};

// Traits of a type id read from a file; nullopt for ids whose layout edgelm does not know.
std::optional<DType> dtype_from_id(uint32_t id);
const DTypeTraits& dtype_traits(DType t);
inline std::string_view dtype_name(DType t) { return dtype_traits(t).name; }
// Parses "q4_1", "Q8_0", "f16" ...; nullopt if unknown.
std::optional<DType> dtype_from_name(std::string_view name);
// Bytes taken by n consecutive elements; throws edgelm::Error if n is not a multiple of the
// block size.
size_t row_size(DType t, int64_t n);

// A view of tensor data that lives elsewhere (usually the model's memory map).
// Dimensions follow GGUF: ne[0] is the innermost (contiguous) one, so a weight matrix that maps
// n_in inputs to n_out outputs has ne = {n_in, n_out} and each output row is contiguous.
struct TensorView {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t nrows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return row_size(type, ne[0]); }
  const std::byte* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

}  // namespace edgelm
