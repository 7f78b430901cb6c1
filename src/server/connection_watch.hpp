// Notices that an HTTP client went away while its request is still being worked on.
// cpp-httplib 0.11 gives a handler no socket and reports a closed peer as writable, so the
// watch finds the connection's socket by its address pair and peeks at it.
//
//   ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
//   if (watch.closed()) job->cancel();
#pragma once
#include <string>

namespace edgelm::server {

class ConnectionWatch {
 public:
  ConnectionWatch(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);
  // True once the peer has closed (or reset) the connection. False when the socket could not
  // be identified: an unknown state never cancels anything.
  bool closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace edgelm::server
