// edgelm info: describe a model file.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
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

void info(const std::string& name, int n_ctx) {
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
  CLI::App* cmd = app.add_subcommand("info", "describe a model: architecture, sizes, tensor types, memory");
  cmd->add_option("model", *name, "GGUF file or model-cache name")->required();
  cmd->add_option("-c,--ctx-size", *n_ctx, "context for the KV-cache estimate")->check(Range(1, 1 << 24))->capture_default_str();
  cmd->callback([name, n_ctx] { info(*name, *n_ctx); });
}

}  // namespace edgelm::cli
