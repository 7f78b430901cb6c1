// EnergyMeter on fake powercap and perf trees: normal counters, a counter that wraps, unreadable
// and missing ones (the meter falls back and says so), idle subtraction, the estimate.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "edgelm/energy.hpp"
#include "support/scratch_dir.hpp"

namespace edgelm {
namespace {

namespace fs = std::filesystem;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

// A powercap tree with package zones (and a sub-zone that must not be counted twice).
fs::path powercap(const std::string& name) {
  const fs::path root = test::scratch_dir() / name;
  fs::remove_all(root);
  put(root / "intel-rapl:0" / "name", "package-0");
  put(root / "intel-rapl:0" / "energy_uj", "1000000");
  put(root / "intel-rapl:0" / "max_energy_range_uj", "262143328850");
  put(root / "intel-rapl:0:0" / "name", "core");
  put(root / "intel-rapl:0:0" / "energy_uj", "500000");
  put(root / "intel-rapl:0:0" / "max_energy_range_uj", "262143328850");
  put(root / "intel-rapl:1" / "name", "package-1");
  put(root / "intel-rapl:1" / "energy_uj", "2000000");
  put(root / "intel-rapl:1" / "max_energy_range_uj", "65532610987");
  return root;
}

EnergyOptions rapl_only(const fs::path& root) {
  EnergyOptions o;
  o.powercap_root = root.string();
  o.use_perf = false;
  return o;
}

TEST(Energy, RaplPackagesAreSummedAndSubZonesSkipped) {
  const fs::path root = powercap("normal");
  const auto zones = find_rapl_zones(root.string());
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(zones[0].name, "package-0");
  EXPECT_EQ(zones[1].max_range_uj, 65532610987u);
  EnergyMeter m(rapl_only(root));
  EXPECT_EQ(m.source(), EnergySource::kRapl);
  EXPECT_TRUE(m.measured());
  EXPECT_EQ(m.description(), "rapl (package-0, package-1)");
  const auto a = m.read();
  put(root / "intel-rapl:0" / "energy_uj", "3500000");    // +2.5 J
  put(root / "intel-rapl:0:0" / "energy_uj", "9500000");  // a part of package 0: not added again
  put(root / "intel-rapl:1" / "energy_uj", "2250000");    // +0.25 J
  const auto b = m.read();
  EXPECT_NEAR(m.joules(a, b), 2.75, 1e-9);
}

TEST(Energy, AWrappedCounterIsCountedThroughItsRange) {
  const fs::path root = powercap("wrap");
  put(root / "intel-rapl:1" / "energy_uj", "65532610900");  // 87 uJ before the end of its range
  EnergyMeter m(rapl_only(root));
  const auto a = m.read();
  put(root / "intel-rapl:1" / "energy_uj", "413");  // wrapped: 87 + 413 = 500 uJ
  const auto b = m.read();
  EXPECT_NEAR(m.joules(a, b), 500e-6, 1e-12);
}

TEST(Energy, IdleDrawIsSubtractedAndNeverGoesBelowZero) {
  const fs::path root = powercap("idle");
  EnergyMeter m(rapl_only(root));
  EnergyMeter::Reading a = m.read(), b = a;
  b.counters[0] += 10'000'000;  // 10 J over 2 s
  b.wall_seconds = a.wall_seconds + 2.0;
  EXPECT_NEAR(m.joules(a, b, 0.0), 10.0, 1e-9);
  EXPECT_NEAR(m.joules(a, b, 3.0), 4.0, 1e-9);   // 10 J - 3 W x 2 s
  EXPECT_EQ(m.joules(a, b, 6.0), 0.0);           // more idle than measured: 0, not negative
}

TEST(Energy, UnreadableOrMissingCountersFallBackToALabelledEstimate) {
  // Every zone broken in another way: text, a directory, no range, a zero range.
  const fs::path root = powercap("broken");
  put(root / "intel-rapl:0" / "energy_uj", "unavailable");
  fs::remove(root / "intel-rapl:1" / "energy_uj");
  fs::create_directories(root / "intel-rapl:1" / "energy_uj");
  put(root / "intel-rapl:2" / "energy_uj", "5");
  put(root / "intel-rapl:3" / "energy_uj", "5");
  put(root / "intel-rapl:3" / "max_energy_range_uj", "0");
  EXPECT_TRUE(find_rapl_zones(root.string()).empty());
  for (const fs::path& r : {root, test::scratch_dir() / "no-such-powercap"}) {
    EnergyOptions o = rapl_only(r);
    o.watts_per_core = 7.5;
    EnergyMeter m(o);
    EXPECT_EQ(m.source(), EnergySource::kEstimate);
    EXPECT_FALSE(m.measured());
    EXPECT_NE(m.description().find("estimate"), std::string::npos) << m.description();
    EXPECT_NE(m.description().find("7.5 W per busy core"), std::string::npos) << m.description();
    EnergyMeter::Reading a = m.read(), b = a;
    b.cpu_seconds += 2.0;
    b.wall_seconds += 100.0;
    EXPECT_NEAR(m.joules(a, b, 50.0), 15.0, 1e-9) << "the estimate counts busy CPU time, no idle";
    EXPECT_EQ(m.idle_watts(0.01), 0.0);
  }
}

TEST(Energy, PerfEnergyEventIsReadFromThePmuDescription) {
  const fs::path root = test::scratch_dir() / "power";
  fs::remove_all(root);
  put(root / "type", "23");
  put(root / "events" / "energy-pkg", "event=0x02");
  put(root / "events" / "energy-pkg.scale", "2.3283064365386962890625e-10");
  put(root / "events" / "energy-pkg.unit", "Joules");
  const PerfEnergyEvent e = find_perf_energy_event(root.string());
  EXPECT_EQ(e.type, 23);
  EXPECT_EQ(e.config, 2u);
  EXPECT_DOUBLE_EQ(e.joules_per_count, 2.3283064365386962890625e-10);
  for (const auto& [file, text] : {std::pair{"events/energy-pkg", "umask=0x1"}, std::pair{"events/energy-pkg", "event=zz"},
                                   std::pair{"events/energy-pkg.scale", "-1"}, std::pair{"type", "power"}}) {
    const fs::path bad = test::scratch_dir() / "power-bad";
    fs::remove_all(bad);
    fs::copy(root, bad, fs::copy_options::recursive);
    put(bad / file, text);
    EXPECT_EQ(find_perf_energy_event(bad.string()).type, -1) << file << " = " << text;
  }
  EXPECT_EQ(find_perf_energy_event((test::scratch_dir() / "no-such-pmu").string()).type, -1);
}

}  // namespace
}  // namespace edgelm
