// NAB v1.1 scoring (Lavin & Ahmad 2015), as restated in shared/data/nab/README.md.
//
//   std::vector<edgelm::anomaly::ScoredSeries> runs = ...;   // one per file: times, scores, windows
//   auto result = edgelm::anomaly::score_corpus(runs, edgelm::anomaly::kNabStandard);
//   std::printf("%.1f at threshold %.3f\n", result.normalized, result.threshold);
//
// Rules: the first min(floor(0.15 n), 750) rows of a file are not scored; inside a window only
// the earliest detection counts, weighted by a scaled sigmoid of its position; a detection
// outside every window costs A_fp, less if it falls shortly after a window; a window without a
// detection costs A_fn. One threshold per profile (detection = score >= threshold) is chosen
// for the whole corpus by an exact sweep over all distinct scores. Normalised score =
// 100 (raw - null) / (perfect - null) with null = never fires and perfect = A_tp per window.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace edgelm::anomaly {

struct NabProfile {
  const char* name;
  double a_tp, a_fp, a_fn;
};
inline constexpr NabProfile kNabStandard{"standard", 1.0, 0.11, 1.0};
inline constexpr NabProfile kNabLowFp{"reward_low_FP_rate", 1.0, 0.22, 1.0};
inline constexpr NabProfile kNabLowFn{"reward_low_FN_rate", 1.0, 0.11, 2.0};
inline constexpr NabProfile kNabProfiles[3] = {kNabStandard, kNabLowFp, kNabLowFn};

// A labelled anomaly window, inclusive at both ends, in the series' timestamp unit.
struct AnomalyWindow {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// One file's detector output: a score per row plus the file's labelled windows.
struct ScoredSeries {
  std::string name;      // e.g. "realKnownCause/nyc_taxi.csv"
  std::string category;  // e.g. "realKnownCause"
  std::vector<int64_t> timestamp_ms;
  std::vector<float> score;
  std::vector<AnomalyWindow> windows;
};

// NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and exactly -1 for y >= 3.
double nab_scaled_sigmoid(double y);

// Number of leading rows that are not scored.
size_t nab_probationary_rows(size_t rows);

// Per-row weight before the profile's A_tp / A_fp factors, as NAB's sweep computes it.
struct RowWeight {
  int window = -1;         // index into the file's windows; -1 outside every window
  bool scored = true;      // false inside the probationary period
  double unweighted = 0;   // sigma(position) (TP rows: not yet divided by sigma(-1))
};
std::vector<RowWeight> nab_row_weights(const ScoredSeries& s);

struct FileScore {
  std::string name, category;
  double raw = 0;
  int tp = 0, fp = 0, fn = 0;  // tp/fn count windows; fp counts detections outside windows
  int windows = 0;
};

struct GroupScore {
  std::string name;
  double raw = 0, null_raw = 0, perfect_raw = 0;
  double normalized = 0;  // meaningless (0) when the group has no windows: see fp
  int windows = 0, detected = 0, fp = 0;
};

struct CorpusScore {
  NabProfile profile{};
  double threshold = 0;
  double raw = 0, null_raw = 0, perfect_raw = 0;
  double normalized = 0;
  std::vector<FileScore> files;
  std::vector<GroupScore> categories;
};

// Chooses the corpus-wide best threshold for `profile`, then scores every file and category.
CorpusScore score_corpus(std::span<const ScoredSeries> corpus, const NabProfile& profile);

// Scores the corpus at a given threshold (no optimisation).
CorpusScore score_corpus_at(std::span<const ScoredSeries> corpus, const NabProfile& profile,
                            double threshold);

// Leave-one-category-out: `candidates` are the same files scored by several detector
// configurations (one vector per configuration, same files in the same order). For each
// category, the configuration and threshold that score best on the other categories are applied
// to it (of the interval of equally good thresholds, its middle; ties between configurations go
// to the first); the held-out raw scores are summed and normalised over all files. With one
// candidate only the threshold is chosen without the held-out category.
struct HeldOutScore {
  double normalized = 0;
  std::vector<std::string> categories;  // in order of first appearance
  std::vector<size_t> chosen;           // per category: index of the candidate applied to it
  std::vector<double> thresholds;       // per category: the threshold applied to it
};
HeldOutScore leave_one_category_out(std::span<const std::vector<ScoredSeries>> candidates, const NabProfile& profile);

}  // namespace edgelm::anomaly
