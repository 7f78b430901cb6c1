// Runtime values: the Python objects a Jinja template sees, with Python's rules for truth,
// equality, ordering, hashing and str()/repr().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace edgelm::jinja {

class Interpreter;
class Value;

// Deepest container nesting the interpreter builds or prints (deeper fails with a Limit error,
// which also keeps recursive printing and destruction off the end of the stack).
inline constexpr uint32_t kMaxContainerDepth = 200;

enum class Kind : uint8_t {
  Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable, Loop,
};

// Which Python type a list-like value stands for: they print, compare and index differently.
enum class SeqKind : uint8_t {
  List,        // list
  Tuple,       // tuple
  Iterator,    // generator (map/select/...): truthy, no len(), not indexable, iterates once
  Range,       // range(...)
  DictKeys,    // dict_keys / dict_values / dict_items: have len(), not indexable
  DictValues,
  DictItems,
};

struct HeapObject {
  virtual ~HeapObject() = default;
};

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  // An undefined value that reports `error` when used (a method the sandbox forbids, ...).
  static Value undefined_failing(std::string error);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  // A string marked safe (Python's markupsafe.Markup, what |safe and |escape return); only the
  // `escaped` test tells it apart from a plain string.
  static Value markup(std::string s);
  bool is_markup() const;
  static Value sequence(std::vector<Value> items, SeqKind kind = SeqKind::List);
  static Value from_heap(Kind kind, std::shared_ptr<HeapObject> obj);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_integral() const { return kind_ == Kind::Int || kind_ == Kind::Bool; }  // Python int
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list_like() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
  double as_float() const { return kind_ == Kind::Float ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const;
  const std::string& undefined_hint() const;
  // Non-empty when using this undefined value must raise this message.
  const std::string& undefined_error() const;

  struct ListObject& list() const;
  struct DictObject& dict() const;
  struct NamespaceObject& ns() const;
  struct CallableObject& callable() const;
  struct LoopObject& loop() const;
  SeqKind seq_kind() const;

  // Identity for `is sameas` and for equality of reference-like objects.
  const void* identity() const;

 private:
  Kind kind_ = Kind::Undefined;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<HeapObject> obj_;
};

struct StringObject : HeapObject {
  explicit StringObject(std::string s, bool is_markup = false)
      : text(std::move(s)), markup(is_markup) {}
  std::string text;
  bool markup;
};

struct UndefinedObject : HeapObject {
  std::string hint;   // what was missing, for error messages
  std::string error;  // set: any use raises this
};

struct ListObject : HeapObject {
  SeqKind kind = SeqKind::List;
  std::vector<Value> items;
  size_t next = 0;        // Iterator: items before this were consumed
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // Range: for repr
  uint32_t depth = 1;     // nesting depth of containers
};

struct DictObject : HeapObject {
  std::vector<std::pair<Value, Value>> entries;  // insertion order, like Python's dict
  uint32_t depth = 1;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);  // replaces an equal key in place
  void clear();

 private:
  // String key -> position in entries, kept once the dict outgrows linear search (JSON input
  // can be large). The views point into the keys' own immutable strings.
  std::unordered_map<std::string_view, size_t> index_;
};

struct NamespaceObject : HeapObject {
  DictObject attrs;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct CallableObject : HeapObject {
  std::string name;  // for messages: "range", "str.strip", "macro 'foo'"
  std::string repr;  // Python's repr when it is stable (macros); empty: printing it fails
  virtual Value call(Interpreter& interp, CallArgs& args, uint32_t pos) = 0;
};

struct LoopObject : HeapObject {
  std::shared_ptr<const std::vector<Value>> items;
  int64_t index0 = 0;
  bool has_last_changed = false;
  Value last_changed;
};

// Python truth value (Undefined, None, 0, "", empty containers are false; generators true).
bool truthy(const Value& v);

// Python ==. Numbers compare across int/float/bool; tuple != list; dicts ignore order.
bool py_equal(const Value& a, const Value& b);

// Python `hash()` support: true for values that may be dict keys / set members.
bool hashable(const Value& v);

// Python type name as used in error messages ("str", "int", "dict", "NoneType", ...).
std::string type_name(const Value& v);

// Nesting depth a container holding `items` gets (1 + deepest child); used to cap nesting.
uint32_t child_depth(const Value& v);

}  // namespace edgelm::jinja
