// WAV in and out, and band-limited resampling to the recogniser's 16 kHz.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>

#include "edgelm/error.hpp"
#include "edgelm/speech.hpp"

namespace edgelm::speech {
namespace {

constexpr size_t kMaxBytes = size_t{1} << 30;

uint32_t u32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

const char* kConvert = "convert it to 16-bit PCM WAV, e.g. sox in.wav -b 16 -e signed-integer out.wav";

// Zeroth-order modified Bessel function of the first kind (the Kaiser window), by its series.
double bessel_i0(double x) {
  double sum = 1, term = 1;
  for (int k = 1; k < 50; ++k) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

}  // namespace

Audio parse_wav(std::span<const uint8_t> b, const std::string& name) {
  auto fail = [&](const std::string& what, const std::string& fix) -> Error {
    return Error(name + ": " + what, fix);
  };
  if (b.empty()) throw fail("empty file", "give a WAV recording (16 kHz mono 16-bit PCM is best)");
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 || std::memcmp(b.data() + 8, "WAVE", 4) != 0)
    throw fail(b.size() < 12 ? "truncated header (under 12 bytes)" : "not a WAV file (no RIFF/WAVE header)",
               kConvert);
  size_t pos = 12;
  bool have_fmt = false;
  int channels = 0, rate = 0, bits = 0;
  while (true) {
    if (pos + 8 > b.size()) {
      if (!have_fmt) throw fail("truncated header: no fmt chunk", kConvert);
      throw fail("no data chunk", "the file holds no audio; record or convert it again");
    }
    const char* id = reinterpret_cast<const char*>(b.data() + pos);
    uint64_t size = u32(b.data() + pos + 4);
    pos += 8;
    const size_t left = b.size() - pos;
    if (std::memcmp(id, "fmt ", 4) == 0) {
      if (size < 16 || size > left) throw fail("truncated or malformed fmt chunk", kConvert);
      const uint8_t* f = b.data() + pos;
      uint16_t format = u16(f);
      channels = u16(f + 2);
      rate = static_cast<int>(std::min<uint32_t>(u32(f + 4), 1u << 30));
      bits = u16(f + 14);
      if (format == 0xFFFE && size >= 26) format = u16(f + 24);  // WAVE_FORMAT_EXTENSIBLE: the sub-format
      if (format != 1)
        throw fail(format == 3 ? "floating-point samples are not supported" : "compressed audio (format " +
                                                                                 std::to_string(format) +
                                                                                 ") is not supported",
                   kConvert);
      if (bits != 16) throw fail(std::to_string(bits) + "-bit samples are not supported", kConvert);
      if (channels < 1 || channels > 16) throw fail("bad channel count " + std::to_string(channels), kConvert);
      if (rate < 1000 || rate > 384000)
        throw fail("unsupported sample rate " + std::to_string(rate) + " Hz", "resample it to 16000 Hz");
      have_fmt = true;
    } else if (std::memcmp(id, "data", 4) == 0) {
      if (!have_fmt) throw fail("data chunk before the fmt chunk", kConvert);
      if (size == 0 || size == 0xFFFFFFFFu) size = left;  // written to a pipe: the length was unknown
      else if (size > left)
        throw fail("truncated: the data chunk says " + std::to_string(size) + " bytes, " + std::to_string(left) +
                       " are there",
                   "the recording was cut off; record or copy it again");
      const size_t frame = 2 * static_cast<size_t>(channels);
      const size_t n = size / frame;
      if (n == 0) throw fail("no audio samples", "the recording is empty");
      Audio a;
      a.sample_rate = rate;
      a.samples.resize(n);
      const uint8_t* d = b.data() + pos;
      for (size_t i = 0; i < n; ++i) {
        int sum = 0;
        for (int c = 0; c < channels; ++c) sum += static_cast<int16_t>(u16(d + i * frame + 2 * c));
        a.samples[i] = static_cast<int16_t>(sum / channels);
      }
      return a;
    } else if (size > left) {
      throw fail("truncated chunk '" + std::string(id, 4) + "'", "the file was cut off; copy it again");
    }
    pos += size + (size & 1);  // chunks are padded to an even size
  }
}

Audio read_wav(const std::string& path) {
  std::vector<uint8_t> bytes;
  auto slurp = [&](std::istream& in) {
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      bytes.insert(bytes.end(), buf, buf + in.gcount());
      if (bytes.size() > kMaxBytes) throw Error(path + ": over 1 GiB of audio", "split the recording");
    }
  };
  if (path == "-") {
    slurp(std::cin);
    return parse_wav(bytes, "stdin");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path, "check the path");
  slurp(f);
  return parse_wav(bytes, path);
}

std::vector<uint8_t> wav_bytes(std::span<const int16_t> s, int rate) {
  const uint32_t data = static_cast<uint32_t>(s.size() * 2);
  std::vector<uint8_t> out;
  out.reserve(44 + data);
  auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i))); };
  auto put16 = [&](uint16_t v) { out.push_back(static_cast<uint8_t>(v)); out.push_back(static_cast<uint8_t>(v >> 8)); };
  auto tag = [&](const char* t) { out.insert(out.end(), t, t + 4); };
  tag("RIFF"); put32(36 + data); tag("WAVE");
  tag("fmt "); put32(16); put16(1); put16(1); put32(static_cast<uint32_t>(rate));
  put32(static_cast<uint32_t>(rate) * 2); put16(2); put16(16);
  tag("data"); put32(data);
  for (int16_t v : s) put16(static_cast<uint16_t>(v));
  return out;
}

std::vector<int16_t> resample(std::span<const int16_t> in, int from, int to) {
  if (from <= 0 || to <= 0) throw Error("bad sample rate", "rates must be positive");
  if (from == to) return {in.begin(), in.end()};
  // Output sample n sits at input time n * from / to. With g = gcd, that is (n * M) / L for
  // L = to / g, M = from / g: L distinct fractional offsets, each with its own filter (polyphase).
  const int g = std::gcd(from, to);
  const int64_t L = to / g, M = from / g;
  const double cutoff = 0.92 * std::min(1.0, static_cast<double>(to) / from);  // of the input Nyquist
  const int half = static_cast<int>(std::ceil(12 / cutoff));                    // taps each side
  const double beta = 8.0, i0b = bessel_i0(beta);
  std::vector<float> table(static_cast<size_t>(L) * 2 * half);
  for (int64_t p = 0; p < L; ++p) {
    const double frac = static_cast<double>(p) / L;
    double norm = 0;
    float* h = &table[static_cast<size_t>(p) * 2 * half];
    for (int k = 0; k < 2 * half; ++k) {
      const double t = (k - half + 1) - frac;  // tap's input index minus the output's time
      const double x = M_PI * cutoff * t;
      const double sinc = t == 0 ? 1 : std::sin(x) / x;
      const double r = t / half;
      const double w = std::abs(r) >= 1 ? 0 : bessel_i0(beta * std::sqrt(1 - r * r)) / i0b;
      h[k] = static_cast<float>(sinc * w);
      norm += h[k];
    }
    for (int k = 0; k < 2 * half; ++k) h[k] = static_cast<float>(h[k] / norm);  // unity gain at DC
  }
  const size_t n_out = static_cast<size_t>((static_cast<int64_t>(in.size()) * L) / M);
  std::vector<int16_t> out(n_out);
  const int64_t n_in = static_cast<int64_t>(in.size());
  for (size_t n = 0; n < n_out; ++n) {
    const int64_t pos = static_cast<int64_t>(n) * M;
    const int64_t base = pos / L;
    const float* h = &table[static_cast<size_t>(pos % L) * 2 * half];
    double acc = 0;
    for (int k = 0; k < 2 * half; ++k) {
      const int64_t i = base + k - half + 1;
      if (i >= 0 && i < n_in) acc += h[k] * in[static_cast<size_t>(i)];
    }
    out[n] = static_cast<int16_t>(std::clamp(std::lround(acc), -32768L, 32767L));
  }
  return out;
}

Audio to_16k(Audio a) {
  if (a.sample_rate == kRecognizerRate) return a;
  Audio r;
  r.samples = resample(a.samples, a.sample_rate, kRecognizerRate);
  return r;
}

}  // namespace edgelm::speech
