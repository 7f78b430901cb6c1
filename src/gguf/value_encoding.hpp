// Serializing metadata values in GGUF's little-endian layout, and checking that a Value built
// by a caller can be serialized faithfully (the reader would reject anything else).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "edgelm/gguf.hpp"

namespace edgelm::gguf {

// Throws edgelm::Error mentioning `key` if `v` has an unknown type, an array element whose type
// differs from the array's, an integer outside its type's range, a bool other than 0/1, or
// arrays nested deeper than the reader accepts. Returns the number of array elements inside.
uint64_t validate_value(std::string_view key, const Value& v);

void append_u32(std::string& out, uint32_t x);
void append_u64(std::string& out, uint64_t x);
void append_string(std::string& out, std::string_view s);
void append_value(std::string& out, const Value& v);  // without the leading type id

// Calls f(const Value&) for each element of the ARRAY `v`, decoding a packed array element by
// element into one reused Value (its bytes were checked when the file was read).
template <class F>
void for_each_element(const Value& v, F&& f);
Value decode_packed(ValueType t, const char*& p);

template <class F>
void for_each_element(const Value& v, F&& f) {
  if (v.packed_count == 0) {
    for (const Value& e : v.array) f(e);
    return;
  }
  const char* p = v.packed.data();
  for (uint64_t k = 0; k < v.packed_count; ++k) f(decode_packed(v.elem_type, p));
}

}  // namespace edgelm::gguf
