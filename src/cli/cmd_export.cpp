// edgelm export --merge-lora: a model with LoRA adapters folded into its weights.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
#include "edgelm/lora.hpp"

namespace edgelm::cli {
namespace {

struct ExportArgs {
  ModelOptions mo;
  std::string out;
  std::string out_type = "f16";
};

void run(ExportArgs& a) {
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
  CLI::App* cmd = app.add_subcommand("export", "write a model with LoRA adapters merged into its weights");
  cmd->add_option("-m,--model", a->mo.model, "base GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--merge-lora", a->mo.lora, "LoRA adapter to fold into the weights; repeat for several")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lora-scale", a->mo.lora_scale, "scale of each --merge-lora, in order (default 1)")
      ->check(Range(-100.0f, 100.0f));
  cmd->add_option("-o,--output", a->out, "model file to write (GGUF)")->required();
  cmd->add_option("--out-type", a->out_type, "f16 (matrices; norms stay f32) or f32")->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
