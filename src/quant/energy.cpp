#include "edgelm/energy.hpp"

#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace edgelm {
namespace {

namespace fs = std::filesystem;

// The first line of a small sysfs file, or "" when it cannot be read.
std::string read_line(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return "";
  std::ifstream f(p);
  std::string line;
  if (!f || !std::getline(f, line)) return "";
  return line;
}

// A whole decimal number, or false.
bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<RaplZone> find_rapl_zones(const std::string& root) {
  std::vector<RaplZone> zones;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    // Packages are intel-rapl:N (AMD's driver uses the same names); intel-rapl:N:M are parts.
    if (name.rfind("intel-rapl:", 0) != 0 || name.find(':', 11) != std::string::npos) continue;
    uint64_t now = 0, range = 0;
    if (!parse_u64(read_line(entry.path() / "energy_uj"), now)) continue;
    if (!parse_u64(read_line(entry.path() / "max_energy_range_uj"), range) || range == 0) continue;
    std::string label = read_line(entry.path() / "name");
    zones.push_back({entry.path().string(), label.empty() ? name : label, range});
  }
  std::sort(zones.begin(), zones.end(), [](const RaplZone& a, const RaplZone& b) { return a.path < b.path; });
  return zones;
}

PerfEnergyEvent find_perf_energy_event(const std::string& power_root) {
  PerfEnergyEvent e;
  const fs::path root(power_root);
  uint64_t type = 0;
  if (!parse_u64(read_line(root / "type"), type)) return e;
  // "event=0x02" (perf's event syntax; other terms would need the PMU's format/ files)
  const std::string desc = read_line(root / "events" / "energy-pkg");
  if (desc.rfind("event=", 0) != 0) return e;
  char* end = nullptr;
  const unsigned long long config = std::strtoull(desc.c_str() + 6, &end, 0);
  if (end == desc.c_str() + 6 || *end != '\0') return e;
  const std::string scale = read_line(root / "events" / "energy-pkg.scale");
  const double j = std::strtod(scale.c_str(), &end);
  if (scale.empty() || *end != '\0' || !(j > 0)) return e;
  e.type = static_cast<int>(type);
  e.config = config;
  e.joules_per_count = j;
  return e;
}

EnergyMeter::EnergyMeter(EnergyOptions o) : opts_(std::move(o)) {
  if (opts_.use_rapl) {
    zones_ = find_rapl_zones(opts_.powercap_root);
    if (!zones_.empty()) {
      source_ = EnergySource::kRapl;
      description_ = "rapl (";
      for (size_t i = 0; i < zones_.size(); ++i) description_ += (i ? ", " : "") + zones_[i].name;
      description_ += ")";
      return;
    }
  }
  if (opts_.use_perf) {
    const PerfEnergyEvent ev = find_perf_energy_event(opts_.perf_power_root);
    if (ev.type >= 0) {
      perf_event_attr attr{};
      attr.type = static_cast<uint32_t>(ev.type);
      attr.size = sizeof attr;
      attr.config = ev.config;
      const long fd = syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0);  // system-wide, on CPU 0's package
      if (fd >= 0) {
        perf_fd_ = static_cast<int>(fd);
        perf_scale_ = ev.joules_per_count;
        source_ = EnergySource::kPerf;
        description_ = "perf power/energy-pkg/";
        return;
      }
    }
  }
  std::ostringstream d;
  d << "estimate: CPU-seconds x " << opts_.watts_per_core
    << " W per busy core (no RAPL or perf energy counter is readable here)";
  description_ = d.str();
}

EnergyMeter::~EnergyMeter() {
  if (perf_fd_ >= 0) close(perf_fd_);
}

EnergyMeter::Reading EnergyMeter::read() const {
  Reading r;
  if (source_ == EnergySource::kRapl) {
    for (const RaplZone& z : zones_) {
      uint64_t v = 0;
      parse_u64(read_line(fs::path(z.path) / "energy_uj"), v);
      r.counters.push_back(v);
    }
  } else if (source_ == EnergySource::kPerf) {
    uint64_t v = 0;
    if (::read(perf_fd_, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) v = 0;
    r.counters.push_back(v);
  }
  r.cpu_seconds = cpu_seconds();
  r.wall_seconds = wall_seconds();
  return r;
}

double EnergyMeter::joules(const Reading& a, const Reading& b, double idle_watts) const {
  if (source_ == EnergySource::kEstimate) return (b.cpu_seconds - a.cpu_seconds) * opts_.watts_per_core;
  double j = 0;
  for (size_t i = 0; i < a.counters.size() && i < b.counters.size(); ++i) {
    if (source_ == EnergySource::kRapl) {
      // A counter that passed max_energy_range_uj started again from 0 (at most once between
      // two readings a benchmark takes: the range is minutes to hours of full load).
      const uint64_t range = zones_[i].max_range_uj;
      const uint64_t d = b.counters[i] >= a.counters[i] ? b.counters[i] - a.counters[i]
                                                        : range - a.counters[i] + b.counters[i];
      j += static_cast<double>(d) * 1e-6;
    } else {
      j += static_cast<double>(b.counters[i] - a.counters[i]) * perf_scale_;
    }
  }
  return std::max(0.0, j - idle_watts * (b.wall_seconds - a.wall_seconds));
}

double EnergyMeter::idle_watts(double seconds) const {
  if (!measured() || seconds <= 0) return 0;
  const Reading a = read();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const Reading b = read();
  const double wall = b.wall_seconds - a.wall_seconds;
  return wall > 0 ? joules(a, b, 0) / wall : 0;
}

}  // namespace edgelm
