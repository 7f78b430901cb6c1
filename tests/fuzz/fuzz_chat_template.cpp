// libFuzzer harness for the chat-template interpreter: input = template source, then (after a
// 0xFF byte) the messages as JSON. Parsing and rendering either succeed or throw
// ChatTemplateError; anything else (another exception, a sanitizer report, a hang past the step
// budget) is a finding. The budget is lowered so that each input runs in milliseconds.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "edgelm/chat_template.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelm::fuzz::Fields in(data, size);
  const std::string_view source = in.next();
  const std::string_view messages = in.next();
  // The fixed conversation and tools are parsed once: parsing them per input took 7 % of the
  // harness's time.
  static const nlohmann::ordered_json default_messages = nlohmann::ordered_json::parse(
      R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
      R"({"role":"assistant","content":"Hello!","tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":1}}}]},)"
      R"({"role":"tool","content":"42"},{"role":"user","content":[{"type":"text","text":"and?"}]}])");
  static const nlohmann::ordered_json tools = nlohmann::ordered_json::parse(
      R"([{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"integer"}}}}}])");
  edgelm::ChatTemplateInputs inputs;
  inputs.messages = nlohmann::ordered_json::parse(messages, nullptr, /*allow_exceptions=*/false);
  if (!inputs.messages.is_array()) inputs.messages = default_messages;
  inputs.add_generation_prompt = size % 2 == 0;
  inputs.bos_token = "<s>";
  inputs.eos_token = "</s>";
  inputs.tools = tools;
  std::tm now{};
  now.tm_year = 126;
  now.tm_mon = 11;
  now.tm_mday = 7;
  inputs.now = now;
  const edgelm::ChatTemplateLimits limits{.max_steps = 100'000, .max_output_bytes = 1u << 20,
                                          .max_container_items = 1u << 14, .max_call_depth = 32};
  try {
    const auto tmpl = edgelm::ChatTemplate::parse(source);
    (void)tmpl.render(inputs, limits);
  } catch (const edgelm::ChatTemplateError&) {
  }
  return 0;
}
