#include "tokenizer/jinja/value.hpp"

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/failure.hpp"

namespace edgelm::jinja {
namespace {

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

// Exact comparison of a Python int with a float (Python never rounds the int).
bool int_equals_float(int64_t i, double f) {
  if (!std::isfinite(f) || std::floor(f) != f) return false;
  if (f < -9.2233720368547758e18 || f >= 9.2233720368547758e18) return false;
  return static_cast<int64_t>(f) == i;
}

bool same_elements_unordered(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  for (const Value& x : a) {
    bool found = false;
    for (size_t j = 0; j < b.size(); ++j) {
      if (!used[j] && py_equal(x, b[j])) {
        used[j] = true;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) {
    auto obj = std::make_shared<UndefinedObject>();
    obj->hint = std::move(hint);
    v.obj_ = std::move(obj);
  }
  return v;
}

Value Value::undefined_failing(std::string error) {
  Value v;
  auto obj = std::make_shared<UndefinedObject>();
  obj->hint = error;
  obj->error = std::move(error);
  v.obj_ = std::move(obj);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::Float;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.obj_ = std::make_shared<StringObject>(std::move(s));
  return v;
}

Value Value::markup(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.obj_ = std::make_shared<StringObject>(std::move(s), true);
  return v;
}

bool Value::is_markup() const {
  return kind_ == Kind::String && static_cast<const StringObject&>(*obj_).markup;
}

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  auto obj = std::make_shared<ListObject>();
  obj->kind = kind;
  uint32_t depth = 1;
  for (const Value& item : items) depth = std::max(depth, child_depth(item) + 1);
  if (depth > kMaxContainerDepth) {
    fail(FailKind::Limit, kNoPos, "containers nested more than 200 levels deep");
  }
  obj->depth = depth;
  obj->items = std::move(items);
  return from_heap(Kind::List, std::move(obj));
}

Value Value::from_heap(Kind kind, std::shared_ptr<HeapObject> obj) {
  Value v;
  v.kind_ = kind;
  v.obj_ = std::move(obj);
  return v;
}

const std::string& Value::as_string() const {
  return static_cast<const StringObject&>(*obj_).text;
}

const std::string& Value::undefined_hint() const {
  return obj_ ? static_cast<const UndefinedObject&>(*obj_).hint : empty_string();
}

const std::string& Value::undefined_error() const {
  return obj_ ? static_cast<const UndefinedObject&>(*obj_).error : empty_string();
}

ListObject& Value::list() const { return static_cast<ListObject&>(*obj_); }
DictObject& Value::dict() const { return static_cast<DictObject&>(*obj_); }
NamespaceObject& Value::ns() const { return static_cast<NamespaceObject&>(*obj_); }
CallableObject& Value::callable() const { return static_cast<CallableObject&>(*obj_); }
LoopObject& Value::loop() const { return static_cast<LoopObject&>(*obj_); }
SeqKind Value::seq_kind() const { return list().kind; }
const void* Value::identity() const { return obj_.get(); }

namespace {
constexpr size_t kIndexFrom = 16;  // dicts larger than this get a hash index on string keys
}  // namespace

const Value* DictObject::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries) {
    if (py_equal(k, key)) return &v;
  }
  return nullptr;
}

const Value* DictObject::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

void DictObject::set(Value key, Value value) {
  uint32_t d = std::max(child_depth(key), child_depth(value)) + 1;
  if (d > kMaxContainerDepth) {
    fail(FailKind::Limit, kNoPos, "containers nested more than 200 levels deep");
  }
  depth = std::max(depth, d);
  if (key.is_string()) {
    if (Value* existing = const_cast<Value*>(find(std::string_view(key.as_string())))) {
      *existing = std::move(value);
      return;
    }
  } else {
    for (auto& [k, v] : entries) {
      if (py_equal(k, key)) {
        v = std::move(value);
        return;
      }
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
  if (entries.size() > kIndexFrom) {
    if (index_.empty()) {
      for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].first.is_string()) index_.emplace(entries[i].first.as_string(), i);
      }
    } else if (entries.back().first.is_string()) {
      index_.emplace(entries.back().first.as_string(), entries.size() - 1);
    }
  }
}

void DictObject::clear() {
  index_.clear();
  entries.clear();
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return false;
    case Kind::None: return false;
    case Kind::Bool: return v.as_bool();
    case Kind::Int: return v.as_int() != 0;
    case Kind::Float: return v.as_float() != 0.0;
    case Kind::String: return !v.as_string().empty();
    case Kind::List:
      if (v.seq_kind() == SeqKind::Iterator) return true;
      return !v.list().items.empty();
    case Kind::Dict: return !v.dict().entries.empty();
    case Kind::Namespace:
    case Kind::Callable:
    case Kind::Loop: return true;
  }
  return false;
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() && b.is_float()) return a.as_float() == b.as_float();
    if (a.is_float()) return int_equals_float(b.as_int(), a.as_float());
    if (b.is_float()) return int_equals_float(a.as_int(), b.as_float());
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.as_string() == b.as_string();
    case Kind::List: {
      const ListObject& x = a.list();
      const ListObject& y = b.list();
      if (&x == &y) return true;
      if (x.kind != y.kind) return false;
      if (x.kind == SeqKind::Iterator || x.kind == SeqKind::DictValues) return false;
      if (x.kind == SeqKind::DictKeys || x.kind == SeqKind::DictItems) {
        return same_elements_unordered(x.items, y.items);
      }
      if (x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!py_equal(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Kind::Dict: {
      const DictObject& x = a.dict();
      const DictObject& y = b.dict();
      if (&x == &y) return true;
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (other == nullptr || !py_equal(v, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool hashable(const Value& v) {
  switch (v.kind()) {
    case Kind::Dict: return false;
    case Kind::List:
      switch (v.seq_kind()) {
        case SeqKind::Tuple:
          return std::all_of(v.list().items.begin(), v.list().items.end(), hashable);
        case SeqKind::Iterator:
        case SeqKind::Range: return true;
        default: return false;
      }
    default: return true;
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List:
      switch (v.seq_kind()) {
        case SeqKind::List: return "list";
        case SeqKind::Tuple: return "tuple";
        case SeqKind::Iterator: return "generator";
        case SeqKind::Range: return "range";
        case SeqKind::DictKeys: return "dict_keys";
        case SeqKind::DictValues: return "dict_values";
        case SeqKind::DictItems: return "dict_items";
      }
      return "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
    case Kind::Loop: return "LoopContext";
  }
  return "object";
}

uint32_t child_depth(const Value& v) {
  switch (v.kind()) {
    case Kind::List: return v.list().depth;
    case Kind::Dict: return v.dict().depth;
    case Kind::Namespace: return v.ns().attrs.depth;
    default: return 0;
  }
}

}  // namespace edgelm::jinja
