// edgelm's speed test (edgelm/bench.hpp): llama-bench's pp and tg tests on a Session.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <span>
#include <utility>

#include "edgelm/bench.hpp"
#include "edgelm/error.hpp"
#include "edgelm/gguf.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/session.hpp"

namespace edgelm {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// One test (pp or tg) at the session's thread count: warm-up, then `reps` timed runs.
SpeedTest run_test(Session& s, const std::vector<int32_t>& tokens, int n_prompt, int n_gen, const SpeedTestOptions& o) {
  SpeedTest m;
  m.threads = s.n_threads();
  m.n_prompt = n_prompt;
  m.n_gen = n_gen;
  m.test = n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
  auto once = [&] {
    s.truncate(0, 0);
    const auto t0 = clock_type::now();
    if (n_prompt > 0) {
      s.eval(std::span<const int32_t>(tokens.data(), static_cast<size_t>(n_prompt)));
    } else {
      for (int i = 0; i < n_gen; ++i) s.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1));
    }
    return seconds_since(t0);
  };
  once();  // warm-up: page in the weights, settle the threads
  for (int r = 0; r < o.reps; ++r) {
    const EnergyMeter::Reading e0 = o.meter ? o.meter->read() : EnergyMeter::Reading{};
    const double sec = once();
    const int n = n_prompt > 0 ? n_prompt : n_gen;
    if (o.meter) m.samples_jpt.push_back(o.meter->joules(e0, o.meter->read(), o.idle_watts) / n);
    m.samples_ms.push_back(sec * 1e3);
    m.samples_ts.push_back(n / sec);
  }
  return m;
}

}  // namespace

SampleStats sample_stats(std::vector<double> v) {
  SampleStats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(n);
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = n > 1 ? std::sqrt(s.stddev / static_cast<double>(n - 1)) : 0.0;
  s.min = v.front();
  s.max = v.back();
  return s;
}

std::string weight_type_name(const Model& model) {
  if (const auto ft = quant::file_type_from_llama_id(model.file().get_u32_or("general.file_type", ~0u)))
    return std::string(quant::file_type_name(*ft));
  std::vector<std::pair<std::string, uint64_t>> bytes;
  for (const auto& t : model.file().tensors()) {
    if (t.n_dims < 2) continue;
    const std::string name(dtype_name(t.type));
    auto it = std::find_if(bytes.begin(), bytes.end(), [&](auto& e) { return e.first == name; });
    if (it == bytes.end()) bytes.emplace_back(name, t.nbytes);
    else it->second += t.nbytes;
  }
  if (bytes.empty()) return "?";
  return std::max_element(bytes.begin(), bytes.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
}

SpeedReport measure_speed(const std::shared_ptr<const Model>& model, const SpeedTestOptions& o) {
  if (o.reps < 1) throw Error("the repetitions must be at least 1, not " + std::to_string(o.reps));
  if (o.n_batch < 1) throw Error("the batch size must be at least 1, not " + std::to_string(o.n_batch));
  for (int t : o.threads)
    if (t < 1) throw Error("thread counts must be at least 1, not " + std::to_string(t));
  int max_p = 0, max_n = 0;
  for (int p : o.n_prompt) {
    if (p < 0) throw Error("prompt lengths must be 0 or more, not " + std::to_string(p));
    max_p = std::max(max_p, p);
  }
  for (int n : o.n_gen) {
    if (n < 0) throw Error("generation lengths must be 0 or more, not " + std::to_string(n));
    max_n = std::max(max_n, n);
  }
  SpeedReport r;
  r.n_ctx = std::max(16, std::max(max_p, max_n));
  r.n_batch = std::min(o.n_batch, r.n_ctx);
  // Random tokens, as llama-bench uses: the speed does not depend on which tokens they are.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, model->config().n_vocab - 1);
  std::vector<int32_t> tokens(static_cast<size_t>(r.n_ctx));
  for (auto& t : tokens) t = pick(rng);
  for (int th : o.threads) {
    SessionOptions so;
    so.n_ctx = r.n_ctx;
    so.n_threads = th;
    so.n_batch = r.n_batch;
    so.kv_type = o.kv_type;
    const auto t_sess = clock_type::now();
    Session s(model, so);
    r.session_ms = std::max(r.session_ms, seconds_since(t_sess) * 1e3);
    r.kv_bytes = s.kv_bytes();
    for (int p : o.n_prompt)
      if (p > 0) r.tests.push_back(run_test(s, tokens, p, 0, o));
    for (int n : o.n_gen)
      if (n > 0) r.tests.push_back(run_test(s, tokens, 0, n, o));
  }
  return r;
}

}  // namespace edgelm
