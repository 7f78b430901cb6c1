// A fixed set of worker threads for data-parallel kernels, built for low-latency decode.
// Threads are created once; run() publishes a job, the caller works as thread 0, and run()
// returns when all threads are done — no thread is created per token. Idle workers spin (with
// a pause instruction) for a short while before they sleep, so the back-to-back jobs of a
// forward pass start within a fraction of a microsecond instead of paying a futex wake-up each.
// barrier() lets one job run several dependent phases without returning to the caller.
//
//   edgelm::kernels::ThreadPool pool(4);
//   pool.run([&](int ith, int nth) {
//     auto [b, e] = edgelm::kernels::split_range(n, ith, nth);
//     phase_one(b, e);
//     pool.barrier();  // every thread has finished phase one
//     phase_two(b, e);
//   });
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgelm::kernels {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(ith, nth) once for each ith in [0, nth) in parallel and waits for all of them.
  // Not reentrant: fn must not call run() on the same pool.
  template <class F>
  void run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_impl([](void* ctx, int ith, int nth) { (*static_cast<Fn*>(ctx))(ith, nth); },
             const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Called by every thread of the current job: returns once all nth threads have called it.
  void barrier();

 private:
  using JobFn = void (*)(void*, int, int);
  void run_impl(JobFn call, void* ctx);
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  // The job being run; written by the caller before `generation_` is bumped (release) and read
  // by the workers after they see the new generation (acquire).
  JobFn job_call_ = nullptr;
  void* job_ctx_ = nullptr;
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint32_t> phase_{0};
  std::atomic<bool> stop_{false};
  // Sleeping (after the spin phase) uses a plain mutex + condition variable.
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
};

// Splits [0, n) into nth nearly equal parts; returns part ith as [begin, end).
inline std::pair<int64_t, int64_t> split_range(int64_t n, int ith, int nth) {
  const int64_t per = (n + nth - 1) / nth;
  const int64_t b = std::min<int64_t>(n, per * ith);
  return {b, std::min<int64_t>(n, b + per)};
}

// Like split_range, but every boundary is a multiple of `align` (except the end), so SIMD
// kernels that work on `align` rows at a time get whole tiles.
inline std::pair<int64_t, int64_t> split_range_aligned(int64_t n, int ith, int nth, int64_t align) {
  const int64_t tiles = (n + align - 1) / align;
  auto [b, e] = split_range(tiles, ith, nth);
  return {std::min(n, b * align), std::min(n, e * align)};
}

}  // namespace edgelm::kernels
