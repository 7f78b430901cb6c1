// Prometheus text exposition for /metrics: engine counters plus HTTP responses by route and code.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "server/engine.hpp"

namespace edgelm::server {

class HttpCounters {
 public:
  // Routes outside the known set are counted as "other", so clients cannot grow the label set.
  void count(const std::string& method, const std::string& path, int status);
  std::map<std::tuple<std::string, std::string, int>, uint64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_;
};

std::string render_metrics(const EngineStats& s, const HttpCounters& http, double uptime_seconds);

}  // namespace edgelm::server
