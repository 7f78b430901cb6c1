// libFuzzer harness for the tokenizers, on SmolLM2's byte-level BPE vocabulary and Gemma 3's
// SentencePiece one (read from the model cache, $EDGELM_MODELS). For any input:
//   - encode never fails, decode of any id sequence is valid UTF-8;
//   - decode(encode(s)) == s for valid UTF-8 s, where the vocabulary can express s: BPE with
//     and without special tokens (a character with a byte that has no token comes back as
//     U+FFFD), SentencePiece without them ("▁" comes back as a space);
//   - streaming decode gives the same text in valid UTF-8 pieces.
// The first input byte picks the vocabulary and the mode.
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/tokenizer.hpp"
#include "fuzz_common.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/utf8.hpp"

namespace {

using edgelm::Tokenizer;

struct Vocab {
  std::unique_ptr<Tokenizer> tok;
  bool byte_level = false;
  bool has_byte[256] = {};  // byte-level: bytes with a token of their own
};

Vocab load(const char* file, bool byte_level) {
  const std::string path = edgelm::fuzz::model_path(file);
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "fuzz_tokenizer: %s not found: run scripts/fetch-models.sh (or set EDGELM_MODELS)\n", path.c_str());
    std::exit(2);
  }
  Vocab v;
  v.tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(edgelm::gguf::File::open(path)));
  v.byte_level = byte_level;
  const edgelm::tokenizer::ByteLevelAlphabet alphabet;
  for (int b = 0; b < 256; ++b) v.has_byte[b] = !byte_level || v.tok->find(alphabet.symbol(static_cast<uint8_t>(b))).has_value();
  return v;
}

const Vocab& smollm2() {
  static const Vocab v = load("SmolLM2-135M-Instruct.Q4_1.gguf", true);
  return v;
}
const Vocab& gemma3() {
  static const Vocab v = load("gemma-3-270m-q4_k_m.gguf", false);
  return v;
}

bool valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const auto scan = edgelm::tokenizer::scan_utf8(s, pos);
    if (scan.status != edgelm::tokenizer::Utf8Status::Complete) return false;
    pos += scan.length;
  }
  return true;
}

std::string hex(std::string_view s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s.substr(0, 256)) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

// What decode(encode(s)) must give for valid UTF-8 s.
std::string expected_round_trip(const Vocab& v, std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const size_t len = edgelm::tokenizer::scan_utf8(s, pos).length;
    const std::string_view ch = s.substr(pos, len);
    bool expressible = true;
    for (unsigned char c : ch) expressible = expressible && v.has_byte[c];
    if (!expressible)
      out += "\xEF\xBF\xBD";
    else if (!v.byte_level && ch == "\xE2\x96\x81")  // "▁"
      out += ' ';
    else
      out += ch;
    pos += len;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  smollm2();
  gemma3();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const Vocab& v = (mode & 1) ? gemma3() : smollm2();
  const Tokenizer& tok = *v.tok;
  const bool special = (mode & 2) != 0;
  try {
    if (mode & 4) {  // the input as token ids: decode must give valid UTF-8, streamed or not
      std::vector<int32_t> ids;
      for (size_t i = 0; i + 4 <= text.size(); i += 4) {
        uint32_t u;
        std::memcpy(&u, text.data() + i, 4);
        ids.push_back(static_cast<int32_t>(u % static_cast<uint32_t>(tok.n_vocab())));
      }
      const std::string d = tok.decode(ids, special);
      if (!valid_utf8(d)) edgelm::fuzz::fail("decode returned invalid UTF-8", hex(d));
      edgelm::TokenStreamDecoder stream(tok, special);
      std::string joined;
      for (int32_t id : ids) {
        const std::string piece = stream.push(id);
        if (!valid_utf8(piece)) edgelm::fuzz::fail("a streamed piece is invalid UTF-8", hex(piece));
        joined += piece;
      }
      joined += stream.flush();
      if (!valid_utf8(joined)) edgelm::fuzz::fail("streamed text is invalid UTF-8", hex(joined));
      return 0;
    }
    const std::vector<int32_t> ids = tok.encode(text, (mode & 8) != 0, special);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.n_vocab()) edgelm::fuzz::fail("encode returned an id outside the vocabulary", hex(text));
    const std::string back = tok.decode(ids, special);
    if (!valid_utf8(back)) edgelm::fuzz::fail("decode(encode(s)) is invalid UTF-8", hex(text) + " -> " + hex(back));
    if ((mode & 8) == 0 && valid_utf8(text) && (v.byte_level || !special)) {
      const std::string want = expected_round_trip(v, text);
      if (back != want) edgelm::fuzz::fail("decode(encode(s)) != s", hex(text) + "\n got " + hex(back) + "\nwant " + hex(want));
    }
  } catch (const edgelm::Error& e) {
    // Text that is not UTF-8 may be refused; valid text and any ids never are.
    if ((mode & 4) || valid_utf8(text)) edgelm::fuzz::fail("the tokenizer threw", std::string(e.what()) + "\n" + hex(text));
  }
  return 0;
}
