// A NAB-style folder: `data/<category>/<file>.csv` plus `labels/combined_windows.json`, which maps
// each file's path relative to data/ to its anomaly windows [[start, end], ...].
//
//   auto corpus = edgelm::anomaly::load_nab_corpus("/work/shared/data/nab");
//   for (const auto& f : corpus) run_detector(f.series);
#pragma once
#include <string>
#include <vector>

#include "edgelm/anomaly/csv_series.hpp"
#include "edgelm/anomaly/nab_scorer.hpp"

namespace edgelm::anomaly {

struct LabeledSeries {
  std::string name;      // path relative to data/, '/'-separated
  std::string category;  // first folder of name
  Series series;
  std::vector<AnomalyWindow> windows;
};

// Reads every *.csv under root/data (sorted by name) and its windows. Throws edgelm::Error when
// the folder, the labels file or a file's labels are missing or malformed.
std::vector<LabeledSeries> load_nab_corpus(const std::string& root);

// Parses the windows JSON text ({"cat/file.csv": [["ts", "ts"], ...], ...}).
std::vector<std::pair<std::string, std::vector<AnomalyWindow>>> parse_nab_windows(
    const std::string& json_text, const std::string& source);

}  // namespace edgelm::anomaly
