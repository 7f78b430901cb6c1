// The commands whose arguments the model fills: per intent a JSON Schema and a few-shot prompt;
// and the deterministic half: checking what the model wrote and resolving it into a call.
//
// The model copies what was said into the fields (a number as spoken, the unit only when
// spoken, a direction word for a relative change); it never does arithmetic. Everything with a
// rule lives here: normalising names, inferring the unit, converting Fahrenheit, default steps,
// adding a change to the current value, ranges.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "edgelm/car.hpp"

namespace edgelm::car {

namespace {
using ojson = nlohmann::ordered_json;

const ojson kName = {{"type", "string"}, {"minLength", 1}, {"maxLength", 60}};

ojson object(ojson properties, std::vector<std::string> required) {
  return ojson{{"type", "object"}, {"properties", std::move(properties)}, {"required", required},
               {"additionalProperties", false}};
}

// Examples never repeat an utterance of tests/fixtures/car (the evaluation sets).
std::vector<CommandSpec> make_specs() {
  std::vector<CommandSpec> v;
  const ojson destination = object({{"destination", kName}}, {"destination"});
  v.push_back({"directions", "set_navigation_destination", destination,
               "Write the place the driver wants to go as JSON, with every word that names it.\n"
               "Driver: navigate to the nearest parking garage\nJSON: {\"destination\": \"nearest parking garage\"}\n"
               "Driver: take me home\nJSON: {\"destination\": \"home\"}\n"
               "Driver: directions to 10 downing street please\nJSON: {\"destination\": \"10 downing street\"}\n"
               "Driver: how do i get to the bank from here\nJSON: {\"destination\": \"bank\"}\n"
               "Driver: find the closest car wash\nJSON: {\"destination\": \"closest car wash\"}\n"
               "Driver: route to the nearest atm now\nJSON: {\"destination\": \"nearest atm\"}\n"
               "Driver: i want to go to joe's diner on main street\nJSON: {\"destination\": \"joe's diner on main street\"}\n"
               "Driver: let's head to the office\nJSON: {\"destination\": \"office\"}\n"
               "Earlier: navigate to the zoo\nRoute: zoo\nDriver: actually the aquarium instead\nJSON: {\"destination\": \"aquarium\"}\n"
               "Earlier: take me to the bakery\nEarlier: turn up the volume\nRoute: bakery\nDriver: no, go to the florist\n"
               "JSON: {\"destination\": \"florist\"}\n\n"});
  v.push_back({"uber", "book_ride", destination,
               "Write where the driver wants a ride to as JSON.\n"
               "Driver: get me an uber to the zoo\nJSON: {\"destination\": \"zoo\"}\n"
               "Driver: i need an uber to go to my parents' house\nJSON: {\"destination\": \"parents' house\"}\n"
               "Driver: order an uber to the ferry terminal please\nJSON: {\"destination\": \"ferry terminal\"}\n"
               "Driver: can you call an uber to take me to the city hall\nJSON: {\"destination\": \"city hall\"}\n"
               "Earlier: navigate to the museum\nRoute: museum\nDriver: book a ride there\nJSON: {\"destination\": \"museum\"}\n"
               "Earlier: directions to the harbor\nRoute: harbor\nDriver: get an uber to that place\nJSON: {\"destination\": \"harbor\"}\n\n"});
  const ojson degrees = {{"type", "number"}, {"minimum", 0}, {"maximum", 120}};
  v.push_back({"smart_home", "the climate control",
               object({{"action", {{"enum", {"set", "warmer", "warm", "heat", "up", "raise", "increase", "higher", "cooler", "cool", "down", "lower", "decrease", "drop", "on", "off", "start_engine"}}}},
                       {"degrees", degrees},
                       {"by", degrees},
                       {"unit", {{"enum", {"C", "F"}}}}},
                      {"action"}),
               "Write the driver's climate request as JSON. action: set (degrees: the temperature wanted), the "
               "driver's own word for a change (warmer, up, raise, cooler, down, lower, drop, ...) with by: how many "
               "degrees if said, on, off, start_engine. unit: C or F only if said.\n"
               "Driver: set the temperature to 23 degrees\nJSON: {\"action\": \"set\", \"degrees\": 23}\n"
               "Driver: make it 71 fahrenheit\nJSON: {\"action\": \"set\", \"degrees\": 71, \"unit\": \"F\"}\n"
               "Driver: change the cabin temperature to 20 celsius\nJSON: {\"action\": \"set\", \"degrees\": 20, \"unit\": \"C\"}\n"
               "Driver: i'd like it at 69\nJSON: {\"action\": \"set\", \"degrees\": 69}\n"
               "Driver: heat it up a little\nJSON: {\"action\": \"up\"}\n"
               "Driver: it's cold in here\nJSON: {\"action\": \"warmer\"}\n"
               "Driver: increase the heat by 1 degree\nJSON: {\"action\": \"increase\", \"by\": 1}\n"
               "Driver: cool it down by 3 degrees\nJSON: {\"action\": \"down\", \"by\": 3}\n"
               "Driver: decrease the temperature 2 degrees\nJSON: {\"action\": \"decrease\", \"by\": 2}\n"
               "Driver: lower the heat\nJSON: {\"action\": \"lower\"}\n"
               "Driver: turn it down 5 degrees fahrenheit\nJSON: {\"action\": \"down\", \"by\": 5, \"unit\": \"F\"}\n"
               "Driver: it's boiling in here\nJSON: {\"action\": \"cooler\"}\n"
               "Driver: switch the ac off\nJSON: {\"action\": \"off\"}\n"
               "Driver: kill the heating\nJSON: {\"action\": \"off\"}\n"
               "Driver: turn the climate on\nJSON: {\"action\": \"on\"}\n"
               "Driver: start my car\nJSON: {\"action\": \"start_engine\"}\n"
               "Earlier: set the temperature to 20 degrees\nDriver: a little higher\nJSON: {\"action\": \"higher\"}\n"
               "Earlier: make it cooler\nDriver: again\nJSON: {\"action\": \"cooler\"}\n"
               "Earlier: heat it up\nDriver: 3 more\nJSON: {\"action\": \"up\", \"by\": 3}\n"
               "Earlier: set the temperature to 19\nDriver: no, 21\nJSON: {\"action\": \"set\", \"degrees\": 21}\n\n"});
  v.push_back({"play_music", "play_media",
               object({{"artist", kName}, {"song", kName}, {"genre", kName}, {"station", kName}}, {}),
               "Write what the driver wants to hear as JSON, with only the fields that apply: artist (a singer "
               "or band), song (a title), genre (a style such as pop or jazz), station (a radio station).\n"
               "Driver: play some reggae\nJSON: {\"genre\": \"reggae\"}\n"
               "Driver: play purple rain by prince\nJSON: {\"artist\": \"prince\", \"song\": \"purple rain\"}\n"
               "Driver: put on metallica\nJSON: {\"artist\": \"metallica\"}\n"
               "Driver: play the song let it be\nJSON: {\"song\": \"let it be\"}\n"
               "Driver: i want to listen to halo by beyonce\nJSON: {\"artist\": \"beyonce\", \"song\": \"halo\"}\n"
               "Driver: play some pop music\nJSON: {\"genre\": \"pop\"}\n"
               "Driver: tune in to kiss fm\nJSON: {\"station\": \"kiss fm\"}\n"
               "Driver: switch to the classic rock station\nJSON: {\"station\": \"classic rock station\"}\n"
               "Driver: play something by the killers\nJSON: {\"artist\": \"the killers\"}\n"
               "Driver: put on wonderwall\nJSON: {\"song\": \"wonderwall\"}\n"
               "Earlier: play some u2\nPlaying: artist u2\nDriver: play their song one\nJSON: {\"artist\": \"u2\", \"song\": \"one\"}\n"
               "Earlier: play dancing queen by abba\nPlaying: artist abba, song dancing queen\nDriver: something else by them\n"
               "JSON: {\"artist\": \"abba\"}\n"
               "Earlier: play some pop\nPlaying: genre pop\nDriver: now some techno\nJSON: {\"genre\": \"techno\"}\n\n"});
  v.push_back({"change_volume", "set_volume",
               object({{"action", {{"enum", {"set", "up", "louder", "raise", "increase", "crank", "down", "quieter", "softer", "lower", "decrease", "mute", "max"}}}},
                       {"level", {{"type", "integer"}, {"minimum", 0}, {"maximum", 10}}},
                       {"by", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}}}},
                      {"action"}),
               "Write the driver's volume request as JSON. action: set (level: the volume wanted), the driver's own "
               "word for a change (up, louder, raise, down, quieter, softer, lower, ...) with by: how many steps if "
               "said, mute, max.\n"
               "Driver: set the volume to 6\nJSON: {\"action\": \"set\", \"level\": 6}\n"
               "Driver: louder\nJSON: {\"action\": \"louder\"}\n"
               "Driver: pump up the volume\nJSON: {\"action\": \"up\"}\n"
               "Driver: raise it by 2\nJSON: {\"action\": \"raise\", \"by\": 2}\n"
               "Driver: turn it down by 3\nJSON: {\"action\": \"down\", \"by\": 3}\n"
               "Driver: it's too loud\nJSON: {\"action\": \"down\"}\n"
               "Driver: make the radio quieter\nJSON: {\"action\": \"quieter\"}\n"
               "Driver: silence the sound\nJSON: {\"action\": \"mute\"}\n"
               "Driver: full volume\nJSON: {\"action\": \"max\"}\n"
               "Driver: change the volume to level 3\nJSON: {\"action\": \"set\", \"level\": 3}\n"
               "Driver: make the music a bit softer\nJSON: {\"action\": \"softer\"}\n"
               "Driver: volume level 8 please\nJSON: {\"action\": \"set\", \"level\": 8}\n"
               "Earlier: turn the volume down\nDriver: more\nJSON: {\"action\": \"down\"}\n"
               "Earlier: louder\nDriver: 2 more\nJSON: {\"action\": \"up\", \"by\": 2}\n"
               "Earlier: set the volume to 9\nDriver: make it 7 instead\nJSON: {\"action\": \"set\", \"level\": 7}\n"
               "Earlier: turn it up\nDriver: a little quieter\nJSON: {\"action\": \"quieter\"}\n"
               "Earlier: set the volume to 2\nDriver: no, 4\nJSON: {\"action\": \"set\", \"level\": 4}\n\n"});
  v.push_back({"make_call", "call_contact", object({{"contact", kName}}, {"contact"}),
               "Write who the driver wants to call as JSON.\n"
               "Driver: call my sister\nJSON: {\"contact\": \"sister\"}\n"
               "Driver: phone jane doe\nJSON: {\"contact\": \"jane doe\"}\n"
               "Driver: dial 555 0199\nJSON: {\"contact\": \"555 0199\"}\n"
               "Driver: please ring the garage\nJSON: {\"contact\": \"garage\"}\n"
               "Driver: could you give my uncle a call\nJSON: {\"contact\": \"uncle\"}\n"
               "Driver: call ben on his mobile\nJSON: {\"contact\": \"ben\"}\n"
               "Earlier: text bob that i'm late\nLast text: bob\nDriver: call him\nJSON: {\"contact\": \"bob\"}\n"
               "Earlier: call anna\nLast call: anna\nDriver: no, call hannah\nJSON: {\"contact\": \"hannah\"}\n\n"});
  v.push_back({"text", "send_message",
               object({{"contact", kName}, {"message", {{"type", "string"}, {"minLength", 1}, {"maxLength", 160}}}},
                      {"contact"}),
               "Write the text message the driver wants to send as JSON, with the contact and the words to send.\n"
               "Driver: text bob that i'm late\nJSON: {\"contact\": \"bob\", \"message\": \"i'm late\"}\n"
               "Driver: send a message to my sister saying good night\nJSON: {\"contact\": \"sister\", \"message\": \"good night\"}\n"
               "Driver: message carol see you soon\nJSON: {\"contact\": \"carol\", \"message\": \"see you soon\"}\n"
               "Driver: send a text to the plumber saying come at 9\nJSON: {\"contact\": \"plumber\", \"message\": \"come at 9\"}\n"
               "Driver: tell paul in a text that the game starts at 7\nJSON: {\"contact\": \"paul\", \"message\": \"the game starts at 7\"}\n"
               "Earlier: call anna\nLast call: anna\nDriver: text her that i'll call later\nJSON: {\"contact\": \"anna\", \"message\": \"i'll call later\"}\n\n"});
  return v;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n.,!?;:\"";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::string fmt1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

double round_half(double c) { return std::round(c * 2) / 2; }

Resolution fail(std::string problem, std::string ask = {}) { return {std::nullopt, std::move(problem), std::move(ask)}; }

VehicleCall make(std::string name, ojson args = ojson::object()) { return {std::move(name), std::move(args)}; }

std::optional<double> num(const ojson& j, const char* k) {
  if (!j.contains(k) || !j.at(k).is_number()) return std::nullopt;
  return j.at(k).get<double>();
}

std::string name_of(const ojson& j, const char* k) {
  return j.contains(k) && j.at(k).is_string() ? normalize_name(j.at(k).get<std::string>()) : std::string();
}

// The driver's word for a change, as the model copied it: +1 up, -1 down, 0 not a change.
int direction(const std::string& word) {
  for (const char* w : {"warmer", "warm", "heat", "up", "raise", "increase", "higher", "louder", "crank"})
    if (word == w) return 1;
  for (const char* w : {"cooler", "cool", "down", "lower", "decrease", "drop", "quieter", "softer"})
    if (word == w) return -1;
  return 0;
}

Resolution climate(const ojson& j, const VehicleState& s) {
  const std::string action = j.value("action", "");
  const std::string unit = j.value("unit", "");
  if (action == "on" || action == "off") return {make("set_climate", {{"on", action == "on"}})};
  if (action == "start_engine") return {make("start_engine")};
  double c;
  if (action == "set") {
    const auto d = num(j, "degrees");
    if (!d) return fail("'set' without degrees", "Which temperature would you like?");
    const bool f = unit == "F" || (unit.empty() && *d >= kFahrenheitFrom);
    c = round_half(f ? (*d - 32) * 5 / 9 : *d);
    if (c < kMinCelsius || c > kMaxCelsius)
      return fail("temperature out of range",
                  "I can set the cabin between " + fmt1(kMinCelsius) + " and " + fmt1(kMaxCelsius) + " C.");
  } else if (const int sign = direction(action); sign != 0) {
    double by = num(j, "by").value_or(kCelsiusStep);
    if (unit == "F") by = by * 5 / 9;
    if (by <= 0 || by > 20) return fail("change out of range");
    c = std::clamp(round_half(s.temperature_c + sign * by), kMinCelsius, kMaxCelsius);
  } else {
    return fail("unknown climate action '" + action + "'");
  }
  return {make("set_temperature", {{"celsius", c}})};
}

Resolution volume(const ojson& j, const VehicleState& s) {
  const std::string action = j.value("action", "");
  int level;
  if (action == "set") {
    const auto l = num(j, "level");
    if (!l) return fail("'set' without a level", "Which volume level, from 0 to 10?");
    level = static_cast<int>(*l);
  } else if (const int sign = direction(action); sign != 0) {
    const int by = static_cast<int>(num(j, "by").value_or(kVolumeStep));
    level = s.volume + sign * by;
  } else if (action == "mute") {
    level = 0;
  } else if (action == "max") {
    level = 10;
  } else {
    return fail("unknown volume action '" + action + "'");
  }
  return {make("set_volume", {{"level", std::clamp(level, 0, 10)}})};
}
}  // namespace

std::span<const CommandSpec> command_specs() {
  static const std::vector<CommandSpec> specs = make_specs();
  return specs;
}

const CommandSpec* command_spec(std::string_view intent) {
  for (const auto& s : command_specs())
    if (s.intent == intent) return &s;
  return nullptr;
}

std::string normalize_name(std::string_view s) {
  std::string r = trim(lower(s));
  for (bool again = true; again;) {
    again = false;
    for (const char* a : {"the ", "my ", "a ", "an "}) {
      const std::string_view art(a);
      if (r.size() > art.size() && r.compare(0, art.size(), art) == 0) {
        r = trim(r.substr(art.size()));
        again = true;
      }
    }
  }
  for (const char* a : {"the", "my", "a", "an"})
    if (r == a) return "";
  return r;
}

namespace {
// What of the state the prompt shows for a command: what a follow-up may point back to
// ("there", "them", "her"); never the numbers that code adds changes to, so the model is not
// tempted to do the arithmetic.
std::vector<std::pair<std::string, std::string>> state_lines(const CommandSpec& spec, const VehicleState& s) {
  std::vector<std::pair<std::string, std::string>> r;
  if ((spec.intent == "uber" || spec.intent == "directions") && !s.destination.empty()) r.push_back({"Route", s.destination});
  if (spec.intent == "play_music" && s.media == "playing") {
    std::string p;
    for (auto [k, v] : {std::pair{"artist", &s.artist}, {"song", &s.song}, {"genre", &s.genre}, {"station", &s.station}})
      if (!v->empty()) p += (p.empty() ? "" : ", ") + std::string(k) + " " + *v;
    if (!p.empty()) r.push_back({"Playing", p});
  }
  if (spec.intent == "make_call" || spec.intent == "text") {
    if (!s.call.empty()) r.push_back({"Last call", s.call});
    if (!s.message_to.empty()) r.push_back({"Last text", s.message_to});
  }
  return r;
}

int direction(const std::string& word);

bool numeric(const CommandSpec& spec) { return spec.intent == "smart_home" || spec.intent == "change_volume"; }

std::string said(const CommandSpec& spec, std::string_view text) {
  const std::string t = lower(trim(text));
  return numeric(spec) ? spoken_numbers(t) : t;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    std::string w(text.substr(i, j - i));
    while (!w.empty() && std::string_view(",!?;:\"()").find(w.back()) != std::string_view::npos) w.pop_back();
    if (j >= text.size())
      while (!w.empty() && w.back() == '.') w.pop_back();
    while (!w.empty() && std::string_view(",!?;:\"()").find(w.front()) != std::string_view::npos) w.erase(0, 1);
    if (!w.empty()) out.push_back(w);
    i = j;
  }
  return out;
}

void add_spans(std::string_view text, size_t max_words, std::vector<std::string>& out) {
  const auto w = words(text);
  for (size_t b = 0; b < w.size(); ++b) {
    std::string span;
    for (size_t e = b; e < w.size() && e - b < max_words; ++e) {
      span += (e == b ? "" : " ") + w[e];
      if (std::find(out.begin(), out.end(), span) == out.end()) out.push_back(span);
    }
  }
}
}  // namespace

std::string spoken_numbers(std::string_view text) {
  static const char* ones[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                               "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                               "seventeen", "eighteen", "nineteen"};
  static const char* tens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  auto value = [](const std::string& w, const char* const* table, int n) {
    for (int i = 0; i < n; ++i)
      if (w == table[i]) return i;
    return -1;
  };
  std::vector<std::string> in;
  for (size_t i = 0; i < text.size();) {
    size_t j = text.find(' ', i);
    if (j == std::string_view::npos) j = text.size();
    if (j > i) in.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    std::string w = in[i], tail;
    while (!w.empty() && std::ispunct(static_cast<unsigned char>(w.back()))) tail.insert(tail.begin(), w.back()), w.pop_back();
    std::string rep = in[i];
    if (int t = value(w, tens, 10); t >= 2) {
      int v = t * 10;
      if (tail.empty() && i + 1 < in.size()) {
        std::string n = in[i + 1], tail2;
        while (!n.empty() && std::ispunct(static_cast<unsigned char>(n.back()))) tail2.insert(tail2.begin(), n.back()), n.pop_back();
        if (int o = value(n, ones, 10); o >= 1) v += o, tail = tail2, ++i;
      }
      rep = std::to_string(v) + tail;
    } else if (int o = value(w, ones, 20); o >= 0) {
      rep = std::to_string(o) + tail;
    }
    out += (out.empty() ? "" : " ") + rep;
  }
  return out;
}

std::string prompt_tail(const CommandSpec& spec, std::string_view utterance, std::span<const std::string> earlier,
                        const VehicleState& s) {
  std::string r;
  const size_t from = earlier.size() > 2 ? earlier.size() - 2 : 0;
  for (size_t i = from; i < earlier.size(); ++i) r += "Earlier: " + said(spec, earlier[i]) + "\n";
  for (const auto& [k, v] : state_lines(spec, s)) r += k + ": " + v + "\n";
  r += "Driver: " + said(spec, utterance) + "\nJSON:";
  return r;
}

ojson request_schema(const CommandSpec& spec, std::string_view utterance, std::span<const std::string> earlier,
                     const VehicleState& s) {
  ojson schema = spec.schema;
  const std::string now = said(spec, utterance);
  std::vector<std::string> names;
  add_spans(now, 8, names);
  const size_t from = earlier.size() > 2 ? earlier.size() - 2 : 0;
  for (size_t i = from; i < earlier.size(); ++i) add_spans(said(spec, earlier[i]), 8, names);
  for (const auto& [k, v] : state_lines(spec, s))
    for (size_t at = 0; at <= v.size();) {  // "artist abba, song dancing queen": each value
      size_t e = v.find(", ", at);
      if (e == std::string::npos) e = v.size();
      std::string part = v.substr(at, e - at);
      if (k == "Playing") part = part.substr(part.find(' ') + 1);
      add_spans(part, 8, names);
      at = e + 2;
    }
  std::vector<std::string> message;
  add_spans(now, 64, message);
  std::vector<double> numbers;
  for (const auto& w : words(now)) {
    char* end = nullptr;
    const double v = std::strtod(w.c_str(), &end);
    if (end && *end == '\0' && std::isdigit(static_cast<unsigned char>(w[0])) &&
        std::find(numbers.begin(), numbers.end(), v) == numbers.end())
      numbers.push_back(v);
  }
  // The action, too, is a word the driver said (now or just before), where one fits: a small
  // model follows its examples' last answer otherwise. set needs a number, the rest a cue.
  std::vector<std::string> heard = words(now);
  for (size_t i = from; i < earlier.size(); ++i)
    for (auto& w : words(said(spec, earlier[i]))) heard.push_back(w);
  auto was_said = [&](std::initializer_list<const char*> ws) {
    for (const char* w : ws)
      if (std::find(heard.begin(), heard.end(), w) != heard.end()) return true;
    return false;
  };
  auto& props = schema["properties"];
  if (props.contains("action")) {
    ojson allowed = ojson::array();
    for (const auto& a : props["action"]["enum"]) {
      const std::string v = a.get<std::string>();
      const bool ok = v == "set"            ? !numbers.empty()
                      : v == "start_engine" ? was_said({"start"})
                      : v == "max"          ? was_said({"max", "maximum", "full", "all"})
                      : v == "mute"         ? was_said({"mute", "silence"})
                                            : was_said({v.c_str()});
      if (ok) allowed.push_back(a);
    }
    // "drop it 2 degrees" is a change, "turn it down to 2" a level.
    const auto said_now = words(now);
    const bool change_now = std::any_of(said_now.begin(), said_now.end(), [](const std::string& w) { return direction(w) != 0; });
    if (change_now && std::find(said_now.begin(), said_now.end(), "to") == said_now.end() && allowed.size() > 1)
      allowed.erase(std::remove(allowed.begin(), allowed.end(), ojson("set")), allowed.end());
    if (!allowed.empty()) props["action"]["enum"] = allowed;
  }
  if (props.contains("unit")) {  // a unit only when one was said
    ojson units = ojson::array();
    if (was_said({"c", "celsius", "centigrade"})) units.push_back("C");
    if (was_said({"f", "fahrenheit"})) units.push_back("F");
    if (units.empty()) props.erase("unit");
    else props["unit"]["enum"] = units;
  }
  ojson keep = ojson::object();
  std::vector<std::string> dropped;
  for (auto& [key, sub] : props.items()) {
    if (sub.value("type", "") == "string") {
      const auto& choices = key == "message" ? message : names;
      if (choices.empty()) { dropped.push_back(key); continue; }
      if (key == "message") {
        sub = ojson{{"enum", choices}};
      } else if (key == "genre") {  // a style the vehicle's library knows, when one was said
        static const char* kGenres[] = {"jazz", "rock", "pop", "classical", "country", "hip hop", "rap", "blues",
                                        "lo-fi", "reggae", "techno", "metal", "folk", "soul", "funk", "disco",
                                        "r&b", "electronic", "indie", "punk", "gospel", "latin", "house", "ambient"};
        ojson g = ojson::array();
        for (const char* k : kGenres)
          if (std::find(names.begin(), names.end(), k) != names.end()) g.push_back(k);
        if (g.empty()) { dropped.push_back(key); continue; }
        sub = ojson{{"enum", g}};
      } else if (key == "station" && !was_said({"station", "radio", "fm", "am", "tune", "npr", "bbc"})) {
        dropped.push_back(key);
        continue;
      } else {
        sub = ojson{{"$ref", "#/$defs/name"}};
      }
    } else if (sub.value("type", "") == "number" || sub.value("type", "") == "integer") {
      std::vector<double> ok;
      for (double v : numbers)
        if (v >= sub.value("minimum", -1e9) && v <= sub.value("maximum", 1e9) &&
            (sub["type"] == "number" || v == std::floor(v)))
          ok.push_back(v);
      if (ok.empty()) { dropped.push_back(key); continue; }
      ojson e = ojson::array();
      for (double v : ok) e.push_back(v == std::floor(v) ? ojson(static_cast<int64_t>(v)) : ojson(v));
      sub = ojson{{"enum", e}};
    }
    keep[key] = sub;
  }
  props = keep;  // (a reference into schema: adding members below may move it)
  ojson req = ojson::array();
  for (const auto& r : schema["required"])
    if (keep.contains(r.get<std::string>())) req.push_back(r);
  schema["required"] = req;
  if (!names.empty()) schema["$defs"] = ojson{{"name", {{"enum", names}}}};
  return schema;
}

std::string forced_prefix(const ojson& schema) {
  std::string p = "{";
  const auto& props = schema.at("properties");
  if (props.empty() || !schema.contains("required") || schema["required"].empty()) return "";
  const std::string first = props.begin().key();
  if (schema["required"][0] != first) return "";
  p += ojson(first).dump() + ": ";
  ojson sub = props.begin().value();
  if (sub.contains("$ref")) sub = schema.at(ojson::json_pointer(sub["$ref"].get<std::string>().substr(1)));
  const bool text = sub.value("type", "") == "string" ||
                    (sub.contains("enum") && std::all_of(sub["enum"].begin(), sub["enum"].end(),
                                                         [](const ojson& v) { return v.is_string(); }));
  return text ? p + "\"" : p;
}

Resolution resolve(std::string_view intent, std::string_view filled_json, const VehicleState& s) {
  ojson j;
  try {
    j = ojson::parse(filled_json);
  } catch (const nlohmann::json::exception&) {
    return fail("not JSON");
  }
  if (!j.is_object()) return fail("not a JSON object");
  try {
    if (intent == "directions" || intent == "uber") {
      const std::string d = name_of(j, "destination");
      if (d.empty()) return fail("no destination", "Where would you like to go?");
      return {make(intent == "uber" ? "book_ride" : "set_navigation_destination", {{"destination", d}})};
    }
    if (intent == "smart_home") return climate(j, s);
    if (intent == "change_volume") return volume(j, s);
    if (intent == "play_music") {
      ojson args = ojson::object();
      for (const char* k : {"artist", "song", "genre", "station"}) {
        std::string v = name_of(j, k);
        if (std::string_view(k) == "genre" && v.size() > 6 && v.ends_with(" music")) v.resize(v.size() - 6);
        // One phrase names one thing: a value repeated in a later field is dropped there.
        bool repeated = false;
        for (const auto& [_, w] : args.items()) repeated |= w == v;
        if (!v.empty() && !repeated) args[k] = v;
      }
      return {make("play_media", std::move(args))};
    }
    if (intent == "make_call" || intent == "text") {
      const std::string who = name_of(j, "contact");
      if (who.empty()) return fail("no contact", "Who should I contact?");
      if (intent == "make_call") return {make("call_contact", {{"contact", who}})};
      const std::string msg = j.contains("message") && j.at("message").is_string() ? trim(lower(j.at("message").get<std::string>())) : "";
      if (msg.empty()) return fail("no message", "What should the message to " + who + " say?");
      return {make("send_message", {{"contact", who}, {"message", msg}})};
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("bad arguments: ") + e.what());
  }
  return fail("intent '" + std::string(intent) + "' takes no arguments");
}

}  // namespace edgelm::car
