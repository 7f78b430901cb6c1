// Saving and restoring a Detector: a restored detector carries on with exactly the scores of one
// that never stopped, and every kind of damaged or foreign state is refused with one line.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "edgelm/anomaly/detector_state.hpp"
#include "edgelm/error.hpp"

namespace edgelm::anomaly {
namespace {

constexpr int64_t kT0 = 1'400'000'000'000LL;
constexpr int64_t kStep = 300'000;  // five minutes
constexpr int kSamples = 3000;
constexpr int kSplit = 1501;        // inside a block of every scale, so partial blocks are carried

// A daily rhythm per channel with deterministic jitter, a spike and a level shift after the split
// (so that the resumed part has non-zero scores to compare).
std::vector<float> series(int channels) {
  std::vector<float> v(static_cast<size_t>(kSamples) * channels);
  uint32_t lcg = 12345u + static_cast<uint32_t>(channels);
  for (int i = 0; i < kSamples; ++i)
    for (int c = 0; c < channels; ++c) {
      lcg = lcg * 1664525u + 1013904223u;
      const float jitter = static_cast<float>(lcg >> 8) / 16777216.0f - 0.5f;
      float x = 10.0f * (c + 1) + 3.0f * std::sin(6.2831853f * static_cast<float>(i) / 288.0f + c) + 0.4f * jitter;
      if (i == 2000 && c == channels - 1) x += 30.0f;
      if (i >= 2500) x += 6.0f;
      v[static_cast<size_t>(i) * channels + c] = x;
    }
  return v;
}

float feed(Detector& d, const std::vector<float>& v, int i) {
  const int channels = d.config().channels;
  return d.update(kT0 + kStep * i, v.data() + static_cast<size_t>(i) * channels);
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

class DetectorStateChannels : public ::testing::TestWithParam<int> {};

TEST_P(DetectorStateChannels, RestoredDetectorContinuesWithTheSameScoreBits) {
  DetectorConfig cfg;
  cfg.channels = GetParam();
  const auto v = series(cfg.channels);

  Detector whole(cfg);
  std::vector<float> expected;
  for (int i = 0; i < kSamples; ++i) expected.push_back(feed(whole, v, i));

  Detector first(cfg);
  for (int i = 0; i < kSplit; ++i) feed(first, v, i);
  const std::vector<uint8_t> saved = save_detector_state(first);
  ASSERT_EQ(saved.size(), kDetectorStateHeaderSize + sizeof(Detector));
  Detector resumed = load_detector_state(saved);
  EXPECT_EQ(resumed.samples_seen(), static_cast<uint32_t>(kSplit));
  EXPECT_EQ(resumed.config().channels, cfg.channels);

  int nonzero = 0;
  for (int i = kSplit; i < kSamples; ++i) {
    const float score = feed(resumed, v, i);
    ASSERT_EQ(bits(score), bits(expected[static_cast<size_t>(i)])) << "sample " << i;
    nonzero += score > 0.0f;
  }
  EXPECT_GT(nonzero, 0) << "the resumed part must have scores worth comparing";
  EXPECT_EQ(resumed.samples_seen(), whole.samples_seen());
}

INSTANTIATE_TEST_SUITE_P(Channels, DetectorStateChannels, ::testing::Values(1, 3));

// The one-line message of the error that loading `bytes` throws ("" if it loads).
std::string load_error(const std::vector<uint8_t>& bytes) {
  try {
    load_detector_state(bytes, "pump.state");
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

std::vector<uint8_t> trained_state() {
  Detector d;
  const auto v = series(1);
  for (int i = 0; i < 400; ++i) feed(d, v, i);
  return save_detector_state(d);
}

void expect_refused(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  const std::string msg = load_error(bytes);
  EXPECT_NE(msg.find(fragment), std::string::npos) << "message: " << msg;
  EXPECT_EQ(msg.rfind("pump.state: ", 0), 0u) << "names the source: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  EXPECT_NE(msg.find(" — "), std::string::npos) << "says what to do: " << msg;
}

TEST(DetectorState, AnUntouchedStateLoads) { EXPECT_EQ(load_error(trained_state()), ""); }

TEST(DetectorState, AFlippedPayloadByteIsACorruptState) {
  const auto good = trained_state();
  for (size_t at : {kDetectorStateHeaderSize, kDetectorStateHeaderSize + sizeof(Detector) / 2, good.size() - 1}) {
    auto bad = good;
    bad[at] ^= 0x10;
    expect_refused(bad, "checksum mismatch");
  }
}

TEST(DetectorState, ATruncatedStateIsRefused) {
  const auto good = trained_state();
  expect_refused(std::vector<uint8_t>(good.begin(), good.end() - 1), "truncated");
  expect_refused(std::vector<uint8_t>(good.begin(), good.begin() + kDetectorStateHeaderSize), "truncated");
  expect_refused(std::vector<uint8_t>(good.begin(), good.begin() + 10), "shorter than the 40-byte header");
  expect_refused({}, "shorter than the 40-byte header");
  auto longer = good;
  longer.push_back(0);
  expect_refused(longer, "payload bytes");
}

TEST(DetectorState, WrongMagicIsNotADetectorState) {
  auto bad = trained_state();
  bad[0] = 'G';
  expect_refused(bad, "not an edgelm detector state");
}

TEST(DetectorState, AnotherFormatVersionIsRefused) {
  auto bad = trained_state();
  const uint32_t version = kDetectorStateVersion + 1;
  std::memcpy(bad.data() + 8, &version, sizeof version);
  expect_refused(bad, "format version 2");
  EXPECT_NE(load_error(bad).find("different edgelm build"), std::string::npos);
}

TEST(DetectorState, AnotherLayoutIsRefused) {
  const auto good = trained_state();
  auto other_size = good;
  const uint32_t size = sizeof(Detector) + 4;
  std::memcpy(other_size.data() + 12, &size, sizeof size);
  expect_refused(other_size, "another detector layout");
  auto other_layout = good;
  other_layout[24] ^= 1;
  expect_refused(other_layout, "another detector layout");
}

TEST(DetectorState, AnInvalidStoredConfigurationIsRefused) {
  // The constructor leaves alarm_threshold alone (only front ends use it), so such a detector
  // saves a configuration that validate() rejects, with a correct checksum.
  DetectorConfig cfg;
  cfg.alarm_threshold = 2.0f;
  ASSERT_NE(validate(cfg), nullptr);
  expect_refused(save_detector_state(Detector(cfg)), "invalid configuration (alarm_threshold");
}

}  // namespace
}  // namespace edgelm::anomaly
