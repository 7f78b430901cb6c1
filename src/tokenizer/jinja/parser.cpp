#include "tokenizer/jinja/parser.hpp"

#include <algorithm>
#include <initializer_list>

#include "tokenizer/jinja/failure.hpp"
#include "tokenizer/jinja/lexer.hpp"

namespace edgelm::jinja {
namespace {

// Bounds that keep parsing and evaluation recursion far from the end of the stack.
constexpr int kMaxParseNesting = 200;      // nested brackets / unary operators while parsing
constexpr uint32_t kMaxExprDepth = 256;    // height of one expression tree
constexpr int kMaxStatementNesting = 64;   // nested {% if %} / {% for %} / ... blocks

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::Data: return "template data";
    case Tok::VarBegin: return "begin of print statement";
    case Tok::VarEnd: return "end of print statement";
    case Tok::BlockBegin: return "begin of statement block";
    case Tok::BlockEnd: return "end of statement block";
    case Tok::Name: return t.text;
    case Tok::String: return "string";
    case Tok::Integer: return "integer";
    case Tok::Float: return "float";
    case Tok::Op: return op_text(t.op);
    case Tok::Eof: return "end of template";
  }
  return "token";
}

ExprPtr make(ExprKind kind, uint32_t pos) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->pos = pos;
  return e;
}

class Parser {
 public:
  explicit Parser(LexedTemplate lexed) : src_(std::move(lexed.source)), toks_(std::move(lexed.tokens)) {}

  Template run() {
    Template t;
    t.body = subparse({}, nullptr);
    t.source = std::move(src_);
    return t;
  }

 private:
  // --- token stream -----------------------------------------------------------------------
  const Token& cur() const { return toks_[idx_]; }
  const Token& look() const { return toks_[std::min(idx_ + 1, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = toks_[idx_];
    if (idx_ + 1 < toks_.size()) ++idx_;
    return t;
  }
  bool is_name(std::string_view s) const { return cur().type == Tok::Name && cur().text == s; }
  bool is_op(Op op) const { return cur().type == Tok::Op && cur().op == op; }
  bool skip_name(std::string_view s) {
    if (!is_name(s)) return false;
    next();
    return true;
  }
  bool skip_op(Op op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }

  [[noreturn]] void error(const Token& t, std::string message) const {
    fail(FailKind::Syntax, t.pos, std::move(message));
  }
  [[noreturn]] void unexpected(const Token& t) const {
    if (t.type == Tok::Eof) error(t, "unexpected end of template");
    error(t, "unexpected '" + describe(t) + "'");
  }

  const Token& expect(Tok type, const char* what) {
    if (cur().type != type) {
      error(cur(), std::string("expected ") + what + ", got '" + describe(cur()) + "'");
    }
    return next();
  }
  const Token& expect_op(Op op) {
    if (!is_op(op)) {
      error(cur(), std::string("expected '") + op_text(op) + "', got '" + describe(cur()) + "'");
    }
    return next();
  }
  const Token& expect_name(std::string_view name) {
    if (!is_name(name)) {
      error(cur(), "expected '" + std::string(name) + "', got '" + describe(cur()) + "'");
    }
    return next();
  }

  // RAII nesting counter.
  struct Nest {
    Nest(Parser& p, int& counter, int limit, const char* what) : c(counter) {
      if (++c > limit) {
        fail(FailKind::Limit, p.cur().pos, std::string(what) + " nested too deeply");
      }
    }
    ~Nest() { --c; }
    int& c;
  };

  static void finish(Expr& e) {
    uint32_t d = 0;
    auto see = [&](const ExprPtr& p) {
      if (p) d = std::max(d, p->depth);
    };
    see(e.a);
    see(e.b);
    see(e.c);
    for (const auto& i : e.items) see(i);
    for (const auto& [k, v] : e.kwargs) see(v);
    e.depth = d + 1;
    if (e.depth > kMaxExprDepth) {
      fail(FailKind::Limit, e.pos, "expression nested more than 256 levels deep");
    }
    e.constant = is_constant(e);
  }

  // Jinja's as_const(): what its optimizer may evaluate at compile time.
  static bool is_constant(const Expr& e) {
    auto c = [](const ExprPtr& p) { return !p || p->constant; };
    bool children = c(e.a) && c(e.b) && c(e.c);
    for (const auto& i : e.items) children = children && c(i);
    for (const auto& [k, v] : e.kwargs) children = children && c(v);
    switch (e.kind) {
      case ExprKind::Name:
      case ExprKind::Call: return false;
      case ExprKind::Filter:
        if (!e.a || e.name == "map" || e.name == "select" || e.name == "reject" ||
            e.name == "selectattr" || e.name == "rejectattr" || e.name == "random") {
          return false;
        }
        return children && known_filter(e.name);
      case ExprKind::Test: return children && known_test(e.name);
      case ExprKind::CondExpr:
        // Only the branch the test picks has to be constant; the interpreter finds out.
        return c(e.a) && (c(e.b) || c(e.c));
      case ExprKind::Compare:
        // A chain stops at the first false comparison.
        return c(e.items[0]) && c(e.items[1]);
      case ExprKind::And:
      case ExprKind::Or:
        // Short-circuits: the right side matters only when the left does not decide.
        return c(e.a);
      default: return children;
    }
  }
  static ExprPtr done(ExprPtr e) {
    finish(*e);
    return e;
  }

  // --- statements -------------------------------------------------------------------------
  Body subparse(std::initializer_list<std::string_view> end_tokens, std::string* found) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (end_tokens.size() != 0) {
          std::string want;
          for (auto e : end_tokens) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
          error(t, "unexpected end of template; looking for the tag " + want +
                       " to close the block opened by '" + tag_stack_.back() + "'");
        }
        return body;
      }
      if (t.type == Tok::Data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Text;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::VarBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Print;
        s->pos = cur().pos;
        s->expr = parse_tuple(false, true, {}, false, false);
        s->constant_output = s->expr->constant;
        expect(Tok::VarEnd, "end of print statement '}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        next();
        if (cur().type == Tok::Name &&
            std::find(end_tokens.begin(), end_tokens.end(), cur().text) != end_tokens.end()) {
          if (found != nullptr) *found = cur().text;
          return body;
        }
        parse_statement(body);
        expect(Tok::BlockEnd, "end of statement block '%}'");
      } else {
        unexpected(t);
      }
    }
  }

  // Body of a block statement: `[:] %} ... {% end...`. Leaves the end tag name current unless
  // `drop` is set.
  Body parse_statements(std::initializer_list<std::string_view> end_tokens, bool drop,
                        std::string* found = nullptr) {
    skip_op(Op::Colon);
    expect(Tok::BlockEnd, "end of statement block '%}'");
    std::string which;
    Body body = subparse(end_tokens, &which);
    if (found != nullptr) *found = which;
    if (drop) next();
    return body;
  }

  void parse_statement(Body& out) {
    const Token& t = cur();
    if (t.type != Tok::Name) error(t, "tag name expected");
    Nest nest(*this, statement_nesting_, kMaxStatementNesting, "statement blocks");
    tag_stack_.push_back(t.text);
    const std::string tag = t.text;
    if (tag == "for") {
      out.push_back(parse_for());
    } else if (tag == "if") {
      out.push_back(parse_if());
    } else if (tag == "set") {
      out.push_back(parse_set());
    } else if (tag == "macro") {
      out.push_back(parse_macro());
    } else if (tag == "filter") {
      out.push_back(parse_filter_block());
    } else if (tag == "with") {
      out.push_back(parse_with());
    } else if (tag == "print") {
      next();
      while (cur().type != Tok::BlockEnd) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Print;
        s->pos = cur().pos;
        s->expr = parse_expression(true);
        out.push_back(std::move(s));
        if (cur().type != Tok::BlockEnd) expect_op(Op::Comma);
      }
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error(t, in_quotes(tag) + " outside of a for loop");
      auto s = std::make_unique<Stmt>();
      s->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
      s->pos = t.pos;
      next();
      out.push_back(std::move(s));
    } else if (tag == "generation") {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::Scope;
      s->pos = t.pos;
      next();
      s->body = parse_statements({"endgeneration"}, true);
      out.push_back(std::move(s));
    } else if (tag == "call" || tag == "block" || tag == "extends" || tag == "include" ||
               tag == "import" || tag == "from" || tag == "autoescape") {
      fail_unsupported(t.pos, "the {% " + tag + " %} tag is not supported in chat templates");
    } else if (tag == "do") {
      error(t, "Encountered unknown tag 'do' (the 'do' extension is not enabled)");
    } else {
      error(t, "Encountered unknown tag '" + tag + "'");
    }
    tag_stack_.pop_back();
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::For;
    s->pos = next().pos;
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail_unsupported(cur().pos, "recursive for loops are not supported");
    std::string found;
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, false, &found);
    --loop_depth_;
    next();
    if (found == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::If;
    s->pos = next().pos;
    s->expr = parse_tuple(false, false, {}, false, false);
    std::string found;
    s->body = parse_statements({"elif", "else", "endif"}, false, &found);
    while (true) {
      next();  // the elif / else / endif name
      if (found == "elif") {
        ExprPtr test = parse_tuple(false, false, {}, false, false);
        Body body = parse_statements({"elif", "else", "endif"}, false, &found);
        s->elifs.emplace_back(std::move(test), std::move(body));
        continue;
      }
      if (found == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    auto s = std::make_unique<Stmt>();
    s->pos = next().pos;
    s->target = parse_assign_target(true, false, {}, true);
    if (skip_op(Op::Assign)) {
      s->kind = StmtKind::Set;
      s->expr = parse_tuple(false, true, {}, false, false);
      return s;
    }
    s->kind = StmtKind::SetBlock;
    s->filter = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::Macro;
    s->pos = next().pos;
    s->name = expect(Tok::Name, "macro name").text;
    expect_op(Op::LParen);
    while (!is_op(Op::RParen)) {
      if (!s->params.empty()) expect_op(Op::Comma);
      const Token& p = expect(Tok::Name, "parameter name");
      if (p.text == "true" || p.text == "false" || p.text == "none" || p.text == "True" ||
          p.text == "False" || p.text == "None") {
        error(p, "can't assign to '" + p.text + "'");
      }
      if (skip_op(Op::Assign)) {
        s->defaults.push_back(parse_expression(true));
      } else if (!s->defaults.empty()) {
        error(p, "non-default argument follows default argument");
      }
      s->params.push_back(p.text);
    }
    expect_op(Op::RParen);
    int saved_loops = loop_depth_;
    loop_depth_ = 0;  // a macro body is its own function: break/continue cannot leave it
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved_loops;
    scan_names(s->body, *s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::FilterBlock;
    s->pos = next().pos;
    s->filter = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::With;
    s->pos = next().pos;
    while (cur().type != Tok::BlockEnd) {
      if (!s->assignments.empty()) expect_op(Op::Comma);
      Target target = parse_assign_target(true, false, {}, false);
      expect_op(Op::Assign);
      s->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  // Which of varargs / kwargs a macro body reads (Jinja only accepts extra arguments then).
  static void scan_expr(const Expr* e, Stmt& macro) {
    if (e == nullptr) return;
    if (e->kind == ExprKind::Name) {
      if (e->name == "varargs") macro.uses_varargs = true;
      if (e->name == "kwargs") macro.uses_kwargs = true;
    }
    scan_expr(e->a.get(), macro);
    scan_expr(e->b.get(), macro);
    scan_expr(e->c.get(), macro);
    for (const auto& i : e->items) scan_expr(i.get(), macro);
    for (const auto& [k, v] : e->kwargs) scan_expr(v.get(), macro);
  }
  static void scan_names(const Body& body, Stmt& macro) {
    for (const auto& s : body) {
      scan_expr(s->expr.get(), macro);
      scan_expr(s->cond.get(), macro);
      scan_expr(s->filter.get(), macro);
      for (const auto& d : s->defaults) scan_expr(d.get(), macro);
      for (const auto& [t, e] : s->assignments) scan_expr(e.get(), macro);
      for (const auto& [e, b] : s->elifs) {
        scan_expr(e.get(), macro);
        scan_names(b, macro);
      }
      scan_names(s->body, macro);
      scan_names(s->else_body, macro);
    }
  }

  // --- assignment targets -----------------------------------------------------------------
  Target parse_assign_target(bool with_tuple, bool name_only,
                             std::initializer_list<std::string_view> extra_end, bool with_namespace) {
    if (name_only) {
      const Token& t = expect(Tok::Name, "name");
      Target target;
      target.pos = t.pos;
      target.name = t.text;
      return target;
    }
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace)
                           : parse_primary(with_namespace);
    return to_target(*e);
  }

  Target to_target(const Expr& e) {
    Target t;
    t.pos = e.pos;
    if (e.kind == ExprKind::Name) {
      t.kind = Target::Kind::Name;
      t.name = e.name;
      return t;
    }
    if (e.kind == ExprKind::Getattr && e.nsref) {
      t.kind = Target::Kind::NamespaceAttr;
      t.name = e.a->name;
      t.attr = e.name;
      return t;
    }
    if (e.kind == ExprKind::Tuple) {
      t.kind = Target::Kind::Tuple;
      for (const auto& item : e.items) t.items.push_back(to_target(*item));
      return t;
    }
    const char* what = e.kind == ExprKind::Const ? "const" : "expression";
    fail(FailKind::Syntax, e.pos, std::string("can't assign to '") + what + "'");
  }

  // --- expressions ------------------------------------------------------------------------
  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    uint32_t pos = cur().pos;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      auto node = make(ExprKind::CondExpr, pos);
      node->a = parse_or();
      node->b = std::move(expr1);
      if (skip_name("else")) node->c = parse_condexpr();
      expr1 = done(std::move(node));
      pos = cur().pos;
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      auto node = make(ExprKind::Or, next().pos);
      node->a = std::move(left);
      node->b = parse_and();
      left = done(std::move(node));
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      auto node = make(ExprKind::And, next().pos);
      node->a = std::move(left);
      node->b = parse_not();
      left = done(std::move(node));
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this, nesting_, kMaxParseNesting, "expressions");
      auto node = make(ExprKind::Not, next().pos);
      node->a = parse_not();
      return done(std::move(node));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    uint32_t pos = cur().pos;
    ExprPtr expr = parse_math1();
    ExprPtr node;
    while (true) {
      CmpOp op;
      if (cur().type == Tok::Op && (cur().op == Op::Eq || cur().op == Op::Ne || cur().op == Op::Lt ||
                                    cur().op == Op::Le || cur().op == Op::Gt || cur().op == Op::Ge)) {
        switch (next().op) {
          case Op::Eq: op = CmpOp::Eq; break;
          case Op::Ne: op = CmpOp::Ne; break;
          case Op::Lt: op = CmpOp::Lt; break;
          case Op::Le: op = CmpOp::Le; break;
          case Op::Gt: op = CmpOp::Gt; break;
          default: op = CmpOp::Ge; break;
        }
      } else if (skip_name("in")) {
        op = CmpOp::In;
      } else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
        next();
        next();
        op = CmpOp::NotIn;
      } else {
        break;
      }
      if (!node) {
        node = make(ExprKind::Compare, pos);
        node->items.push_back(std::move(expr));
      }
      node->cmp.push_back(op);
      node->items.push_back(parse_math1());
    }
    if (!node) return expr;
    return done(std::move(node));
  }

  ExprPtr binary(BinOp op, uint32_t pos, ExprPtr a, ExprPtr b) {
    auto node = make(ExprKind::Binary, pos);
    node->bin = op;
    node->a = std::move(a);
    node->b = std::move(b);
    return done(std::move(node));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op(Op::Add) || is_op(Op::Sub)) {
      const Token& t = next();
      left = binary(t.op == Op::Add ? BinOp::Add : BinOp::Sub, t.pos, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    uint32_t pos = cur().pos;
    ExprPtr first = parse_math2();
    if (!is_op(Op::Tilde)) return first;
    auto node = make(ExprKind::Concat, pos);
    node->items.push_back(std::move(first));
    while (skip_op(Op::Tilde)) node->items.push_back(parse_math2());
    return done(std::move(node));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (cur().type == Tok::Op && (cur().op == Op::Mul || cur().op == Op::Div ||
                                     cur().op == Op::FloorDiv || cur().op == Op::Mod)) {
      const Token& t = next();
      BinOp op = t.op == Op::Mul ? BinOp::Mul
                 : t.op == Op::Div ? BinOp::Div
                 : t.op == Op::FloorDiv ? BinOp::FloorDiv
                                        : BinOp::Mod;
      left = binary(op, t.pos, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op(Op::Pow)) {
      uint32_t pos = next().pos;
      left = binary(BinOp::Pow, pos, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this, nesting_, kMaxParseNesting, "expressions");
    ExprPtr node;
    if (is_op(Op::Sub) || is_op(Op::Add)) {
      const Token& t = next();
      node = make(t.op == Op::Sub ? ExprKind::Neg : ExprKind::Pos, t.pos);
      node->a = parse_unary(false);
      node = done(std::move(node));
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    Nest nest(*this, nesting_, kMaxParseNesting, "expressions");
    const Token& t = cur();
    ExprPtr node;
    switch (t.type) {
      case Tok::Name: {
        next();
        if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
          node = make(ExprKind::Const, t.pos);
          node->value = Value::boolean(t.text == "true" || t.text == "True");
        } else if (t.text == "none" || t.text == "None") {
          node = make(ExprKind::Const, t.pos);
          node->value = Value::none();
        } else if (with_namespace && is_op(Op::Dot)) {
          next();
          node = make(ExprKind::Getattr, t.pos);
          node->nsref = true;
          node->a = make(ExprKind::Name, t.pos);
          node->a->name = t.text;
          node->name = expect(Tok::Name, "attribute name").text;
        } else {
          node = make(ExprKind::Name, t.pos);
          node->name = t.text;
        }
        break;
      }
      case Tok::String: {
        node = make(ExprKind::Const, t.pos);
        std::string text = next().text;
        while (cur().type == Tok::String) text += next().text;
        node->value = Value::string(std::move(text));
        break;
      }
      case Tok::Integer:
        node = make(ExprKind::Const, t.pos);
        node->value = Value::integer(next().int_value);
        break;
      case Tok::Float:
        node = make(ExprKind::Const, t.pos);
        node->value = Value::number(next().float_value);
        break;
      case Tok::Op:
        if (t.op == Op::LParen) {
          next();
          node = parse_tuple(false, true, {}, true, false);
          expect_op(Op::RParen);
          return node;
        }
        if (t.op == Op::LBracket) return parse_list();
        if (t.op == Op::LBrace) return parse_dict();
        unexpected(t);
      default:
        unexpected(t);
    }
    return done(std::move(node));
  }

  bool is_tuple_end(std::initializer_list<std::string_view> extra) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(Op::RParen)) return true;
    for (auto e : extra) {
      if (is_name(e)) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      std::initializer_list<std::string_view> extra_end, bool explicit_parens,
                      bool with_namespace) {
    uint32_t pos = cur().pos;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(Op::Comma);
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(Op::Comma)) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) {
        error(cur(), "expected an expression, got '" + describe(cur()) + "'");
      }
    }
    auto node = make(ExprKind::Tuple, pos);
    node->items = std::move(args);
    return done(std::move(node));
  }

  ExprPtr parse_list() {
    auto node = make(ExprKind::List, expect_op(Op::LBracket).pos);
    while (!is_op(Op::RBracket)) {
      if (!node->items.empty()) expect_op(Op::Comma);
      if (is_op(Op::RBracket)) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op(Op::RBracket);
    return done(std::move(node));
  }

  ExprPtr parse_dict() {
    auto node = make(ExprKind::Dict, expect_op(Op::LBrace).pos);
    while (!is_op(Op::RBrace)) {
      if (!node->items.empty()) expect_op(Op::Comma);
      if (is_op(Op::RBrace)) break;
      node->items.push_back(parse_expression(true));
      expect_op(Op::Colon);
      node->items.push_back(parse_expression(true));
    }
    expect_op(Op::RBrace);
    return done(std::move(node));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(Op::Dot) || is_op(Op::LBracket)) {
        node = parse_subscript(std::move(node));
      } else if (is_op(Op::LParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(Op::Pipe)) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op(Op::LParen)) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.op == Op::Dot) {
      const Token& attr = next();
      if (attr.type == Tok::Name) {
        auto g = make(ExprKind::Getattr, t.pos);
        g->a = std::move(node);
        g->name = attr.text;
        return done(std::move(g));
      }
      if (attr.type != Tok::Integer) error(attr, "expected name or number");
      auto g = make(ExprKind::Getitem, t.pos);
      g->a = std::move(node);
      g->b = make(ExprKind::Const, attr.pos);
      g->b->value = Value::integer(attr.int_value);
      return done(std::move(g));
    }
    std::vector<ExprPtr> args;
    while (!is_op(Op::RBracket)) {
      if (!args.empty()) expect_op(Op::Comma);
      args.push_back(parse_subscribed());
    }
    expect_op(Op::RBracket);
    auto g = make(ExprKind::Getitem, t.pos);
    g->a = std::move(node);
    if (args.size() == 1) {
      g->b = std::move(args[0]);
    } else {
      g->b = make(ExprKind::Tuple, t.pos);
      g->b->items = std::move(args);
      finish(*g->b);
    }
    return done(std::move(g));
  }

  ExprPtr parse_subscribed() {
    uint32_t pos = cur().pos;
    auto slice = make(ExprKind::Slice, pos);
    if (is_op(Op::Colon)) {
      next();
    } else {
      ExprPtr e = parse_expression(true);
      if (!is_op(Op::Colon)) return e;
      next();
      slice->a = std::move(e);
    }
    if (!is_op(Op::Colon) && !is_op(Op::RBracket) && !is_op(Op::Comma)) {
      slice->b = parse_expression(true);
    }
    if (skip_op(Op::Colon)) {
      if (!is_op(Op::RBracket) && !is_op(Op::Comma)) slice->c = parse_expression(true);
    }
    return done(std::move(slice));
  }

  void parse_call_args(Expr& node) {
    const Token& open = expect_op(Op::LParen);
    bool require_comma = false;
    while (!is_op(Op::RParen)) {
      if (require_comma) {
        expect_op(Op::Comma);
        if (is_op(Op::RParen)) break;
      }
      if (is_op(Op::Mul) || is_op(Op::Pow)) {
        fail_unsupported(cur().pos, "*args / **kwargs in calls are not supported");
      }
      if (cur().type == Tok::Name && look().type == Tok::Op && look().op == Op::Assign) {
        std::string key = next().text;
        next();
        node.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!node.kwargs.empty()) error(open, "invalid syntax for function call expression");
        node.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(Op::RParen);
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto node = make(ExprKind::Call, cur().pos);
    node->a = std::move(callee);
    parse_call_args(*node);
    return done(std::move(node));
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(Op::Pipe) || start_inline) {
      if (!start_inline) next();
      const Token& name = expect(Tok::Name, "filter name");
      auto f = make(ExprKind::Filter, name.pos);
      f->name = name.text;
      while (skip_op(Op::Dot)) f->name += "." + expect(Tok::Name, "filter name").text;
      f->a = std::move(node);
      if (is_op(Op::LParen)) parse_call_args(*f);
      node = done(std::move(f));
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& is = next();
    bool negated = skip_name("not");
    const Token& name = expect(Tok::Name, "test name");
    auto t = make(ExprKind::Test, name.pos);
    t->name = name.text;
    while (skip_op(Op::Dot)) t->name += "." + expect(Tok::Name, "test name").text;
    t->a = std::move(node);
    if (is_op(Op::LParen)) {
      parse_call_args(*t);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Integer ||
                cur().type == Tok::Float || is_op(Op::LParen) || is_op(Op::LBracket) ||
                is_op(Op::LBrace)) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error(cur(), "You cannot chain multiple tests with is");
      ExprPtr arg = parse_primary(false);
      t->items.push_back(parse_postfix(std::move(arg)));
    }
    ExprPtr result = done(std::move(t));
    if (negated) {
      auto n = make(ExprKind::Not, is.pos);
      n->a = std::move(result);
      result = done(std::move(n));
    }
    return result;
  }

  std::string src_;
  std::vector<Token> toks_;
  size_t idx_ = 0;
  int nesting_ = 0;
  int statement_nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<std::string> tag_stack_;
};

// Jinja rejects unknown filters and tests when compiling, except inside if-statements and
// conditional expressions ("soft" frames), where they fail only if evaluated.
void check_expr(Expr* e, bool soft) {
  if (e == nullptr) return;
  if (e->kind == ExprKind::Filter || e->kind == ExprKind::Test) {
    bool known = e->kind == ExprKind::Filter ? known_filter(e->name) : known_test(e->name);
    if (!known && !soft) {
      fail(FailKind::Syntax, e->pos,
           std::string("No ") + (e->kind == ExprKind::Filter ? "filter" : "test") + " named '" +
               e->name + "'.");
    }
    e->soft = soft;
  }
  bool inner = soft || e->kind == ExprKind::CondExpr;
  check_expr(e->a.get(), inner);
  check_expr(e->b.get(), inner);
  check_expr(e->c.get(), inner);
  for (auto& i : e->items) check_expr(i.get(), inner);
  for (auto& [k, v] : e->kwargs) check_expr(v.get(), inner);
}

void check_body(Body& body, bool soft) {
  for (auto& s : body) {
    switch (s->kind) {
      case StmtKind::If:
        check_expr(s->expr.get(), true);
        check_body(s->body, true);
        for (auto& [test, b] : s->elifs) {
          check_expr(test.get(), true);
          check_body(b, true);
        }
        check_body(s->else_body, true);
        break;
      case StmtKind::For:
        check_expr(s->expr.get(), soft);
        check_expr(s->cond.get(), false);
        check_body(s->body, false);
        check_body(s->else_body, false);
        break;
      case StmtKind::Macro:
        for (auto& d : s->defaults) check_expr(d.get(), false);
        check_body(s->body, false);
        break;
      case StmtKind::With:
        for (auto& [t, e] : s->assignments) check_expr(e.get(), soft);
        check_body(s->body, false);
        break;
      case StmtKind::SetBlock:
      case StmtKind::FilterBlock:
        check_expr(s->filter.get(), false);
        check_body(s->body, false);
        break;
      case StmtKind::Scope:
        check_body(s->body, false);
        break;
      default:
        check_expr(s->expr.get(), soft);
        break;
    }
  }
}

}  // namespace

Template parse_template(std::string_view source) {
  Template t = Parser(lex(source)).run();
  check_body(t.body, false);
  return t;
}

}  // namespace edgelm::jinja
