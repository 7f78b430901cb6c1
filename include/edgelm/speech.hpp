// Speech for the in-car assistant: WAV in, 16 kHz mono PCM, voice-activity segmentation into
// utterances, a recogniser and a synthesiser behind small interfaces (PocketSphinx and eSpeak NG
// are the engines built in when their libraries are present; speech_built() says whether).
//
//   auto audio = edgelm::speech::to_16k(edgelm::speech::read_wav("cmd.wav"));
//   auto rec = edgelm::speech::make_pocketsphinx({});           // car-domain language model
//   edgelm::speech::VoiceCar voice(car, *rec);                  // car: a car::CarAssistant
//   for (auto& v : voice.feed(audio.samples)) std::cout << v.heard.text << "\n";
//   for (auto& v : voice.finish()) ...                          // an utterance still open at the end
//
// Audio is signed 16-bit PCM throughout; the recogniser takes 16 kHz mono.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/car.hpp"

namespace edgelm::speech {

inline constexpr int kRecognizerRate = 16000;

struct Audio {
  int sample_rate = kRecognizerRate;
  std::vector<int16_t> samples;  // mono
  double seconds() const { return sample_rate ? static_cast<double>(samples.size()) / sample_rate : 0; }
};

// A RIFF/WAVE image: PCM 16-bit, any number of channels (averaged to mono), any rate from 1 kHz to
// 384 kHz. Throws edgelm::Error naming `name` for an empty, truncated, non-WAV or unsupported file
// (what is wrong and how to convert it). A data chunk whose size says "unknown" (0 or 0xFFFFFFFF,
// as a recorder writing to a pipe leaves it) takes the rest of the file.
Audio parse_wav(std::span<const uint8_t> bytes, const std::string& name);
// Reads a file ("-": stdin, at most 1 GiB) and parses it.
Audio read_wav(const std::string& path);
// A 16-bit mono PCM WAV image.
std::vector<uint8_t> wav_bytes(std::span<const int16_t> samples, int sample_rate);

// Band-limited resampling (windowed-sinc, Kaiser window; the cut-off below the lower Nyquist
// frequency, so downsampling does not alias). from == to returns the input.
std::vector<int16_t> resample(std::span<const int16_t> in, int from_rate, int to_rate);
Audio to_16k(Audio a);

// Voice activity: 10 ms frames compared against a tracked noise floor. An utterance opens after
// `open_ms` of frames above the floor and closes after `close_ms` below it; `preroll_ms` before
// the opening is kept (soft onsets), utterances shorter than `min_ms` are dropped.
struct SegmenterOptions {
  double threshold_db = 10;   // above the noise floor
  double min_level_db = -50;  // dBFS: quieter frames are never speech
  int open_ms = 60, close_ms = 300, preroll_ms = 200, min_ms = 200, max_ms = 15000;
};

class Segmenter {
 public:
  explicit Segmenter(SegmenterOptions o = {});
  enum class Event { none, open, close, drop };
  // Classifies the next 10 ms frame (160 samples at 16 kHz).
  Event frame(std::span<const int16_t> frame);
  bool open() const { return open_; }
  void end_stream() { open_ = false; above_ = below_ = length_ = 0; }  // the stream stopped mid-utterance
  double noise_floor_db() const { return floor_db_; }
  static constexpr int kFrame = kRecognizerRate / 100;

 private:
  SegmenterOptions o_;
  double floor_db_ = 0;
  bool started_ = false, open_ = false;
  int above_ = 0, below_ = 0, length_ = 0;
};

// A speech recogniser fed one utterance at a time, incrementally (decoding goes on while the
// driver speaks, so little is left when the utterance ends).
class Recognizer {
 public:
  virtual ~Recognizer() = default;
  virtual void begin() = 0;
  virtual void feed(std::span<const int16_t> samples16k) = 0;
  virtual std::string end() = 0;  // the transcript, lowercase words ("" : nothing recognised)
  virtual std::string describe() const = 0;
};

class Synthesizer {
 public:
  virtual ~Synthesizer() = default;
  virtual Audio speak(std::string_view text) = 0;
};

// Whether this build has the speech engines (PocketSphinx and eSpeak NG); without them
// make_pocketsphinx and make_espeak throw an Error saying how to build them in.
bool speech_built();

// How the recogniser is biased toward the car domain.
enum class Bias {
  none,     // the generic US English trigram model
  car_lm,   // a trigram model of the car commands (data/car/speech/car.arpa, bench/speech/make-lm.py)
  mixed,    // the car model interpolated with the generic one (the default: it keeps words the car
            // model never saw, such as names and places, within reach)
  grammar,  // a JSGF grammar of the car commands (data/car/speech/car.gram)
};
Bias parse_bias(std::string_view s);  // "none", "car-lm", "mixed", "grammar"; else Error
const char* bias_name(Bias b);

struct PocketSphinxOptions {
  std::string model_dir;  // "" : $EDGELM_SPHINX_MODEL or /usr/share/pocketsphinx/model/en-us
  std::string car_dir;    // "" : $EDGELM_CAR_SPEECH or <source>/data/car/speech
  Bias bias = Bias::mixed;
  float car_weight = 0.7f;  // Bias::mixed: the car model's share
  // Decoder settings as PocketSphinx names them, in pairs ("-fwdflat", "no"), after edgelm's own.
  std::vector<std::string> decoder_args;
};
std::unique_ptr<Recognizer> make_pocketsphinx(const PocketSphinxOptions& o);

struct EspeakOptions {
  std::string voice = "en-us";
  int words_per_minute = 165;
};
// eSpeak NG has one engine per process: synthesisers take turns (thread-safe, not parallel).
std::unique_ptr<Synthesizer> make_espeak(const EspeakOptions& o);

// What was heard in one utterance.
struct Utterance {
  std::string text;
  double start_s = 0, end_s = 0;  // in the stream (end: where the speech stopped)
  double finalize_ms = 0;         // recogniser time after the segment closed (wall)
  double finalize_cpu_ms = 0;     // the same in process CPU time (unaffected by a busy machine)
  double decode_cpu_ms = 0;       // recogniser time for the whole utterance (real-time factor)
};

// Segmenter + recogniser over a stream of 16 kHz samples.
class UtteranceStream {
 public:
  UtteranceStream(Recognizer& r, SegmenterOptions o = {});
  std::vector<Utterance> feed(std::span<const int16_t> samples16k);  // utterances that ended
  std::vector<Utterance> finish();  // closes an open utterance at the end of the stream
  double seconds() const { return static_cast<double>(n_samples_) / kRecognizerRate; }

 private:
  void push_frame(std::span<const int16_t> f, std::vector<Utterance>& out);
  void close(std::vector<Utterance>& out, bool keep);
  Recognizer& rec_;
  Segmenter seg_;
  std::vector<int16_t> partial_, preroll_;
  size_t n_samples_ = 0;
  Utterance cur_;
  int preroll_frames_;
};

// One spoken command through the assistant.
struct VoiceTurn {
  Utterance heard;
  car::Turn turn;          // empty transcript: not handled (turn.intent empty)
  double end_to_action_ms = 0;  // from the segment's close to the vehicle's action (wall)
  double end_to_action_cpu_ms = 0;  // the same in process CPU time
  std::vector<std::string> lines() const;  // what the CLI prints
};

class VoiceCar {
 public:
  VoiceCar(car::CarAssistant& car, Recognizer& r, SegmenterOptions o = {});
  std::vector<VoiceTurn> feed(std::span<const int16_t> samples16k);
  std::vector<VoiceTurn> finish();

 private:
  std::vector<VoiceTurn> handle(std::vector<Utterance> us);
  car::CarAssistant& car_;
  UtteranceStream stream_;
};

}  // namespace edgelm::speech
