#include "convert/hf_tokenizer.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "edgelm/error.hpp"
#include "edgelm/tokenizer.hpp"
#include "gguf/atomic_file_writer.hpp"

namespace edgelm::convert {
namespace fs = std::filesystem;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// Split patterns of the byte-level families, as their tokenizer.json files spell them.
constexpr const char* kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json read_json(const fs::path& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (required) throw Error(path.string() + ": cannot open", "a Hugging Face checkpoint directory holds it; download it too");
    return nullptr;
  }
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")", "download or save the file again");
  }
}

Error bad(const fs::path& path, const std::string& what) {
  return Error(path.string() + ": " + what, "edgelm convert reads tokenizer.json files saved by the tokenizers library");
}

// "ByteLevel" pre-tokenizers with llama.cpp's name for their split patterns, or "" when the
// pre-tokenizer is not byte-level at all.
std::string byte_level_pre(const json& pt, const fs::path& path) {
  if (!pt.is_object()) return "";
  auto byte_level = [&](const json& b, bool use_regex) {
    if (b.value("type", "") != "ByteLevel") return false;
    if (b.value("add_prefix_space", false)) throw bad(path, "a ByteLevel pre-tokenizer with add_prefix_space is not supported");
    return b.value("use_regex", true) == use_regex;
  };
  if (byte_level(pt, true)) return "gpt-2";
  if (pt.value("type", "") != "Sequence" || !pt.contains("pretokenizers") || !pt["pretokenizers"].is_array()) return "";
  const json& seq = pt["pretokenizers"];
  if (seq.size() == 2 && seq[0].value("type", "") == "Digits" && seq[0].value("individual_digits", false) &&
      byte_level(seq[1], true))
    return "smollm";
  if (seq.size() == 2 && seq[0].value("type", "") == "Split" && byte_level(seq[1], false)) {
    const json& pat = seq[0].contains("pattern") ? seq[0]["pattern"] : json();
    const std::string re = pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string() ? pat["Regex"].get<std::string>() : "";
    if (re == kLlama3Split) return "llama-bpe";
    if (re == kQwen2Split) return "qwen2";
    throw bad(path, "the split pattern of the pre-tokenizer is not one edgelm knows (GPT-2, SmolLM, Llama 3, Qwen 2)");
  }
  bool any_byte_level = false;
  for (const json& s : seq) any_byte_level |= s.value("type", "") == "ByteLevel";
  if (any_byte_level)
    throw bad(path, "the byte-level pre-tokenizer sequence is not one edgelm knows (GPT-2, SmolLM, Llama 3, Qwen 2)");
  return "";
}

// tokenizer_config.json's special tokens are strings or {"content": ...} objects.
std::optional<std::string> token_text(const json& tc, const char* key) {
  if (!tc.is_object() || !tc.contains(key)) return std::nullopt;
  const json& v = tc[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

std::optional<int64_t> config_id(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
  return std::nullopt;
}

std::string chat_template(const fs::path& dir, const json& tc) {
  if (tc.is_object() && tc.contains("chat_template")) {
    const json& t = tc["chat_template"];
    if (t.is_string()) return t.get<std::string>();
    if (t.is_array())
      for (const json& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          return e["template"].get<std::string>();
  }
  if (std::ifstream in(dir / "chat_template.jinja"); in) {
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  const json ct = read_json(dir / "chat_template.json", false);
  if (ct.is_object() && ct.contains("chat_template") && ct["chat_template"].is_string())
    return ct["chat_template"].get<std::string>();
  return "";
}

}  // namespace

void write_text_file(const std::string& path, const std::string& text) {
  gguf::AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

TokenizerSummary write_tokenizer_metadata(const std::string& dir_s, const json& config, int n_vocab, gguf::Writer& w) {
  const fs::path dir(dir_s), tj_path = dir / "tokenizer.json";
  const json tj = read_json(tj_path, true);
  const json tc = read_json(dir / "tokenizer_config.json", false);
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object()) throw bad(tj_path, "no \"model\" object");
  const json& model = tj["model"];
  const std::string type = model.value("type", "");
  const json pre_tok = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json();
  const json normalizer = tj.contains("normalizer") ? tj["normalizer"] : json();
  const std::string norm_dump = normalizer.dump(), pre_dump = pre_tok.dump();
  TokenizerSummary s;
  s.pre = byte_level_pre(pre_tok, tj_path);
  const bool spm = s.pre.empty();
  if (spm && norm_dump.find("\u2581") == std::string::npos && pre_dump.find("Metaspace") == std::string::npos)
    throw bad(tj_path, "the vocabulary is neither byte-level BPE nor SentencePiece-style (spaces as \u2581)");
  s.model = spm ? "llama" : "gpt2";
  if (type != "BPE" && !(spm && type == "Unigram"))
    throw bad(tj_path, "model type '" + type + "' is not supported here (byte-level BPE, or BPE / Unigram with \u2581 spaces)");

  // Tokens by id: the model's vocabulary, then the added tokens.
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<bool> have;
  auto put = [&](int64_t id, const std::string& text) {
    if (id < 0 || id >= (int64_t{1} << 22)) throw bad(tj_path, "token id " + std::to_string(id) + " is out of range");
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      have.resize(id + 1);
      scores.resize(id + 1, 0.0f);
    }
    tokens[id] = text;
    have[id] = true;
  };
  if (type == "BPE") {
    if (!model.contains("vocab") || !model["vocab"].is_object()) throw bad(tj_path, "model.vocab is not an object");
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      if (!it.value().is_number_integer()) throw bad(tj_path, "model.vocab['" + it.key() + "'] is not an id");
      put(it.value().get<int64_t>(), it.key());
    }
  } else {  // Unigram: [[piece, score], ...] in id order
    if (!model.contains("vocab") || !model["vocab"].is_array()) throw bad(tj_path, "model.vocab is not an array");
    int64_t id = 0;
    for (const json& e : model["vocab"]) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) throw bad(tj_path, "a Unigram vocabulary entry is not [piece, score]");
      put(id, e[0].get<std::string>());
      scores[id++] = e[1].get<float>();
    }
  }
  std::vector<int32_t> types;
  std::map<std::string, int64_t> added;
  std::vector<std::pair<int64_t, bool>> added_ids;  // id, special
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const json& a : tj["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
        throw bad(tj_path, "an added_tokens entry lacks an integer id or a content string");
      const int64_t id = a["id"].get<int64_t>();
      put(id, a["content"].get<std::string>());
      added[a["content"].get<std::string>()] = id;
      added_ids.emplace_back(id, a.value("special", false));
    }
  }
  if (static_cast<int64_t>(tokens.size()) > n_vocab)
    throw bad(tj_path, "the tokenizer has " + std::to_string(tokens.size()) + " tokens but the embedding only " + std::to_string(n_vocab) + " rows");
  const size_t n_real = tokens.size();
  types.assign(n_vocab, static_cast<int32_t>(TokenType::Normal));
  tokens.resize(n_vocab);
  have.resize(n_vocab);
  scores.resize(n_vocab, 0.0f);
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!have[i]) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = static_cast<int32_t>(TokenType::Unused);
    }
  for (auto [id, special] : added_ids)
    types[id] = static_cast<int32_t>(special ? TokenType::Control : TokenType::UserDefined);

  auto id_of = [&](const std::string& text) -> std::optional<int64_t> {
    if (auto it = added.find(text); it != added.end()) return it->second;
    for (size_t i = 0; i < n_real; ++i)
      if (have[i] && tokens[i] == text) return static_cast<int64_t>(i);
    return std::nullopt;
  };

  w.set_string("tokenizer.ggml.model", s.model);
  if (!spm) {
    w.set_string("tokenizer.ggml.pre", s.pre);
    std::vector<std::string> merges;
    if (model.contains("merges") && model["merges"].is_array()) {
      for (const json& m : model["merges"]) {
        if (m.is_string()) merges.push_back(m.get<std::string>());
        else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
          merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        else throw bad(tj_path, "a merges entry is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_string_array("tokenizer.ggml.merges", merges);
  } else {
    if (type == "BPE") {
      // SentencePiece merges pieces by score; a BPE vocabulary's merge order gives the scores
      // (earlier merges score higher). Pieces no merge makes score below every merge.
      std::vector<bool> scored(n_vocab, false);
      const json& merges = model.contains("merges") && model["merges"].is_array() ? model["merges"] : json::array();
      int64_t rank = 0;
      for (const json& m : merges) {
        std::string joined;
        if (m.is_string()) {
          const std::string ms = m.get<std::string>();
          const size_t sp = ms.find(' ');
          if (sp == std::string::npos) throw bad(tj_path, "a merges entry has no space");
          joined = ms.substr(0, sp) + ms.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
          joined = m[0].get<std::string>() + m[1].get<std::string>();
        } else {
          throw bad(tj_path, "a merges entry is neither \"a b\" nor [\"a\", \"b\"]");
        }
        auto it = model["vocab"].find(joined);
        if (it != model["vocab"].end() && it->is_number_integer() && !scored[it->get<int64_t>()]) {
          scores[it->get<int64_t>()] = -static_cast<float>(rank);
          scored[it->get<int64_t>()] = true;
        }
        ++rank;
      }
      auto characters = [](const std::string& t) {
        size_t n = 0;
        for (unsigned char ch : t) n += (ch & 0xC0) != 0x80;
        return n;
      };
      for (size_t i = 0; i < n_real; ++i)
        if (!scored[i] && characters(tokens[i]) > 1) scores[i] = -static_cast<float>(rank + i);
    }
    for (size_t i = 0; i < n_real; ++i) {
      const std::string& t = tokens[i];
      if (types[i] == static_cast<int32_t>(TokenType::Normal) && t.size() == 6 && t.starts_with("<0x") && t.back() == '>')
        types[i] = static_cast<int32_t>(TokenType::Byte);
    }
    if (model.contains("unk_token") && model["unk_token"].is_string())
      if (auto id = id_of(model["unk_token"].get<std::string>())) {
        types[*id] = static_cast<int32_t>(TokenType::Unknown);
        w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(*id));
      }
    if (model.contains("unk_id") && model["unk_id"].is_number_integer()) {
      const int64_t id = model["unk_id"].get<int64_t>();
      if (id >= 0 && id < n_vocab) {
        types[id] = static_cast<int32_t>(TokenType::Unknown);
        w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(id));
      }
    }
    const bool prefix = norm_dump.find("\"Prepend\"") != std::string::npos ||
                        (pre_dump.find("Metaspace") != std::string::npos && pre_dump.find("\"never\"") == std::string::npos &&
                         pre_dump.find("\"add_prefix_space\":false") == std::string::npos);
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_f32_array("tokenizer.ggml.scores", scores);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_bool("tokenizer.ggml.add_space_prefix", prefix);
  }

  // Special ids: tokenizer_config.json's texts, then config.json's ids.
  auto special = [&](const char* tc_key, const char* config_key, const char* gguf_key) -> std::optional<int64_t> {
    std::optional<int64_t> id;
    if (auto text = token_text(tc, tc_key)) id = id_of(*text);
    if (!id && config_key) id = config_id(config, config_key);
    if (id && *id >= 0 && *id < n_vocab) {
      w.set_u32(gguf_key, static_cast<uint32_t>(*id));
      return id;
    }
    return std::nullopt;
  };
  const auto bos = special("bos_token", "bos_token_id", "tokenizer.ggml.bos_token_id");
  const auto eos = special("eos_token", "eos_token_id", "tokenizer.ggml.eos_token_id");
  special("pad_token", "pad_token_id", "tokenizer.ggml.padding_token_id");
  if (!spm) special("unk_token", nullptr, "tokenizer.ggml.unknown_token_id");

  // add_bos / add_eos: tokenizer_config.json, else what the post-processor adds around a text.
  bool add_bos = false, add_eos = false;
  const json& pp = tj.contains("post_processor") ? tj["post_processor"] : json();
  if (pp.is_object() && pp.value("type", "") == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array() &&
      !pp["single"].empty()) {
    add_bos = pp["single"].front().contains("SpecialToken");
    add_eos = pp["single"].back().contains("SpecialToken");
  }
  if (tc.is_object() && tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) add_bos = tc["add_bos_token"].get<bool>();
  if (tc.is_object() && tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) add_eos = tc["add_eos_token"].get<bool>();
  w.set_bool("tokenizer.ggml.add_bos_token", add_bos && bos.has_value());
  w.set_bool("tokenizer.ggml.add_eos_token", add_eos && eos.has_value());
  if (const std::string t = chat_template(dir, tc); !t.empty()) w.set_string("tokenizer.chat_template", t);
  return s;
}

void export_tokenizer(const gguf::File& f, const std::string& dir_s, std::vector<std::string>& written) {
  const fs::path dir(dir_s);
  const VocabularyData v = VocabularyData::from_gguf(f);
  if (v.model != "gpt2")
    throw Error(f.path() + ": export writes byte-level BPE vocabularies (tokenizer.ggml.model 'gpt2'), not '" + v.model + "'",
                "export a model with a GPT-2-style vocabulary such as SmolLM2's");
  const auto json_bool = [](bool b) { return ojson(b); };
  ojson byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  ojson pre;
  const std::string p = v.pre.empty() ? "gpt-2" : v.pre;
  if (p == "gpt-2") {
    pre = byte_level;
  } else if (p == "smollm") {
    pre = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
  } else if (p == "llama-bpe" || p == "llama3" || p == "qwen2") {
    ojson split = {{"type", "Split"}, {"pattern", {{"Regex", p == "qwen2" ? kQwen2Split : kLlama3Split}}},
                   {"behavior", "Isolated"}, {"invert", false}};
    ojson bl = byte_level;
    bl["use_regex"] = false;
    pre = {{"type", "Sequence"}, {"pretokenizers", {split, bl}}};
  } else {
    throw Error(f.path() + ": export knows the split patterns gpt-2, smollm, llama-bpe and qwen2, not '" + p + "'");
  }
  const size_t n = v.tokens.size();
  auto type_of = [&](size_t i) { return v.token_types.empty() ? TokenType::Normal : static_cast<TokenType>(v.token_types[i]); };
  ojson added = ojson::array(), added_decoder = ojson::object(), vocab = ojson::object();
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = type_of(i);
    if (t == TokenType::Control || t == TokenType::UserDefined) {
      const bool special = t == TokenType::Control;
      ojson e = {{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false},
                 {"rstrip", false}, {"normalized", !special}, {"special", special}};
      added.push_back(e);
      e.erase("id");
      added_decoder[std::to_string(i)] = e;
    }
    // Padding rows past the tokenizer ("[PAD<id>]", unused) are left out, as the checkpoint
    // they came from had them: convert makes them again from the embedding's size.
    if (t != TokenType::Unused) vocab[v.tokens[i]] = i;
  }
  const bool add_bos = v.add_bos.value_or(false) && v.bos >= 0, add_eos = v.add_eos.value_or(false) && v.eos >= 0;
  ojson post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  if (add_bos || add_eos) {
    ojson single = ojson::array(), pair = ojson::array(), specials = ojson::object();
    auto sp = [&](int32_t id, int type_id) {
      return ojson{{"SpecialToken", {{"id", v.tokens[id]}, {"type_id", type_id}}}};
    };
    for (int seq = 0; seq < 2; ++seq) {
      ojson& out = seq == 0 ? single : pair;
      for (int k = 0; k <= seq; ++k) {
        if (add_bos) out.push_back(sp(v.bos, k));
        out.push_back({{"Sequence", {{"id", k == 0 ? "A" : "B"}, {"type_id", k}}}});
        if (add_eos) out.push_back(sp(v.eos, k));
      }
    }
    for (int32_t id : {add_bos ? v.bos : -1, add_eos ? v.eos : -1})
      if (id >= 0) specials[v.tokens[id]] = {{"id", v.tokens[id]}, {"ids", {id}}, {"tokens", {v.tokens[id]}}};
    post = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
  }
  ojson tj = {
      {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
      {"normalizer", nullptr}, {"pre_tokenizer", pre}, {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"ignore_merges", p == "llama-bpe" || p == "llama3"}, {"vocab", vocab}, {"merges", v.merges}}}};
  write_text_file((dir / "tokenizer.json").string(), tj.dump(1) + "\n");
  written.push_back("tokenizer.json");

  ojson tc = {{"add_bos_token", json_bool(add_bos)}, {"add_eos_token", json_bool(add_eos)}, {"added_tokens_decoder", added_decoder}};
  if (v.bos >= 0) tc["bos_token"] = v.tokens[v.bos];
  if (v.eos >= 0) tc["eos_token"] = v.tokens[v.eos];
  if (f.has("tokenizer.ggml.padding_token_id")) {
    const int64_t pad = f.get_i64("tokenizer.ggml.padding_token_id");
    if (pad >= 0 && static_cast<size_t>(pad) < n) tc["pad_token"] = v.tokens[pad];
  }
  if (f.has("tokenizer.chat_template")) tc["chat_template"] = f.get_string("tokenizer.chat_template");
  tc["clean_up_tokenization_spaces"] = false;
  tc["model_max_length"] = f.get_u32_or(f.get_string("general.architecture") + ".context_length", 2048);
  tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  write_text_file((dir / "tokenizer_config.json").string(), tc.dump(2) + "\n");
  written.push_back("tokenizer_config.json");
}

}  // namespace edgelm::convert
