// Saving a Detector's whole state (its configuration and everything it has learned) and
// restoring it, so that a series can be scored in pieces: a detector restored from the state
// saved after sample N gives, for every later sample, the same score bits as one that never
// stopped. Host side only (the Cortex-M4F image does not compile it).
//
//   std::vector<uint8_t> bytes = edgelm::anomaly::save_detector_state(det);   // write somewhere
//   ...
//   edgelm::anomaly::Detector det = edgelm::anomaly::load_detector_state(bytes, "pump.state");
//   float score = det.update(t_ms, v);                                       // carries on
//
// Format (all integers in the machine's byte order):
//   offset  0  8 bytes   magic "ELMDETST"
//           8  u32       format version (kDetectorStateVersion)
//          12  u32       sizeof(Detector) of the build that wrote it
//          16  u64       payload size in bytes
//          24  u64       layout fingerprint: the sizes of the detector and its stages and the
//                        layout constants (kMaxChannels, kMaxScales, ...), byte order included
//          32  u64       FNV-1a 64 checksum of the payload
//          40            payload: the Detector object's bytes
//
// Guarantee: a state restores in the same edgelm build on the same CPU architecture; any other
// build whose detector layout differs, or another byte order, is refused with an error rather
// than misread. Every header field, the payload size, the checksum and the stored
// configuration (validate()) are checked before a Detector is returned. The checksum catches
// accidental damage (a cut-off or corrupted file); it is not a security boundary: a state file
// is trusted like the program that wrote it, and one crafted with a matching checksum can set
// the detector's internal counters to anything.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "edgelm/anomaly/detector.hpp"

namespace edgelm::anomaly {

inline constexpr uint32_t kDetectorStateVersion = 1;
inline constexpr size_t kDetectorStateHeaderSize = 40;

// The header followed by the detector's bytes (kDetectorStateHeaderSize + sizeof(Detector)).
std::vector<uint8_t> save_detector_state(const Detector& detector);

// The detector saved in `bytes`. Throws edgelm::Error, one line naming `source` and saying what
// to do, when the bytes are not a state of this build's detector: wrong magic, another format
// version, another detector size or layout, a truncated or over-long payload, a checksum
// mismatch, or a stored configuration that fails validate().
Detector load_detector_state(std::span<const uint8_t> bytes, std::string_view source = "detector state");

}  // namespace edgelm::anomaly
