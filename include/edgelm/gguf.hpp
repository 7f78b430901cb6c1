// GGUF v2/v3 reader (memory-mapped, validated before use) and writer (atomic).
//
//   auto f = edgelm::gguf::File::open("model.gguf");          // throws edgelm::Error if invalid
//   std::string arch = f.get_string("general.architecture");
//   uint32_t n_layer = f.get_u32(arch + ".block_count");
//   edgelm::TensorView w = f.tensor("blk.0.attn_q.weight");  // data points into the mmap
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/tensor.hpp"

namespace edgelm::gguf {

// On-disk metadata value type ids.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);

// One metadata value. Arrays hold elements of a single type (nested arrays are allowed by the
// format and kept as `array`). A file's long arrays of numbers or strings (a vocabulary's
// tokens, scores and types: 100k+ elements) are kept packed instead, as their bytes on disk
// (`packed`, `packed_count` elements, `array` empty): one Value per element would take ~90
// bytes each. elements() gives either kind as Values; the File getters read both.
struct Value {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // for ARRAY
  uint64_t u = 0;                       // unsigned integers and bool
  int64_t i = 0;                        // signed integers
  double f = 0;                         // F32/F64
  std::string s;                        // STRING
  std::vector<Value> array;             // ARRAY
  std::string packed;                   // ARRAY read from a file, packed: the elements' encoding
  uint64_t packed_count = 0;
  // Elements of an ARRAY (packed or not).
  uint64_t size() const { return packed_count > 0 ? packed_count : array.size(); }
  std::vector<Value> elements() const;
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  uint64_t offset = 0;  // relative to the start of the tensor data section
  size_t nbytes = 0;
};

class File {
 public:
  // Maps and validates the whole header: magic, version (2 or 3), counts, string and array
  // lengths, tensor dims (overflow-checked), types, alignment, and that every tensor's bytes lie
  // inside the file. Throws edgelm::Error naming the file and what is wrong.
  static File open(const std::string& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t file_size() const;

  // --- metadata ---
  bool has(std::string_view key) const;
  const Value* find(std::string_view key) const;           // nullptr if absent
  const std::vector<std::string>& keys() const;             // in file order
  // Typed getters: throw edgelm::Error for a missing key or a type that does not fit
  // ("metadata key 'x' has type string, expected an integer").
  std::string get_string(std::string_view key) const;
  uint32_t get_u32(std::string_view key) const;              // any integer type in range
  int64_t get_i64(std::string_view key) const;               // any integer type in range
  float get_f32(std::string_view key) const;                 // F32 or F64 (or integer)
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;  // any integer elements
  // Defaults for optional keys (still throw on a present key of the wrong type).
  std::string get_string_or(std::string_view key, std::string def) const;
  uint32_t get_u32_or(std::string_view key, uint32_t def) const;
  float get_f32_or(std::string_view key, float def) const;
  bool get_bool_or(std::string_view key, bool def) const;

  // --- tensors ---
  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent
  TensorView tensor(std::string_view name) const;              // throws if absent
  TensorView view(const TensorInfo& info) const;

  // Lets the operating system drop the file's pages from memory now (a caller that copied what
  // it needs, such as a training run's float32 weights); views stay valid and read the file again.
  void release_pages() const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF v3 file in memory order and writes it atomically (temporary file in the same
// directory, fsync, rename), so an interrupted write never leaves a partial file at `path`.
//
//   edgelm::gguf::Writer w;
//   w.copy_metadata(src);                  // everything from another file
//   w.set("general.file_type", edgelm::gguf::Value{...});
//   w.add_tensor("x.weight", edgelm::DType::F32, {4, 2}, bytes);
//   w.write("out.gguf");
class Writer {
 public:
  Writer();
  ~Writer();
  void set_alignment(uint64_t alignment);
  void set(std::string key, Value v);   // replaces an existing key, keeps insertion order
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, const std::vector<std::string>& v);
  void set_f32_array(std::string key, const std::vector<float>& v);
  void set_i32_array(std::string key, const std::vector<int32_t>& v);
  void remove(std::string_view key);
  void copy_metadata(const File& src);
  // `data` must hold exactly row_size(type, ne[0]) * rows bytes; it is copied.
  void add_tensor(std::string name, DType type, const std::vector<int64_t>& ne,
                  const void* data, size_t nbytes);
  // The same, without a copy: `data` must stay valid and unchanged until write() returns.
  void add_tensor_ref(std::string name, DType type, const std::vector<int64_t>& ne,
                      const void* data, size_t nbytes);
  void write(const std::string& path) const;

 private:
  void add(std::string name, DType type, const std::vector<int64_t>& ne, const void* data,
           size_t nbytes, bool copy);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes any file the way Writer::write does (temporary file in the same directory, fsync,
// rename): `path` keeps its old content or gets all of `data`. Throws edgelm::Error naming
// `path` on failure.
void write_file_atomically(const std::string& path, const void* data, size_t nbytes);

}  // namespace edgelm::gguf
