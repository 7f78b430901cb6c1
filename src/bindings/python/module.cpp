// edgelm._edgelm: the Python extension (nanobind). A front end over the public C++ API in
// include/edgelm: it converts arguments, releases the GIL while the library computes, turns
// edgelm::Error into Python exceptions carrying message(), and hands arrays to numpy without
// copying. The Python-facing API (edgelm.Llama and friends) lives in python/edgelm.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/anomaly/detector.hpp"
#include "edgelm/anomaly/detector_config_io.hpp"
#include "edgelm/anomaly/detector_state.hpp"
#include "edgelm/assistant.hpp"
#include "edgelm/bench.hpp"
#include "edgelm/chat_template.hpp"
#include "edgelm/convert.hpp"
#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "edgelm/lora.hpp"
#include "edgelm/model.hpp"
#include "edgelm/quant.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"
#include "edgelm/speculative.hpp"
#include "edgelm/tokenizer.hpp"
#include "common.hpp"

namespace nb = nanobind;
using namespace nb::literals;
using edgelm::python::PyModel;
using edgelm::python::raise;

namespace {

using Tokens = std::vector<int32_t>;
// Read-only numpy views of the library's float buffers.
using View1 = nb::ndarray<nb::numpy, const float, nb::ndim<1>>;
using View2 = nb::ndarray<nb::numpy, const float, nb::ndim<2>>;
using FloatIn = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

std::shared_ptr<PyModel> load_model(const std::string& path) {
  namespace fs = std::filesystem;
  auto m = std::make_shared<PyModel>();
  try {
    nb::gil_scoped_release nogil;
    m->model = edgelm::Model::load(path);
  } catch (const edgelm::Error& e) {
    // A path that does not exist (and is no cache alias): FileNotFoundError; anything else
    // (corrupt, unsupported): ValueError, as for any unusable argument.
    std::error_code ec;
    raise(fs::exists(path, ec) ? PyExc_ValueError : PyExc_FileNotFoundError, e.message());
  }
  return m;
}

std::string render_chat(PyModel& pm, const std::string& messages_json, bool add_generation_prompt) {
  const edgelm::Model& m = *pm.model;
  const auto source = m.chat_template();
  nlohmann::ordered_json messages;
  try {
    messages = nlohmann::ordered_json::parse(messages_json);
  } catch (const nlohmann::json::exception& e) {
    raise(PyExc_ValueError, std::string("messages are not JSON: ") + e.what());
  }
  if (!messages.is_array()) raise(PyExc_ValueError, "messages must be a list of {'role': ..., 'content': ...} dicts");
  if (!source) {
    // No Jinja template in the file: the chat formats edgelm knows by name (error otherwise).
    std::vector<edgelm::ChatMessage> msgs;
    for (const auto& j : messages) {
      if (!j.is_object() || !j.contains("role") || !j["role"].is_string())
        raise(PyExc_ValueError, "every message needs a 'role' string");
      const auto c = j.value("content", nlohmann::ordered_json());
      msgs.push_back({j["role"].get<std::string>(), c.is_string() ? c.get<std::string>() : std::string()});
    }
    return edgelm::make_chat_format(m)->render(msgs, add_generation_prompt);
  }
  std::call_once(pm.template_once, [&] { pm.tmpl.emplace(edgelm::ChatTemplate::parse(*source)); });
  edgelm::ChatTemplateInputs in;
  in.messages = std::move(messages);
  in.add_generation_prompt = add_generation_prompt;
  const edgelm::Tokenizer& tok = pm.tok();
  if (tok.bos() >= 0) in.bos_token = tok.text(tok.bos());
  if (tok.eos() >= 0) in.eos_token = tok.text(tok.eos());
  return pm.tmpl->render(in);
}

struct PySampler {
  edgelm::Sampler sampler;
};

struct PyDrafter {
  std::unique_ptr<edgelm::Drafter> drafter;
};

// A session keeps its model alive; views of its buffers keep the session alive.
struct PySession {
  std::shared_ptr<PyModel> model;
  std::unique_ptr<edgelm::Session> session;
  std::vector<std::shared_ptr<const edgelm::LoraAdapter>> adapters;
};

edgelm::SessionOptions session_options(PyModel& pm, int n_ctx, int n_threads, int n_batch, int n_seq, int n_layers,
                                       const std::string& kv_type,
                                       const std::vector<std::pair<std::string, float>>& lora) {
  edgelm::SessionOptions o;
  if (n_ctx < 1) raise(PyExc_ValueError, "n_ctx must be at least 1, not " + std::to_string(n_ctx));
  if (n_threads < 0) raise(PyExc_ValueError, "n_threads must be 0 (all cores) or more, not " + std::to_string(n_threads));
  if (n_batch < 1) raise(PyExc_ValueError, "n_batch must be at least 1, not " + std::to_string(n_batch));
  if (n_seq < 1) raise(PyExc_ValueError, "n_seq must be at least 1, not " + std::to_string(n_seq));
  if (n_layers < 0 || n_layers > pm.model->config().n_layer)
    raise(PyExc_ValueError, "n_layers must be 0 (all) to " + std::to_string(pm.model->config().n_layer));
  o.n_ctx = n_ctx;
  o.n_threads = n_threads;
  o.n_batch = n_batch;
  o.n_seq = n_seq;
  o.n_layers = n_layers;
  try {
    o.kv_type = edgelm::parse_kv_type(kv_type);
  } catch (const edgelm::Error& e) {
    raise(PyExc_ValueError, e.message());
  }
  for (const auto& [path, scale] : lora) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) raise(PyExc_FileNotFoundError, "LoRA adapter " + path + " does not exist");
    try {
      o.lora.push_back({edgelm::LoraAdapter::load(path, *pm.model), scale});
    } catch (const edgelm::Error& e) {
      raise(PyExc_ValueError, e.message());
    }
  }
  return o;
}

void check_tokens(const PySession& s, const Tokens& toks) {
  const int n_vocab = s.model->model->config().n_vocab;
  for (int32_t t : toks)
    if (t < 0 || t >= n_vocab)
      raise(PyExc_ValueError, "token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                                  std::to_string(n_vocab - 1) + ")");
  if (toks.empty()) raise(PyExc_ValueError, "no tokens to evaluate");
}

// Runs generate() (or generate_speculative()) with the GIL released. on_token is called with
// the GIL held; it returns False to stop. Pending signals are checked before each call, so
// Ctrl-C stops the generation after the current token with KeyboardInterrupt.
int generate(PySession& s, const Tokens& prompt, int max_tokens, PySampler& sp, nb::callable on_token,
             PyDrafter* drafter) {
  check_tokens(s, prompt);
  if (max_tokens < 0) raise(PyExc_ValueError, "max_tokens must be 0 or more");
  std::optional<nb::python_error> failure;  // destroyed after the GIL is held again
  int n = 0;
  {
    const auto cb = [&](int32_t tok) -> bool {
      nb::gil_scoped_acquire gil;
      try {
        if (PyErr_CheckSignals() != 0) throw nb::python_error();
        return nb::cast<bool>(on_token(tok));
      } catch (nb::python_error& e) {
        failure.emplace(std::move(e));
        return false;
      } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        failure.emplace();
        return false;
      }
    };
    nb::gil_scoped_release nogil;
    n = drafter ? edgelm::generate_speculative(*s.session, sp.sampler, *drafter->drafter, prompt, max_tokens, cb)
                : edgelm::generate(*s.session, sp.sampler, prompt, max_tokens, cb);
  }
  if (failure) throw *failure;
  return n;
}

// One score per sample as a numpy array that owns its buffer; score(i) runs with the GIL released.
template <class Score>
nb::ndarray<nb::numpy, float, nb::ndim<1>> detector_scores(size_t n, Score&& score) {
  float* out = new float[n];
  {
    nb::gil_scoped_release nogil;
    for (size_t i = 0; i < n; ++i) out[i] = score(i);
  }
  nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::ndarray<nb::numpy, float, nb::ndim<1>>(out, {n}, owner);
}

nb::bytes detector_state_bytes(const edgelm::anomaly::Detector& d) {
  const std::vector<uint8_t> b = edgelm::anomaly::save_detector_state(d);
  return nb::bytes(reinterpret_cast<const char*>(b.data()), b.size());
}

edgelm::anomaly::Detector detector_from_state(const nb::bytes& b, const char* source) {
  try {
    return edgelm::anomaly::load_detector_state({reinterpret_cast<const uint8_t*>(b.c_str()), b.size()}, source);
  } catch (const edgelm::Error& e) {
    raise(PyExc_ValueError, e.message());
  }
}

}  // namespace

NB_MODULE(_edgelm, m) {
  edgelm::python::bind_training(m);
  m.doc() = "edgelm's C++ library for Python (use the edgelm package, not this module)";

  // The module holds the type; this pointer is only read while the module is alive.
  static PyObject* error_type = nb::exception<edgelm::Error>(m, "Error", PyExc_RuntimeError).ptr();
  // Registered after nb::exception's own translator, so it runs first: message() carries the
  // hint the command line prints too.
  nb::register_exception_translator(
      [](const std::exception_ptr& p, void*) {
        try {
          std::rethrow_exception(p);
        } catch (const edgelm::Error& e) {
          PyErr_SetString(error_type, e.message().c_str());
        }
      },
      nullptr);

  m.def("resolve_model_path", &edgelm::resolve_model_path, "name_or_path"_a,
        "A path that exists as is; otherwise a model-cache alias (\"smollm2\") or file name in the cache.");
  m.def("json_schema_to_grammar",
        [](const std::string& schema) {
          nlohmann::ordered_json j;
          try {
            j = nlohmann::ordered_json::parse(schema);
          } catch (const nlohmann::json::exception& e) {
            raise(PyExc_ValueError, std::string("the schema is not JSON: ") + e.what());
          }
          try {
            return edgelm::json_schema_to_grammar(j);
          } catch (const edgelm::Error& e) {
            raise(PyExc_ValueError, e.message());
          }
        },
        "schema_json"_a, "GBNF for the JSON documents a JSON Schema (given as JSON text) accepts.");
  m.def("json_object_grammar", &edgelm::json_object_grammar, "GBNF for any JSON object.");

  nb::class_<PyModel>(m, "Model", "A loaded GGUF model: immutable, shareable between sessions and threads.")
      .def_static("load", &load_model, "path"_a,
                  "Loads a GGUF file (or a model-cache alias such as \"smollm2\"). Raises FileNotFoundError "
                  "for a missing file and ValueError for a corrupt or unsupported one.")
      .def_prop_ro("path", [](const PyModel& p) { return p.model->path(); })
      .def_prop_ro("arch", [](const PyModel& p) { return p.model->config().arch; })
      .def_prop_ro("name", [](const PyModel& p) { return p.model->config().name; })
      .def_prop_ro("n_vocab", [](const PyModel& p) { return p.model->config().n_vocab; })
      .def_prop_ro("n_embd", [](const PyModel& p) { return p.model->config().n_embd; })
      .def_prop_ro("n_layer", [](const PyModel& p) { return p.model->config().n_layer; })
      .def_prop_ro("n_ctx_train", [](const PyModel& p) { return p.model->config().n_ctx_train; })
      .def_prop_ro("n_params", [](const PyModel& p) { return p.model->n_params(); })
      .def_prop_ro("chat_template", [](const PyModel& p) { return p.model->chat_template(); })
      .def_prop_ro("bos", [](const PyModel& p) { return p.tok().bos(); }, "BOS token id (-1: none)")
      .def_prop_ro("eos", [](const PyModel& p) { return p.tok().eos(); }, "EOS token id (-1: none)")
      .def_prop_ro("add_bos", [](const PyModel& p) { return p.tok().add_bos(); },
                   "whether the model's metadata asks for BOS before a prompt")
      .def("is_eog", [](const PyModel& p, int32_t id) { return p.tok().is_eog(id); }, "token"_a,
           "True for end-of-generation tokens (EOS, EOT, <|im_end|>, ...).")
      .def(
          "tokenize",
          [](const PyModel& p, nb::bytes text, bool add_bos, bool special) {
            const std::string_view sv(text.c_str(), text.size());
            nb::gil_scoped_release nogil;
            return p.tok().encode(sv, add_bos, special);
          },
          "text"_a, "add_bos"_a = true, "special"_a = false,
          "Token ids of UTF-8 text. add_bos: BOS first when the model's metadata asks for it; special: "
          "recognise control tokens such as <|im_start|> in the text.")
      .def(
          "detokenize",
          [](const PyModel& p, const Tokens& ids, bool special) {
            const int n_vocab = p.tok().n_vocab();
            for (int32_t t : ids)
              if (t < 0 || t >= n_vocab)
                raise(PyExc_ValueError, "token id " + std::to_string(t) + " is outside the vocabulary");
            const std::string s = p.tok().decode(ids, special);
            return nb::bytes(s.data(), s.size());
          },
          "tokens"_a, "special"_a = false,
          "The text of token ids as UTF-8 bytes (a character split by the ids comes back as U+FFFD).")
      .def(
          "token_to_piece",
          [](const PyModel& p, int32_t id, bool special) {
            if (id < 0 || id >= p.tok().n_vocab()) raise(PyExc_ValueError, "token id " + std::to_string(id) + " is outside the vocabulary");
            const std::string s = p.tok().token_to_piece(id, special);
            return nb::bytes(s.data(), s.size());
          },
          "token"_a, "special"_a = false, "The raw bytes of one token.")
      .def("render_chat", &render_chat, "messages_json"_a, "add_generation_prompt"_a = true,
           "The prompt text of a conversation (a JSON list of messages), rendered with the model's chat "
           "template as transformers' apply_chat_template does.");

  nb::class_<PySampler>(m, "Sampler", "Token sampling: greedy, temperature, top-k, top-p, min-p, penalties; seeded.")
      .def(
          "__init__",
          [](PySampler* self, float temperature, int top_k, float top_p, float min_p, float repeat_penalty,
             int repeat_last_n, float presence_penalty, float frequency_penalty, uint64_t seed,
             std::optional<std::string> grammar, PyModel* model) {
            edgelm::SamplerParams p;
            p.temp = temperature, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
            p.repeat_penalty = repeat_penalty, p.repeat_last_n = repeat_last_n;
            p.presence_penalty = presence_penalty, p.frequency_penalty = frequency_penalty, p.seed = seed;
            try {
              new (self) PySampler{edgelm::Sampler(p)};
            } catch (const edgelm::Error& e) {
              raise(PyExc_ValueError, e.message());
            }
            if (grammar) {
              if (!model) {
                self->~PySampler();
                raise(PyExc_ValueError, "a grammar needs the model whose vocabulary it constrains (model=...)");
              }
              try {
                auto g = edgelm::Grammar::parse(*grammar);
                self->sampler.set_grammar(edgelm::GrammarConstraint(g, model->token_trie()));
              } catch (const edgelm::Error& e) {
                self->~PySampler();
                raise(PyExc_ValueError, e.message());
              }
            }
          },
          "temperature"_a = 0.8f, "top_k"_a = 40, "top_p"_a = 0.95f, "min_p"_a = 0.05f, "repeat_penalty"_a = 1.0f,
          "repeat_last_n"_a = 64, "presence_penalty"_a = 0.0f, "frequency_penalty"_a = 0.0f, "seed"_a = 0xED6E1A,
          "grammar"_a = nb::none(), "model"_a = nb::none(),
          "temperature <= 0 is greedy. grammar: GBNF text that every sampled token must follow (needs model). "
          "Raises ValueError naming an out-of-range parameter or a grammar error.")
      .def(
          "sample",
          [](PySampler& s, FloatIn logits) {
            const std::span<const float> l(logits.data(), logits.shape(0));
            nb::gil_scoped_release nogil;
            return s.sampler.sample(l);
          },
          "logits"_a, "The next token drawn from n_vocab logits (a float32 array).")
      .def("accept", [](PySampler& s, int32_t t) { s.sampler.accept(t); }, "token"_a,
           "Feeds a chosen token to the penalty window and the grammar.")
      .def("accept_prompt", [](PySampler& s, const Tokens& t) { s.sampler.accept_prompt(t); }, "tokens"_a,
           "Feeds prompt tokens to the penalty window (not the grammar).")
      .def("reset", [](PySampler& s) { s.sampler.reset(); })
      .def_prop_ro("grammar_complete",
                   [](PySampler& s) {
                     edgelm::GrammarConstraint* g = s.sampler.grammar();
                     return g ? std::optional<bool>(g->is_complete()) : std::nullopt;
                   },
                   "None without a grammar; else whether the text so far is complete.");

  nb::class_<PyDrafter>(m, "Drafter", "Proposes tokens for speculative decoding.")
      .def_static(
          "from_model",
          [](std::shared_ptr<PyModel> draft, std::shared_ptr<PyModel> target, int n_ctx, int n_threads) {
            edgelm::ModelDrafterOptions o;
            o.n_ctx = n_ctx, o.n_threads = n_threads;
            try {
              return new PyDrafter{edgelm::make_model_drafter(draft->model, *target->model, o)};
            } catch (const edgelm::Error& e) {
              raise(PyExc_ValueError, e.message());
            }
          },
          "draft"_a, "target"_a, "n_ctx"_a = 2048, "n_threads"_a = 0, nb::rv_policy::take_ownership,
          "A smaller model with the target's vocabulary drafts; raises ValueError when the vocabularies differ.")
      .def_static(
          "lookup",
          [](int ngram_min, int ngram_max) {
            if (ngram_min < 1 || ngram_max < ngram_min) raise(PyExc_ValueError, "need 1 <= ngram_min <= ngram_max");
            return new PyDrafter{edgelm::make_lookup_drafter(ngram_min, ngram_max)};
          },
          "ngram_min"_a = 2, "ngram_max"_a = 4, nb::rv_policy::take_ownership,
          "Prompt lookup: proposes what followed the latest earlier occurrence of the last n tokens.")
      .def("describe", [](const PyDrafter& d) { return d.drafter->describe(); });

  nb::class_<PySession>(m, "Session",
                        "KV cache, scratch and threads for running a model. Arrays it returns are read-only "
                        "views of its own buffers: valid until the next call on the session (copy to keep).")
      .def(
          "__init__",
          [](PySession* self, std::shared_ptr<PyModel> model, int n_ctx, int n_threads, int n_batch, int n_seq,
             int n_layers, const std::string& kv_type, const std::vector<std::pair<std::string, float>>& lora) {
            edgelm::SessionOptions o = session_options(*model, n_ctx, n_threads, n_batch, n_seq, n_layers, kv_type, lora);
            auto s = std::make_unique<edgelm::Session>(model->model, o);
            new (self) PySession{std::move(model), std::move(s), {}};
          },
          "model"_a, "n_ctx"_a = 2048, "n_threads"_a = 0, "n_batch"_a = 256, "n_seq"_a = 1, "n_layers"_a = 0,
          "kv_type"_a = "f16", "lora"_a = std::vector<std::pair<std::string, float>>{},
          "n_threads 0: all cores. n_layers > 0 runs only the first n_layers blocks (early exit). "
          "lora: [(adapter_path, scale), ...].")
      .def_prop_ro("model", [](const PySession& s) { return s.model; })
      .def_prop_ro("n_ctx", [](const PySession& s) { return s.session->n_ctx(); })
      .def_prop_ro("n_threads", [](const PySession& s) { return s.session->n_threads(); })
      .def("n_past", [](const PySession& s, int seq) { return s.session->n_past(seq); }, "seq"_a = 0)
      .def("tokens", [](const PySession& s, int seq) { return s.session->tokens(seq); }, "seq"_a = 0,
           "Tokens in the KV cache of seq, in order.")
      .def("truncate", [](PySession& s, int n_keep, int seq) { s.session->truncate(seq, n_keep); }, "n_keep"_a,
           "seq"_a = 0, "Drops cached positions from n_keep on.")
      .def("reuse_prefix", [](PySession& s, const Tokens& t, int seq) { return s.session->reuse_prefix(seq, t); },
           "tokens"_a, "seq"_a = 0,
           "Keeps the longest cached prefix shared with tokens (one fewer when all match) and returns its length.")
      .def(
          "eval",
          [](nb::handle self, const Tokens& toks, int seq) {
            PySession& s = nb::cast<PySession&>(self);
            check_tokens(s, toks);
            std::span<const float> l;
            {
              nb::gil_scoped_release nogil;
              l = s.session->eval(toks, seq);
            }
            return View1(l.data(), {l.size()}, self);
          },
          "tokens"_a, "seq"_a = 0,
          "Appends tokens and returns the next-token logits: a read-only float32 view (n_vocab,).")
      .def(
          "eval_all",
          [](nb::handle self, const Tokens& toks, int seq) {
            PySession& s = nb::cast<PySession&>(self);
            check_tokens(s, toks);
            std::span<const float> l;
            {
              nb::gil_scoped_release nogil;
              l = s.session->eval_all(toks, seq);
            }
            const size_t n_vocab = static_cast<size_t>(s.model->model->config().n_vocab);
            return View2(l.data(), {toks.size(), n_vocab}, self);
          },
          "tokens"_a, "seq"_a = 0, "Like eval, with logits after every token: a read-only view (n_tokens, n_vocab).")
      .def(
          "hidden",
          [](nb::handle self, const Tokens& toks, int seq) {
            PySession& s = nb::cast<PySession&>(self);
            check_tokens(s, toks);
            std::span<const float> h;
            {
              nb::gil_scoped_release nogil;
              h = s.session->embed(toks, seq);
            }
            const size_t n_embd = static_cast<size_t>(s.model->model->config().n_embd);
            return View2(h.data(), {toks.size(), n_embd}, self);
          },
          "tokens"_a, "seq"_a = 0,
          "Appends tokens and returns each one's final hidden state (after the output norm, or the last run "
          "block's output with early exit): a read-only view (n_tokens, n_embd).")
      .def(
          "hidden_batch",
          [](nb::handle self, const std::vector<Tokens>& texts) {
            PySession& s = nb::cast<PySession&>(self);
            size_t total = 0;
            for (const Tokens& t : texts) check_tokens(s, t), total += t.size();
            if (texts.size() > static_cast<size_t>(s.session->n_seq()))
              raise(PyExc_ValueError, std::to_string(texts.size()) + " texts but the session has n_seq=" +
                                          std::to_string(s.session->n_seq()));
            std::span<const float> h;
            {
              nb::gil_scoped_release nogil;
              h = s.session->embed_batch(texts);
            }
            const size_t n_embd = static_cast<size_t>(s.model->model->config().n_embd);
            return View2(h.data(), {total, n_embd}, self);
          },
          "texts"_a,
          "Hidden states of several texts (text i in sequence i from an empty cache), in as few passes as "
          "the batch allows: a read-only view (total tokens, n_embd), text after text.")
      .def("generate", &generate, "prompt"_a, "max_tokens"_a, "sampler"_a, "on_token"_a, "drafter"_a = nb::none(),
           "Evaluates prompt after the cached tokens, then samples up to max_tokens tokens, calling "
           "on_token(id) -> bool for each (False stops). Stops at an end-of-generation token or a full "
           "context. Returns the number of tokens generated. The GIL is released while the model runs; "
           "Ctrl-C raises KeyboardInterrupt after the current token.");

  m.def(
      "perplexity",
      [](std::shared_ptr<PyModel> model, const std::string& text, int n_ctx, int n_chunks, int n_threads) {
        edgelm::quant::PerplexityOptions o;
        o.n_ctx = n_ctx, o.n_chunks = n_chunks, o.n_threads = n_threads;
        edgelm::quant::PerplexityResult r;
        try {
          nb::gil_scoped_release nogil;
          r = edgelm::quant::perplexity(model->model, text, o);
        } catch (const edgelm::Error& e) {
          raise(PyExc_ValueError, e.message());
        }
        nb::dict d;
        d["ppl"] = r.ppl, d["stderr"] = r.stderr_ppl, d["mean_nll"] = r.mean_nll, d["n_chunks"] = r.n_chunks;
        d["n_scored"] = r.n_scored, d["n_tokens"] = r.n_text_tokens;
        return d;
      },
      "model"_a, "text"_a, "n_ctx"_a = 512, "n_chunks"_a = -1, "n_threads"_a = 0,
      "Perplexity of text as llama.cpp's perplexity tool computes it: {'ppl', 'stderr', 'mean_nll', ...}.");

  m.def(
      "bench",
      [](std::shared_ptr<PyModel> model, const std::vector<int>& n_prompt, const std::vector<int>& n_gen,
         const std::vector<int>& threads, int reps, int n_batch, const std::string& kv_type) {
        edgelm::SpeedTestOptions o;
        o.n_prompt = n_prompt, o.n_gen = n_gen, o.threads = threads, o.reps = reps, o.n_batch = n_batch;
        edgelm::SpeedReport r;
        try {
          o.kv_type = edgelm::parse_kv_type(kv_type);
          nb::gil_scoped_release nogil;
          r = edgelm::measure_speed(model->model, o);
        } catch (const edgelm::Error& e) {
          raise(PyExc_ValueError, e.message());
        }
        nb::list out;
        for (const auto& t : r.tests) {
          const edgelm::SampleStats ts = edgelm::sample_stats(t.samples_ts), ms = edgelm::sample_stats(t.samples_ms);
          nb::dict d;
          d["test"] = t.test, d["threads"] = t.threads, d["n_prompt"] = t.n_prompt, d["n_gen"] = t.n_gen;
          d["median_ts"] = ts.median, d["mean_ts"] = ts.mean, d["stddev_ts"] = ts.stddev;
          d["min_ts"] = ts.min, d["max_ts"] = ts.max, d["median_ms"] = ms.median;
          d["samples_ts"] = t.samples_ts, d["samples_ms"] = t.samples_ms;
          d["n_ctx"] = r.n_ctx, d["kv_bytes"] = r.kv_bytes;
          out.append(d);
        }
        return out;
      },
      "model"_a, "n_prompt"_a = std::vector<int>{512}, "n_gen"_a = std::vector<int>{128},
      "threads"_a = std::vector<int>{1, 2}, "reps"_a = 5, "n_batch"_a = 512, "kv_type"_a = "f16",
      "Prompt (ppN) and generation (tgN) speed as `edgelm bench` and llama-bench measure them: one dict per "
      "test and thread count, {'test', 'threads', 'median_ts', 'min_ts', 'max_ts', 'samples_ts', ...} in "
      "tokens/s. Not interruptible: keep reps and lengths small in interactive use.");

  m.def(
      "quantize",
      [](const std::string& in, const std::string& out, const std::string& type, int n_threads) {
        std::error_code ec;
        if (!std::filesystem::exists(in, ec)) raise(PyExc_FileNotFoundError, "model file " + in + " does not exist");
        const auto ft = edgelm::quant::file_type_from_name(type);
        if (!ft) raise(PyExc_ValueError, "unknown type '" + type + "': choose one of " + edgelm::quant::supported_file_types());
        edgelm::quant::QuantizeOptions o;
        o.file_type = *ft, o.n_threads = n_threads;
        edgelm::quant::QuantizeReport r;
        try {
          nb::gil_scoped_release nogil;
          r = edgelm::quant::quantize_file(in, out, o);
        } catch (const edgelm::Error& e) {
          raise(PyExc_ValueError, e.message());
        }
        nb::dict d;
        d["bytes_in"] = r.file_in, d["bytes_out"] = r.file_out, d["tensors"] = r.tensors.size();
        d["notes"] = r.notes;
        return d;
      },
      "input"_a, "output"_a, "type"_a = "q8_0", "n_threads"_a = 0,
      "Writes a quantized copy of a GGUF model (atomically); returns sizes and notes.");

  m.def(
      "convert",
      [](const std::string& hf_dir, const std::string& out, const std::string& type, int n_threads) {
        std::error_code ec;
        if (!std::filesystem::is_directory(hf_dir, ec))
          raise(PyExc_FileNotFoundError, "checkpoint directory " + hf_dir + " does not exist");
        edgelm::convert::ConvertOptions o;
        o.type = type, o.n_threads = n_threads;
        std::vector<std::string> notes;
        o.on_note = [&notes](const std::string& n) { notes.push_back(n); };
        edgelm::convert::ConvertReport r;
        try {
          nb::gil_scoped_release nogil;
          r = edgelm::convert::convert_hf(hf_dir, out, o);
        } catch (const edgelm::Error& e) {
          raise(PyExc_ValueError, e.message());
        }
        nb::dict d;
        d["arch"] = r.arch, d["tokenizer_model"] = r.tokenizer_model, d["tokenizer_pre"] = r.tokenizer_pre;
        d["tensors"] = r.n_tensors, d["bytes_out"] = r.file_bytes, d["notes"] = notes;
        return d;
      },
      "hf_dir"_a, "output"_a, "type"_a = "f16", "n_threads"_a = 0,
      "Converts a Hugging Face checkpoint directory (config.json, tokenizer.json, *.safetensors) to a "
      "GGUF file of the given type (f32, f16, bf16 or any type quantize takes), as `edgelm convert` does; "
      "returns {'arch', 'tokenizer_model', 'tensors', 'bytes_out', 'notes', ...}.");

  using edgelm::anomaly::Detector;
  nb::class_<Detector>(m, "Detector",
                       "Streaming anomaly detector for one sensor series: push samples, get scores in [0, 1].")
      .def(
          "__init__",
          [](Detector* self, std::optional<std::string> config_json) {
            edgelm::anomaly::DetectorConfig cfg;
            if (config_json) {
              try {
                cfg = edgelm::anomaly::parse_detector_config(*config_json, "config");
              } catch (const edgelm::Error& e) {
                raise(PyExc_ValueError, e.message());
              }
            }
            if (const char* bad = edgelm::anomaly::validate(cfg)) raise(PyExc_ValueError, bad);
            new (self) Detector(cfg);
          },
          "config_json"_a = nb::none(), "config_json: a JSON object of settings (as `edgelm anomaly --config`).")
      .def(
          "push",
          [](Detector& d, nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> t_ms, FloatIn values) {
            if (t_ms.shape(0) != values.shape(0)) raise(PyExc_ValueError, "timestamps and values differ in length");
            return detector_scores(values.shape(0), [&](size_t i) { return d.update(t_ms.data()[i], values.data()[i]); });
          },
          "timestamps_ms"_a, "values"_a,
          "Feeds samples in order (int64 milliseconds, float32 values); returns one score per sample.")
      .def(
          "push",
          [](Detector& d, nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> t_ms,
             nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu> values) {
            const size_t n = values.shape(0), channels = values.shape(1);
            if (t_ms.shape(0) != n) raise(PyExc_ValueError, "timestamps and values differ in length");
            if (channels != static_cast<size_t>(d.config().channels))
              raise(PyExc_ValueError, "values have " + std::to_string(channels) + " columns; the detector has " +
                                          std::to_string(d.config().channels) + " channels");
            return detector_scores(n, [&](size_t i) { return d.update(t_ms.data()[i], values.data() + i * channels); });
          },
          "timestamps_ms"_a, "values"_a,
          "Several sensors at once: values is float32 (n, channels), channels as the configuration's.")
      .def_prop_ro("channels", [](const Detector& d) { return d.config().channels; })
      .def(
          "state",
          &detector_state_bytes,
          "The whole state as bytes (configuration included), for Detector.from_state: the same edgelm "
          "build on the same CPU architecture continues exactly where this one is.")
      .def_static(
          "from_state",
          [](const nb::bytes& b) { return detector_from_state(b, "detector state"); },
          "state"_a, "A detector restored from state() bytes; ValueError for damaged or foreign bytes.")
      .def("__getstate__", &detector_state_bytes)
      .def("__setstate__",
           [](Detector& self, const nb::bytes& b) { new (&self) Detector(detector_from_state(b, "pickled detector")); })
      .def_prop_ro("samples_seen", &Detector::samples_seen)
      .def_prop_ro("alarm_threshold", [](const Detector& d) { return d.config().alarm_threshold; })
      .def("copy", [](const Detector& d) { return Detector(d); },
           "A snapshot of the whole state: a detector that continues exactly where this one is.")
      .def("__copy__", [](const Detector& d) { return Detector(d); })
      .def("__deepcopy__", [](const Detector& d, nb::handle) { return Detector(d); }, "memo"_a);
}
