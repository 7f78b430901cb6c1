// Detector state files: a checked header and the Detector's bytes. The detector is a fixed-size
// object with no pointers (it never allocates), so its bytes are its whole state.
#include "edgelm/anomaly/detector_state.hpp"

#include <cstring>
#include <string>
#include <type_traits>

#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {

static_assert(std::is_trivially_copyable_v<Detector>,
              "a Detector is saved as its bytes: it must stay trivially copyable (no pointers, no owned memory)");

constexpr char kMagic[8] = {'E', 'L', 'M', 'D', 'E', 'T', 'S', 'T'};

struct StateHeader {
  char magic[8];
  uint32_t version;
  uint32_t detector_size;
  uint64_t payload_size;
  uint64_t layout;
  uint64_t checksum;
};
static_assert(sizeof(StateHeader) == kDetectorStateHeaderSize && std::is_trivially_copyable_v<StateHeader>);

// FNV-1a, 64 bit: a change of any single byte always changes the result (each step is a
// bijection of the running value).
uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Everything that decides how the detector's bytes are laid out, hashed: a build that differs
// in any of them reads another meaning into the same bytes.
uint64_t layout_fingerprint() {
  const uint32_t byte_order = 0x01020304u;
  const uint64_t facts[] = {
      sizeof(Detector), alignof(Detector), sizeof(DetectorConfig), sizeof(SymbolModelConfig),
      sizeof(RangeWatchConfig), sizeof(SpikeDetectorConfig), sizeof(RobustScaler), sizeof(BlockAverager),
      sizeof(SymbolModel), sizeof(LinearPredictor), sizeof(SpikeDetector), sizeof(RangeWatch),
      sizeof(AlarmShaper), sizeof(float), sizeof(int), sizeof(bool),
      static_cast<uint64_t>(kMaxChannels), static_cast<uint64_t>(kMaxScales),
      static_cast<uint64_t>(kMaxScaleSamples), static_cast<uint64_t>(kMaxHops),
      static_cast<uint64_t>(kMaxPhases), static_cast<uint64_t>(kMaxLevels), static_cast<uint64_t>(kLags),
      static_cast<uint64_t>(kDayBins), static_cast<uint64_t>(kContextLevels), byte_order,
  };
  return fnv1a64(reinterpret_cast<const uint8_t*>(facts), sizeof(facts));
}

constexpr const char* kStartAfresh = "run the detector from the start (remove the state file)";

[[noreturn]] void fail(std::string_view source, const std::string& what, const char* hint = kStartAfresh) {
  throw Error(std::string(source) + ": " + what, hint);
}

}  // namespace

std::vector<uint8_t> save_detector_state(const Detector& detector) {
  StateHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kDetectorStateVersion;
  h.detector_size = static_cast<uint32_t>(sizeof(Detector));
  h.payload_size = sizeof(Detector);
  h.layout = layout_fingerprint();
  h.checksum = fnv1a64(reinterpret_cast<const uint8_t*>(&detector), sizeof(Detector));
  std::vector<uint8_t> out(sizeof(StateHeader) + sizeof(Detector));
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), &detector, sizeof(Detector));
  return out;
}

Detector load_detector_state(std::span<const uint8_t> bytes, std::string_view source) {
  if (bytes.size() < sizeof(StateHeader))
    fail(source, std::to_string(bytes.size()) + " bytes, shorter than the " + std::to_string(sizeof(StateHeader)) +
                     "-byte header of a detector state (cut off?)");
  StateHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0)
    fail(source, "wrong magic: not an edgelm detector state",
         "pass a file written by `edgelm anomaly --state`, or a new path to start afresh");
  if (h.version != kDetectorStateVersion)
    fail(source, "detector state format version " + std::to_string(h.version) + "; this edgelm reads version " +
                     std::to_string(kDetectorStateVersion),
         "the state file was written by a different edgelm build; run the detector from the start");
  if (h.detector_size != sizeof(Detector) || h.layout != layout_fingerprint())
    fail(source,
         "written for another detector layout (its detector is " + std::to_string(h.detector_size) +
             " bytes, this build's " + std::to_string(sizeof(Detector)) + ")",
         "the state file was written by a different edgelm build or CPU architecture; run the detector from the start");
  const size_t payload = bytes.size() - sizeof(StateHeader);
  if (h.payload_size != sizeof(Detector) || payload != sizeof(Detector))
    fail(source, "truncated or over-long: " + std::to_string(payload) + " payload bytes, the header says " +
                     std::to_string(h.payload_size) + " and the detector needs " + std::to_string(sizeof(Detector)));
  const uint8_t* p = bytes.data() + sizeof(StateHeader);
  if (fnv1a64(p, payload) != h.checksum) fail(source, "checksum mismatch: the detector state is damaged");
  Detector detector;
  std::memcpy(static_cast<void*>(&detector), p, sizeof(Detector));
  if (const char* bad = validate(detector.config()))
    fail(source, std::string("invalid configuration (") + bad + ")");
  return detector;
}

}  // namespace edgelm::anomaly
