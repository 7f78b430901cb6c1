// Reading and writing DetectorConfig by field name (host side): a JSON config file for
// `edgelm anomaly --config`, and `name=value` overrides for the NAB bench.
//
//   auto cfg = edgelm::anomaly::load_detector_config("detector.json");
//   edgelm::anomaly::set_config_field(cfg, "refractory", 300);
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/anomaly/detector.hpp"

namespace edgelm::anomaly {

// Sets one field; throws edgelm::Error for an unknown name (listing the known ones).
void set_config_field(DetectorConfig& cfg, std::string_view name, double value);
// `name=value`; throws edgelm::Error when malformed.
void apply_config_override(DetectorConfig& cfg, std::string_view assignment);
// Names of all settable fields, in declaration order.
std::vector<std::string> config_field_names();
// One JSON object with every field, e.g. for `--dump-config`.
std::string config_to_json(const DetectorConfig& cfg);
// Parses a JSON object of field -> number/bool; unknown fields and invalid values are errors.
DetectorConfig parse_detector_config(const std::string& json_text, const std::string& source);
DetectorConfig load_detector_config(const std::string& path);

}  // namespace edgelm::anomaly
