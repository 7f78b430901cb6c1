// Each subcommand lives in its own cmd_*.cpp and registers itself on the root app.
#pragma once
#include <CLI/CLI.hpp>

namespace edgelm::cli {

// Registers the subcommand; the callback runs it and throws edgelm::Error on bad input.
void add_run_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_anomaly_command(CLI::App& app);
void add_nab_score_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_imatrix_command(CLI::App& app);
void add_train_classifier_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
void add_distill_command(CLI::App& app);
void add_classify_command(CLI::App& app);
void add_car_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_convert_command(CLI::App& app);

}  // namespace edgelm::cli
