// Built-in chat formats, recognised from the model's chat template. (Running arbitrary Jinja
// templates is the job of the template engine; these cover the common families meanwhile.)
#include <regex>

#include "edgelm/assistant.hpp"
#include "edgelm/chat_template.hpp"
#include "edgelm/error.hpp"

namespace edgelm {
namespace {

// <|im_start|>role\ncontent<|im_end|>\n  — SmolLM, Qwen, many fine-tunes.
class ChatMl final : public ChatFormat {
 public:
  std::string name() const override { return "chatml"; }
  std::string render(const std::vector<ChatMessage>& msgs, bool gen) const override {
    std::string out;
    for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (gen) out += "<|im_start|>assistant\n";
    return out;
  }
};

// Llama 3: header tokens around the role, <|eot_id|> after each message.
class Llama3 final : public ChatFormat {
 public:
  std::string name() const override { return "llama3"; }
  std::string render(const std::vector<ChatMessage>& msgs, bool gen) const override {
    std::string out = "<|begin_of_text|>";
    for (const auto& m : msgs)
      out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
    if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }
};

// Gemma: user/model turns; a system prompt is folded into the first user turn.
class Gemma final : public ChatFormat {
 public:
  std::string name() const override { return "gemma"; }
  std::string render(const std::vector<ChatMessage>& msgs, bool gen) const override {
    std::string out = "<bos>", pending_system;
    for (const auto& m : msgs) {
      if (m.role == "system") { pending_system = m.content + "\n\n"; continue; }
      const std::string role = m.role == "assistant" ? "model" : m.role;
      out += "<start_of_turn>" + role + "\n" + pending_system + m.content + "<end_of_turn>\n";
      pending_system.clear();
    }
    if (gen) out += "<start_of_turn>model\n";
    return out;
  }
};

// The model's own tokenizer.chat_template, run by the Jinja interpreter.
class ModelTemplate final : public ChatFormat {
 public:
  ModelTemplate(ChatTemplate t, std::string bos, std::string eos)
      : tmpl_(std::move(t)), bos_(std::move(bos)), eos_(std::move(eos)) {}
  std::string name() const override { return "model template"; }
  std::string render(const std::vector<ChatMessage>& msgs, bool gen) const override {
    std::vector<ChatTemplate::Message> m;
    m.reserve(msgs.size());
    for (const auto& x : msgs) m.push_back({x.role, x.content});
    return tmpl_.render(m, gen, bos_, eos_);
  }

 private:
  ChatTemplate tmpl_;
  std::string bos_, eos_;
};

std::unique_ptr<ChatFormat> by_name(const std::string& n) {
  if (n == "chatml") return std::make_unique<ChatMl>();
  if (n == "llama3") return std::make_unique<Llama3>();
  if (n == "gemma") return std::make_unique<Gemma>();
  return nullptr;
}

}  // namespace

std::unique_ptr<ChatFormat> make_chat_format(const Model& model, const std::string& name) {
  if (!name.empty()) {
    if (auto f = by_name(name)) return f;
    throw Error("unknown chat format '" + name + "'", "use one of: chatml, llama3, gemma");
  }
  const auto tmpl = model.chat_template();
  // Gemma GGUFs often ship without a template; the family has one chat format.
  if (!tmpl && model.config().arch.starts_with("gemma")) return by_name("gemma");
  if (!tmpl) throw Error("the model has no chat template", "pass --chat-format chatml|llama3|gemma");
  const Tokenizer& tok = model.tokenizer();
  try {
    return std::make_unique<ModelTemplate>(
        ChatTemplate::parse(*tmpl), tok.bos() >= 0 ? tok.text(tok.bos()) : std::string(),
        tok.eos() >= 0 ? tok.text(tok.eos()) : std::string());
  } catch (const ChatTemplateError&) {
    // Fall through to the built-in format the template's tokens point to.
  }
  if (tmpl->find("<|im_start|>") != std::string::npos) return by_name("chatml");
  if (tmpl->find("<|start_header_id|>") != std::string::npos) return by_name("llama3");
  if (tmpl->find("<start_of_turn>") != std::string::npos) return by_name("gemma");
  throw Error("the model's chat template is not one edgelm recognises",
              "pass --chat-format chatml|llama3|gemma");
}

std::string template_default_system(const Model& model) {
  const auto tmpl = model.chat_template();
  if (!tmpl) return "";
  // ChatML templates that inject a system prompt carry it as a literal.
  static const std::regex re(R"(<\|im_start\|>system(?:\n|\\n)([^<'"]*)<\|im_end\|>)");
  std::smatch m;
  if (std::regex_search(*tmpl, m, re)) return m[1].str();
  return "";
}

}  // namespace edgelm
