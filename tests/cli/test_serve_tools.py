"""End-to-end tests of structured output and tool calling in `edgelm serve`, with the official
`openai` client: response_format json_schema (several schemas, and the client's parse() helper
with a pydantic model), json_object, tool calls with tool_choice "required", a named function
and "auto", streamed tool calls reassembled, a follow-up turn with the tool's result, and the
400s for bad requests. Every constrained output is validated with the `jsonschema` package.
SmolLM2 serves most tests; one tool call runs on Gemma 3 (its built-in chat format)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import SOCKET_TIMEOUT, Server, check, check_error_body, run_all  # noqa: E402

import jsonschema  # noqa: E402
import openai  # noqa: E402
import pydantic  # noqa: E402

S = Server("-P", "2", "-c", "1024")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "maxLength": 24},
                                  "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object",
                   "properties": {"a": {"type": "integer", "minimum": -1000, "maximum": 1000},
                                  "b": {"type": "integer", "minimum": -1000, "maximum": 1000}},
                   "required": ["a", "b"]}}}
TOOLS = [WEATHER, ADD]
PARAMS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
WEATHER_Q = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def client(server=None):
    return openai.OpenAI(base_url=(server or S).base + "/v1", api_key="none", timeout=SOCKET_TIMEOUT, max_retries=0)


def validate(instance, schema):
    jsonschema.validate(instance, schema, format_checker=jsonschema.FormatChecker())


def check_calls(message, only=None):
    """The message's tool calls, each a known function whose arguments follow its schema."""
    calls = message.tool_calls
    check(calls, f"no tool calls in {message}")
    check(message.content is None, f"content beside tool calls: {message.content!r}")
    for c in calls:
        check(c.type == "function" and c.id.startswith("call_"), f"bad call {c}")
        check(c.function.name in PARAMS, f"unknown function {c.function.name}")
        if only:
            check(c.function.name == only, f"called {c.function.name}, not {only}")
        validate(json.loads(c.function.arguments), PARAMS[c.function.name])
    check(len({c.id for c in calls}) == len(calls), "call ids repeat")
    return calls


# ---- response_format -----------------------------------------------------------------------------

SCHEMAS = [
    ("person", "Describe a famous scientist as JSON.",
     {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
                                       "born": {"type": "integer", "minimum": 1000, "maximum": 2025},
                                       "field": {"enum": ["physics", "chemistry", "biology", "mathematics"]}},
      "required": ["name", "born", "field"], "additionalProperties": False}),
    ("colors", "List three colors as JSON.",
     {"type": "object", "properties": {"colors": {"type": "array", "minItems": 1, "maxItems": 3,
                                                  "items": {"type": "string", "maxLength": 12}}},
      "required": ["colors"]}),
    ("answer", "Is the sky blue? Answer in JSON.",
     {"type": "object", "properties": {"answer": {"type": "boolean"},
                                       "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                                       "note": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/short"}]}},
      "required": ["answer", "confidence", "note"], "$defs": {"short": {"type": "string", "maxLength": 20}}}),
    ("event", "When is the next meeting? Reply as JSON.",
     {"type": "object", "properties": {"date": {"type": "string", "format": "date"},
                                       "room": {"type": "string", "pattern": "^[A-Z][0-9]{2}$"}},
      "required": ["date", "room"]}),
]


def test_json_schema_replies_validate():
    for name, question, schema in SCHEMAS:
        for temp, seed in ((0, None), (0.8, 7)):
            r = client().chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": question}], max_tokens=80,
                temperature=temp, seed=seed,
                response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}})
            choice = r.choices[0]
            check(choice.finish_reason == "stop", f"{name}: finished with {choice.finish_reason}: {choice.message.content!r}")
            validate(json.loads(choice.message.content), schema)


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=20)
    country: str = pydantic.Field(max_length=20)
    population_millions: int = pydantic.Field(ge=0, le=50)


def test_client_parse_helper_with_pydantic_model():
    # The client turns the model into a strict json_schema response_format and parses the reply.
    r = client().beta.chat.completions.parse(
        model="smollm2", messages=[{"role": "user", "content": "Tell me about Tokyo."}],
        response_format=City, max_tokens=60, temperature=0)
    city = r.choices[0].message.parsed
    check(isinstance(city, City), f"not parsed: {r.choices[0].message}")
    validate(json.loads(r.choices[0].message.content), City.model_json_schema())


def test_json_object_reply():
    r = client().chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe a cat in a JSON object with a name and an age."}],
        max_tokens=60, temperature=0, response_format={"type": "json_object"})
    check(r.choices[0].finish_reason == "stop", f"finish {r.choices[0].finish_reason}: {r.choices[0].message.content!r}")
    check(isinstance(json.loads(r.choices[0].message.content), dict), r.choices[0].message.content)


def test_completions_take_response_format():
    schema = SCHEMAS[0][2]
    r = client().completions.create(
        model="smollm2", prompt="A famous scientist, as JSON:", max_tokens=60, temperature=0,
        extra_body={"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}})
    validate(json.loads(r.choices[0].text), schema)


def test_streamed_json_schema_reply():
    name, question, schema = SCHEMAS[1]
    text = ""
    for chunk in client().chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": question}], max_tokens=60, temperature=0,
            stream=True, response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema}}):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    validate(json.loads(text), schema)


# ---- tool calls ----------------------------------------------------------------------------------

def test_tool_choice_required():
    r = client().chat.completions.create(model="smollm2", messages=WEATHER_Q, tools=TOOLS, tool_choice="required",
                                         max_tokens=80, temperature=0)
    check(r.choices[0].finish_reason == "tool_calls", f"finish {r.choices[0].finish_reason}")
    check(len(check_calls(r.choices[0].message)) == 1, "more than one call without parallel_tool_calls")


def test_tool_choice_named_function():
    r = client().chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is 12 plus 30?"}], tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "add"}}, max_tokens=80, temperature=0.7, seed=3)
    check(r.choices[0].finish_reason == "tool_calls", f"finish {r.choices[0].finish_reason}")
    check_calls(r.choices[0].message, only="add")


def test_parallel_calls_when_asked_for():
    # Two questions; the model may make several calls (up to 8). Every complete one is valid.
    q = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    r = client().chat.completions.create(model="smollm2", messages=q, tools=TOOLS, tool_choice="required",
                                         parallel_tool_calls=True, max_tokens=120, temperature=0)
    m = r.choices[0].message
    if r.choices[0].finish_reason == "length":  # the last call may be cut short
        m.tool_calls = m.tool_calls[:-1]
    else:
        check(r.choices[0].finish_reason == "tool_calls", f"finish {r.choices[0].finish_reason}")
    check(len(check_calls(m)) >= 1, f"{r.choices[0].message.tool_calls}")


def test_tool_choice_auto_is_text_or_valid_calls():
    for question in ("What is the weather like in Paris today?", "Say hello."):
        r = client().chat.completions.create(model="smollm2", messages=[{"role": "user", "content": question}],
                                             tools=TOOLS, max_tokens=60, temperature=0)
        m = r.choices[0].message
        if m.tool_calls:
            check(r.choices[0].finish_reason == "tool_calls", f"finish {r.choices[0].finish_reason}")
            check_calls(m)
        else:
            check(isinstance(m.content, str) and not m.content.startswith("<tool_call>"), f"{m}")


def test_streamed_tool_calls_reassemble_to_the_same_calls():
    args = dict(model="smollm2", messages=WEATHER_Q, tools=TOOLS, tool_choice="required", max_tokens=80, temperature=0)
    whole = client().chat.completions.create(**args).choices[0].message.tool_calls
    calls, finish, first_deltas = {}, None, {}
    for chunk in client().chat.completions.create(stream=True, **args):
        if not chunk.choices:
            continue
        ch = chunk.choices[0]
        check(not ch.delta.content, f"content in a tool-call stream: {ch.delta.content!r}")
        for d in ch.delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            if d.index not in first_deltas:
                first_deltas[d.index] = d
            if d.id:
                c["id"] = d.id
            if d.function and d.function.name:
                c["name"] += d.function.name
            if d.function and d.function.arguments:
                c["arguments"] += d.function.arguments
        finish = ch.finish_reason or finish
    check(finish == "tool_calls", f"stream finished with {finish}")
    for i, d in first_deltas.items():
        check(d.id and d.type == "function" and d.function.name, f"first delta of call {i} lacks id/type/name: {d}")
    got = [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in sorted(calls)]
    want = [(c.function.name, json.loads(c.function.arguments)) for c in whole]
    check(got == want, f"streamed {got} != whole {want}")
    for name, a in got:
        validate(a, PARAMS[name])


def test_tool_result_follow_up_turn():
    first = client().chat.completions.create(model="smollm2", messages=WEATHER_Q, tools=TOOLS,
                                             tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                             max_tokens=80, temperature=0)
    m = first.choices[0].message
    calls = check_calls(m, only="get_weather")
    history = WEATHER_Q + [m.model_dump(exclude_none=True)] + [
        {"role": "tool", "tool_call_id": c.id, "content": json.dumps({"temperature": 21, "sky": "clear"})}
        for c in calls]
    # The model answers from the result (tool_choice "none": text only) ...
    r = client().chat.completions.create(model="smollm2", messages=history, tools=TOOLS, tool_choice="none",
                                         max_tokens=30, temperature=0)
    check(isinstance(r.choices[0].message.content, str) and r.choices[0].message.content.strip(),
          f"empty follow-up: {r.choices[0].message}")
    check(not r.choices[0].message.tool_calls, "tool calls with tool_choice none")
    # ... and with "auto" the reply is text or valid calls; the result is in the prompt either way.
    r2 = client().chat.completions.create(model="smollm2", messages=history, tools=TOOLS, max_tokens=40, temperature=0)
    if r2.choices[0].message.tool_calls:
        check_calls(r2.choices[0].message)
    check(r2.usage.prompt_tokens > first.usage.prompt_tokens + 20, f"{r2.usage} vs {first.usage}")


def test_gemma3_tool_call():
    with Server("-m", "gemma3", "-c", "1024") as g:
        name = client(g).models.list().data[0].id
        r = client(g).chat.completions.create(model=name, messages=WEATHER_Q, tools=TOOLS,
                                              tool_choice="required", max_tokens=80, temperature=0)
        check(r.choices[0].finish_reason == "tool_calls", f"finish {r.choices[0].finish_reason}")
        check_calls(r.choices[0].message)


# ---- bad requests --------------------------------------------------------------------------------

def post(body):
    base = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    base.update(body)
    return S.request("POST", "/v1/chat/completions", base)


def test_bad_requests_are_400_with_a_clear_message():
    status, _, data = post({"response_format": {"type": "json_schema", "json_schema": {
        "name": "t", "schema": {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}}}})
    err = check_error_body(status, data, 400, "response_format.json_schema.schema")
    check("uniqueItems" in err["message"] and "/properties/tags" in err["message"], err["message"])

    status, _, data = post({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    err = check_error_body(status, data, 400, "tool_choice")
    check("'get_time'" in err["message"], err["message"])

    status, _, data = post({"tools": [{"type": "function", "function": {"description": "no name"}}]})
    check_error_body(status, data, 400, "tools[0].function.name")
    status, _, data = post({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]})
    check_error_body(status, data, 400, "tools[0].function.parameters")
    status, _, data = post({"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": {"allOf": []}}}}}]})
    err = check_error_body(status, data, 400, "tools[0].function.parameters")
    check("allOf" in err["message"], err["message"])
    status, _, data = post({"tools": {"name": "f"}})
    check_error_body(status, data, 400, "tools")
    status, _, data = post({"tool_choice": "required"})
    check_error_body(status, data, 400, "tool_choice")
    status, _, data = post({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "1"}]})
    check_error_body(status, data, 400, "messages[0].tool_call_id")

    # The client raises BadRequestError with the server's message.
    try:
        client().chat.completions.create(model="smollm2", messages=WEATHER_Q, tools=TOOLS,
                                         tool_choice={"type": "function", "function": {"name": "nope"}})
        check(False, "accepted an unknown function")
    except openai.BadRequestError as e:
        check("'nope'" in str(e), str(e))


def main():
    with S:
        run_all({k: v for k, v in globals().items() if k.startswith("test_")})


if __name__ == "__main__":
    main()
