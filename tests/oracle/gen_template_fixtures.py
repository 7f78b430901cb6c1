#!/usr/bin/env python3
"""Generate chat-template fixtures from Python jinja2 for edgelm's template interpreter tests.

    pip install jinja2            # the oracle; 3.1.x
    python3 tests/oracle/gen_template_fixtures.py   # writes tests/fixtures/templates/*.json

Renders in the environment transformers' apply_chat_template builds (see
transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, `tojson` replaced by json.dumps(ensure_ascii=False, ...), and the globals
raise_exception (raises TemplateError) and strftime_now (here pinned to 2025-01-15 10:00:00 so
that outputs are reproducible; the C++ test passes the same time). Like transformers, `tools`
and `documents` are always passed (None when absent).

Inputs: every tests/fixtures/templates/*.jinja (real model templates, see the README there).

Outputs (committed, so the default test run needs neither Python nor jinja2):
  expected.json   every template x every conversation x add_generation_prompt on/off: the
                  rendered prompt, or the error jinja2 raised (error type and message).
  language.json   small templates exercising one language feature each, with jinja2's output
                  or error; the C++ unit tests run them all.
"""
import datetime
import json
import sys
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "tests/fixtures/templates"
NOW = datetime.datetime(2025, 1, 15, 10, 0, 0)


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker as it behaves when not tracking assistant tokens:
    `{% generation %}...{% endgeneration %}` renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def make_env() -> jinja2.Environment:
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, messages, add_generation_prompt, bos, eos, tools=None, extra=None):
    """Returns {"expected": text} or {"error": {"type": ..., "message": ...}}."""
    try:
        template = env.from_string(source)
        kwargs = dict(messages=messages, tools=tools, documents=None,
                      add_generation_prompt=add_generation_prompt,
                      bos_token=bos, eos_token=eos)
        kwargs.update(extra or {})
        return {"expected": template.render(**kwargs)}
    except Exception as e:  # noqa: BLE001 - every jinja2 failure is a fixture
        return {"error": {"type": type(e).__name__, "message": str(e)}}


# --- conversations -------------------------------------------------------------------------

def msg(role, content):
    return {"role": role, "content": content}


SPECIAL = ("Quotes ' and \" and a backslash \\ and tab\tand a {{ jinja }} {% lookalike %} "
           "<|im_end|> [INST] <start_of_turn>\nsecond line\n\n  indented  \n"
           "unicode: héllo wörld — 中文 русский 🙂 ✓")

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}]

TOOL_CONVERSATION = [
    msg("system", "You are a helpful assistant with tools."),
    msg("user", "What's the weather in Zürich?"),
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
     "content": "{\"temperature\": 21.5, \"sky\": \"sunny\"}"},
    msg("assistant", "It is 21.5 °C and sunny in Zürich."),
    msg("user", "Thanks!"),
]

CONVERSATIONS = {
    "single_user": [msg("user", "Hello!")],
    "system_user": [msg("system", "You are a concise assistant."), msg("user", "What is 2+2?")],
    "multi_turn": [
        msg("user", "Hi there"),
        msg("assistant", "Hello! How can I help?"),
        msg("user", "Tell me a joke."),
        msg("assistant", "Why did the chicken cross the road? To get to the other side."),
        msg("user", "Another one, please."),
    ],
    "system_multi_turn": [
        msg("system", "  You answer in French.  "),
        msg("user", "Good morning"),
        msg("assistant", "  Bonjour !  "),
        msg("user", "How are you?"),
    ],
    "assistant_last": [msg("user", "Say hi"), msg("assistant", "Hi!")],
    "special_characters": [
        msg("system", SPECIAL),
        msg("user", SPECIAL),
        msg("assistant", SPECIAL),
        msg("user", "   leading and trailing spaces   "),
    ],
    "empty_content": [msg("user", ""), msg("assistant", ""), msg("user", "ok")],
    "system_only": [msg("system", "Only a system prompt.")],
    "no_messages": [],
    "roles_not_alternating": [msg("user", "one"), msg("user", "two")],
    "unknown_role": [msg("user", "hi"), msg("narrator", "Meanwhile...")],
    "tool_use": TOOL_CONVERSATION,
    "content_parts": [
        {"role": "system", "content": [{"type": "text", "text": "You see images."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  What is this?  "}]},
    ],
    "reasoning": [
        msg("user", "What is 17*3?"),
        msg("assistant", "<think>\n17*3 = 51\n</think>\n\n51"),
        msg("user", "And 17*4?"),
    ],
}

# Conversations that only make sense for some templates (others would just test the same
# error path again and again).
ONLY_FOR = {
    "tool_use": {"qwen2_5", "qwen3", "llama3_1", "llama3_2", "mistral_v0_3"},
    "content_parts": {"gemma3"},
    "reasoning": {"qwen3", "smollm2", "qwen2_5"},
}

SPECIAL_TOKENS = {
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "gemma2": ("<bos>", "<eos>"),
    "gemma3": ("<bos>", "<eos>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3_1": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3_2": ("<|begin_of_text|>", "<|eot_id|>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "phi3_5": ("<s>", "<|endoftext|>"),
    "mistral_v0_3": ("<s>", "</s>"),
    "qwen2_5": ("", "<|im_end|>"),
    "qwen3": ("", "<|im_end|>"),
}

EXTRA = {
    "qwen3": [{}, {"enable_thinking": False}],
}


def template_cases(env):
    cases = []
    for path in sorted(TEMPLATE_DIR.glob("*.jinja")):
        name = path.stem
        source = path.read_text(encoding="utf-8")
        bos, eos = SPECIAL_TOKENS.get(name, ("<s>", "</s>"))
        for conv_name, messages in CONVERSATIONS.items():
            if conv_name in ONLY_FOR and name not in ONLY_FOR[conv_name]:
                continue
            tools = TOOLS if conv_name == "tool_use" else None
            for extra in EXTRA.get(name, [{}]):
                for agp in (False, True):
                    case = {
                        "template": name,
                        "conversation": conv_name,
                        "add_generation_prompt": agp,
                        "bos_token": bos,
                        "eos_token": eos,
                        "messages": messages,
                        "tools": tools,
                        "extra_context": extra,
                    }
                    case.update(render(env, source, messages, agp, bos, eos, tools, extra))
                    cases.append(case)
    return cases


# --- language features ---------------------------------------------------------------------

LANGUAGE_CONTEXT = {
    "messages": [msg("system", "sys"), msg("user", "hi"), msg("assistant", " yo "),
                 {"role": "user", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}],
    "d": {"b": 1, "a": [1, 2, {"x": None}], "t": "text"},
    "s": "Hello World",
    "u": "héllo wörld ß 中文 🙂",
    "n": 3,
    "f": 2.5,
    "neg": -7,
    "flag": True,
    "empty": [],
    "items": [{"name": "b", "age": 30}, {"name": "A", "age": 25}, {"name": "c", "age": 30}],
    "nested": {"level1": {"level2": {"level3": "deep"}}},
}

# (name, template). Each renders with LANGUAGE_CONTEXT (plus tools=None, documents=None,
# add_generation_prompt=True, bos_token="<s>", eos_token="</s>").
LANGUAGE = [
    # output, literals, whitespace control
    ("text_only", "plain text, no tags"),
    ("print_literals", "{{ 'single' }} {{ \"double\" }} {{ 42 }} {{ -3 }} {{ 1.5 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1e3 }} {{ 2.5e-3 }}"),
    ("print_constants", "{{ true }} {{ false }} {{ True }} {{ None }} {{ none }} {{ [] }} {{ {} }} {{ () }}"),
    ("string_escapes", r"{{ 'a\nb\tc\\d\'e\"f\x41\u00e9\U0001F642\101\d' }}|{{ 'adjacent' 'strings' }}"),
    ("string_escape_before_non_ascii", "{{ 'x\\é' }}"),
    ("containers_repr", "{{ [1, 'a', none, true, 1.0, [2], {'k': 'v'}] }} {{ ('a',) }} {{ (1, 2) }} {{ {'a': \"it's\", 'b': 'q\"'} }}"),
    ("float_repr", "{{ 0.1 + 0.2 }} {{ 1/3 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1e300 * 1e10 }} {{ -0.0 }} {{ 100.0 }} {{ 123456789.125 }}"),
    ("trim_blocks", "{% if true %}\nA\n{% endif %}\nB\n{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\nC"),
    ("lstrip_blocks", "  {% if true %}\n    x\n  {% endif %}\n\t{# comment #}\nend"),
    ("minus_modifiers", "a   {%- if true -%}   b   {%- endif -%}   c {{- ' d ' -}} e\n\n{{- 'f' }}"),
    ("plus_modifiers", "  {%+ if true +%}\nkept\n  {%+ endif %}\nx"),
    ("variable_tags_not_lstripped", "  {{ 'v' }}\n  {{- 'w' }}"),
    ("comments", "a{# one #}b\n  {# two #}\nc{#- three -#}  d"),
    ("raw_block", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}|  {% raw -%}  x  {%- endraw %}"),
    ("trailing_newline_dropped", "line\n"),
    ("crlf_newlines", "a\r\nb\rc{% if true %}\r\nd{% endif %}"),
    # variables, attributes, items
    ("undefined_prints_empty", "[{{ missing }}][{{ missing|default('dflt') }}][{{ d.nope }}][{{ messages[10] }}]"),
    ("attribute_vs_item", "{{ d.b }} {{ d['b'] }} {{ d.a.2.x }} {{ d['a'][2]['x'] }} {{ nested.level1.level2.level3 }} {{ messages[1].role }}"),
    ("negative_index_and_slices", "{{ messages[-1].role }} {{ messages[1:3]|map(attribute='role')|list }} {{ s[::-1] }} {{ s[2:5] }} {{ s[-5:] }} {{ [1,2,3,4,5][::2] }} {{ [1,2,3][5:] }} {{ u[1:4] }}"),
    ("undefined_attribute_of_undefined", "{{ missing.attr }}"),
    ("undefined_item_of_undefined", "{{ missing['x'] }}"),
    ("none_attribute", "{{ messages[3].content.foo is defined }}|{{ messages[3].content.foo }}"),
    ("dict_methods", "{{ d.keys()|list }} {{ d.values()|list|length }} {{ d.items()|list }} {{ d.get('b') }} {{ d.get('zz', 'def') }} {{ d.get('zz') }} {{ d.items() }}"),
    ("method_name_key", "{{ {'items': 1}['items'] }} {{ {'items': 1}.items() }}"),
    ("unsafe_method_is_undefined", "{{ d.pop is defined }} {{ empty.append is defined }}"),
    ("unsafe_method_call_fails", "{{ empty.append(1) }}"),
    # operators
    ("arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"),
    ("precedence", "{{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 1 ~ 2 + 3 ~ 4 }} {{ 'a' ~ 2 * 3 }} {{ -1|abs }} {{ not true or true }} {{ not (true or true) }}"),
    ("concat_binds_tighter_than_plus", "{{ 'a' ~ 1 + 2 }}"),
    ("string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'ab' ~ 5 ~ none ~ true }} {{ [1] + [2] }} {{ (1,) + (2,) }} {{ [0] * 3 }} {{ 'x' * -1 }}|"),
    ("percent_format", "{{ '%s and %s' % ('a', 'b') }} {{ '%d%%' % 50 }} {{ '%05.2f|%-4s|%r' % (3.14159, 'x', 'q') }} {{ '%(k)s' % {'k': 'v'} }}"),
    ("bool_arith", "{{ true + 1 }} {{ true * 2.5 }} {{ false - 1 }}"),
    ("comparisons", "{{ 1 == 1.0 }} {{ true == 1 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ none == none }} {{ missing == none }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ 2 <= 2 >= 1 }}"),
    ("comparison_type_error", "{{ 1 < 'a' }}"),
    ("membership", "{{ 'ell' in s }} {{ 'x' not in s }} {{ 1 in [1, 2] }} {{ 'b' in d }} {{ 'zz' in d }} {{ 3 in (1, 2) }} {{ 'a' in missing }}"),
    ("membership_type_error", "{{ 1 in 'abc' }}"),
    ("logic_returns_operands", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or [] }} {{ not empty }} {{ missing or 'fallback' }}"),
    ("conditional_expression", "{{ 'big' if n > 2 else 'small' }} {{ 'yes' if flag }} [{{ 'no' if not flag }}] {{ 'a' if false else 'b' if false else 'c' }}"),
    ("add_undefined_fails", "{{ missing + 1 }}"),
    ("add_mismatched_types_fails", "{{ 'a' + 1 }}"),
    ("division_by_zero_fails", "{{ 1 / 0 }}"),
    ("negate_string_fails", "{{ -s }}"),
    # statements
    ("if_elif_else", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}many{% endif %},{% endfor %}"),
    ("for_loop_variables", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
    ("for_previtem_nextitem_cycle", "{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }} {{ loop.cycle('odd', 'even') }} {{ loop.depth }}{{ loop.depth0 }};{% endfor %}"),
    ("for_changed", "{% for x in [1, 1, 2, 2, 1] %}{{ loop.changed(x) }} {% endfor %}"),
    ("for_else", "{% for x in empty %}item{% else %}no items{% endfor %}|{% for x in missing %}item{% else %}undefined iterates empty{% endfor %}"),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}"),
    ("for_unpacking", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}{% for (a, b) in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}"),
    ("for_over_dict_and_string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in u %}[{{ c }}]{% endfor %}"),
    ("nested_loops", "{% for i in [1, 2] %}{% for j in [3, 4] %}{{ loop.index }}{{ i }}{{ j }},{% endfor %}{{ loop.index }};{% endfor %}"),
    ("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
    ("loop_scope_per_iteration", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}|{% for i in [1] %}{{ q }}{% set q = 5 %}{{ q }}{% endfor %}[{{ q }}]"),
    ("if_does_not_scope", "{% if true %}{% set a = 1 %}{% endif %}{{ a }}{% for i in [1] %}{% if true %}{% set b = 2 %}{% endif %}{{ b }}{% endfor %}[{{ b }}]"),
    ("loop_variable_does_not_leak", "{% for i in [1, 2] %}{% endfor %}[{{ i }}]"),
    ("set_tuple_unpacking", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d2 = 'xy' %}{{ c }}{{ d2 }}"),
    ("set_unpacking_wrong_count", "{% set a, b = [1, 2, 3] %}"),
    ("set_block", "{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}shout{% endset %}{{ y }}"),
    ("override_context_variable", "{% set messages = messages[1:] %}{{ messages|length }}{% if true %}{% set s = 'changed' %}{% endif %}{{ s }}"),
    ("namespace", "{% set ns = namespace(count=0, found=false, items=[]) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns.items }} {{ ns.missing is defined }} {{ ns }}"),
    ("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}"),
    ("namespace_assign_non_namespace_fails", "{% set x = 1 %}{% set x.y = 2 %}"),
    ("macro", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }} [{{ greet() }}]"),
    ("macro_varargs_kwargs", "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, x=4) }}"),
    ("macro_too_many_args_fails", "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}"),
    ("macro_sees_caller_scope", "{% macro m() %}{{ z }}{% endmacro %}{% set z = 3 %}{{ m() }}{% set z = 4 %}{{ m() }}{% for i in [1, 2] %}{% macro n() %}{{ i }}{% endmacro %}{{ n() }}{% endfor %}"),
    ("macro_recursion", "{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * (fact(k - 1)|int) }}{% endif %}{% endmacro %}{{ fact(6) }}"),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = a %}{{ a }}{{ b }}{% endwith %}{{ a }}"),
    ("filter_block", "{% filter upper %}shout {{ s }}{% endfilter %}|{% filter replace('a', 'o')|trim %}  banana  {% endfilter %}"),
    ("generation_block", "{% for m in messages %}{% generation %}[{{ m.role }}]{% endgeneration %}{% endfor %}"),
    ("print_statement", "{% print 'x', 1 + 1 %}"),
    # filters
    ("filter_trim", "[{{ '  x  '|trim }}][{{ 'xxhixx'|trim('x') }}][{{ ' \u3000wide\u00a0 '|trim }}][{{ missing|trim }}]"),
    ("filter_case", "{{ s|upper }} {{ s|lower }} {{ 'hELLO wORLD'|capitalize }} {{ \"they're bill's\"|title }} {{ 'a-b c(d[e{f<g'|title }} {{ u|upper }} {{ 'ÀÉÎ'|lower }}"),
    ("filter_length_count", "{{ s|length }} {{ u|length }} {{ messages|length }} {{ d|count }} {{ missing|length }} {{ ''|length }}"),
    ("filter_length_of_generator_fails", "{{ messages|selectattr('role', 'equalto', 'user')|length }}"),
    ("filter_default", "{{ missing|default('a') }} {{ none|default('b') }} {{ ''|default('c') }} {{ ''|default('d', true) }} {{ 0|d('e', boolean=true) }} {{ s|default('f') }}"),
    ("filter_join", "{{ ['a', 'b', 'c']|join }} {{ ['a', 'b']|join(', ') }} {{ [1, none, true]|join('-') }} {{ items|join(', ', attribute='name') }} {{ 'xyz'|join('.') }}"),
    ("filter_first_last", "{{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} [{{ []|first }}] {{ 'abc'|first }} {{ 'abc'|last }} {{ d|first }} {{ d|last }} [{{ missing|last }}]"),
    ("filter_last_of_generator_fails", "{{ [1, 2]|select|last }}"),
    ("filter_list_items", "{{ 'abc'|list }} {{ d|list }} {{ d|items|list }} {{ (1, 2)|list }} {{ missing|items|list }}"),
    ("filter_items_of_list_fails", "{{ [1]|items|list }}"),
    ("filter_replace", "{{ s|replace('l', 'L') }} {{ s|replace('l', 'L', 2) }} {{ 'abc'|replace('', '-') }} {{ 5|replace('5', 'five') }}"),
    ("filter_selectattr_rejectattr", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ messages|rejectattr('role', 'in', ['user', 'system'])|list|length }} {{ items|selectattr('age', '>', 26)|map(attribute='name')|join }} {{ messages|selectattr('tool_calls', 'defined')|list|length }} {{ messages|selectattr('content')|list|length }}"),
    ("filter_select_reject", "{{ range(10)|select('odd')|list }} {{ range(10)|reject('divisibleby', 3)|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ [1, 2, 3]|select('>', 1)|list }}"),
    ("filter_map", "{{ ['a', 'B']|map('upper')|list }} {{ items|map(attribute='age')|sum }} {{ [[1, 2], [3]]|map('length')|list }} {{ items|map(attribute='missing', default='x')|list }} {{ ['a b', 'c']|map('replace', ' ', '_')|list }} {{ messages[3:]|map(attribute='tool_calls.0.function.name')|list }}"),
    ("generators_are_truthy_and_one_shot", "{% set g = [1, 2, 3]|select('odd') %}{% if []|select %}T{% endif %}{{ g|list }}{{ g|list }}|{% set h = 'ab'|map('upper') %}{{ h|first }}{{ h|list }}"),
    ("filter_sort", "{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ items|sort(attribute='age')|map(attribute='name')|join }} {{ items|sort(attribute='age,name')|map(attribute='name')|join }} {{ items|sort(attribute='age', reverse=true)|map(attribute='name')|join }}"),
    ("filter_dictsort", "{{ {'b': 1, 'A': 3, 'c': 2}|dictsort }} {{ {'b': 1, 'A': 3, 'c': 2}|dictsort(true) }} {{ {'b': 1, 'a': 3}|dictsort(by='value') }} {{ {'b': 1, 'a': 3}|dictsort(reverse=true) }}"),
    ("filter_unique_min_max_sum", "{{ [1, 2, 1, 3, 2]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} {{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['B', 'a', 'c']|max }} {{ items|max(attribute='age') }} {{ [1.5, 2]|sum }} {{ [[1], [2]]|sum(start=[]) }} [{{ []|max }}]"),
    ("filter_reverse", "{{ 'abc'|reverse }} {{ [1, 2, 3]|reverse|list }} {{ d|reverse|list }}"),
    ("filter_int_float", "{{ '42'|int }} {{ '42.7'|int }} {{ ' 7 '|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ 3.99|int }} {{ -3.99|int }} {{ '0x1A'|int(0, 16) }} {{ '1_000'|int }} {{ true|int }} {{ none|int }} {{ '1e3'|int }} {{ '3.5'|float }} {{ 'inf'|float }} {{ 'x'|float }} {{ 2|float }} {{ 'nan'|float }}"),
    ("filter_int_of_undefined_fails", "{{ missing|int }}"),
    ("filter_round", "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 7|round }} {{ 2.5|round(0, 'floor') }} {{ 2.1|round(0, 'ceil') }} {{ -2.5|round }} {{ 1234.5|round(-2) }} {{ 1250|round(-2) }} {{ 0.125|round(2) }}"),
    ("filter_abs_string_safe", "{{ -3|abs }} {{ -2.5|abs }} {{ 5|string ~ 'x' }} {{ none|string }} {{ [1]|string }} {{ '<b>'|safe }} {{ '<a href=\"x\">&\\'</a>'|e }} {{ missing|string }}|"),
    ("filter_indent", "{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent('> ') }}|{{ 'x\r\ny\u2028z'|indent(1) }}"),
    ("filter_tojson", "{{ d|tojson }} {{ s|tojson }} {{ u|tojson }} {{ u|tojson(ensure_ascii=true) }} {{ [1.0, 2.5, none, true, false]|tojson }} {{ 'q\"\\\\\\n\\t\u0001'|tojson }}"),
    ("filter_tojson_options", "{{ d|tojson(indent=2) }}|{{ d|tojson(indent=0) }}|{{ {'b': [], 'a': {}}|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(indent='\\t') }}|{{ {1: 'a', true: 'b'}|tojson }}"),
    ("filter_tojson_undefined_fails", "{{ missing|tojson }}"),
    ("filter_format_center_wordcount_truncate", "{{ '%s-%s'|format('a', 'b') }} [{{ 'ab'|center(6) }}] {{ 'one two  three'|wordcount }} {{ 'hello brave new world'|truncate(12) }} {{ 'hello brave new world'|truncate(12, true) }} {{ 'short'|truncate(3, end='') }}"),
    ("filter_batch_attr", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 0)|list }} {{ d|attr('b') is defined }} {{ d|attr('items') is defined }}"),
    ("unknown_filter_fails_to_parse", "{{ s|nosuchfilter }}"),
    ("unknown_filter_inside_if_fails_when_run", "{% if true %}{{ s|nosuchfilter }}{% endif %}"),
    ("unknown_filter_inside_if_not_run", "{% if false %}{{ s|nosuchfilter }}{% endif %}ok"),
    ("unknown_filter_in_loop_in_if_fails_to_parse", "{% if false %}{% for x in [] %}{{ x|nosuchfilter }}{% endfor %}{% endif %}"),
    # tests
    ("tests_types", "{{ s is string }} {{ n is number }} {{ f is number }} {{ flag is number }} {{ n is integer }} {{ flag is integer }} {{ f is float }} {{ d is mapping }} {{ messages is mapping }} {{ none is none }} {{ flag is boolean }} {{ flag is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }}"),
    ("tests_iterable_sequence", "{{ s is iterable }} {{ messages is iterable }} {{ d is iterable }} {{ n is iterable }} {{ missing is iterable }} {{ s is sequence }} {{ d is sequence }} {{ d.keys() is sequence }} {{ (1,) is sequence }} {{ messages|select is sequence }} {{ missing is sequence }}"),
    ("tests_defined", "{{ s is defined }} {{ missing is defined }} {{ missing is undefined }} {{ d.nope is defined }} {{ messages[9] is defined }} {{ d.b is not none }} {{ none is not defined }}"),
    ("tests_numbers", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 3.0 is odd }}"),
    ("tests_comparison", "{{ 'a' is eq 'a' }} {{ 1 is equalto 1 }} {{ 1 is ne 2 }} {{ 3 is gt 2 }} {{ 3 is greaterthan 4 }} {{ 1 is lt 2 }} {{ 1 is lessthan 0 }} {{ 2 is ge 2 }} {{ 2 is le 1 }} {{ 2 is in [1, 2] }} {{ 'x' is in 'xyz' }}"),
    ("tests_misc", "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'Abc' is lower }} {{ range is callable }} {{ s.upper is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }} {{ none is sameas none }} {{ d is sameas d }} {{ '<'|e is escaped }}"),
    ("unknown_test_fails_to_parse", "{{ s is nosuchtest }}"),
    # string methods
    ("str_methods_case", "{{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }} {{ u.upper() }}"),
    ("str_methods_strip", "[{{ '  a  '.strip() }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\na\\n'.rstrip('\\n') }}][{{ 'abcba'.strip('ab') }}]"),
    ("str_methods_split", "{{ s.split() }} {{ '  a  b  '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a b c  '.split(none, 1) }} {{ '  a b c  '.rsplit(none, 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ ''.split(',') }} {{ ''.split() }}"),
    ("str_methods_search", "{{ s.startswith('Hell') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith('World') }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('z') }} {{ s.count('l') }} {{ s.index('W') }} {{ u.find('ö') }} {{ s.startswith('World', 6) }}"),
    ("str_methods_transform", "{{ s.replace('o', '0') }} {{ s.replace('o', '0', 1) }} {{ '-'.join(['a', 'b']) }} {{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4, '.') }}|{{ 'ab'.rjust(4) }} {{ '42'.zfill(5) }} {{ '-42'.zfill(5) }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'x.txt'.removesuffix('.txt') }}"),
    ("str_methods_predicates", "{{ '123'.isdigit() }} {{ '12a'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'ab1'.isalnum() }} {{ '  '.isspace() }} {{ ''.isspace() }} {{ 'abc'.islower() }} {{ 'ABC'.isupper() }} {{ 'abc'.isascii() }}"),
    ("str_format_method", "{{ '{} and {}'.format('a', 'b') }} {{ '{0}{1}{0}'.format('x', 'y') }} {{ '{name}!'.format(name='hi') }} {{ '{{literal}}'.format() }} {{ '{:>5}|{:<3}|{:^5}'.format('a', 'b', 'c') }} {{ '{:.2f}'.format(3.14159) }} {{ '{!r}'.format('q') }}"),
    ("str_methods_on_undefined_fail", "{{ missing.strip() }}"),
    ("str_join_type_error", "{{ '-'.join([1, 2]) }}"),
    # globals
    ("range_global", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }} {{ range(3) }} {{ range(3)|length }}"),
    ("range_too_big_fails", "{{ range(1000000)|length }}"),
    ("dict_global", "{{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }} {{ dict() }}"),
    ("joiner_global", "{% set j = joiner(' | ') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}"),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S') }} {{ strftime_now('%A %B %j') }}"),
    ("raise_exception", "{% if messages|length > 1 %}{{ raise_exception('Too many messages: ' ~ messages|length) }}{% endif %}"),
    ("raise_exception_not_reached", "{% if false %}{{ raise_exception('never') }}{% endif %}fine"),
    ("context_variables", "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools }}|{{ documents }}|{{ tools is none }}|{{ tools is defined }}"),
    ("call_non_callable_fails", "{{ s() }}"),
    ("call_undefined_fails", "{{ missing() }}"),
    # syntax errors
    ("syntax_unterminated_tag", "{% if true %}unterminated"),
    ("syntax_unclosed_expression", "{{ 'open"),
    ("syntax_unclosed_print", "{{ s "),
    ("syntax_unknown_tag", "{% frobnicate %}"),
    ("syntax_bad_expression", "{{ 1 + }}"),
    ("syntax_unbalanced_bracket", "{{ [1, 2 }}"),
    ("syntax_endfor_without_for", "{% endfor %}"),
    ("syntax_missing_endif", "{% if true %}{% for x in [] %}{% endfor %}"),
    ("syntax_unterminated_comment", "text {# never closed"),
    ("syntax_break_outside_loop", "{% break %}"),
    ("syntax_assign_to_literal", "{% set 1 = 2 %}"),
]


def language_cases(env):
    cases = []
    for name, source in LANGUAGE:
        case = {"name": name, "template": source}
        case.update(render(env, source, LANGUAGE_CONTEXT["messages"], True, "<s>", "</s>", None,
                           {k: v for k, v in LANGUAGE_CONTEXT.items() if k != "messages"}))
        cases.append(case)
    return cases


def main() -> int:
    env = make_env()
    header = {
        "generator": "tests/oracle/gen_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "environment": "ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), "
                       "loopcontrols, HF tojson/raise_exception/strftime_now",
        "now": NOW.isoformat(),
    }
    cases = template_cases(env)
    (TEMPLATE_DIR / "expected.json").write_text(
        json.dumps({**header, "cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    lang = language_cases(env)
    (TEMPLATE_DIR / "language.json").write_text(
        json.dumps({**header, "context": LANGUAGE_CONTEXT, "cases": lang}, ensure_ascii=False,
                   indent=1) + "\n", encoding="utf-8")
    errors = sum(1 for c in cases if "error" in c)
    print(f"expected.json: {len(cases)} renders ({errors} record an error); "
          f"language.json: {len(lang)} cases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
