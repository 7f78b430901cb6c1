// Token states for pooling: computed with Session::embed_batch, cached on disk as float16.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "tensor/fp16.hpp"

namespace edgelm::intent {

namespace {
constexpr char kMagic[4] = {'E', 'L', 'M', 'F'};
constexpr uint32_t kVersion = 1;
// How texts become token ids; part of the cache key so that a change invalidates old entries.
constexpr const char* kEncodingVersion = "encode-v1:bos-dropped";

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("EDGELM_FEATURE_CACHE"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/edgelm/features";
}

bool load_cache(const std::string& path, const std::string& key, size_t n_texts, int n_embd, TokenStates& out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  bool ok = false;
  char magic[4];
  uint32_t version = 0, embd = 0;
  uint64_t n = 0, rows = 0;
  char stored_key[64];
  if (std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, kMagic, 4) == 0 && std::fread(&version, 4, 1, f) == 1 &&
      version == kVersion && std::fread(stored_key, 1, 64, f) == 64 && std::memcmp(stored_key, key.data(), 64) == 0 &&
      std::fread(&embd, 4, 1, f) == 1 && static_cast<int>(embd) == n_embd && std::fread(&n, 8, 1, f) == 1 &&
      n == n_texts && std::fread(&rows, 8, 1, f) == 1 && rows < (uint64_t{1} << 34) / std::max(1, n_embd)) {
    std::error_code ec;
    const uint64_t expect = 4 + 4 + 64 + 4 + 8 + 8 + (n + 1) * 8 + rows * embd * 2;
    if (std::filesystem::file_size(path, ec) == expect && !ec) {
      out.n_embd = n_embd;
      out.offsets.resize(n + 1);
      out.data.resize(rows * embd);
      ok = std::fread(out.offsets.data(), 8, n + 1, f) == n + 1 &&
           std::fread(out.data.data(), 2, out.data.size(), f) == out.data.size() && out.offsets[0] == 0 &&
           out.offsets[n] == rows;
      for (size_t i = 0; ok && i < n; ++i) ok = out.offsets[i] < out.offsets[i + 1];
    }
  }
  std::fclose(f);
  return ok;
}

void store_cache(const std::string& path, const std::string& key, const TokenStates& s) {
  // A cache that cannot be written only costs speed next time, so failures are silent.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return;
  const uint32_t embd = static_cast<uint32_t>(s.n_embd);
  const uint64_t n = s.size(), rows = s.offsets.back();
  bool ok = std::fwrite(kMagic, 1, 4, f) == 4 && std::fwrite(&kVersion, 4, 1, f) == 1 &&
            std::fwrite(key.data(), 1, 64, f) == 64 && std::fwrite(&embd, 4, 1, f) == 1 &&
            std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(&rows, 8, 1, f) == 1 &&
            std::fwrite(s.offsets.data(), 8, s.offsets.size(), f) == s.offsets.size() &&
            std::fwrite(s.data.data(), 2, s.data.size(), f) == s.data.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}
}  // namespace

void TokenStates::get(size_t i, std::vector<float>& out) const {
  const size_t b = offsets[i] * n_embd, e = offsets[i + 1] * n_embd;
  out.resize(e - b);
  for (size_t k = b; k < e; ++k) out[k - b] = fp16_to_f32(data[k]);
}

std::vector<int32_t> encode_text(const Tokenizer& tok, std::string_view text, const std::string& templ) {
  if (blank(text)) throw Error("the text is empty", "give a non-empty utterance");
  std::string s = templ;
  const size_t at = s.find("{text}");
  if (at == std::string::npos) s += text;
  else s.replace(at, 6, text);
  return tok.encode(s, tok.add_bos(), false);
}

TokenStates text_states(const std::shared_ptr<const Model>& model, const std::string& backbone_sha256,
                        const std::vector<std::string>& texts, const FeatureOptions& opts, const ProgressFn& progress,
                        bool* cache_hit) {
  const Tokenizer& tok = model->tokenizer();
  const int n_embd = model->config().n_embd;
  const size_t n_skip = tok.add_bos() ? 1 : 0;
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(texts.size());
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      ids.push_back(encode_text(tok, texts[i], opts.templ));
    } catch (const Error& e) {
      throw Error("text " + std::to_string(i + 1) + ": " + e.what(), e.hint());
    }
    if (ids.back().size() <= n_skip) throw Error("text " + std::to_string(i + 1) + " produced no tokens");
    longest = std::max(longest, ids.back().size());
  }
  if (longest > 2048)
    throw Error("a text has " + std::to_string(longest) + " tokens; the classifier reads at most 2048", "shorten it");

  // The key covers everything the states depend on: backbone bytes, the exact token ids.
  std::string key_src = backbone_sha256 + "\n" + kEncodingVersion + "\n";
  const int n_layers = early_exit(opts.n_layers, model->config());
  if (n_layers > 0) key_src += "layers " + std::to_string(n_layers) + "\n";
  {
    std::vector<unsigned char> bytes;
    for (const auto& v : ids) {
      const uint32_t n = static_cast<uint32_t>(v.size());
      bytes.insert(bytes.end(), reinterpret_cast<const unsigned char*>(&n), reinterpret_cast<const unsigned char*>(&n) + 4);
      bytes.insert(bytes.end(), reinterpret_cast<const unsigned char*>(v.data()),
                   reinterpret_cast<const unsigned char*>(v.data() + v.size()));
    }
    key_src += sha256_hex(bytes);
  }
  const std::string key = sha256_hex({reinterpret_cast<const unsigned char*>(key_src.data()), key_src.size()});
  const std::string dir = opts.cache_dir.empty() ? default_cache_dir() : opts.cache_dir;
  const bool use_cache = opts.cache_dir != "-";
  const std::string path = dir + "/states-" + key.substr(0, 32) + ".f16";

  TokenStates out;
  if (use_cache && load_cache(path, key, texts.size(), n_embd, out)) {
    if (cache_hit) *cache_hit = true;
    return out;
  }
  if (cache_hit) *cache_hit = false;

  SessionOptions so;
  so.n_seq = std::max(1, std::min(opts.texts_per_call, 256));
  so.n_ctx = static_cast<int>(std::max<size_t>(32, (longest + 31) / 32 * 32));
  so.n_batch = std::max(opts.n_batch, so.n_ctx);
  so.n_threads = opts.n_threads;
  so.n_layers = n_layers;
  Session session(model, so);
  out.n_embd = n_embd;
  out.offsets.assign(1, 0);
  size_t rows = 0;
  for (const auto& v : ids) rows += v.size() - n_skip;
  out.data.reserve(rows * n_embd);
  for (size_t b = 0; b < ids.size(); b += so.n_seq) {
    const size_t e = std::min(ids.size(), b + so.n_seq);
    std::span<const std::vector<int32_t>> chunk(ids.data() + b, e - b);
    const std::span<const float> h = session.embed_batch(chunk);
    size_t row = 0;
    for (const auto& v : chunk) {
      for (size_t t = n_skip; t < v.size(); ++t) {
        const float* r = h.data() + (row + t) * n_embd;
        for (int k = 0; k < n_embd; ++k) out.data.push_back(f32_to_fp16(r[k]));
      }
      row += v.size();
      out.offsets.push_back(out.offsets.back() + (v.size() - n_skip));
    }
    if (progress) progress(e, ids.size());
  }
  if (use_cache) store_cache(path, key, out);
  return out;
}

}  // namespace edgelm::intent
