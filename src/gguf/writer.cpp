// gguf::Writer: collects metadata and tensors, then writes a GGUF v3 file atomically. Everything
// is validated when it is added, so write() can only fail on I/O.
#include <algorithm>
#include <bit>
#include <limits>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "gguf/atomic_file_writer.hpp"
#include "gguf/limits.hpp"
#include "gguf/printable.hpp"
#include "gguf/value_encoding.hpp"

namespace edgelm::gguf {
namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";

struct PendingTensor {
  std::string name;
  DType type;
  int n_dims;
  std::array<int64_t, 4> ne;
  std::vector<std::byte> data;   // a copy, or
  const std::byte* ref = nullptr;  // the caller's bytes (add_tensor_ref)
  size_t nbytes = 0;
  const std::byte* bytes() const { return ref ? ref : data.data(); }
};

uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

void check_alignment(uint64_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment) ||
      alignment > std::numeric_limits<uint32_t>::max()) {
    throw Error("GGUF alignment " + std::to_string(alignment) + " is not a power of two below 2^32",
                "use 32 (the default) or another power of two such as 64");
  }
}

Value u32_value(uint64_t x) {
  Value v;
  v.type = ValueType::U32;
  v.u = x;
  return v;
}

template <class T, class Fill>
Value array_value(ValueType elem_type, const std::vector<T>& items, Fill fill) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem_type;
  v.array.resize(items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    v.array[k].type = elem_type;
    fill(v.array[k], items[k]);
  }
  return v;
}

}  // namespace

struct Writer::Impl {
  uint64_t alignment = limits::kDefaultAlignment;
  std::vector<std::pair<std::string, Value>> metadata;  // insertion order
  std::vector<PendingTensor> tensors;                   // insertion order

  std::pair<std::string, Value>* find(std::string_view key) {
    auto it = std::find_if(metadata.begin(), metadata.end(),
                           [&](const auto& kv) { return kv.first == key; });
    return it == metadata.end() ? nullptr : &*it;
  }

  void put(std::string key, Value v) {
    if (auto* kv = find(key)) {
      kv->second = std::move(v);
    } else {
      metadata.emplace_back(std::move(key), std::move(v));
    }
  }

  std::string serialize_header() const;
};

Writer::Writer() : impl_(std::make_unique<Impl>()) {}
Writer::~Writer() = default;

void Writer::set_alignment(uint64_t alignment) {
  check_alignment(alignment);
  impl_->alignment = alignment;
  // The key is what readers see; keep it equal to the alignment actually used.
  if (alignment != limits::kDefaultAlignment || impl_->find(kAlignmentKey) != nullptr) {
    impl_->put(std::string(kAlignmentKey), u32_value(alignment));
  }
}

void Writer::set(std::string key, Value v) {
  if (key.empty() || key.size() > limits::kMaxKeyBytes) {
    throw Error("metadata key '" + printable(key) + "' must be 1 to " +
                    std::to_string(limits::kMaxKeyBytes) + " bytes long",
                "use a dotted lower_snake_case name such as 'edgelm.labels'");
  }
  validate_value(key, v);
  if (key == kAlignmentKey) {
    if (v.type != ValueType::U32) {
      throw Error("metadata key 'general.alignment' must be a u32",
                  "use Writer::set_alignment");
    }
    check_alignment(v.u);
    impl_->alignment = v.u;
  }
  impl_->put(std::move(key), std::move(v));
}

void Writer::set_string(std::string key, std::string v) {
  Value x;
  x.type = ValueType::STRING;
  x.s = std::move(v);
  set(std::move(key), std::move(x));
}

void Writer::set_u32(std::string key, uint32_t v) { set(std::move(key), u32_value(v)); }

void Writer::set_i32(std::string key, int32_t v) {
  Value x;
  x.type = ValueType::I32;
  x.i = v;
  set(std::move(key), std::move(x));
}

void Writer::set_f32(std::string key, float v) {
  Value x;
  x.type = ValueType::F32;
  x.f = v;
  set(std::move(key), std::move(x));
}

void Writer::set_bool(std::string key, bool v) {
  Value x;
  x.type = ValueType::BOOL;
  x.u = v ? 1 : 0;
  set(std::move(key), std::move(x));
}

void Writer::set_string_array(std::string key, const std::vector<std::string>& v) {
  set(std::move(key),
      array_value(ValueType::STRING, v, [](Value& e, const std::string& s) { e.s = s; }));
}

void Writer::set_f32_array(std::string key, const std::vector<float>& v) {
  set(std::move(key), array_value(ValueType::F32, v, [](Value& e, float f) { e.f = f; }));
}

void Writer::set_i32_array(std::string key, const std::vector<int32_t>& v) {
  set(std::move(key), array_value(ValueType::I32, v, [](Value& e, int32_t i) { e.i = i; }));
}

void Writer::remove(std::string_view key) {
  auto& md = impl_->metadata;
  md.erase(std::remove_if(md.begin(), md.end(), [&](const auto& kv) { return kv.first == key; }),
           md.end());
  if (key == kAlignmentKey) impl_->alignment = limits::kDefaultAlignment;
}

void Writer::copy_metadata(const File& src) {
  for (const std::string& key : src.keys()) set(key, *src.find(key));
}

void Writer::add_tensor(std::string name, DType type, const std::vector<int64_t>& ne,
                        const void* data, size_t nbytes) {
  add(std::move(name), type, ne, data, nbytes, true);
}

void Writer::add_tensor_ref(std::string name, DType type, const std::vector<int64_t>& ne,
                            const void* data, size_t nbytes) {
  add(std::move(name), type, ne, data, nbytes, false);
}

void Writer::add(std::string name, DType type, const std::vector<int64_t>& ne, const void* data,
                 size_t nbytes, bool copy) {
  const std::string shown = "cannot add tensor '" + printable(name) + "': ";
  const auto reject = [&](const std::string& what, const std::string& hint = {}) {
    throw Error(shown + what, hint);
  };
  if (name.empty() || name.size() > limits::kMaxWrittenTensorNameBytes) {
    reject("names must be 1 to " + std::to_string(limits::kMaxWrittenTensorNameBytes) +
           " bytes long");
  }
  if (std::any_of(impl_->tensors.begin(), impl_->tensors.end(),
                  [&](const PendingTensor& t) { return t.name == name; })) {
    reject("a tensor with this name was already added");
  }
  if (ne.empty() || ne.size() > static_cast<size_t>(limits::kMaxDims)) {
    reject("it has " + std::to_string(ne.size()) + " dimensions; GGUF tensors have 1 to 4");
  }
  if (impl_->tensors.size() >= limits::kMaxTensors) {
    reject("a GGUF file edgelm writes holds at most " + std::to_string(limits::kMaxTensors) +
           " tensors");
  }
  uint64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] <= 0) reject("dimension " + std::to_string(d) + " is " + std::to_string(ne[d]));
    if (d > 0 && __builtin_mul_overflow(rows, static_cast<uint64_t>(ne[d]), &rows)) {
      reject("its size overflows 64 bits");
    }
  }
  size_t row_bytes = 0;
  try {
    row_bytes = row_size(type, ne[0]);  // rejects unknown types and partial blocks
  } catch (const Error& e) {
    reject(e.what(), e.hint());
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(row_bytes), rows, &expected)) {
    reject("its size overflows 64 bits");
  }
  if (nbytes != expected) {
    reject("got " + std::to_string(nbytes) + " bytes of data, but a " +
               std::string(dtype_name(type)) + " tensor of this shape takes " +
               std::to_string(expected),
           "pass exactly row_size(type, ne[0]) * rows bytes");
  }
  if (data == nullptr) reject("the data pointer is null");

  PendingTensor t{std::move(name), type, static_cast<int>(ne.size()), {1, 1, 1, 1}, {}};
  std::copy(ne.begin(), ne.end(), t.ne.begin());
  const auto* bytes = static_cast<const std::byte*>(data);
  if (copy)
    t.data.assign(bytes, bytes + nbytes);
  else
    t.ref = bytes;
  t.nbytes = nbytes;
  impl_->tensors.push_back(std::move(t));
}

std::string Writer::Impl::serialize_header() const {
  std::string out;
  out.append("GGUF", 4);
  append_u32(out, 3);
  append_u64(out, tensors.size());
  append_u64(out, metadata.size());
  for (const auto& [key, value] : metadata) {
    append_string(out, key);
    append_u32(out, static_cast<uint32_t>(value.type));
    append_value(out, value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors) {
    append_string(out, t.name);
    append_u32(out, static_cast<uint32_t>(t.n_dims));
    for (int d = 0; d < t.n_dims; ++d) append_u64(out, static_cast<uint64_t>(t.ne[d]));
    append_u32(out, static_cast<uint32_t>(t.type));
    append_u64(out, offset);
    offset = align_up(offset + t.nbytes, alignment);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  // The reader caps the total number of metadata array elements; never write a file it rejects.
  uint64_t array_elements = 0;
  for (const auto& [key, value] : impl_->metadata) array_elements += validate_value(key, value);
  if (array_elements > limits::kMaxArrayElementsTotal) {
    throw Error(path + ": metadata arrays hold " + std::to_string(array_elements) +
                    " elements, more than the " +
                    std::to_string(limits::kMaxArrayElementsTotal) + " a GGUF reader accepts",
                "store large data as a tensor instead of metadata");
  }
  if (impl_->metadata.size() > limits::kMaxMetadataEntries) {
    throw Error(path + ": " + std::to_string(impl_->metadata.size()) +
                    " metadata entries are more than a GGUF reader accepts",
                "store large data as a tensor instead of metadata");
  }

  const std::string header = impl_->serialize_header();
  AtomicFileWriter out(path);
  out.write(header.data(), header.size());
  out.write_zeros(align_up(header.size(), impl_->alignment) - header.size());
  for (const PendingTensor& t : impl_->tensors) {
    out.write(t.bytes(), t.nbytes);
    out.write_zeros(align_up(t.nbytes, impl_->alignment) - t.nbytes);
  }
  out.commit();
}

}  // namespace edgelm::gguf
