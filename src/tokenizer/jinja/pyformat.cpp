#include "tokenizer/jinja/pyformat.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/unicode.hpp"

namespace edgelm::jinja {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, uint32_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(value >> (4 * i)) & 0xF]);
}

void check_depth(int depth) {
  if (depth > static_cast<int>(kMaxContainerDepth) + 1) {
    fail(FailKind::Limit, kNoPos, "containers nested more than 200 levels deep");
  }
}

// Output buffer of str()/repr() with its size bound.
struct Text {
  std::string out;
  size_t max;
  Text& operator+=(std::string_view s) {
    out += s;
    if (out.size() > max) fail(FailKind::Limit, kNoPos, "text of a value exceeds the size limit");
    return *this;
  }
  Text& operator+=(char c) { return *this += std::string_view(&c, 1); }
};

void append_repr(Text& out, const Value& v, int depth);

void append_str(Text& out, const Value& v, int depth) {
  switch (v.kind()) {
    case Kind::Undefined: return;
    case Kind::String: out += v.as_string(); return;
    default: append_repr(out, v, depth);
  }
}

void append_items(Text& out, const std::vector<Value>& items, int depth) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr(out, items[i], depth + 1);
  }
}

void append_repr(Text& out, const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
    case Kind::Undefined: out += "Undefined"; return;
    case Kind::None: out += "None"; return;
    case Kind::Bool: out += v.as_bool() ? "True" : "False"; return;
    case Kind::Int: out += std::to_string(v.as_int()); return;
    case Kind::Float: out += float_repr(v.as_float()); return;
    case Kind::String: out += string_repr(v.as_string()); return;
    case Kind::List: {
      const ListObject& l = v.list();
      switch (l.kind) {
        case SeqKind::List:
          out += '[';
          append_items(out, l.items, depth);
          out += ']';
          return;
        case SeqKind::Tuple:
          out += '(';
          append_items(out, l.items, depth);
          if (l.items.size() == 1) out += ',';
          out += ')';
          return;
        case SeqKind::Range:
          out += "range(";
          out += std::to_string(l.range_start);
          out += ", ";
          out += std::to_string(l.range_stop);
          if (l.range_step != 1) {
            out += ", ";
            out += std::to_string(l.range_step);
          }
          out += ')';
          return;
        case SeqKind::DictKeys:
        case SeqKind::DictValues:
        case SeqKind::DictItems:
          out += type_name(v);
          out += "([";
          append_items(out, l.items, depth);
          out += "])";
          return;
        case SeqKind::Iterator:
          fail_unsupported(kNoPos, "cannot turn a generator (the result of map/select/...) into "
                                   "text; add |list");
      }
      return;
    }
    case Kind::Dict: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.dict().entries) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, k, depth + 1);
        out += ": ";
        append_repr(out, val, depth + 1);
      }
      out += '}';
      return;
    }
    case Kind::Namespace: {
      out += "<Namespace {";
      bool first = true;
      for (const auto& [k, val] : v.ns().attrs.entries) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, k, depth + 1);
        out += ": ";
        append_repr(out, val, depth + 1);
      }
      out += "}>";
      return;
    }
    case Kind::Loop: {
      const LoopObject& l = v.loop();
      out += "<LoopContext ";
      out += std::to_string(l.index0 + 1);
      out += '/';
      out += std::to_string(l.items ? l.items->size() : 0);
      out += '>';
      return;
    }
    case Kind::Callable:
      if (!v.callable().repr.empty()) {
        out += v.callable().repr;
        return;
      }
      fail_unsupported(kNoPos, "cannot turn the function '" + v.callable().name +
                                   "' into text (did you mean to call it?)");
  }
}

// --- json ---------------------------------------------------------------------------------

class JsonWriter {
 public:
  JsonWriter(const JsonOptions& options, size_t max_bytes) : opt_(options), max_(max_bytes) {}

  void value(const Value& v, int level) {
    check_depth(level);
    check_size();
    switch (v.kind()) {
      case Kind::None: out_ += "null"; return;
      case Kind::Bool: out_ += v.as_bool() ? "true" : "false"; return;
      case Kind::Int: out_ += std::to_string(v.as_int()); return;
      case Kind::Float: out_ += json_float(v.as_float()); return;
      case Kind::String: string(v.as_string()); return;
      case Kind::List: {
        SeqKind k = v.seq_kind();
        if (k != SeqKind::List && k != SeqKind::Tuple) not_serializable(v);
        const auto& items = v.list().items;
        if (items.empty()) {
          out_ += "[]";
          return;
        }
        out_ += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out_ += opt_.item_separator;
          newline(level + 1);
          value(items[i], level + 1);
        }
        newline(level);
        out_ += ']';
        return;
      }
      case Kind::Dict: {
        const auto& entries = v.dict().entries;
        if (entries.empty()) {
          out_ += "{}";
          return;
        }
        std::vector<const std::pair<Value, Value>*> order;
        for (const auto& e : entries) order.push_back(&e);
        if (opt_.sort_keys) sort_entries(order);
        out_ += '{';
        for (size_t i = 0; i < order.size(); ++i) {
          if (i > 0) out_ += opt_.item_separator;
          newline(level + 1);
          key(order[i]->first);
          out_ += opt_.key_separator;
          value(order[i]->second, level + 1);
        }
        newline(level);
        out_ += '}';
        return;
      }
      default: not_serializable(v);
    }
  }

  std::string take() { return std::move(out_); }

 private:
  [[noreturn]] static void not_serializable(const Value& v) {
    fail_runtime(kNoPos, "Object of type " + type_name(v) + " is not JSON serializable");
  }

  void check_size() const {
    if (out_.size() > max_) fail(FailKind::Limit, kNoPos, "tojson output exceeds the size limit");
  }

  void newline(int level) {
    if (!opt_.indent) return;
    out_ += '\n';
    for (int i = 0; i < level; ++i) {
      out_ += *opt_.indent;
      check_size();
    }
  }

  static std::string json_float(double f) {
    if (std::isnan(f)) return "NaN";
    if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
    return float_repr(f);
  }

  void key(const Value& k) {
    switch (k.kind()) {
      case Kind::String: string(k.as_string()); return;
      case Kind::Float: string(json_float(k.as_float())); return;
      case Kind::Bool: string(k.as_bool() ? "true" : "false"); return;
      case Kind::Int: string(std::to_string(k.as_int())); return;
      case Kind::None: string("null"); return;
      default:
        fail_runtime(kNoPos, "keys must be str, int, float, bool or None, not " + type_name(k));
    }
  }

  static void sort_entries(std::vector<const std::pair<Value, Value>*>& order) {
    bool all_strings = std::all_of(order.begin(), order.end(),
                                   [](auto* e) { return e->first.is_string(); });
    bool all_numbers = std::all_of(order.begin(), order.end(),
                                   [](auto* e) { return e->first.is_number(); });
    if (all_strings) {
      std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) {
        return a->first.as_string() < b->first.as_string();
      });
    } else if (all_numbers) {
      std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) {
        return a->first.as_float() < b->first.as_float();
      });
    } else {
      fail_runtime(kNoPos, "'<' not supported between dictionary keys of different types");
    }
  }

  void string(const std::string& s) {
    out_ += '"';
    for (char32_t c : unicode::decode(s)) {
      switch (c) {
        case '"': out_ += "\\\""; continue;
        case '\\': out_ += "\\\\"; continue;
        case '\n': out_ += "\\n"; continue;
        case '\r': out_ += "\\r"; continue;
        case '\t': out_ += "\\t"; continue;
        case '\b': out_ += "\\b"; continue;
        case '\f': out_ += "\\f"; continue;
        default: break;
      }
      if (c < 0x20 || (opt_.ensure_ascii && c > 0x7E)) {
        if (c >= 0x10000) {
          char32_t v = c - 0x10000;
          out_ += "\\u";
          append_hex(out_, 0xD800 + (v >> 10), 4);
          out_ += "\\u";
          append_hex(out_, 0xDC00 + (v & 0x3FF), 4);
        } else {
          out_ += "\\u";
          append_hex(out_, c, 4);
        }
      } else {
        unicode::append(out_, c);
      }
    }
    out_ += '"';
  }

  const JsonOptions& opt_;
  size_t max_;
  std::string out_;
};

// --- % formatting ---------------------------------------------------------------------------

struct Spec {
  bool left = false, zero = false, plus = false, space = false, alternate = false;
  size_t width = 0;
  int precision = -1;
};

constexpr size_t kMaxWidth = 1u << 20;

std::string pad(std::string body, const Spec& spec, bool numeric) {
  size_t len = unicode::length(body);
  if (len >= spec.width) return body;
  size_t fill = spec.width - len;
  if (spec.left) return body + std::string(fill, ' ');
  if (spec.zero && numeric) {
    size_t sign = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    return body.substr(0, sign) + std::string(fill, '0') + body.substr(sign);
  }
  return std::string(fill, ' ') + body;
}

int64_t integer_arg(const Value& v, char conv) {
  if (v.is_integral()) return v.as_int();
  if (v.is_float() && conv != 'x' && conv != 'X' && conv != 'o') {
    double f = std::trunc(v.as_float());
    if (!std::isfinite(f) || std::fabs(f) > 9.2e18) fail_runtime(kNoPos, "integer too large");
    return static_cast<int64_t>(f);
  }
  fail_runtime(kNoPos, std::string("%") + conv + " format: a real number is required, not " +
                           type_name(v));
}

double float_arg(const Value& v) {
  if (v.is_number()) return v.as_float();
  fail_runtime(kNoPos, "must be real number, not " + type_name(v));
}

std::string format_fixed(double f, int precision, char conv) {
  if (std::isnan(f)) return conv == 'F' || conv == 'E' ? "NAN" : "nan";
  if (std::isinf(f)) return f > 0 ? (conv == 'F' || conv == 'E' ? "INF" : "inf")
                                  : (conv == 'F' || conv == 'E' ? "-INF" : "-inf");
  char fmt[8] = {'%', '.', '*', conv, 0};
  int n = std::snprintf(nullptr, 0, fmt, precision, f);
  std::string out(static_cast<size_t>(n), '\0');
  std::snprintf(out.data(), out.size() + 1, fmt, precision, f);
  return out;
}

std::string sign_prefix(bool negative, const Spec& spec) {
  if (negative) return "-";
  if (spec.plus) return "+";
  if (spec.space) return " ";
  return "";
}

std::string format_one(char conv, const Value& v, const Spec& spec, size_t max_bytes) {
  switch (conv) {
    case 's': {
      std::string s = py_str(v, max_bytes);
      if (spec.precision >= 0) {
        std::u32string cps = unicode::decode(s);
        if (cps.size() > static_cast<size_t>(spec.precision)) cps.resize(spec.precision);
        s = unicode::encode(cps);
      }
      return pad(s, spec, false);
    }
    case 'r': return pad(py_repr(v, max_bytes), spec, false);
    case 'd':
    case 'i':
    case 'u': {
      int64_t i = integer_arg(v, conv);
      std::string digits = std::to_string(i < 0 ? -(i + 1) + 1ULL : static_cast<uint64_t>(i));
      return pad(sign_prefix(i < 0, spec) + digits, spec, true);
    }
    case 'x':
    case 'X':
    case 'o': {
      int64_t i = integer_arg(v, conv);
      uint64_t mag = i < 0 ? static_cast<uint64_t>(-(i + 1)) + 1 : static_cast<uint64_t>(i);
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, mag, conv == 'o' ? 8 : 16);
      std::string digits(buf, r.ptr);
      if (conv == 'X') digits = unicode::to_upper(digits);
      std::string prefix;
      if (spec.alternate) prefix = conv == 'o' ? "0o" : (conv == 'x' ? "0x" : "0X");
      return pad(sign_prefix(i < 0, spec) + prefix + digits, spec, true);
    }
    case 'f':
    case 'F':
    case 'e':
    case 'E': {
      double f = float_arg(v);
      std::string body = format_fixed(std::fabs(f), spec.precision < 0 ? 6 : spec.precision, conv);
      return pad(sign_prefix(std::signbit(f) && !std::isnan(f), spec) + body, spec, true);
    }
    case 'c': {
      std::string out;
      if (v.is_string() && unicode::length(v.as_string()) == 1) {
        out = v.as_string();
      } else if (v.is_integral() && v.as_int() >= 0 && v.as_int() <= 0x10FFFF) {
        unicode::append(out, static_cast<char32_t>(v.as_int()));
      } else {
        fail_runtime(kNoPos, "%c requires an int or a single character");
      }
      return pad(out, spec, false);
    }
    default:
      fail_unsupported(kNoPos, std::string("unsupported format character '") + conv + "'");
  }
}

}  // namespace

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0.0) return std::signbit(f) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+16", "5e-05"
  std::string out;
  size_t i = 0;
  if (sci[0] == '-') {
    out += '-';
    i = 1;
  }
  size_t e = sci.find('e');
  std::string digits;
  for (size_t k = i; k < e; ++k) {
    if (sci[k] != '.') digits += sci[k];
  }
  int exp10 = std::stoi(sci.substr(e + 1));
  int decpt = exp10 + 1;
  int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= n) {
      out += digits + std::string(decpt - n, '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out += digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    out += exp10 < 0 ? "e-" : "e+";
    int mag = exp10 < 0 ? -exp10 : exp10;
    if (mag < 10) out += '0';
    out += std::to_string(mag);
  }
  return out;
}

std::string string_repr(const std::string& s) {
  std::u32string cps = unicode::decode(s);
  bool has_single = false, has_double = false;
  for (char32_t c : cps) {
    has_single |= c == '\'';
    has_double |= c == '"';
  }
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : cps) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c < 0x7F || unicode::is_printable(c)) {
      unicode::append(out, c);
    } else if (c <= 0xFF) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c <= 0xFFFF) {
      out += "\\u";
      append_hex(out, c, 4);
    } else {
      out += "\\U";
      append_hex(out, c, 8);
    }
  }
  out += quote;
  return out;
}

std::string py_str(const Value& v, size_t max_bytes) {
  Text text{std::string(), max_bytes};
  append_str(text, v, 0);
  return std::move(text.out);
}

std::string py_repr(const Value& v, size_t max_bytes) {
  Text text{std::string(), max_bytes};
  append_repr(text, v, 0);
  return std::move(text.out);
}

std::string json_dumps(const Value& v, const JsonOptions& options, size_t max_bytes) {
  JsonWriter writer(options, max_bytes);
  writer.value(v, 0);
  return writer.take();
}

std::string percent_format(const std::string& format, const Value& args, size_t max_bytes) {
  std::vector<Value> positional;
  const DictObject* mapping = nullptr;
  // Python treats any non-tuple argument with __getitem__ (dict, list, ...) as a possible
  // mapping and then does not complain about unused arguments.
  bool mapping_like = args.is_dict() || args.is_undefined() ||
                      (args.is_list_like() && args.seq_kind() != SeqKind::Tuple &&
                       args.seq_kind() != SeqKind::Iterator);
  if (args.is_list_like() && args.seq_kind() == SeqKind::Tuple) {
    positional = args.list().items;
  } else if (args.is_dict()) {
    mapping = &args.dict();
    positional.push_back(args);
  } else {
    positional.push_back(args);
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i++];
    if (c != '%') {
      out += c;
      continue;
    }
    if (i >= format.size()) fail_runtime(kNoPos, "incomplete format");
    const Value* arg = nullptr;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos) fail_runtime(kNoPos, "incomplete format key");
      if (mapping == nullptr) fail_runtime(kNoPos, "format requires a mapping");
      arg = mapping->find(std::string_view(format).substr(i + 1, close - i - 1));
      if (arg == nullptr) {
        fail_runtime(kNoPos, "KeyError: " + string_repr(format.substr(i + 1, close - i - 1)));
      }
      used_mapping = true;
      i = close + 1;
    }
    Spec spec;
    for (; i < format.size(); ++i) {
      char f = format[i];
      if (f == '-') spec.left = true;
      else if (f == '0') spec.zero = true;
      else if (f == '+') spec.plus = true;
      else if (f == ' ') spec.space = true;
      else if (f == '#') spec.alternate = true;
      else break;
    }
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
      spec.width = spec.width * 10 + (format[i++] - '0');
      if (spec.width > kMaxWidth) fail(FailKind::Limit, kNoPos, "format width too large");
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = 0;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        spec.precision = spec.precision * 10 + (format[i++] - '0');
        if (spec.precision > static_cast<int>(kMaxWidth)) {
          fail(FailKind::Limit, kNoPos, "format precision too large");
        }
      }
    }
    if (i >= format.size()) fail_runtime(kNoPos, "incomplete format");
    char conv = format[i++];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (next >= positional.size()) fail_runtime(kNoPos, "not enough arguments for format string");
      arg = &positional[next++];
    }
    out += format_one(conv, *arg, spec, max_bytes);
    if (out.size() > max_bytes) fail(FailKind::Limit, kNoPos, "formatted string too long");
  }
  if (!used_mapping && !mapping_like && next < positional.size()) {
    fail_runtime(kNoPos, "not all arguments converted during string formatting");
  }
  return out;
}

std::string brace_format(const std::string& format, const CallArgs& args, size_t max_bytes) {
  std::string out;
  size_t auto_index = 0;
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      fail_runtime(kNoPos, "Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    size_t close = format.find('}', i);
    if (close == std::string::npos) fail_runtime(kNoPos, "Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string spec_text;
    char conversion = 0;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec_text = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) fail_runtime(kNoPos, "invalid conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    const Value* arg = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) {
        fail_runtime(kNoPos, "Replacement index " + std::to_string(auto_index) +
                                 " out of range for positional args tuple");
      }
      arg = &args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t idx = std::stoul(field);
      if (idx >= args.positional.size()) {
        fail_runtime(kNoPos, "Replacement index " + field + " out of range for positional args tuple");
      }
      arg = &args.positional[idx];
    } else {
      for (const auto& [name, value] : args.keyword) {
        if (name == field) arg = &value;
      }
      if (arg == nullptr) {
        if (field.find_first_of(".[") != std::string::npos) {
          fail_unsupported(kNoPos, "str.format field '" + field + "' is not supported");
        }
        fail_runtime(kNoPos, "KeyError: " + string_repr(field));
      }
    }
    std::string text;
    if (conversion == 'r') {
      text = py_repr(*arg, max_bytes);
    } else if (conversion == 's' || conversion == 0) {
      text = conversion == 0 && !spec_text.empty() ? std::string() : py_str(*arg, max_bytes);
    } else {
      fail_runtime(kNoPos, std::string("Unknown conversion specifier ") + conversion);
    }
    if (!spec_text.empty()) {
      // [[fill]align][sign][0][width][.precision][type]
      size_t p = 0;
      char fill = ' ', align = 0;
      if (spec_text.size() >= 2 && std::string("<>^").find(spec_text[1]) != std::string::npos) {
        fill = spec_text[0];
        align = spec_text[1];
        p = 2;
      } else if (!spec_text.empty() && std::string("<>^").find(spec_text[0]) != std::string::npos) {
        align = spec_text[0];
        p = 1;
      }
      Spec spec;
      if (p < spec_text.size() && (spec_text[p] == '+' || spec_text[p] == '-' || spec_text[p] == ' ')) {
        spec.plus = spec_text[p] == '+';
        spec.space = spec_text[p] == ' ';
        ++p;
      }
      if (p < spec_text.size() && spec_text[p] == '0') {
        spec.zero = true;
        ++p;
      }
      while (p < spec_text.size() && spec_text[p] >= '0' && spec_text[p] <= '9') {
        spec.width = spec.width * 10 + (spec_text[p++] - '0');
        if (spec.width > kMaxWidth) fail(FailKind::Limit, kNoPos, "format width too large");
      }
      if (p < spec_text.size() && spec_text[p] == '.') {
        ++p;
        spec.precision = 0;
        while (p < spec_text.size() && spec_text[p] >= '0' && spec_text[p] <= '9') {
          spec.precision = spec.precision * 10 + (spec_text[p++] - '0');
          if (spec.precision > static_cast<int>(kMaxWidth)) {
            fail(FailKind::Limit, kNoPos, "format precision too large");
          }
        }
      }
      char type = p < spec_text.size() ? spec_text[p++] : 0;
      if (p != spec_text.size() || (type != 0 && std::string("sdfFeE").find(type) == std::string::npos)) {
        fail_unsupported(kNoPos, "format spec '" + spec_text + "' is not supported");
      }
      bool numeric = arg->is_number();
      if (type == 0) type = arg->is_string() ? 's' : (arg->is_float() ? 'r' : (numeric ? 'd' : 's'));
      std::string body;
      if (type == 'r') {
        body = float_repr(arg->as_float());
        if (spec.plus && arg->as_float() >= 0) body = "+" + body;
      } else if (type == 's') {
        if (!arg->is_string()) fail_runtime(kNoPos, "Unknown format code 's' for object of type '" + type_name(*arg) + "'");
        Spec s = spec;
        s.width = 0;
        body = format_one('s', *arg, s, max_bytes);
      } else {
        Spec s = spec;
        s.width = 0;
        body = format_one(type, *arg, s, max_bytes);
      }
      size_t len = unicode::length(body);
      if (len < spec.width) {
        size_t fill_count = spec.width - len;
        if (align == 0) align = numeric ? '>' : '<';
        if (spec.zero && align == '>' && fill == ' ' && numeric) {
          Spec z;
          z.zero = true;
          z.width = spec.width;
          body = pad(body, z, true);
        } else if (align == '<') {
          body += std::string(fill_count, fill);
        } else if (align == '>') {
          body = std::string(fill_count, fill) + body;
        } else {
          body = std::string(fill_count / 2, fill) + body + std::string(fill_count - fill_count / 2, fill);
        }
      }
      text = body;
    }
    out += text;
    if (out.size() > max_bytes) fail(FailKind::Limit, kNoPos, "formatted string too long");
  }
  return out;
}

}  // namespace edgelm::jinja
