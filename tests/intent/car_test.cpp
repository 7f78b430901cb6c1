// The in-car assistant: schemas and prompts agree, the deterministic half (resolving the model's
// JSON against the vehicle state, executing calls), the slot sets, and a scripted conversation
// with SmolLM2 filling the arguments (intents given, so no classifier head is needed).
#include <algorithm>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "edgelm/car.hpp"
#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "support/test_models.hpp"

namespace edgelm::car {
namespace {

using ojson = nlohmann::ordered_json;

VehicleCall call_of(std::string_view intent, std::string_view json, const VehicleState& s = {}) {
  const Resolution r = resolve(intent, json, s);
  EXPECT_TRUE(r.call.has_value()) << intent << " " << json << ": " << r.problem;
  return r.call.value_or(VehicleCall{});
}

std::string str(std::string_view intent, std::string_view json, const VehicleState& s = {}) {
  return call_of(intent, json, s).to_string();
}

// Every "JSON: ..." line of a prompt, i.e. the answers its examples show.
std::vector<std::string> example_answers(const std::string& prompt) {
  std::vector<std::string> out;
  for (size_t at = prompt.find("JSON: "); at != std::string::npos; at = prompt.find("JSON: ", at + 1))
    out.push_back(prompt.substr(at + 6, prompt.find('\n', at) - at - 6));
  return out;
}

TEST(CarCommands, EveryExampleAnswerIsValidUnderItsSchemaAndResolves) {
  ASSERT_GE(command_specs().size(), 7u);
  for (const auto& spec : command_specs()) {
    auto g = Grammar::parse(json_schema_to_grammar(spec.schema));
    const auto answers = example_answers(spec.prompt);
    ASSERT_GE(answers.size(), 4u) << spec.intent;
    for (const auto& a : answers) {
      GrammarState st(g);
      EXPECT_TRUE(st.accept_bytes(" " + a) && st.is_complete()) << spec.intent << ": " << a;
      EXPECT_TRUE(resolve(spec.intent, a, VehicleState{}).call) << spec.intent << ": " << a;
    }
    EXPECT_TRUE(spec.prompt.ends_with("\n\n")) << spec.intent;
    // The grammar refuses what the schema does not allow.
    GrammarState bad(g);
    EXPECT_FALSE(bad.accept_bytes("{\"nope\": 1}") && bad.is_complete()) << spec.intent;
  }
  EXPECT_EQ(command_spec("next_song"), nullptr);
  EXPECT_EQ(command_spec("directions")->function, "set_navigation_destination");
}

TEST(CarResolve, TemperatureUnitsAndRelativeChanges) {
  VehicleState s;  // 21.0 C
  EXPECT_EQ(str("smart_home", R"({"action": "set", "degrees": 22})"), "set_temperature(22.0)");
  // No unit: 45 and up is Fahrenheit; rounded to half degrees Celsius.
  EXPECT_EQ(str("smart_home", R"({"action": "set", "degrees": 72})"), "set_temperature(22.0)");
  EXPECT_EQ(str("smart_home", R"({"action": "set", "degrees": 74, "unit": "F"})"), "set_temperature(23.5)");
  EXPECT_EQ(str("smart_home", R"({"action": "set", "degrees": 19.5, "unit": "C"})"), "set_temperature(19.5)");
  EXPECT_EQ(str("smart_home", R"({"action": "warmer"})", s), "set_temperature(22.0)");
  EXPECT_EQ(str("smart_home", R"({"action": "cooler", "by": 3})", s), "set_temperature(18.0)");
  EXPECT_EQ(str("smart_home", R"({"action": "warmer", "by": 4, "unit": "F"})", s), "set_temperature(23.0)");
  s.temperature_c = 29.5;
  EXPECT_EQ(str("smart_home", R"({"action": "warmer", "by": 3})", s), "set_temperature(30.0)");  // clamped
  EXPECT_EQ(str("smart_home", R"({"action": "off"})"), "set_climate(off)");
  EXPECT_EQ(str("smart_home", R"({"action": "on"})"), "set_climate(on)");
  EXPECT_EQ(str("smart_home", R"({"action": "start_engine"})"), "start_engine()");
  // An absolute request out of range is refused with a reason, not clamped.
  const Resolution hot = resolve("smart_home", R"({"action": "set", "degrees": 100, "unit": "C"})", s);
  EXPECT_FALSE(hot.call);
  EXPECT_NE(hot.ask.find("between 16.0 and 30.0 C"), std::string::npos) << hot.ask;
  EXPECT_FALSE(resolve("smart_home", R"({"action": "set"})", s).call);
}

TEST(CarResolve, VolumeSteps) {
  VehicleState s;  // volume 5
  EXPECT_EQ(str("change_volume", R"({"action": "set", "level": 7})"), "set_volume(7)");
  EXPECT_EQ(str("change_volume", R"({"action": "up"})", s), "set_volume(7)");
  EXPECT_EQ(str("change_volume", R"({"action": "down", "by": 1})", s), "set_volume(4)");
  EXPECT_EQ(str("change_volume", R"({"action": "mute"})", s), "set_volume(0)");
  EXPECT_EQ(str("change_volume", R"({"action": "max"})", s), "set_volume(10)");
  s.volume = 9;
  EXPECT_EQ(str("change_volume", R"({"action": "up", "by": 5})", s), "set_volume(10)");
  EXPECT_FALSE(resolve("change_volume", R"({"action": "set"})", s).call);
}

TEST(CarResolve, NamesAreNormalisedAndMissingPartsAsked) {
  EXPECT_EQ(str("directions", R"({"destination": "The Nearest Gas Station."})"),
            R"(set_navigation_destination("nearest gas station"))");
  EXPECT_EQ(str("uber", R"({"destination": "the airport"})"), R"(book_ride("airport"))");
  EXPECT_EQ(str("make_call", R"({"contact": "my mom"})"), R"(call_contact("mom"))");
  EXPECT_EQ(str("make_call", R"({"contact": "dr. patel"})"), R"(call_contact("dr. patel"))");
  EXPECT_EQ(str("play_music", R"({"artist": "The Beatles", "song": "let it be"})"),
            R"(play_media(artist="beatles", song="let it be"))");
  EXPECT_EQ(str("play_music", R"({"genre": "jazz music"})"), R"(play_media(genre="jazz"))");
  EXPECT_EQ(str("text", R"({"contact": "sarah", "message": "I'm running late!"})"),
            R"(send_message(contact="sarah", message="i'm running late"))");
  const Resolution no_msg = resolve("text", R"({"contact": "sarah"})", {});
  EXPECT_FALSE(no_msg.call);
  EXPECT_NE(no_msg.ask.find("sarah"), std::string::npos);
  EXPECT_FALSE(resolve("directions", R"({"destination": "  the  "})", {}).call);
  EXPECT_EQ(normalize_name("  My the  Office! "), "office");
}

TEST(CarResolve, UnusableOutputIsAProblemNotACrash) {
  EXPECT_EQ(resolve("directions", "{\"destination\": \"air", {}).problem, "not JSON");
  EXPECT_EQ(resolve("directions", "[1]", {}).problem, "not a JSON object");
  EXPECT_FALSE(resolve("smart_home", R"({"action": 3})", {}).call);
  EXPECT_FALSE(resolve("smart_home", R"({"action": "dance"})", {}).call);
  EXPECT_FALSE(resolve("next_song", "{}", {}).call);
}

TEST(CarVehicle, ExecuteChangesExactlyTheState) {
  VehicleState s;
  EXPECT_EQ(execute({"set_temperature", {{"celsius", 22.5}}}, s), "Setting the cabin to 22.5 C.");
  EXPECT_TRUE(s.climate_on);
  EXPECT_DOUBLE_EQ(s.temperature_c, 22.5);
  execute({"play_media", {{"artist", "adele"}, {"song", "hello"}}}, s);
  EXPECT_EQ(s.media, "playing");
  EXPECT_EQ(s.artist, "adele");
  execute({"play_media", {{"genre", "jazz"}}}, s);
  EXPECT_EQ(s.artist, "");  // a new request replaces what was playing
  EXPECT_EQ(s.genre, "jazz");
  execute({"send_message", {{"contact", "sarah"}, {"message", "late"}}}, s);
  EXPECT_EQ(s.message_to, "sarah");
  EXPECT_EQ(s.message, "late");
  EXPECT_THROW(execute({"open_sunroof", {}}, s), Error);
}

TEST(CarVehicle, CallsPrintAndCompare) {
  const VehicleCall a{"set_temperature", {{"celsius", 22.0}}};
  EXPECT_EQ(a.to_string(), "set_temperature(22.0)");
  EXPECT_TRUE(same_call(a, {"set_temperature", {{"celsius", 22}}}));
  EXPECT_FALSE(same_call(a, {"set_temperature", {{"celsius", 22.5}}}));
  EXPECT_FALSE(same_call(a, {"set_volume", {{"celsius", 22.0}}}));
  EXPECT_FALSE(same_call({"play_media", {{"artist", "adele"}}}, {"play_media", {{"artist", "adele"}, {"song", "x"}}}));
  EXPECT_EQ(VehicleCall({"set_climate", {{"on", true}}}).to_string(), "set_climate(on)");
}

TEST(CarVehicle, StateFromJson) {
  const VehicleState s = VehicleState::from_json(nlohmann::json::parse(R"({"temperature_c": 19, "volume": 3})"));
  EXPECT_DOUBLE_EQ(s.temperature_c, 19);
  EXPECT_EQ(s.volume, 3);
  EXPECT_EQ(s.media, "off");  // the rest: defaults
  EXPECT_THROW(VehicleState::from_json(nlohmann::json::parse(R"({"speed": 3})")), Error);
  EXPECT_THROW(VehicleState::from_json(nlohmann::json::parse(R"({"volume": "loud"})")), Error);
  const VehicleState back = VehicleState::from_json(nlohmann::json::parse(s.to_json().dump()));
  EXPECT_EQ(back.to_json(), s.to_json());
}

TEST(CarPrompt, TailCarriesTwoEarlierUtterancesAndTheStateToReferTo) {
  VehicleState s;
  s.call = "dave";
  const std::vector<std::string> earlier{"one", "call dave", "play some jazz"};
  const std::string t = prompt_tail(*command_spec("make_call"), "Call him back", earlier, s);
  EXPECT_EQ(t, "Earlier: call dave\nEarlier: play some jazz\nLast call: dave\nDriver: call him back\nJSON:");
  // The temperature is code's business: never in the prompt.
  s.temperature_c = 25;
  EXPECT_EQ(prompt_tail(*command_spec("smart_home"), "warmer", {}, s), "Driver: warmer\nJSON:");
}

TEST(CarPrompt, RequestSchemaKeepsTheDriversWordsAndNumbers) {
  const auto spec = *command_spec("smart_home");
  const std::vector<std::string> earlier{"set the temperature to twenty one"};
  const auto schema = request_schema(spec, "two degrees down", earlier, {});
  EXPECT_EQ(schema["properties"]["action"]["enum"], ojson({"down"}));  // a change: no "set"
  EXPECT_EQ(schema["properties"]["by"]["enum"], ojson({2}));
  EXPECT_FALSE(schema["properties"].contains("unit"));  // none said
  EXPECT_EQ(forced_prefix(schema), "{\"action\": \"");
  auto g = Grammar::parse(json_schema_to_grammar(schema));
  GrammarState ok(g), bad(g);
  EXPECT_TRUE(ok.accept_bytes(R"({"action": "down", "by": 2})") && ok.is_complete());
  EXPECT_FALSE(bad.accept_bytes(R"({"action": "down", "by": 3})") && bad.is_complete());
  const auto nav = request_schema(*command_spec("directions"), "take me to the Gas Station, please", {}, {});
  const auto& names = nav["$defs"]["name"]["enum"];
  EXPECT_NE(std::find(names.begin(), names.end(), ojson("the gas station")), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), ojson("airport")), names.end());
  EXPECT_EQ(forced_prefix(nav), "{\"destination\": \"");
  const auto music = request_schema(*command_spec("play_music"), "play some jazz music", {}, {});
  EXPECT_EQ(forced_prefix(music), "");
  EXPECT_EQ(music["properties"]["genre"]["enum"], ojson({"jazz"}));  // a known style, as said
  EXPECT_FALSE(music["properties"].contains("station"));  // no radio cue
  EXPECT_FALSE(request_schema(*command_spec("play_music"), "play thriller", {}, {})["properties"].contains("genre"));
  EXPECT_EQ(spoken_numbers("drop it twenty two degrees, then three"), "drop it 22 degrees, then 3");
}

TEST(CarSlots, TheSetsAreWellFormedAndDisjointFromThePrompts) {
  std::vector<SlotCase> all;
  std::set<std::string> seen;
  for (const char* f : {"car/slots-dev.jsonl", "car/slots-heldout.jsonl"}) {
    const auto cases = read_slot_cases(test::fixture_path(f));
    EXPECT_GE(cases.size(), 75u) << f;
    all.insert(all.end(), cases.begin(), cases.end());
  }
  EXPECT_GE(all.size(), 150u);
  size_t follow_ups = 0;
  for (const auto& c : all) {
    std::string key = c.text;
    for (const auto& e : c.earlier) key += " | " + e;
    EXPECT_TRUE(seen.insert(key).second) << "twice: " << key;
    follow_ups += !c.earlier.empty();
    for (const auto& spec : command_specs())
      EXPECT_EQ(spec.prompt.find("Driver: " + c.text + "\n"), std::string::npos) << "in the prompt: " << c.text;
    if (!c.call) continue;
    EXPECT_NE(command_spec(c.intent), nullptr) << c.text;
    VehicleState s = c.state;
    EXPECT_NO_THROW(execute(*c.call, s)) << c.text;
  }
  EXPECT_GE(follow_ups, 30u);
  EXPECT_THROW(read_slot_cases(test::fixture_path("car/none.jsonl")), Error);
}

// SmolLM2 fills the arguments of a short drive, intents given; the state after each command.
TEST(CarAssistantModel, ScriptedConversationWithFollowUps) {
  const std::string path = test::require_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) return;
  auto model = Model::load(path);
  ArgumentFiller filler(model, 2);
  CarAssistant car(nullptr, filler);
  Turn t = car.handle_as("give me directions to 221 baker street", "directions");
  EXPECT_EQ(car.state().destination, "221 baker street") << t.filled;
  t = car.handle_as("set the temperature to 22 degrees", "smart_home");
  EXPECT_DOUBLE_EQ(car.state().temperature_c, 22.0) << t.filled;
  EXPECT_TRUE(car.state().climate_on);
  t = car.handle_as("make it warmer", "smart_home");  // relative: against the state
  EXPECT_DOUBLE_EQ(car.state().temperature_c, 23.0) << t.filled;
  t = car.handle_as("put on taylor swift", "play_music");
  EXPECT_EQ(car.state().artist, "taylor swift") << t.filled;
  EXPECT_EQ(car.state().media, "playing");
  t = car.handle_as("text sarah that i'm running late", "text");
  EXPECT_EQ(car.state().message_to, "sarah") << t.filled;
  EXPECT_EQ(car.state().message, "i'm running late") << t.filled;
  t = car.handle_as("call her", "make_call");  // "her": from the context
  EXPECT_EQ(car.state().call, "sarah") << t.filled;
  const VehicleState before = car.state();
  t = car.handle_as("who wrote the odyssey", "oos");
  EXPECT_TRUE(t.fallback);
  EXPECT_FALSE(t.call);
  EXPECT_EQ(t.say, kFallback);
  EXPECT_EQ(car.state().to_json(), before.to_json());
  ASSERT_EQ(car.context().size(), 2u);
  EXPECT_EQ(car.context().back(), "who wrote the odyssey");
}

}  // namespace
}  // namespace edgelm::car
