// edgelm serve: an OpenAI-compatible HTTP server with a chat page.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "edgelm/error.hpp"
#include "edgelm/model.hpp"
#include "edgelm/server.hpp"

namespace edgelm::cli {
namespace {

struct ServeArgs {
  ModelOptions mo;
  ServerOptions so;
  DraftOptions draft;
};

void serve(ServeArgs& a) {
  // A client that disconnects mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM go to one thread that stops the server cleanly (no work in a signal handler).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // inherited by every thread started below

  auto model = load_model(a.mo);
  a.so.session = a.mo.session;
  a.so.lora_paths = a.mo.lora;
  a.so.make_drafter = drafter_factory(a.draft, model, a.mo.session);
  a.so.speculative = a.draft.spec;
  // A request may name the model as -m named it, or by its file name.
  const std::filesystem::path file(model->path());
  for (const std::string& id : {a.mo.model, file.filename().string(), file.stem().string()})
    if (!id.empty()) a.so.model_aliases.push_back(id);
  HttpServer server(model, a.so);
  const int port = server.bind();
  std::fprintf(stderr,
               "edgelm serve: listening on http://%s:%d (model %s, %d slot%s of %d tokens%s) — Ctrl-C stops\n",
               a.so.host.find(':') != std::string::npos ? ("[" + a.so.host + "]").c_str() : a.so.host.c_str(),
               port, server.model_name().c_str(), a.so.parallel, a.so.parallel == 1 ? "" : "s",
               a.mo.session.n_ctx, a.so.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);

  std::thread waiter([&server, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    server.stop();
  });
  server.listen();
  server.stop();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if no signal came
  waiter.join();
  std::fprintf(stderr, "edgelm serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "serve the model over an OpenAI-compatible HTTP API, with a chat page at /");
  add_model_options(*cmd, a->mo);
  add_draft_options(*cmd, a->draft);
  cmd->add_option("--host", a->so.host, "address to listen on (loopback by default)")->capture_default_str();
  cmd->add_option("--port", a->so.port, "TCP port (0: any free port, printed at start)")
      ->check(Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("-P,--parallel", a->so.parallel, "requests decoded together, each in its own slot (KV cache of -c tokens)")
      ->check(Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--queue", a->so.queue, "requests that may wait for a slot before 503 (default: 4 x --parallel)")
      ->check(Range(0, 4096));
  cmd->add_option("--api-key", a->so.api_key, "require 'Authorization: Bearer KEY' on /v1/* and /metrics");
  cmd->add_option("--alias", a->so.model_name, "model id shown to clients (default: the file name)");
  cmd->add_option("--cors-origin", a->so.cors_origins,
                  "a web origin (https://host[:port], or *) whose pages may call the API; repeatable. None by default")
      ->allow_extra_args(false);
  cmd->add_option("--backlog", a->so.backlog, "connections queued before the server accepts them (a burst beyond it is refused)")
      ->check(Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--max-body", a->so.max_body_bytes, "largest request body in bytes")
      ->check(Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", a->so.idle_timeout_s,
                  "seconds a connection may stay open before the first byte of a request (new or kept alive)")
      ->check(Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--header-timeout", a->so.header_timeout_s,
                  "seconds a request's head may take to arrive, from its first byte (then 408)")
      ->check(Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout", a->so.body_timeout_s,
                  "seconds a request body may take to arrive after the head (then 408)")
      ->check(Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--max-client-conns", a->so.max_client_conns,
                  "connections one client address may have with a request still arriving; a new one beyond "
                  "it closes the oldest (429)")
      ->check(Range(1, 1 << 20))
      ->capture_default_str();
  cmd->callback([a] { serve(*a); });
}

}  // namespace edgelm::cli
