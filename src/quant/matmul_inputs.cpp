// collect_matmul_inputs: one forward pass of the session over a sequence, with every matrix
// product's input reported through SessionOptions::on_matmul_input -- the activations an
// importance matrix needs, from the same arithmetic the model runs with, for every family.
#include <algorithm>

#include "edgelm/error.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"

namespace edgelm::quant {

std::vector<float> collect_matmul_inputs(const Model& model, std::span<const int32_t> tokens,
                                         const MatmulInputHook& hook, int n_threads) {
  if (tokens.empty()) throw Error("nothing to evaluate: the token list is empty");
  const int n = static_cast<int>(tokens.size());
  // A non-owning handle: the session lives only inside this call.
  std::shared_ptr<const Model> m(&model, [](const Model*) {});
  SessionOptions so;
  so.n_ctx = std::max(16, n);
  so.n_batch = n;  // one forward pass: each report holds every token of the sequence
  so.n_threads = n_threads;
  so.on_matmul_input = hook;
  Session s(m, so);
  // Logits for every token, so the output projection's input is reported for all of them too.
  const auto all = s.eval_all(tokens);
  const size_t n_vocab = static_cast<size_t>(model.config().n_vocab);
  return {all.end() - static_cast<std::ptrdiff_t>(n_vocab), all.end()};
}

}  // namespace edgelm::quant
