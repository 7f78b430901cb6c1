// Per-context symbol counts with additive smoothing and forgetting: the predictive probability of
// symbol s in context c is (n[c][s] + prior) / (n[c] + prior * levels); when a context's total
// reaches `cap`, its counts are halved, so old behaviour fades at a rate set by the cap.
// 8-bit counts keep a table of 24 contexts x 16 symbols at 432 bytes.
#pragma once
#include <cstdint>

namespace edgelm::anomaly {

inline constexpr int kMaxLevels = 16;

template <int Contexts>
class CountTable {
 public:
  float prob(int ctx, int sym, int levels, float prior) const {
    return (static_cast<float>(count_[ctx][sym]) + prior) /
           (static_cast<float>(total_[ctx]) + prior * static_cast<float>(levels));
  }
  // cap must be in [2, 255].
  void learn(int ctx, int sym, int cap) {
    if (total_[ctx] + 1 > cap) {
      uint16_t t = 0;
      for (auto& c : count_[ctx]) c = static_cast<uint8_t>(c / 2), t = static_cast<uint16_t>(t + c);
      total_[ctx] = t;
    }
    ++count_[ctx][sym];
    ++total_[ctx];
  }
  int total(int ctx) const { return total_[ctx]; }

 private:
  uint8_t count_[Contexts][kMaxLevels] = {};
  uint16_t total_[Contexts] = {};
};

}  // namespace edgelm::anomaly
