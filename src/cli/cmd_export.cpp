// edgelm export --merge-lora: a model with LoRA adapters folded into its weights.
// edgelm export --hf DIR: the model as a Hugging Face checkpoint (transformers loads it).
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"
#include "edgelm/lora.hpp"

namespace edgelm::cli {
namespace {

struct ExportArgs {
  ModelOptions mo;
  std::string out;
  std::string hf_dir;
  std::string out_type = "f16";
};

void run(ExportArgs& a) {
  if (!a.hf_dir.empty()) {
    if (!a.mo.lora.empty() || !a.out.empty())
      throw Error("--hf writes a model as it is", "merge adapters first (--merge-lora ... -o merged.gguf), then export --hf that file");
    const auto r = convert::export_hf(resolve_model_path(a.mo.model), a.hf_dir);
    std::string files;
    for (const auto& f : r.files) files += (files.empty() ? "" : ", ") + f;
    std::printf("wrote %s: %s (%zu tensors, F32)\n", a.hf_dir.c_str(), files.c_str(), r.n_tensors);
    return;
  }
  if (a.out.empty()) throw Error("no output", "pass -o OUT.gguf with --merge-lora, or --hf DIR");
  if (a.mo.lora.empty()) throw Error("nothing to merge", "pass --merge-lora ADAPTER.gguf (repeat for several)");
  if (a.out_type != "f16" && a.out_type != "f32") throw Error("--out-type must be f16 or f32");
  auto model = load_model(a.mo);
  merge_lora(*model, a.mo.session.lora, a.out, a.out_type == "f32");
  std::printf("merged %zu LoRA adapter%s into %s: wrote %s (%s; shrink it with edgelm quantize)\n", a.mo.lora.size(),
              a.mo.lora.size() == 1 ? "" : "s", model->config().name.c_str(), a.out.c_str(), a.out_type.c_str());
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "write a model with LoRA adapters merged into its weights, or as a Hugging Face checkpoint (--hf)");
  cmd->add_option("-m,--model", a->mo.model, "base GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--merge-lora", a->mo.lora, "LoRA adapter to fold into the weights; repeat for several")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lora-scale", a->mo.lora_scale, "scale of each --merge-lora, in order (default 1)")
      ->check(Range(-100.0f, 100.0f));
  cmd->add_option("-o,--output", a->out, "model file to write (GGUF), with --merge-lora");
  cmd->add_option("--hf", a->hf_dir, "write config.json, model.safetensors and the tokenizer files into this directory");
  cmd->add_option("--out-type", a->out_type, "f16 (matrices; norms stay f32) or f32")->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
