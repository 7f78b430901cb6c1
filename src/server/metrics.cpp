#include "server/metrics.hpp"

#include <fmt/format.h>

#include <array>
#include <string_view>

namespace edgelm::server {

void HttpCounters::count(const std::string& method, const std::string& path, int status) {
  static constexpr std::array<std::string_view, 8> known = {
      "/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions",
      "/index.html", "/favicon.ico"};
  std::string route = "other";
  for (auto k : known)
    if (path == k) route = std::string(k);
  if (route == "other" && path.rfind("/v1/models/", 0) == 0) route = "/v1/models/{id}";
  const std::string m = method == "GET" || method == "POST" || method == "HEAD" ? method : "other";
  std::lock_guard lk(mu_);
  ++counts_[{m, route, status}];
}

std::map<std::tuple<std::string, std::string, int>, uint64_t> HttpCounters::snapshot() const {
  std::lock_guard lk(mu_);
  return counts_;
}

std::string render_metrics(const EngineStats& s, const HttpCounters& http, double uptime) {
  std::string o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  metric("edgelm_requests_total", "counter", "Generation requests by outcome.");
  o += fmt::format("edgelm_requests_total{{outcome=\"completed\"}} {}\n", s.completed);
  o += fmt::format("edgelm_requests_total{{outcome=\"cancelled\"}} {}\n", s.cancelled);
  o += fmt::format("edgelm_requests_total{{outcome=\"failed\"}} {}\n", s.failed);
  o += fmt::format("edgelm_requests_total{{outcome=\"rejected\"}} {}\n", s.rejected);
  metric("edgelm_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
  o += fmt::format("edgelm_prompt_tokens_total {}\n", s.prompt_tokens);
  metric("edgelm_prompt_tokens_cached_total", "counter", "Prompt tokens found in a slot's KV cache (not recomputed).");
  o += fmt::format("edgelm_prompt_tokens_cached_total {}\n", s.cached_prompt_tokens);
  metric("edgelm_generated_tokens_total", "counter", "Tokens generated.");
  o += fmt::format("edgelm_generated_tokens_total {}\n", s.generated_tokens);
  metric("edgelm_tokens_per_second", "gauge", "Tokens generated over the last 10 seconds, per second.");
  o += fmt::format("edgelm_tokens_per_second {:.3f}\n", s.recent_tokens_per_second);
  metric("edgelm_queue_depth", "gauge", "Requests waiting for a slot.");
  o += fmt::format("edgelm_queue_depth {}\n", s.queue_depth);
  metric("edgelm_slots", "gauge", "Slots (parallel sequences).");
  o += fmt::format("edgelm_slots {}\n", s.slots);
  metric("edgelm_slots_busy", "gauge", "Slots working on a request.");
  o += fmt::format("edgelm_slots_busy {}\n", s.slots_busy);
  metric("edgelm_decode_steps_total", "counter", "Batched decode forward passes.");
  o += fmt::format("edgelm_decode_steps_total {}\n", s.decode_steps);
  metric("edgelm_decode_rows_total", "counter", "Sequences decoded over all decode steps (rows / steps = mean batch).");
  o += fmt::format("edgelm_decode_rows_total {}\n", s.decode_rows);
  metric("edgelm_draft_tokens_total", "counter", "Speculative decoding: drafted tokens, by whether the model kept them.");
  o += fmt::format("edgelm_draft_tokens_total{{outcome=\"accepted\"}} {}\n", s.accepted_draft_tokens);
  o += fmt::format("edgelm_draft_tokens_total{{outcome=\"rejected\"}} {}\n", s.drafted_tokens - s.accepted_draft_tokens);
  metric("edgelm_prefill_seconds_total", "counter", "Time spent reading prompts.");
  o += fmt::format("edgelm_prefill_seconds_total {:.6f}\n", s.prefill_seconds);
  metric("edgelm_decode_seconds_total", "counter", "Time spent in decode steps.");
  o += fmt::format("edgelm_decode_seconds_total {:.6f}\n", s.decode_seconds);
  metric("edgelm_http_requests_total", "counter", "HTTP responses by method, route and status code.");
  for (const auto& [key, n] : http.snapshot()) {
    const auto& [method, route, code] = key;
    o += fmt::format("edgelm_http_requests_total{{method=\"{}\",route=\"{}\",code=\"{}\"}} {}\n", method, route, code, n);
  }
  metric("edgelm_uptime_seconds", "gauge", "Seconds since the server started.");
  o += fmt::format("edgelm_uptime_seconds {:.3f}\n", uptime);
  return o;
}

}  // namespace edgelm::server
