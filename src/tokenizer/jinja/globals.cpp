// Global functions of the template environment: Jinja's range / dict / namespace / joiner and
// the two transformers adds, raise_exception and strftime_now.
#include <ctime>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/interpreter.hpp"
#include "tokenizer/jinja/pyformat.hpp"

namespace edgelm::jinja {
namespace {

// The sandbox refuses ranges longer than this (jinja2.sandbox.MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

using GlobalFn = Value (*)(Interpreter&, CallArgs&, uint32_t pos);

struct Global : CallableObject {
  GlobalFn fn = nullptr;
  Value call(Interpreter& in, CallArgs& args, uint32_t pos) override { return fn(in, args, pos); }
};

Value g_range(Interpreter& in, CallArgs& args, uint32_t pos) {
  if (!args.keyword.empty()) fail_runtime(pos, "range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) {
    fail_runtime(pos, "range expected at most 3 arguments, got " + std::to_string(p.size()));
  }
  for (const Value& v : p) {
    if (!v.is_integral()) {
      std::string message(1, '\'');
      message += type_name(v);
      message += "' object cannot be interpreted as an integer";
      fail_runtime(pos, message);
    }
  }
  int64_t start = p.size() == 1 ? 0 : p[0].as_int();
  int64_t stop = p.size() == 1 ? p[0].as_int() : p[1].as_int();
  int64_t step = p.size() == 3 ? p[2].as_int() : 1;
  if (step == 0) fail_runtime(pos, "range() arg 3 must not be zero");
  long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  long double len = span <= 0 ? 0 : (span + std::abs(static_cast<long double>(step)) - 1) / std::abs(static_cast<long double>(step));
  if (len > kMaxRange) {
    fail_runtime(pos, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> items;
  int64_t n = static_cast<int64_t>(len);
  items.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) items.push_back(Value::integer(start + i * step));
  in.tick(pos, items.size());
  Value r = make_list(in, std::move(items), pos, SeqKind::Range);
  r.list().range_start = start;
  r.list().range_stop = stop;
  r.list().range_step = step;
  return r;
}

// dict(mapping_or_pairs, **kwargs) — also what namespace() takes.
DictObject dict_from(Interpreter& in, CallArgs& args, uint32_t pos, const char* name) {
  DictObject d;
  if (args.positional.size() > 1) {
    fail_runtime(pos, std::string(name) + " expected at most 1 argument, got " +
                          std::to_string(args.positional.size()));
  }
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      d = src.dict();
    } else {
      for (const Value& pair : in.iterate(src, pos)) {
        std::vector<Value> kv = in.iterate(pair, pos);
        if (kv.size() != 2) {
          fail_runtime(pos, "dictionary update sequence element has length " +
                                std::to_string(kv.size()) + "; 2 is required");
        }
        if (!hashable(kv[0])) fail_runtime(pos, "unhashable type: '" + type_name(kv[0]) + "'");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.keyword) d.set(Value::string(k), v);
  in.check_items(d.entries.size(), pos);
  return d;
}

Value g_dict(Interpreter& in, CallArgs& args, uint32_t pos) {
  return Value::from_heap(Kind::Dict, std::make_shared<DictObject>(dict_from(in, args, pos, "dict")));
}

Value g_namespace(Interpreter& in, CallArgs& args, uint32_t pos) {
  return in.make_namespace(dict_from(in, args, pos, "namespace"));
}

Value g_raise_exception(Interpreter& in, CallArgs& args, uint32_t pos) {
  ArgReader a("raise_exception", args, {"message"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "raise_exception() missing 1 required positional argument: 'message'");
  fail(FailKind::Raised, pos, in.to_text(*a.get(0), pos));
}

Value g_strftime_now(Interpreter& in, CallArgs& args, uint32_t pos) {
  ArgReader a("strftime_now", args, {"format"}, pos);
  if (a.get(0) == nullptr) fail_runtime(pos, "strftime_now() missing 1 required positional argument: 'format'");
  std::string format = a.string(0, "");
  std::tm now{};
  if (in.now()) {
    now = *in.now();
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &now);
  }
  // Python's datetime.strftime expands %f (microseconds) itself; there are none here.
  std::string fmt;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '%' && i + 1 < format.size()) {
      if (format[i + 1] == 'f') {
        fmt += "000000";
        ++i;
        continue;
      }
      fmt += format[i];
      fmt += format[++i];
      continue;
    }
    fmt += format[i];
  }
  if (fmt.empty()) return Value::string("");
  for (size_t size = 256; size <= (1u << 20); size *= 4) {
    std::string buf(size, '\0');
    size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &now);
    if (n > 0) {
      buf.resize(n);
      return Value::string(std::move(buf));
    }
  }
  return Value::string("");
}

struct Joiner : CallableObject {
  std::string separator;
  bool used = false;
  Value call(Interpreter&, CallArgs& args, uint32_t pos) override {
    ArgReader("joiner", args, {}, pos);
    if (!used) {
      used = true;
      return Value::string("");
    }
    return Value::string(separator);
  }
};

Value g_joiner(Interpreter& in, CallArgs& args, uint32_t pos) {
  ArgReader a("joiner", args, {"sep"}, pos);
  auto j = std::make_shared<Joiner>();
  j->name = "joiner";
  j->separator = a.get(0) ? in.to_text(*a.get(0), pos) : std::string(", ");
  return Value::from_heap(Kind::Callable, std::move(j));
}

Value g_unsupported(Interpreter&, CallArgs&, uint32_t pos) {
  fail_unsupported(pos, "this global function is not supported by the chat template interpreter");
}

}  // namespace

void install_globals(Frame& globals) {
  struct Entry {
    const char* name;
    GlobalFn fn;
  };
  const Entry entries[] = {
      {"range", g_range},           {"dict", g_dict},
      {"namespace", g_namespace},   {"raise_exception", g_raise_exception},
      {"strftime_now", g_strftime_now}, {"joiner", g_joiner},
      {"cycler", g_unsupported},    {"lipsum", g_unsupported},
  };
  for (const Entry& e : entries) {
    auto g = std::make_shared<Global>();
    g->name = e.name;
    g->fn = e.fn;
    globals.set(e.name, Value::from_heap(Kind::Callable, std::move(g)));
  }
}

}  // namespace edgelm::jinja
