// libFuzzer harness for the server's request parsing: a body as POST /v1/chat/completions and
// POST /v1/completions read it (fields, messages, tools, response_format and the grammar
// compiled from it), and as POST /lora-adapters reads it. Each either gives a request or throws
// ApiError (answered 4xx); any other exception or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "edgelm/error.hpp"
#include "server/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (const bool chat : {true, false}) {
    try {
      (void)edgelm::server::parse_completion_request(body, chat);
    } catch (const edgelm::server::ApiError&) {
    } catch (const edgelm::Error&) {  // the server answers these 400 too (exception handler)
    }
  }
  try {
    (void)edgelm::server::parse_lora_scales(edgelm::server::parse_body(body));
  } catch (const edgelm::server::ApiError&) {
  }
  return 0;
}
