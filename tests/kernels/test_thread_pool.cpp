// The low-latency thread pool: jobs back to back (workers spinning), jobs after idle gaps
// (workers asleep and woken), barriers between the phases of one job.
#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/thread_pool.hpp"

namespace edgelm::kernels {
namespace {

TEST(ThreadPoolLatency, JobsAfterIdleGapsWakeSleepingWorkers) {
  for (int n : {2, 3, 5}) {  // 5 threads: more than the cores CI machines have
    ThreadPool pool(n);
    for (int round = 0; round < 12; ++round) {
      // Longer than the spin phase: the workers have gone to sleep and must be woken.
      std::this_thread::sleep_for(std::chrono::milliseconds(round % 3 == 0 ? 8 : 1));
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      pool.run([&](int ith, int nth) {
        ASSERT_EQ(nth, n);
        seen[static_cast<size_t>(ith)].fetch_add(1);
      });
      for (int i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "thread " << i << " round " << round;
    }
  }
}

TEST(ThreadPoolLatency, ManyBackToBackJobs) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 1000; ++round)
    pool.run([&](int ith, int) { total.fetch_add(ith + 1, std::memory_order_relaxed); });
  EXPECT_EQ(total.load(), 1000 * (1 + 2 + 3));
}

TEST(ThreadPoolLatency, BarrierSeparatesPhases) {
  for (int n : {1, 2, 4}) {
    ThreadPool pool(n);
    const int64_t len = 1000;
    std::vector<int64_t> a(len), b(len), c(len);
    for (int round = 0; round < 50; ++round) {
      pool.run([&](int ith, int nth) {
        auto [lo, hi] = split_range(len, ith, nth);
        for (int64_t i = lo; i < hi; ++i) a[i] = i + round;
        pool.barrier();
        // Phase two reads what the other threads wrote in phase one (reversed index).
        for (int64_t i = lo; i < hi; ++i) b[i] = a[len - 1 - i] * 2;
        pool.barrier();
        for (int64_t i = lo; i < hi; ++i) c[i] = b[len - 1 - i] + 1;
      });
      for (int64_t i = 0; i < len; ++i) ASSERT_EQ(c[i], (i + round) * 2 + 1) << "n=" << n << " i=" << i;
    }
  }
}

TEST(ThreadPoolLatency, AcceptsStdFunctionAndLambdas) {
  ThreadPool pool(2);
  int calls[2] = {0, 0};
  const std::function<void(int, int)> f = [&](int ith, int) { ++calls[ith]; };
  pool.run(f);
  pool.run([&](int ith, int) { ++calls[ith]; });
  EXPECT_EQ(calls[0], 2);
  EXPECT_EQ(calls[1], 2);
}

TEST(SplitRangeAligned, WholeTilesCoverTheRange) {
  for (int64_t n : {0, 1, 5, 64, 1000, 1537}) {
    for (int nth : {1, 2, 3, 7}) {
      for (int64_t align : {1, 4, 16}) {
        int64_t next = 0;
        for (int i = 0; i < nth; ++i) {
          auto [b, e] = split_range_aligned(n, i, nth, align);
          if (b >= e) continue;
          EXPECT_EQ(b, next);
          EXPECT_EQ(b % align, 0);
          next = e;
        }
        EXPECT_EQ(next, n);
      }
    }
  }
}

}  // namespace
}  // namespace edgelm::kernels
