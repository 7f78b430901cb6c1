// edgelm perplexity -m MODEL -f TEXT [-c 512] [--chunks N] [-b BATCH]
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress_line.hpp"
#include "cli/text_file.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::cli {
namespace {

struct PerplexityArgs {
  std::string model = "smollm2", text;
  quant::PerplexityOptions o;
};

void run_perplexity(PerplexityArgs& a) {
  const std::string text = read_text_file(a.text);
  auto model = Model::load(a.model);
  ProgressLine progress("perplexity");
  a.o.on_chunk = [&](int i, int n, double ppl) {
    progress.finish();
    std::printf("[%d]%.4f,", i, ppl);
    if (i == n) std::printf("\n");
    std::fflush(stdout);
    progress.update(static_cast<double>(i) / n, "chunk " + std::to_string(i) + "/" + std::to_string(n));
  };
  const quant::PerplexityResult r = quant::perplexity(model, text, a.o);
  progress.finish();
  std::printf("%s: %lld tokens, %d chunks of %d, %lld predictions scored\n", model->path().c_str(),
              static_cast<long long>(r.n_text_tokens), r.n_chunks, a.o.n_ctx, static_cast<long long>(r.n_scored));
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.stderr_ppl);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a model on a text (llama.cpp's method)");
  cmd->add_option("-m,--model", a->model, "GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("-f,--file", a->text, "text file")->required();
  cmd->add_option("-c,--ctx-size", a->o.n_ctx, "tokens per chunk")->check(Range(16, 1 << 20))->capture_default_str();
  cmd->add_option("--chunks", a->o.n_chunks, "chunks to score (-1: all)")->check(Range(-1, 1 << 24))->capture_default_str();
  cmd->add_option("-b,--batch-size", a->o.n_batch, "tokens per forward pass")->check(Range(1, 1 << 16))->capture_default_str();
  cmd->add_option("-t,--threads", a->o.n_threads, "threads (0: all cores)")->check(Range(0, 256));
  add_kv_type_option(*cmd, a->o.kv_type);
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace edgelm::cli
