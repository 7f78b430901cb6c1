// The speech engines built in: PocketSphinx (recognition, through its library) and eSpeak NG
// (synthesis). Compiled only when both libraries were found (EDGELM_SPEECH).
#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <espeak-ng/speak_lib.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* var, const std::string& fallback) {
  const char* v = std::getenv(var);
  return v && *v ? v : fallback;
}

std::string need(const fs::path& p, const char* what) {
  if (!fs::exists(p))
    throw Error(std::string(what) + " not found: " + p.string(),
                "install pocketsphinx-en-us (scripts/install-deps.sh), or set the path (--help)");
  return p.string();
}

class PocketSphinx final : public Recognizer {
 public:
  explicit PocketSphinx(const PocketSphinxOptions& o) : bias_(o.bias) {
    const fs::path model = o.model_dir.empty() ? env_or("EDGELM_SPHINX_MODEL", "/usr/share/pocketsphinx/model/en-us")
                                               : o.model_dir;
    const fs::path car = o.car_dir.empty() ? env_or("EDGELM_CAR_SPEECH", EDGELM_SOURCE_DIR "/data/car/speech")
                                           : o.car_dir;
    const std::string hmm = need(model / "en-us", "PocketSphinx acoustic model");
    const std::string dict = need(model / "cmudict-en-us.dict", "PocketSphinx dictionary");
    const std::string generic = need(model / "en-us.lm.bin", "PocketSphinx language model");
    std::string lm = generic, jsgf;
    if (bias_ == Bias::car_lm) lm = need(car / "car.arpa", "car language model");
    if (bias_ == Bias::grammar) jsgf = need(car / "car.gram", "car grammar");
    const std::string car_lm = bias_ == Bias::mixed ? need(car / "car.arpa", "car language model") : "";
    err_set_logfp(nullptr);  // the library logs every step to stderr otherwise
    // No second passes (the flat-lexicon search and the lattice's best path) after the utterance
    // ends: they cost 0.4-0.7 s there, and the answer is wanted at once.
    std::vector<std::string> args{"-hmm", hmm, "-dict", dict, "-fwdflat", "no", "-bestpath", "no"};
    if (jsgf.empty()) args.insert(args.end(), {"-lm", lm});
    else args.insert(args.end(), {"-jsgf", jsgf});
    args.insert(args.end(), o.decoder_args.begin(), o.decoder_args.end());
    if (const char* e = std::getenv("EDGELM_SPHINX_ARGS")) {
      std::istringstream in(e);
      for (std::string w; in >> w;) args.push_back(w);
    }
    std::vector<char*> argv{const_cast<char*>("edgelm")};
    for (auto& w : args) argv.push_back(w.data());
    config_ = cmd_ln_parse_r(nullptr, ps_args(), static_cast<int32>(argv.size()), argv.data(), TRUE);
    if (!config_) throw Error("PocketSphinx rejected its settings", "check the decoder settings' names and values");
    ps_ = ps_init(config_);
    if (!ps_) {
      cmd_ln_free_r(config_);
      throw Error("PocketSphinx could not load its model from " + model.string(),
                  "reinstall pocketsphinx-en-us, or check the car model files in " + car.string());
    }
    if (bias_ == Bias::mixed) {
      ngram_model_t* models[2] = {ngram_model_read(config_, car_lm.c_str(), NGRAM_AUTO, ps_get_logmath(ps_)),
                                  ngram_model_read(config_, generic.c_str(), NGRAM_AUTO, ps_get_logmath(ps_))};
      if (!models[0] || !models[1]) {
        for (auto* m : models) if (m) ngram_model_free(m);
        release();
        throw Error("cannot read the car language model " + car_lm, "regenerate it: bench/speech/make-lm.py");
      }
      char car_name[] = "car", generic_name[] = "generic";
      char* names[2] = {car_name, generic_name};
      const float32 weights[2] = {o.car_weight, 1 - o.car_weight};
      ngram_model_t* set = ngram_model_set_init(config_, models, names, weights, 2);
      ps_set_lm(ps_, "mixed", set);
      ngram_model_free(set);  // the decoder holds its own reference
      ps_set_search(ps_, "mixed");
    }
  }
  ~PocketSphinx() override { release(); }
  void begin() override {
    if (ps_start_utt(ps_) < 0) throw Error("PocketSphinx could not start an utterance", "");
    heard_.clear();
  }
  void feed(std::span<const int16_t> s) override {
    if (s.empty()) return;
    ps_process_raw(ps_, s.data(), s.size(), FALSE, FALSE);
    if (samples_heard_ < kSettled) heard_.insert(heard_.end(), s.begin(), s.end());
  }
  std::string end() override {
    ps_end_utt(ps_);
    // Live decoding subtracts a running estimate of the cepstral mean (the microphone's and the
    // voice's colour), which starts from the acoustic model's training average and settles over
    // the first seconds of speech. Until it has, the utterance is decoded again with the estimate
    // this utterance moved it to: the first command of a session costs a second pass, later
    // ones none.
    if (samples_heard_ < kSettled) {
      samples_heard_ += heard_.size();
      ps_start_utt(ps_);
      ps_process_raw(ps_, heard_.data(), heard_.size(), FALSE, FALSE);
      ps_end_utt(ps_);
      heard_.clear();
    }
    int32 score = 0;
    const char* hyp = ps_get_hyp(ps_, &score);
    return hyp ? hyp : "";
  }
  std::string describe() const override { return std::string("PocketSphinx en-us, bias ") + bias_name(bias_); }

 private:
  void release() {
    if (ps_) ps_free(ps_);
    if (config_) cmd_ln_free_r(config_);
    ps_ = nullptr;
    config_ = nullptr;
  }
  static constexpr size_t kSettled = 4 * kRecognizerRate;  // seconds of speech until the mean has settled
  size_t samples_heard_ = 0;
  std::vector<int16_t> heard_;
  Bias bias_;
  cmd_ln_t* config_ = nullptr;
  ps_decoder_t* ps_ = nullptr;
};

// eSpeak NG keeps one engine per process, and terminating it can hang (its worker thread waits
// on a condition no one signals): it starts once, stays, and each request holds the lock while it
// sets its voice and speaks.
std::mutex espeak_mutex;

int collect(short* wav, int n, espeak_EVENT* events) {
  auto* out = static_cast<std::vector<int16_t>*>(events->user_data);
  if (wav && n > 0) out->insert(out->end(), wav, wav + n);
  return 0;
}

int espeak_rate() {  // under espeak_mutex
  static const int rate = [] {
    const int r = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT);
    if (r > 0) espeak_SetSynthCallback(collect);
    return r;
  }();
  if (rate <= 0) throw Error("eSpeak NG did not start", "install espeak-ng-data (scripts/install-deps.sh)");
  return rate;
}

class Espeak final : public Synthesizer {
 public:
  explicit Espeak(const EspeakOptions& o) : o_(o) {
    std::lock_guard lock(espeak_mutex);
    espeak_rate();
    select();
  }
  Audio speak(std::string_view text) override {
    std::lock_guard lock(espeak_mutex);
    Audio a;
    a.sample_rate = espeak_rate();
    select();
    const std::string t(text);
    if (espeak_Synth(t.c_str(), t.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, &a.samples) != EE_OK)
      throw Error("eSpeak NG could not speak", "");
    espeak_Synchronize();
    return a;
  }

 private:
  void select() {
    if (espeak_SetVoiceByName(o_.voice.c_str()) != EE_OK)
      throw Error("eSpeak NG has no voice '" + o_.voice + "'", "list them with: espeak-ng --voices=en");
    espeak_SetParameter(espeakRATE, o_.words_per_minute, 0);
  }
  EspeakOptions o_;
};

}  // namespace

bool speech_built() { return true; }

std::unique_ptr<Recognizer> make_pocketsphinx(const PocketSphinxOptions& o) { return std::make_unique<PocketSphinx>(o); }
std::unique_ptr<Synthesizer> make_espeak(const EspeakOptions& o) { return std::make_unique<Espeak>(o); }

}  // namespace edgelm::speech
