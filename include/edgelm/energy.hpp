// Energy used by a stretch of work, from the best source the machine offers, never a number
// without its source:
//   1. powercap RAPL (Linux /sys/class/powercap/intel-rapl:N/energy_uj, package domains summed,
//      wrap-around through max_energy_range_uj) -- measured;
//   2. perf's power/energy-pkg/ event (perf_event_open, system-wide) -- measured;
//   3. an estimate: this process's CPU-seconds times a power per busy core the user can set
//      (most VMs expose neither counter).
//
//   edgelm::EnergyMeter meter;                  // picks the source
//   const double idle_w = meter.idle_watts(1.0); // measured sources: the machine's idle draw
//   auto a = meter.read();  ...work...  auto b = meter.read();
//   double joules = meter.joules(a, b, idle_w);  // idle draw over the interval subtracted
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgelm {

struct EnergyOptions {
  std::string powercap_root = "/sys/class/powercap";      // where RAPL zones are looked for
  std::string perf_power_root = "/sys/bus/event_source/devices/power";  // perf's power PMU
  bool use_rapl = true, use_perf = true;  // false: skip that source (tests, or a broken counter)
  double watts_per_core = 5.0;  // the estimate's power of one busy core
};

enum class EnergySource { kRapl, kPerf, kEstimate };

// One RAPL package domain as read from a powercap tree.
struct RaplZone {
  std::string path;       // .../intel-rapl:0
  std::string name;       // "package-0"
  uint64_t max_range_uj;  // the counter wraps to 0 after this
};
// The top-level (package) zones under `root` whose energy_uj and max_energy_range_uj read as
// numbers; sub-zones (intel-rapl:0:0, the cores, DRAM) are inside their package's count.
std::vector<RaplZone> find_rapl_zones(const std::string& root);

// perf's power/energy-pkg/ event as its PMU describes it (type, config, joules per count), or
// type -1 when the PMU or the event is missing or malformed.
struct PerfEnergyEvent {
  int type = -1;
  uint64_t config = 0;
  double joules_per_count = 0;
};
PerfEnergyEvent find_perf_energy_event(const std::string& power_root);

class EnergyMeter {
 public:
  explicit EnergyMeter(EnergyOptions o = {});
  ~EnergyMeter();
  EnergyMeter(const EnergyMeter&) = delete;
  EnergyMeter& operator=(const EnergyMeter&) = delete;

  EnergySource source() const { return source_; }
  bool measured() const { return source_ != EnergySource::kEstimate; }
  // "rapl (package-0)", "perf power/energy-pkg/", or "estimate: CPU-seconds x 5.0 W per busy
  // core (no RAPL or perf energy counter is readable here)".
  const std::string& description() const { return description_; }

  struct Reading {
    std::vector<uint64_t> counters;  // RAPL: one per zone (uJ); perf: one (counts)
    double cpu_seconds = 0;          // this process's user + system time
    double wall_seconds = 0;         // a monotonic clock
  };
  Reading read() const;
  // Joules between two readings: counter differences (a RAPL counter that wrapped is counted
  // through max_energy_range_uj) minus idle_watts x the wall time between them, at least 0;
  // for the estimate, CPU-seconds x watts_per_core (the idle draw is not part of it).
  double joules(const Reading& a, const Reading& b, double idle_watts = 0) const;
  // The machine's draw while this process sleeps for `seconds` (0 for the estimate).
  double idle_watts(double seconds) const;

 private:
  EnergyOptions opts_;
  EnergySource source_ = EnergySource::kEstimate;
  std::string description_;
  std::vector<RaplZone> zones_;
  int perf_fd_ = -1;
  double perf_scale_ = 0;
};

}  // namespace edgelm
