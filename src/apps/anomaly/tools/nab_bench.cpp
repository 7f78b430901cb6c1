// anomaly_nab_bench ROOT [--files] [--phases N] [--robustness] [--config FILE] [name=value ...]:
// runs the detector over a NAB-style folder and prints the report. Used by bench/nab.sh;
// overrides make ablations one command each. --phases N also reruns with the first block
// shifted by 0..N-1 samples and prints the spread: block alignment is arbitrary on unseen data,
// so the mean over phases is the honest number. --robustness prints mean and worst case over
// alignments and over +-20 % of each tuned constant, and leave-one-category-out scores.
// --trace/--trace-all write per-row outputs.
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>

#include "edgelm/anomaly/detector_config_io.hpp"
#include "edgelm/anomaly/nab_runner.hpp"
#include "edgelm/error.hpp"

namespace {

using namespace edgelm::anomaly;

// Runs each stage on its own over the whole corpus and prints its time per sample.
void print_stage_times(const std::vector<LabeledSeries>& corpus, const DetectorConfig& cfg) {
  size_t n = 0;
  for (const auto& f : corpus) n += f.series.value.size();
  volatile float sink = 0.0f;  // keeps the work from being optimised away
  auto time = [&](const char* name, auto&& body) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& f : corpus) sink = sink + body(f.series);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  %-34s %7.3f us/sample\n", name, 1e6 * s / static_cast<double>(n));
  };
  std::printf("stage times (each stage alone, whole corpus):\n");
  time("RobustScaler", [&](const Series& s) {
    RobustScaler sc(cfg.scaler_horizon);
    float acc = 0;
    for (float v : s.value) acc += sc.update(v);
    return acc;
  });
  time("BlockAverager+SymbolModel (scale 0)", [&](const Series& s) {
    RobustScaler sc(cfg.scaler_horizon);
    BlockAverager b(cfg.scale[0], cfg.block_phase, cfg.block_hops);
    SymbolModel m(cfg.symbol, cfg.block_hops);
    float acc = 0, mean;
    for (size_t i = 0; i < s.value.size(); ++i)
      if (b.add(sc.update(s.value[i]), mean)) acc += m.update(0.5f + 0.1f * mean, static_cast<int>((s.timestamp_ms[i] / 3600000) % 24));
    return acc;
  });
  time("RangeWatch", [&](const Series& s) {
    RangeWatch r(cfg.range);
    float acc = 0;
    for (float v : s.value) acc += r.update(v);
    return acc;
  });
  time("SpikeDetector", [&](const Series& s) {
    RobustScaler sc(cfg.scaler_horizon);
    SpikeDetector d(cfg.spike);
    float acc = 0;
    for (float v : s.value) acc += d.update(sc.update(v));
    return acc;
  });
  time("AlarmShaper", [&](const Series& s) {
    AlarmShaper a(cfg.rest_period);
    float acc = 0;
    for (float v : s.value) acc += a.update(v);
    return acc;
  });
  time("Detector (all stages)", [&](const Series& s) {
    Detector d(cfg);
    float acc = 0;
    for (size_t i = 0; i < s.value.size(); ++i) acc += d.update(s.timestamp_ms[i], s.value[i]);
    return acc;
  });
}

// The tuned constants of the detector and their values in `cfg`, for the +-20 % check.
struct Tuned {
  const char* name;
  double value;
  bool integer;
};
std::vector<Tuned> tuned_constants(const DetectorConfig& c) {
  return {{"scaler_horizon", c.scaler_horizon, false},
          {"squash_width", c.squash_width, false},
          {"scale_0", static_cast<double>(c.scale[0]), true},
          {"scale_1", static_cast<double>(c.scale[1]), true},
          {"symbol_prior", c.symbol.prior, false},
          {"symbol_count_cap", static_cast<double>(c.symbol.count_cap), true},
          {"symbol_predictor_step", c.symbol.predictor_step, false},
          {"symbol_predictor_spread_rate", c.symbol.predictor_spread_rate, false},
          {"range_tolerance", c.range.tolerance, false},
          {"range_bits", c.range.bits, false},
          {"range_horizon", c.range.horizon, false},
          {"range_warmup", static_cast<double>(c.range.warmup), true},
          {"spike_record_horizon", c.spike.record_horizon, false},
          {"spike_gain", c.spike.gain, false},
          {"spike_warmup", static_cast<double>(c.spike.warmup), true},
          {"rest_period", static_cast<double>(c.rest_period), true},
          {"escalation", c.escalation, false},
          {"score_bits", c.score_bits, false},
          {"warmup", static_cast<double>(c.warmup), true}};
}

struct Variant {
  std::string name;
  DetectorConfig cfg;
  std::vector<ScoredSeries> runs;
};

std::vector<ScoredSeries> runs_of(const std::vector<LabeledSeries>& corpus, const DetectorConfig& cfg) {
  return run_nab(corpus, cfg).runs;
}

// Leave-one-category-out over the given variants (see nab_scorer.hpp).
HeldOutScore held_out(const std::vector<const Variant*>& variants, const NabProfile& profile) {
  std::vector<std::vector<ScoredSeries>> candidates;
  for (const Variant* v : variants) candidates.push_back(v->runs);
  return leave_one_category_out(candidates, profile);
}

struct Spread {
  double sum = 0, lo = 1e300, hi = -1e300;
  int n = 0;
  std::string worst;
  void add(double v, const std::string& what = "") {
    sum += v, ++n, hi = std::max(hi, v);
    if (v < lo) lo = v, worst = what;
  }
  double mean() const { return n ? sum / n : 0; }
};

// bench/nab.sh --robustness: the three NAB scores as mean and worst case over block alignments
// and over +-20 % of each tuned constant, and leave-one-category-out beside the full subset.
void print_robustness(const std::vector<LabeledSeries>& corpus, const DetectorConfig& cfg, int phases) {
  Variant base{"default", cfg, runs_of(corpus, cfg)};
  std::printf("robustness (standard / reward_low_FP_rate / reward_low_FN_rate):\n");
  std::printf("  %-52s", "full subset (shift 0)");
  for (const auto& p : kNabProfiles) std::printf(" %6.2f", score_corpus(base.runs, p).normalized);
  std::printf("\n");

  // Block alignments: the full-subset score and the threshold-only leave-one-category-out.
  Spread align[3], align_loco[3];
  for (int ph = 0; ph < phases; ++ph) {
    Variant v{"phase", cfg, {}};
    v.cfg.block_phase = cfg.block_phase + ph;
    v.runs = ph == 0 ? base.runs : runs_of(corpus, v.cfg);
    for (int k = 0; k < 3; ++k) {
      align[k].add(score_corpus(v.runs, kNabProfiles[k]).normalized);
      align_loco[k].add(held_out({&v}, kNabProfiles[k]).normalized);
    }
  }
  auto row = [](const char* label, const Spread* s, bool worst) {
    std::printf("  %-52s", label);
    for (int k = 0; k < 3; ++k) std::printf(" %6.2f", worst ? s[k].lo : s[k].mean());
    std::printf("\n");
  };
  char label[128];
  std::snprintf(label, sizeof label, "block alignments (%d): mean", phases);
  row(label, align, false);
  std::snprintf(label, sizeof label, "block alignments (%d): worst", phases);
  row(label, align, true);

  // +-20 % of each tuned constant, one at a time (shift 0).
  std::vector<Variant> variants;
  for (const auto& t : tuned_constants(cfg)) {
    for (double f : {0.8, 1.2}) {
      double v = t.value * f;
      if (t.integer) v = std::round(v);
      if (t.name == std::string("scale_0") || t.name == std::string("scale_1"))
        v = cfg.block_hops * std::round(t.value * f / cfg.block_hops);  // windows must split into hops
      if (v == t.value) continue;
      DetectorConfig c = cfg;
      set_config_field(c, t.name, v);
      if (validate(c)) continue;
      char name[96];
      std::snprintf(name, sizeof name, "%s %+.0f%%", t.name, (f - 1.0) * 100.0);
      variants.push_back({name, c, runs_of(corpus, c)});
    }
  }
  Spread perturbed[3];
  for (const auto& v : variants)
    for (int k = 0; k < 3; ++k) perturbed[k].add(score_corpus(v.runs, kNabProfiles[k]).normalized, v.name);
  std::snprintf(label, sizeof label, "+-20 %% of %zu constants (%zu runs): mean", tuned_constants(cfg).size(), variants.size());
  row(label, perturbed, false);
  std::snprintf(label, sizeof label, "+-20 %% of each constant: worst");
  row(label, perturbed, true);
  std::printf("  %-52s %s / %s / %s\n", "  worst variant", perturbed[0].worst.c_str(), perturbed[1].worst.c_str(),
              perturbed[2].worst.c_str());
  std::printf("    standard per variant:");
  for (size_t i = 0; i < variants.size(); ++i)
    std::printf("%s %s %.1f", i ? ";" : "", variants[i].name.c_str(), score_corpus(variants[i].runs, kNabStandard).normalized);
  std::printf("\n");

  // Leave-one-category-out.
  std::printf("  %-52s", "leave-one-category-out, threshold (shift 0)");
  for (int k = 0; k < 3; ++k) std::printf(" %6.2f", held_out({&base}, kNabProfiles[k]).normalized);
  std::printf("\n");
  std::snprintf(label, sizeof label, "leave-one-category-out, threshold: mean over %d", phases);
  row(label, align_loco, false);
  std::snprintf(label, sizeof label, "leave-one-category-out, threshold: worst of %d", phases);
  row(label, align_loco, true);
  std::vector<const Variant*> all{&base};
  for (const auto& v : variants) all.push_back(&v);
  HeldOutScore standard;
  std::printf("  %-52s", "leave-one-category-out, constants + threshold");
  for (int k = 0; k < 3; ++k) {
    const HeldOutScore h = held_out(all, kNabProfiles[k]);
    if (k == 0) standard = h;
    std::printf(" %6.2f", h.normalized);
  }
  std::printf("\n    (the default or one +-20 %% variant, chosen on the other three categories; standard:");
  for (size_t c = 0; c < standard.categories.size(); ++c)
    std::printf(" %s: %s;", standard.categories[c].c_str(), all[standard.chosen[c]]->name.c_str());
  std::printf(")\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgelm::anomaly;
  try {
    std::string root = argc > 1 ? argv[1] : "";
    if (root.empty() || root == "--help") {
      std::fprintf(stderr, "usage: %s NAB_ROOT [--files] [--phases N] [--robustness] [--stage-times] [--config FILE] [field=value ...]\n", argv[0]);
      return 2;
    }
    DetectorConfig cfg;
    bool per_file = false;
    std::string dump_dir;  // one CSV of scores per file, for plotting
    std::string trace_file;  // print per-row source surprises of this file instead
    std::string trace_dir;   // per file: score, surprise, per stream bits and expert bits
    int phases = 0;
    bool stage_times = false;
    bool robustness = false;
    for (int i = 2; i < argc; ++i) {
      if (!std::strcmp(argv[i], "--files")) per_file = true;
      else if (!std::strcmp(argv[i], "--config") && i + 1 < argc) cfg = load_detector_config(argv[++i]);
      else if (!std::strcmp(argv[i], "--dump") && i + 1 < argc) dump_dir = argv[++i];
      else if (!std::strcmp(argv[i], "--trace") && i + 1 < argc) trace_file = argv[++i];
      else if (!std::strcmp(argv[i], "--trace-all") && i + 1 < argc) trace_dir = argv[++i];
      else if (!std::strcmp(argv[i], "--phases") && i + 1 < argc) phases = std::atoi(argv[++i]);
      else if (!std::strcmp(argv[i], "--stage-times")) stage_times = true;
      else if (!std::strcmp(argv[i], "--robustness")) robustness = true;
      else apply_config_override(cfg, argv[i]);
    }
    if (const char* bad = validate(cfg)) throw edgelm::Error(std::string("invalid config: ") + bad);
    const auto corpus = load_nab_corpus(root);
    if (!trace_dir.empty()) {
      for (const auto& f : corpus) {
        std::string path = trace_dir + "/" + f.name.substr(f.name.find('/') + 1);
        FILE* out = std::fopen(path.c_str(), "w");
        if (!out) throw edgelm::Error("cannot write '" + path + "'");
        Detector det(cfg);
        for (size_t i = 0; i < f.series.value.size(); ++i) {
          float sc = det.update(f.series.timestamp_ms[i], f.series.value[i]);
          std::fprintf(out, "%g,%g,%g,%g,0", sc, det.last_surprise(), det.last_spike_surprise(), det.last_range_surprise());
          for (int k = 0; k < kMaxScales; ++k) {
            const bool fired = det.last_stream_surprise(k) != 0.0f;
            std::fprintf(out, ",%.4g", det.last_stream_surprise(k));
            for (int e = 0; e < SymbolModel::kExperts; ++e)
              std::fprintf(out, ",%.4g", fired ? -std::log2(det.stream(k).expert_prob(e)) : 0.0);
          }
          std::fprintf(out, "\n");
        }
        std::fclose(out);
      }
      return 0;
    }
    if (!trace_file.empty()) {
      for (const auto& f : corpus) {
        if (f.name.find(trace_file) == std::string::npos) continue;
        Detector det(cfg);
        for (size_t i = 0; i < f.series.value.size(); ++i) {
          float sc = det.update(f.series.timestamp_ms[i], f.series.value[i]);
          std::printf("%zu,%g,%g,%g", i, f.series.value[i], sc, det.last_surprise());
          for (int k = 0; k < kMaxScales; ++k) std::printf(",%.3g", det.last_stream_surprise(k));
          std::printf("\n");
        }
        return 0;
      }
      throw edgelm::Error("no file matches '" + trace_file + "'");
    }
    const auto report = run_nab(corpus, cfg);
    std::fputs(format_nab_report(report, per_file).c_str(), stdout);
    if (stage_times) print_stage_times(corpus, cfg);
    if (robustness) {
      print_robustness(corpus, cfg, phases > 1 ? phases : 16);
      return 0;
    }
    if (phases > 1) {
      std::printf("over %d block phases (mean [min..max]):\n", phases);
      std::vector<std::vector<double>> by_profile(3);
      std::vector<std::vector<double>> by_category(3 * report.profiles[0].categories.size());
      for (int p = 0; p < phases; ++p) {
        DetectorConfig c = cfg;
        c.block_phase = cfg.block_phase + p;
        const auto r = run_nab(corpus, c);
        for (int k = 0; k < 3; ++k) {
          by_profile[k].push_back(r.profiles[k].normalized);
          for (size_t g = 0; g < r.profiles[k].categories.size(); ++g)
            by_category[k * r.profiles[k].categories.size() + g].push_back(
                r.profiles[k].categories[g].windows ? r.profiles[k].categories[g].normalized
                                                    : r.profiles[k].categories[g].fp);
        }
      }
      auto mean = [](const std::vector<double>& v) {
        double sum = 0;
        for (double x : v) sum += x;
        return sum / static_cast<double>(v.size());
      };
      for (int k = 0; k < 3; ++k) {
        double lo = 1e9, hi = -1e9;
        for (double v : by_profile[k]) lo = std::min(lo, v), hi = std::max(hi, v);
        std::printf("  %-20s %6.2f [%.2f..%.2f]\n", kNabProfiles[k].name, mean(by_profile[k]), lo, hi);
      }
      const auto& cats = report.profiles[0].categories;
      for (size_t g = 0; g < cats.size(); ++g) {
        std::printf("  %-24s", cats[g].name.c_str());
        for (int k = 0; k < 3; ++k)
          std::printf(cats[g].windows ? " %8.2f" : " %6.1f FP", mean(by_category[k * cats.size() + g]));
        std::printf("\n");
      }
    }
  } catch (const edgelm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  }
  return 0;
}
