#include "gguf/value_encoding.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "edgelm/error.hpp"
#include "gguf/limits.hpp"
#include "gguf/printable.hpp"
#include "gguf/value_types.hpp"

namespace edgelm::gguf {
namespace {

template <class T>
void append_raw(std::string& out, T x) {
  char buf[sizeof(T)];
  std::memcpy(buf, &x, sizeof(T));  // the host is little-endian (checked in header_parser.cpp)
  out.append(buf, sizeof(T));
}

[[noreturn]] void invalid(std::string_view key, const std::string& what) {
  throw Error("metadata key '" + printable(key) + "': " + what,
              "build the Value with fields that match its type");
}

template <class T>
void check_unsigned(std::string_view key, const Value& v) {
  if (v.u > std::numeric_limits<T>::max()) {
    invalid(key, std::to_string(v.u) + " does not fit in " +
                     std::string(value_type_name(v.type)));
  }
}

template <class T>
void check_signed(std::string_view key, const Value& v) {
  if (v.i < std::numeric_limits<T>::min() || v.i > std::numeric_limits<T>::max()) {
    invalid(key, std::to_string(v.i) + " does not fit in " +
                     std::string(value_type_name(v.type)));
  }
}

uint64_t validate_at_depth(std::string_view key, const Value& v, int depth) {
  if (!is_known_value_type(static_cast<uint32_t>(v.type))) {
    invalid(key, "unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
  }
  switch (v.type) {
    case ValueType::U8: check_unsigned<uint8_t>(key, v); return 0;
    case ValueType::U16: check_unsigned<uint16_t>(key, v); return 0;
    case ValueType::U32: check_unsigned<uint32_t>(key, v); return 0;
    case ValueType::I8: check_signed<int8_t>(key, v); return 0;
    case ValueType::I16: check_signed<int16_t>(key, v); return 0;
    case ValueType::I32: check_signed<int32_t>(key, v); return 0;
    case ValueType::BOOL:
      if (v.u > 1) invalid(key, "bool value " + std::to_string(v.u) + " is neither 0 nor 1");
      return 0;
    case ValueType::F32:
      // Converting a finite double beyond float's range is undefined behaviour, not infinity.
      if (std::isfinite(v.f) && std::fabs(v.f) > std::numeric_limits<float>::max()) {
        invalid(key, std::to_string(v.f) + " does not fit in f32");
      }
      return 0;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
    case ValueType::STRING: return 0;
    case ValueType::ARRAY: break;
  }
  if (depth + 1 > limits::kMaxArrayDepth) {
    invalid(key, "arrays nested more than " + std::to_string(limits::kMaxArrayDepth) +
                     " levels deep");
  }
  if (!is_known_value_type(static_cast<uint32_t>(v.elem_type))) {
    invalid(key, "unknown array element type " +
                     std::to_string(static_cast<uint32_t>(v.elem_type)));
  }
  uint64_t elements = v.size();
  for (const Value& e : v.array) {
    if (e.type != v.elem_type) {
      invalid(key, "an array of " + std::string(value_type_name(v.elem_type)) +
                       " holds an element of type " + std::string(value_type_name(e.type)));
    }
    elements += validate_at_depth(key, e, depth + 1);
  }
  return elements;
}

}  // namespace

uint64_t validate_value(std::string_view key, const Value& v) {
  return validate_at_depth(key, v, 0);
}

void append_u32(std::string& out, uint32_t x) { append_raw(out, x); }
void append_u64(std::string& out, uint64_t x) { append_raw(out, x); }

void append_string(std::string& out, std::string_view s) {
  append_u64(out, s.size());
  out.append(s);
}

void append_value(std::string& out, const Value& v) {
  switch (v.type) {
    case ValueType::U8:
    case ValueType::BOOL: append_raw(out, static_cast<uint8_t>(v.u)); break;
    case ValueType::U16: append_raw(out, static_cast<uint16_t>(v.u)); break;
    case ValueType::U32: append_raw(out, static_cast<uint32_t>(v.u)); break;
    case ValueType::U64: append_raw(out, v.u); break;
    case ValueType::I8: append_raw(out, static_cast<int8_t>(v.i)); break;
    case ValueType::I16: append_raw(out, static_cast<int16_t>(v.i)); break;
    case ValueType::I32: append_raw(out, static_cast<int32_t>(v.i)); break;
    case ValueType::I64: append_raw(out, v.i); break;
    case ValueType::F32: append_raw(out, static_cast<float>(v.f)); break;
    case ValueType::F64: append_raw(out, v.f); break;
    case ValueType::STRING: append_string(out, v.s); break;
    case ValueType::ARRAY:
      append_u32(out, static_cast<uint32_t>(v.elem_type));
      append_u64(out, v.size());
      if (v.packed_count > 0) out.append(v.packed);
      for (const Value& e : v.array) append_value(out, e);
      break;
  }
}

namespace {
template <class T>
T take(const char*& p) {
  T x;
  std::memcpy(&x, p, sizeof(T));
  p += sizeof(T);
  return x;
}
}  // namespace

Value decode_packed(ValueType t, const char*& p) {
  Value e;
  e.type = t;
  switch (t) {
    case ValueType::U8:
    case ValueType::BOOL: e.u = take<uint8_t>(p); break;
    case ValueType::U16: e.u = take<uint16_t>(p); break;
    case ValueType::U32: e.u = take<uint32_t>(p); break;
    case ValueType::U64: e.u = take<uint64_t>(p); break;
    case ValueType::I8: e.i = take<int8_t>(p); break;
    case ValueType::I16: e.i = take<int16_t>(p); break;
    case ValueType::I32: e.i = take<int32_t>(p); break;
    case ValueType::I64: e.i = take<int64_t>(p); break;
    case ValueType::F32: e.f = take<float>(p); break;
    case ValueType::F64: e.f = take<double>(p); break;
    case ValueType::STRING: {
      const uint64_t n = take<uint64_t>(p);
      e.s.assign(p, static_cast<size_t>(n));
      p += n;
      break;
    }
    case ValueType::ARRAY: break;  // never packed
  }
  return e;
}

}  // namespace edgelm::gguf

namespace edgelm::gguf {

std::vector<Value> Value::elements() const {
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(size()));
  for_each_element(*this, [&](const Value& e) { out.push_back(e); });
  return out;
}

}  // namespace edgelm::gguf
