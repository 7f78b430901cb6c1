// edgelm info: describe a model file.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"
#include "model/arch.hpp"

namespace edgelm::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) { b /= 1024; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

// A LoRA adapter or a classifier head: what it holds and what it needs.
bool describe_other(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  const std::string arch = f.get_string_or("general.architecture", "");
  const bool adapter = f.get_string_or("general.type", "") == "adapter";
  if (!adapter && arch != "edgelm-classifier") return false;
  std::printf("file          %s (GGUF v%u, %s)\n", path.c_str(), f.version(),
              human_bytes(static_cast<double>(f.file_size())).c_str());
  if (adapter) {
    std::set<std::string> kinds;
    std::set<int> blocks;
    int64_t rank = 0;
    size_t n = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (!t.name.ends_with(".lora_a")) continue;
      ++n;
      rank = t.ne[1];
      const std::string target = t.name.substr(0, t.name.size() - 7);
      if (target.starts_with("blk.")) {
        blocks.insert(std::atoi(target.c_str() + 4));
        const size_t dot = target.find('.', 4);
        kinds.insert(target.substr(dot + 1, target.rfind('.') - dot - 1));
      } else {
        kinds.insert(target);
      }
    }
    std::string ks;
    for (const auto& k : kinds) ks += (ks.empty() ? "" : ", ") + k;
    std::printf("type          LoRA adapter (%s)\n", f.get_string_or("adapter.type", "?").c_str());
    std::printf("base          %s model%s%s\n", arch.c_str(),
                f.get_string_or("edgelm.lora.base_name", "").empty() ? "" : " ",
                f.get_string_or("edgelm.lora.base_name", "").c_str());
    std::printf("alpha         %g (products scaled by alpha / rank)\n", static_cast<double>(f.get_f32_or("adapter.lora.alpha", 0)));
    std::printf("matrices      %zu of rank %lld: %s", n, static_cast<long long>(rank), ks.c_str());
    if (!blocks.empty()) std::printf(" in %zu blocks (%d..%d)", blocks.size(), *blocks.begin(), *blocks.rbegin());
    std::printf("\nuse           edgelm run|chat|serve -m BASE --lora %s\n", path.c_str());
    return true;
  }
  const intent::Head h = intent::load_head(path);
  const train::HeadShape s = h.net.shape();
  std::printf("type          intent classifier head\n");
  std::printf("classes       %d%s\n", s.n_class, h.oos_index() >= 0 ? " (with oos)" : "");
  std::printf("head          %s pooling, %s\n", train::pooling_name(s.pooling),
              s.n_hidden > 0 ? ("MLP " + std::to_string(s.n_hidden)).c_str() : "linear");
  std::printf("backbone      %s (sha256 %s...), %s\n", h.backbone_name.c_str(), h.backbone_sha256.substr(0, 12).c_str(),
              h.backbone_layers > 0 ? ("first " + std::to_string(h.backbone_layers) + " blocks").c_str() : "all blocks");
  if (!h.blocks.empty())
    std::printf("fine-tuned    blocks %d and up: %s (%zu tensors)\n", h.first_block,
                h.lora_alpha > 0 ? "LoRA adapters" : "float32 copies", h.blocks.size());
  std::printf("oos threshold %g\n", static_cast<double>(h.oos_threshold));
  std::printf("use           edgelm classify -m BACKBONE --head %s TEXT\n", path.c_str());
  return true;
}

void info(const std::string& name, int n_ctx) {
  if (std::filesystem::is_regular_file(name) && describe_other(name)) return;
  auto model = Model::load(name);
  const ModelConfig& c = model->config();
  const gguf::File& f = model->file();
  std::printf("file          %s (GGUF v%u, %s)\n", model->path().c_str(), f.version(),
              human_bytes(static_cast<double>(f.file_size())).c_str());
  std::printf("name          %s\n", c.name.c_str());
  std::printf("architecture  %s\n", c.arch.c_str());
  std::printf("parameters    %.1f M\n", model->n_params() / 1e6);
  std::printf("layers        %d\n", c.n_layer);
  std::printf("embedding     %d\n", c.n_embd);
  std::printf("heads         %d query, %d key/value (head size %d)\n", c.n_head, c.n_head_kv, c.head_dim);
  std::printf("feed-forward  %d\n", c.n_ff);
  std::printf("context       %d (trained)\n", c.n_ctx_train);
  std::printf("rope          base %g, %d dims\n", c.rope_freq_base, c.n_rot);
  std::printf("vocabulary    %d tokens (%s)\n", c.n_vocab, f.get_string_or("tokenizer.ggml.model", "?").c_str());
  std::printf("output        %s\n", c.tied_output ? "tied to the token embedding" : "separate matrix");
  std::printf("chat template %s\n", model->chat_template() ? "present" : "absent");
  if (f.has("edgelm.distill.teacher_name")) {  // a distilled student's lineage
    std::string dropped;
    for (int32_t b : f.get_i32_array("edgelm.distill.pruned_blocks")) dropped += (dropped.empty() ? "" : ",") + std::to_string(b);
    std::printf("distilled     from %s (sha256 %s...): blocks %s of its %u dropped\n",
                f.get_string("edgelm.distill.teacher_name").c_str(),
                f.get_string_or("edgelm.distill.teacher_sha256", "?").substr(0, 12).c_str(),
                dropped.empty() ? "none" : dropped.c_str(), f.get_u32_or("edgelm.distill.teacher_block_count", 0));
    if (f.has("edgelm.distill.tokens_trained"))
      std::printf("              trained on %lld tokens: %s, alpha %g, T %g%s, teacher's top %u words\n",
                  static_cast<long long>(f.get_i64("edgelm.distill.tokens_trained")),
                  f.get_string_or("edgelm.distill.loss", "?").c_str(),
                  static_cast<double>(f.get_f32_or("edgelm.distill.alpha", 0)),
                  static_cast<double>(f.get_f32_or("edgelm.distill.temperature", 0)),
                  f.get_bool_or("edgelm.distill.t_squared", true) ? " (T^2 factor)" : "",
                  f.get_u32_or("edgelm.distill.top_k", 0));
    else
      std::printf("              not trained since the pruning\n");
  }
  const quant::MemoryReport m = quant::memory_report(*model, n_ctx);
  std::printf("weights       %s in %zu tensors\n", human_bytes(static_cast<double>(m.weight_bytes)).c_str(),
              f.tensors().size());
  for (const auto& [type, e] : m.weights_by_type)
    std::printf("  %-6s %4d tensors  %s\n", type.c_str(), e.tensors, human_bytes(static_cast<double>(e.bytes)).c_str());
  std::printf("KV cache      at %d tokens: %s F16, %s Q8_0 (--kv-type q8_0)\n", n_ctx,
              human_bytes(static_cast<double>(m.kv_f16_bytes)).c_str(), human_bytes(static_cast<double>(m.kv_q8_0_bytes)).c_str());
  std::printf("memory        weights + KV at %d tokens: %s (F16 KV), %s (Q8_0 KV)\n", n_ctx,
              human_bytes(static_cast<double>(m.weight_bytes + m.kv_f16_bytes)).c_str(),
              human_bytes(static_cast<double>(m.weight_bytes + m.kv_q8_0_bytes)).c_str());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  auto n_ctx = std::make_shared<int>(2048);
  CLI::App* cmd = app.add_subcommand("info", "describe a model (architecture, sizes, tensor types, memory), a LoRA adapter or a classifier head");
  cmd->add_option("model", *name, "GGUF file or model-cache name")->required();
  cmd->add_option("-c,--ctx-size", *n_ctx, "context for the KV-cache estimate")->check(Range(1, 1 << 24))->capture_default_str();
  cmd->callback([name, n_ctx] { info(*name, *n_ctx); });
}

}  // namespace edgelm::cli
