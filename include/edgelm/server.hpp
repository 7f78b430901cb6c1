// An OpenAI-compatible HTTP server for one model: /v1/chat/completions, /v1/completions
// (streaming and not), /v1/models, /health, /metrics and a chat page at /. Requests share
// `parallel` slots that decode together in one batched forward pass per step.
//
//   auto model = edgelm::Model::load("smollm2");
//   edgelm::HttpServer server(model, {.port = 8080, .parallel = 4});
//   int port = server.bind();          // throws edgelm::Error if the address is taken
//   server.listen();                   // until server.stop() from another thread
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/model.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"

namespace edgelm {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (bind() returns it)
  int parallel = 1;              // slots decoding concurrently
  int queue = -1;                // requests that may wait for a slot; < 0: 4 x parallel
  std::string api_key;           // non-empty: /v1/* and /metrics need "Authorization: Bearer KEY"
  std::string model_name;        // the id clients see; empty: the model's name
  // Other ids a request's "model" may name besides model_name (e.g. the cache name it was
  // loaded by); any other id is answered 404 model_not_found.
  std::vector<std::string> model_aliases;
  // Web origins (scheme://host[:port], or "*") whose pages may call the API; none by default,
  // so a page on another site can neither read replies nor send a JSON request.
  std::vector<std::string> cors_origins;
  int backlog = 512;             // connections the kernel queues before the server accepts them
  size_t max_body_bytes = 1 << 20;
  // Slow clients: a request is read in full before a worker thread takes it, within these
  // deadlines (seconds), and one client address may hold at most max_client_conns connections
  // whose request is still arriving (a new one beyond it closes its oldest).
  double idle_timeout_s = 5;     // no byte of a request yet (new or kept-alive connection)
  double header_timeout_s = 10;  // the request head, from its first byte
  double body_timeout_s = 30;    // the body, from the end of the head
  int max_client_conns = 256;
  SessionOptions session{};      // n_ctx is per slot; n_seq comes from parallel
  // The files of session.lora, in order, as GET /lora-adapters lists them. A request may set
  // each adapter's scale ("lora": [{"id": i, "scale": s}]); POST /lora-adapters sets the
  // scales of requests that do not.
  std::vector<std::string> lora_paths;
  // Speculative decoding in every slot (see server::EngineOptions); empty: plain decoding.
  std::function<std::unique_ptr<Drafter>()> make_drafter{};
  SpeculativeOptions speculative{};
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<const Model> model, ServerOptions opts);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket and returns its port. Throws edgelm::Error when it cannot.
  int bind();
  // Serves until stop(); returns after the open requests have ended.
  void listen();
  void stop();
  const std::string& model_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm
