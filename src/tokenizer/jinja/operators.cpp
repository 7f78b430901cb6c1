// Python semantics of + - * / // % ** and comparisons on template values.
#include <cmath>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/pyformat.hpp"

namespace edgelm::jinja {
namespace {

const char* op_symbol(BinOp op) {
  switch (op) {
    case BinOp::Add: return "+";
    case BinOp::Sub: return "-";
    case BinOp::Mul: return "*";
    case BinOp::Div: return "/";
    case BinOp::FloorDiv: return "//";
    case BinOp::Mod: return "%";
    case BinOp::Pow: return "** or pow()";
  }
  return "?";
}

[[noreturn]] void unsupported_operands(BinOp op, const Value& a, const Value& b, uint32_t pos) {
  fail_runtime(pos, std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" +
                        type_name(a) + "' and '" + type_name(b) + "'");
}

[[noreturn]] void overflow(uint32_t pos) {
  fail_unsupported(pos, "integer result does not fit in 64 bits");
}

int64_t checked_add(int64_t x, int64_t y, uint32_t pos) {
  int64_t r = 0;
  if (__builtin_add_overflow(x, y, &r)) overflow(pos);
  return r;
}
int64_t checked_sub(int64_t x, int64_t y, uint32_t pos) {
  int64_t r = 0;
  if (__builtin_sub_overflow(x, y, &r)) overflow(pos);
  return r;
}
int64_t checked_mul(int64_t x, int64_t y, uint32_t pos) {
  int64_t r = 0;
  if (__builtin_mul_overflow(x, y, &r)) overflow(pos);
  return r;
}

Value repeat(Interpreter& in, const Value& seq, int64_t times, uint32_t pos) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(times) > in.limits().max_output_bytes / s.size()) {
      in.check_string_size(in.limits().max_output_bytes + 1, pos);
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    in.tick(pos, out.size() / 256);
    return Value::string(std::move(out));
  }
  const auto& items = seq.list().items;
  if (!items.empty() && static_cast<uint64_t>(times) > in.limits().max_container_items / items.size()) {
    in.check_items(in.limits().max_container_items + 1, pos);
  }
  std::vector<Value> out;
  out.reserve(items.size() * static_cast<size_t>(times));
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  in.tick(pos, out.size());  // a copied element costs a step, so a growing copy stays bounded
  return make_list(in, std::move(out), pos, seq.seq_kind());
}

bool is_list_or_tuple(const Value& v) {
  return v.is_list_like() && (v.seq_kind() == SeqKind::List || v.seq_kind() == SeqKind::Tuple);
}

// Python's float floor division and modulo (Objects/floatobject.c float_divmod).
void float_divmod(double vx, double wx, double* div_out, double* mod_out) {
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  *div_out = floordiv;
  *mod_out = mod;
}

Value arithmetic(BinOp op, const Value& a, const Value& b, uint32_t pos) {
  if (a.is_integral() && b.is_integral()) {
    int64_t x = a.as_int(), y = b.as_int();
    switch (op) {
      case BinOp::Add: return Value::integer(checked_add(x, y, pos));
      case BinOp::Sub: return Value::integer(checked_sub(x, y, pos));
      case BinOp::Mul: return Value::integer(checked_mul(x, y, pos));
      case BinOp::Div:
        if (y == 0) fail_runtime(pos, "division by zero");
        return Value::number(static_cast<double>(x) / static_cast<double>(y));
      case BinOp::FloorDiv:
      case BinOp::Mod: {
        if (y == 0) fail_runtime(pos, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) overflow(pos);
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          m += y;
          q -= 1;
        }
        return Value::integer(op == BinOp::FloorDiv ? q : m);
      }
      case BinOp::Pow: {
        if (y < 0) {
          if (x == 0) fail_runtime(pos, "0.0 cannot be raised to a negative power");
          return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
        }
        int64_t result = 1, base = x;
        for (int64_t e = y; e > 0; e >>= 1) {
          if (e & 1) result = checked_mul(result, base, pos);
          if (e > 1) base = checked_mul(base, base, pos);
        }
        return Value::integer(result);
      }
    }
  }
  double x = a.as_float(), y = b.as_float();
  switch (op) {
    case BinOp::Add: return Value::number(x + y);
    case BinOp::Sub: return Value::number(x - y);
    case BinOp::Mul: return Value::number(x * y);
    case BinOp::Div:
      if (y == 0) fail_runtime(pos, "float division by zero");
      return Value::number(x / y);
    case BinOp::FloorDiv:
    case BinOp::Mod: {
      if (y == 0) fail_runtime(pos, op == BinOp::Mod ? "float modulo" : "float floor division by zero");
      double div, mod;
      float_divmod(x, y, &div, &mod);
      return Value::number(op == BinOp::FloorDiv ? div : mod);
    }
    case BinOp::Pow: {
      if (x == 0 && y < 0) fail_runtime(pos, "0.0 cannot be raised to a negative power");
      if (x < 0 && std::floor(y) != y) {
        fail_unsupported(pos, "a negative number raised to a fractional power is complex");
      }
      return Value::number(std::pow(x, y));
    }
  }
  return Value();
}

}  // namespace

Value binary_op(Interpreter& in, BinOp op, const Value& a, const Value& b, uint32_t pos) {
  if (op == BinOp::Mod && a.is_string()) {  // str % anything, undefined included
    std::string s = percent_format(a.as_string(), b, in.limits().max_output_bytes);
    in.tick(pos, s.size() / 64);
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) in.undefined_error(a, pos);
  if (b.is_undefined()) in.undefined_error(b, pos);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b, pos);
  switch (op) {
    case BinOp::Add:
      if (a.is_string() && b.is_string()) {
        size_t n = a.as_string().size() + b.as_string().size();
        in.check_string_size(n, pos);
        in.tick(pos, n / 256);  // copying is work too
        return Value::string(a.as_string() + b.as_string());
      }
      if (is_list_or_tuple(a) && is_list_or_tuple(b) && a.seq_kind() == b.seq_kind()) {
        in.tick(pos, a.list().items.size() + b.list().items.size());  // a step per copied element
        std::vector<Value> items = a.list().items;
        items.insert(items.end(), b.list().items.begin(), b.list().items.end());
        return make_list(in, std::move(items), pos, a.seq_kind());
      }
      if (a.is_string()) {
        fail_runtime(pos, "can only concatenate str (not \"" + type_name(b) + "\") to str");
      }
      if (is_list_or_tuple(a)) {
        fail_runtime(pos, "can only concatenate " + type_name(a) + " (not \"" + type_name(b) +
                              "\") to " + type_name(a));
      }
      break;
    case BinOp::Mul:
      if ((a.is_string() || is_list_or_tuple(a)) && b.is_integral()) return repeat(in, a, b.as_int(), pos);
      if ((b.is_string() || is_list_or_tuple(b)) && a.is_integral()) return repeat(in, b, a.as_int(), pos);
      if (a.is_string() || b.is_string() || is_list_or_tuple(a) || is_list_or_tuple(b)) {
        fail_runtime(pos, "can't multiply sequence by non-int of type '" +
                              type_name(a.is_string() || is_list_or_tuple(a) ? b : a) + "'");
      }
      break;
    default:
      break;
  }
  unsupported_operands(op, a, b, pos);
}

bool less_than(Interpreter& in, const Value& a, const Value& b, uint32_t pos) {
  return compare_op(in, CmpOp::Lt, a, b, pos);
}

bool contains(Interpreter& in, const Value& container, const Value& item, uint32_t pos) {
  switch (container.kind()) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (!item.is_string()) {
        fail_runtime(pos, "'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::List: {
      ListObject& l = container.list();
      size_t start = l.kind == SeqKind::Iterator ? l.next : 0;
      for (size_t i = start; i < l.items.size(); ++i) {
        in.tick(pos);
        if (py_equal(l.items[i], item)) {
          if (l.kind == SeqKind::Iterator) l.next = i + 1;
          return true;
        }
      }
      if (l.kind == SeqKind::Iterator) l.next = l.items.size();
      return false;
    }
    case Kind::Dict:
      if (!hashable(item)) fail_runtime(pos, "unhashable type: '" + type_name(item) + "'");
      return container.dict().find(item) != nullptr;
    default:
      fail_runtime(pos, "argument of type '" + type_name(container) + "' is not iterable");
  }
}

bool compare_op(Interpreter& in, CmpOp op, const Value& a, const Value& b, uint32_t pos) {
  if ((op == CmpOp::Eq || op == CmpOp::Ne) && (a.is_list_like() || a.is_dict())) {
    in.tick(pos, (a.is_dict() ? a.dict().entries.size() : a.list().items.size()) / 16);
  }
  switch (op) {
    case CmpOp::Eq: return py_equal(a, b);
    case CmpOp::Ne: return !py_equal(a, b);
    case CmpOp::In: return contains(in, b, a, pos);
    case CmpOp::NotIn: return !contains(in, b, a, pos);
    default: break;
  }
  if (a.is_undefined()) in.undefined_error(a, pos);
  if (b.is_undefined()) in.undefined_error(b, pos);
  auto apply = [op](auto x, auto y) {
    switch (op) {
      case CmpOp::Lt: return x < y;
      case CmpOp::Le: return x <= y;
      case CmpOp::Gt: return x > y;
      default: return x >= y;
    }
  };
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return apply(a.as_int(), b.as_int());
    return apply(a.as_float(), b.as_float());
  }
  if (a.is_string() && b.is_string()) return apply(a.as_string().compare(b.as_string()), 0);
  if (is_list_or_tuple(a) && is_list_or_tuple(b) && a.seq_kind() == b.seq_kind()) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
      in.tick(pos);
      if (!py_equal(x[i], y[i])) return compare_op(in, op, x[i], y[i], pos);
    }
    return apply(x.size(), y.size());
  }
  const char* sym = op == CmpOp::Lt ? "<" : op == CmpOp::Le ? "<=" : op == CmpOp::Gt ? ">" : ">=";
  fail_runtime(pos, std::string("'") + sym + "' not supported between instances of '" +
                        type_name(a) + "' and '" + type_name(b) + "'");
}

}  // namespace edgelm::jinja
