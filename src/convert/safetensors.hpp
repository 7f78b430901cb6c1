// Reader of the safetensors format: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the data. Everything in the header
// is checked before a tensor is used: the header's size, that each entry is well formed, that the
// dtype is known, that shape x dtype size equals the byte range, and that the ranges lie inside
// the file without overlapping.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/tensor.hpp"
#include "gguf/mapped_file.hpp"

namespace edgelm::convert {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written: "F32", "BF16", ...
  std::vector<int64_t> shape;   // row-major, outermost first (PyTorch order)
  const std::byte* data = nullptr;
  uint64_t nbytes = 0;
  int64_t numel() const;
  // DType::F32/F16/BF16; throws edgelm::Error naming the tensor for any other dtype.
  DType float_type(const std::string& file) const;
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);  // throws edgelm::Error if invalid
  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<gguf::MappedFile> map_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a checkpoint directory: model.safetensors.index.json's shards when it exists,
// otherwise every *.safetensors file. A name in two files, or an index that names a missing file
// or a tensor its shard lacks, is an error.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir);
  const SafetensorsTensor* find(const std::string& name) const;
  const std::vector<const SafetensorsTensor*>& tensors() const { return order_; }  // sorted by name
  const std::string& file_of(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<const SafetensorsTensor*, size_t>> by_name_;
  std::vector<const SafetensorsTensor*> order_;
};

// Largest JSON header accepted (the format's own readers cap it at 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

// Writes one safetensors file (atomically) from named F32 tensors.
struct SafetensorsOut {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};
void write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors);

}  // namespace edgelm::convert
