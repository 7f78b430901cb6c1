#include "edgelm/anomaly/nab_runner.hpp"

#include <chrono>
#include <cstdio>

namespace edgelm::anomaly {

std::vector<float> run_detector(const Series& s, const DetectorConfig& cfg) {
  Detector det(cfg);
  std::vector<float> out(s.value.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = det.update(s.timestamp_ms[i], s.value[i]);
  return out;
}

NabReport run_nab(const std::vector<LabeledSeries>& corpus, const DetectorConfig& cfg) {
  NabReport r;
  for (const auto& f : corpus) {
    ScoredSeries run;
    run.name = f.name;
    run.category = f.category;
    run.timestamp_ms = f.series.timestamp_ms;
    run.windows = f.windows;
    const auto t0 = std::chrono::steady_clock::now();
    run.score = run_detector(f.series, cfg);
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.samples += f.series.value.size();
    r.runs.push_back(std::move(run));
  }
  for (const auto& p : kNabProfiles) r.profiles.push_back(score_corpus(r.runs, p));
  return r;
}

std::string format_nab_report(const NabReport& r, bool per_file) {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("NAB on %zu files, %zu samples\n", r.runs.size(), r.samples);
  add("%-20s %10s %9s %9s %9s\n", "profile", "normalized", "raw", "threshold", "tp/fn/fp");
  for (const auto& p : r.profiles) {
    int tp = 0, fn = 0, fp = 0;
    for (const auto& f : p.files) tp += f.tp, fn += f.fn, fp += f.fp;
    add("%-20s %10.2f %9.3f %9.4f %3d/%d/%d\n", p.profile.name, p.normalized, p.raw, p.threshold, tp, fn, fp);
  }
  add("per category (normalized; categories without windows show false positives):\n");
  add("%-24s", "category");
  for (const auto& p : r.profiles) add(" %20s", p.profile.name);
  add("\n");
  for (size_t c = 0; c < r.profiles[0].categories.size(); ++c) {
    add("%-24s", r.profiles[0].categories[c].name.c_str());
    for (const auto& p : r.profiles) {
      const auto& g = p.categories[c];
      if (g.windows > 0) add(" %20.2f", g.normalized);
      else add(" %17d FP", g.fp);
    }
    add("\n");
  }
  if (per_file) {
    const auto& p = r.profiles[0];
    add("per file (standard profile at threshold %.4f):\n", p.threshold);
    for (const auto& f : p.files)
      add("  %-58s raw %7.3f  windows %d tp %d fn %d fp %d\n", f.name.c_str(), f.raw, f.windows, f.tp, f.fn, f.fp);
  }
  add("time per sample: %.3f us   detector state: %zu bytes\n", r.us_per_sample(), r.state_bytes);
  return out;
}

}  // namespace edgelm::anomaly
