// A fixed set of worker threads for data-parallel kernels. Threads are created once; each
// run() publishes a job, the caller works as thread 0, and run() returns when all are done — no
// thread is created per token. Waiting spins briefly (jobs of a forward pass come back to
// back) and then blocks, so an oversubscribed machine or an idle chat does not burn a core.
//
//   edgelm::kernels::ThreadPool pool(4);
//   pool.run([&](int ith, int nth) {
//     auto [b, e] = edgelm::kernels::split_range(n, ith, nth);
//     process_rows(b, e);
//   });
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
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
  void run(const std::function<void(int, int)>& fn);

 private:
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_;   // workers wait here for a new generation
  std::condition_variable done_;   // the caller waits here for pending_ to reach zero
  const std::function<void(int, int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Splits [0, n) into nth nearly equal parts; returns part ith as [begin, end).
inline std::pair<int64_t, int64_t> split_range(int64_t n, int ith, int nth) {
  const int64_t per = (n + nth - 1) / nth;
  const int64_t b = std::min<int64_t>(n, per * ith);
  return {b, std::min<int64_t>(n, b + per)};
}

}  // namespace edgelm::kernels
