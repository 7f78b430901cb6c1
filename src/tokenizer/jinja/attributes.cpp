// `obj.name`, `obj[key]` and `obj[a:b:c]` with Jinja's sandboxed lookup rules: attributes
// first for `.`, items first for `[]`, and an undefined value (not an error) when neither
// exists.
#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

std::string object_name(const Value& v) {
  if (v.is_none()) return "None";
  std::string name(1, '\'');
  name += type_name(v);
  name += " object'";
  return name;
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
}

Value no_element(const Value& obj, const Value& key) {
  std::string k = key.is_integral() ? std::to_string(key.as_int()) : type_name(key);
  return Value::undefined(object_name(obj) + " has no element " + k);
}

Value loop_attribute(const Value& obj, const std::string& name) {
  const LoopObject& l = obj.loop();
  const int64_t n = static_cast<int64_t>(l.items->size());
  const int64_t i = l.index0;
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") {
    return i > 0 ? (*l.items)[i - 1] : Value::undefined("there is no previous item");
  }
  if (name == "nextitem") {
    return i + 1 < n ? (*l.items)[i + 1] : Value::undefined("there is no next item");
  }
  if (auto m = bound_method(obj, name)) return *m;
  return no_attribute(obj, name);
}

bool indexable(const Value& v) {
  if (v.is_string()) return true;
  if (!v.is_list_like()) return false;
  SeqKind k = v.seq_kind();
  return k == SeqKind::List || k == SeqKind::Tuple || k == SeqKind::Range;
}

// Python's slice.indices(): clamps start/stop for a sequence of `len` items.
void slice_bounds(int64_t len, const Value& start, const Value& stop, int64_t step, int64_t* b,
                  int64_t* e) {
  int64_t lower = step > 0 ? 0 : -1;
  int64_t upper = step > 0 ? len : len - 1;
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t x = v.as_int();
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  *b = clamp(start, step > 0 ? lower : upper);
  *e = clamp(stop, step > 0 ? upper : lower);
}

}  // namespace

Value Interpreter::get_attr(const Value& obj, const std::string& name, uint32_t pos) {
  switch (obj.kind()) {
    case Kind::Undefined: undefined_error(obj, pos);
    case Kind::Dict: {
      if (auto m = bound_method(obj, name)) return *m;
      if (const Value* v = obj.dict().find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Kind::Namespace: {
      if (const Value* v = obj.ns().attrs.find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Kind::Loop: return loop_attribute(obj, name);
    default:
      if (auto m = bound_method(obj, name)) return *m;
      return no_attribute(obj, name);
  }
}

Value Interpreter::get_item(const Value& obj, const Value& key, uint32_t pos) {
  switch (obj.kind()) {
    case Kind::Undefined: undefined_error(obj, pos);
    case Kind::Dict:
      if (hashable(key)) {
        if (const Value* v = obj.dict().find(key)) return *v;
      }
      break;
    case Kind::String:
    case Kind::List:
      if (indexable(obj) && key.is_integral()) {
        int64_t i = key.as_int();
        if (obj.is_string()) {
          std::u32string cps = unicode::decode(obj.as_string());
          int64_t n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i < 0 || i >= n) return no_element(obj, key);
          std::string out;
          unicode::append(out, cps[static_cast<size_t>(i)]);
          return Value::string(std::move(out));
        }
        const auto& items = obj.list().items;
        int64_t n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return no_element(obj, key);
        return items[static_cast<size_t>(i)];
      }
      break;
    default:
      break;
  }
  // Jinja falls back to the attribute of that name for string keys.
  if (key.is_string()) {
    const std::string& name = key.as_string();
    switch (obj.kind()) {
      case Kind::Namespace:
        if (const Value* v = obj.ns().attrs.find(name)) return *v;
        break;
      case Kind::Loop:
        return loop_attribute(obj, name);
      default:
        if (auto m = bound_method(obj, name)) return *m;
    }
    return no_attribute(obj, name);
  }
  return no_element(obj, key);
}

Value Interpreter::get_slice(const Value& obj, const Value& start, const Value& stop,
                             const Value& step_value, uint32_t pos) {
  // Jinja compiles slicing to plain Python subscription: failures are errors, not undefined.
  if (obj.is_undefined()) undefined_error(obj, pos);
  auto valid = [](const Value& v) { return v.is_none() || v.is_integral(); };
  bool bad_indices = !valid(start) || !valid(stop) || !valid(step_value);
  if (folding_ && (!indexable(obj) || bad_indices)) {
    return Value::undefined(object_name(obj) + " cannot be sliced");
  }
  if (obj.is_dict()) fail_runtime(pos, "unhashable type: 'slice'");
  if (!indexable(obj)) fail_runtime(pos, in_quotes(type_name(obj)) + " object is not subscriptable");
  if (bad_indices) {
    fail_runtime(pos, "slice indices must be integers or None or have an __index__ method");
  }
  int64_t step = step_value.is_none() ? 1 : step_value.as_int();
  if (step == 0) fail_runtime(pos, "slice step cannot be zero");
  int64_t b = 0, e = 0;
  auto pick = [&](int64_t len, auto&& take) {
    slice_bounds(len, start, stop, step, &b, &e);
    if (step > 0) {
      for (int64_t i = b; i < e; i += step) take(static_cast<size_t>(i));
    } else {
      for (int64_t i = b; i > e; i += step) take(static_cast<size_t>(i));
    }
  };
  if (obj.is_string()) {
    std::u32string cps = unicode::decode(obj.as_string());
    std::u32string out;
    pick(static_cast<int64_t>(cps.size()), [&](size_t i) { out.push_back(cps[i]); });
    tick(pos, out.size() / 16);
    return Value::string(unicode::encode(out));
  }
  const ListObject& src = obj.list();
  std::vector<Value> out;
  pick(static_cast<int64_t>(src.items.size()), [&](size_t i) { out.push_back(src.items[i]); });
  tick(pos, out.size());
  if (src.kind == SeqKind::Range) {
    // range(...)[a:b:c] is again a range.
    Value r = make_list(*this, std::move(out), pos, SeqKind::Range);
    r.list().range_start = src.range_start + b * src.range_step;
    r.list().range_stop = src.range_start + e * src.range_step;
    r.list().range_step = src.range_step * step;
    return r;
  }
  return make_list(*this, std::move(out), pos, src.kind == SeqKind::Tuple ? SeqKind::Tuple : SeqKind::List);
}

}  // namespace edgelm::jinja
