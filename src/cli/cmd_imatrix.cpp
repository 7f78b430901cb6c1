// edgelm imatrix -m MODEL -f TEXT [-o FILE] [-c 512] [--chunks N]
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress_line.hpp"
#include "cli/text_file.hpp"
#include "edgelm/quant.hpp"

namespace edgelm::cli {
namespace {

struct ImatrixArgs {
  std::string model = "smollm2", text, out = "imatrix.gguf";
  quant::ImatrixOptions o;
};

void run_imatrix(ImatrixArgs& a) {
  const std::string text = read_text_file(a.text);
  auto model = Model::load(a.model);
  ProgressLine progress("imatrix");
  a.o.on_chunk = [&](int i, int n) {
    progress.update(static_cast<double>(i) / n, "chunk " + std::to_string(i) + "/" + std::to_string(n));
  };
  quant::ImportanceMatrix m = quant::compute_imatrix(*model, text, a.o);
  progress.finish();
  m.set_dataset(a.text);
  m.save(a.out, a.o.n_ctx);
  std::printf("wrote %s: %zu matrices, %d chunks of %d tokens\n", a.out.c_str(), m.size(), m.chunks(), a.o.n_ctx);
}

}  // namespace

void add_imatrix_command(CLI::App& app) {
  auto a = std::make_shared<ImatrixArgs>();
  CLI::App* cmd = app.add_subcommand("imatrix", "importance matrix (mean squared activations) for quantize --imatrix");
  cmd->add_option("-m,--model", a->model, "GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("-f,--file", a->text, "calibration text file")->required();
  cmd->add_option("-o,--output", a->out, "output file (GGUF, llama.cpp's imatrix layout)")->capture_default_str();
  cmd->add_option("-c,--ctx-size", a->o.n_ctx, "tokens per chunk")->check(Range(16, 1 << 20))->capture_default_str();
  cmd->add_option("--chunks", a->o.n_chunks, "chunks to process (-1: all)")->check(Range(-1, 1 << 24))->capture_default_str();
  cmd->add_option("-t,--threads", a->o.n_threads, "threads (0: all cores)")->check(Range(0, 256));
  cmd->callback([a] { run_imatrix(*a); });
}

}  // namespace edgelm::cli
