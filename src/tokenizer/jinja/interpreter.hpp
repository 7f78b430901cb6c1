// Evaluates a parsed template: Jinja's scoping (a fresh scope per loop iteration, macros that
// close over their defining scope, namespaces for state that crosses scopes), its undefined
// values, and the limits that stop runaway templates.
#pragma once
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edgelm/chat_template.hpp"
#include "tokenizer/jinja/ast.hpp"
#include "tokenizer/jinja/value.hpp"

namespace edgelm::jinja {

struct Frame {
  std::shared_ptr<Frame> parent;
  std::vector<std::pair<std::string, Value>> vars;
  std::unordered_map<std::string, size_t> index;  // name -> position, for large scopes
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
};

class Interpreter {
 public:
  Interpreter(const Template& tmpl, const ChatTemplateLimits& limits, std::optional<std::tm> now);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Renders with `variables` (a dict) as the template's context.
  std::string render(const Value& variables);

  // --- services for operators, filters, tests, methods and globals ---
  const ChatTemplateLimits& limits() const { return limits_; }
  const std::optional<std::tm>& now() const { return now_; }
  void tick(uint32_t pos, uint64_t steps = 1);
  void check_string_size(size_t bytes, uint32_t pos) const;
  void check_items(size_t count, uint32_t pos) const;

  // Raises the error an undefined value stands for (Jinja's UndefinedError).
  [[noreturn]] void undefined_error(const Value& v, uint32_t pos) const;

  Value call(const Value& callee, CallArgs& args, uint32_t pos);
  Value filter(std::string_view name, const Value& input, CallArgs& args, uint32_t pos);
  bool test(std::string_view name, const Value& input, CallArgs& args, uint32_t pos);
  Value get_attr(const Value& obj, const std::string& name, uint32_t pos);
  Value get_item(const Value& obj, const Value& key, uint32_t pos);
  // obj[start:stop:step] (None for an omitted part). Fails like Python's subscription, except
  // inside a constant {{ }} (Jinja folds those through its getitem, giving undefined).
  Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step,
                  uint32_t pos);
  // The items a for loop / list() sees; consumes generators.
  std::vector<Value> iterate(const Value& v, uint32_t pos);
  // str() as {{ }} prints it.
  std::string to_text(const Value& v, uint32_t pos);
  Value make_namespace(DictObject attrs);

  // Macro support (used by the macro callable).
  Value call_macro(const Stmt& def, const std::shared_ptr<Frame>& closure, CallArgs& args,
                   uint32_t pos);

 private:
  enum class Flow { Normal, Break, Continue };

  struct DepthGuard {
    DepthGuard(Interpreter& in, uint32_t pos);
    ~DepthGuard() { --in.depth_; }
    Interpreter& in;
  };

  Flow exec(const Body& body);
  Flow exec_stmt(const Stmt& s);
  Flow exec_for(const Stmt& s);
  std::string capture(const Body& body, std::shared_ptr<Frame> frame);
  Value apply_filter_chain(const Expr& filter, Value input);
  void assign(const Target& target, const Value& value, Frame& frame);
  void emit(std::string_view text, uint32_t pos);

  Value eval(const Expr& e);
  bool fold(const Expr& e, bool whole_output, Value* out);
  Value eval_inner(const Expr& e);
  Value eval_compare(const Expr& e);
  CallArgs eval_args(const Expr& e);
  Value lookup(const std::string& name) const;

  const Template& tmpl_;
  ChatTemplateLimits limits_;
  std::optional<std::tm> now_;
  uint64_t steps_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  bool folding_ = false;  // evaluating a {{ }} that Jinja folds at compile time
  std::string* out_ = nullptr;
  std::shared_ptr<Frame> frame_;    // current scope
  std::shared_ptr<Frame> globals_;  // builtins (range, namespace, raise_exception, ...)
  std::vector<std::weak_ptr<NamespaceObject>> namespaces_;  // cleared at the end (cycles)
  std::vector<std::weak_ptr<Frame>> frames_;                // cleared at the end (cycles)
};

// Binary and comparison operators with Python semantics (operators.cpp).
Value binary_op(Interpreter& in, BinOp op, const Value& a, const Value& b, uint32_t pos);
bool compare_op(Interpreter& in, CmpOp op, const Value& a, const Value& b, uint32_t pos);
// Python `<` for sorting / min / max; raises TypeError-like failures for unorderable values.
bool less_than(Interpreter& in, const Value& a, const Value& b, uint32_t pos);
bool contains(Interpreter& in, const Value& container, const Value& item, uint32_t pos);

// Reads arguments of builtins the way Python binds them (args.cpp).
class ArgReader {
 public:
  ArgReader(std::string_view function, CallArgs& args, std::vector<std::string_view> params,
            uint32_t pos);
  // Argument i (by position or by name), or nullptr when not passed.
  const Value* get(size_t i) const { return bound_[i]; }
  Value get_or(size_t i, Value fallback) const { return bound_[i] ? *bound_[i] : fallback; }
  // Typed readers; missing arguments take `fallback`, wrong types raise a TypeError-like error.
  int64_t integer(size_t i, int64_t fallback) const;
  bool boolean(size_t i, bool fallback) const;
  std::string string(size_t i, const std::string& fallback) const;

 private:
  std::string function_;
  std::vector<std::string_view> params_;
  std::vector<const Value*> bound_;
  uint32_t pos_;
};

// Registries (filters.cpp, tests.cpp, globals.cpp, methods.cpp).
using FilterFn = Value (*)(Interpreter&, const Value& input, CallArgs& args, uint32_t pos);
using TestFn = bool (*)(Interpreter&, const Value& input, CallArgs& args, uint32_t pos);
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
void install_globals(Frame& globals);
// The attribute `name` of a str / dict / list / tuple / loop value when that Python type has
// it: a bound method, or (for methods the sandbox forbids or this interpreter lacks) an
// undefined value that fails when called. nullopt when the type has no such attribute.
std::optional<Value> bound_method(const Value& self, const std::string& name);

// Helpers shared by filters and methods.
std::string python_strip(const std::string& s, const Value* chars, bool left, bool right,
                         uint32_t pos);
Value make_list(Interpreter& in, std::vector<Value> items, uint32_t pos,
                SeqKind kind = SeqKind::List);

}  // namespace edgelm::jinja
