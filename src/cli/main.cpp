// edgelm — command-line front end. Argument parsing and printing only: all ML logic is in
// libedgelm. Errors are printed once, on one line, with a non-zero exit code.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "edgelm/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"edgelm — run, shrink, adapt and ship small language models on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgelm 0.1.0");
  edgelm::cli::add_run_command(app);
  edgelm::cli::add_chat_command(app);
  edgelm::cli::add_info_command(app);
  edgelm::cli::add_anomaly_command(app);
  edgelm::cli::add_nab_score_command(app);
  edgelm::cli::add_bench_command(app);
  edgelm::cli::add_serve_command(app);
  edgelm::cli::add_quantize_command(app);
  edgelm::cli::add_perplexity_command(app);
  edgelm::cli::add_imatrix_command(app);
  edgelm::cli::add_train_classifier_command(app);
  edgelm::cli::add_finetune_command(app);
  edgelm::cli::add_distill_command(app);
  edgelm::cli::add_classify_command(app);
  edgelm::cli::add_car_command(app);
  edgelm::cli::add_export_command(app);
  edgelm::cli::add_convert_command(app);
  if (argc > 1 && argv[1][0] != '-') {  // CLI11 would only say "A subcommand is required"
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "error: unknown command '%s' — the commands are %s (run '%s --help')\n", argv[1],
                   names.c_str(), argv[0]);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s — run '%s --help' for usage\n", e.what(), argv[0]);
    return 2;
  } catch (const edgelm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory — try a smaller context (-c) or model\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
