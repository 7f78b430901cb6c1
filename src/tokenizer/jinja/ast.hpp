// Syntax tree of a parsed template (the node types of Jinja's parser that chat templates use).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.hpp"

namespace edgelm::jinja {

enum class ExprKind : uint8_t {
  Const,     // value
  Name,      // name
  List,      // items
  Tuple,     // items
  Dict,      // items: key, value, key, value, ...
  Getattr,   // a.name
  Getitem,   // a[b]   (b may be a Slice)
  Slice,     // a:b:c  (each may be null)
  Call,      // a(items..., kwargs...)
  Filter,    // a|name(items..., kwargs...)   (a is null inside {% filter %} / {% set %} blocks)
  Test,      // a is name(items..., kwargs...)
  Neg,       // -a
  Pos,       // +a
  Not,       // not a
  Binary,    // a <bin> b
  Compare,   // items[0] cmp[0] items[1] cmp[1] items[2] ...
  And,       // a and b
  Or,        // a or b
  CondExpr,  // b if a else c   (c may be null)
  Concat,    // items joined with ~
};

enum class BinOp : uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CmpOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Const;
  uint32_t pos = 0;
  Value value;
  std::string name;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  BinOp bin = BinOp::Add;
  std::vector<CmpOp> cmp;
  bool soft = false;   // Filter/Test inside an if/conditional: an unknown name fails only when run
  bool nsref = false;  // Getattr parsed as an assignment target `ns.attr`
  uint32_t depth = 1;  // height of this subtree (bounded so evaluation cannot overflow the stack)
  bool constant = false;  // Jinja can evaluate it when compiling (no variables, calls, ...)
};

// Where a {% set %} or {% for %} stores values: a name, a namespace attribute, or a tuple.
struct Target {
  enum class Kind : uint8_t { Name, NamespaceAttr, Tuple };
  Kind kind = Kind::Name;
  uint32_t pos = 0;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

enum class StmtKind : uint8_t {
  Text,         // text
  Print,        // {{ expr }}
  If,           // if expr: body; elifs; else_body
  For,          // for target in expr [if cond]: body; else: else_body
  Set,          // set target = expr
  SetBlock,     // set target [| filter] %} body {% endset
  Macro,        // macro name(params=defaults): body
  Break,
  Continue,
  FilterBlock,  // filter <filter> %} body {% endfilter
  With,         // with assignments: body
  Scope,        // {% generation %} body {% endgeneration %}: renders body unchanged
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind = StmtKind::Text;
  uint32_t pos = 0;
  std::string text;
  bool constant_output = false;  // Print of a constant expression (Jinja folds it when compiling)
  ExprPtr expr;
  ExprPtr cond;
  ExprPtr filter;  // SetBlock / FilterBlock: a Filter chain whose innermost input is null
  Target target;
  Body body;
  Body else_body;
  std::vector<std::pair<ExprPtr, Body>> elifs;
  std::vector<std::pair<Target, ExprPtr>> assignments;
  // Macro
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  bool uses_varargs = false;
  bool uses_kwargs = false;
};

struct Template {
  std::string source;  // newline-normalized; node positions are offsets into it
  Body body;
};

}  // namespace edgelm::jinja
