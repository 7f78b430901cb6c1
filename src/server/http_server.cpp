// The HTTP front of `edgelm serve`: routes, authentication, error bodies, server-sent events.
// Generation itself is the Engine's; this file only turns requests into jobs and jobs into
// responses.
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <random>

#include "edgelm/assistant.hpp"
#include "edgelm/chat_template.hpp"
#include "edgelm/error.hpp"
#include "edgelm/server.hpp"
#include "server/api.hpp"
#include "server/connection_gate.hpp"
#include "server/connection_watch.hpp"
#include "server/engine.hpp"
#include "server/metrics.hpp"
#include "server/web_page.hpp"

namespace edgelm {

using nlohmann::json;
using server::ApiError;
using server::CompletionRequest;
using server::Job;
using server::JobResult;
using server::ResponseIds;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);  // how often a waiting handler looks at its client

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status(), e.body()); }

// The media type of a request body, lower case, without parameters ("application/json").
std::string media_type(const httplib::Request& req) {
  std::string t = req.get_header_value("Content-Type");
  t = t.substr(0, t.find(';'));
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t") + 1);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return t;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

std::string default_model_name(const Model& m) {
  std::string stem = std::filesystem::path(m.path()).stem().string();
  return stem.empty() ? m.config().name : stem;
}

// A model without a chat template still serves /v1/completions.
std::unique_ptr<ChatFormat> chat_format_or_null(const Model& m) {
  try {
    return make_chat_format(m);
  } catch (const Error&) {
    return nullptr;
  }
}

}  // namespace

struct HttpServer::Impl {
  Impl(std::shared_ptr<const Model> m, ServerOptions o)
      : model(std::move(m)), opts(std::move(o)),
        engine(model, {.n_slots = opts.parallel,
                       .queue_max = opts.queue < 0 ? 4 * opts.parallel : opts.queue,
                       .session = opts.session,
                       .make_drafter = opts.make_drafter,
                       .speculative = opts.speculative}),
        format(chat_format_or_null(*model)),
        name(opts.model_name.empty() ? default_model_name(*model) : opts.model_name),
        started(std::chrono::steady_clock::now()), created(static_cast<int64_t>(std::time(nullptr))),
        rng(std::random_device{}()) {
    for (const LoraUse& u : opts.session.lora) lora_default.push_back(u.scale);
    if (const auto t = model->chat_template(); t && server::template_writes_hermes_tools(*t)) {
      try {
        tool_template.emplace(ChatTemplate::parse(*t));
      } catch (const ChatTemplateError&) {
        // Tools are then described in the system prompt instead.
      }
    }
    setup();
  }

  std::shared_ptr<const Model> model;
  ServerOptions opts;
  server::Engine engine;
  std::unique_ptr<ChatFormat> format;
  // The model's chat template when it writes tools and tool calls itself (Hermes format).
  std::optional<ChatTemplate> tool_template;
  std::string name;
  std::chrono::steady_clock::time_point started;
  int64_t created;
  server::GatedServer svr{server::GateOptions{}};
  server::HttpCounters http_counts;
  std::mutex rng_mu;
  std::mt19937_64 rng;
  std::atomic<uint64_t> next_id{0};
  std::mutex lora_mu;
  std::vector<float> lora_default;  // each adapter's scale for requests without "lora"
  bool bound = false;
  int listen_fd = -1;  // the listening socket (set_socket_options sees it before bind)

  uint64_t random() {
    std::lock_guard lk(rng_mu);
    return rng();
  }

  ResponseIds new_ids(bool chat) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%08llx", static_cast<unsigned long long>(random()),
                  static_cast<unsigned long long>(next_id.fetch_add(1) & 0xffffffffu));
    return {std::string(chat ? "chatcmpl-" : "cmpl-") + buf, static_cast<int64_t>(std::time(nullptr)), name};
  }

  // Each adapter's scale for a request: its "lora" list (adapters not listed: 0), or the
  // server's current scales. Throws ApiError (400) for an id the server does not have.
  std::vector<float> lora_scales(const std::optional<std::vector<server::LoraScale>>& req) {
    std::lock_guard lk(lora_mu);
    if (!req) return lora_default;
    std::vector<float> s(lora_default.size(), 0.0f);
    for (const server::LoraScale& e : *req) {
      if (e.id < 0 || e.id >= static_cast<int64_t>(s.size()))
        throw ApiError(400, "there is no LoRA adapter " + std::to_string(e.id) + ": this server has " +
                                std::to_string(s.size()) + " (GET /lora-adapters lists them; start it with --lora FILE)",
                       "lora", "invalid_value");
      s[static_cast<size_t>(e.id)] = e.scale;
    }
    return s;
  }
  nlohmann::json lora_list() {
    std::lock_guard lk(lora_mu);
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < lora_default.size(); ++i)
      a.push_back({{"id", i}, {"path", i < opts.lora_paths.size() ? opts.lora_paths[i] : ""}, {"scale", lora_default[i]}});
    return a;
  }

  void setup();
  bool authorized(const httplib::Request& req) const;
  bool known_model(const std::string& id) const {
    return id == name || std::find(opts.model_aliases.begin(), opts.model_aliases.end(), id) != opts.model_aliases.end();
  }
  // The Access-Control-Allow-Origin value for a request's Origin ("" when it may not call).
  std::string allowed_origin(const httplib::Request& req) const {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return "";
    for (const std::string& o : opts.cors_origins)
      if (o == "*" || o == origin) return origin;
    return "";
  }
  std::vector<int32_t> prompt_tokens(const CompletionRequest& r) const;
  void handle_generation(const httplib::Request& req, httplib::Response& res, bool chat);
  json models_json() const {
    return {{"object", "list"}, {"data", json::array({model_json()})}};
  }
  json model_json() const {
    return {{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "edgelm"},
            {"meta", {{"n_ctx_slot", engine.n_ctx()}, {"slots", engine.n_slots()},
                      {"n_params", model->n_params()}, {"architecture", model->config().arch}}}};
  }
};

bool HttpServer::Impl::authorized(const httplib::Request& req) const {
  if (opts.api_key.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0) return false;
  return constant_time_equal(h.substr(prefix.size()), opts.api_key);
}

std::vector<int32_t> HttpServer::Impl::prompt_tokens(const CompletionRequest& r) const {
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> ids;
  if (r.chat) {
    if (!format)
      throw ApiError(400, "this model has no chat template; use /v1/completions with a prompt", "messages",
                     "chat_not_supported");
    std::string text;
    const bool tool_history = std::any_of(r.messages.begin(), r.messages.end(), [](const server::RequestMessage& m) {
      return m.role == "tool" || !m.tool_calls.empty();
    });
    try {
      if (tool_template && (r.tools.active() || tool_history)) {
        const auto piece = [&](int32_t id) { return id >= 0 ? tok.text(id) : std::string(); };
        text = server::render_with_template(*tool_template, piece(tok.bos()), piece(tok.eos()), r.messages, r.tools);
      } else {
        text = format->render(server::plain_conversation(r.messages, r.tools), /*add_generation_prompt=*/true);
      }
    } catch (const ChatTemplateError& e) {
      throw ApiError(400, "the model's chat template rejected the messages: " + e.detail(), "messages");
    }
    ids = tok.encode(text, tok.add_bos(), /*parse_special=*/true);
  } else if (r.prompt_ids) {
    for (int32_t id : *r.prompt_ids)
      if (id >= tok.n_vocab())
        throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary (" +
                                std::to_string(tok.n_vocab()) + " tokens)", "prompt");
    ids = *r.prompt_ids;
  } else {
    ids = tok.encode(r.prompt, tok.add_bos(), /*parse_special=*/true);  // as `edgelm run` does
  }
  if (ids.empty()) throw ApiError(400, "the prompt produced no tokens", r.chat ? "messages" : "prompt");
  if (static_cast<int>(ids.size()) >= engine.n_ctx())
    throw ApiError(400,
                   "the prompt has " + std::to_string(ids.size()) + " tokens but a slot's context holds " +
                       std::to_string(engine.n_ctx()) + " (and one more is needed for the reply); shorten it, "
                       "or start the server with a larger -c",
                   r.chat ? "messages" : "prompt", "context_length_exceeded");
  return ids;
}

// Streaming state shared between the handler and cpp-httplib's content provider.
struct StreamState {
  std::shared_ptr<Job> job;
  CompletionRequest req;
  ResponseIds ids;
  server::ConnectionWatch watch;
  server::Engine* engine;
  bool opened = false;
  std::optional<server::ToolCallParser> tools;  // when the reply may hold tool calls
};

void HttpServer::Impl::handle_generation(const httplib::Request& req, httplib::Response& res, bool chat) {
  CompletionRequest r = server::parse_completion_request(req.body, chat);
  if (!r.model.empty() && !known_model(r.model))
    throw ApiError(404, "the model '" + r.model + "' does not exist; this server has '" + name + "'", "model",
                   "model_not_found");
  server::GenerationParams gp;
  gp.prompt = prompt_tokens(r);
  gp.sampling = r.sampling;
  if (!r.seeded) gp.sampling.seed = random();
  gp.max_tokens = r.max_tokens;
  gp.stop = r.stop;
  gp.lora_scales = lora_scales(r.lora);
  gp.grammar = r.grammar;
  try {
    Sampler check(gp.sampling);  // reject settings the sampler refuses before queueing
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  auto job = std::make_shared<Job>(std::move(gp));
  if (!engine.submit(job)) {
    res.set_header("Retry-After", std::to_string(engine.retry_after_seconds()));
    throw ApiError(503, "all " + std::to_string(engine.n_slots()) +
                            " slots are busy and the queue is full; retry after the time in Retry-After",
                   "", "server_overloaded");
  }
  server::ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  ResponseIds ids = new_ids(chat);

  if (r.stream) {
    auto st = std::make_shared<StreamState>(StreamState{job, std::move(r), std::move(ids), watch, &engine, false, std::nullopt});
    if (st->req.chat && st->req.tools.active()) st->tools.emplace(server::call_id_prefix(st->ids));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& payload) {
            const std::string ev = "data: " + payload + "\n\n";
            return sink.write(ev.data(), ev.size());
          };
          if (!st->opened) {
            st->opened = true;
            if (st->req.chat) return send(dump(server::stream_chunk(st->req, st->ids, "", "", /*role=*/true)));
          }
          auto send_events = [&](const std::vector<server::ToolEvent>& events) {
            for (const auto& e : events)
              if (!send(dump(server::tool_event_chunk(st->req, st->ids, e)))) return false;
            return true;
          };
          Job::Update u = st->job->wait(kPoll);
          for (const auto& piece : u.pieces) {
            if (st->tools) {
              if (!send_events(st->tools->push(piece))) return false;
            } else if (!send(dump(server::stream_chunk(st->req, st->ids, piece, "")))) {
              return false;
            }
          }
          if (u.finished) {
            const JobResult jr = st->job->result();
            bool ok = !st->tools || send_events(st->tools->finish());
            if (ok && jr.finish_reason == "error") {
              ok = send(dump(server::error_body("generation failed: " + jr.error, "server_error")));
            } else if (ok) {
              const int calls = st->tools ? st->tools->n_calls() : 0;
              ok = send(dump(server::stream_chunk(st->req, st->ids, "",
                                                  server::finish_reason_with_calls(jr.finish_reason, calls))));
              if (ok && st->req.include_usage) ok = send(dump(server::usage_chunk(st->req, st->ids, jr)));
            }
            if (ok) ok = send("[DONE]");
            if (ok) sink.done();
            return ok;
          }
          return !st->watch.closed();  // false ends the response; the releaser cancels the job
        },
        [st](bool) {
          st->job->cancel();  // a no-op when it finished; frees the slot when the client left
          st->engine->wake();
        });
    return;
  }

  std::string text;
  for (;;) {
    Job::Update u = job->wait(kPoll);
    for (auto& p : u.pieces) text += p;
    if (u.finished) break;
    if (watch.closed()) {
      job->cancel();
      engine.wake();
      res.status = 499;  // nobody reads it; counted in the metrics as a client close
      return;
    }
  }
  const JobResult jr = job->result();
  if (jr.finish_reason == "error") throw ApiError(500, "generation failed: " + jr.error);
  send_json(res, 200, server::completion_response(r, ids, text, jr));
}

void HttpServer::Impl::setup() {
  const int queue_max = opts.queue < 0 ? 4 * opts.parallel : opts.queue;
  // Every waiting or streaming request holds a thread, and idle keep-alive connections hold one
  // for a few seconds: leave room for both, plus /health and /metrics under full load.
  // Threads only ever take a request that has fully arrived (server/connection_gate.hpp), so
  // slow clients hold none of them.
  const size_t threads = static_cast<size_t>(std::clamp(2 * (opts.parallel + queue_max) + 8, 16, 512));
  svr.configure({.idle_timeout_s = opts.idle_timeout_s,
                 .header_timeout_s = opts.header_timeout_s,
                 .body_timeout_s = opts.body_timeout_s,
                 .max_client_conns = opts.max_client_conns,
                 .max_body_bytes = opts.max_body_bytes,
                 .workers = threads});
  svr.set_payload_max_length(opts.max_body_bytes);

  // Sockets: SO_REUSEADDR only (a restarted server rebinds a port in TIME_WAIT), never
  // SO_REUSEPORT, so a second server on a port in use fails instead of sharing it; the
  // listening socket is kept to raise its backlog after bind.
  svr.set_socket_options([this](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });

  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool api = req.path.rfind("/v1/", 0) == 0 || req.path == "/v1" || req.path == "/metrics" ||
                     req.path == "/lora-adapters";
    const std::string origin = allowed_origin(req);
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {  // a CORS preflight: answered here, before authentication
      if (origin.empty()) {
        send_error(res, ApiError(403, "cross-origin requests are not allowed from '" + req.get_header_value("Origin") +
                                          "'; start the server with --cors-origin ORIGIN to allow a web page",
                                 "", "cors_not_allowed"));
      } else {
        res.status = 204;
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
      }
      return httplib::Server::HandlerResponse::Handled;
    }
    if (api && !authorized(req)) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, ApiError(401, "a valid API key is required: send 'Authorization: Bearer KEY'", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    // A Content-Length that is not a number, or more than --max-body: answered now, before the
    // body is read (cpp-httplib would first wait for bytes that never come).
    if (const std::string cl = req.get_header_value("Content-Length"); !cl.empty()) {
      if (cl.find_first_not_of("0123456789") != std::string::npos) {
        res.set_header("Connection", "close");
        send_error(res, ApiError(400, "Content-Length must be a byte count, got '" + cl.substr(0, 40) + "'", "",
                                 "invalid_content_length"));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (cl.size() > 18 || std::stoull(cl) > opts.max_body_bytes) {  // 18 digits: no overflow
        res.set_header("Connection", "close");
        send_error(res, ApiError(413, "the request body (Content-Length " + cl.substr(0, 40) + ") is larger than the " +
                                          std::to_string(opts.max_body_bytes) + " bytes this server accepts (--max-body)",
                                 "", "request_too_large"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // Generation takes a JSON body only: a form or text/plain POST, which any web page may
    // send without a CORS preflight, is refused here, before its body is read.
    const bool generation = req.path == "/v1/chat/completions" || req.path == "/v1/completions";
    if (generation && req.method == "POST" && media_type(req) != "application/json") {
      res.set_header("Connection", "close");
      send_error(res, ApiError(415, "the request body must be JSON sent with 'Content-Type: application/json' (got '" +
                                        req.get_header_value("Content-Type") + "')",
                               "", "unsupported_media_type"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Bodies for errors cpp-httplib produces itself (404, 413, 400 on a malformed request).
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.status == 499) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg, code;
    switch (res.status) {
      case 404: msg = "unknown route: " + req.method + " " + req.path; code = "unknown_url"; break;
      case 413: msg = "the request body is too large"; code = "request_too_large"; break;
      case 400: msg = "malformed HTTP request"; break;
      default: msg = "the request failed with HTTP status " + std::to_string(res.status); break;
    }
    send_json(res, res.status, server::error_body(msg, server::error_type_for_status(res.status), "", code));
    return httplib::Server::HandlerResponse::Handled;
  }));

  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::bad_alloc&) {
      send_error(res, ApiError(503, "out of memory while handling the request", "", "out_of_memory"));
    } catch (const Error& e) {
      send_error(res, ApiError(400, e.message()));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    } catch (...) {
      send_error(res, ApiError(500, "internal error"));
    }
  });

  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    http_counts.count(req.method, req.path, res.status);
  });

  auto page = [](const httplib::Request&, httplib::Response& res) {
    res.set_content(server::chat_page_html(), "text/html; charset=utf-8");
  };
  svr.Get("/", page);
  svr.Get("/index.html", page);
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const auto s = engine.stats();
    send_json(res, 200, {{"status", "ok"}, {"slots", s.slots}, {"slots_busy", s.slots_busy},
                         {"queue_depth", s.queue_depth}, {"model", name}});
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    res.set_content(server::render_metrics(engine.stats(), http_counts, up), "text/plain; version=0.0.4");
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, models_json());
  });
  svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != name)
      throw ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist; this server has '" + name + "'",
                     "model", "model_not_found");
    send_json(res, 200, model_json());
  });
  // llama.cpp-server's adapter routes: the list, and the scales of requests without "lora".
  svr.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, lora_list()); });
  svr.Post("/lora-adapters", [this](const httplib::Request& req, httplib::Response& res) {
    const std::vector<float> s = lora_scales(server::parse_lora_scales(server::parse_body(req.body)));
    {
      std::lock_guard lk(lora_mu);
      lora_default = s;
    }
    send_json(res, 200, lora_list());
  });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, true);
  });
  svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, false);
  });
  auto wrong_method = [](const char* allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      send_error(res, ApiError(405, "method " + req.method + " is not allowed on " + req.path + "; use " + allowed,
                               "", "method_not_allowed"));
    };
  };
  svr.Get("/v1/chat/completions", wrong_method("POST"));
  svr.Get("/v1/completions", wrong_method("POST"));
  svr.Post("/v1/models", wrong_method("GET"));
}

HttpServer::HttpServer(std::shared_ptr<const Model> model, ServerOptions opts) {
  if (!model) throw Error("internal: server created without a model");
  if (opts.parallel < 1 || opts.parallel > 64) throw Error("--parallel must be between 1 and 64");
  if (opts.port < 0 || opts.port > 65535) throw Error("--port must be between 0 and 65535");
  if (opts.max_body_bytes < 1024) throw Error("the request body limit must be at least 1 KiB");
  if (opts.backlog < 1 || opts.backlog > 65535) throw Error("--backlog must be between 1 and 65535");
  for (const auto& [flag, v] : {std::pair{"--idle-timeout", opts.idle_timeout_s},
                                std::pair{"--header-timeout", opts.header_timeout_s},
                                std::pair{"--body-timeout", opts.body_timeout_s}})
    if (!(v > 0 && v <= 3600)) throw Error(std::string(flag) + " must be between 0 and 3600 seconds (exclusive of 0)");
  if (opts.max_client_conns < 1) throw Error("--max-client-conns must be at least 1");
  impl_ = std::make_unique<Impl>(std::move(model), std::move(opts));
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  Impl& m = *impl_;
  int port = m.opts.port;
  bool ok;
  if (port == 0) {
    port = m.svr.bind_to_any_port(m.opts.host);
    ok = port > 0;
  } else {
    ok = m.svr.bind_to_port(m.opts.host, port);
  }
  if (!ok)
    throw Error("cannot listen on " + m.opts.host + ":" + std::to_string(m.opts.port),
                "the port may be in use or the host is not an address of this machine; pick another --port or --host");
  // cpp-httplib listens with a backlog of 5: connections of a burst beyond what the kernel
  // queues are dropped at the TCP level instead of reaching the 503 path. Listening again on
  // the bound socket raises it.
  if (m.listen_fd >= 0) ::listen(m.listen_fd, m.opts.backlog);
  m.bound = true;
  return port;
}

void HttpServer::listen() {
  if (!impl_->bound) bind();
  impl_->svr.serve_until_stopped();
}

void HttpServer::stop() {
  if (!impl_) return;
  impl_->engine.stop();  // waiting handlers see their jobs end and return
  impl_->svr.stop();
}

const std::string& HttpServer::model_name() const { return impl_->name; }

}  // namespace edgelm
