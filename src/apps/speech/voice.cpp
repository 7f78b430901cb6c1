// Voice activity, utterances out of a sample stream, and spoken commands through the car assistant.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {

double level_db(std::span<const int16_t> f) {
  double e = 0;
  for (int16_t v : f) e += static_cast<double>(v) * v;
  e /= std::max<size_t>(1, f.size());
  return 10 * std::log10(e / (32768.0 * 32768.0) + 1e-10);  // dBFS; digital silence -100
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_ms() { return 1000.0 * static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

}  // namespace

Bias parse_bias(std::string_view s) {
  for (Bias b : {Bias::none, Bias::car_lm, Bias::mixed, Bias::grammar})
    if (s == bias_name(b)) return b;
  throw Error("unknown speech bias '" + std::string(s) + "'", "use none, car-lm, mixed or grammar");
}

const char* bias_name(Bias b) {
  switch (b) {
    case Bias::none: return "none";
    case Bias::car_lm: return "car-lm";
    case Bias::mixed: return "mixed";
    case Bias::grammar: return "grammar";
  }
  return "?";
}

Segmenter::Segmenter(SegmenterOptions o) : o_(o) {}

Segmenter::Event Segmenter::frame(std::span<const int16_t> f) {
  const double db = level_db(f);
  if (!started_) {
    floor_db_ = db;
    started_ = true;
  }
  const bool loud = db > floor_db_ + o_.threshold_db && db > o_.min_level_db;
  // A steady engine hum becomes the floor, speech does not.
  // Falling: about 50 ms to follow (a dip between words pulls it down a little, not to the
  // quietest frame of a fluctuating noise); rising: about 3 s, and not inside an utterance.
  if (db < floor_db_) floor_db_ += 0.2 * (db - floor_db_);
  else if (!open_) floor_db_ += 0.003 * (db - floor_db_);
  if (!open_) {
    above_ = loud ? above_ + 1 : 0;
    if (above_ * 10 >= o_.open_ms) {
      open_ = true;
      length_ = above_;
      below_ = 0;
      return Event::open;
    }
    return Event::none;
  }
  ++length_;
  below_ = loud ? 0 : below_ + 1;
  if (below_ * 10 >= o_.close_ms || length_ * 10 >= o_.max_ms) {
    open_ = false;
    above_ = 0;
    // Too short to be a command: a click, a door, a cough.
    return (length_ - below_) * 10 < o_.min_ms ? Event::drop : Event::close;
  }
  return Event::none;
}

UtteranceStream::UtteranceStream(Recognizer& r, SegmenterOptions o)
    : rec_(r), seg_(o), preroll_frames_(std::max(o.preroll_ms, o.open_ms) / 10) {}

void UtteranceStream::close(std::vector<Utterance>& out, bool keep) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_ms();
  std::string text = rec_.end();
  cur_.finalize_ms = ms_since(t0);
  cur_.finalize_cpu_ms = cpu_ms() - c0;
  cur_.decode_cpu_ms += cur_.finalize_ms;
  cur_.end_s = seconds();
  cur_.text = std::move(text);
  if (keep) out.push_back(cur_);
  cur_ = {};
}

void UtteranceStream::push_frame(std::span<const int16_t> f, std::vector<Utterance>& out) {
  const bool was_open = seg_.open();
  const Segmenter::Event e = seg_.frame(f);
  n_samples_ += f.size();
  if (e == Segmenter::Event::open) {
    // The frames that opened the segment and the pre-roll before them go in first.
    const auto t0 = std::chrono::steady_clock::now();
    rec_.begin();
    rec_.feed(preroll_);
    rec_.feed(f);
    cur_.decode_cpu_ms = ms_since(t0);
    cur_.start_s = seconds() - static_cast<double>(preroll_.size() + f.size()) / kRecognizerRate;
    preroll_.clear();
    return;
  }
  if (was_open) {
    const auto t0 = std::chrono::steady_clock::now();
    rec_.feed(f);
    cur_.decode_cpu_ms += ms_since(t0);
    if (e == Segmenter::Event::close || e == Segmenter::Event::drop) close(out, e == Segmenter::Event::close);
    return;
  }
  // Outside speech: keep the pre-roll plus the frames that may yet open a segment.
  preroll_.insert(preroll_.end(), f.begin(), f.end());
  const size_t keep = static_cast<size_t>(preroll_frames_) * Segmenter::kFrame;
  if (preroll_.size() > keep + 4096) preroll_.erase(preroll_.begin(), preroll_.end() - static_cast<std::ptrdiff_t>(keep));
}

std::vector<Utterance> UtteranceStream::feed(std::span<const int16_t> s) {
  std::vector<Utterance> out;
  constexpr size_t F = Segmenter::kFrame;
  size_t i = 0;
  if (!partial_.empty()) {
    const size_t take = std::min(F - partial_.size(), s.size());
    partial_.insert(partial_.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(take));
    i = take;
    if (partial_.size() < F) return out;
    push_frame(partial_, out);
    partial_.clear();
  }
  for (; i + F <= s.size(); i += F) push_frame(s.subspan(i, F), out);
  partial_.assign(s.begin() + static_cast<std::ptrdiff_t>(i), s.end());
  return out;
}

std::vector<Utterance> UtteranceStream::finish() {
  std::vector<Utterance> out;
  if (!partial_.empty()) {
    partial_.resize(Segmenter::kFrame, 0);
    push_frame(partial_, out);
    partial_.clear();
  }
  if (seg_.open()) {
    // The stream ended mid-utterance: what was heard is a command (a file cut right after speech).
    seg_.end_stream();
    close(out, true);
  }
  return out;
}

std::vector<std::string> VoiceTurn::lines() const {
  char b[160];
  std::snprintf(b, sizeof b, "heard [%.2f-%.2f s]: %s", heard.start_s, heard.end_s,
                heard.text.empty() ? "(nothing recognised)" : heard.text.c_str());
  std::vector<std::string> out{b};
  if (turn.intent.empty()) return out;
  for (auto& l : turn.lines()) out.push_back(l);
  std::snprintf(b, sizeof b, "  latency: %.0f ms from end of speech to action (recogniser %.0f ms); CPU %.0f ms",
                end_to_action_ms, heard.finalize_ms, end_to_action_cpu_ms);
  out.push_back(b);
  return out;
}

VoiceCar::VoiceCar(car::CarAssistant& car, Recognizer& r, SegmenterOptions o) : car_(car), stream_(r, o) {}

std::vector<VoiceTurn> VoiceCar::handle(std::vector<Utterance> us) {
  std::vector<VoiceTurn> out;
  for (auto& u : us) {
    VoiceTurn v;
    v.heard = std::move(u);
    if (!v.heard.text.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_ms();
      v.turn = car_.handle(v.heard.text);
      v.end_to_action_ms = v.heard.finalize_ms + ms_since(t0);
      v.end_to_action_cpu_ms = v.heard.finalize_cpu_ms + cpu_ms() - c0;
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<VoiceTurn> VoiceCar::feed(std::span<const int16_t> s) { return handle(stream_.feed(s)); }
std::vector<VoiceTurn> VoiceCar::finish() { return handle(stream_.finish()); }

}  // namespace edgelm::speech
