// Writes one of the synthetic family models of tests/support/family_models.hpp, for the oracle
// script (tests/oracle/gen_family_fixtures.py):
//
//   make_family_model list                       -> "name arch vocab_file" per line
//   make_family_model NAME VOCAB.gguf OUT.gguf   -> writes OUT.gguf, prints the weights hash
#include <cstdio>
#include <string>

#include "edgelm/error.hpp"
#include "support/family_models.hpp"

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::string(argv[1]) == "list") {
      for (const auto& s : edgelm::test::family_specs())
        std::printf("%s %s %s\n", s.name.c_str(), s.arch.c_str(), s.vocab_file.c_str());
      return 0;
    }
    if (argc != 4) {
      std::fprintf(stderr, "usage: make_family_model list | NAME VOCAB.gguf OUT.gguf\n");
      return 2;
    }
    const uint64_t h = edgelm::test::write_family_model(edgelm::test::family_spec(argv[1]), argv[2], argv[3]);
    std::printf("%016llx\n", static_cast<unsigned long long>(h));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
