#include "kernels/thread_pool.hpp"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace edgelm::kernels {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// How long an idle worker keeps spinning before it sleeps. Long enough to bridge the gap
// between two decode steps (sampling, streaming a token), short enough that an idle session
// (a chat waiting for the user) leaves the CPU alone.
constexpr auto kSpinBeforeSleep = std::chrono::milliseconds(3);

// Waits until `a` no longer holds `old`: pause-spin briefly (a balanced job's threads finish
// within microseconds of each other), then yield a few times, then block in the kernel
// (C++20 atomic wait: a futex on Linux). Blocking matters when the machine is oversubscribed:
// a spinning waiter would otherwise hold the core that the thread it waits for needs.
template <class T>
void wait_while_equal(const std::atomic<T>& a, T old) {
  for (int i = 0; i < 4096; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    cpu_relax();
  }
  for (int i = 0; i < 8; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    std::this_thread::yield();
  }
  while (a.load(std::memory_order_acquire) == old) a.wait(old, std::memory_order_acquire);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  threads_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    sleep_cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_impl(JobFn call, void* ctx) {
  if (n_threads_ == 1) {
    call(ctx, 0, 1);
    return;
  }
  job_call_ = call;
  job_ctx_ = ctx;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the worker's sleepers_ increment: either the worker sees the new
  // generation before it sleeps, or we see it sleeping and wake it.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    sleep_cv_.notify_all();
  }
  call(ctx, 0, n_threads_);
  // Only the worker that brings pending_ to zero notifies; waiting on a value that has since
  // changed returns at once, so no decrement is missed.
  for (int left; (left = pending_.load(std::memory_order_acquire)) != 0;) wait_while_equal(pending_, left);
}

void ThreadPool::barrier() {
  if (n_threads_ == 1) return;
  const uint32_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_threads_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.store(phase + 1, std::memory_order_release);
    phase_.notify_all();
    return;
  }
  wait_while_equal(phase_, phase);
}

void ThreadPool::worker(int ith) {
  // Generation 0 is the pool's state before any job: a worker that starts late must still run
  // a job published before it first looked.
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
      unsigned spins = 0;
      while ((g = generation_.load(std::memory_order_acquire)) == seen) {
        if (++spins < 2048) cpu_relax(); else std::this_thread::yield();
        if ((spins & 255u) != 0) continue;
        if (std::chrono::steady_clock::now() < spin_until) continue;
        std::unique_lock<std::mutex> lock(sleep_mu_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (generation_.load(std::memory_order_seq_cst) == seen) sleep_cv_.wait(lock);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = g;
    job_call_(job_ctx_, ith, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace edgelm::kernels
