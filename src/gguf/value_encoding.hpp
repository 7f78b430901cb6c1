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

}  // namespace edgelm::gguf
