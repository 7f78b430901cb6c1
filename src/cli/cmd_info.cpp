// edgelm info: describe a model file.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
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

void info(const std::string& name) {
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
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : f.tensors()) {
    auto& e = by_type[std::string(dtype_name(t.type))];
    ++e.first;
    e.second += t.nbytes;
  }
  std::printf("weights       %s in %zu tensors\n", human_bytes(static_cast<double>(model->weight_bytes())).c_str(),
              f.tensors().size());
  for (const auto& [type, e] : by_type)
    std::printf("  %-6s %4d tensors  %s\n", type.c_str(), e.first, human_bytes(static_cast<double>(e.second)).c_str());
  const uint64_t kv_per_token = 2ull * c.n_layer * c.n_head_kv * c.head_dim * sizeof(uint16_t);
  std::printf("KV cache      %s per token (F16); %s at 2048 tokens\n", human_bytes(static_cast<double>(kv_per_token)).c_str(),
              human_bytes(static_cast<double>(kv_per_token * 2048)).c_str());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "describe a model: architecture, sizes, tensor types");
  cmd->add_option("model", *name, "GGUF file or model-cache name")->required();
  cmd->callback([name] { info(*name); });
}

}  // namespace edgelm::cli
