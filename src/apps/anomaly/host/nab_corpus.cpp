// Loading a NAB-style folder. The labels are parsed with nlohmann-json (the project's JSON
// library); timestamps go through the same parser as the data so that they compare exactly.
#include "edgelm/anomaly/nab_corpus.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace fs = std::filesystem;

std::vector<std::pair<std::string, std::vector<AnomalyWindow>>> parse_nab_windows(
    const std::string& json_text, const std::string& source) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": invalid JSON (" + e.what() + ")", "labels must be NAB's combined_windows.json format");
  }
  if (!doc.is_object()) throw Error(source + ": expected an object mapping file names to windows");
  std::vector<std::pair<std::string, std::vector<AnomalyWindow>>> out;
  for (auto& [file, wins] : doc.items()) {
    if (!wins.is_array()) throw Error(source + ": windows of '" + file + "' are not a list");
    std::vector<AnomalyWindow> list;
    for (auto& w : wins) {
      if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string())
        throw Error(source + ": a window of '" + file + "' is not [\"start\", \"end\"]");
      auto a = parse_timestamp_ms(w[0].get<std::string>());
      auto b = parse_timestamp_ms(w[1].get<std::string>());
      if (!a || !b || *b < *a) throw Error(source + ": bad window timestamps for '" + file + "'");
      list.push_back({*a, *b});
    }
    std::sort(list.begin(), list.end(), [](auto& x, auto& y) { return x.start_ms < y.start_ms; });
    out.emplace_back(file, std::move(list));
  }
  return out;
}

std::vector<LabeledSeries> load_nab_corpus(const std::string& root) {
  const fs::path data = fs::path(root) / "data";
  const fs::path labels = fs::path(root) / "labels" / "combined_windows.json";
  if (!fs::is_directory(data))
    throw Error("'" + data.string() + "' is not a folder", "pass a NAB-style folder holding data/ and labels/");
  std::ifstream in(labels);
  if (!in) throw Error("cannot open '" + labels.string() + "'", "the folder needs labels/combined_windows.json");
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, std::vector<AnomalyWindow>> windows;
  for (auto& [name, w] : parse_nab_windows(text.str(), labels.string())) windows[name] = std::move(w);

  std::vector<std::string> names;
  for (auto& entry : fs::recursive_directory_iterator(data))
    if (entry.is_regular_file() && entry.path().extension() == ".csv")
      names.push_back(entry.path().lexically_relative(data).generic_string());
  std::sort(names.begin(), names.end());
  if (names.empty()) throw Error("no .csv files under '" + data.string() + "'");

  std::vector<LabeledSeries> out;
  for (const auto& name : names) {
    auto it = windows.find(name);
    if (it == windows.end())
      throw Error("'" + labels.string() + "' has no entry for '" + name + "'", "add the file's windows (possibly [])");
    LabeledSeries s;
    s.name = name;
    s.category = name.substr(0, name.find('/'));
    // NAB's published files contain a daylight-saving step back and repeated rows; the
    // benchmark scores by row, so they are accepted here (the CLI rejects them by default).
    s.series = read_series_csv_file((data / name).string(), /*allow_backward_time=*/true);
    s.windows = it->second;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace edgelm::anomaly
