// edgelm bench's speculative mode: plain and speculative decoding of the same prompts,
// alternated, in one run; tokens per second, acceptance and whether the texts agree.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/common.hpp"

namespace edgelm::cli {

struct SpeculativeBenchArgs {
  std::string model;
  DraftOptions draft;
  std::string prompts_file;  // JSON lines: {"prompt": "..."} or a JSON string
  std::vector<int> threads;
  int n_gen = 128;
  int reps = 3;
  float temp = 0;            // 0: greedy
  uint64_t seed = 0xED6E1A;
  bool json = false;
};

void bench_speculative(const SpeculativeBenchArgs& a);

}  // namespace edgelm::cli
