// Jinja's built-in tests (`x is defined`, `x is string`, ...), jinja2/tests.py semantics.
#include <string_view>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

void no_args(std::string_view name, CallArgs& args, uint32_t pos) { ArgReader(name, args, {}, pos); }

Value one_arg(std::string_view name, CallArgs& args, uint32_t pos) {
  ArgReader a(name, args, {"other"}, pos);
  if (a.get(0) == nullptr) {
    fail_runtime(pos, std::string(name) + "() missing 1 required positional argument");
  }
  return *a.get(0);
}

bool t_defined(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("defined", a, p); return !v.is_undefined(); }
bool t_undefined(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("undefined", a, p); return v.is_undefined(); }
bool t_none(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("none", a, p); return v.is_none(); }
bool t_boolean(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("boolean", a, p); return v.is_bool(); }
bool t_false(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("false", a, p); return v.is_bool() && !v.as_bool(); }
bool t_true(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("true", a, p); return v.is_bool() && v.as_bool(); }
bool t_integer(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("integer", a, p); return v.is_int(); }
bool t_float(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("float", a, p); return v.is_float(); }
bool t_number(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("number", a, p); return v.is_number(); }
bool t_string(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("string", a, p); return v.is_string(); }
bool t_mapping(Interpreter&, const Value& v, CallArgs& a, uint32_t p) { no_args("mapping", a, p); return v.is_dict(); }

bool t_iterable(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("iterable", a, p);
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::String:
    case Kind::List:
    case Kind::Dict:
    case Kind::Loop: return true;
    default: return false;
  }
}

bool t_sequence(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("sequence", a, p);
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::String:
    case Kind::Dict: return true;
    case Kind::List: {
      SeqKind k = v.seq_kind();
      return k == SeqKind::List || k == SeqKind::Tuple || k == SeqKind::Range;
    }
    default: return false;
  }
}

bool t_callable(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("callable", a, p);
  return v.kind() == Kind::Callable || v.kind() == Kind::Undefined || v.kind() == Kind::Loop;
}

bool t_escaped(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("escaped", a, p);
  return v.is_markup();
}

bool t_sameas(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  Value other = one_arg("sameas", a, p);
  if (v.kind() != other.kind()) return false;
  switch (v.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float: return py_equal(v, other);
    default: return v.identity() == other.identity();
  }
}

bool t_in(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) {
  ArgReader r("in", a, {"seq"}, p);
  if (r.get(0) == nullptr) fail_runtime(p, "test_in() missing 1 required positional argument: 'seq'");
  return contains(in, *r.get(0), v, p);
}

bool mod_is(Interpreter& in, const Value& v, const Value& divisor, int64_t expect, uint32_t p) {
  return py_equal(binary_op(in, BinOp::Mod, v, divisor, p), Value::integer(expect));
}
bool t_odd(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { no_args("odd", a, p); return mod_is(in, v, Value::integer(2), 1, p); }
bool t_even(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { no_args("even", a, p); return mod_is(in, v, Value::integer(2), 0, p); }
bool t_divisibleby(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) {
  ArgReader r("divisibleby", a, {"num"}, p);
  if (r.get(0) == nullptr) fail_runtime(p, "test_divisibleby() missing 1 required positional argument: 'num'");
  return mod_is(in, v, *r.get(0), 0, p);
}

bool case_test(Interpreter& in, const Value& v, bool lower, uint32_t p) {
  bool any_cased = false;
  for (char32_t c : unicode::decode(in.to_text(v, p))) {
    if (lower ? unicode::is_upper_char(c) : unicode::is_lower_char(c)) return false;
    any_cased |= unicode::is_cased(c);
  }
  return any_cased;
}
bool t_lower(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { no_args("lower", a, p); return case_test(in, v, true, p); }
bool t_upper(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { no_args("upper", a, p); return case_test(in, v, false, p); }

template <CmpOp Op>
bool t_compare(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) {
  return compare_op(in, Op, v, one_arg("compare", a, p), p);
}

bool t_filter(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("filter", a, p);
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}
bool t_test(Interpreter&, const Value& v, CallArgs& a, uint32_t p) {
  no_args("test", a, p);
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"odd", t_odd},           {"even", t_even},         {"divisibleby", t_divisibleby},
    {"defined", t_defined},   {"undefined", t_undefined}, {"filter", t_filter},
    {"test", t_test},         {"none", t_none},         {"boolean", t_boolean},
    {"false", t_false},       {"true", t_true},         {"integer", t_integer},
    {"float", t_float},       {"lower", t_lower},       {"upper", t_upper},
    {"string", t_string},     {"mapping", t_mapping},   {"number", t_number},
    {"sequence", t_sequence}, {"iterable", t_iterable}, {"callable", t_callable},
    {"sameas", t_sameas},     {"escaped", t_escaped},   {"in", t_in},
    {"==", t_compare<CmpOp::Eq>}, {"eq", t_compare<CmpOp::Eq>}, {"equalto", t_compare<CmpOp::Eq>},
    {"!=", t_compare<CmpOp::Ne>}, {"ne", t_compare<CmpOp::Ne>},
    {">", t_compare<CmpOp::Gt>},  {"gt", t_compare<CmpOp::Gt>}, {"greaterthan", t_compare<CmpOp::Gt>},
    {">=", t_compare<CmpOp::Ge>}, {"ge", t_compare<CmpOp::Ge>},
    {"<", t_compare<CmpOp::Lt>},  {"lt", t_compare<CmpOp::Lt>}, {"lessthan", t_compare<CmpOp::Lt>},
    {"<=", t_compare<CmpOp::Le>}, {"le", t_compare<CmpOp::Le>},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const TestEntry& t : kTests) {
    if (t.name == name) return t.fn;
  }
  return nullptr;
}

bool known_test(std::string_view name) { return find_test(name) != nullptr; }

}  // namespace edgelm::jinja
