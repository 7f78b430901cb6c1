// Jinja's built-in filters (jinja2/filters.py semantics), with `tojson` as transformers
// defines it (json.dumps, ensure_ascii=False by default). Filters that Jinja implements as
// generators (map, select, reject, selectattr, rejectattr, unique, items, reverse) return
// one-shot generator values here too, so `|length` on them fails and they are always truthy,
// exactly as in Python.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/pyformat.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

std::string soft_str(Interpreter& in, const Value& v, uint32_t pos) { return in.to_text(v, pos); }

Value iterator(Interpreter& in, std::vector<Value> items, uint32_t pos) {
  return make_list(in, std::move(items), pos, SeqKind::Iterator);
}

void no_args(std::string_view name, CallArgs& args, uint32_t pos) {
  ArgReader(name, args, {}, pos);
}

// --- attribute getters (make_attrgetter / make_multi_attrgetter) ----------------------------

std::vector<Value> attribute_parts(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    const std::string& s = attribute.as_string();
    size_t start = 0;
    while (true) {
      size_t dot = s.find('.', start);
      std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; });
      if (digits && part.size() < 18) {
        parts.push_back(Value::integer(std::stoll(part)));
      } else {
        parts.push_back(Value::string(part));
      }
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  } else if (!attribute.is_none() && !attribute.is_undefined()) {
    parts.push_back(attribute);
  }
  return parts;
}

Value lower_if_string(const Value& v) {
  return v.is_string() ? Value::string(unicode::to_lower(v.as_string())) : v;
}

struct AttrGetter {
  std::vector<Value> parts;
  bool ignore_case = false;
  std::optional<Value> fallback;  // map(attribute=..., default=...)

  Value operator()(Interpreter& in, Value item, uint32_t pos) const {
    for (const Value& part : parts) {
      item = in.get_item(item, part, pos);
      if (fallback && item.is_undefined()) item = *fallback;
    }
    return ignore_case ? lower_if_string(item) : item;
  }
};

// Sort / min / max keys: one attribute, or a comma-separated list compared as a list.
struct MultiGetter {
  std::vector<AttrGetter> getters;
  bool multi = false;
  Value operator()(Interpreter& in, const Value& item, uint32_t pos) const {
    if (!multi) return getters[0](in, item, pos);
    std::vector<Value> keys;
    for (const AttrGetter& g : getters) keys.push_back(g(in, item, pos));
    return Value::sequence(std::move(keys), SeqKind::List);
  }
};

MultiGetter multi_getter(const Value* attribute, bool ignore_case) {
  MultiGetter m;
  if (attribute != nullptr && attribute->is_string() &&
      attribute->as_string().find(',') != std::string::npos) {
    m.multi = true;
    const std::string& s = attribute->as_string();
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      Value part = Value::string(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      m.getters.push_back(AttrGetter{attribute_parts(part), ignore_case, std::nullopt});
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    m.getters.push_back(AttrGetter{attribute ? attribute_parts(*attribute) : std::vector<Value>{},
                                   ignore_case, std::nullopt});
  }
  return m;
}

// --- numbers ----------------------------------------------------------------------------------

std::string strip_ascii(std::string_view s) {
  return python_strip(std::string(s), nullptr, true, true, kNoPos);
}

// Python float(str): decimal / exponent forms, inf / nan, single underscores between digits.
std::optional<double> parse_python_float(const std::string& text) {
  std::string s = strip_ascii(text);
  if (s.empty()) return std::nullopt;
  std::string lower = unicode::to_lower(s);
  size_t i = (lower[0] == '+' || lower[0] == '-') ? 1 : 0;
  std::string_view body = std::string_view(lower).substr(i);
  double sign = lower[0] == '-' ? -1.0 : 1.0;
  if (body == "inf" || body == "infinity") return sign * INFINITY;
  if (body == "nan") return std::nan("");
  std::string clean;
  bool digits = false, dot = false, exp = false;
  char prev = 0;
  for (size_t k = 0; k < body.size(); ++k) {
    char c = body[k];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '_') {
      bool next_digit = k + 1 < body.size() && body[k + 1] >= '0' && body[k + 1] <= '9';
      if (!(prev >= '0' && prev <= '9') || !next_digit) return std::nullopt;
      prev = c;
      continue;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if (c == 'e' && digits && !exp) {
      exp = true;
      digits = false;
    } else if ((c == '+' || c == '-') && prev == 'e') {
    } else {
      return std::nullopt;
    }
    clean += c;
    prev = c;
  }
  if (!digits) return std::nullopt;
  return sign * std::strtod(clean.c_str(), nullptr);
}

// Python int(str, base) for bases 0 and 2..36.
std::optional<int64_t> parse_python_int(const std::string& text, int64_t base, uint32_t pos) {
  std::string s = strip_ascii(text);
  if (s.empty() || base == 1 || base < 0 || base > 36) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  auto prefix_base = [&](char p) -> int64_t {
    p = static_cast<char>(p | 0x20);
    return p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
  };
  if (i + 1 < s.size() && s[i] == '0' && prefix_base(s[i + 1]) != 0 &&
      (base == 0 || base == prefix_base(s[i + 1]))) {
    base = prefix_base(s[i + 1]);
    i += 2;
    if (i < s.size() && s[i] == '_') ++i;
  } else if (base == 0) {
    base = 10;
    if (s.size() - i > 1 && s[i] == '0') {  // "012" is invalid with base 0
      for (size_t k = i; k < s.size(); ++k) {
        if (s[k] != '0' && s[k] != '_') return std::nullopt;
      }
    }
  }
  if (i >= s.size()) return std::nullopt;
  uint64_t value = 0;
  bool prev_digit = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      if (!prev_digit || i + 1 >= s.size()) return std::nullopt;
      prev_digit = false;
      continue;
    }
    int d = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 10
            : (c >= 'A' && c <= 'Z') ? c - 'A' + 10
                                     : 99;
    if (d >= base) return std::nullopt;
    if (value > (static_cast<uint64_t>(INT64_MAX) - d) / static_cast<uint64_t>(base)) {
      fail_unsupported(pos, "integer does not fit in 64 bits");
    }
    value = value * base + d;
    prev_digit = true;
  }
  int64_t v = static_cast<int64_t>(value);
  return negative ? -v : v;
}

// Python round(x, n) for floats: correctly rounded, ties to even.
double round_float(double x, int64_t n) {
  if (!std::isfinite(x) || n > 308) return x;
  if (n >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
    return std::strtod(buf, nullptr);
  }
  if (n < -308) return std::copysign(0.0, x);
  double pow1 = std::pow(10.0, static_cast<double>(-n));
  double y = x / pow1;
  double z = std::nearbyint(y);
  return z * pow1;
}

// --- filters ----------------------------------------------------------------------------------

Value f_abs(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("abs", args, pos);
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (v.is_float()) return Value::number(std::fabs(v.as_float()));
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) fail_unsupported(pos, "integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  fail_runtime(pos, "bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("attr", args, {"name"}, pos);
  std::string name = a.string(0, "");
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (v.kind() == Kind::Namespace || v.kind() == Kind::Loop) return in.get_attr(v, name, pos);
  if (auto m = bound_method(v, name)) return *m;
  return Value::undefined(in_quotes(type_name(v) + " object") + " has no attribute " + in_quotes(name));
}

Value f_batch(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("batch", args, {"linecount", "fill_with"}, pos);
  int64_t count = a.integer(0, 0);
  if (count <= 0) fail_runtime(pos, "batch(): linecount must be positive");
  const Value* fill = a.get(1);
  std::vector<Value> batches, current;
  for (Value& item : in.iterate(v, pos)) {
    current.push_back(std::move(item));
    if (static_cast<int64_t>(current.size()) == count) {
      batches.push_back(make_list(in, std::move(current), pos));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (fill != nullptr && !fill->is_none()) {
      while (static_cast<int64_t>(current.size()) < count) current.push_back(*fill);
    }
    batches.push_back(make_list(in, std::move(current), pos));
  }
  return iterator(in, std::move(batches), pos);
}

Value f_capitalize(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("capitalize", args, pos);
  CallArgs none;
  return in.call(*bound_method(Value::string(soft_str(in, v, pos)), "capitalize"), none, pos);
}

Value f_center(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("center", args, {"width"}, pos);
  CallArgs inner;
  inner.positional.push_back(Value::integer(a.integer(0, 80)));
  return in.call(*bound_method(Value::string(soft_str(in, v, pos)), "center"), inner, pos);
}

Value f_default(Interpreter&, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("default", args, {"default_value", "boolean"}, pos);
  if (v.is_undefined() || (a.boolean(1, false) && !truthy(v))) {
    return a.get_or(0, Value::string(""));
  }
  return v;
}

bool sort_less(Interpreter& in, const Value& a, const Value& b, uint32_t pos) {
  return less_than(in, a, b, pos);
}

// Python's sorted(): stable, and reverse=True keeps equal elements in their original order.
void python_sort(Interpreter& in, std::vector<std::pair<Value, Value>>& keyed, bool reverse,
                 uint32_t pos) {
  in.tick(pos, keyed.size() * 4);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? sort_less(in, y.first, x.first, pos) : sort_less(in, x.first, y.first, pos);
  });
}

Value f_dictsort(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("dictsort", args, {"case_sensitive", "by", "reverse"}, pos);
  bool case_sensitive = a.boolean(0, false);
  std::string by = a.string(1, "key");
  bool reverse = a.boolean(2, false);
  if (by != "key" && by != "value") fail_runtime(pos, "You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) fail_runtime(pos, "dictsort expects a dict, not " + type_name(v));
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [k, val] : v.dict().entries) {
    Value key = by == "key" ? k : val;
    if (!case_sensitive) key = lower_if_string(key);
    keyed.emplace_back(key, Value::sequence({k, val}, SeqKind::Tuple));
  }
  python_sort(in, keyed, reverse, pos);
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return make_list(in, std::move(out), pos);
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value f_escape(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("escape", args, pos);
  if (v.is_markup()) return v;
  std::string s = html_escape(soft_str(in, v, pos));
  in.check_string_size(s.size(), pos);
  return Value::markup(std::move(s));
}

Value f_forceescape(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("forceescape", args, pos);
  std::string s = html_escape(soft_str(in, v, pos));
  in.check_string_size(s.size(), pos);
  return Value::markup(std::move(s));
}

Value f_first(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("first", args, pos);
  if (v.is_list_like() && v.seq_kind() == SeqKind::Iterator) {
    ListObject& l = v.list();
    if (l.next < l.items.size()) return l.items[l.next++];
  } else {
    std::vector<Value> items = in.iterate(v, pos);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value f_float(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("float", args, {"default"}, pos);
  Value fallback = a.get_or(0, Value::number(0.0));
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_string()) {
    if (auto f = parse_python_float(v.as_string())) return Value::number(*f);
  }
  return fallback;
}

Value f_format(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    fail_runtime(pos, "can't handle positional and keyword arguments at the same time");
  }
  Value spec;
  if (!args.keyword.empty()) {
    auto d = std::make_shared<DictObject>();
    for (auto& [k, val] : args.keyword) d->set(Value::string(k), val);
    spec = Value::from_heap(Kind::Dict, std::move(d));
  } else {
    spec = Value::sequence(args.positional, SeqKind::Tuple);
  }
  std::string s = percent_format(soft_str(in, v, pos), spec, in.limits().max_output_bytes);
  return Value::string(std::move(s));
}

void splitlines_into(const std::u32string& s, std::vector<std::u32string>& lines) {
  size_t i = 0, start = 0;
  while (i < s.size()) {
    if (unicode::is_line_break(s[i])) {
      lines.push_back(s.substr(start, i - start));
      i += (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1;
      start = i;
    } else {
      ++i;
    }
  }
  if (start < s.size()) lines.push_back(s.substr(start));
}

Value f_indent(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("indent", args, {"width", "first", "blank"}, pos);
  std::u32string indention;
  const Value* width = a.get(0);
  if (width != nullptr && width->is_string()) {
    indention = unicode::decode(width->as_string());
  } else {
    int64_t w = a.integer(0, 4);
    in.check_string_size(static_cast<size_t>(std::max<int64_t>(w, 0)), pos);
    indention.assign(static_cast<size_t>(std::max<int64_t>(w, 0)), U' ');
  }
  bool first = a.boolean(1, false), blank = a.boolean(2, false);
  // do_indent starts with `s += "\n"`: anything but a string fails there.
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (!v.is_string()) {
    fail_runtime(pos, "unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
  }
  std::u32string s = unicode::decode(v.as_string());
  s += U'\n';
  std::vector<std::u32string> lines;
  splitlines_into(s, lines);
  std::u32string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += U'\n' + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? std::u32string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += U'\n';
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
      if (rv.size() > in.limits().max_output_bytes) in.check_string_size(rv.size(), pos);
    }
  }
  if (first) rv = indention + rv;
  std::string out = unicode::encode(rv);
  in.check_string_size(out.size(), pos);
  return Value::string(std::move(out));
}

Value f_int(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("int", args, {"default", "base"}, pos);
  Value fallback = a.get_or(0, Value::integer(0));
  int64_t base = a.integer(1, 10);
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (v.is_integral()) return Value::integer(v.as_int());
  double f = 0;
  if (v.is_float()) {
    f = v.as_float();
    if (std::isinf(f)) fail_runtime(pos, "cannot convert float infinity to integer");
    if (std::isnan(f)) return fallback;
  } else if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), base, pos)) return Value::integer(*i);
    auto parsed = parse_python_float(v.as_string());
    if (!parsed || !std::isfinite(*parsed)) return fallback;
    f = *parsed;
  } else {
    return fallback;
  }
  if (std::fabs(f) >= 9.2e18) fail_unsupported(pos, "integer does not fit in 64 bits");
  return Value::integer(static_cast<int64_t>(std::trunc(f)));
}

Value f_items(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("items", args, pos);
  if (v.is_undefined()) return iterator(in, {}, pos);
  if (!v.is_dict()) fail_runtime(pos, "Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict().entries) out.push_back(Value::sequence({k, val}, SeqKind::Tuple));
  return iterator(in, std::move(out), pos);
}

Value f_join(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("join", args, {"d", "attribute"}, pos);
  std::string sep = a.get(0) ? soft_str(in, *a.get(0), pos) : std::string();
  std::optional<AttrGetter> getter;
  if (a.get(1) != nullptr && !a.get(1)->is_none()) getter = AttrGetter{attribute_parts(*a.get(1)), false, std::nullopt};
  std::string out;
  std::vector<Value> items = in.iterate(v, pos);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += soft_str(in, getter ? (*getter)(in, items[i], pos) : items[i], pos);
    in.check_string_size(out.size(), pos);
  }
  in.tick(pos, items.size());
  return Value::string(std::move(out));
}

Value f_last(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("last", args, pos);
  if (v.is_list_like() && v.seq_kind() == SeqKind::Iterator) {
    fail_runtime(pos, "'generator' object is not reversible");
  }
  std::vector<Value> items = in.iterate(v, pos);
  if (!items.empty()) return items.back();
  return Value::undefined("No last item, sequence was empty.");
}

Value f_length(Interpreter&, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("length", args, pos);
  switch (v.kind()) {
    case Kind::Undefined: return Value::integer(0);
    case Kind::String: return Value::integer(static_cast<int64_t>(unicode::length(v.as_string())));
    case Kind::List:
      if (v.seq_kind() == SeqKind::Iterator) break;
      return Value::integer(static_cast<int64_t>(v.list().items.size()));
    case Kind::Dict: return Value::integer(static_cast<int64_t>(v.dict().entries.size()));
    case Kind::Loop: return Value::integer(static_cast<int64_t>(v.loop().items->size()));
    default: break;
  }
  fail_runtime(pos, "object of type '" + type_name(v) + "' has no len()");
}

Value f_list(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("list", args, pos);
  return make_list(in, in.iterate(v, pos), pos);
}

Value f_lower(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("lower", args, pos);
  return Value::string(unicode::to_lower(soft_str(in, v, pos)));
}

Value f_upper(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("upper", args, pos);
  return Value::string(unicode::to_upper(soft_str(in, v, pos)));
}

Value f_map(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  if (!truthy(v)) return iterator(in, {}, pos);
  std::vector<Value> out;
  std::vector<Value> items = in.iterate(v, pos);
  if (args.positional.empty()) {
    const Value* attribute = nullptr;
    std::optional<Value> fallback;
    for (const auto& [k, val] : args.keyword) {
      if (k == "attribute") attribute = &val;
      else if (k == "default") fallback = val;
      else fail_runtime(pos, "Unexpected keyword argument '" + k + "'");
    }
    if (attribute == nullptr) fail_runtime(pos, "map requires a filter argument");
    AttrGetter getter{attribute_parts(*attribute), false, fallback};
    for (const Value& item : items) out.push_back(getter(in, item, pos));
  } else {
    if (!args.positional[0].is_string()) fail_runtime(pos, "map(): the filter name must be a string");
    std::string name = args.positional[0].as_string();
    for (const Value& item : items) {
      CallArgs inner;
      inner.positional.assign(args.positional.begin() + 1, args.positional.end());
      inner.keyword = args.keyword;
      out.push_back(in.filter(name, item, inner, pos));
    }
  }
  return iterator(in, std::move(out), pos);
}

Value aggregate(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos, bool want_max) {
  ArgReader a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"}, pos);
  bool case_sensitive = a.boolean(0, false);
  AttrGetter getter{a.get(1) ? attribute_parts(*a.get(1)) : std::vector<Value>{}, !case_sensitive,
                    std::nullopt};
  std::vector<Value> items = in.iterate(v, pos);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = getter(in, items[0], pos);
  for (size_t i = 1; i < items.size(); ++i) {
    in.tick(pos);
    Value key = getter(in, items[i], pos);
    bool better = want_max ? less_than(in, best_key, key, pos) : less_than(in, key, best_key, pos);
    if (better) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}
Value f_max(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) { return aggregate(in, v, args, pos, true); }
Value f_min(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) { return aggregate(in, v, args, pos, false); }

Value select_or_reject(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos,
                       bool select, bool by_attribute) {
  if (!truthy(v)) return iterator(in, {}, pos);
  std::optional<AttrGetter> getter;
  size_t off = 0;
  if (by_attribute) {
    if (args.positional.empty()) fail_runtime(pos, "Missing parameter for attribute name");
    getter = AttrGetter{attribute_parts(args.positional[0]), false, std::nullopt};
    off = 1;
  }
  std::optional<std::string> test_name;
  if (args.positional.size() > off) {
    if (!args.positional[off].is_string()) fail_runtime(pos, "the test name must be a string");
    test_name = args.positional[off].as_string();
  }
  std::vector<Value> out;
  for (const Value& item : in.iterate(v, pos)) {
    in.tick(pos);
    Value subject = getter ? (*getter)(in, item, pos) : item;
    bool ok;
    if (test_name) {
      CallArgs inner;
      inner.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(off + 1),
                              args.positional.end());
      inner.keyword = args.keyword;
      ok = in.test(*test_name, subject, inner, pos);
    } else {
      ok = truthy(subject);
    }
    if (ok == select) out.push_back(item);
  }
  return iterator(in, std::move(out), pos);
}
Value f_select(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { return select_or_reject(in, v, a, p, true, false); }
Value f_reject(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { return select_or_reject(in, v, a, p, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { return select_or_reject(in, v, a, p, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a, uint32_t p) { return select_or_reject(in, v, a, p, false, true); }

Value f_replace(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("replace", args, {"old", "new", "count"}, pos);
  if (a.get(0) == nullptr || a.get(1) == nullptr) fail_runtime(pos, "replace() missing arguments");
  CallArgs inner;
  inner.positional.push_back(Value::string(soft_str(in, *a.get(0), pos)));
  inner.positional.push_back(Value::string(soft_str(in, *a.get(1), pos)));
  const Value* count = a.get(2);
  if (count != nullptr && !count->is_none()) inner.positional.push_back(*count);
  return in.call(*bound_method(Value::string(soft_str(in, v, pos)), "replace"), inner, pos);
}

Value f_reverse(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("reverse", args, pos);
  if (v.is_string()) {
    std::u32string s = unicode::decode(v.as_string());
    std::reverse(s.begin(), s.end());
    return Value::string(unicode::encode(s));
  }
  bool reversible = !(v.is_list_like() && v.seq_kind() == SeqKind::Iterator);
  std::vector<Value> items = in.iterate(v, pos);
  std::reverse(items.begin(), items.end());
  return make_list(in, std::move(items), pos, reversible ? SeqKind::Iterator : SeqKind::List);
}

Value f_round(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("round", args, {"precision", "method"}, pos);
  int64_t precision = a.integer(0, 0);
  std::string method = a.string(1, "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    fail_runtime(pos, "method must be common, ceil or floor");
  }
  if (v.is_undefined()) in.undefined_error(v, pos);
  if (!v.is_number()) fail_runtime(pos, "type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      int64_t x = v.as_int();
      if (precision >= 0) return Value::integer(x);
      if (precision < -18) return Value::integer(0);
      int64_t p = 1;
      for (int64_t i = 0; i < -precision; ++i) p *= 10;
      int64_t q = x / p, r = x % p;
      if (r < 0) {
        r += p;
        q -= 1;
      }
      if (2 * r > p || (2 * r == p && (q % 2 != 0))) q += 1;
      int64_t out = 0;
      if (__builtin_mul_overflow(q, p, &out)) fail_unsupported(pos, "integer overflow");
      return Value::integer(out);
    }
    return Value::number(round_float(v.as_float(), precision));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * scale;
  double r = method == "ceil" ? std::ceil(x) : std::floor(x);
  return Value::number(r / scale);
}

Value f_safe(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("safe", args, pos);
  return Value::markup(soft_str(in, v, pos));
}

Value f_sort(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("sort", args, {"reverse", "case_sensitive", "attribute"}, pos);
  bool reverse = a.boolean(0, false), case_sensitive = a.boolean(1, false);
  MultiGetter key = multi_getter(a.get(2), !case_sensitive);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : in.iterate(v, pos)) {
    Value k = key(in, item, pos);
    keyed.emplace_back(std::move(k), std::move(item));
  }
  python_sort(in, keyed, reverse, pos);
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return make_list(in, std::move(out), pos);
}

Value f_string(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("string", args, pos);
  return Value::string(soft_str(in, v, pos));
}

Value f_sum(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("sum", args, {"attribute", "start"}, pos);
  std::optional<AttrGetter> getter;
  if (a.get(0) != nullptr && !a.get(0)->is_none()) getter = AttrGetter{attribute_parts(*a.get(0)), false, std::nullopt};
  Value total = a.get_or(1, Value::integer(0));
  if (total.is_string()) fail_runtime(pos, "sum() can't sum strings [use ''.join(seq) instead]");
  for (const Value& item : in.iterate(v, pos)) {
    total = binary_op(in, BinOp::Add, total, getter ? (*getter)(in, item, pos) : item, pos);
  }
  return total;
}

Value f_title(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("title", args, pos);
  // "".join(w[0].upper() + w[1:].lower() for w in re.split(r"([-\s({\[<]+)", s) if w)
  std::u32string s = unicode::decode(soft_str(in, v, pos));
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::is_space(c);
  };
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    bool sep = is_sep(s[i]);
    while (j < s.size() && is_sep(s[j]) == sep) ++j;
    out += unicode::upper(s[i]);
    for (size_t k = i + 1; k < j; ++k) out += unicode::lower(s[k]);
    i = j;
  }
  return Value::string(unicode::encode(out));
}

Value f_tojson(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}, pos);
  JsonOptions opt;
  opt.ensure_ascii = a.boolean(0, false);
  const Value* indent = a.get(1);
  if (indent != nullptr && !indent->is_none()) {
    if (indent->is_string()) {
      opt.indent = indent->as_string();
    } else if (indent->is_integral()) {
      int64_t n = indent->as_int();
      in.check_string_size(static_cast<size_t>(std::max<int64_t>(n, 0)), pos);
      opt.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    } else {
      fail_runtime(pos, "tojson(): indent must be an int or a string");
    }
    opt.item_separator = ",";
  }
  const Value* separators = a.get(2);
  if (separators != nullptr && !separators->is_none()) {
    std::vector<Value> parts = in.iterate(*separators, pos);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      fail_runtime(pos, "tojson(): separators must be a pair of strings");
    }
    opt.item_separator = parts[0].as_string();
    opt.key_separator = parts[1].as_string();
  }
  opt.sort_keys = a.boolean(3, false);
  std::string out = json_dumps(v, opt, in.limits().max_output_bytes);
  in.tick(pos, out.size() / 64);
  return Value::string(std::move(out));
}

Value f_trim(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("trim", args, {"chars"}, pos);
  return Value::string(python_strip(soft_str(in, v, pos), a.get(0), true, true, pos));
}

Value f_truncate(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("truncate", args, {"length", "killwords", "end", "leeway"}, pos);
  int64_t length = a.integer(0, 255);
  bool killwords = a.boolean(1, false);
  std::u32string end = unicode::decode(a.string(2, "..."));
  int64_t leeway = a.get(3) && !a.get(3)->is_none() ? a.integer(3, 5) : 5;
  if (length < static_cast<int64_t>(end.size())) fail_runtime(pos, "expected length >= " + std::to_string(end.size()));
  if (leeway < 0) fail_runtime(pos, "expected leeway >= 0");
  if (!v.is_string()) {
    // Only len() and the comparison run before the string operations.
    int64_t len = 0;
    if (v.is_undefined()) {
      len = 0;
    } else if (v.is_dict()) {
      len = static_cast<int64_t>(v.dict().entries.size());
    } else if (v.is_list_like() && v.seq_kind() != SeqKind::Iterator) {
      len = static_cast<int64_t>(v.list().items.size());
    } else {
      fail_runtime(pos, "object of type '" + type_name(v) + "' has no len()");
    }
    if (len <= length + leeway) return v;
    fail_runtime(pos, "truncate(): '" + type_name(v) + "' object has no attribute 'rsplit'");
  }
  std::u32string s = unicode::decode(v.as_string());
  if (static_cast<int64_t>(s.size()) <= length + leeway) return v;
  std::u32string head = s.substr(0, static_cast<size_t>(length) - end.size());
  if (!killwords) {
    size_t space = head.rfind(U' ');
    if (space != std::u32string::npos) head.resize(space);
  }
  return Value::string(unicode::encode(head + end));
}

Value f_unique(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  ArgReader a("unique", args, {"case_sensitive", "attribute"}, pos);
  AttrGetter getter{a.get(1) ? attribute_parts(*a.get(1)) : std::vector<Value>{}, !a.boolean(0, false),
                    std::nullopt};
  std::vector<Value> seen, out;
  for (const Value& item : in.iterate(v, pos)) {
    Value key = getter(in, item, pos);
    if (!hashable(key)) fail_runtime(pos, "unhashable type: '" + type_name(key) + "'");
    bool dup = false;
    for (const Value& s : seen) {
      in.tick(pos);
      if (py_equal(s, key)) {
        dup = true;
        break;
      }
    }
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return iterator(in, std::move(out), pos);
}

Value f_wordcount(Interpreter& in, const Value& v, CallArgs& args, uint32_t pos) {
  no_args("wordcount", args, pos);
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : unicode::decode(soft_str(in, v, pos))) {
    bool w = unicode::is_alpha(c) || unicode::is_decimal(c) || c == '_';
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value::integer(words);
}

Value f_unsupported(Interpreter&, const Value&, CallArgs&, uint32_t pos) {
  fail_unsupported(pos, "this filter is not supported by the chat template interpreter");
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},           {"attr", f_attr},           {"batch", f_batch},
    {"capitalize", f_capitalize}, {"center", f_center},   {"count", f_length},
    {"d", f_default},         {"default", f_default},     {"dictsort", f_dictsort},
    {"e", f_escape},          {"escape", f_escape},       {"first", f_first},
    {"float", f_float},       {"forceescape", f_forceescape},  {"format", f_format},
    {"indent", f_indent},     {"int", f_int},             {"items", f_items},
    {"join", f_join},         {"last", f_last},           {"length", f_length},
    {"list", f_list},         {"lower", f_lower},         {"map", f_map},
    {"max", f_max},           {"min", f_min},             {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
    {"round", f_round},       {"safe", f_safe},           {"select", f_select},
    {"selectattr", f_selectattr}, {"sort", f_sort},       {"string", f_string},
    {"sum", f_sum},           {"title", f_title},         {"tojson", f_tojson},
    {"trim", f_trim},         {"truncate", f_truncate},   {"unique", f_unique},
    {"upper", f_upper},       {"wordcount", f_wordcount},
    // Jinja filters that chat templates do not use; they fail with a clear message.
    {"filesizeformat", f_unsupported}, {"groupby", f_unsupported}, {"pprint", f_unsupported},
    {"random", f_unsupported}, {"slice", f_unsupported},  {"striptags", f_unsupported},
    {"urlencode", f_unsupported}, {"urlize", f_unsupported}, {"wordwrap", f_unsupported},
    {"xmlattr", f_unsupported},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

bool known_filter(std::string_view name) { return find_filter(name) != nullptr; }

}  // namespace edgelm::jinja
