// The in-car demo: intents to actions on a simulated vehicle.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include "edgelm/intent.hpp"

namespace edgelm::intent {

namespace {
std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n.,!?;:'\"";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

bool has(const std::string& s, std::string_view w) { return s.find(w) != std::string::npos; }

std::string strip_politeness(std::string s) {
  for (const char* tail : {" please", " now", " for me", " right now", " thanks", " thank you"}) {
    const std::string t(tail);
    if (s.size() > t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0) s.resize(s.size() - t.size());
  }
  return trim(s);
}

// The phrase after the last of `keys` found in the text, e.g. "navigate to the airport" -> "the airport".
std::string after(const std::string& text, std::initializer_list<const char*> keys) {
  size_t best = std::string::npos, len = 0;
  for (const char* k : keys) {
    const size_t at = text.rfind(k);
    if (at != std::string::npos && (best == std::string::npos || at > best)) {
      best = at;
      len = std::string_view(k).size();
    }
  }
  if (best == std::string::npos) return "";
  return strip_politeness(trim(text.substr(best + len)));
}

std::optional<int> first_number(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      int v = 0;
      size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) && v < 100000) v = v * 10 + (s[j++] - '0');
      return v;
    }
  return std::nullopt;
}

std::string fmt_temp(float f) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f F", f);
  return b;
}

// Lines for each field that differs between two states.
void diff(const VehicleState& a, const VehicleState& b, std::vector<std::string>& out) {
  auto line = [&](const char* field, const std::string& from, const std::string& to) {
    if (from != to) out.push_back(std::string("  state ") + field + ": " + (from.empty() ? "(none)" : from) + " -> " + (to.empty() ? "(none)" : to));
  };
  line("navigation.destination", a.destination, b.destination);
  line("climate.power", a.climate_on ? "on" : "off", b.climate_on ? "on" : "off");
  line("climate.temperature", fmt_temp(a.cabin_temp_f), fmt_temp(b.cabin_temp_f));
  line("media.status", a.media, b.media);
  line("media.track", a.track, b.track);
  line("media.volume", std::to_string(a.volume), std::to_string(b.volume));
  line("phone.call", a.call, b.call);
  line("phone.message_to", a.message_to, b.message_to);
  line("engine", a.engine_on ? "on" : "off", b.engine_on ? "on" : "off");
}

const char* kFallback =
    "Sorry, I can't help with that from the car. I can navigate, set the temperature, play music, "
    "or call and text people.";
}  // namespace

CarAssistant::CarAssistant(Classifier& classifier, float min_confidence)
    : cls_(classifier), min_confidence_(min_confidence) {}

std::vector<std::string> CarAssistant::handle(std::string_view utterance) {
  std::vector<std::string> out;
  const std::string text = trim(utterance);
  if (text.empty()) {
    out.push_back("  say: I didn't catch that. Could you say it again?");
    return out;
  }
  context_.push_back(text);
  if (context_.size() > 3) context_.erase(context_.begin());

  Prediction p = cls_.classify(text, 1);
  bool from_context = false;
  if ((p.oos || p.confidence < min_confidence_) && context_.size() > 1) {
    // A short follow-up ("make it 72", "a bit louder") may only make sense with what came before.
    std::string joined;
    for (const auto& c : context_) joined += (joined.empty() ? "" : ". ") + c;
    const Prediction q = cls_.classify(joined, 1);
    if (!q.oos && q.confidence >= min_confidence_) {
      p = q;
      from_context = true;
    }
  }
  char head[160];
  std::snprintf(head, sizeof head, "> intent %s (%.2f)%s", p.intent.c_str(), p.confidence,
                from_context ? " [using context]" : "");
  out.push_back(head);
  if (p.oos || p.confidence < min_confidence_) {
    out.push_back(std::string("  say: ") + kFallback);
    last_intent_.clear();
    return out;
  }

  const VehicleState before = state_;
  const std::string t = lower(text);
  const std::string& in = p.intent;
  std::string say;
  if (in == "directions" || in == "uber") {
    std::string dest = after(t, {" to ", "navigate ", "directions for "});
    if (dest.empty()) {
      const size_t at = std::min(t.find("nearest"), t.find("closest"));
      if (at != std::string::npos) dest = strip_politeness(trim(t.substr(at)));
    }
    if (dest.empty()) dest = state_.destination.empty() ? "the requested place" : state_.destination;
    state_.destination = dest;
    say = in == "uber" ? "Booking a ride; the route to " + dest + " is on the map."
                       : "Starting navigation to " + dest + ".";
  } else if (in == "distance" || in == "traffic") {
    say = state_.destination.empty() ? "Where would you like to go? Tell me a destination first."
          : in == "distance"         ? "About 12 miles to " + state_.destination + ", 21 minutes."
                                     : "Light traffic on the way to " + state_.destination + ".";
  } else if (in == "current_location") {
    say = "You are on Main Street, heading north.";
  } else if (in == "gas" || in == "mpg") {
    char b[96];
    std::snprintf(b, sizeof b, in == "gas" ? "The tank is %.0f%% full." : "You are averaging 31 miles per gallon.",
                  state_.fuel_pct);
    say = b;
  } else if (in == "gas_type") {
    say = "This car takes regular unleaded.";
  } else if (in == "tire_pressure") {
    char b[96];
    std::snprintf(b, sizeof b, "Tire pressure: front %.0f/%.0f psi, rear %.0f/%.0f psi.", state_.tire_psi[0],
                  state_.tire_psi[1], state_.tire_psi[2], state_.tire_psi[3]);
    say = b;
  } else if (in == "oil_change_when" || in == "last_maintenance" || in == "schedule_maintenance" ||
             in == "oil_change_how" || in == "tire_change" || in == "jump_start") {
    say = in == "schedule_maintenance" ? "I've requested a service appointment at your dealer."
          : in == "oil_change_when"    ? "The next oil change is due in 1,800 miles."
          : in == "last_maintenance"   ? "The last service was 4 months ago."
                                       : "I'll show the steps on the screen once you are parked.";
  } else if (in == "smart_home") {
    const auto n = first_number(t);
    if (has(t, "start") && (has(t, "car") || has(t, "vehicle") || has(t, "engine"))) {
      state_.engine_on = true;
      say = "Engine started.";
    } else if (n && *n >= 50 && *n <= 90) {
      state_.climate_on = true;
      state_.cabin_temp_f = static_cast<float>(*n);
      say = "Setting the cabin to " + fmt_temp(state_.cabin_temp_f) + ".";
    } else if (has(t, "off")) {
      state_.climate_on = false;
      say = "Climate control off.";
    } else if (has(t, "warm") || has(t, "heat") || has(t, "up") || has(t, "cold")) {
      state_.climate_on = true;
      state_.cabin_temp_f = std::min(90.0f, state_.cabin_temp_f + 2);
      say = "Warming up to " + fmt_temp(state_.cabin_temp_f) + ".";
    } else if (has(t, "cool") || has(t, "ac") || has(t, "down") || has(t, "hot")) {
      state_.climate_on = true;
      state_.cabin_temp_f = std::max(50.0f, state_.cabin_temp_f - 2);
      say = "Cooling down to " + fmt_temp(state_.cabin_temp_f) + ".";
    } else {
      state_.climate_on = true;
      say = "Climate control on at " + fmt_temp(state_.cabin_temp_f) + ".";
    }
  } else if (in == "play_music") {
    std::string what = after(t, {"play "});
    for (const char* junk : {"some ", "me "})
      if (what.rfind(junk, 0) == 0) what = what.substr(std::string_view(junk).size());
    state_.media = "playing";
    if (!what.empty() && what != "music") state_.track = what;
    else if (state_.track.empty()) state_.track = "your driving playlist";
    say = "Playing " + state_.track + ".";
  } else if (in == "next_song") {
    state_.media = "playing";
    state_.track = "next track";
    say = "Skipping to the next song.";
  } else if (in == "what_song") {
    say = state_.media == "playing" ? "This is " + state_.track + "." : "Nothing is playing right now.";
  } else if (in == "change_volume") {
    const auto n = first_number(t);
    if (n && *n <= 10) state_.volume = *n;
    else if (has(t, "down") || has(t, "lower") || has(t, "quiet") || has(t, "softer") || has(t, "decrease"))
      state_.volume = std::max(0, state_.volume - 2);
    else state_.volume = std::min(10, state_.volume + 2);
    say = "Volume " + std::to_string(state_.volume) + ".";
  } else if (in == "make_call") {
    std::string who = after(t, {"call ", "phone ", "dial "});
    if (who.empty()) who = "your last contact";
    state_.call = who;
    say = "Calling " + who + ".";
  } else if (in == "text") {
    std::string who = after(t, {"text ", "message to ", "message "});
    const size_t cut = who.find(" that ");
    if (cut != std::string::npos) who.resize(cut);
    if (who.empty()) who = "your last contact";
    state_.message_to = who;
    say = "Sending a message to " + who + ".";
  } else if (in == "cancel" || in == "no") {
    if (last_intent_ == "directions" || last_intent_ == "uber") state_.destination.clear();
    else if (last_intent_ == "make_call") state_.call.clear();
    else if (last_intent_ == "play_music" || last_intent_ == "next_song") state_.media = "paused";
    say = "Okay, cancelled.";
  } else if (in == "greeting") {
    say = "Hello! Where are we going today?";
  } else if (in == "thank_you") {
    say = "You're welcome.";
  } else if (in == "goodbye") {
    say = "Goodbye, drive safely.";
  } else if (in == "weather") {
    say = "It's 64 F and clear along your route.";
  } else {
    say = "I understood '" + in + "', but that is not something I can do from the car.";
  }
  diff(before, state_, out);
  out.push_back("  say: " + say);
  last_intent_ = in;
  return out;
}

}  // namespace edgelm::intent
