// Slot evaluation sets for the car assistant: reading them and running them.
#include <ctime>
#include <fstream>

#include "edgelm/car.hpp"
#include "edgelm/error.hpp"

namespace edgelm::car {

std::vector<SlotCase> read_slot_cases(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open slot cases '" + path + "'", "check the path");
  std::vector<SlotCase> out;
  std::string line;
  for (size_t no = 1; std::getline(f, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(no) + ": ";
    try {
      const auto j = nlohmann::json::parse(line);
      SlotCase c;
      c.text = j.at("text").get<std::string>();
      if (j.contains("context")) c.earlier = j.at("context").get<std::vector<std::string>>();
      if (j.contains("state")) c.state = VehicleState::from_json(j.at("state"));
      c.intent = j.at("intent").get<std::string>();
      const auto& call = j.at("call");
      if (!call.is_null()) c.call = VehicleCall{call.at("name").get<std::string>(), nlohmann::ordered_json(call.value("args", nlohmann::json::object()))};
      out.push_back(std::move(c));
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + "malformed case (" + e.what() + ")", "see edgelm/car.hpp SlotCase");
    } catch (const Error& e) {
      throw Error(where + e.what(), e.hint());
    }
  }
  return out;
}

SlotReport evaluate_slots(CarAssistant& car, std::span<const SlotCase> cases, bool gold_intent) {
  auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  SlotReport r;
  for (const SlotCase& c : cases) {
    car.reset(c.state, c.earlier);
    const double c0 = cpu_ms();
    const Turn t = gold_intent ? car.handle_as(c.text, c.intent) : car.handle(c.text);
    const double cpu = cpu_ms() - c0;
    ++r.n;
    const bool intent_ok = t.intent == c.intent;
    r.intent_ok += intent_ok;
    bool ok;
    if (c.call) {
      ++r.n_commands;
      ok = t.call && same_call(*t.call, *c.call);
      r.exact += ok;
      r.ms.push_back(t.classify_ms + t.fill_ms);
      r.cpu_ms.push_back(cpu);
    } else {
      ++r.n_fallback;
      ok = !t.call && t.fallback;
      r.fallback_ok += ok;
    }
    nlohmann::ordered_json row{{"text", c.text}, {"intent", t.intent}, {"expected_intent", c.intent},
                               {"got", t.call ? t.call->to_string() : "fallback"},
                               {"expected", c.call ? c.call->to_string() : "fallback"},
                               {"arguments", t.filled}, {"ok", ok},
                               {"ms", t.classify_ms + t.fill_ms}, {"cpu_ms", cpu},
                               {"fill_ms", t.fill_ms}, {"tokens_in", t.fill_prompt_tokens},
                               {"tokens_out", t.fill_generated_tokens}};
    if (!c.earlier.empty()) row["context"] = c.earlier;
    r.rows.push_back(std::move(row));
  }
  return r;
}

}  // namespace edgelm::car
