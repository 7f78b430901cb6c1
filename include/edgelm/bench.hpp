// Prompt-processing and generation speed measured the way llama-bench measures them, so the
// numbers compare directly (what `edgelm bench` prints):
//   ppN  N random tokens evaluated as one prompt into an empty context
//   tgN  N tokens evaluated one at a time, starting from an empty context
// One warm-up run precedes the timed repetitions of each test.
//
//   auto model = edgelm::Model::load("smollm2");
//   edgelm::SpeedReport r = edgelm::measure_speed(model, {.n_prompt = {512}, .n_gen = {128}, .threads = {1, 2}});
//   for (const auto& t : r.tests) printf("%s %d threads: %.1f t/s\n", t.test.c_str(), t.threads,
//                                        edgelm::sample_stats(t.samples_ts).median);
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/energy.hpp"
#include "edgelm/model.hpp"
#include "edgelm/tensor.hpp"

namespace edgelm {

struct SpeedTestOptions {
  std::vector<int> n_prompt{512};  // one pp test per length (0: none)
  std::vector<int> n_gen{128};     // one tg test per length (0: none)
  std::vector<int> threads{1, 2};  // every test at each thread count
  int reps = 5;
  int n_batch = 512;
  DType kv_type = DType::F16;
  // Joules per token as well: the meter, and the idle draw to subtract (EnergyMeter::idle_watts).
  const EnergyMeter* meter = nullptr;
  double idle_watts = 0;
};

struct SpeedTest {
  std::string test;  // "pp512", "tg128"
  int threads = 0, n_prompt = 0, n_gen = 0;
  std::vector<double> samples_ts;   // tokens per second, one per repetition
  std::vector<double> samples_ms;   // wall time per repetition
  std::vector<double> samples_jpt;  // joules per token, one per repetition (with a meter)
};

struct SpeedReport {
  std::vector<SpeedTest> tests;  // per thread count: the pp tests, then the tg tests
  int n_ctx = 0;                 // the sessions' context: the longest test, at least 16
  int n_batch = 0;
  uint64_t kv_bytes = 0;
  double session_ms = 0;  // the slowest session set-up
};

// Throws edgelm::Error for a repetition count, thread count or test length out of range.
SpeedReport measure_speed(const std::shared_ptr<const Model>& model, const SpeedTestOptions& o);

// The weights' type as llama-bench names it: general.file_type (Q4_K_M, ...) when the file
// says, else the type holding most bytes of the 2-D tensors.
std::string weight_type_name(const Model& model);

struct SampleStats {
  double median = 0, mean = 0, stddev = 0, min = 0, max = 0;  // stddev: the sample's (n - 1)
};
SampleStats sample_stats(std::vector<double> v);

}  // namespace edgelm
