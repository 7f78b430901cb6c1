// Chat templates from the model file: renders the Jinja2 `tokenizer.chat_template` of a GGUF
// exactly as Hugging Face transformers does (apply_chat_template's Jinja environment).
//
//   auto tmpl = edgelm::ChatTemplate::parse(file.get_string("tokenizer.chat_template"));
//   edgelm::ChatTemplateInputs in;
//   in.messages = {{{"role", "system"}, {"content", "Be brief."}},
//                  {{"role", "user"}, {"content", "Hi!"}}};
//   in.add_generation_prompt = true;
//   in.bos_token = "<s>";
//   in.eos_token = "</s>";
//   std::string prompt = tmpl.render(in);
//
// parse() and render() throw edgelm::ChatTemplateError (an edgelm::Error) with the line and
// column in the template and what went wrong: a syntax error, a construct this interpreter
// does not run, an error the template itself raised (raise_exception, e.g. "roles must
// alternate"), or a limit that a runaway template hit. Rendering never aborts on any input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"

namespace edgelm {

class ChatTemplateError : public Error {
 public:
  enum class Kind {
    Syntax,       // the template does not parse (or names an unknown filter/test up front)
    Unsupported,  // valid Jinja that this interpreter does not implement
    Runtime,      // an error Jinja would raise too: undefined value used, type error, ...
    Raised,       // the template called raise_exception(message)
    Limit,        // steps, output size, nesting or container size limit reached
  };

  ChatTemplateError(Kind kind, int line, int column, std::string detail);

  Kind kind() const noexcept { return kind_; }
  int line() const noexcept { return line_; }      // 1-based; 0 when not tied to a place
  int column() const noexcept { return column_; }  // 1-based, in characters
  // The message without the location prefix; for Kind::Raised, exactly the string the
  // template passed to raise_exception().
  const std::string& detail() const noexcept { return detail_; }

 private:
  Kind kind_;
  int line_;
  int column_;
  std::string detail_;
};

// Bounds for one render; the defaults are far above what real chat templates need.
struct ChatTemplateLimits {
  uint64_t max_steps = 10'000'000;          // evaluated expressions, statements and loop items
  size_t max_output_bytes = 16u << 20;      // also the cap on any single string value
  size_t max_container_items = 1u << 20;    // elements of one list / dict
  int max_call_depth = 64;                  // nested macro calls
};

struct ChatTemplateInputs {
  // The conversation: a JSON array of message objects ({"role": ..., "content": ...}, plus
  // whatever else the template reads: tool_calls, content parts, reasoning_content, ...).
  // ordered_json keeps key order, which `tojson` and `dict.items()` expose.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  // Like transformers, `tools` and `documents` are always defined; null renders as None.
  nlohmann::ordered_json tools;
  nlohmann::ordered_json documents;
  // More template variables (e.g. {"enable_thinking": false} or other special tokens). These
  // override bos_token/eos_token; naming messages, tools, documents or add_generation_prompt
  // here is an error, as it is in transformers.
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
  // The local time strftime_now() formats (Llama 3.x templates print today's date). Unset:
  // the current local time.
  std::optional<std::tm> now;
};

class ChatTemplate {
 public:
  // Throws ChatTemplateError (Kind::Syntax or Kind::Unsupported, or Kind::Limit for nesting
  // deeper than the interpreter allows).
  static ChatTemplate parse(std::string_view source);

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ChatTemplate(const ChatTemplate&);
  ChatTemplate& operator=(const ChatTemplate&);
  ~ChatTemplate();

  // Renders the template. Thread-safe: a parsed template is immutable.
  std::string render(const ChatTemplateInputs& inputs,
                     const ChatTemplateLimits& limits = {}) const;

  // Shorthand for plain {role, content} conversations.
  struct Message {
    std::string role;
    std::string content;
  };
  std::string render(const std::vector<Message>& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token) const;

  const std::string& source() const;

  struct Program;  // the parsed template (private)

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program);
  std::shared_ptr<const Program> program_;
};

}  // namespace edgelm
