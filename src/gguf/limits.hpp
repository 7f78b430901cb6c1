// Caps on sizes read from untrusted files. They keep a corrupt or hostile header from making the
// reader allocate more than a small multiple of the file's own size, while staying far above
// anything a real model uses (the largest vocabularies hold ~262k tokens).
#pragma once
#include <cstdint>

namespace edgelm::gguf::limits {

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr uint64_t kMaxTensors = 1u << 20;
inline constexpr uint64_t kMaxMetadataEntries = 1u << 20;
// Every metadata array element becomes one in-memory Value (~90 bytes), so the total count is
// capped across the whole file: 4M elements is ~400 MB at worst, 15x a 262k-token vocabulary.
inline constexpr uint64_t kMaxArrayElementsTotal = 1u << 22;
// The format allows arrays of arrays; real files use at most one level.
inline constexpr int kMaxArrayDepth = 8;
// From the GGUF spec: keys are at most 65535 bytes, tensor names at most 64.
inline constexpr uint64_t kMaxKeyBytes = 65535;
inline constexpr uint64_t kMaxTensorNameBytes = 64;
// ggml keeps names in a 64-byte buffer with a terminating zero, so llama.cpp refuses 64-byte
// names; the writer stays one byte under so every file it writes loads there too.
inline constexpr uint64_t kMaxWrittenTensorNameBytes = 63;
inline constexpr int kMaxDims = 4;

}  // namespace edgelm::gguf::limits
