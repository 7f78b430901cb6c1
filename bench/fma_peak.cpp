// The float32 fused multiply-add peak of this CPU, per core: 12 independent chains of 8-wide
// FMAs (enough to hide the latency on every x86 core with AVX2), on 1 thread and then on every
// hardware thread at once. It bounds what any float32 GEMM, ours or PyTorch's, can reach here.
//
//   g++ -O2 -mavx2 -mfma -pthread bench/fma_peak.cpp -o /tmp/fma_peak && /tmp/fma_peak
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

double gflops() {
  __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f), a2 = _mm256_set1_ps(0.12f),
         a3 = _mm256_set1_ps(0.13f), a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f),
         a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f), a8 = _mm256_set1_ps(0.18f),
         a9 = _mm256_set1_ps(0.19f), a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
  constexpr long kIters = 200000000;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIters; ++i) {
#define EDGELM_FMA(x) x = _mm256_fmadd_ps(x, b, c);
    EDGELM_FMA(a0) EDGELM_FMA(a1) EDGELM_FMA(a2) EDGELM_FMA(a3) EDGELM_FMA(a4) EDGELM_FMA(a5)
    EDGELM_FMA(a6) EDGELM_FMA(a7) EDGELM_FMA(a8) EDGELM_FMA(a9) EDGELM_FMA(a10) EDGELM_FMA(a11)
#undef EDGELM_FMA
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  r = _mm256_add_ps(r, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  volatile float sink = _mm256_cvtss_f32(r);  // keeps the chains alive
  (void)sink;
  return kIters * 12.0 * 16.0 / s / 1e9;  // 8 lanes x (multiply + add) per FMA
}

}  // namespace

int main() {
  std::printf("1 thread: %.1f GFLOP/s\n", gflops());
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  std::vector<double> g(n);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i) ts.emplace_back([&g, i] { g[i] = gflops(); });
  for (auto& t : ts) t.join();
  double sum = 0;
  for (double x : g) sum += x;
  std::printf("%u threads: %.1f GFLOP/s in all\n", n, sum);
}
