// edgelm car: the in-car assistant demo on a simulated vehicle, driven from stdin.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"

namespace edgelm::cli {
namespace {

struct CarArgs {
  std::string model = "smollm2";
  std::string head;
  int threads = 1;
  float min_confidence = 0.5f;
};

void run(const CarArgs& a) {
  auto model = Model::load(a.model);
  intent::Classifier cls(model, a.head, a.threads, 1);
  intent::CarAssistant car(cls, a.min_confidence);
  const bool tty = isatty(0) == 1;
  if (tty) std::printf("In-car assistant (simulated vehicle). Speak by typing; Ctrl-D to stop.\n");
  std::string line;
  while (true) {
    if (tty) {
      std::printf("driver> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!tty) std::printf("driver: %s\n", line.c_str());
    for (const auto& l : car.handle(line)) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
  }
  const auto& s = car.state();
  std::printf("final state: destination=%s climate=%s %.0fF media=%s track=%s volume=%d call=%s\n",
              s.destination.empty() ? "(none)" : s.destination.c_str(), s.climate_on ? "on" : "off", s.cabin_temp_f,
              s.media.c_str(), s.track.empty() ? "(none)" : s.track.c_str(), s.volume,
              s.call.empty() ? "(none)" : s.call.c_str());
}

}  // namespace

void add_car_command(CLI::App& app) {
  auto a = std::make_shared<CarArgs>();
  CLI::App* cmd = app.add_subcommand("car", "in-car assistant demo: driver utterances on stdin act on a simulated vehicle");
  cmd->add_option("-m,--model", a->model, "backbone GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--head", a->head, "intent classifier head (GGUF from train-classifier)")->required();
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->add_option("--min-confidence", a->min_confidence, "below this the assistant falls back politely")->check(Range(0.0, 1.0))->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
