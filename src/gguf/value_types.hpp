// Facts about GGUF metadata value types that the reader, the writer and the getters share.
#pragma once
#include <cstdint>

#include "edgelm/gguf.hpp"

namespace edgelm::gguf {

bool is_known_value_type(uint32_t id);
bool is_unsigned_integer(ValueType t);
bool is_signed_integer(ValueType t);
inline bool is_integer(ValueType t) { return is_unsigned_integer(t) || is_signed_integer(t); }
inline bool is_float(ValueType t) { return t == ValueType::F32 || t == ValueType::F64; }
// Encoded size of a fixed-size value; 0 for STRING and ARRAY.
uint64_t fixed_value_size(ValueType t);
// Fewest bytes any value of this type can take on disk (a string's length prefix, an array's
// element type and count), used to reject counts that could not fit in the bytes left.
uint64_t min_encoded_size(ValueType t);

}  // namespace edgelm::gguf
