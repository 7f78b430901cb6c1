// libFuzzer harness for the GBNF parser and the JSON Schema -> grammar compiler. The first
// byte picks: GBNF text (parsed, then a state fed the rest of the input's bytes), or a JSON
// Schema (compiled to GBNF, which must then parse). Errors are edgelm::Error; a schema the
// compiler accepts that yields GBNF the parser refuses is a finding, as is any other exception
// or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  edgelm::fuzz::Fields in(data + 1, size - 1);
  const std::string_view first = in.next();
  const std::string_view second = in.next();
  if (data[0] & 1) {
    const auto schema = nlohmann::ordered_json::parse(first, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return 0;
    std::string gbnf;
    try {
      gbnf = edgelm::json_schema_to_grammar(schema);
    } catch (const edgelm::Error&) {
      return 0;
    }
    try {
      edgelm::GrammarState st(edgelm::Grammar::parse(gbnf));
      st.accept_bytes(second);
      (void)st.is_complete();
    } catch (const edgelm::Error& e) {
      edgelm::fuzz::fail("the grammar compiled from a JSON Schema does not parse",
                         std::string(e.what()) + "\nschema: " + schema.dump() + "\ngrammar:\n" + gbnf);
    }
    return 0;
  }
  try {
    edgelm::GrammarState st(edgelm::Grammar::parse(first));
    // Feed the rest byte by byte, branching a copy, as the sampler does.
    for (char c : second) {
      edgelm::GrammarState probe = st;
      if (!probe.accept_bytes(std::string_view(&c, 1))) continue;
      st = probe;
    }
    (void)st.is_complete();
  } catch (const edgelm::Error&) {
  }
  return 0;
}
