// The in-car assistant: the intent classifier picks the command, the language model fills its
// arguments as JSON under the command's JSON Schema (greedy, grammar-constrained), and
// deterministic code checks them, resolves relative requests against the vehicle state
// ("warmer", "two degrees down", "louder") and executes exactly that call on a simulated vehicle.
//
//   auto model = edgelm::Model::load("smollm2");
//   edgelm::intent::Classifier cls(model, "head.gguf");
//   edgelm::car::ArgumentFiller filler(model);
//   edgelm::car::CarAssistant car(&cls, filler);
//   auto turn = car.handle("set the temperature to 72");  // set_temperature(22.0)
//   std::cout << turn.call->to_string() << "  " << car.state().temperature_c << "\n";
//
// Who does what (docs/car.md): the model copies what the driver said into the schema's fields
// (the place, the contact, the artist, the number and unit as spoken, the direction of a change);
// code owns every rule: units and their inference, default steps, arithmetic against the
// current state, ranges, text normalisation, and what a call does to the vehicle.
#pragma once
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"

namespace edgelm::car {

struct VehicleState {
  std::string destination;   // "" : no route
  bool climate_on = false;
  double temperature_c = 21;  // cabin set point
  std::string media = "off";  // "off", "playing", "paused"
  std::string artist, song, genre, station;  // what is playing ("" : not given)
  int volume = 5;             // 0..10
  std::string call;           // who is (or was last) being called
  std::string message_to;     // last text message recipient
  std::string message;        // last text message
  bool engine_on = false;
  double fuel_pct = 62;
  double tire_psi[4] = {35, 35, 34, 35};

  // The fields above as JSON (the names as written here); from_json starts from the defaults
  // and sets the fields present, throwing edgelm::Error for an unknown name or a wrong type.
  nlohmann::ordered_json to_json() const;
  static VehicleState from_json(const nlohmann::json& j);
};

// One call on the vehicle, e.g. set_temperature {"celsius": 22.0}.
struct VehicleCall {
  std::string name;
  nlohmann::ordered_json args = nlohmann::ordered_json::object();
  std::string to_string() const;  // set_temperature(22.0), play_media(artist="adele")
};
// Same function and arguments (numbers within 0.01, strings exactly).
bool same_call(const VehicleCall& a, const VehicleCall& b);

// Carries the call out on `s` and returns what the assistant says. Throws edgelm::Error for a
// function the vehicle does not have (resolve() only makes calls that exist).
std::string execute(const VehicleCall& call, VehicleState& s);

// Ranges the vehicle accepts and the steps of a relative request without a number.
inline constexpr double kMinCelsius = 16, kMaxCelsius = 30, kCelsiusStep = 1;
inline constexpr int kVolumeStep = 2;
// A temperature spoken without a unit is Fahrenheit from this value up ("72"), else Celsius.
inline constexpr double kFahrenheitFrom = 45;

// One intent's command: the JSON Schema of its arguments and the few-shot prompt that fills them.
struct CommandSpec {
  std::string intent;          // the classifier's label, e.g. "directions"
  std::string function;        // what the arguments are for, named in the prompt
  nlohmann::ordered_json schema;
  std::string prompt;          // instructions and examples, ending with a blank line
};
// The commands whose arguments the model fills; nullptr for an intent without arguments.
std::span<const CommandSpec> command_specs();
const CommandSpec* command_spec(std::string_view intent);

// What follows a spec's prompt for one request: the earlier utterances (oldest first, at most
// the last two), the part of the vehicle state the command may refer back to, and the request.
std::string prompt_tail(const CommandSpec& spec, std::string_view utterance, std::span<const std::string> earlier,
                        const VehicleState& s);

// The schema for one request: each name field may only be a run of words the driver said (in
// the request, the earlier utterances or the state the prompt shows), the message only words of
// the request, and each number only a number in the request: the model picks, it cannot invent.
nlohmann::ordered_json request_schema(const CommandSpec& spec, std::string_view utterance,
                                      std::span<const std::string> earlier, const VehicleState& s);
// The start of every answer the schema allows, written for the model ({"destination": "): the
// first property when it is required.
std::string forced_prefix(const nlohmann::ordered_json& schema);
// Number words as digits ("two degrees down" -> "2 degrees down", "twenty one" -> "21").
std::string spoken_numbers(std::string_view text);

// The model's JSON for `intent` as a vehicle call, checked and resolved against `s`; or why not.
struct Resolution {
  std::optional<VehicleCall> call;
  std::string problem;  // set when call is empty: what was wrong, for the log
  std::string ask;      // set when the driver should be asked something specific
};
Resolution resolve(std::string_view intent, std::string_view filled_json, const VehicleState& s);

// Lowercase, outer blanks and punctuation off, a leading "the"/"my"/"a"/"an" dropped: how
// names and places are compared and stored.
std::string normalize_name(std::string_view s);

// Fills arguments with the language model: one sequence per command keeps its prompt in the
// KV cache, so a request costs only its own tokens and the answer's.
class ArgumentFiller {
 public:
  explicit ArgumentFiller(std::shared_ptr<const Model> model, int n_threads = 1, int max_tokens = 48);
  ~ArgumentFiller();
  ArgumentFiller(const ArgumentFiller&) = delete;
  ArgumentFiller& operator=(const ArgumentFiller&) = delete;

  struct Result {
    std::string json;     // what the model wrote (valid under the schema when complete)
    bool complete = false;  // false: max_tokens ended it first
    int n_prompt = 0;     // tokens evaluated for this request (the cached prompt excluded)
    int n_generated = 0;
  };
  Result fill(const CommandSpec& spec, std::string_view utterance, std::span<const std::string> earlier,
              const VehicleState& s);
  // Evaluates every command's prompt now rather than at its first use.
  void prepare();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One handled utterance.
struct Turn {
  std::string intent;  // the classifier's answer ("oos" or below the threshold: fallback)
  float confidence = 0;
  bool from_context = false;    // classified with the earlier utterances joined in front
  std::string filled;           // the model's JSON ("" : the intent takes no arguments)
  std::optional<VehicleCall> call;  // what the vehicle executed
  std::string say;
  bool fallback = false;        // out of scope, or arguments that could not be used
  std::vector<std::string> changes;  // "  state climate.temperature: 21.0 C -> 22.0 C"
  double classify_ms = 0, fill_ms = 0;
  int fill_prompt_tokens = 0, fill_generated_tokens = 0;  // the filler's work for this request
  std::vector<std::string> lines() const;  // what the demo prints
};

class CarAssistant {
 public:
  // classifier may be null: then only handle_as works (evaluating the filler alone).
  CarAssistant(intent::Classifier* classifier, ArgumentFiller& filler, float min_confidence = 0.5f);
  Turn handle(std::string_view utterance);
  // The same with the intent given (the argument filler alone, for evaluation).
  Turn handle_as(std::string_view utterance, const std::string& intent);
  const VehicleState& state() const { return state_; }
  // The last 2 utterances handled, oldest first: with the next one, the 3 it is read with.
  const std::vector<std::string>& context() const { return context_; }
  // Starts from a given state and earlier utterances (evaluation sets, scripted tests).
  void reset(VehicleState s, std::vector<std::string> earlier = {});

 private:
  Turn act(Turn t, std::string_view text);
  intent::Classifier* cls_;
  ArgumentFiller& filler_;
  float min_confidence_;
  VehicleState state_;
  std::vector<std::string> context_;
  std::string last_intent_;
};

// --- evaluation: tests/fixtures/car/slots-*.jsonl ----------------------------------------------

// One driver utterance with what should happen: {"text", "context" (earlier utterances, oldest
// first), "state" (VehicleState::from_json), "intent", "call" ({"name", "args"} or null: the
// polite fallback)}.
struct SlotCase {
  std::string text;
  std::vector<std::string> earlier;
  VehicleState state;
  std::string intent;
  std::optional<VehicleCall> call;
};
// Throws edgelm::Error naming the file and line of a malformed case.
std::vector<SlotCase> read_slot_cases(const std::string& path);

struct SlotReport {
  size_t n = 0, n_commands = 0, n_fallback = 0;  // cases; those expecting a call; the rest
  size_t intent_ok = 0, exact = 0, fallback_ok = 0;
  std::vector<double> ms, cpu_ms;  // per command case: intent + filling, wall and process CPU
  std::vector<nlohmann::ordered_json> rows;  // per case: text, expected, got, arguments, ok, ms
};
// Runs every case from its own state and context. gold_intent: the expected intent is given
// (the argument filling alone); else the classifier picks it.
SlotReport evaluate_slots(CarAssistant& car, std::span<const SlotCase> cases, bool gold_intent);

inline constexpr const char* kFallback =
    "Sorry, I can't help with that from the car. I can navigate, set the temperature, play music, "
    "or call and text people.";

}  // namespace edgelm::car
