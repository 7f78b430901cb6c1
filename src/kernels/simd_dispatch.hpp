// Looks up one Highway target's entry in an HWY_EXPORT table. HWY_DYNAMIC_DISPATCH only ever
// calls the best target; the kernel sets need every target the CPU supports (tests run them
// all, EDGELM_SIMD picks a lesser one), so this mirrors hwy::ChosenTarget::GetIndex for a
// single target. Include after hwy/highway.h, in a file compiled with the same HWY_TARGETS.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hwy/highway.h"

namespace edgelm::kernels::simd {

#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0  // one target: HWY_EXPORT makes a one-entry table
inline size_t dispatch_index(int64_t /*target*/) { return 0; }
#else
inline size_t dispatch_index(int64_t target) {
  const int64_t mask =
      (HWY_CHOSEN_TARGET_SHIFT(target) | HWY_CHOSEN_TARGET_MASK_SCALAR) & HWY_CHOSEN_TARGET_MASK_TARGETS;
  return hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(mask));
}
#endif

// Targets compiled here that the CPU supports, best (lowest bit) first.
inline std::vector<int64_t> supported_compiled_targets() {
  std::vector<int64_t> out;
  for (int64_t t = hwy::SupportedTargets() & HWY_TARGETS; t != 0; t &= t - 1) out.push_back(t & -t);
  return out;
}

}  // namespace edgelm::kernels::simd
