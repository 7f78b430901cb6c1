#include "tokenizer/jinja/interpreter.hpp"

#include <algorithm>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/pyformat.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

// Nested evaluation (expressions, statements, macro calls together) allowed on the C++ stack.
constexpr int kMaxRuntimeDepth = 1500;
// Namespaces and macro definitions per render (both are tracked to break reference cycles).
constexpr size_t kMaxTrackedObjects = 100'000;

struct MacroCallable : CallableObject {
  const Stmt* def = nullptr;
  std::shared_ptr<Frame> closure;
  Value call(Interpreter& in, CallArgs& args, uint32_t pos) override {
    return in.call_macro(*def, closure, args, pos);
  }
};

// Restores the interpreter's current output and scope when a nested render ends.
template <typename T>
struct Restore {
  Restore(T& slot, T value) : slot_(slot), saved_(std::move(slot)) { slot_ = std::move(value); }
  ~Restore() { slot_ = std::move(saved_); }
  T& slot_;
  T saved_;
};

}  // namespace

const Value* Frame::find(std::string_view name) const {
  if (!index.empty()) {
    auto it = index.find(std::string(name));
    return it == index.end() ? nullptr : &vars[it->second].second;
  }
  for (const auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Frame::set(const std::string& name, Value value) {
  if (Value* existing = const_cast<Value*>(find(name))) {
    *existing = std::move(value);
    return;
  }
  vars.emplace_back(name, std::move(value));
  if (vars.size() > 16) {  // large scopes (many context variables) get a hash index
    if (index.empty()) {
      for (size_t i = 0; i < vars.size(); ++i) index.emplace(vars[i].first, i);
    } else {
      index.emplace(name, vars.size() - 1);
    }
  }
}

Interpreter::DepthGuard::DepthGuard(Interpreter& interp, uint32_t pos) : in(interp) {
  if (++in.depth_ > kMaxRuntimeDepth) {
    --in.depth_;
    fail(FailKind::Limit, pos, "template evaluation nested too deeply");
  }
}

Interpreter::Interpreter(const Template& tmpl, const ChatTemplateLimits& limits,
                         std::optional<std::tm> now)
    : tmpl_(tmpl), limits_(limits), now_(now) {
  globals_ = std::make_shared<Frame>();
  install_globals(*globals_);
}

Interpreter::~Interpreter() {
  // Namespaces and frames that hold macros can reference themselves; empty them so that the
  // shared pointers are released.
  for (auto& weak : namespaces_) {
    if (auto ns = weak.lock()) ns->attrs.clear();
  }
  for (auto& weak : frames_) {
    if (auto f = weak.lock()) {
      f->index.clear();
      f->vars.clear();
    }
  }
}

std::string Interpreter::render(const Value& variables) {
  auto context = std::make_shared<Frame>();
  context->parent = globals_;
  for (const auto& [k, v] : variables.dict().entries) context->set(k.as_string(), v);
  frame_ = std::make_shared<Frame>();
  frame_->parent = context;
  std::string out;
  out_ = &out;
  exec(tmpl_.body);
  out_ = nullptr;
  return out;
}

void Interpreter::tick(uint32_t pos, uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    fail(FailKind::Limit, pos,
         "template exceeded " + std::to_string(limits_.max_steps) + " evaluation steps");
  }
}

void Interpreter::check_string_size(size_t bytes, uint32_t pos) const {
  if (bytes > limits_.max_output_bytes) {
    fail(FailKind::Limit, pos,
         "string of " + std::to_string(bytes) + " bytes exceeds the limit of " +
             std::to_string(limits_.max_output_bytes));
  }
}

void Interpreter::check_items(size_t count, uint32_t pos) const {
  if (count > limits_.max_container_items) {
    fail(FailKind::Limit, pos,
         "container of " + std::to_string(count) + " items exceeds the limit of " +
             std::to_string(limits_.max_container_items));
  }
}

void Interpreter::undefined_error(const Value& v, uint32_t pos) const {
  const std::string& hint = v.undefined_hint();
  fail_runtime(pos, hint.empty() ? "value is undefined" : hint);
}

void Interpreter::emit(std::string_view text, uint32_t pos) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    fail(FailKind::Limit, pos,
         "output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  out_->append(text);
}

std::string Interpreter::to_text(const Value& v, uint32_t pos) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::String: return v.as_string();
    default:
      return py_str(v, limits_.max_output_bytes);
  }
}

Value Interpreter::make_namespace(DictObject attrs) {
  if (namespaces_.size() >= kMaxTrackedObjects) {
    fail(FailKind::Limit, kNoPos, "too many namespace() objects");
  }
  auto ns = std::make_shared<NamespaceObject>();
  ns->attrs = std::move(attrs);
  namespaces_.push_back(ns);
  return Value::from_heap(Kind::Namespace, std::move(ns));
}

std::vector<Value> Interpreter::iterate(const Value& v, uint32_t pos) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::String: {
      std::u32string chars = unicode::decode(v.as_string());
      check_items(chars.size(), pos);
      std::vector<Value> out;
      for (char32_t c : chars) {
        std::string s;
        unicode::append(s, c);
        out.push_back(Value::string(std::move(s)));
      }
      tick(pos, out.size());
      return out;
    }
    case Kind::List: {
      ListObject& l = v.list();
      tick(pos, l.items.size() - std::min(l.next, l.items.size()));  // a step per copied element
      if (l.kind == SeqKind::Iterator) {
        std::vector<Value> rest(l.items.begin() + static_cast<std::ptrdiff_t>(l.next), l.items.end());
        l.next = l.items.size();
        return rest;
      }
      return l.items;
    }
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& [k, val] : v.dict().entries) keys.push_back(k);
      return keys;
    }
    default:
      fail_runtime(pos, in_quotes(type_name(v)) + " object is not iterable");
  }
}

Value Interpreter::lookup(const std::string& name) const {
  for (const Frame* f = frame_.get(); f != nullptr; f = f->parent.get()) {
    if (const Value* v = f->find(name)) return *v;
  }
  return Value::undefined(in_quotes(name) + " is undefined");
}

Value Interpreter::call(const Value& callee, CallArgs& args, uint32_t pos) {
  switch (callee.kind()) {
    case Kind::Callable: return callee.callable().call(*this, args, pos);
    case Kind::Undefined: undefined_error(callee, pos);
    default: fail_runtime(pos, in_quotes(type_name(callee)) + " object is not callable");
  }
}

Value Interpreter::filter(std::string_view name, const Value& input, CallArgs& args, uint32_t pos) {
  FilterFn fn = find_filter(name);
  if (fn == nullptr) fail_runtime(pos, "No filter named '" + std::string(name) + "'.");
  return fn(*this, input, args, pos);
}

bool Interpreter::test(std::string_view name, const Value& input, CallArgs& args, uint32_t pos) {
  TestFn fn = find_test(name);
  if (fn == nullptr) fail_runtime(pos, "No test named '" + std::string(name) + "'.");
  return fn(*this, input, args, pos);
}

Value Interpreter::call_macro(const Stmt& def, const std::shared_ptr<Frame>& closure,
                              CallArgs& args, uint32_t pos) {
  if (call_depth_ >= limits_.max_call_depth) {
    fail(FailKind::Limit, pos,
         "macro calls nested more than " + std::to_string(limits_.max_call_depth) + " deep");
  }
  ++call_depth_;
  struct CallDepth {
    int& d;
    ~CallDepth() { --d; }
  } depth_guard{call_depth_};

  auto frame = std::make_shared<Frame>();
  frame->parent = closure;
  const size_t n = def.params.size();
  std::vector<const Value*> bound(n, nullptr);
  std::vector<Value> varargs;
  auto kwargs = std::make_shared<DictObject>();
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < n) {
      bound[i] = &args.positional[i];
    } else if (def.uses_varargs) {
      varargs.push_back(args.positional[i]);
    } else {
      fail_runtime(pos, "macro '" + def.name + "' takes not more than " + std::to_string(n) +
                            " argument(s)");
    }
  }
  for (const auto& [name, value] : args.keyword) {
    auto it = std::find(def.params.begin(), def.params.end(), name);
    if (it != def.params.end()) {
      size_t i = static_cast<size_t>(it - def.params.begin());
      if (bound[i] != nullptr) {
        fail_runtime(pos, "macro '" + def.name + "' got multiple values for argument '" + name + "'");
      }
      bound[i] = &value;
    } else if (def.uses_kwargs) {
      kwargs->set(Value::string(name), value);
    } else {
      fail_runtime(pos, "macro '" + def.name + "' takes no keyword argument '" + name + "'");
    }
  }
  Restore<std::shared_ptr<Frame>> scope(frame_, frame);
  const size_t first_default = n - def.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (bound[i] != nullptr) {
      frame->set(def.params[i], *bound[i]);
    } else if (i >= first_default) {
      frame->set(def.params[i], eval(*def.defaults[i - first_default]));
    } else {
      frame->set(def.params[i],
                 Value::undefined("parameter '" + def.params[i] + "' was not provided"));
    }
  }
  if (def.uses_varargs) frame->set("varargs", make_list(*this, std::move(varargs), pos, SeqKind::Tuple));
  if (def.uses_kwargs) frame->set("kwargs", Value::from_heap(Kind::Dict, kwargs));
  std::string buffer;
  Restore<std::string*> output(out_, &buffer);
  exec(def.body);
  return Value::string(std::move(buffer));
}

// --- statements -----------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body) {
  for (const StmtPtr& s : body) {
    Flow flow = exec_stmt(*s);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

std::string Interpreter::capture(const Body& body, std::shared_ptr<Frame> frame) {
  std::string buffer;
  Restore<std::string*> output(out_, &buffer);
  Restore<std::shared_ptr<Frame>> scope(frame_, std::move(frame));
  exec(body);
  return buffer;
}

Value Interpreter::apply_filter_chain(const Expr& f, Value input) {
  Value inner = f.a ? apply_filter_chain(*f.a, std::move(input)) : std::move(input);
  CallArgs args = eval_args(f);
  return filter(f.name, inner, args, f.pos);
}

void Interpreter::assign(const Target& target, const Value& value, Frame& frame) {
  switch (target.kind) {
    case Target::Kind::Name:
      frame.set(target.name, value);
      return;
    case Target::Kind::NamespaceAttr: {
      Value ns = lookup(target.name);
      if (ns.kind() != Kind::Namespace) {
        fail_runtime(target.pos, "cannot assign attribute on non-namespace object");
      }
      ns.ns().attrs.set(Value::string(target.attr), value);
      return;
    }
    case Target::Kind::Tuple: {
      std::vector<Value> items = iterate(value, target.pos);
      if (items.size() != target.items.size()) {
        if (items.size() > target.items.size()) {
          fail_runtime(target.pos, "too many values to unpack (expected " +
                                       std::to_string(target.items.size()) + ")");
        }
        fail_runtime(target.pos, "not enough values to unpack (expected " +
                                     std::to_string(target.items.size()) + ", got " +
                                     std::to_string(items.size()) + ")");
      }
      for (size_t i = 0; i < items.size(); ++i) assign(target.items[i], items[i], frame);
      return;
    }
  }
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s) {
  DepthGuard guard(*this, s.pos);
  tick(s.pos);
  try {
    switch (s.kind) {
      case StmtKind::Text:
        emit(s.text, s.pos);
        return Flow::Normal;
      case StmtKind::Print: {
        Value v;
        if (!s.constant_output || !fold(*s.expr, true, &v)) v = eval(*s.expr);
        emit(to_text(v, s.expr->pos), s.pos);
        return Flow::Normal;
      }
      case StmtKind::If: {
        if (truthy(eval(*s.expr))) return exec(s.body);
        for (const auto& [test, body] : s.elifs) {
          if (truthy(eval(*test))) return exec(body);
        }
        return exec(s.else_body);
      }
      case StmtKind::For:
        return exec_for(s);
      case StmtKind::Set:
        assign(s.target, eval(*s.expr), *frame_);
        return Flow::Normal;
      case StmtKind::SetBlock: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        Value text = Value::string(capture(s.body, inner));
        if (s.filter) text = apply_filter_chain(*s.filter, text);
        assign(s.target, text, *frame_);
        return Flow::Normal;
      }
      case StmtKind::Macro: {
        if (frames_.size() >= kMaxTrackedObjects) {
          fail(FailKind::Limit, s.pos, "too many macro definitions");
        }
        auto macro = std::make_shared<MacroCallable>();
        macro->name = "macro " + in_quotes(s.name);
        macro->repr = "<Macro " + in_quotes(s.name) + ">";
        macro->def = &s;
        macro->closure = frame_;
        frames_.push_back(frame_);
        frame_->set(s.name, Value::from_heap(Kind::Callable, std::move(macro)));
        return Flow::Normal;
      }
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
      case StmtKind::FilterBlock: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        Value text = Value::string(capture(s.body, inner));
        emit(to_text(apply_filter_chain(*s.filter, text), s.pos), s.pos);
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        for (const auto& [target, expr] : s.assignments) assign(target, eval(*expr), *inner);
        Restore<std::shared_ptr<Frame>> scope(frame_, inner);
        return exec(s.body);
      }
      case StmtKind::Scope: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame_;
        Restore<std::shared_ptr<Frame>> scope(frame_, inner);
        return exec(s.body);
      }
    }
  } catch (TemplateFailure& f) {
    if (f.pos == kNoPos) f.pos = s.pos;
    throw;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
  std::vector<Value> items = iterate(eval(*s.expr), s.expr->pos);
  if (s.cond) {
    std::vector<Value> kept;
    for (Value& item : items) {
      tick(s.pos);
      auto probe = std::make_shared<Frame>();
      probe->parent = frame_;
      assign(s.target, item, *probe);
      Restore<std::shared_ptr<Frame>> scope(frame_, probe);
      if (truthy(eval(*s.cond))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {  // the else block has its own scope too
    auto inner = std::make_shared<Frame>();
    inner->parent = frame_;
    Restore<std::shared_ptr<Frame>> scope(frame_, inner);
    return exec(s.else_body);
  }
  auto loop = std::make_shared<LoopObject>();
  loop->items = std::make_shared<const std::vector<Value>>(std::move(items));
  Value loop_value = Value::from_heap(Kind::Loop, loop);
  const std::vector<Value>& list = *loop->items;
  for (size_t i = 0; i < list.size(); ++i) {
    tick(s.pos);
    loop->index0 = static_cast<int64_t>(i);
    auto iteration = std::make_shared<Frame>();
    iteration->parent = frame_;
    assign(s.target, list[i], *iteration);
    iteration->set("loop", loop_value);
    Restore<std::shared_ptr<Frame>> scope(frame_, iteration);
    if (exec(s.body) == Flow::Break) break;
  }
  return Flow::Normal;
}

// --- expressions ----------------------------------------------------------------------------

CallArgs Interpreter::eval_args(const Expr& e) {
  CallArgs args;
  args.positional.reserve(e.items.size());
  for (const ExprPtr& item : e.items) args.positional.push_back(eval(*item));
  for (const auto& [name, expr] : e.kwargs) args.keyword.emplace_back(name, eval(*expr));
  return args;
}

namespace {

// Jinja's has_safe_repr(): the values its optimizer substitutes for constant subexpressions.
bool safe_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::None:
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float:
    case Kind::String: return true;
    case Kind::List: {
      SeqKind k = v.seq_kind();
      if (k == SeqKind::Range) return true;
      if (k != SeqKind::List && k != SeqKind::Tuple) return false;
      for (const Value& item : v.list().items) {
        if (!safe_repr(item)) return false;
      }
      return true;
    }
    case Kind::Dict:
      for (const auto& [k, val] : v.dict().entries) {
        if (!safe_repr(k) || !safe_repr(val)) return false;
      }
      return true;
    default: return false;
  }
}

}  // namespace

bool Interpreter::fold(const Expr& e, bool whole_output, Value* out) {
  // Jinja evaluates constant subexpressions when compiling (through its getattr/getitem, so a
  // bad slice gives undefined instead of an error) and keeps the result when it succeeds and
  // has a literal form; everything else runs with run-time semantics.
  try {
    Restore<bool> folding(folding_, true);
    Value v = eval_inner(e);
    if (!whole_output && !safe_repr(v)) return false;
    *out = std::move(v);
    return true;
  } catch (const TemplateFailure& f) {
    if (f.kind == FailKind::Limit) throw;
    return false;
  }
}

Value Interpreter::eval(const Expr& e) {
  DepthGuard guard(*this, e.pos);
  tick(e.pos);
  if (e.constant && !folding_ && e.kind != ExprKind::Const) {
    Value v;
    if (fold(e, false, &v)) return v;
  }
  try {
    return eval_inner(e);
  } catch (TemplateFailure& f) {
    if (f.pos == kNoPos) f.pos = e.pos;
    throw;
  }
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.items[0]);
  for (size_t i = 0; i < e.cmp.size(); ++i) {
    Value right = eval(*e.items[i + 1]);
    if (!compare_op(*this, e.cmp[i], left, right, e.pos)) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Const:
      return e.value;
    case ExprKind::Name:
      if (folding_) fail_runtime(e.pos, "not a constant");
      return lookup(e.name);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& item : e.items) items.push_back(eval(*item));
      return make_list(*this, std::move(items), e.pos,
                       e.kind == ExprKind::List ? SeqKind::List : SeqKind::Tuple);
    }
    case ExprKind::Dict: {
      auto dict = std::make_shared<DictObject>();
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i]);
        if (!hashable(key)) fail_runtime(e.items[i]->pos, "unhashable type: '" + type_name(key) + "'");
        dict->set(std::move(key), eval(*e.items[i + 1]));
      }
      return Value::from_heap(Kind::Dict, std::move(dict));
    }
    case ExprKind::Getattr: {
      Value obj = eval(*e.a);
      if (obj.is_undefined()) undefined_error(obj, e.pos);
      return get_attr(obj, e.name, e.pos);
    }
    case ExprKind::Getitem: {
      Value obj = eval(*e.a);
      if (obj.is_undefined()) undefined_error(obj, e.pos);
      if (e.b->kind == ExprKind::Slice) {
        const Expr& sl = *e.b;
        auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value::none(); };
        Value start = part(sl.a), stop = part(sl.b), step = part(sl.c);
        return get_slice(obj, start, stop, step, e.pos);
      }
      return get_item(obj, eval(*e.b), e.pos);
    }
    case ExprKind::Slice:
      fail_unsupported(e.pos, "slices are only supported directly inside [...]");
    case ExprKind::Call: {
      if (folding_) fail_runtime(e.pos, "not a constant");
      Value callee = eval(*e.a);
      CallArgs args = eval_args(e);
      return call(callee, args, e.pos);
    }
    case ExprKind::Filter: {
      if (folding_ && !e.constant) fail_runtime(e.pos, "not a constant");
      Value input = eval(*e.a);
      CallArgs args = eval_args(e);
      return filter(e.name, input, args, e.pos);
    }
    case ExprKind::Test: {
      Value input = eval(*e.a);
      CallArgs args = eval_args(e);
      return Value::boolean(test(e.name, input, args, e.pos));
    }
    case ExprKind::Neg:
    case ExprKind::Pos: {
      Value v = eval(*e.a);
      if (v.is_undefined()) undefined_error(v, e.pos);
      if (!v.is_number()) {
        fail_runtime(e.pos, std::string("bad operand type for unary ") +
                                (e.kind == ExprKind::Neg ? "-" : "+") + ": '" + type_name(v) + "'");
      }
      if (v.is_float()) return Value::number(e.kind == ExprKind::Neg ? -v.as_float() : v.as_float());
      int64_t i = v.as_int();
      if (e.kind == ExprKind::Pos) return Value::integer(i);
      if (i == INT64_MIN) fail_unsupported(e.pos, "integer overflow");
      return Value::integer(-i);
    }
    case ExprKind::Not:
      return Value::boolean(!truthy(eval(*e.a)));
    case ExprKind::Binary: {
      Value a = eval(*e.a);
      Value b = eval(*e.b);
      return binary_op(*this, e.bin, a, b, e.pos);
    }
    case ExprKind::Compare:
      return eval_compare(e);
    case ExprKind::And: {
      Value left = eval(*e.a);
      if (!truthy(left)) return left;
      return eval(*e.b);
    }
    case ExprKind::Or: {
      Value left = eval(*e.a);
      if (truthy(left)) return left;
      return eval(*e.b);
    }
    case ExprKind::CondExpr: {
      if (truthy(eval(*e.a))) return eval(*e.b);
      if (e.c) return eval(*e.c);
      return Value::undefined("the inline if-expression evaluated to false and no else section "
                              "was defined");
    }
    case ExprKind::Concat: {
      std::string s;
      for (const ExprPtr& item : e.items) {
        s += to_text(eval(*item), item->pos);
        check_string_size(s.size(), e.pos);
      }
      tick(e.pos, s.size() / 256);  // copying is work too
      return Value::string(std::move(s));
    }
  }
  return Value();
}

Value make_list(Interpreter& in, std::vector<Value> items, uint32_t pos, SeqKind kind) {
  in.check_items(items.size(), pos);
  return Value::sequence(std::move(items), kind);
}

}  // namespace edgelm::jinja
