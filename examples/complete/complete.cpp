// Completes a prompt greedily with edgelm's public C++ API:
//   complete MODEL PROMPT [N]      (MODEL: a .gguf path or a model-cache name such as smollm2)
#include <cstdio>
#include <cstdlib>
#include <string>

#include <edgelm/error.hpp>
#include <edgelm/model.hpp>
#include <edgelm/sampler.hpp>
#include <edgelm/session.hpp>
#include <edgelm/tokenizer.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT [N]\n", argv[0]);
    return 2;
  }
  try {
    const auto model = edgelm::Model::load(argv[1]);
    edgelm::Session session(model, {.n_ctx = 512, .n_threads = 2});
    edgelm::Sampler greedy(edgelm::SamplerParams{.temp = 0});
    const edgelm::Tokenizer& tok = model->tokenizer();
    const std::string prompt = argv[2];
    const int n = argc > 3 ? std::atoi(argv[3]) : 16;
    edgelm::TokenStreamDecoder text(tok);
    std::fputs(prompt.c_str(), stdout);
    edgelm::generate(session, greedy, tok.encode(prompt, tok.add_bos(), true), n, [&](int32_t t) {
      std::fputs(text.push(t).c_str(), stdout);
      return true;
    });
    std::fputs(text.flush().c_str(), stdout);
    std::fputc('\n', stdout);
  } catch (const edgelm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  }
  return 0;
}
