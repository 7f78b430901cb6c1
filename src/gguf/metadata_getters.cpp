// Typed metadata getters. Integer getters accept any integer type whose value fits, because
// converters disagree on widths (one writes block_count as u32, another as i32 or u64).
#include <cmath>
#include <limits>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "gguf/file_impl.hpp"
#include "gguf/printable.hpp"
#include "gguf/value_encoding.hpp"
#include "gguf/value_types.hpp"

namespace edgelm::gguf {
namespace {

constexpr const char* kWrongTypeHint =
    "the file was written for a different model or by a different tool; re-convert it";

class Getter {
 public:
  Getter(const std::string& path, std::string_view key) : path_(path), key_(key) {}

  [[noreturn]] void missing() const {
    throw Error(path_ + ": metadata key '" + printable(key_) + "' is missing",
                "the file lacks a setting this model needs; re-convert it with a current "
                "converter");
  }

  [[noreturn]] void wrong_type(const Value& v, const char* expected) const {
    std::string got(value_type_name(v.type));
    if (v.type == ValueType::ARRAY) got += " of " + std::string(value_type_name(v.elem_type));
    throw Error(path_ + ": metadata key '" + printable(key_) + "' has type " + got +
                    ", expected " + expected,
                kWrongTypeHint);
  }

  [[noreturn]] void out_of_range(const std::string& value, const char* target) const {
    throw Error(path_ + ": metadata key '" + printable(key_) + "' holds " + value +
                    ", which does not fit in " + target,
                kWrongTypeHint);
  }

  const Value& require(const Value* v) const {
    if (v == nullptr) missing();
    return *v;
  }

  // Integer value as a signed 128-bit number, so every source type compares exactly with every
  // target range.
  __int128 integer(const Value& v, const char* expected) const {
    if (is_unsigned_integer(v.type)) return static_cast<__int128>(v.u);
    if (is_signed_integer(v.type)) return static_cast<__int128>(v.i);
    wrong_type(v, expected);
  }

  template <class T>
  T integer_as(const Value& v, const char* expected, const char* target) const {
    const __int128 x = integer(v, expected);
    if (x < static_cast<__int128>(std::numeric_limits<T>::min()) ||
        x > static_cast<__int128>(std::numeric_limits<T>::max())) {
      out_of_range(is_unsigned_integer(v.type) ? std::to_string(v.u) : std::to_string(v.i),
                   target);
    }
    return static_cast<T>(x);
  }

  float number_as_f32(const Value& v) const {
    if (is_float(v.type)) {
      // Converting a finite double beyond float's range is undefined behaviour, not infinity.
      if (std::isfinite(v.f) && std::fabs(v.f) > std::numeric_limits<float>::max()) {
        out_of_range(std::to_string(v.f), "f32");
      }
      return static_cast<float>(v.f);
    }
    if (is_unsigned_integer(v.type)) return static_cast<float>(v.u);
    if (is_signed_integer(v.type)) return static_cast<float>(v.i);
    wrong_type(v, "a number");
  }

  void require_array(const Value& v, const char* expected) const {
    if (v.type != ValueType::ARRAY) wrong_type(v, expected);
  }

 private:
  const std::string& path_;
  std::string_view key_;
};

}  // namespace

std::string File::get_string(std::string_view key) const {
  Getter g(path(), key);
  const Value& v = g.require(find(key));
  if (v.type != ValueType::STRING) g.wrong_type(v, "a string");
  return v.s;
}

uint32_t File::get_u32(std::string_view key) const {
  Getter g(path(), key);
  return g.integer_as<uint32_t>(g.require(find(key)), "an integer", "u32");
}

int64_t File::get_i64(std::string_view key) const {
  Getter g(path(), key);
  return g.integer_as<int64_t>(g.require(find(key)), "an integer", "i64");
}

float File::get_f32(std::string_view key) const {
  Getter g(path(), key);
  return g.number_as_f32(g.require(find(key)));
}

bool File::get_bool(std::string_view key) const {
  Getter g(path(), key);
  const Value& v = g.require(find(key));
  if (v.type != ValueType::BOOL) g.wrong_type(v, "a bool");
  return v.u != 0;
}

std::vector<std::string> File::get_string_array(std::string_view key) const {
  Getter g(path(), key);
  const Value& v = g.require(find(key));
  g.require_array(v, "an array of strings");
  if (v.elem_type != ValueType::STRING) g.wrong_type(v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(v.size()));
  for_each_element(v, [&](const Value& e) { out.push_back(e.s); });
  return out;
}

std::vector<float> File::get_f32_array(std::string_view key) const {
  Getter g(path(), key);
  const Value& v = g.require(find(key));
  g.require_array(v, "an array of numbers");
  if (!is_float(v.elem_type) && !is_integer(v.elem_type)) g.wrong_type(v, "an array of numbers");
  std::vector<float> out;
  out.reserve(static_cast<size_t>(v.size()));
  for_each_element(v, [&](const Value& e) { out.push_back(g.number_as_f32(e)); });
  return out;
}

std::vector<int32_t> File::get_i32_array(std::string_view key) const {
  Getter g(path(), key);
  const Value& v = g.require(find(key));
  g.require_array(v, "an array of integers");
  if (!is_integer(v.elem_type)) g.wrong_type(v, "an array of integers");
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(v.size()));
  for_each_element(v, [&](const Value& e) { out.push_back(g.integer_as<int32_t>(e, "an integer", "i32")); });
  return out;
}

std::string File::get_string_or(std::string_view key, std::string def) const {
  return has(key) ? get_string(key) : std::move(def);
}

uint32_t File::get_u32_or(std::string_view key, uint32_t def) const {
  return has(key) ? get_u32(key) : def;
}

float File::get_f32_or(std::string_view key, float def) const {
  return has(key) ? get_f32(key) : def;
}

bool File::get_bool_or(std::string_view key, bool def) const {
  return has(key) ? get_bool(key) : def;
}

}  // namespace edgelm::gguf
