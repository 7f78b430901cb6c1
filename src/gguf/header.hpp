// The parsed and validated header of a GGUF file: metadata, tensor infos, data section start.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "edgelm/gguf.hpp"

namespace edgelm::gguf {

struct Header {
  uint32_t version = 0;
  uint64_t alignment = 0;
  uint64_t data_offset = 0;  // absolute file offset where the tensor data section starts
  std::vector<std::string> keys;  // file order
  std::vector<Value> values;      // parallel to keys
  std::map<std::string, size_t, std::less<>> key_index;
  std::vector<TensorInfo> tensors;  // file order
  std::map<std::string, size_t, std::less<>> tensor_index;
};

// Parses `bytes` (the whole file) and checks every count, length, type, dimension and offset
// before anything is allocated or used. Throws edgelm::Error whose message starts with `path`.
Header parse_header(const std::string& path, const std::byte* bytes, uint64_t size);

}  // namespace edgelm::gguf
