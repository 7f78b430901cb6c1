// edgelm anomaly: stream a sensor CSV through the anomaly detector; edgelm nab-score: run it
// over a NAB-style folder and score it. Parsing and printing only; the detector, the CSV reader
// and the NAB scorer live in edgelm_anomaly.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/anomaly/csv_series.hpp"
#include "edgelm/anomaly/detector.hpp"
#include "edgelm/anomaly/detector_config_io.hpp"
#include "edgelm/anomaly/detector_state.hpp"
#include "edgelm/anomaly/nab_runner.hpp"
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"

namespace edgelm::cli {
namespace {

namespace an = edgelm::anomaly;

struct ConfigOptions {
  std::string config_file;
  std::vector<std::string> overrides;
};

void add_config_options(CLI::App* cmd, ConfigOptions& o) {
  cmd->add_option("--config", o.config_file, "detector configuration (JSON object of field: value)")
      ->check(CLI::ExistingFile);
  // One FIELD=VALUE per --set, so that a file name after it stays the input file.
  cmd->add_option("--set", o.overrides, "override one configuration field, e.g. --set rest_period=500 (repeatable)")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](std::string& v) { return v.find('=') == std::string::npos ? "'" + v + "' is not FIELD=VALUE" : std::string(); },
          "FIELD=VALUE", "FIELD=VALUE"));
}

an::DetectorConfig load_config(const ConfigOptions& o) {
  an::DetectorConfig cfg = o.config_file.empty() ? an::DetectorConfig{} : an::load_detector_config(o.config_file);
  for (const auto& a : o.overrides) an::apply_config_override(cfg, a);
  if (const char* bad = an::validate(cfg)) throw Error(std::string("invalid detector configuration: ") + bad);
  return cfg;
}

struct AnomalyOptions {
  ConfigOptions config;
  std::string input;
  std::string state;
  float threshold = -1.0f;
  bool allow_backward_time = false;
  bool dump_config = false;
};

// The detector saved in an existing --state file. Reads no more than a state can hold, so an
// over-long file is reported as damaged instead of being read whole.
an::Detector load_state_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open state file '" + path + "'", "check its permissions, or pass a new path to start afresh");
  std::vector<uint8_t> bytes(an::kDetectorStateHeaderSize + sizeof(an::Detector) + 1);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) throw Error("cannot read state file '" + path + "'", "check the path and the disk");
  bytes.resize(static_cast<size_t>(in.gcount()));
  return an::load_detector_state(bytes, path);
}

void run_anomaly(const AnomalyOptions& o) {
  // With an existing --state file the detector, its configuration included, comes from the file.
  const bool resume = !o.state.empty() && std::filesystem::exists(o.state);
  if (!o.state.empty() && !resume) {
    const auto folder = std::filesystem::path(o.state).parent_path();
    if (!folder.empty() && !std::filesystem::is_directory(folder))
      throw Error("--state " + o.state + ": folder '" + folder.string() + "' does not exist", "create it or pick another path");
  }
  if (resume && std::filesystem::is_directory(o.state))
    throw Error("--state " + o.state + " is a folder", "pass the path of a state file (a new one to start afresh)");
  if (resume && (!o.config.config_file.empty() || !o.config.overrides.empty()))
    throw Error("--state " + o.state + " already holds a detector and its configuration; --config and --set cannot change it",
                "drop --config/--set to carry on from the state, or pass a new --state path to start with them");
  an::Detector detector = resume ? load_state_file(o.state) : an::Detector();
  an::DetectorConfig cfg = resume ? detector.config() : load_config(o.config);
  if (o.threshold >= 0.0f) cfg.alarm_threshold = o.threshold;
  if (o.dump_config) {
    std::printf("%s\n", an::config_to_json(cfg).c_str());
    return;
  }
  if (o.input.empty()) throw Error("no input file", "pass FILE.csv, or - to read standard input");
  std::ifstream file;
  std::istream* in = &std::cin;
  if (o.input != "-") {
    file.open(o.input);
    if (!file) throw Error("cannot open '" + o.input + "'", "check the path and permissions");
    in = &file;
  }
  an::CsvSampleReader reader(*in, o.input, o.allow_backward_time);
  const std::string source = o.input == "-" ? std::string("<stdin>") : o.input;
  // The value columns (one sensor, or several of one device) are known from the header or the
  // first row; the detector takes them all and gives one score.
  std::string names = "value";
  if (reader.read_columns()) {
    if (reader.channels() > an::kMaxChannels)
      throw Error(source + ": " + std::to_string(reader.channels()) +
                      " value columns; the detector takes at most " + std::to_string(an::kMaxChannels),
                  "score the sensors in groups of at most " + std::to_string(an::kMaxChannels) + " (one file each)");
    if (resume && reader.channels() != cfg.channels)
      throw Error(source + ": " + std::to_string(reader.channels()) +
                      " value column" + (reader.channels() == 1 ? "" : "s") + ", but the detector in " + o.state + " scores " +
                      std::to_string(cfg.channels),
                  "feed the columns the state was started with, or pass a new --state path");
    cfg.channels = reader.channels();
    if (const char* bad = an::validate(cfg)) throw Error(std::string("invalid detector configuration: ") + bad);
    names.clear();
    for (const auto& n : reader.value_names()) names += (names.empty() ? "" : ",") + n;
  }
  if (!resume) detector = an::Detector(cfg);
  long rows = 0, anomalies = 0;
  std::printf("timestamp,%s,score,label\n", names.c_str());
  std::fflush(stdout);
  // One line out per line in, flushed, so the command can sit in a sensor pipeline.
  while (auto s = reader.next()) {
    const float score = detector.update(s->timestamp_ms, s->values);
    const bool anomalous = score >= cfg.alarm_threshold && score > 0.0f;
    ++rows;
    anomalies += anomalous;
    std::printf("%s,%s,%.4f,%s\n", s->timestamp_text.c_str(), s->value_text.c_str(), score,
                anomalous ? "anomaly" : "normal");
    std::fflush(stdout);
  }
  std::fprintf(stderr, "summary: %ld rows of %d value column%s, %ld anomalies (anomaly rate %.3f%%) at threshold %.3f; detector state %zu bytes\n",
               rows, cfg.channels, cfg.channels == 1 ? "" : "s", anomalies, rows ? 100.0 * static_cast<double>(anomalies) / static_cast<double>(rows) : 0.0,
               cfg.alarm_threshold, sizeof(an::Detector));
  if (!o.state.empty()) {
    const auto bytes = an::save_detector_state(detector);
    gguf::write_file_atomically(o.state, bytes.data(), bytes.size());
    std::fprintf(stderr, "state: %u samples seen, saved to %s\n", detector.samples_seen(), o.state.c_str());
  }
}

struct NabOptions {
  ConfigOptions config;
  std::string root;
  bool per_file = false;
};

void run_nab_score(const NabOptions& o) {
  const an::DetectorConfig cfg = load_config(o.config);
  const auto corpus = an::load_nab_corpus(o.root);
  const auto report = an::run_nab(corpus, cfg);
  std::fputs(an::format_nab_report(report, o.per_file).c_str(), stdout);
}

}  // namespace

void add_anomaly_command(CLI::App& app) {
  auto o = std::make_shared<AnomalyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "anomaly", "Score a sensor series (CSV timestamp,value, or timestamp and up to 3 sensors of one device) for anomalies, one row at a time");
  cmd->add_option("input", o->input, "CSV file, or - for standard input");
  add_config_options(cmd, o->config);
  cmd->add_option("--threshold", o->threshold, "score at or above which a row is labelled anomaly")
      ->check(Range(0.0, 1.0));
  cmd->add_flag("--allow-backward-time", o->allow_backward_time,
                "accept timestamps that step back (clock corrections) instead of failing");
  cmd->add_option("--state", o->state,
                  "detector state file: resume from it if it exists (its configuration included), save to it at the end");
  cmd->add_flag("--dump-config", o->dump_config, "print the effective configuration as JSON and exit");
  cmd->callback([o] { run_anomaly(*o); });
}

void add_nab_score_command(CLI::App& app) {
  auto o = std::make_shared<NabOptions>();
  CLI::App* cmd = app.add_subcommand(
      "nab-score", "Run the anomaly detector over a NAB-style folder (data/ + labels/) and score it");
  cmd->add_option("folder", o->root, "folder holding data/ and labels/combined_windows.json")->required();
  add_config_options(cmd, o->config);
  cmd->add_flag("--files", o->per_file, "also print one line per file");
  cmd->callback([o] { run_nab_score(*o); });
}

}  // namespace edgelm::cli
