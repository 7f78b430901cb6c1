// Shared helpers for the GGUF tests: a scratch directory, a byte builder for hand-made files,
// value comparison, and the location of the real model.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "support/test_models.hpp"

namespace edgelm::gguf::testing {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("edgelm-gguf-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(std::string_view name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    return names;
  }

 private:
  fs::path path_;
};

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

// Little-endian GGUF bytes, assembled field by field so a test can put any value anywhere.
class GgufBytes {
 public:
  GgufBytes& raw(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  GgufBytes& u8(uint8_t x) { return put(x); }
  GgufBytes& u32(uint32_t x) { return put(x); }
  GgufBytes& u64(uint64_t x) { return put(x); }
  GgufBytes& str(std::string_view s) {
    u64(s.size());
    return raw(s);
  }
  // magic, version, tensor count, metadata entry count
  GgufBytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    raw("GGUF");
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  GgufBytes& kv_u32(std::string_view key, uint32_t x) {
    str(key);
    u32(static_cast<uint32_t>(ValueType::U32));
    return u32(x);
  }
  GgufBytes& kv_string(std::string_view key, std::string_view s) {
    str(key);
    u32(static_cast<uint32_t>(ValueType::STRING));
    return str(s);
  }
  GgufBytes& tensor_info(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                         uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    u32(type);
    return u64(offset);
  }
  GgufBytes& pad_to(size_t alignment) {
    bytes_.append((alignment - bytes_.size() % alignment) % alignment, '\0');
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  template <class T>
  GgufBytes& put(T x) {
    char buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    bytes_.append(buf, sizeof(T));
    return *this;
  }
  std::string bytes_;
};

// Deep equality of two metadata values, field by field as the type defines them.
inline ::testing::AssertionResult same_value(const Value& a, const Value& b) {
  if (a.type != b.type) {
    return ::testing::AssertionFailure() << "type " << value_type_name(a.type) << " vs "
                                         << value_type_name(b.type);
  }
  switch (a.type) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64:
    case ValueType::BOOL:
      if (a.u != b.u) return ::testing::AssertionFailure() << a.u << " vs " << b.u;
      break;
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64:
      if (a.i != b.i) return ::testing::AssertionFailure() << a.i << " vs " << b.i;
      break;
    case ValueType::F32: case ValueType::F64:
      if (std::memcmp(&a.f, &b.f, sizeof a.f) != 0) {
        return ::testing::AssertionFailure() << a.f << " vs " << b.f;
      }
      break;
    case ValueType::STRING:
      if (a.s != b.s) return ::testing::AssertionFailure() << "'" << a.s << "' vs '" << b.s << "'";
      break;
    case ValueType::ARRAY:
      if (a.elem_type != b.elem_type || a.size() != b.size()) {
        return ::testing::AssertionFailure() << "array shape differs";
      }
      {  // either may be packed (a long array read from a file)
        const std::vector<Value> ea = a.elements(), eb = b.elements();
        for (size_t k = 0; k < ea.size(); ++k) {
          auto r = same_value(ea[k], eb[k]);
          if (!r) return r << " (element " << k << ")";
        }
      }
      break;
  }
  return ::testing::AssertionSuccess();
}

// Opens `path` expecting edgelm::Error; returns its one-line message ("" if nothing threw).
inline std::string open_error(const std::string& path) {
  try {
    File::open(path);
  } catch (const Error& e) {
    return e.message();
  }
  return {};
}

// The real model used by the acceptance tests, or "" after recording a failure that names the
// script command that installs it.
inline std::string real_model_path() { return test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }

}  // namespace edgelm::gguf::testing
