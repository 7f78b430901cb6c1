// edgelm bench --grammar-schema: the cost of grammar-constrained decoding per generated token.
#pragma once
#include <string>
#include <vector>

namespace edgelm::cli {

struct GrammarBenchArgs {
  std::string model;
  std::vector<std::string> schema_files;
  int threads = 2;
  int n_gen = 128;
  int reps = 1;
  std::string request = "Give one example that fits.";
};

// Prints a Markdown table: per schema and decoding (greedy, sampled), the decode step and the
// grammar's share of it.
void bench_grammar(const GrammarBenchArgs& a);

}  // namespace edgelm::cli
