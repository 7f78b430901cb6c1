// The in-car assistant: an utterance's intent (the classifier), its arguments (the language
// model, for the commands that take some), the call resolved against the vehicle state, executed.
#include <chrono>
#include <cstdio>

#include "edgelm/car.hpp"
#include "edgelm/error.hpp"

namespace edgelm::car {

namespace {
std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::string celsius(double c) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f C", c);
  return b;
}

// Lines for each field that differs between two states.
std::vector<std::string> diff(const VehicleState& a, const VehicleState& b) {
  std::vector<std::string> out;
  auto line = [&](const char* field, const std::string& from, const std::string& to) {
    if (from != to)
      out.push_back(std::string("  state ") + field + ": " + (from.empty() ? "(none)" : from) + " -> " +
                    (to.empty() ? "(none)" : to));
  };
  line("navigation.destination", a.destination, b.destination);
  line("climate.power", a.climate_on ? "on" : "off", b.climate_on ? "on" : "off");
  line("climate.temperature", celsius(a.temperature_c), celsius(b.temperature_c));
  line("media.status", a.media, b.media);
  line("media.artist", a.artist, b.artist);
  line("media.song", a.song, b.song);
  line("media.genre", a.genre, b.genre);
  line("media.station", a.station, b.station);
  line("media.volume", std::to_string(a.volume), std::to_string(b.volume));
  line("phone.call", a.call, b.call);
  line("phone.message_to", a.message_to, b.message_to);
  line("phone.message", a.message, b.message);
  line("engine", a.engine_on ? "on" : "off", b.engine_on ? "on" : "off");
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// What the intents without arguments say (and the little they change).
std::string fixed_reply(const std::string& in, VehicleState& s, const std::string& last_intent,
                        std::optional<VehicleCall>& call) {
  char b[128];
  if (in == "distance" || in == "traffic") {
    if (s.destination.empty()) return "Where would you like to go? Tell me a destination first.";
    return in == "distance" ? "About 12 miles to " + s.destination + ", 21 minutes."
                            : "Light traffic on the way to " + s.destination + ".";
  }
  if (in == "current_location") return "You are on Main Street, heading north.";
  if (in == "gas") {
    std::snprintf(b, sizeof b, "The tank is %.0f%% full.", s.fuel_pct);
    return b;
  }
  if (in == "mpg") return "You are averaging 31 miles per gallon.";
  if (in == "gas_type") return "This car takes regular unleaded.";
  if (in == "tire_pressure") {
    std::snprintf(b, sizeof b, "Tire pressure: front %.0f/%.0f psi, rear %.0f/%.0f psi.", s.tire_psi[0], s.tire_psi[1],
                  s.tire_psi[2], s.tire_psi[3]);
    return b;
  }
  if (in == "schedule_maintenance") return "I've requested a service appointment at your dealer.";
  if (in == "oil_change_when") return "The next oil change is due in 1,800 miles.";
  if (in == "last_maintenance") return "The last service was 4 months ago.";
  if (in == "oil_change_how" || in == "tire_change" || in == "jump_start")
    return "I'll show the steps on the screen once you are parked.";
  if (in == "next_song") {
    call = VehicleCall{"next_track", nlohmann::ordered_json::object()};
    return execute(*call, s);
  }
  if (in == "what_song") {
    if (s.media != "playing") return "Nothing is playing right now.";
    return "This is " + (s.song.empty() ? s.artist.empty() ? s.genre.empty() ? s.station : s.genre : s.artist : s.song) + ".";
  }
  if (in == "cancel" || in == "no") {
    if (last_intent == "directions" || last_intent == "uber") s.destination.clear();
    else if (last_intent == "make_call") s.call.clear();
    else if (last_intent == "play_music" || last_intent == "next_song") s.media = "paused";
    return "Okay, cancelled.";
  }
  if (in == "greeting") return "Hello! Where are we going today?";
  if (in == "thank_you") return "You're welcome.";
  if (in == "goodbye") return "Goodbye, drive safely.";
  if (in == "weather") return "It's 18 C and clear along your route.";
  return {};
}
}  // namespace

std::vector<std::string> Turn::lines() const {
  char head[200];
  std::snprintf(head, sizeof head, "> intent %s (%.2f)%s", intent.c_str(), confidence,
                from_context ? " [using context]" : "");
  std::vector<std::string> out{head};
  if (!filled.empty()) out.push_back("  arguments " + filled);
  if (call) out.push_back("  call " + call->to_string());
  out.insert(out.end(), changes.begin(), changes.end());
  out.push_back("  say: " + say);
  return out;
}

CarAssistant::CarAssistant(intent::Classifier* classifier, ArgumentFiller& filler, float min_confidence)
    : cls_(classifier), filler_(filler), min_confidence_(min_confidence) {}

void CarAssistant::reset(VehicleState s, std::vector<std::string> earlier) {
  state_ = std::move(s);
  context_ = std::move(earlier);
  if (context_.size() > 2) context_.erase(context_.begin(), context_.end() - 2);
  last_intent_.clear();
}

Turn CarAssistant::handle(std::string_view utterance) {
  Turn t;
  const std::string text = trim(utterance);
  if (text.empty()) {
    t.fallback = true;
    t.say = "I didn't catch that. Could you say it again?";
    return t;
  }
  if (!cls_) throw Error("the car assistant has no intent classifier", "give one, or use handle_as");
  const auto t0 = std::chrono::steady_clock::now();
  intent::Prediction p = cls_->classify(text, 1);
  if ((p.oos || p.confidence < min_confidence_) && !context_.empty()) {
    // A short follow-up ("make it 22", "a bit louder") may only make sense with what came before.
    std::string joined;
    for (const auto& c : context_) joined += c + ". ";
    const intent::Prediction q = cls_->classify(joined + text, 1);
    if (!q.oos && q.confidence >= min_confidence_) {
      p = q;
      t.from_context = true;
    }
  }
  t.classify_ms = ms_since(t0);
  t.intent = p.oos || p.confidence < min_confidence_ ? std::string(intent::kOosLabel) : p.intent;
  t.confidence = p.confidence;
  return act(std::move(t), text);
}

Turn CarAssistant::handle_as(std::string_view utterance, const std::string& intent) {
  Turn t;
  t.intent = intent;
  t.confidence = 1;
  return act(std::move(t), trim(utterance));
}

Turn CarAssistant::act(Turn t, std::string_view text) {
  const VehicleState before = state_;
  if (t.intent == intent::kOosLabel) {
    t.fallback = true;
    t.say = kFallback;
  } else if (const CommandSpec* spec = command_spec(t.intent)) {
    const auto t0 = std::chrono::steady_clock::now();
    const ArgumentFiller::Result f = filler_.fill(*spec, text, context_, state_);
    t.fill_ms = ms_since(t0);
    t.filled = f.json;
    t.fill_prompt_tokens = f.n_prompt;
    t.fill_generated_tokens = f.n_generated;
    Resolution r = f.complete ? resolve(t.intent, f.json, state_) : Resolution{std::nullopt, "incomplete", {}};
    if (r.call) {
      t.call = std::move(r.call);
      t.say = execute(*t.call, state_);
    } else {
      t.fallback = true;
      t.say = !r.ask.empty() ? "Sorry, I didn't get that. " + r.ask
                             : "Sorry, I didn't get that. Could you say it another way?";
    }
  } else {
    t.say = fixed_reply(t.intent, state_, last_intent_, t.call);
    if (t.say.empty()) {
      t.fallback = true;
      t.say = "I understood '" + t.intent + "', but that is not something I can do from the car.";
    }
  }
  t.changes = diff(before, state_);
  context_.push_back(std::string(text));
  if (context_.size() > 2) context_.erase(context_.begin());
  last_intent_ = t.fallback ? std::string() : t.intent;
  return t;
}

}  // namespace edgelm::car
