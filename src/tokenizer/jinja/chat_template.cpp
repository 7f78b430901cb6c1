#include "edgelm/chat_template.hpp"

#include <new>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/lexer.hpp"
#include "tokenizer/jinja/parser.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm {

struct ChatTemplate::Program {
  jinja::Template tmpl;
  std::string original_source;
};

namespace {

using jinja::FailKind;
using jinja::Value;

constexpr int kMaxJsonDepth = 190;  // below the interpreter's container nesting limit

std::string location_text(int line, int column) {
  if (line <= 0) return "chat template error";
  return "chat template error at line " + std::to_string(line) + ", column " + std::to_string(column);
}

std::string hint_for(ChatTemplateError::Kind kind) {
  switch (kind) {
    case ChatTemplateError::Kind::Syntax:
      return "the chat template is not valid Jinja; pick a built-in chat format instead";
    case ChatTemplateError::Kind::Unsupported:
      return "the chat template uses a Jinja feature this interpreter does not implement; pick a "
             "built-in chat format instead";
    case ChatTemplateError::Kind::Limit:
      return "the chat template ran past the interpreter's limits";
    case ChatTemplateError::Kind::Raised:
      return "the model's chat template rejects this conversation";
    default:
      return {};
  }
}

ChatTemplateError to_error(const jinja::TemplateFailure& f, const std::string& source) {
  int line = 0, column = 0;
  if (f.pos != jinja::kNoPos && f.pos <= source.size()) {
    line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < f.pos; ++i) {
      if (source[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    column = static_cast<int>(jinja::unicode::length(
                 std::string_view(source).substr(line_start, f.pos - line_start))) + 1;
  }
  return ChatTemplateError(f.kind, line, column, f.message);
}

Value to_value(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxJsonDepth) {
    throw ChatTemplateError(ChatTemplateError::Kind::Limit, 0, 0,
                            "template input nested more than " + std::to_string(kMaxJsonDepth) +
                                " levels deep");
  }
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        throw ChatTemplateError(ChatTemplateError::Kind::Unsupported, 0, 0,
                                "template input integer " + std::to_string(u) +
                                    " does not fit in 64 bits");
      }
      return Value::integer(static_cast<int64_t>(u));
    }
    case T::number_float: return Value::number(j.get<double>());
    case T::string: return Value::string(j.get<std::string>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(to_value(item, depth + 1));
      return Value::sequence(std::move(items), jinja::SeqKind::List);
    }
    case T::object: {
      auto dict = std::make_shared<jinja::DictObject>();
      for (const auto& [k, v] : j.items()) dict->set(Value::string(k), to_value(v, depth + 1));
      return Value::from_heap(jinja::Kind::Dict, std::move(dict));
    }
    default:
      throw ChatTemplateError(ChatTemplateError::Kind::Unsupported, 0, 0,
                              "binary JSON values cannot be passed to a chat template");
  }
}

}  // namespace

ChatTemplateError::ChatTemplateError(Kind kind, int line, int column, std::string detail)
    : Error(location_text(line, column) + ": " + detail, hint_for(kind)),
      kind_(kind),
      line_(line),
      column_(column),
      detail_(std::move(detail)) {}

ChatTemplate ChatTemplate::parse(std::string_view source) {
  auto program = std::make_shared<Program>();
  program->original_source = std::string(source);
  try {
    program->tmpl = jinja::parse_template(source);
  } catch (const jinja::TemplateFailure& f) {
    throw to_error(f, jinja::normalize_newlines(source));
  } catch (const std::bad_alloc&) {
    throw ChatTemplateError(ChatTemplateError::Kind::Limit, 0, 0, "out of memory while parsing");
  }
  return ChatTemplate(std::move(program));
}

ChatTemplate::ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::ChatTemplate(const ChatTemplate&) = default;
ChatTemplate& ChatTemplate::operator=(const ChatTemplate&) = default;
ChatTemplate::~ChatTemplate() = default;

const std::string& ChatTemplate::source() const { return program_->original_source; }

std::string ChatTemplate::render(const ChatTemplateInputs& inputs,
                                 const ChatTemplateLimits& limits) const {
  const std::string& source = program_->tmpl.source;
  try {
    auto context = std::make_shared<jinja::DictObject>();
    context->set(Value::string("messages"), to_value(inputs.messages, 0));
    context->set(Value::string("tools"), to_value(inputs.tools, 0));
    context->set(Value::string("documents"), to_value(inputs.documents, 0));
    context->set(Value::string("add_generation_prompt"), Value::boolean(inputs.add_generation_prompt));
    context->set(Value::string("bos_token"), Value::string(inputs.bos_token));
    context->set(Value::string("eos_token"), Value::string(inputs.eos_token));
    if (!inputs.extra_context.is_null() && !inputs.extra_context.is_object()) {
      throw ChatTemplateError(ChatTemplateError::Kind::Runtime, 0, 0,
                              "extra_context must be a JSON object");
    }
    if (inputs.extra_context.is_object()) {
      for (const auto& [k, v] : inputs.extra_context.items()) {
        if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt") {
          throw ChatTemplateError(ChatTemplateError::Kind::Runtime, 0, 0,
                                  "extra_context must not set '" + k +
                                      "' (it is a dedicated input)");
        }
        context->set(Value::string(k), to_value(v, 0));
      }
    }
    jinja::Interpreter interpreter(program_->tmpl, limits, inputs.now);
    return interpreter.render(Value::from_heap(jinja::Kind::Dict, std::move(context)));
  } catch (const jinja::TemplateFailure& f) {
    throw to_error(f, source);
  } catch (const std::bad_alloc&) {
    throw ChatTemplateError(ChatTemplateError::Kind::Limit, 0, 0, "out of memory while rendering");
  }
}

std::string ChatTemplate::render(const std::vector<Message>& messages, bool add_generation_prompt,
                                 const std::string& bos_token,
                                 const std::string& eos_token) const {
  ChatTemplateInputs inputs;
  for (const Message& m : messages) {
    inputs.messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  inputs.add_generation_prompt = add_generation_prompt;
  inputs.bos_token = bos_token;
  inputs.eos_token = eos_token;
  return render(inputs);
}

}  // namespace edgelm
