// GGUF v2/v3 header parsing. Every number read from the file is treated as hostile until it has
// been checked against the bytes that remain, so a corrupt file ends in edgelm::Error, never in
// an out-of-bounds read or a giant allocation.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>

#include "edgelm/error.hpp"
#include "gguf/header.hpp"
#include "gguf/limits.hpp"
#include "gguf/printable.hpp"
#include "gguf/value_types.hpp"

// The format is little-endian and tensor data is used in place, so a big-endian host could not
// use the weights even if the header were byte-swapped.
static_assert(std::endian::native == std::endian::little,
              "edgelm reads GGUF on little-endian hosts");

namespace edgelm::gguf {
namespace {

constexpr std::string_view kTruncatedHint = "the file is incomplete; download it again";
constexpr std::string_view kCorruptHint =
    "the file is corrupt or was not written by a GGUF tool; download or convert it again";
constexpr std::string_view kReconvertHint =
    "re-convert the model with a current llama.cpp converter (convert_hf_to_gguf.py)";

// Smallest encodings, used to reject counts the file could not possibly hold: a key is a
// non-empty string (8-byte length + 1 byte), a value type (4) and at least one value byte; a
// tensor info is a non-empty name (9), n_dims (4), one dimension (8), a type (4), an offset (8).
constexpr uint64_t kMinMetadataEntryBytes = 9 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 9 + 4 + 8 + 4 + 8;
// Arrays of numbers or strings this long are kept packed (Value::packed).
constexpr uint64_t kPackedArrayMin = 1024;

// ggml types that exist but whose block layout edgelm does not implement, named so the error
// says which type the file uses.
std::string_view known_unsupported_type_name(uint32_t id) {
  switch (id) {
    case 4: return "Q4_2";
    case 5: return "Q4_3";
    case 16: return "IQ2_XXS";
    case 17: return "IQ2_XS";
    case 18: return "IQ3_XXS";
    case 19: return "IQ1_S";
    case 20: return "IQ4_NL";
    case 21: return "IQ3_S";
    case 22: return "IQ2_S";
    case 23: return "IQ4_XS";
    case 29: return "IQ1_M";
    case 34: return "TQ1_0";
    case 35: return "TQ2_0";
    case 39: return "MXFP4";
    case 40: return "NVFP4";
    default: return {};
  }
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;  // x is at most the file size: no overflow
}

class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::byte* bytes, uint64_t size)
      : path_(path), bytes_(bytes), size_(size) {}

  Header parse() {
    read_magic_and_version();
    const auto [n_tensors, n_kv] = read_counts();
    read_metadata(n_kv);
    h_.alignment = alignment_from_metadata();
    read_tensor_infos(n_tensors);
    h_.data_offset = align_up(pos_, h_.alignment);
    check_tensor_data_ranges();
    return std::move(h_);
  }

 private:
  // ---- errors ----
  [[noreturn]] void fail(const std::string& what, std::string_view hint = kCorruptHint) const {
    throw Error(path_ + ": " + what, std::string(hint));
  }

  // What is being read right now, for messages about truncated or oversized data.
  std::string where() const {
    std::string s = section_;
    if (section_ != kHeaderSection) s += " " + std::to_string(item_);
    if (!item_name_.empty()) s += " ('" + printable(item_name_) + "')";
    return s;
  }

  [[noreturn]] void fail_truncated() const {
    fail("truncated at byte " + std::to_string(size_) + " while reading " + where(),
         kTruncatedHint);
  }

  // ---- primitive reads ----
  uint64_t remaining() const { return size_ - pos_; }

  template <class T>
  T read() {
    if (remaining() < sizeof(T)) fail_truncated();
    T v;
    std::memcpy(&v, bytes_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(uint64_t max_len, const char* what) {
    const uint64_t at = pos_;
    const uint64_t len = read<uint64_t>();
    if (len > max_len) {
      fail(std::string(what) + " at byte " + std::to_string(at) + " is " + std::to_string(len) +
           " bytes long, more than the " + std::to_string(max_len) + " allowed, in " + where());
    }
    if (len > remaining()) {
      fail(std::string(what) + " at byte " + std::to_string(at) + " declares " +
               std::to_string(len) + " bytes but only " + std::to_string(remaining()) +
               " remain in the file, in " + where(),
           "the file is corrupt or incomplete; download it again");
    }
    std::string_view s(reinterpret_cast<const char*>(bytes_ + pos_), len);
    pos_ += len;
    return s;
  }

  // ---- header ----
  void read_magic_and_version() {
    if (size_ < 4) fail_truncated();
    const std::string_view magic(reinterpret_cast<const char*>(bytes_), 4);
    if (magic != "GGUF") {
      if (magic == "lmgg" || magic == "fmgg" || magic == "tjgg") {
        fail("this is a legacy GGML/GGMF/GGJT model, not GGUF", kReconvertHint);
      }
      fail("not a GGUF file (it starts with '" + printable(magic) + "', expected 'GGUF')",
           "pass a .gguf model file; convert other formats with llama.cpp's convert_hf_to_gguf.py");
    }
    pos_ = 4;
    h_.version = read<uint32_t>();
    if (h_.version == 2 || h_.version == 3) return;
    if (h_.version == 1) fail("GGUF version 1 is no longer supported", kReconvertHint);
    const uint32_t swapped = __builtin_bswap32(h_.version);
    if (swapped == 2 || swapped == 3) {
      fail("this is a big-endian GGUF file; edgelm reads little-endian files only",
           "convert it with gguf-py's gguf_convert_endian.py");
    }
    fail("unsupported GGUF version " + std::to_string(h_.version) +
             " (edgelm reads versions 2 and 3)",
         "re-convert the model with a converter that writes GGUF version 3");
  }

  std::pair<uint64_t, uint64_t> read_counts() {
    const uint64_t n_tensors = read<uint64_t>();
    const uint64_t n_kv = read<uint64_t>();
    if (n_tensors > limits::kMaxTensors) {
      fail("header declares " + std::to_string(n_tensors) + " tensors, more than the " +
           std::to_string(limits::kMaxTensors) + " edgelm accepts");
    }
    if (n_kv > limits::kMaxMetadataEntries) {
      fail("header declares " + std::to_string(n_kv) + " metadata entries, more than the " +
           std::to_string(limits::kMaxMetadataEntries) + " edgelm accepts");
    }
    // Both are now small enough that these products cannot overflow.
    if (n_tensors * kMinTensorInfoBytes + n_kv * kMinMetadataEntryBytes > remaining()) {
      fail("header declares " + std::to_string(n_tensors) + " tensors and " +
               std::to_string(n_kv) + " metadata entries, more than the " +
               std::to_string(size_) + "-byte file can hold",
           "the file is corrupt or incomplete; download it again");
    }
    return {n_tensors, n_kv};
  }

  // ---- metadata ----
  void read_metadata(uint64_t n_kv) {
    section_ = "metadata entry";
    h_.keys.reserve(n_kv);
    h_.values.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      item_ = i;
      item_name_ = {};
      const std::string_view key = read_string(limits::kMaxKeyBytes, "metadata key");
      if (key.empty()) fail("metadata entry " + std::to_string(i) + " has an empty key");
      item_name_ = key;
      if (auto it = h_.key_index.find(key); it != h_.key_index.end()) {
        fail("duplicate metadata key '" + printable(key) + "' (entries " +
             std::to_string(it->second) + " and " + std::to_string(i) + ")");
      }
      const ValueType type = read_value_type();
      Value v = read_value(type, 0);
      h_.key_index.emplace(std::string(key), h_.keys.size());
      h_.keys.emplace_back(key);
      h_.values.push_back(std::move(v));
    }
  }

  ValueType read_value_type() {
    const uint32_t id = read<uint32_t>();
    if (!is_known_value_type(id)) {
      fail("unknown metadata value type " + std::to_string(id) + ", in " + where());
    }
    return static_cast<ValueType>(id);
  }

  Value read_value(ValueType type, int depth) {
    Value v;
    v.type = type;
    switch (type) {
      case ValueType::U8: v.u = read<uint8_t>(); break;
      case ValueType::U16: v.u = read<uint16_t>(); break;
      case ValueType::U32: v.u = read<uint32_t>(); break;
      case ValueType::U64: v.u = read<uint64_t>(); break;
      case ValueType::I8: v.i = read<int8_t>(); break;
      case ValueType::I16: v.i = read<int16_t>(); break;
      case ValueType::I32: v.i = read<int32_t>(); break;
      case ValueType::I64: v.i = read<int64_t>(); break;
      case ValueType::F32: v.f = read<float>(); break;
      case ValueType::F64: v.f = read<double>(); break;
      case ValueType::BOOL: {
        const uint8_t b = read<uint8_t>();
        if (b > 1) fail("bool value " + std::to_string(b) + " is neither 0 nor 1, in " + where());
        v.u = b;
        break;
      }
      case ValueType::STRING:
        v.s = read_string(std::numeric_limits<uint64_t>::max(), "string");
        break;
      case ValueType::ARRAY: read_array(v, depth + 1); break;
    }
    return v;
  }

  void read_array(Value& v, int depth) {
    if (depth > limits::kMaxArrayDepth) {
      fail("arrays are nested more than " + std::to_string(limits::kMaxArrayDepth) +
           " levels deep, in " + where());
    }
    v.elem_type = read_value_type();
    const uint64_t at = pos_;
    const uint64_t count = read<uint64_t>();
    if (count > remaining() / min_encoded_size(v.elem_type)) {
      fail("array at byte " + std::to_string(at) + " declares " + std::to_string(count) + " " +
               std::string(value_type_name(v.elem_type)) + " elements but only " +
               std::to_string(remaining()) + " bytes remain in the file, in " + where(),
           "the file is corrupt or incomplete; download it again");
    }
    if (count > limits::kMaxArrayElementsTotal - array_elements_) {
      fail("metadata arrays hold more than " + std::to_string(limits::kMaxArrayElementsTotal) +
           " elements in total, in " + where());
    }
    array_elements_ += count;
    if (count >= kPackedArrayMin && v.elem_type != ValueType::ARRAY) {
      // Each element is read (and so checked) as usual, but only its bytes are kept.
      const uint64_t begin = pos_;
      for (uint64_t k = 0; k < count; ++k) read_value(v.elem_type, depth);
      v.packed.assign(reinterpret_cast<const char*>(bytes_ + begin), pos_ - begin);
      v.packed_count = count;
      return;
    }
    v.array.reserve(count);
    for (uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(v.elem_type, depth));
  }

  uint64_t alignment_from_metadata() const {
    auto it = h_.key_index.find("general.alignment");
    if (it == h_.key_index.end()) return limits::kDefaultAlignment;
    const Value& v = h_.values[it->second];
    if (v.type != ValueType::U32) {
      fail("metadata key 'general.alignment' has type " + std::string(value_type_name(v.type)) +
           ", expected u32");
    }
    if (v.u == 0 || !std::has_single_bit(v.u)) {
      fail("general.alignment is " + std::to_string(v.u) + ", which is not a power of two");
    }
    return v.u;
  }

  // ---- tensor infos ----
  void read_tensor_infos(uint64_t n_tensors) {
    section_ = "tensor info";
    h_.tensors.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      item_ = i;
      item_name_ = {};
      TensorInfo t = read_tensor_info(i);
      h_.tensor_index.emplace(t.name, h_.tensors.size());
      h_.tensors.push_back(std::move(t));
    }
  }

  TensorInfo read_tensor_info(uint64_t i) {
    TensorInfo t;
    const std::string_view name = read_string(limits::kMaxTensorNameBytes, "tensor name");
    if (name.empty()) fail("tensor info " + std::to_string(i) + " has an empty name");
    item_name_ = name;
    const std::string shown = "tensor '" + printable(name) + "'";
    if (auto it = h_.tensor_index.find(name); it != h_.tensor_index.end()) {
      fail("duplicate " + shown + " (tensor infos " + std::to_string(it->second) + " and " +
           std::to_string(i) + ")");
    }
    t.name = name;

    const uint32_t n_dims = read<uint32_t>();
    if (n_dims < 1 || n_dims > static_cast<uint32_t>(limits::kMaxDims)) {
      fail(shown + " has " + std::to_string(n_dims) + " dimensions; GGUF tensors have 1 to " +
           std::to_string(limits::kMaxDims));
    }
    t.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = read<uint64_t>();
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(shown + " has invalid size " + std::to_string(ne) + " in dimension " +
             std::to_string(d));
      }
      t.ne[d] = static_cast<int64_t>(ne);
    }

    const uint32_t type_id = read<uint32_t>();
    const std::optional<DType> type = dtype_from_id(type_id);
    if (!type) {
      std::string type_name(known_unsupported_type_name(type_id));
      fail(shown + " has type " + (type_name.empty() ? "" : type_name + " ") + "(id " +
               std::to_string(type_id) + "), which is unsupported by edgelm",
           "re-quantize the model to a supported type such as Q4_0, Q4_1, Q8_0, Q4_K or Q6_K");
    }
    t.type = *type;
    t.offset = read<uint64_t>();
    if (t.offset % h_.alignment != 0) {
      fail(shown + " starts at data offset " + std::to_string(t.offset) +
           ", which is not a multiple of the alignment " + std::to_string(h_.alignment));
    }
    t.nbytes = checked_nbytes(t, shown);
    return t;
  }

  size_t checked_nbytes(const TensorInfo& t, const std::string& shown) const {
    const DTypeTraits& traits = dtype_traits(t.type);
    if (t.ne[0] % traits.block_size != 0) {
      fail(shown + " has rows of " + std::to_string(t.ne[0]) + " elements, not a multiple of the " +
           std::string(traits.name) + " block size " + std::to_string(traits.block_size));
    }
    const auto too_large = [&] { fail(shown + " is too large (its size overflows 64 bits)"); };
    int64_t elements = 1;
    for (int d = 0; d < t.n_dims; ++d) {
      if (__builtin_mul_overflow(elements, t.ne[d], &elements)) too_large();
    }
    uint64_t bytes = static_cast<uint64_t>(t.ne[0] / traits.block_size);
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(traits.block_bytes), &bytes)) {
      too_large();
    }
    for (int d = 1; d < t.n_dims; ++d) {
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(t.ne[d]), &bytes)) too_large();
    }
    if (bytes > std::numeric_limits<size_t>::max()) too_large();
    return static_cast<size_t>(bytes);
  }

  // ---- tensor data ----
  void check_tensor_data_ranges() const {
    for (const TensorInfo& t : h_.tensors) {
      // data_offset <= size_ is not guaranteed (the header may end inside the padding), so
      // compare without forming sums that could wrap.
      const bool inside = h_.data_offset <= size_ && t.offset <= size_ - h_.data_offset &&
                          t.nbytes <= size_ - h_.data_offset - t.offset;
      if (!inside) {
        fail("tensor '" + printable(t.name) + "' (" + std::to_string(t.nbytes) +
                 " bytes at data offset " + std::to_string(t.offset) +
                 ") extends past the end of the " + std::to_string(size_) + "-byte file",
             "the file is incomplete or corrupt; download it again");
      }
    }
    std::vector<size_t> order(h_.tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return h_.tensors[a].offset < h_.tensors[b].offset;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& prev = h_.tensors[order[k - 1]];
      const TensorInfo& cur = h_.tensors[order[k]];
      if (prev.offset + prev.nbytes > cur.offset) {  // both inside the file: no overflow
        fail("tensors '" + printable(prev.name) + "' and '" + printable(cur.name) +
             "' overlap in the data section");
      }
    }
  }

  static constexpr const char* kHeaderSection = "the file header";

  const std::string& path_;
  const std::byte* bytes_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const char* section_ = kHeaderSection;
  uint64_t item_ = 0;
  std::string_view item_name_;  // points into the mapped file
  uint64_t array_elements_ = 0;
  Header h_;
};

}  // namespace

Header parse_header(const std::string& path, const std::byte* bytes, uint64_t size) {
  return HeaderParser(path, bytes, size).parse();
}

}  // namespace edgelm::gguf
