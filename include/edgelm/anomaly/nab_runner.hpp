// Runs the detector over a NAB-style corpus (one fresh Detector per file, one configuration
// for all) and scores it with every NAB profile.
//
//   auto corpus = load_nab_corpus(root);
//   auto report = run_nab(corpus, DetectorConfig{});
//   std::fputs(format_nab_report(report).c_str(), stdout);
#pragma once
#include <string>
#include <vector>

#include "edgelm/anomaly/detector.hpp"
#include "edgelm/anomaly/nab_corpus.hpp"
#include "edgelm/anomaly/nab_scorer.hpp"

namespace edgelm::anomaly {

struct NabReport {
  std::vector<ScoredSeries> runs;
  std::vector<CorpusScore> profiles;  // standard, reward_low_FP_rate, reward_low_FN_rate
  size_t samples = 0;
  double seconds = 0;                 // detector time only (no I/O)
  double us_per_sample() const { return samples ? 1e6 * seconds / static_cast<double>(samples) : 0; }
  size_t state_bytes = sizeof(Detector);
};

std::vector<float> run_detector(const Series& s, const DetectorConfig& cfg);
NabReport run_nab(const std::vector<LabeledSeries>& corpus, const DetectorConfig& cfg);
// Human-readable summary: the three normalised scores, per-category scores, speed, state size;
// `per_file` adds one line per file (standard profile).
std::string format_nab_report(const NabReport& r, bool per_file);

}  // namespace edgelm::anomaly
