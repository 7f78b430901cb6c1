// Perplexity by the standard method, as llama.cpp's perplexity tool computes it, so that the two
// numbers can be compared directly: whole text tokenized once, non-overlapping chunks of n_ctx
// tokens each evaluated from an empty cache, only the second half of each chunk scored (every
// scored prediction has at least n_ctx / 2 tokens of context), negative log-likelihoods summed in
// double precision.
#include <algorithm>
#include <cmath>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"

namespace edgelm::quant {

PerplexityResult perplexity(std::shared_ptr<const Model> model, std::string_view text,
                            const PerplexityOptions& o) {
  if (o.n_ctx < 16) throw Error("context -c " + std::to_string(o.n_ctx) + " is too small", "use -c 128 or more");
  if (o.n_batch < 1) throw Error("batch size -b must be at least 1");
  const Tokenizer& tok = model->tokenizer();
  const std::vector<int32_t> ids = tok.encode(text, true, false);
  PerplexityResult r;
  r.n_text_tokens = static_cast<int64_t>(ids.size());
  const int64_t n_avail = r.n_text_tokens / o.n_ctx;
  if (r.n_text_tokens < 2LL * o.n_ctx)
    throw Error("the text has " + std::to_string(ids.size()) + " tokens; perplexity with -c " +
                    std::to_string(o.n_ctx) + " needs at least " + std::to_string(2 * o.n_ctx),
                "use a longer text or a smaller -c");
  const int n_chunks = static_cast<int>(o.n_chunks > 0 ? std::min<int64_t>(o.n_chunks, n_avail) : n_avail);
  const bool bos = tok.add_bos() && tok.bos() >= 0;
  const int n_vocab = model->config().n_vocab;

  SessionOptions so;
  so.n_ctx = o.n_ctx;
  so.n_threads = o.n_threads;
  so.n_batch = std::min(o.n_batch, o.n_ctx);
  so.kv_type = o.kv_type;
  Session s(model, so);

  const int first = o.n_ctx / 2;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<int32_t> chunk(static_cast<size_t>(o.n_ctx));
  for (int ci = 0; ci < n_chunks; ++ci) {
    const int64_t start = static_cast<int64_t>(ci) * o.n_ctx;
    std::copy(ids.begin() + start, ids.begin() + start + o.n_ctx, chunk.begin());
    if (bos) chunk[0] = tok.bos();
    s.truncate(0, 0);
    const std::span<const float> logits = s.eval_all(chunk);
    for (int i = first; i < o.n_ctx - 1; ++i) {
      const float* l = logits.data() + static_cast<size_t>(i) * n_vocab;
      const int32_t target = ids[start + i + 1];
      const float mx = *std::max_element(l, l + n_vocab);
      double sum_exp = 0;
      for (int v = 0; v < n_vocab; ++v) sum_exp += std::exp(l[v] - mx);
      const double lp = static_cast<double>(l[target] - mx) - std::log(sum_exp);
      nll += -lp;
      nll2 += lp * lp;
      ++count;
    }
    r.running.push_back(std::exp(nll / static_cast<double>(count)));
    if (o.on_chunk) o.on_chunk(ci + 1, n_chunks, r.running.back());
  }
  r.n_chunks = n_chunks;
  r.n_scored = count;
  const double mean = nll / static_cast<double>(count);
  double var = nll2 / static_cast<double>(count) - mean * mean;
  r.mean_nll = mean;
  r.ppl = std::exp(mean);
  r.stderr_ppl = (var > 0 && count > 1) ? r.ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0.0;
  return r;
}

}  // namespace edgelm::quant
