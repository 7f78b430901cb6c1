// Tokenizer: special-token cutting, then per text fragment either llama.cpp-style UTF-8 cleanup,
// pre-tokenizer split and byte-level BPE per word (gpt2), or space escaping and SentencePiece-
// style merging by score (llama).
#include "edgelm/tokenizer.hpp"

#include <memory>
#include <unordered_set>

#include "edgelm/error.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/special_tokens.hpp"
#include "tokenizer/spm.hpp"
#include "tokenizer/utf8.hpp"
#include "tokenizer/vocabulary.hpp"

namespace edgelm {
namespace {

using namespace tokenizer;

void validate(const VocabularyData& data) {
  if (data.model != "gpt2" && data.model != "llama") {
    throw Error("tokenizer model '" + data.model + "' is not supported (tokenizer.ggml.model)",
                "edgelm reads byte-level BPE ('gpt2') and SentencePiece-style ('llama') "
                "vocabularies");
  }
  if (data.tokens.empty()) {
    throw Error("the vocabulary has no tokens (tokenizer.ggml.tokens is empty)",
                "re-convert the model with a current converter");
  }
  if (!data.token_types.empty() && data.token_types.size() < data.tokens.size()) {
    throw Error("tokenizer.ggml.token_type has " + std::to_string(data.token_types.size()) +
                    " entries for " + std::to_string(data.tokens.size()) + " tokens",
                "re-convert the model with a current converter");
  }
  if (!data.scores.empty() && data.scores.size() < data.tokens.size()) {
    throw Error("tokenizer.ggml.scores has " + std::to_string(data.scores.size()) +
                    " entries for " + std::to_string(data.tokens.size()) + " tokens",
                "re-convert the model with a current converter");
  }
}

// Byte tokens ("<0x0A>") only occur in SentencePiece-style vocabularies; read them anyway.
std::string byte_token_piece(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return {};
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(text[3]), lo = hex(text[4]);
  if (hi < 0 || lo < 0) return {};
  return std::string(1, static_cast<char>(hi * 16 + lo));
}

}  // namespace

struct Tokenizer::Impl {
  explicit Impl(VocabularyData data)
      : spm(data.model == "llama"),
        vocab(std::move(data.tokens), data.token_types, alphabet, /*byte_level=*/!spm),
        merges(data.merges, vocab, alphabet),
        // SentencePiece vocabularies have no pre-tokenizer (llama.cpp ignores the name).
        config(pre_tokenizer_config(spm ? "default" : data.pre)),
        pre(config),
        spm_model(vocab, std::move(data.scores), data.unk) {
    // Out-of-range ids in the metadata count as absent, as in llama.cpp (which only warns).
    for (int32_t* id : {&data.bos, &data.eos, &data.eot, &data.eom, &data.fim_pre, &data.fim_suf,
                        &data.fim_mid, &data.fim_pad, &data.fim_rep, &data.fim_sep}) {
      if (!vocab.contains(*id)) *id = -1;
    }
    bos = data.bos;
    eos = data.eos;
    add_bos = data.add_bos.value_or(spm || config.add_bos);
    add_eos = data.add_eos.value_or(false);
    add_space_prefix = data.add_space_prefix.value_or(spm);
    if (add_bos && bos < 0) {
      throw Error(
          "the vocabulary asks for a BOS token but names none (tokenizer.ggml.bos_token_id)",
          "re-convert the model with a current converter");
    }
    if (add_eos && eos < 0) {
      throw Error(
          "the vocabulary asks for an EOS token but names none (tokenizer.ggml.eos_token_id)",
          "re-convert the model with a current converter");
    }
    eog = resolve_special_tokens(data, vocab);
    specials = std::make_unique<SpecialTokenSplitter>(vocab);
    pieces.resize(vocab.size());
    for (int32_t id = 0; id < vocab.size(); ++id) {
      const uint8_t a = vocab.attrs(id);
      if (a & (kAttrControl | kAttrUnknown | kAttrUserDefined)) {
        pieces[id] = vocab.text(id);
      } else if (a & kAttrNormal) {
        pieces[id] =
            spm ? unescape_spm_spaces(vocab.text(id)) : alphabet.decode_lossy(vocab.text(id));
      } else if (a & kAttrByte) {
        pieces[id] = byte_token_piece(vocab.text(id));
      }  // unused and undefined tokens print as nothing
    }
  }

  void check(int32_t id) const {
    if (!vocab.contains(id)) {
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                      std::to_string(vocab.size() - 1) + ")",
                  "the ids must come from this model's tokenizer");
    }
  }

  void encode_text(std::string_view raw, BpeEncoder& bpe, std::vector<int32_t>& out) const {
    const NormalizedText text = normalize_like_llama(raw);
    const std::string_view bytes = text.bytes;
    for (const Span word : pre.split(text.regex_subject)) {
      bpe.encode_word(bytes.substr(word.begin, word.end - word.begin), out);
    }
  }

  // Text fragments of a SentencePiece vocabulary: a space prefix where asked, spaces escaped,
  // merged by score.
  void encode_spm(std::string_view raw, bool prefix_space, SpmEncoder& encoder,
                  std::vector<int32_t>& out) const {
    std::string text;
    if (prefix_space) text = kSpmSpace;
    escape_spm_spaces(raw, text);
    encoder.encode(text, out);
  }

  ByteLevelAlphabet alphabet;  // first: the members below are built with it
  bool spm;                    // SentencePiece-style ("llama"), else byte-level BPE ("gpt2")
  Vocabulary vocab;
  MergeTable merges;
  PreTokenizerConfig config;
  PreTokenizer pre;
  SpmModel spm_model;
  std::unordered_set<int32_t> eog;
  std::unique_ptr<SpecialTokenSplitter> specials;  // refers to vocab
  std::vector<std::string> pieces;                 // token_to_piece(id, special = true)
  int32_t bos = -1;
  int32_t eos = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
};

Tokenizer Tokenizer::from_vocabulary(VocabularyData data) {
  validate(data);
  return Tokenizer(std::make_unique<Impl>(std::move(data)));
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  return from_vocabulary(VocabularyData::from_gguf(file));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && m.add_bos) out.push_back(m.bos);
  const std::vector<Fragment> fragments = m.specials->split(text, parse_special);
  if (m.spm) {
    SpmEncoder encoder(m.vocab, m.spm_model);
    bool after_special = true;  // the start of the text counts as "after a special token"
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        m.encode_spm(text.substr(f.begin, f.end - f.begin), m.add_space_prefix && after_special,
                     encoder, out);
      }
      after_special = f.token >= 0;
    }
  } else {
    BpeEncoder bpe(m.vocab, m.merges, m.alphabet, m.config.ignore_merges);
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        m.encode_text(text.substr(f.begin, f.end - f.begin), bpe, out);
      }
    }
  }
  if (add_special && m.add_eos) out.push_back(m.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  impl_->check(id);
  if (!special && (impl_->vocab.attrs(id) & (kAttrControl | kAttrUnknown))) return {};
  return impl_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
  std::string out;
  // The space the encoder put in front of the text goes again, from the first token only (even
  // when that one prints nothing), as in llama_detokenize.
  bool strip_space = impl_->add_space_prefix;
  for (int32_t id : ids) {
    impl_->check(id);
    const bool skip = !special && (impl_->vocab.attrs(id) & (kAttrControl | kAttrUnknown));
    if (!skip) {
      const std::string& piece = impl_->pieces[id];
      out.append(piece, strip_space && piece.starts_with(' ') ? 1 : 0);
    }
    strip_space = false;
  }
  return tokenizer::to_valid_utf8(out);
}

int32_t Tokenizer::n_vocab() const { return impl_->vocab.size(); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }

bool Tokenizer::is_eog(int32_t id) const { return impl_->eog.count(id) > 0; }

bool Tokenizer::is_control(int32_t id) const {
  return impl_->vocab.contains(id) && (impl_->vocab.attrs(id) & kAttrControl);
}

std::optional<int32_t> Tokenizer::find(std::string_view piece) const {
  return impl_->vocab.find_text(piece);
}

const std::string& Tokenizer::text(int32_t id) const {
  impl_->check(id);
  return impl_->vocab.text(id);
}

bool Tokenizer::same_vocabulary(const Tokenizer& other) const {
  if (n_vocab() != other.n_vocab()) return false;
  for (int32_t id = 0; id < n_vocab(); ++id)
    if (text(id) != other.text(id)) return false;
  return true;
}

}  // namespace edgelm
