// WAV parsing (valid layouts and every kind of bad file), band-limited resampling and voice
// activity segmentation, on audio made here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {

void put32(std::vector<uint8_t>& b, uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i))); }
void put16(std::vector<uint8_t>& b, uint16_t v) { b.push_back(uint8_t(v)); b.push_back(uint8_t(v >> 8)); }
void tag(std::vector<uint8_t>& b, const char* t) { b.insert(b.end(), t, t + 4); }

// A WAV image with the given format fields, extra chunks before the data, and raw data bytes.
std::vector<uint8_t> wav(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits,
                         const std::vector<uint8_t>& data, const std::vector<uint8_t>& before_data = {},
                         uint32_t data_size_field = UINT32_MAX - 1) {
  std::vector<uint8_t> b;
  tag(b, "RIFF"); put32(b, 0); tag(b, "WAVE");
  tag(b, "fmt "); put32(b, 16); put16(b, format); put16(b, channels); put32(b, rate);
  put32(b, rate * channels * bits / 8); put16(b, uint16_t(channels * bits / 8)); put16(b, bits);
  b.insert(b.end(), before_data.begin(), before_data.end());
  tag(b, "data"); put32(b, data_size_field == UINT32_MAX - 1 ? uint32_t(data.size()) : data_size_field);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> pcm(std::initializer_list<int16_t> v) {
  std::vector<uint8_t> b;
  for (int16_t s : v) put16(b, uint16_t(s));
  return b;
}

std::string error_of(const std::vector<uint8_t>& b) {
  try {
    parse_wav(b, "x.wav");
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(Wav, RoundTripsMono16) {
  const std::vector<int16_t> s{0, 1, -1, 32767, -32768, 1234};
  const Audio a = parse_wav(wav_bytes(s, 16000), "x.wav");
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_EQ(a.samples, s);
}

TEST(Wav, AveragesStereoToMono) {
  const Audio a = parse_wav(wav(1, 2, 44100, 16, pcm({100, 300, -200, -400, 32767, 32767})), "x.wav");
  EXPECT_EQ(a.sample_rate, 44100);
  EXPECT_EQ(a.samples, (std::vector<int16_t>{200, -300, 32767}));
}

TEST(Wav, SkipsOtherChunksWithTheirPadding) {
  std::vector<uint8_t> list;
  tag(list, "LIST"); put32(list, 3); list.insert(list.end(), {'a', 'b', 'c', 0});  // odd size, one pad byte
  const Audio a = parse_wav(wav(1, 1, 8000, 16, pcm({5, 6, 7}), list), "x.wav");
  EXPECT_EQ(a.samples, (std::vector<int16_t>{5, 6, 7}));
}

TEST(Wav, ExtensibleFormatWithPcmSubformat) {
  std::vector<uint8_t> b;
  tag(b, "RIFF"); put32(b, 0); tag(b, "WAVE");
  tag(b, "fmt "); put32(b, 40); put16(b, 0xFFFE); put16(b, 1); put32(b, 16000); put32(b, 32000); put16(b, 2);
  put16(b, 16); put16(b, 22); put16(b, 16); put32(b, 4); put16(b, 1);  // cbSize, valid bits, mask, sub-format PCM
  b.insert(b.end(), 14, 0);                                              // the rest of the GUID
  tag(b, "data"); put32(b, 4);
  auto d = pcm({-3, 9});
  b.insert(b.end(), d.begin(), d.end());
  EXPECT_EQ(parse_wav(b, "x.wav").samples, (std::vector<int16_t>{-3, 9}));
}

TEST(Wav, UnknownDataLengthTakesTheRest) {
  // A recorder writing to a pipe cannot go back to fill in the length.
  const Audio a = parse_wav(wav(1, 1, 16000, 16, pcm({1, 2, 3}), {}, 0xFFFFFFFFu), "x.wav");
  EXPECT_EQ(a.samples.size(), 3u);
}

TEST(Wav, BadFilesGetClearErrors) {
  const auto good = wav(1, 1, 16000, 16, pcm({1, 2, 3, 4}));
  EXPECT_NE(error_of({}).find("empty file"), std::string::npos);
  std::string text = "hello, this is not audio at all";
  EXPECT_NE(error_of({text.begin(), text.end()}).find("not a WAV file"), std::string::npos);
  EXPECT_NE(error_of({good.begin(), good.begin() + 8}).find("truncated header"), std::string::npos);
  EXPECT_NE(error_of({good.begin(), good.begin() + 20}).find("truncated"), std::string::npos);
  EXPECT_NE(error_of({good.begin(), good.begin() + 36}).find("no data chunk"), std::string::npos);
  EXPECT_NE(error_of({good.begin(), good.end() - 2}).find("truncated: the data chunk says 8 bytes, 6 are there"),
            std::string::npos);
  EXPECT_NE(error_of(wav(1, 1, 16000, 16, {})).find("no audio samples"), std::string::npos);
  EXPECT_NE(error_of(wav(3, 1, 16000, 32, pcm({0, 0}))).find("floating-point"), std::string::npos);
  EXPECT_NE(error_of(wav(1, 1, 16000, 8, {1, 2})).find("8-bit samples are not supported"), std::string::npos);
  EXPECT_NE(error_of(wav(0x55, 1, 16000, 16, pcm({0}))).find("compressed audio (format 85)"), std::string::npos);
  EXPECT_NE(error_of(wav(1, 0, 16000, 16, pcm({0}))).find("bad channel count 0"), std::string::npos);
  EXPECT_NE(error_of(wav(1, 1, 100, 16, pcm({0}))).find("unsupported sample rate 100 Hz"), std::string::npos);
  // Every message names the file and says what to do.
  EXPECT_NE(error_of({}).find("x.wav: "), std::string::npos);
  EXPECT_NE(error_of(wav(1, 1, 16000, 8, {1, 2})).find("sox"), std::string::npos);
  // A cut anywhere in a valid file is an error, never a crash or a wrong read.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_THROW(parse_wav({good.data(), n}, "x.wav"), Error) << n;
}

TEST(Wav, MissingFileIsAnError) {
  EXPECT_THROW(read_wav("/nonexistent/x.wav"), Error);
}

std::vector<int16_t> sine(double hz, int rate, double seconds, double amp) {
  std::vector<int16_t> v(size_t(rate * seconds));
  for (size_t i = 0; i < v.size(); ++i) v[i] = int16_t(std::lround(amp * std::sin(2 * M_PI * hz * double(i) / rate)));
  return v;
}

double rms(std::span<const int16_t> v) {
  double e = 0;
  for (int16_t x : v) e += double(x) * x;
  return std::sqrt(e / double(v.size()));
}

// The largest difference from the ideal tone, away from the edges (where the filter runs off the
// signal).
double max_error(const std::vector<int16_t>& got, double hz, int rate, double amp) {
  const auto want = sine(hz, rate, double(got.size()) / rate, amp);
  double worst = 0;
  for (size_t i = size_t(rate / 50); i + size_t(rate / 50) < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  return worst;
}

TEST(Resample, KeepsAToneBelowTheNewNyquist) {
  for (int from : {8000, 11025, 22050, 44100, 48000}) {
    const auto in = sine(440, from, 1.0, 10000);
    const auto out = resample(in, from, 16000);
    EXPECT_EQ(out.size(), size_t(16000)) << from;
    EXPECT_LT(max_error(out, 440, 16000, 10000), 10000 * 0.01) << from;  // within 1 % of full scale
  }
}

TEST(Resample, RemovesWhatWouldAlias) {
  // 11 kHz at 44.1 kHz is above 16 kHz's Nyquist frequency: a naive decimation folds it to 5 kHz.
  const auto out = resample(sine(11000, 44100, 1.0, 10000), 44100, 16000);
  EXPECT_LT(rms(std::span(out).subspan(800, out.size() - 1600)), 10000 / std::sqrt(2.0) * 0.01);
}

TEST(Resample, SameRateIsACopyAndTo16kSetsTheRate) {
  const std::vector<int16_t> v{1, 2, 3};
  EXPECT_EQ(resample(v, 16000, 16000), v);
  Audio a;
  a.sample_rate = 8000;
  a.samples = sine(300, 8000, 0.5, 5000);
  const Audio b = to_16k(a);
  EXPECT_EQ(b.sample_rate, 16000);
  EXPECT_EQ(b.samples.size(), 8000u);
}

// Runs the segmenter over 16 kHz audio; the times (s) of its events.
std::vector<std::pair<Segmenter::Event, double>> segment(const std::vector<int16_t>& a, SegmenterOptions o = {}) {
  Segmenter s(o);
  std::vector<std::pair<Segmenter::Event, double>> ev;
  for (size_t i = 0; i + Segmenter::kFrame <= a.size(); i += Segmenter::kFrame) {
    const auto e = s.frame(std::span(a).subspan(i, Segmenter::kFrame));
    if (e != Segmenter::Event::none) ev.push_back({e, double(i + Segmenter::kFrame) / 16000});
  }
  return ev;
}

std::vector<int16_t> noise(double seconds, double amp, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, amp);
  std::vector<int16_t> v(size_t(16000 * seconds));
  double brown = 0;
  for (auto& x : v) {
    brown = 0.98 * brown + n(rng);  // low-frequency heavy, like road noise
    x = int16_t(std::clamp(brown, -32000.0, 32000.0));
  }
  return v;
}

void add(std::vector<int16_t>& to, const std::vector<int16_t>& what, double at) {
  const size_t o = size_t(at * 16000);
  for (size_t i = 0; i < what.size() && o + i < to.size(); ++i)
    to[o + i] = int16_t(std::clamp(int(to[o + i]) + what[i], -32768, 32767));
}

TEST(Segmenter, SilenceAndSteadyNoiseOpenNothing) {
  EXPECT_TRUE(segment(std::vector<int16_t>(16000 * 3, 0)).empty());
  EXPECT_TRUE(segment(noise(5, 400, 1)).empty());
}

TEST(Segmenter, TwoBurstsInNoiseAreTwoUtterances) {
  auto a = noise(4, 100, 2);
  add(a, sine(300, 16000, 0.8, 4000), 0.5);
  add(a, sine(500, 16000, 0.6, 4000), 2.2);
  const auto ev = segment(a);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].first, Segmenter::Event::open);
  EXPECT_NEAR(ev[0].second, 0.5 + 0.06, 0.02);
  EXPECT_EQ(ev[1].first, Segmenter::Event::close);
  EXPECT_NEAR(ev[1].second, 1.3 + 0.3, 0.02);  // the end of the tone plus the closing silence
  EXPECT_EQ(ev[2].first, Segmenter::Event::open);
  EXPECT_EQ(ev[3].first, Segmenter::Event::close);
  EXPECT_NEAR(ev[3].second, 2.8 + 0.3, 0.02);
}

TEST(Segmenter, AClickIsDropped) {
  auto a = std::vector<int16_t>(16000 * 2, 0);
  add(a, sine(1000, 16000, 0.1, 8000), 0.5);
  const auto ev = segment(a);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].first, Segmenter::Event::drop);
}

TEST(Segmenter, AnEndlessSoundIsCut) {
  SegmenterOptions o;
  o.max_ms = 1000;
  auto a = std::vector<int16_t>(16000 * 4, 0);
  add(a, sine(300, 16000, 3, 4000), 0.2);
  const auto ev = segment(a, o);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[1].first, Segmenter::Event::close);
  EXPECT_NEAR(ev[1].second - ev[0].second, 1.0 - 0.06, 0.02);  // max_ms counts from the first loud frame
}

TEST(Speech, BiasNames) {
  for (Bias b : {Bias::none, Bias::car_lm, Bias::mixed, Bias::grammar}) EXPECT_EQ(parse_bias(bias_name(b)), b);
  EXPECT_THROW(parse_bias("car"), Error);
}

}  // namespace
}  // namespace edgelm::speech
