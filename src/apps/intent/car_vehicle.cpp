// The simulated vehicle: its state, the calls it takes, and what each call does.
#include <cmath>
#include <cstdio>

#include "edgelm/car.hpp"
#include "edgelm/error.hpp"

namespace edgelm::car {

namespace {
using ojson = nlohmann::ordered_json;

std::string quoted(const std::string& s) { return ojson(s).dump(); }

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

template <class T>
void take(const nlohmann::json& j, const char* key, T& out) {
  try {
    out = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(std::string("vehicle state: '") + key + "' has the wrong type", "see edgelm/car.hpp VehicleState");
  }
}
}  // namespace

ojson VehicleState::to_json() const {
  return ojson{{"destination", destination}, {"climate_on", climate_on}, {"temperature_c", temperature_c},
               {"media", media},             {"artist", artist},         {"song", song},
               {"genre", genre},             {"station", station},       {"volume", volume},
               {"call", call},               {"message_to", message_to}, {"message", message},
               {"engine_on", engine_on},     {"fuel_pct", fuel_pct}};
}

VehicleState VehicleState::from_json(const nlohmann::json& j) {
  VehicleState s;
  if (!j.is_object()) throw Error("vehicle state: expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    const char* k = key.c_str();
    if (key == "destination") take(j, k, s.destination);
    else if (key == "climate_on") take(j, k, s.climate_on);
    else if (key == "temperature_c") take(j, k, s.temperature_c);
    else if (key == "media") take(j, k, s.media);
    else if (key == "artist") take(j, k, s.artist);
    else if (key == "song") take(j, k, s.song);
    else if (key == "genre") take(j, k, s.genre);
    else if (key == "station") take(j, k, s.station);
    else if (key == "volume") take(j, k, s.volume);
    else if (key == "call") take(j, k, s.call);
    else if (key == "message_to") take(j, k, s.message_to);
    else if (key == "message") take(j, k, s.message);
    else if (key == "engine_on") take(j, k, s.engine_on);
    else if (key == "fuel_pct") take(j, k, s.fuel_pct);
    else throw Error("vehicle state: unknown field '" + key + "'", "see edgelm/car.hpp VehicleState");
    (void)value;
  }
  return s;
}

std::string VehicleCall::to_string() const {
  std::string r = name + "(";
  bool first = true;
  const bool named = args.size() > 1 || name == "play_media";
  for (const auto& [k, v] : args.items()) {
    if (!first) r += ", ";
    first = false;
    if (named) r += k + "=";
    if (v.is_string()) r += quoted(v.get<std::string>());
    else if (v.is_boolean()) r += v.get<bool>() ? "on" : "off";
    else if (v.is_number_float()) r += number(v.get<double>());
    else r += v.dump();
  }
  return r + ")";
}

bool same_call(const VehicleCall& a, const VehicleCall& b) {
  if (a.name != b.name || a.args.size() != b.args.size()) return false;
  for (const auto& [k, v] : a.args.items()) {
    if (!b.args.contains(k)) return false;
    const auto& w = b.args.at(k);
    if (v.is_number() && w.is_number()) {
      if (std::fabs(v.get<double>() - w.get<double>()) > 0.01) return false;
    } else if (v != w) {
      return false;
    }
  }
  return true;
}

std::string execute(const VehicleCall& c, VehicleState& s) {
  const ojson& a = c.args;
  auto str = [&](const char* k) { return a.contains(k) ? a.at(k).get<std::string>() : std::string(); };
  if (c.name == "set_navigation_destination") {
    s.destination = str("destination");
    return "Starting navigation to " + s.destination + ".";
  }
  if (c.name == "book_ride") {
    s.destination = str("destination");
    return "Booking a ride to " + s.destination + "; the route is on the map.";
  }
  if (c.name == "set_temperature") {
    s.climate_on = true;
    s.temperature_c = a.at("celsius").get<double>();
    return "Setting the cabin to " + number(s.temperature_c) + " C.";
  }
  if (c.name == "set_climate") {
    s.climate_on = a.at("on").get<bool>();
    return s.climate_on ? "Climate control on at " + number(s.temperature_c) + " C." : "Climate control off.";
  }
  if (c.name == "start_engine") {
    s.engine_on = true;
    return "Engine started.";
  }
  if (c.name == "play_media") {
    s.media = "playing";
    s.artist = str("artist");
    s.song = str("song");
    s.genre = str("genre");
    s.station = str("station");
    std::string what = !s.station.empty() ? s.station
                       : !s.song.empty()  ? s.song + (s.artist.empty() ? "" : " by " + s.artist)
                       : !s.artist.empty() ? s.artist
                       : !s.genre.empty()  ? s.genre
                                           : "your driving playlist";
    return "Playing " + what + ".";
  }
  if (c.name == "next_track") {
    s.media = "playing";
    s.song = "next track";
    return "Skipping to the next song.";
  }
  if (c.name == "set_volume") {
    s.volume = a.at("level").get<int>();
    return s.volume == 0 ? "Muted." : "Volume " + std::to_string(s.volume) + ".";
  }
  if (c.name == "call_contact") {
    s.call = str("contact");
    return "Calling " + s.call + ".";
  }
  if (c.name == "send_message") {
    s.message_to = str("contact");
    s.message = str("message");
    return "Texting " + s.message_to + ": \"" + s.message + "\".";
  }
  throw Error("the vehicle has no function '" + c.name + "'");
}

}  // namespace edgelm::car
