// edgelm car: the in-car assistant on a simulated vehicle, driven from stdin (typed, or spoken with
// --audio / --live), or evaluated on a slot set (--eval).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/car.hpp"
#include "edgelm/error.hpp"
#include "edgelm/intent.hpp"
#include "edgelm/model.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::cli {
namespace {

struct CarArgs {
  std::string model = "smollm2";
  std::string head;
  int threads = 1;
  float min_confidence = 0.5f;
  std::string eval;
  bool gold_intent = false;
  bool json = false;
  std::vector<std::string> audio;  // WAV files ("-": stdin), each a stream of utterances
  bool live = false;               // raw 16 kHz PCM16 from stdin
  bool transcribe = false;         // the recogniser alone
  std::string speak;               // the replies spoken, to a WAV file ("-": raw PCM on stdout)
  std::string bias = "mixed";
  std::string voice = "en-us";
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

void run_eval(const CarArgs& a, car::CarAssistant& assistant) {
  const auto cases = car::read_slot_cases(a.eval);
  const car::SlotReport r = car::evaluate_slots(assistant, cases, a.gold_intent);
  auto pct = [](size_t k, size_t n) { return n ? 100.0 * static_cast<double>(k) / static_cast<double>(n) : 0.0; };
  nlohmann::ordered_json s{{"file", a.eval},
                           {"intent", a.gold_intent ? "given" : "classifier"},
                           {"cases", r.n},
                           {"commands", r.n_commands},
                           {"exact_match_pct", pct(r.exact, r.n_commands)},
                           {"fallback_cases", r.n_fallback},
                           {"fallback_ok_pct", pct(r.fallback_ok, r.n_fallback)},
                           {"intent_accuracy_pct", pct(r.intent_ok, r.n)},
                           {"ms_median", percentile(r.ms, 0.5)},
                           {"ms_p95", percentile(r.ms, 0.95)},
                           {"cpu_ms_median", percentile(r.cpu_ms, 0.5)},
                           {"cpu_ms_p95", percentile(r.cpu_ms, 0.95)},
                           {"threads", a.threads}};
  if (a.json) {
    for (const auto& row : r.rows) std::printf("%s\n", row.dump().c_str());
    std::printf("%s\n", nlohmann::ordered_json{{"summary", s}}.dump().c_str());
    return;
  }
  for (const auto& row : r.rows)
    if (!row["ok"].get<bool>())
      std::printf("miss: %s\n  expected %s (%s), got %s (%s) %s\n", row["text"].get<std::string>().c_str(),
                  row["expected"].get<std::string>().c_str(), row["expected_intent"].get<std::string>().c_str(),
                  row["got"].get<std::string>().c_str(), row["intent"].get<std::string>().c_str(),
                  row["arguments"].get<std::string>().c_str());
  std::printf("%zu cases, %zu commands: exact-match arguments %.1f %% (%zu), intent %s%.1f %%, fallback where due "
              "%.1f %% of %zu\n",
              r.n, r.n_commands, pct(r.exact, r.n_commands), r.exact, a.gold_intent ? "given, " : "accuracy ",
              pct(r.intent_ok, r.n), pct(r.fallback_ok, r.n_fallback), r.n_fallback);
  std::printf("per command (intent + arguments), %d thread%s: median %.1f ms, p95 %.1f ms wall; median %.1f ms, "
              "p95 %.1f ms CPU\n",
              a.threads, a.threads == 1 ? "" : "s", percentile(r.ms, 0.5), percentile(r.ms, 0.95),
              percentile(r.cpu_ms, 0.5), percentile(r.cpu_ms, 0.95));
}

// Where the text goes: stdout, or stderr when stdout carries the spoken replies.
FILE* text_out(const CarArgs& a) { return a.speak == "-" ? stderr : stdout; }

class Voice {
 public:
  explicit Voice(const CarArgs& a) : a_(a) {
    if (!a.speak.empty()) synth_ = speech::make_espeak({a.voice});
  }
  // Speaks one reply: raw PCM goes out at once (a live loop hears it now), a WAV file at the end.
  void say(const std::string& text) {
    if (!synth_ || text.empty()) return;
    auto pcm = speech::to_16k(synth_->speak(text)).samples;
    pcm.resize(pcm.size() + speech::kRecognizerRate / 4, 0);  // a pause between replies
    if (a_.speak == "-") {
      std::fwrite(pcm.data(), 2, pcm.size(), stdout);
      std::fflush(stdout);
    } else {
      all_.insert(all_.end(), pcm.begin(), pcm.end());
    }
  }
  void close() {
    if (!synth_ || a_.speak == "-") return;
    const auto bytes = speech::wav_bytes(all_, speech::kRecognizerRate);
    const std::string tmp = a_.speak + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error("cannot write " + a_.speak, "check the folder exists and is writable");
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), a_.speak.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw Error("cannot write " + a_.speak, "check the disk has room");
    }
  }

 private:
  const CarArgs& a_;
  std::unique_ptr<speech::Synthesizer> synth_;
  std::vector<int16_t> all_;
};

void print_turn(const CarArgs& a, const std::string& source, const speech::VoiceTurn& v) {
  FILE* out = text_out(a);
  if (a.json) {
    nlohmann::ordered_json j{{"audio", source},       {"start_s", v.heard.start_s}, {"end_s", v.heard.end_s},
                             {"text", v.heard.text},  {"decode_ms", v.heard.decode_cpu_ms},
                             {"finalize_ms", v.heard.finalize_ms}};
    if (!v.turn.intent.empty()) {
      j["intent"] = v.turn.intent;
      j["confidence"] = v.turn.confidence;
      j["arguments"] = v.turn.filled;
      j["call"] = v.turn.call ? v.turn.call->to_string() : "";
      j["say"] = v.turn.say;
      j["end_to_action_ms"] = v.end_to_action_ms;
      j["end_to_action_cpu_ms"] = v.end_to_action_cpu_ms;
      j["finalize_cpu_ms"] = v.heard.finalize_cpu_ms;
    }
    std::fprintf(out, "%s\n", j.dump().c_str());
  } else {
    for (const auto& l : v.lines()) std::fprintf(out, "%s\n", l.c_str());
  }
  std::fflush(out);
}

// Spoken commands: each utterance in the audio (files, or the live stream) becomes one turn.
void run_audio(const CarArgs& a, car::CarAssistant* assistant, const std::vector<speech::Audio>& audios) {
  speech::PocketSphinxOptions po;
  po.bias = speech::parse_bias(a.bias);
  auto rec = speech::make_pocketsphinx(po);
  Voice voice(a);
  // --transcribe: no assistant; the utterances are printed as heard.
  auto run_stream = [&](const std::string& source, auto&& next_chunk) {
    std::vector<speech::VoiceTurn> turns;
    auto emit = [&](std::vector<speech::VoiceTurn> ts) {
      for (auto& v : ts) {
        print_turn(a, source, v);
        if (!v.turn.intent.empty()) voice.say(v.turn.say);
      }
    };
    if (assistant) {
      speech::VoiceCar vc(*assistant, *rec);
      std::vector<int16_t> chunk;
      while (next_chunk(chunk)) emit(vc.feed(chunk));
      emit(vc.finish());
    } else {
      speech::UtteranceStream us(*rec);
      std::vector<int16_t> chunk;
      auto wrap = [](std::vector<speech::Utterance> u) {
        std::vector<speech::VoiceTurn> out(u.size());
        for (size_t i = 0; i < u.size(); ++i) out[i].heard = std::move(u[i]);
        return out;
      };
      while (next_chunk(chunk)) emit(wrap(us.feed(chunk)));
      emit(wrap(us.finish()));
    }
  };
  if (a.live) {
    // 100 ms reads; a final odd byte (a cut sample) is dropped.
    run_stream("stdin", [](std::vector<int16_t>& c) {
      c.resize(speech::kRecognizerRate / 10);
      const size_t n = std::fread(c.data(), 2, c.size(), stdin);
      c.resize(n);
      return n > 0;
    });
  }
  for (size_t k = 0; k < a.audio.size(); ++k) {
    const std::string& path = a.audio[k];
    const speech::Audio& audio = audios[k];
    // Fed in 100 ms chunks, as a microphone would deliver them.
    size_t pos = 0;
    run_stream(path == "-" ? "stdin" : path, [&](std::vector<int16_t>& c) {
      const size_t n = std::min<size_t>(speech::kRecognizerRate / 10, audio.samples.size() - pos);
      c.assign(audio.samples.begin() + static_cast<std::ptrdiff_t>(pos),
               audio.samples.begin() + static_cast<std::ptrdiff_t>(pos + n));
      pos += n;
      return n > 0;
    });
  }
  voice.close();
  if (assistant && !a.json) std::fprintf(text_out(a), "final state: %s\n", assistant->state().to_json().dump().c_str());
}

void run(const CarArgs& a) {
  const bool spoken = a.live || !a.audio.empty();
  std::vector<speech::Audio> audios;  // --audio's files, read before anything else
  if (spoken) {
    if (!a.eval.empty()) throw Error("--eval reads text, not audio", "leave out --audio/--live");
    if (a.live && !a.audio.empty()) throw Error("--live and --audio both read the input", "pick one");
    if (std::count(a.audio.begin(), a.audio.end(), "-") + (a.live ? 1 : 0) > 1)
      throw Error("stdin can be read only once", "give '-' once");
    // Fail on a missing engine or a bad file before the model loads.
    if (!speech::speech_built()) speech::make_pocketsphinx({});
    if (a.transcribe && !a.speak.empty()) throw Error("--transcribe has no replies to speak", "leave out --speak");
    for (const auto& path : a.audio) audios.push_back(speech::to_16k(speech::read_wav(path)));
    if (a.transcribe) return run_audio(a, nullptr, audios);
  } else if (a.transcribe || !a.speak.empty()) {
    throw Error(a.transcribe ? "--transcribe needs --audio or --live" : "--speak needs --audio or --live",
                "give the speech input: --audio FILE.wav, or --live with raw 16 kHz PCM on stdin");
  }
  if (spoken && a.head.empty())
    throw Error("--head is required", "give the intent classifier head (edgelm train-classifier)");
  auto model = Model::load(a.model);
  std::unique_ptr<intent::Classifier> cls;
  if (!a.head.empty()) cls = std::make_unique<intent::Classifier>(model, a.head, a.threads, 1);
  else if (a.eval.empty() || !a.gold_intent)
    throw Error("--head is required", "give the intent classifier head (edgelm train-classifier)");
  car::ArgumentFiller filler(model, a.threads);
  filler.prepare();  // the commands' prompts, once, before the first utterance
  car::CarAssistant assistant(cls.get(), filler, a.min_confidence);
  if (!a.eval.empty()) return run_eval(a, assistant);
  if (spoken) return run_audio(a, &assistant, audios);

  const bool tty = isatty(0) == 1;
  if (tty) std::printf("In-car assistant (simulated vehicle). Speak by typing; Ctrl-D to stop.\n");
  std::string line;
  while (true) {
    if (tty) {
      std::printf("driver> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!tty) std::printf("driver: %s\n", line.c_str());
    for (const auto& l : assistant.handle(line).lines()) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
  }
  const auto& s = assistant.state();
  std::printf("final state: %s\n", s.to_json().dump().c_str());
}

}  // namespace

void add_car_command(CLI::App& app) {
  auto a = std::make_shared<CarArgs>();
  CLI::App* cmd = app.add_subcommand(
      "car", "in-car assistant: driver utterances (typed on stdin, or spoken: --audio, --live) become calls on a "
             "simulated vehicle (intent, then arguments filled by the model under a JSON Schema)");
  cmd->add_option("-m,--model", a->model, "backbone GGUF file, or a model-cache name")->capture_default_str();
  cmd->add_option("--head", a->head, "intent classifier head (GGUF from train-classifier)");
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)")->check(Range(0, 256))->capture_default_str();
  cmd->add_option("--min-confidence", a->min_confidence, "below this the assistant falls back politely")->check(Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--eval", a->eval, "run a slot set (JSONL, tests/fixtures/car/) and report exact-match arguments and latency");
  cmd->add_flag("--gold-intent", a->gold_intent, "with --eval: give the expected intent (the argument filling alone; no --head needed)");
  cmd->add_flag("--json", a->json, "with --eval: one JSON object per case, then a summary object; with --audio/--live: "
                                   "one JSON object per utterance");
  cmd->add_option("--audio", a->audio, "spoken commands: WAV files ('-': stdin), PCM 16-bit, any rate (resampled to "
                                       "16 kHz); each utterance in a file is one command")->expected(1, -1);
  cmd->add_flag("--live", a->live, "spoken commands from a microphone stream on stdin: raw PCM, 16-bit little-endian, "
                                   "16 kHz mono (e.g. arecord -f S16_LE -r 16000 -c 1 -t raw)");
  cmd->add_flag("--transcribe", a->transcribe, "with --audio/--live: only print what was heard (no model, no head)");
  cmd->add_option("--speak", a->speak, "speak the replies with eSpeak NG: a WAV file, or '-' for raw PCM on stdout "
                                       "(16-bit, 16 kHz mono: | aplay -f S16_LE -r 16000; the text then goes to stderr)");
  cmd->add_option("--bias", a->bias, "the recogniser's language model: mixed (car commands interpolated with general "
                                     "English), car-lm, grammar (car commands only), none (general English)")
      ->check(CLI::IsMember({"mixed", "car-lm", "grammar", "none"}))->capture_default_str();
  cmd->add_option("--voice", a->voice, "eSpeak NG voice for --speak")->capture_default_str();
  cmd->callback([a] { run(*a); });
}

}  // namespace edgelm::cli
