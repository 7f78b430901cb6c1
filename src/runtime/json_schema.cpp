// JSON Schema -> GBNF. Each schema node becomes a rule; the generated documents are a subset of
// the documents the schema accepts (e.g. numbers without exponents where bounds apply, dates
// without 29 February), so every one of them validates. Keywords outside the supported set are
// errors, never ignored, except annotations (title, description, ...), which constrain nothing.
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "edgelm/error.hpp"
#include "edgelm/grammar.hpp"
#include "runtime/json_schema_parts.hpp"

namespace edgelm {
namespace {

using json = nlohmann::ordered_json;

const std::set<std::string> kAnnotations = {"title", "description", "$schema", "$id", "$comment", "default",
                                            "examples", "deprecated", "readOnly", "writeOnly", "$defs",
                                            "definitions"};
const std::set<std::string> kKeywords = {"type", "properties", "required", "additionalProperties", "items",
                                         "minItems", "maxItems", "enum", "const", "minimum", "maximum",
                                         "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                                         "pattern", "format", "$ref", "anyOf", "oneOf"};

// The shared building blocks, emitted once each when used. Whitespace is bounded (one newline
// and some indentation at most) so that a model cannot spend its whole budget on it.
const std::map<std::string, std::string> kPrimitives = {
    {"ws", R"(| [ \t] | "\n" [ \t]{0,16})"},
    {"value", "object | array | string | number | boolean | null"},
    {"object", R"("{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}")"},
    {"array", R"("[" ws ( value ws ( "," ws value ws )* )? "]")"},
    {"string", R"("\"" char* "\"")"},
    {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ))"},
    {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
    {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?)"},
    {"boolean", R"("true" | "false")"},
    {"null", R"("null")"},
};
const std::map<std::string, std::vector<std::string>> kPrimitiveDeps = {
    {"value", {"object", "array", "string", "number", "boolean", "null"}},
    {"object", {"ws", "string", "value"}},
    {"array", {"ws", "value"}},
    {"string", {"char"}},
    {"number", {"integer"}},
};

// A GBNF string literal for `text` (the bytes as they must appear in the output).
std::string literal(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string rule_name_part(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out.empty() ? "x" : out;
}

using Rules = std::map<std::string, std::string>;

std::string rules_text(const Rules& rules) {
  std::string out;
  for (const auto& [name, body] : rules) out += name + " ::= " + body + "\n";
  return out;
}

// Writes the rules of one schema into `rules`, which several converters may share: names are
// made unique against what is there, and the building blocks (ws, string, ...) are shared.
class SchemaConverter {
 public:
  SchemaConverter(const json& root, Rules& rules) : root_(root), rules_(rules) {}

  // Adds `name ::= ws <document>` (nothing after the value: the end of text, or whatever the
  // caller's grammar puts there, comes next).
  void convert(const std::string& name) {
    const std::string top = visit(root_, "", name + "-value");
    rules_[name] = "ws " + top;
    use("ws");
  }

 private:
  const json& root_;
  Rules& rules_;
  std::map<std::string, std::string> ref_rules_;  // "#/$defs/x" -> its rule

  [[noreturn]] static void fail(const std::string& path, const std::string& what) {
    throw Error("json schema " + (path.empty() ? std::string("/") : path) + ": " + what,
                "see docs/grammar.md for the supported keywords");
  }

  std::string use(const std::string& primitive) {
    if (rules_.count(primitive)) return primitive;
    rules_[primitive] = kPrimitives.at(primitive);
    if (auto it = kPrimitiveDeps.find(primitive); it != kPrimitiveDeps.end())
      for (const auto& dep : it->second) use(dep);
    return primitive;
  }

  std::string add_rule(const std::string& want, const std::string& body) {
    std::string name = rule_name_part(want);
    for (int i = 2; rules_.count(name) || kPrimitives.count(name); ++i) name = rule_name_part(want) + "-" + std::to_string(i);
    rules_[name] = body;
    return name;
  }

  // A rule matching the instances of `s`; returns its name.
  std::string visit(const json& s, const std::string& path, const std::string& name) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "the schema 'false' accepts nothing");
      return use("value");
    }
    if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
    check_keywords(s, path);
    if (s.contains("$ref")) return visit_ref(s, path);
    if (s.contains("anyOf") || s.contains("oneOf")) return visit_alternatives(s, path, name);
    if (s.contains("const")) return add_rule(name, values_of(s, path, json::array({s["const"]}), "const"));
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) fail(path + "/enum", "must be a non-empty array");
      return add_rule(name, values_of(s, path, s["enum"], "enum"));
    }
    const json types = s.contains("type") ? s["type"] : json::array({implied_type(s)});
    if (types.is_string()) return visit_typed(s, types.get<std::string>(), path, name);
    if (!types.is_array() || types.empty()) fail(path + "/type", "must be a type name or a non-empty array of them");
    std::string body;
    for (const auto& t : types) {
      if (!t.is_string()) fail(path + "/type", "must be a type name or a non-empty array of them");
      body += (body.empty() ? "" : " | ") + visit_typed(s, t.get<std::string>(), path, name + "-" + t.get<std::string>());
    }
    return add_rule(name, body);
  }

  static void check_keywords(const json& s, const std::string& path) {
    for (const auto& [key, _] : s.items()) {
      if (kAnnotations.count(key) || kKeywords.count(key)) continue;
      fail(path, "unsupported keyword '" + key + "'");
    }
    const bool ref = s.contains("$ref"), alts = s.contains("anyOf") || s.contains("oneOf");
    if (ref || alts) {
      for (const auto& [key, _] : s.items()) {
        if (kAnnotations.count(key) || key == "$ref" || key == "anyOf" || key == "oneOf") continue;
        fail(path, "'" + key + "' beside '" + (ref ? "$ref" : "anyOf/oneOf") + "' is not supported; move it into the alternatives");
      }
    }
    if (s.contains("anyOf") && s.contains("oneOf")) fail(path, "'anyOf' beside 'oneOf' is not supported");
  }

  static std::string implied_type(const json& s) {
    for (const char* k : {"properties", "additionalProperties", "required"})
      if (s.contains(k)) return "object";
    for (const char* k : {"items", "minItems", "maxItems"})
      if (s.contains(k)) return "array";
    for (const char* k : {"minLength", "maxLength", "pattern", "format"})
      if (s.contains(k)) return "string";
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
      if (s.contains(k)) return "number";
    return "any";
  }

  std::string visit_ref(const json& s, const std::string& path) {
    if (!s["$ref"].is_string()) fail(path + "/$ref", "must be a string");
    const std::string ref = s["$ref"];
    if (auto it = ref_rules_.find(ref); it != ref_rules_.end()) return it->second;
    if (ref.empty() || ref[0] != '#') fail(path + "/$ref", "only local references ('#/$defs/name') are supported, not '" + ref + "'");
    const json* target = nullptr;
    try {
      target = &root_.at(json::json_pointer(ref.substr(1)));
    } catch (const json::exception&) {
      fail(path + "/$ref", "'" + ref + "' points at nothing in this schema");
    }
    // The name is reserved before the target is visited, so a recursive schema refers to it.
    const std::string name = add_rule("ref-" + ref.substr(ref.find_last_of('/') + 1), "");
    ref_rules_[ref] = name;
    rules_[name] = visit(*target, ref.substr(1), name + "-body");
    return name;
  }

  std::string visit_alternatives(const json& s, const std::string& path, const std::string& name) {
    const char* key = s.contains("anyOf") ? "anyOf" : "oneOf";
    const json& alts = s[key];
    if (!alts.is_array() || alts.empty()) fail(path + "/" + key, "must be a non-empty array");
    std::string body;
    for (size_t i = 0; i < alts.size(); ++i) {
      const std::string sub = path + "/" + key + "/" + std::to_string(i);
      body += (body.empty() ? "" : " | ") + visit(alts[i], sub, name + "-" + std::to_string(i));
    }
    return add_rule(name, body);
  }

  // The alternatives of enum/const: each value in compact JSON (those that fit `type`, if any).
  std::string values_of(const json& s, const std::string& path, const json& values, const char* key) {
    std::string body;
    for (const auto& v : values) {
      if (s.contains("type") && !fits_type(v, s["type"])) continue;
      body += (body.empty() ? "" : " | ") + literal(v.dump());
    }
    if (body.empty()) fail(path + "/" + key, "no value fits the schema's type");
    return body;
  }

  static bool fits_type(const json& v, const json& type) {
    if (type.is_array()) {
      for (const auto& t : type)
        if (fits_type(v, t)) return true;
      return false;
    }
    const std::string t = type.is_string() ? type.get<std::string>() : "";
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    return false;
  }

  std::string visit_typed(const json& s, const std::string& type, const std::string& path, const std::string& name) {
    if (type == "any") return use("value");
    if (type == "null") return use("null");
    if (type == "boolean") return use("boolean");
    if (type == "integer" || type == "number") return add_rule(name, number_body(s, type == "integer", path));
    if (type == "string") return add_rule(name, string_body(s, path));
    if (type == "array") return add_rule(name, array_body(s, path, name));
    if (type == "object") return add_rule(name, object_body(s, path, name));
    fail(path + "/type", "unknown type '" + type + "'");
  }

  std::string number_body(const json& s, bool integer, const std::string& path) {
    try {
      return bounded_number_body(s, integer, path);
    } catch (const PatternError& e) {
      fail(path, e.what());
    }
  }

  std::string bounded_number_body(const json& s, bool integer, const std::string& path) {
    const NumberBounds b = read_bounds(s, path);
    if (!b.lo && !b.hi) return use(integer ? "integer" : "number");
    const std::string whole = integer_range_gbnf(b.int_lo(), b.int_hi());
    if (whole.empty() && integer) fail(path, "no integer lies within the bounds");
    if (integer) return whole;
    const std::string frac = fraction_range_gbnf(b);
    if (whole.empty() && frac.empty()) fail(path, "no number lies within the bounds");
    if (frac.empty()) return whole;
    return whole.empty() ? frac : whole + " | " + frac;
  }

  static double bound(const json& s, const char* key, const std::string& path) {
    if (!s[key].is_number()) fail(path + "/" + key, "must be a number");
    return s[key].get<double>();
  }

  NumberBounds read_bounds(const json& s, const std::string& path) const {
    NumberBounds b;
    if (s.contains("minimum")) b.lo = bound(s, "minimum", path);
    if (s.contains("maximum")) b.hi = bound(s, "maximum", path);
    if (s.contains("exclusiveMinimum")) {
      const double v = bound(s, "exclusiveMinimum", path);
      if (!b.lo || v >= *b.lo) { b.lo = v; b.lo_exclusive = true; }
    }
    if (s.contains("exclusiveMaximum")) {
      const double v = bound(s, "exclusiveMaximum", path);
      if (!b.hi || v <= *b.hi) { b.hi = v; b.hi_exclusive = true; }
    }
    return b;
  }

  std::string string_body(const json& s, const std::string& path) {
    const bool has_len = s.contains("minLength") || s.contains("maxLength");
    const int n_shapes = int{has_len} + int{s.contains("pattern")} + int{s.contains("format")};
    if (n_shapes > 1) fail(path, "combine at most one of minLength/maxLength, pattern and format");
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) fail(path + "/pattern", "must be a string");
      use("char");
      return "\"\\\"\" " + regex_to_gbnf(s["pattern"].get<std::string>(), path + "/pattern") + " \"\\\"\"";
    }
    if (s.contains("format")) {
      if (!s["format"].is_string()) fail(path + "/format", "must be a string");
      const std::string f = string_format_gbnf(s["format"].get<std::string>());
      if (f.empty()) fail(path + "/format", "unsupported format '" + s["format"].get<std::string>() + "' (date, time, date-time, uuid, email are)");
      return "\"\\\"\" " + f + " \"\\\"\"";
    }
    if (!has_len) return use("string");
    const uint64_t min = count(s, "minLength", path, 0);
    const uint64_t max = count(s, "maxLength", path, UINT64_MAX);
    if (max < min) fail(path, "maxLength is below minLength");
    use("char");
    return "\"\\\"\" char" + repetition(min, max, path) + " \"\\\"\"";
  }

  static uint64_t count(const json& s, const char* key, const std::string& path, uint64_t absent) {
    if (!s.contains(key)) return absent;
    if (!s[key].is_number_unsigned() && !(s[key].is_number_integer() && s[key].get<int64_t>() >= 0))
      fail(path + "/" + key, "must be a whole number >= 0");
    return s[key].get<uint64_t>();
  }

  // "{m,n}" (or "{m,}" when max is UINT64_MAX), within the grammar's repetition limit.
  static std::string repetition(uint64_t min, uint64_t max, const std::string& path) {
    constexpr uint64_t kLimit = 10000;
    if (min > kLimit || (max != UINT64_MAX && max > kLimit)) fail(path, "lengths and item counts above 10000 are not supported");
    std::string out = "{";
    out += std::to_string(min) + ",";
    if (max != UINT64_MAX) out += std::to_string(max);
    return out + "}";
  }

  std::string array_body(const json& s, const std::string& path, const std::string& name) {
    if (s.contains("items") && !s["items"].is_object() && !s["items"].is_boolean())
      fail(path + "/items", "must be a schema (tuple forms are not supported)");
    const std::string item = s.contains("items") ? visit(s["items"], path + "/items", name + "-item") : use("value");
    const uint64_t min = count(s, "minItems", path, 0);
    const uint64_t max = count(s, "maxItems", path, UINT64_MAX);
    if (max < min) fail(path, "maxItems is below minItems");
    use("ws");
    if (max == 0) return "\"[\" ws \"]\"";
    const std::string more = "( \",\" ws " + item + " ws )" +
                             repetition(min > 0 ? min - 1 : 0, max == UINT64_MAX ? max : max - 1, path);
    const std::string items = item + " ws " + more;
    return "\"[\" ws " + (min == 0 ? "( " + items + " )?" : items) + " \"]\"";
  }

  std::string object_body(const json& s, const std::string& path, const std::string& name) {
    const json empty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : empty;
    if (!props.is_object()) fail(path + "/properties", "must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(path + "/required", "must be an array of names");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) fail(path + "/required", "must be an array of names");
        if (!props.contains(r.get<std::string>()))
          fail(path + "/required", "'" + r.get<std::string>() + "' is not among the properties");
        required.insert(r.get<std::string>());
      }
    }
    std::vector<ObjectMember> members;
    for (const auto& [key, sub] : props.items()) {
      const std::string value = visit(sub, path + "/properties/" + key, name + "-" + key);
      members.push_back({literal(json(key).dump()) + " ws \":\" ws " + value + " ws", required.count(key) > 0});
    }
    std::string extra;
    // Absent additionalProperties: an object with declared properties gets only those (a valid
    // subset); one without any takes any members.
    const bool any_members = !s.contains("additionalProperties") && !s.contains("properties");
    if (any_members || (s.contains("additionalProperties") && s["additionalProperties"] != false)) {
      const json& ap = any_members ? json(true) : s["additionalProperties"];
      const std::string value = visit(ap, path + "/additionalProperties", name + "-extra");
      extra = "string ws \":\" ws " + value + " ws";
      use("string");
    }
    use("ws");
    return "\"{\" ws " + member_chain(members, extra, name) + " \"}\"";
  }

  // Members in schema order, optional ones skippable, commas only between members; extra
  // members (additionalProperties) after the declared ones. first(k): nothing written yet;
  // rest(k): something written, so each member starts with a comma.
  std::string member_chain(const std::vector<ObjectMember>& m, const std::string& extra, const std::string& name) {
    const std::string extras_rest = extra.empty() ? "" : "( \",\" ws " + extra + " )*";
    std::string rest = extras_rest, first = extra.empty() ? "" : "( " + extra + " " + extras_rest + " )?";
    for (size_t k = m.size(); k-- > 0;) {
      const std::string rest_next = rest.empty() ? std::string() : std::string(" ") + rule_for(name + "-rest", rest);
      const std::string first_next = first.empty() ? "" : rule_for(name + "-first", first);
      rest = m[k].required ? "\",\" ws " + m[k].gbnf + rest_next : "( \",\" ws " + m[k].gbnf + " )?" + rest_next;
      first = m[k].gbnf + rest_next;
      if (!m[k].required) first = "( " + first + " )" + (first_next.empty() ? " | \"\"" : " | " + first_next);
    }
    return first.empty() ? "" : rule_for(name + "-members", first);
  }

  std::string rule_for(const std::string& name, const std::string& body) { return add_rule(name, body); }

  std::string regex_to_gbnf(const std::string& pattern, const std::string& path) {
    try {
      return pattern_to_gbnf(pattern);
    } catch (const PatternError& e) {
      fail(path, e.what());
    }
  }
};

}  // namespace

std::string json_schema_to_grammar(const nlohmann::ordered_json& schema) {
  Rules rules;
  SchemaConverter(schema, rules).convert("root");
  return rules_text(rules);
}

std::string json_schemas_to_rules(const std::vector<std::pair<std::string, nlohmann::ordered_json>>& schemas) {
  Rules rules;
  for (const auto& [name, schema] : schemas) {
    if (name.empty() || rules.count(name))
      throw Error("json schema rules: the rule name '" + name + "' is empty or used twice");
    rules[name] = "";  // reserved, so that no generated rule takes the name
    SchemaConverter(schema, rules).convert(name);
  }
  return rules_text(rules);
}

std::string json_schema_to_grammar(const nlohmann::json& schema) {
  return json_schema_to_grammar(nlohmann::ordered_json::parse(schema.dump()));
}

std::string json_object_grammar() {
  return json_schema_to_grammar(json{{"type", "object"}});
}

}  // namespace edgelm
