// PocketSphinx and eSpeak NG through the interfaces, on the committed recordings
// (tests/fixtures/speech: eSpeak NG's voice at 16 kHz, 8 kHz and 44.1 kHz stereo). Where the build
// has no speech engines, the clear error instead.
#include <gtest/gtest.h>

#include <random>

#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {

const std::string kDir = EDGELM_SOURCE_DIR "/tests/fixtures/speech/";

std::vector<Utterance> hear(Recognizer& r, const std::string& file) {
  const Audio a = to_16k(read_wav(kDir + file));
  UtteranceStream s(r);
  std::vector<Utterance> out;
  // 100 ms at a time, as a microphone delivers it.
  for (size_t i = 0; i < a.samples.size(); i += 1600) {
    auto u = s.feed(std::span(a.samples).subspan(i, std::min<size_t>(1600, a.samples.size() - i)));
    out.insert(out.end(), u.begin(), u.end());
  }
  auto u = s.finish();
  out.insert(out.end(), u.begin(), u.end());
  return out;
}

TEST(SpeechEngines, NotBuiltIsAClearError) {
  if (speech_built()) GTEST_SKIP() << "this build has the speech engines";
  try {
    make_pocketsphinx({});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("speech support was not built"), std::string::npos);
  }
}

class SpeechEnginesBuilt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!speech_built()) GTEST_SKIP() << "built without PocketSphinx / eSpeak NG";
  }
};

TEST_F(SpeechEnginesBuilt, ThreeCommandsInOneRecordingAreThreeUtterances) {
  auto r = make_pocketsphinx({});
  const auto us = hear(*r, "jazz-airport-volume.wav");
  ASSERT_EQ(us.size(), 3u);
  EXPECT_EQ(us[0].text.rfind("play some jazz", 0), 0u) << us[0].text;
  EXPECT_EQ(us[1].text, "how do i get to the airport");
  EXPECT_EQ(us[2].text, "turn the volume up");
  EXPECT_NEAR(us[0].start_s, 0.3, 0.1);  // the speech starts at 0.5 s; 200 ms of pre-roll
  EXPECT_LT(us[0].end_s, us[1].start_s);
  EXPECT_LT(us[1].end_s, us[2].start_s);
}

TEST_F(SpeechEnginesBuilt, OtherRatesAreResampledAndRecognised) {
  auto r = make_pocketsphinx({});
  const auto jazz = hear(*r, "play-jazz-44k-stereo.wav");
  ASSERT_EQ(jazz.size(), 1u);
  EXPECT_EQ(jazz[0].text, "play some jazz");
  // 8 kHz audio has nothing above 4 kHz, where the 16 kHz acoustic model expects some: the
  // car-only model hears it right.
  PocketSphinxOptions o;
  o.bias = Bias::car_lm;
  auto car = make_pocketsphinx(o);
  const auto mom = hear(*car, "call-mom-8k.wav");
  ASSERT_EQ(mom.size(), 1u);
  EXPECT_EQ(mom[0].text, "call my mom");
}

TEST_F(SpeechEnginesBuilt, SilenceAndNoiseAreNoCommand) {
  auto r = make_pocketsphinx({});
  UtteranceStream s(*r);
  std::vector<int16_t> quiet(16000 * 2, 0);
  EXPECT_TRUE(s.feed(quiet).empty());
  std::mt19937 rng(3);
  std::normal_distribution<double> n(0, 300);
  std::vector<int16_t> hum(16000 * 4);
  double b = 0;
  for (size_t i = 0; i < hum.size(); ++i) {
    b = 0.97 * b + n(rng);
    hum[i] = int16_t(std::clamp(b + 800 * std::sin(2 * M_PI * 40 * double(i) / 16000), -32000.0, 32000.0));
  }
  auto u = s.feed(hum);
  auto f = s.finish();
  u.insert(u.end(), f.begin(), f.end());
  for (auto& x : u) EXPECT_EQ(x.text, "") << x.text;
}

TEST_F(SpeechEnginesBuilt, GrammarAndMissingFiles) {
  PocketSphinxOptions o;
  o.bias = Bias::grammar;
  o.car_dir = "/nonexistent";
  try {
    make_pocketsphinx(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("car grammar not found: /nonexistent/car.gram"), std::string::npos);
  }
  PocketSphinxOptions m;
  m.model_dir = "/nonexistent";
  EXPECT_THROW(make_pocketsphinx(m), Error);
}

TEST_F(SpeechEnginesBuilt, SynthesiserSpeaksWhatTheRecogniserHears) {
  auto tts = make_espeak({"en-us+f2", 150});
  const Audio spoken = tts->speak("turn the volume up");
  EXPECT_GT(spoken.seconds(), 0.8);
  EXPECT_LT(spoken.seconds(), 3.0);
  // Said twice: the recogniser's estimate of the voice's spectral mean settles on the first.
  std::vector<int16_t> padded(8000, 0);
  const auto s16 = to_16k(spoken).samples;
  for (int i = 0; i < 2; ++i) {
    padded.insert(padded.end(), s16.begin(), s16.end());
    padded.resize(padded.size() + 12000, 0);
  }
  PocketSphinxOptions o;
  o.bias = Bias::car_lm;
  auto r = make_pocketsphinx(o);
  UtteranceStream s(*r);
  auto u = s.feed(padded);
  ASSERT_EQ(u.size(), 2u);
  // eSpeak's voice is far from the speech the acoustic model learned: the content word, not
  // every word, is what this asks of it.
  EXPECT_NE(u[1].text.find("volume"), std::string::npos) << u[1].text;
  EXPECT_THROW(make_espeak({"no-such-voice"}), Error);
}

}  // namespace
}  // namespace edgelm::speech
