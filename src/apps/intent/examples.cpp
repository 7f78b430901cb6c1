// Reading labelled examples from JSON Lines.
#include <fstream>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"

namespace edgelm::intent {

namespace {
bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}
}  // namespace

std::vector<Example> read_examples(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open data file '" + path + "'", "check the path (JSON Lines: {\"text\": ..., \"label\": ...})");
  std::vector<Example> out;
  std::string line;
  size_t line_no = 0;
  while (std::getline(f, line)) {
    ++line_no;
    if (blank(line)) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(where + ": malformed JSON (" + std::string(e.what()).substr(0, 120) + ")",
                  "each line must be one object like {\"text\": \"...\", \"label\": \"...\"}");
    }
    if (!j.is_object()) throw Error(where + ": expected a JSON object", "each line must be {\"text\": ..., \"label\": ...}");
    auto field = [&](const char* a, const char* b) -> std::string {
      const auto it = j.contains(a) ? j.find(a) : j.find(b);
      if (it == j.end()) throw Error(where + ": missing \"" + a + "\"", "each line needs \"text\" and \"label\" (or \"intent\")");
      if (!it->is_string()) throw Error(where + ": \"" + a + "\" must be a string");
      return it->get<std::string>();
    };
    Example e{field("text", "text"), field("label", "intent")};
    if (blank(e.text)) throw Error(where + ": the text is empty", "remove the line or give it a text");
    if (blank(e.label)) throw Error(where + ": the label is empty", "give every example a label");
    out.push_back(std::move(e));
  }
  if (f.bad()) throw Error("cannot read data file '" + path + "'");
  if (out.empty()) throw Error("data file '" + path + "' holds no examples", "one JSON object a line");
  return out;
}

}  // namespace edgelm::intent
