#include "server/connection_gate.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

namespace edgelm::server {

using Clock = std::chrono::steady_clock;

namespace {

Clock::duration seconds(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

int millis(double s) { return static_cast<int>(std::clamp(s * 1000.0, 0.0, 1e9)); }

std::string peer_address(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  char host[NI_MAXHOST];
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0 ||
      getnameinfo(reinterpret_cast<sockaddr*>(&sa), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0)
    return "?";
  return host;
}

void endpoint(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  const int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len)
                      : getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (rc != 0 || getnameinfo(reinterpret_cast<sockaddr*>(&sa), len, host, sizeof host, serv, sizeof serv,
                             NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(serv);
}

// The value of a header in a request head (case-insensitive name), or nullopt.
std::optional<std::string> header_value(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, end == std::string_view::npos ? head.npos : end - start);
    const size_t colon = line.find(':');
    if (colon == name.size() &&
        std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return std::string(v);
    }
    pos = end;
  }
  return std::nullopt;
}

// Runs cpp-httplib's per-connection task at once on the accepting thread: the task here only
// hands the socket to the gate, so nothing is queued behind a slow connection.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

}  // namespace

struct GatedServer::Conn {
  int fd = -1;
  std::string client;      // peer address, without the port
  std::string buf;         // bytes received and not yet consumed
  size_t pos = 0;          // consumed prefix of buf (a worker reads from here)
  enum class Phase { idle, head, body } phase = Phase::idle;
  size_t need = 0;         // bytes of buf (from pos) that make the whole request, in Phase::body
  size_t scanned = 0;      // bytes of the head (from pos) already searched for its end
  bool chunked = false;    // awaiting a chunked body: chunk_at is where its next line starts
  bool in_trailers = false;
  size_t chunk_at = 0;
  uint64_t seq = 0;        // order of entering the gate (the oldest is closed first)
  Clock::time_point deadline;
  int served = 0;
  bool eof = false;        // the client sent its last byte

  size_t pending() const { return buf.size() - pos; }
  void compact() {
    if (pos > 0) {
      buf.erase(0, pos);
      pos = 0;
    }
  }
};

namespace {

// The stream cpp-httplib reads a request from and writes its response to: the bytes the gate
// already received first, then the socket (each wait bounded by the read / write timeout).
class GateStream : public httplib::Stream {
 public:
  GateStream(GatedServer::Conn& c, double read_timeout_s, double write_timeout_s)
      : c_(c), read_ms_(millis(read_timeout_s)), write_ms_(millis(write_timeout_s)) {}

  bool is_readable() const override { return c_.pending() > 0 || wait(POLLIN, read_ms_); }
  bool is_writable() const override {
    if (!wait(POLLOUT, write_ms_)) return false;
    pollfd p{c_.fd, POLLIN, 0};  // still connected: not hung up, no end of stream pending
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP))) return false;
    return true;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (c_.pending() == 0) {
      c_.buf.clear();
      c_.pos = 0;
      if (!wait(POLLIN, read_ms_)) return -1;
      char tmp[4096];
      const ssize_t n = recv(c_.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n <= 0) return n == 0 ? 0 : -1;
      c_.buf.assign(tmp, static_cast<size_t>(n));
    }
    const size_t n = std::min(size, c_.pending());
    std::memcpy(ptr, c_.buf.data() + c_.pos, n);
    c_.pos += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!wait(POLLOUT, write_ms_)) return -1;
    return send(c_.fd, ptr, size, MSG_NOSIGNAL);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { endpoint(c_.fd, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { endpoint(c_.fd, false, ip, port); }
  socket_t socket() const override { return c_.fd; }

 private:
  bool wait(short events, int ms) const {
    pollfd p{c_.fd, events, 0};
    for (;;) {
      const int r = poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
    }
  }
  GatedServer::Conn& c_;
  int read_ms_, write_ms_;
};

}  // namespace

GatedServer::GatedServer(GateOptions o) : opts_(o) {
  new_task_queue = [] { return new InlineQueue; };
}

GatedServer::~GatedServer() { stop_threads(); }

void GatedServer::configure(GateOptions o) { opts_ = o; }

bool GatedServer::serve_until_stopped() {
  start_threads();
  const bool ok = listen_after_bind();
  stop_threads();
  return ok;
}

void GatedServer::start_threads() {
  // Connections waiting here are bounded by the descriptor limit, less room for the model's
  // files, the workers' connections and what the process opens besides.
  rlimit nofile{};
  const size_t reserve = opts_.workers + 64;
  max_waiting_ = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur > reserve + 32
                     ? static_cast<size_t>(nofile.rlim_cur) - reserve
                     : 32;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  stopping_ = false;
  reactor_ = std::thread([this] { reactor_loop(); });
  for (size_t i = 0; i < opts_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void GatedServer::stop_threads() {
  if (!reactor_.joinable()) return;
  {
    std::lock_guard lk(work_mu_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  reactor_.join();
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  for (auto& c : ready_) ::close(c->fd);
  ready_.clear();
  {
    std::lock_guard lk(in_mu_);
    for (auto& c : incoming_) ::close(c->fd);
    incoming_.clear();
  }
  ::close(epoll_fd_);
  ::close(wake_fd_);
  epoll_fd_ = wake_fd_ = -1;
}

bool GatedServer::process_and_close_socket(socket_t sock) {
  auto c = std::make_unique<Conn>();
  c->fd = sock;
  c->client = peer_address(sock);
  admit(std::move(c));
  return true;
}

void GatedServer::admit(std::unique_ptr<Conn> c) {
  if (stopping_) {
    ::close(c->fd);
    return;
  }
  {
    std::lock_guard lk(in_mu_);
    incoming_.push_back(std::move(c));
  }
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void GatedServer::close_waiting(int fd, const char* status_line, const char* code, const char* message) {
  if (status_line) {
    // One non-blocking attempt: a client that does not read its answer does not get to wait.
    char body[512];
    const int blen = std::snprintf(body, sizeof body,
                                   R"({"error":{"message":"%s","type":"invalid_request_error","param":null,"code":"%s"}})",
                                   message, code);
    char msg[1024];
    const int n = std::snprintf(msg, sizeof msg,
                                "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                "Connection: close\r\n\r\n%s",
                                status_line, blen, body);
    (void)!send(fd, msg, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  auto it = waiting_.find(fd);
  if (it != waiting_.end()) {
    if (--per_client_[it->second->client] <= 0) per_client_.erase(it->second->client);
    waiting_.erase(it);
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

bool GatedServer::advance(Conn& c, bool readable) {
  const auto now = Clock::now();
  if (readable) {
    char tmp[16384];
    for (;;) {
      const ssize_t n = recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) {
        c.buf.append(tmp, static_cast<size_t>(n));
        if (c.pending() > opts_.max_head_bytes + opts_.max_body_bytes) break;  // judged below
        continue;
      }
      if (n == 0) {  // the client closed, or only its sending side (its request may be whole)
        c.eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        close_waiting(c.fd, nullptr, nullptr, nullptr);
        return false;
      }
      break;
    }
  }
  if (c.phase == Conn::Phase::idle && c.pending() > 0) {
    c.phase = Conn::Phase::head;
    c.deadline = now + seconds(opts_.header_timeout_s);
  }
  if (c.phase == Conn::Phase::head) {
    const std::string_view data(c.buf.data() + c.pos, c.pending());
    // Search only what arrived since the last look (a client dribbling its head byte by byte
    // must not make each byte cost a scan of the whole head).
    const size_t end = data.find("\r\n\r\n", c.scanned > 3 ? c.scanned - 3 : 0);
    c.scanned = data.size();
    if (end == std::string_view::npos) {
      if (data.size() > opts_.max_head_bytes) {
        close_waiting(c.fd, "431 Request Header Fields Too Large", "request_header_too_large",
                      "the request head is larger than this server accepts");
        return false;
      }
      if (c.eof) {
        close_waiting(c.fd, nullptr, nullptr, nullptr);
        return false;
      }
      return true;
    }
    const size_t head_len = end + 4;
    if (head_len > opts_.max_head_bytes) {
      close_waiting(c.fd, "431 Request Header Fields Too Large", "request_header_too_large",
                    "the request head is larger than this server accepts");
      return false;
    }
    const std::string_view head = data.substr(0, end + 2);
    c.need = head_len;
    // The body is awaited here too: a stated length within the limit, or chunks (below). Anything
    // else (Expect: 100-continue, a length that is not a number or too large) goes to a worker
    // now: the request handlers answer those from the head.
    const auto cl = header_value(head, "Content-Length");
    const auto te = header_value(head, "Transfer-Encoding");
    const bool expect = header_value(head, "Expect").has_value();
    if (cl && !te && !expect && !cl->empty() && cl->size() <= 18 &&
        cl->find_first_not_of("0123456789") == std::string::npos) {
      const unsigned long long len = std::stoull(*cl);
      if (len <= opts_.max_body_bytes) c.need = head_len + static_cast<size_t>(len);
    }
    c.chunked = te && !cl && !expect && te->size() == 7 &&
                std::equal(te->begin(), te->end(), "chunked", [](char a, char b) { return std::tolower(a) == b; });
    c.chunk_at = head_len;
    c.phase = Conn::Phase::body;
    c.deadline = now + seconds(opts_.body_timeout_s);
  }
  if (c.phase == Conn::Phase::body && c.chunked) {
    // A chunked body is awaited too, up to its last chunk and trailers; one that is malformed or
    // larger than --max-body goes to a worker now, which refuses it.
    const std::string_view data(c.buf.data() + c.pos, c.pending());
    for (;;) {
      const size_t eol = data.find("\r\n", c.chunk_at);
      if (eol == std::string_view::npos) {
        if (data.size() - c.chunk_at > 1024) c.chunked = false;  // a chunk line that never ends
        break;
      }
      if (c.in_trailers) {  // trailer lines, then an empty line ends the body
        if (eol == c.chunk_at) {
          c.need = eol + 2;
          c.chunked = false;
          break;
        }
        c.chunk_at = eol + 2;
        continue;
      }
      size_t size = 0, i = c.chunk_at;
      for (; i < eol && std::isxdigit(static_cast<unsigned char>(data[i])) && i - c.chunk_at < 8; ++i)
        size = size * 16 + static_cast<size_t>(std::isdigit(static_cast<unsigned char>(data[i]))
                                                   ? data[i] - '0'
                                                   : std::tolower(data[i]) - 'a' + 10);
      if (i == c.chunk_at || (i < eol && data[i] != ';') || size > opts_.max_body_bytes) {
        c.chunked = false;  // malformed or too large: a worker answers it
        break;
      }
      if (size == 0) {
        c.in_trailers = true;
        c.chunk_at = eol + 2;
        continue;
      }
      if (data.size() < eol + 2 + size + 2) break;  // this chunk has not fully arrived
      c.chunk_at = eol + 2 + size + 2;
      if (c.chunk_at > opts_.max_head_bytes + opts_.max_body_bytes) {
        c.chunked = false;
        break;
      }
    }
  }
  if (c.phase == Conn::Phase::body && !c.chunked && c.pending() >= c.need) {
    // Complete: off to a worker.
    const int fd = c.fd;
    auto it = waiting_.find(fd);
    std::unique_ptr<Conn> owned = std::move(it->second);
    if (--per_client_[owned->client] <= 0) per_client_.erase(owned->client);
    waiting_.erase(it);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    owned->phase = Conn::Phase::idle;
    owned->scanned = 0;
    owned->in_trailers = false;
    {
      std::lock_guard lk(work_mu_);
      ready_.push_back(std::move(owned));
    }
    work_cv_.notify_one();
    return false;
  }
  if (c.eof) {
    close_waiting(c.fd, nullptr, nullptr, nullptr);
    return false;
  }
  return true;
}

void GatedServer::reactor_loop() {
  std::vector<epoll_event> events(256);
  auto last_sweep = Clock::now();
  while (!stopping_) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
    std::vector<std::unique_ptr<Conn>> fresh;
    {
      std::lock_guard lk(in_mu_);
      fresh.swap(incoming_);
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == wake_fd_) {
        uint64_t v;
        (void)!::read(wake_fd_, &v, sizeof v);
        continue;
      }
      auto it = waiting_.find(fd);
      if (it != waiting_.end()) advance(*it->second, true);
    }
    for (auto& c : fresh) {
      const auto now = Clock::now();
      // Over a bound: the oldest waiting connection of the same client (or of all, for the
      // descriptor bound) makes room.
      const auto evict_oldest = [&](const std::string* client) {
        Conn* oldest = nullptr;
        for (auto& [fd, w] : waiting_)
          if ((!client || w->client == *client) && (!oldest || w->seq < oldest->seq)) oldest = w.get();
        if (!oldest) return false;
        if (oldest->phase == Conn::Phase::idle && oldest->served > 0)  // kept alive, between requests
          close_waiting(oldest->fd, nullptr, nullptr, nullptr);
        else
          close_waiting(oldest->fd, "429 Too Many Requests", "too_many_connections",
                        "this client has too many unfinished requests open; send each request whole");
        return true;
      };
      while (per_client_[c->client] >= opts_.max_client_conns && evict_oldest(&c->client)) {
      }
      while (waiting_.size() >= max_waiting_ && evict_oldest(nullptr)) {
      }
      c->seq = next_seq_++;
      c->deadline = now + seconds(opts_.idle_timeout_s);
      const int fd = c->fd;
      Conn& ref = *c;
      waiting_.emplace(fd, std::move(c));
      ++per_client_[ref.client];
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      advance(ref, false);  // a kept-alive connection may hold its next request already
    }
    const auto now = Clock::now();
    if (now - last_sweep >= std::chrono::milliseconds(100)) {
      last_sweep = now;
      std::vector<std::pair<int, Conn::Phase>> expired;
      for (auto& [fd, w] : waiting_)
        if (w->deadline <= now) expired.emplace_back(fd, w->phase);
      for (auto [fd, phase] : expired) {
        if (phase == Conn::Phase::idle)
          close_waiting(fd, nullptr, nullptr, nullptr);
        else
          close_waiting(fd, "408 Request Timeout", "request_timeout",
                        phase == Conn::Phase::head ? "the request head did not arrive in time (--header-timeout)"
                                                   : "the request body did not arrive in time (--body-timeout)");
      }
    }
  }
  for (auto& [fd, w] : waiting_) {
    shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  waiting_.clear();
  per_client_.clear();
}

void GatedServer::worker_loop() {
  for (;;) {
    std::unique_ptr<Conn> c;
    {
      std::unique_lock lk(work_mu_);
      work_cv_.wait(lk, [&] { return !ready_.empty() || stopping_; });
      if (ready_.empty()) return;
      c = std::move(ready_.front());
      ready_.pop_front();
    }
    serve(std::move(c));
  }
}

void GatedServer::serve(std::unique_ptr<Conn> c) {
  bool connection_closed = false;
  const bool last = c->served + 1 >= opts_.keep_alive_max || stopping_;
  bool ok;
  {
    GateStream strm(*c, opts_.read_timeout_s, opts_.write_timeout_s);
    ok = process_request(strm, last, connection_closed, nullptr);
  }
  ++c->served;
  if (!ok || connection_closed || last || stopping_) {
    shutdown(c->fd, SHUT_RDWR);
    ::close(c->fd);
    return;
  }
  c->compact();
  admit(std::move(c));
}

}  // namespace edgelm::server
