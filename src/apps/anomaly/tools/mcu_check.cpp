// anomaly_mcu_check: the host side of the emulated Cortex-M4F run (scripts/run-anomaly-mcu.sh).
//   anomaly_mcu_check encode SERIES.csv SERIES.bin    the series in the image's input format
//   anomaly_mcu_check compare SERIES.csv SCORES.bin   the image's scores against this build's
// `compare` runs the same detector (default configuration) over the CSV and requires every
// score to be bit-identical: the core uses no libm and is compiled without floating-point
// contraction on both sides, so IEEE single precision gives the same bits. It prints the
// first differing rows and exits 1 on any difference.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "edgelm/anomaly/csv_series.hpp"
#include "edgelm/anomaly/detector.hpp"
#include "edgelm/error.hpp"

namespace {

using namespace edgelm::anomaly;

void put(std::vector<unsigned char>& out, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  out.insert(out.end(), b, b + n);  // the host is little-endian, as is the Cortex-M4
}

int encode(const std::string& csv, const std::string& bin) {
  const Series s = read_series_csv_file(csv, true);
  std::vector<unsigned char> out;
  put(out, "EDAN", 4);
  const uint32_t n = static_cast<uint32_t>(s.value.size());
  put(out, &n, 4);
  for (size_t i = 0; i < s.value.size(); ++i) {
    put(out, &s.timestamp_ms[i], 8);
    put(out, &s.value[i], 4);
  }
  std::ofstream f(bin, std::ios::binary);
  if (!f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size())))
    throw edgelm::Error("cannot write '" + bin + "'");
  return 0;
}

int compare(const std::string& csv, const std::string& bin) {
  const Series s = read_series_csv_file(csv, true);
  std::ifstream f(bin, std::ios::binary);
  if (!f) throw edgelm::Error("cannot open '" + bin + "'", "run the image first (scripts/run-anomaly-mcu.sh)");
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (raw.size() != 4 * s.value.size())
    throw edgelm::Error("'" + bin + "' holds " + std::to_string(raw.size() / 4) + " scores, the series has " +
                        std::to_string(s.value.size()) + " samples");
  Detector det;
  size_t differ = 0, nonzero = 0;
  for (size_t i = 0; i < s.value.size(); ++i) {
    const float host = det.update(s.timestamp_ms[i], s.value[i]);
    float mcu;
    std::memcpy(&mcu, raw.data() + 4 * i, 4);
    nonzero += host != 0.0f;
    if (std::memcmp(&host, &mcu, 4) != 0 && ++differ <= 5)
      std::printf("row %zu: host %.9g, Cortex-M4F %.9g\n", i + 1, static_cast<double>(host), static_cast<double>(mcu));
  }
  if (differ) {
    std::printf("mismatch: %zu of %zu scores differ between the host and the Cortex-M4F build\n", differ, s.value.size());
    return 1;
  }
  std::printf("match: %zu scores bit-identical (%zu non-zero)\n", s.value.size(), nonzero);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && !std::strcmp(argv[1], "encode")) return encode(argv[2], argv[3]);
    if (argc == 4 && !std::strcmp(argv[1], "compare")) return compare(argv[2], argv[3]);
    std::fprintf(stderr, "usage: %s encode SERIES.csv SERIES.bin | compare SERIES.csv SCORES.bin\n", argv[0]);
    return 2;
  } catch (const edgelm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  }
}
