// edgelm convert HF_DIR OUT.gguf: a Hugging Face checkpoint to GGUF.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/progress_line.hpp"
#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"

namespace edgelm::cli {
namespace {

struct ConvertArgs {
  std::string dir, out;
  convert::ConvertOptions o;
};

void run(ConvertArgs& a) {
  ProgressLine progress("converting");
  a.o.on_progress = [&](const convert::ConvertProgress& p) {
    const double f = p.tensors_total ? static_cast<double>(p.tensors_done) / p.tensors_total : 1.0;
    progress.update(f, "[" + std::to_string(p.tensors_done) + "/" + std::to_string(p.tensors_total) + "] " + *p.current);
  };
  a.o.on_note = [](const std::string& n) { std::fprintf(stderr, "note: %s\n", n.c_str()); };
  const convert::ConvertReport r = convert::convert_hf(a.dir, a.out, a.o);
  progress.finish();
  std::printf("wrote %s: %s, %zu tensors, %s, tokenizer %s%s%s, %.1f MiB\n", a.out.c_str(), r.arch.c_str(), r.n_tensors,
              a.o.type.c_str(), r.tokenizer_model.c_str(), r.tokenizer_pre.empty() ? "" : "/", r.tokenizer_pre.c_str(),
              static_cast<double>(r.file_bytes) / (1 << 20));
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "convert a Hugging Face checkpoint directory (safetensors) to GGUF");
  cmd->add_option("hf_dir", a->dir, "checkpoint directory: config.json, tokenizer.json, *.safetensors")->required();
  cmd->add_option("output", a->out, "GGUF file to write")->required();
  cmd->add_option("-t,--type", a->o.type, "f32, f16, bf16, q8_0 or any type edgelm quantize writes")->capture_default_str();
  cmd->add_option("--threads", a->o.n_threads, "quantization threads (0: all)")->check(CLI::Range(0, 1024));
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
