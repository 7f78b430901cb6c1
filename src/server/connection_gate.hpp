// The connection front of `edgelm serve`: a request reaches a worker thread only once it has
// fully arrived.
//
// cpp-httplib gives each accepted connection a worker thread that then waits for the request's
// bytes, so a few dozen clients that send a byte every couple of seconds (or half a request and
// nothing more) hold every worker and /health stops answering. Here one thread (epoll) holds
// every connection whose request is still arriving: it reads the head and the body (sized by a
// Content-Length within --max-body, or chunked); only a complete request is handed to a worker,
// which runs cpp-httplib's request processing on it (httplib::Server::process_request), and a
// keep-alive connection comes back here to wait for its next request. A slow client therefore
// costs a socket and its buffered bytes, never a thread, and a request sent in one piece (a
// /health probe) is served as soon as a worker is free, whatever else is connected.
//
// Deadlines (each closes the connection; a started request gets a 408 first):
//   idle    a connection with no byte of a request yet (new, or kept alive after one)
//   header  a request's head, from its first byte
//   body    a body, from the end of its head
// Bound: at most `max_client_conns` connections from one address wait here at once; a new one
// beyond it closes that address's oldest waiting connection (answered 429). Closing the oldest
// rather than refusing the newest matters because clients often share an address (loopback,
// a reverse proxy, a NAT): refusing new connections would let one slow client lock out every
// other client of its address, /health probes included, while closing the oldest lets any
// request that is sent promptly through. The process's descriptor limit bounds the total the
// same way (oldest first).
#pragma once
#include <httplib.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace edgelm::server {

struct GateOptions {
  double idle_timeout_s = 5;
  double header_timeout_s = 10;
  double body_timeout_s = 30;
  int max_client_conns = 256;
  size_t max_body_bytes = 1 << 20;
  size_t max_head_bytes = 64 * 1024;  // beyond it the request is answered 431
  int keep_alive_max = 100;           // requests on one connection
  size_t workers = 16;
  double read_timeout_s = 5;   // a worker's wait for more bytes (chunked bodies)
  double write_timeout_s = 5;   // a worker's wait for a client to take response bytes
};

// An httplib::Server whose connections go through the gate. Use it like httplib::Server, then
// call serve_until_stopped() instead of listen_after_bind().
class GatedServer : public httplib::Server {
 public:
  explicit GatedServer(GateOptions o);
  ~GatedServer() override;
  void configure(GateOptions o);  // before serving
  // Runs cpp-httplib's accept loop until stop(), then closes waiting connections and returns
  // once every worker has finished its request.
  bool serve_until_stopped();

  struct Conn;

 private:
  bool process_and_close_socket(socket_t sock) override;

  void admit(std::unique_ptr<Conn> c);  // from any thread
  void reactor_loop();
  void worker_loop();
  void serve(std::unique_ptr<Conn> c);  // on a worker
  // The reactor's side: reads what arrived, dispatches or closes. Returns false when closed.
  bool advance(Conn& c, bool readable);
  void close_waiting(int fd, const char* status_line, const char* code, const char* message);
  void start_threads();
  void stop_threads();

  GateOptions opts_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  size_t max_waiting_ = 0;
  uint64_t next_seq_ = 0;  // reactor thread only
  std::mutex in_mu_;
  std::vector<std::unique_ptr<Conn>> incoming_;
  std::unordered_map<int, std::unique_ptr<Conn>> waiting_;  // reactor thread only
  std::unordered_map<std::string, int> per_client_;         // reactor thread only
  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<std::unique_ptr<Conn>> ready_;
  std::atomic<bool> stopping_{false};
  std::thread reactor_;
  std::vector<std::thread> workers_;
};

}  // namespace edgelm::server
