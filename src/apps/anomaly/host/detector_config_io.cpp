// Field table for DetectorConfig: one place that knows every field's name, so the JSON
// loader, the overrides and the dump cannot drift apart.
#include "edgelm/anomaly/detector_config_io.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {

struct Field {
  const char* name;
  std::function<void(DetectorConfig&, double)> set;
  std::function<double(const DetectorConfig&)> get;
};

template <typename T>
Field field(const char* name, T DetectorConfig::*member) {
  return {name, [member](DetectorConfig& c, double v) { c.*member = static_cast<T>(v); },
          [member](const DetectorConfig& c) { return static_cast<double>(c.*member); }};
}

// A field of a stage's config inside DetectorConfig (symbol, range, spike).
template <typename S, typename T>
Field nested(const char* name, S DetectorConfig::*stage, T S::*member) {
  return {name, [stage, member](DetectorConfig& c, double v) { (c.*stage).*member = static_cast<T>(v); },
          [stage, member](const DetectorConfig& c) { return static_cast<double>((c.*stage).*member); }};
}

Field scale_field(const char* name, int i) {
  return {name, [i](DetectorConfig& c, double v) { c.scale[i] = static_cast<int>(v); },
          [i](const DetectorConfig& c) { return static_cast<double>(c.scale[i]); }};
}

const std::vector<Field>& fields() {
  using D = DetectorConfig;
  using M = SymbolModelConfig;
  static const std::vector<Field> table = {
      field("channels", &D::channels),
      field("scaler_horizon", &D::scaler_horizon),
      field("squash_width", &D::squash_width),
      field("scales", &D::scales),
      scale_field("scale_0", 0),
      scale_field("scale_1", 1),
      field("scale_agreement", &D::scale_agreement),
      field("block_hops", &D::block_hops),
      nested("symbol_levels", &D::symbol, &M::levels),
      nested("symbol_prior", &D::symbol, &M::prior),
      nested("symbol_count_cap", &D::symbol, &M::count_cap),
      nested("symbol_min_context_count", &D::symbol, &M::min_context_count),
      nested("symbol_predictor_step", &D::symbol, &M::predictor_step),
      nested("symbol_predictor_spread_rate", &D::symbol, &M::predictor_spread_rate),
      nested("symbol_expert_mask", &D::symbol, &M::expert_mask),
      nested("symbol_bayes_mixture", &D::symbol, &M::bayes_mixture),
      nested("symbol_mix_decay", &D::symbol, &M::mix_decay),
      nested("symbol_learn_all_phases", &D::symbol, &M::learn_all_phases),
      field("use_range", &D::use_range),
      nested("range_tolerance", &D::range, &RangeWatchConfig::tolerance),
      nested("range_bits", &D::range, &RangeWatchConfig::bits),
      nested("range_gain", &D::range, &RangeWatchConfig::gain),
      nested("range_warmup", &D::range, &RangeWatchConfig::warmup),
      nested("range_horizon", &D::range, &RangeWatchConfig::horizon),
      field("use_spikes", &D::use_spikes),
      nested("spike_record_horizon", &D::spike, &SpikeDetectorConfig::record_horizon),
      nested("spike_gain", &D::spike, &SpikeDetectorConfig::gain),
      nested("spike_warmup", &D::spike, &SpikeDetectorConfig::warmup),
      field("rest_period", &D::rest_period),
      field("escalation", &D::escalation),
      field("score_bits", &D::score_bits),
      field("warmup", &D::warmup),
      field("block_phase", &D::block_phase),
      field("alarm_threshold", &D::alarm_threshold),
  };
  return table;
}

std::string known_names() {
  std::string s;
  for (const auto& f : fields()) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

}  // namespace

std::vector<std::string> config_field_names() {
  std::vector<std::string> out;
  for (const auto& f : fields()) out.emplace_back(f.name);
  return out;
}

void set_config_field(DetectorConfig& cfg, std::string_view name, double value) {
  for (const auto& f : fields())
    if (name == f.name) {
      if (!std::isfinite(value)) throw Error("config field '" + std::string(name) + "' must be a finite number");
      f.set(cfg, value);
      return;
    }
  throw Error("unknown detector config field '" + std::string(name) + "'", "known fields: " + known_names());
}

void apply_config_override(DetectorConfig& cfg, std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos)
    throw Error("config override '" + std::string(assignment) + "' is not name=value");
  std::string_view text = assignment.substr(eq + 1);
  double v = 0;
  if (text == "true") v = 1;
  else if (text == "false") v = 0;
  else {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      throw Error("config override '" + std::string(assignment) + "': value is not a number");
  }
  set_config_field(cfg, assignment.substr(0, eq), v);
}

std::string config_to_json(const DetectorConfig& cfg) {
  nlohmann::ordered_json j;
  for (const auto& f : fields()) {
    const double v = f.get(cfg);
    // Whole numbers print as integers (counts, flags, sample lengths); others as floats.
    if (v == std::floor(v) && std::fabs(v) < 1e9) j[f.name] = static_cast<long long>(v);
    else j[f.name] = v;
  }
  return j.dump(2);
}

DetectorConfig parse_detector_config(const std::string& json_text, const std::string& source) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": invalid JSON (" + e.what() + ")");
  }
  if (!doc.is_object()) throw Error(source + ": a detector config must be a JSON object");
  DetectorConfig cfg;
  for (auto& [key, value] : doc.items()) {
    if (value.is_boolean()) set_config_field(cfg, key, value.get<bool>() ? 1.0 : 0.0);
    else if (value.is_number()) set_config_field(cfg, key, value.get<double>());
    else throw Error(source + ": field '" + key + "' must be a number or a boolean");
  }
  if (const char* bad = validate(cfg)) throw Error(source + ": " + bad);
  return cfg;
}

DetectorConfig load_detector_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open config '" + path + "'", "check the path");
  std::stringstream text;
  text << in.rdbuf();
  return parse_detector_config(text.str(), path);
}

}  // namespace edgelm::anomaly
