// Methods templates call on values: str (strip, split, startswith, replace, format, ...), dict
// (items, keys, values, get), list / tuple (index, count) and the loop object (cycle,
// changed). Mutating methods are refused as the immutable sandbox refuses them.
#include <algorithm>
#include <string_view>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/pyformat.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

using MethodFn = Value (*)(Interpreter&, const Value& self, CallArgs&, uint32_t pos);

struct Method : CallableObject {
  Value self;
  MethodFn fn = nullptr;
  Value call(Interpreter& in, CallArgs& args, uint32_t pos) override {
    return fn(in, self, args, pos);
  }
};

struct MethodEntry {
  std::string_view name;
  MethodFn fn;
};

std::u32string cps(const Value& v) { return unicode::decode(v.as_string()); }
Value str(std::u32string_view s) { return Value::string(unicode::encode(s)); }

const std::string& string_arg(const Value* v, const char* method, uint32_t pos) {
  if (v == nullptr || !v->is_string()) {
    fail_runtime(pos, std::string(method) + "() argument must be str, not " +
                          (v ? type_name(*v) : std::string("nothing")));
  }
  return v->as_string();
}

// Python's slice clamping for the optional start/end of find/count/startswith.
void clamp_range(const ArgReader& args, size_t first_index, size_t len, size_t* b, size_t* e) {
  auto get = [&](size_t i, int64_t fallback) {
    const Value* v = args.get(i);
    if (v == nullptr || v->is_none()) return fallback;
    int64_t x = v->is_integral() ? v->as_int() : fallback;
    if (x < 0) x = std::max<int64_t>(0, x + static_cast<int64_t>(len));
    return std::min<int64_t>(x, static_cast<int64_t>(len));
  };
  *b = static_cast<size_t>(get(first_index, 0));
  *e = static_cast<size_t>(get(first_index + 1, static_cast<int64_t>(len)));
}

Value m_strip_impl(const Value& self, CallArgs& args, uint32_t pos, const char* name, bool l, bool r) {
  ArgReader a(name, args, {"chars"}, pos);
  return Value::string(python_strip(self.as_string(), a.get(0), l, r, pos));
}
Value m_strip(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return m_strip_impl(s, a, p, "strip", true, true); }
Value m_lstrip(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return m_strip_impl(s, a, p, "lstrip", true, false); }
Value m_rstrip(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return m_strip_impl(s, a, p, "rstrip", false, true); }

Value split_impl(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos, bool right) {
  ArgReader a(right ? "rsplit" : "split", args, {"sep", "maxsplit"}, pos);
  int64_t maxsplit = a.integer(1, -1);
  std::u32string s = cps(self);
  std::vector<std::u32string> parts;
  auto check = [&] {
    if (parts.size() > in.limits().max_container_items) in.check_items(parts.size(), pos);
  };
  const Value* sep = a.get(0);
  if (sep == nullptr || sep->is_none()) {
    auto space = [](char32_t c) { return unicode::is_space(c); };
    if (!right) {
      size_t i = 0, n = s.size();
      while (true) {
        while (i < n && space(s[i])) ++i;
        if (i >= n) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(s.substr(i));
          break;
        }
        size_t j = i;
        while (j < n && !space(s[j])) ++j;
        parts.push_back(s.substr(i, j - i));
        check();
        i = j;
      }
    } else {
      size_t i = s.size();
      while (true) {
        while (i > 0 && space(s[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(s.substr(0, i));
          break;
        }
        size_t j = i;
        while (j > 0 && !space(s[j - 1])) --j;
        parts.push_back(s.substr(j, i - j));
        check();
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    std::u32string d = unicode::decode(string_arg(sep, "split", pos));
    if (d.empty()) fail_runtime(pos, "empty separator");
    if (!right) {
      size_t i = 0;
      while (true) {
        size_t k = (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)
                       ? std::u32string::npos
                       : s.find(d, i);
        if (k == std::u32string::npos) {
          parts.push_back(s.substr(i));
          break;
        }
        parts.push_back(s.substr(i, k - i));
        check();
        i = k + d.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        size_t k = (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) || end < d.size()
                       ? std::u32string::npos
                       : s.rfind(d, end - d.size());
        if (k == std::u32string::npos) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(k + d.size(), end - k - d.size()));
        check();
        end = k;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(str(p));
  in.tick(pos, out.size());
  return make_list(in, std::move(out), pos);
}
Value m_split(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return split_impl(in, s, a, p, false); }
Value m_rsplit(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return split_impl(in, s, a, p, true); }

Value m_splitlines(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("splitlines", args, {"keepends"}, pos);
  bool keep = a.boolean(0, false);
  std::u32string s = cps(self);
  std::vector<Value> out;
  size_t i = 0, start = 0;
  while (i < s.size()) {
    if (unicode::is_line_break(s[i])) {
      size_t eol = i + ((s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ? 2 : 1);
      out.push_back(str(std::u32string_view(s).substr(start, (keep ? eol : i) - start)));
      if (out.size() > in.limits().max_container_items) in.check_items(out.size(), pos);
      i = start = eol;
    } else {
      ++i;
    }
  }
  if (start < s.size()) out.push_back(str(std::u32string_view(s).substr(start)));
  return make_list(in, std::move(out), pos);
}

Value affix_impl(const Value& self, CallArgs& args, uint32_t pos, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  ArgReader a(name, args, {"prefix", "start", "end"}, pos);
  const Value* what = a.get(0);
  if (what == nullptr) fail_runtime(pos, std::string(name) + "() takes at least 1 argument");
  std::u32string s = cps(self);
  size_t b, e;
  clamp_range(a, 1, s.size(), &b, &e);
  std::u32string_view window = b <= e ? std::u32string_view(s).substr(b, e - b) : std::u32string_view();
  auto check = [&](const Value& v) {
    std::u32string x = unicode::decode(string_arg(&v, name, pos));
    if (b > e) return false;
    if (x.size() > window.size()) return false;
    return prefix ? window.substr(0, x.size()) == x : window.substr(window.size() - x.size()) == x;
  };
  if (what->is_list_like() && what->seq_kind() == SeqKind::Tuple) {
    for (const Value& v : what->list().items) {
      if (check(v)) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  return Value::boolean(check(*what));
}
Value m_startswith(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return affix_impl(s, a, p, true); }
Value m_endswith(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return affix_impl(s, a, p, false); }

Value m_upper(Interpreter&, const Value& s, CallArgs& a, uint32_t p) {
  ArgReader("upper", a, {}, p);
  return Value::string(unicode::to_upper(s.as_string()));
}
Value m_lower(Interpreter&, const Value& s, CallArgs& a, uint32_t p) {
  ArgReader("lower", a, {}, p);
  return Value::string(unicode::to_lower(s.as_string()));
}

Value m_title(Interpreter&, const Value& self, CallArgs& a, uint32_t p) {
  ArgReader("title", a, {}, p);
  std::u32string out;
  bool prev_cased = false;
  for (char32_t c : cps(self)) {
    std::u32string m = prev_cased ? unicode::lower(c) : unicode::upper(c);
    out += m;
    prev_cased = unicode::is_cased(c);
  }
  return str(out);
}

Value m_capitalize(Interpreter&, const Value& self, CallArgs& a, uint32_t p) {
  ArgReader("capitalize", a, {}, p);
  std::u32string s = cps(self);
  std::u32string out;
  for (size_t i = 0; i < s.size(); ++i) out += i == 0 ? unicode::upper(s[i]) : unicode::lower(s[i]);
  return str(out);
}

Value m_replace(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("replace", args, {"old", "new", "count"}, pos);
  const std::string& old = string_arg(a.get(0), "replace", pos);
  const std::string& rep = string_arg(a.get(1), "replace", pos);
  int64_t count = a.integer(2, -1);
  const std::string& s = self.as_string();
  std::string out;
  if (old.empty()) {
    std::u32string c = unicode::decode(s);
    int64_t done = 0;
    auto maybe_insert = [&] {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
      }
    };
    for (char32_t ch : c) {
      maybe_insert();
      unicode::append(out, ch);
      in.check_string_size(out.size(), pos);
    }
    maybe_insert();
  } else {
    size_t i = 0;
    int64_t done = 0;
    while (true) {
      size_t k = (count >= 0 && done >= count) ? std::string::npos : s.find(old, i);
      if (k == std::string::npos) break;
      out.append(s, i, k - i);
      out += rep;
      in.check_string_size(out.size(), pos);
      i = k + old.size();
      ++done;
    }
    out.append(s, i, std::string::npos);
  }
  in.check_string_size(out.size(), pos);
  in.tick(pos, out.size() / 64);
  return Value::string(std::move(out));
}

Value find_impl(const Value& self, CallArgs& args, uint32_t pos, const char* name, bool reverse,
                bool raise) {
  ArgReader a(name, args, {"sub", "start", "end"}, pos);
  std::u32string sub = unicode::decode(string_arg(a.get(0), name, pos));
  std::u32string s = cps(self);
  size_t b, e;
  clamp_range(a, 1, s.size(), &b, &e);
  int64_t found = -1;
  if (b <= e && sub.size() <= e - b) {
    std::u32string_view window = std::u32string_view(s).substr(b, e - b);
    size_t k = reverse ? window.rfind(sub) : window.find(sub);
    if (k != std::u32string_view::npos) found = static_cast<int64_t>(b + k);
  }
  if (found < 0 && raise) fail_runtime(pos, "substring not found");
  return Value::integer(found);
}
Value m_find(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return find_impl(s, a, p, "find", false, false); }
Value m_rfind(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return find_impl(s, a, p, "rfind", true, false); }
Value m_index(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return find_impl(s, a, p, "index", false, true); }
Value m_rindex(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return find_impl(s, a, p, "rindex", true, true); }

Value m_count(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("count", args, {"sub", "start", "end"}, pos);
  std::u32string sub = unicode::decode(string_arg(a.get(0), "count", pos));
  std::u32string s = cps(self);
  size_t b, e;
  clamp_range(a, 1, s.size(), &b, &e);
  if (b > e) return Value::integer(0);
  if (sub.empty()) return Value::integer(static_cast<int64_t>(e - b + 1));
  std::u32string_view window = std::u32string_view(s).substr(b, e - b);
  int64_t n = 0;
  for (size_t k = window.find(sub); k != std::u32string_view::npos; k = window.find(sub, k + sub.size())) ++n;
  return Value::integer(n);
}

Value m_join(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("join", args, {"iterable"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "join() takes exactly one argument (0 given)");
  std::vector<Value> items = in.iterate(*a.get(0), pos);
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      fail_runtime(pos, "sequence item " + std::to_string(i) + ": expected str instance, " +
                            type_name(items[i]) + " found");
    }
    if (i > 0) out += self.as_string();
    out += items[i].as_string();
    in.check_string_size(out.size(), pos);
  }
  in.tick(pos, items.size());
  return Value::string(std::move(out));
}

Value m_format(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  std::string out = brace_format(self.as_string(), args, in.limits().max_output_bytes);
  in.tick(pos, out.size() / 64);
  return Value::string(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value all_chars(const Value& self, CallArgs& args, uint32_t pos, const char* name) {
  ArgReader(name, args, {}, pos);
  std::u32string s = cps(self);
  return Value::boolean(!s.empty() && std::all_of(s.begin(), s.end(), Pred));
}
bool is_alnum(char32_t c) { return unicode::is_alpha(c) || unicode::is_decimal(c); }
bool is_ascii(char32_t c) { return c < 0x80; }
Value m_isdigit(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return all_chars<unicode::is_decimal>(s, a, p, "isdigit"); }
Value m_isdecimal(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return all_chars<unicode::is_decimal>(s, a, p, "isdecimal"); }
Value m_isalpha(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return all_chars<unicode::is_alpha>(s, a, p, "isalpha"); }
Value m_isalnum(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return all_chars<is_alnum>(s, a, p, "isalnum"); }
Value m_isspace(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return all_chars<unicode::is_space>(s, a, p, "isspace"); }
Value m_isascii(Interpreter&, const Value& self, CallArgs& a, uint32_t p) {
  ArgReader("isascii", a, {}, p);
  std::u32string s = cps(self);
  return Value::boolean(std::all_of(s.begin(), s.end(), is_ascii));
}

Value case_test(const Value& self, CallArgs& args, uint32_t pos, bool lower) {
  ArgReader(lower ? "islower" : "isupper", args, {}, pos);
  bool any_cased = false;
  for (char32_t c : cps(self)) {
    if (lower ? unicode::is_upper_char(c) : unicode::is_lower_char(c)) return Value::boolean(false);
    any_cased |= unicode::is_cased(c);
  }
  return Value::boolean(any_cased);
}
Value m_islower(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return case_test(s, a, p, true); }
Value m_isupper(Interpreter&, const Value& s, CallArgs& a, uint32_t p) { return case_test(s, a, p, false); }

Value justify(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos, const char* name, char how) {
  ArgReader a(name, args, {"width", "fillchar"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, std::string(name) + "() takes at least 1 argument");
  int64_t width = a.integer(0, 0);
  std::u32string fill = unicode::decode(a.string(1, " "));
  if (fill.size() != 1) fail_runtime(pos, "The fill character must be exactly one character long");
  std::u32string s = cps(self);
  if (width <= static_cast<int64_t>(s.size())) return self;
  in.check_string_size(static_cast<size_t>(width), pos);
  size_t marg = static_cast<size_t>(width) - s.size();
  size_t left = how == 'l' ? 0 : how == 'r' ? marg : marg / 2 + (marg & static_cast<size_t>(width) & 1);
  std::u32string out(left, fill[0]);
  out += s;
  out.append(marg - left, fill[0]);
  return str(out);
}
Value m_center(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return justify(in, s, a, p, "center", 'c'); }
Value m_ljust(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return justify(in, s, a, p, "ljust", 'l'); }
Value m_rjust(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return justify(in, s, a, p, "rjust", 'r'); }

Value m_zfill(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("zfill", args, {"width"}, pos);
  int64_t width = a.integer(0, 0);
  std::u32string s = cps(self);
  if (width <= static_cast<int64_t>(s.size())) return self;
  in.check_string_size(static_cast<size_t>(width), pos);
  size_t fill = static_cast<size_t>(width) - s.size();
  size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  std::u32string out = s.substr(0, sign) + std::u32string(fill, U'0') + s.substr(sign);
  return str(out);
}

Value partition_impl(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos, bool right) {
  ArgReader a(right ? "rpartition" : "partition", args, {"sep"}, pos);
  const std::string& sep = string_arg(a.get(0), "partition", pos);
  if (sep.empty()) fail_runtime(pos, "empty separator");
  const std::string& s = self.as_string();
  size_t k = right ? s.rfind(sep) : s.find(sep);
  std::vector<Value> out;
  if (k == std::string::npos) {
    Value empty = Value::string("");
    out = right ? std::vector<Value>{empty, empty, self} : std::vector<Value>{self, empty, empty};
  } else {
    out = {Value::string(s.substr(0, k)), Value::string(sep), Value::string(s.substr(k + sep.size()))};
  }
  return make_list(in, std::move(out), pos, SeqKind::Tuple);
}
Value m_partition(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return partition_impl(in, s, a, p, false); }
Value m_rpartition(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return partition_impl(in, s, a, p, true); }

Value m_removeprefix(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("removeprefix", args, {"prefix"}, pos);
  const std::string& p = string_arg(a.get(0), "removeprefix", pos);
  const std::string& s = self.as_string();
  return s.compare(0, p.size(), p) == 0 ? Value::string(s.substr(p.size())) : self;
}
Value m_removesuffix(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("removesuffix", args, {"suffix"}, pos);
  const std::string& p = string_arg(a.get(0), "removesuffix", pos);
  const std::string& s = self.as_string();
  if (!p.empty() && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0) {
    return Value::string(s.substr(0, s.size() - p.size()));
  }
  return self;
}

// --- dict -----------------------------------------------------------------------------------

Value m_get(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("get", args, {"key", "default"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "get expected at least 1 argument, got 0");
  if (!hashable(*a.get(0))) fail_runtime(pos, "unhashable type: '" + type_name(*a.get(0)) + "'");
  if (const Value* v = self.dict().find(*a.get(0))) return *v;
  return a.get_or(1, Value::none());
}

Value view(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos, SeqKind kind) {
  ArgReader(kind == SeqKind::DictItems ? "items" : kind == SeqKind::DictKeys ? "keys" : "values",
            args, {}, pos);
  std::vector<Value> out;
  out.reserve(self.dict().entries.size());
  for (const auto& [k, v] : self.dict().entries) {
    if (kind == SeqKind::DictKeys) {
      out.push_back(k);
    } else if (kind == SeqKind::DictValues) {
      out.push_back(v);
    } else {
      out.push_back(Value::sequence({k, v}, SeqKind::Tuple));
    }
  }
  return make_list(in, std::move(out), pos, kind);
}
Value m_items(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return view(in, s, a, p, SeqKind::DictItems); }
Value m_keys(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return view(in, s, a, p, SeqKind::DictKeys); }
Value m_values(Interpreter& in, const Value& s, CallArgs& a, uint32_t p) { return view(in, s, a, p, SeqKind::DictValues); }

Value m_dict_copy(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader("copy", args, {}, pos);
  auto d = std::make_shared<DictObject>(self.dict());
  return Value::from_heap(Kind::Dict, std::move(d));
}

// --- list / tuple ---------------------------------------------------------------------------

Value m_list_index(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("index", args, {"value", "start", "stop"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "index expected at least 1 argument, got 0");
  const auto& items = self.list().items;
  size_t b, e;
  clamp_range(a, 1, items.size(), &b, &e);
  for (size_t i = b; i < e; ++i) {
    in.tick(pos);
    if (py_equal(items[i], *a.get(0))) return Value::integer(static_cast<int64_t>(i));
  }
  fail_runtime(pos, py_repr(*a.get(0), in.limits().max_output_bytes) + " is not in " + type_name(self));
}

Value m_list_count(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader a("count", args, {"value"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "count() takes exactly one argument (0 given)");
  int64_t n = 0;
  for (const Value& v : self.list().items) {
    in.tick(pos);
    if (py_equal(v, *a.get(0))) ++n;
  }
  return Value::integer(n);
}

Value m_list_copy(Interpreter& in, const Value& self, CallArgs& args, uint32_t pos) {
  ArgReader("copy", args, {}, pos);
  return make_list(in, self.list().items, pos, SeqKind::List);
}

// --- loop -----------------------------------------------------------------------------------

Value m_cycle(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  if (!args.keyword.empty()) fail_runtime(pos, "cycle() takes no keyword arguments");
  if (args.positional.empty()) fail_runtime(pos, "no items for cycling given");
  size_t i = static_cast<size_t>(self.loop().index0) % args.positional.size();
  return args.positional[i];
}

Value m_changed(Interpreter&, const Value& self, CallArgs& args, uint32_t pos) {
  if (!args.keyword.empty()) fail_runtime(pos, "changed() takes no keyword arguments");
  LoopObject& l = self.loop();
  Value now = Value::sequence(args.positional, SeqKind::Tuple);
  if (l.has_last_changed && py_equal(l.last_changed, now)) return Value::boolean(false);
  l.has_last_changed = true;
  l.last_changed = now;
  return Value::boolean(true);
}

constexpr MethodEntry kStrMethods[] = {
    {"strip", m_strip},         {"lstrip", m_lstrip},         {"rstrip", m_rstrip},
    {"split", m_split},         {"rsplit", m_rsplit},         {"splitlines", m_splitlines},
    {"startswith", m_startswith}, {"endswith", m_endswith},   {"upper", m_upper},
    {"lower", m_lower},         {"title", m_title},           {"capitalize", m_capitalize},
    {"replace", m_replace},     {"find", m_find},             {"rfind", m_rfind},
    {"index", m_index},         {"rindex", m_rindex},         {"count", m_count},
    {"join", m_join},           {"format", m_format},         {"isdigit", m_isdigit},
    {"isdecimal", m_isdecimal}, {"isalpha", m_isalpha},       {"isalnum", m_isalnum},
    {"isspace", m_isspace},     {"isascii", m_isascii},       {"islower", m_islower},
    {"isupper", m_isupper},     {"center", m_center},         {"ljust", m_ljust},
    {"rjust", m_rjust},         {"zfill", m_zfill},           {"partition", m_partition},
    {"rpartition", m_rpartition}, {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
};
constexpr std::string_view kStrUnsupported[] = {
    "casefold", "encode", "expandtabs", "format_map", "isidentifier", "isnumeric",
    "isprintable", "istitle", "maketrans", "swapcase", "translate",
};

constexpr MethodEntry kDictMethods[] = {
    {"get", m_get}, {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"copy", m_dict_copy},
};
constexpr std::string_view kDictUnsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};

constexpr MethodEntry kListMethods[] = {
    {"index", m_list_index}, {"count", m_list_count}, {"copy", m_list_copy},
};
constexpr std::string_view kListUnsafe[] = {"append", "clear", "extend", "insert",
                                            "pop",    "remove", "reverse", "sort"};
constexpr MethodEntry kTupleMethods[] = {{"index", m_list_index}, {"count", m_list_count}};
constexpr MethodEntry kLoopMethods[] = {{"cycle", m_cycle}, {"changed", m_changed}};

template <size_t N>
const MethodEntry* lookup(const MethodEntry (&table)[N], std::string_view name) {
  for (const MethodEntry& m : table) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

template <size_t N>
bool listed(const std::string_view (&table)[N], std::string_view name) {
  return std::find(std::begin(table), std::end(table), name) != std::end(table);
}

Value bind(const Value& self, const MethodEntry& m) {
  auto method = std::make_shared<Method>();
  method->name = type_name(self) + "." + std::string(m.name);
  method->self = self;
  method->fn = m.fn;
  return Value::from_heap(Kind::Callable, std::move(method));
}

}  // namespace

std::optional<Value> bound_method(const Value& self, const std::string& name) {
  const MethodEntry* entry = nullptr;
  switch (self.kind()) {
    case Kind::String:
      entry = lookup(kStrMethods, name);
      if (entry == nullptr && listed(kStrUnsupported, name)) {
        return Value::undefined_failing("str." + name + "() is not supported by this interpreter");
      }
      break;
    case Kind::Dict:
      entry = lookup(kDictMethods, name);
      if (entry == nullptr && listed(kDictUnsafe, name)) {
        return Value::undefined_failing("access to attribute '" + name +
                                        "' of 'dict' object is unsafe.");
      }
      if (name == "fromkeys") {
        return Value::undefined_failing("dict.fromkeys() is not supported by this interpreter");
      }
      break;
    case Kind::List:
      if (self.seq_kind() == SeqKind::List) {
        entry = lookup(kListMethods, name);
        if (entry == nullptr && listed(kListUnsafe, name)) {
          return Value::undefined_failing("access to attribute '" + name +
                                          "' of 'list' object is unsafe.");
        }
      } else if (self.seq_kind() == SeqKind::Tuple || self.seq_kind() == SeqKind::Range) {
        entry = lookup(kTupleMethods, name);
      }
      break;
    case Kind::Loop:
      entry = lookup(kLoopMethods, name);
      break;
    default:
      break;
  }
  if (entry == nullptr) return std::nullopt;
  return bind(self, *entry);
}

std::string python_strip(const std::string& s, const Value* chars, bool left, bool right,
                         uint32_t pos) {
  std::u32string c = unicode::decode(s);
  std::u32string set;
  bool whitespace = chars == nullptr || chars->is_none() || chars->is_undefined();
  if (!whitespace) set = unicode::decode(string_arg(chars, "strip", pos));
  auto strip = [&](char32_t ch) {
    return whitespace ? unicode::is_space(ch) : set.find(ch) != std::u32string::npos;
  };
  size_t b = 0, e = c.size();
  if (left) {
    while (b < e && strip(c[b])) ++b;
  }
  if (right) {
    while (e > b && strip(c[e - 1])) --e;
  }
  if (b == 0 && e == c.size()) return s;
  return unicode::encode(std::u32string_view(c).substr(b, e - b));
}

}  // namespace edgelm::jinja
