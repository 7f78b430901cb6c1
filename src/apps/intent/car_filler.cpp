// ArgumentFiller: the language model writes a command's arguments under its schema's grammar.
// Each command has its own sequence in one session, holding its few-shot prompt in the KV cache:
// a request evaluates only its own lines and the answer (greedy, through edgelm::generate).
#include <algorithm>

#include "edgelm/car.hpp"
#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "edgelm/sampler.hpp"
#include "edgelm/session.hpp"

namespace edgelm::car {

namespace {
constexpr int kContext = 768;  // positions per command: its prompt, a request, the answer
}

struct ArgumentFiller::Impl {
  std::shared_ptr<const Model> model;
  int max_tokens;
  std::unique_ptr<Session> session;
  std::shared_ptr<const TokenTrie> trie;
  struct Command {
    std::vector<int32_t> prompt;  // BOS + the spec's prompt
    bool evaluated = false;
  };
  std::vector<Command> commands;  // one per command_specs() entry, sequence i

  int index(const CommandSpec& spec) const {
    const auto specs = command_specs();
    for (size_t i = 0; i < specs.size(); ++i)
      if (&specs[i] == &spec || specs[i].intent == spec.intent) return static_cast<int>(i);
    throw Error("no command for intent '" + spec.intent + "'");
  }

  void evaluate_prompt(int i) {
    Command& c = commands[static_cast<size_t>(i)];
    if (c.evaluated && session->n_past(i) >= static_cast<int>(c.prompt.size())) return;
    session->truncate(i, 0);
    session->eval(c.prompt, i);
    c.evaluated = true;
  }
};

ArgumentFiller::ArgumentFiller(std::shared_ptr<const Model> model, int n_threads, int max_tokens)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = std::move(model);
  impl_->max_tokens = std::clamp(max_tokens, 8, 256);
  const auto specs = command_specs();
  SessionOptions so;
  so.n_ctx = kContext;
  so.n_seq = static_cast<int>(specs.size());
  so.n_threads = n_threads;
  impl_->session = std::make_unique<Session>(impl_->model, so);
  const Tokenizer& tok = impl_->model->tokenizer();
  impl_->trie = TokenTrie::build(tok);
  for (const auto& spec : specs) {
    Impl::Command c;
    c.prompt = tok.encode(spec.prompt, /*add_special=*/true, false);
    if (c.prompt.size() + 160 > static_cast<size_t>(kContext))
      throw Error("the prompt for '" + spec.intent + "' is too long");
    impl_->commands.push_back(std::move(c));
  }
}

ArgumentFiller::~ArgumentFiller() = default;

void ArgumentFiller::prepare() {
  for (int i = 0; i < static_cast<int>(impl_->commands.size()); ++i) impl_->evaluate_prompt(i);
}

ArgumentFiller::Result ArgumentFiller::fill(const CommandSpec& spec, std::string_view utterance,
                                            std::span<const std::string> earlier, const VehicleState& s) {
  Impl& m = *impl_;
  const int i = m.index(spec);
  Impl::Command& c = m.commands[static_cast<size_t>(i)];
  m.evaluate_prompt(i);
  m.session->truncate(i, static_cast<int>(c.prompt.size()));  // drop the previous request
  const Tokenizer& tok = m.model->tokenizer();
  // The schema narrowed to this request (names and numbers the driver said), as a grammar; the
  // start every answer shares is written for the model, so it generates only what it chooses.
  const auto schema = request_schema(spec, utterance, earlier, s);
  Sampler sampler(SamplerParams{.temp = 0, .repeat_last_n = 0});
  sampler.set_grammar(GrammarConstraint(Grammar::parse(json_schema_to_grammar(schema)), m.trie));
  const std::string forced = forced_prefix(schema);
  const std::vector<int32_t> forced_ids = tok.encode(" " + forced, false, false);
  std::vector<int32_t> tail = tok.encode(prompt_tail(spec, utterance, earlier, s), false, false);
  const int room = kContext - static_cast<int>(c.prompt.size() + forced_ids.size()) - m.max_tokens;
  if (static_cast<int>(tail.size()) > room) tail.erase(tail.begin(), tail.end() - room);  // keep the request
  for (int32_t t : forced_ids) sampler.grammar()->accept(t);
  tail.insert(tail.end(), forced_ids.begin(), forced_ids.end());
  Result r;
  r.n_prompt = static_cast<int>(tail.size());
  std::vector<int32_t> out;
  // Stop at the closing brace: the grammar allows nothing after it but the end of text, which
  // would cost one more forward pass to sample.
  const auto on_token = [&](int32_t t) {
    out.push_back(t);
    return !sampler.grammar()->is_complete();
  };
  r.n_generated = generate(*m.session, sampler, tail, m.max_tokens, on_token, i);
  r.json = forced + tok.decode(out);
  r.complete = sampler.grammar()->is_complete();
  return r;
}

}  // namespace edgelm::car
