#!/usr/bin/env python3
"""Grammar-constrained generation end to end: `edgelm run --json-schema` on schema x prompt pairs
(SmolLM2 greedy and sampled, Gemma 3 on a subset), every output checked by the `jsonschema`
package (formats too); `edgelm chat` with a schema; --grammar-file and --json; bad files."""
import json
import os
import tempfile

import jsonschema

from harness import SRC, check, edgelm, run_all

N_PREDICT = "160"  # above the longest text any schema below allows, token by token or not

# (schema, two requests); every string, array and number is bounded, so each text can finish.
CASES = [
    ({"type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
                                       "age": {"type": "integer", "minimum": 0, "maximum": 120}},
      "required": ["name", "age"]},
     ["Describe a person with a name and an age.", "Invent a character: name and age."]),
    ({"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]},
     ["Is water wet?", "Is the moon made of cheese?"]),
    ({"enum": ["red", "green", "blue"]}, ["What color is the sky?", "Pick a color for grass."]),
    ({"type": "integer", "minimum": 1, "maximum": 10}, ["How many legs does a spider have?", "Rate pizza from 1 to 10."]),
    ({"type": "object", "properties": {"price": {"type": "number", "minimum": 0, "maximum": 1000}}, "required": ["price"]},
     ["How much does a bicycle cost in dollars?", "Give the price of a coffee."]),
    ({"type": "object", "properties": {"is_open": {"type": "boolean"}}, "required": ["is_open"]},
     ["Is the shop open on Sunday?", "Is the door open?"]),
    ({"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 2, "maxItems": 3},
     ["List some fruits.", "Name a few planets."]),
    ({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 99}, "minItems": 1, "maxItems": 5},
     ["List some prime numbers.", "Give me lottery numbers."]),
    ({"type": "object", "properties": {"date": {"type": "string", "format": "date"}}, "required": ["date"]},
     ["When did the first moon landing happen?", "Give today's date."]),
    ({"type": "object", "properties": {"time": {"type": "string", "format": "time"}}, "required": ["time"]},
     ["When does the train leave?", "What time is lunch?"]),
    ({"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}, "required": ["id"]},
     ["Create an order identifier.", "Make up a user id."]),
    ({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]},
     ["What is the support email of Example Inc?", "Invent an email address for Bob."]),
    ({"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}}, "required": ["code"]},
     ["Give a flight code.", "Make up a product code."]),
    ({"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                       "country": {"type": "string", "maxLength": 12},
                                       "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["city"]},
     ["Where is the Eiffel Tower?", "Give an address in the USA."]),
    ({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False},
     ["Did the test pass?", "Is everything fine?"]),
    ({"type": "object", "properties": {"user": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10}, "admin": {"type": "boolean"}}, "required": ["name", "admin"]}},
      "required": ["user"]},
     ["Describe the account of Alice, an administrator.", "Create a normal user."]),
    ({"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "integer", "minimum": -9, "maximum": 9},
                                                        "y": {"type": "integer", "minimum": -9, "maximum": 9}},
                       "required": ["x", "y"]}},
      "type": "object", "properties": {"start": {"$ref": "#/$defs/pt"}, "end": {"$ref": "#/$defs/pt"}},
      "required": ["start", "end"]},
     ["Give a line segment.", "Describe a move on a chess board as two points."]),
    ({"type": "object", "properties": {"value": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100},
                                                           {"type": "null"}]}}, "required": ["value"]},
     ["What percentage of the glass is full?", "Unknown value, answer accordingly."]),
    ({"oneOf": [{"type": "object", "properties": {"cat": {"type": "string", "maxLength": 8}}, "required": ["cat"],
                 "additionalProperties": False},
                {"type": "object", "properties": {"dog": {"type": "string", "maxLength": 8}}, "required": ["dog"],
                 "additionalProperties": False}]},
     ["Name a pet.", "Tell me about your dog."]),
    ({"type": "object", "properties": {"version": {"const": 2}, "name": {"type": "string", "maxLength": 10}},
      "required": ["version", "name"]},
     ["Describe the config file.", "Name the release."]),
    ({"type": "object", "properties": {"note": {"type": ["string", "null"], "maxLength": 20}}, "required": ["note"]},
     ["Leave a short note.", "Any remarks?"]),
    ({"type": "object", "properties": {"word": {"type": "string", "minLength": 3, "maxLength": 8}}, "required": ["word"]},
     ["Give a word that rhymes with cat.", "Say a long word."]),
    ({"type": "object", "properties": {"score": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}},
      "required": ["score"]},
     ["Score this movie.", "How good was dinner?"]),
    ({"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                                                  "qty": {"type": "integer", "minimum": 1, "maximum": 20}},
                                 "required": ["name", "qty"]}, "minItems": 1, "maxItems": 2},
     ["Write a shopping list.", "What do we need for a cake?"]),
    ({"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}, "required": ["at"]},
     ["When is the meeting?", "Schedule a call."]),
    ({"type": "object", "properties": {"temp_c": {"type": "number", "minimum": -40, "maximum": 50}}, "required": ["temp_c"]},
     ["What is the temperature in Oslo in winter?", "How hot is a summer day in Spain?"]),
]
GEMMA_CASES = [0, 1, 6, 12, 16, 18]

TEMPLATES = {
    "smollm2": "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n",
}


def write_temp(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def validator(schema):
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def generate(model, schema_file, request, sampled):
    prompt = TEMPLATES[model].format(request + " Answer in JSON.")
    mode = ["--temp", "0.8", "-s", "11"] if sampled else ["--temp", "0"]
    r = edgelm("run", "-m", model, "-p", prompt, "-n", N_PREDICT, "-t", "2", "--json-schema", schema_file, *mode)
    check(r.returncode == 0, f"{model}: {r.stderr}")
    check(r.stdout.startswith(prompt), r.stdout)
    check("unfinished" not in r.stderr, f"{model} {request!r}: {r.stderr}")
    return r.stdout[len(prompt):-1]  # run ends the text with a newline


def check_pairs(model, indices):
    failures, n = [], 0
    for i in indices:
        schema, requests = CASES[i]
        path = write_temp(json.dumps(schema), ".json")
        try:
            for k, request in enumerate(requests):
                sampled = (k + i) % 2 == 1
                text = generate(model, path, request, sampled)
                n += 1
                try:
                    validator(schema).validate(json.loads(text))
                except (ValueError, jsonschema.ValidationError) as e:
                    failures.append(f"schema {i} {'sampled' if sampled else 'greedy'} {request!r}: {text!r}: {e}")
        finally:
            os.unlink(path)
    check(not failures, f"{len(failures)} of {n} outputs invalid:\n" + "\n".join(failures))
    return n


def test_every_smollm2_output_is_schema_valid_greedy_and_sampled():
    n = check_pairs("smollm2", range(len(CASES)))
    check(n >= 50, f"only {n} schema x prompt pairs")


def test_every_gemma3_output_is_schema_valid():
    check_pairs("gemma3", GEMMA_CASES)


def test_the_corpus_documents_meant_to_pass_are_schema_valid():
    with open(os.path.join(SRC, "tests", "fixtures", "grammar", "corpus.json")) as f:
        corpus = json.load(f)
    for case in corpus["schemas"]:
        for doc in case["accept"]:
            validator(case["schema"]).validate(json.loads(doc))


def test_chat_replies_follow_the_schema_turn_after_turn():
    schema = CASES[0][0]
    path = write_temp(json.dumps(schema), ".json")
    try:
        r = edgelm("chat", "-m", "smollm2", "--temp", "0", "-t", "2", "-n", N_PREDICT, "--json-schema", path,
                   input="Describe a pilot.\nNow describe a baker.\n")
    finally:
        os.unlink(path)
    check(r.returncode == 0, r.stderr)
    decoder, pos, replies = json.JSONDecoder(), 0, []
    text = r.stdout
    while text[pos:].strip():
        while text[pos].isspace():
            pos += 1
        value, pos = decoder.raw_decode(text, pos)
        validator(schema).validate(value)
        replies.append(value)
    check(len(replies) == 2, f"expected two replies: {text!r}")


def test_grammar_file_and_json_flag():
    path = write_temp('root ::= "The answer is " ("yes" | "no") "."\n', ".gbnf")
    try:
        r = edgelm("run", "-m", "smollm2", "-p", "Is fire hot?", "-n", "16", "--temp", "0", "--grammar-file", path)
    finally:
        os.unlink(path)
    check(r.returncode == 0, r.stderr)
    check(r.stdout[len("Is fire hot?"):-1] in ("The answer is yes.", "The answer is no."), r.stdout)
    r = edgelm("run", "-m", "smollm2", "-p", TEMPLATES["smollm2"].format("A JSON object with a title."), "-n", "200",
               "--temp", "0", "--json")
    check(r.returncode == 0, r.stderr)
    if "unfinished" not in r.stderr:
        check(isinstance(json.loads(r.stdout.split("assistant\n", 1)[1]), dict), r.stdout)


def expect_error(args, needle):
    r = edgelm("run", "-m", "smollm2", "-p", "x", "-n", "1", *args)
    check(r.returncode != 0, f"{args}: exit 0")
    lines = r.stderr.strip().splitlines()
    check(len(lines) == 1 and needle in lines[0], f"{args}: {r.stderr!r}")


def test_bad_grammar_and_schema_files_get_one_line_errors():
    bad_gbnf = write_temp('root ::= "a" | missing\n', ".gbnf")
    left = write_temp('root ::= root "a" | "a"\n', ".gbnf")
    bad_json = write_temp('{"type": "object",', ".json")
    unsupported = write_temp('{"type": "object", "properties": {"a": {"type": "string", "contentMediaType": "x"}}}', ".json")
    good = write_temp('root ::= "a"\n', ".gbnf")
    try:
        expect_error(["--grammar-file", bad_gbnf], "rule 'missing' is used but never defined")
        expect_error(["--grammar-file", left], "left-recursive")
        expect_error(["--grammar-file", "/nonexistent.gbnf"], "cannot open grammar file '/nonexistent.gbnf'")
        expect_error(["--json-schema", bad_json], "not valid JSON")
        expect_error(["--json-schema", unsupported], "/properties/a: unsupported keyword 'contentMediaType'")
        expect_error(["--json-schema", "/nonexistent.json"], "cannot open JSON schema file")
        expect_error(["--json", "--grammar-file", good], "excludes")
    finally:
        for p in (bad_gbnf, left, bad_json, unsupported, good):
            os.unlink(p)


if __name__ == "__main__":
    run_all(globals())
