"""edgelm.Llama: the llama-cpp-python-shaped API on SmolLM2 (greedy where text is compared)."""
import json
import os

import pytest

import edgelm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def greedy(llm, prompt, n, **kw):
    return llm(prompt, max_tokens=n, temperature=0, **kw)


def test_completion_shape_and_usage(llm):
    r = greedy(llm, "The three primary colors are", 16)
    assert r["object"] == "text_completion" and r["id"].startswith("cmpl-")
    assert r["model"] == llm.model_path and isinstance(r["created"], int)
    c = r["choices"][0]
    assert c["index"] == 0 and c["logprobs"] is None and c["finish_reason"] == "length"
    n_prompt = len(llm.tokenize(b"The three primary colors are"))
    assert r["usage"] == {"prompt_tokens": n_prompt, "completion_tokens": 16, "total_tokens": n_prompt + 16}
    assert len(llm.tokenize(c["text"].encode(), add_bos=False)) in range(14, 19)


def test_call_equals_create_completion_and_cache_reuse_changes_nothing(llm):
    a = greedy(llm, "A haiku about the sea:", 20)["choices"][0]["text"]
    b = llm.create_completion("A haiku about the sea:", max_tokens=20, temperature=0)["choices"][0]["text"]
    llm.reset()
    c = greedy(llm, "A haiku about the sea:", 20)["choices"][0]["text"]
    assert a == b == c and a


def test_matches_session_level_greedy(llm, model):
    ids = model.tokenize(b"Photosynthesis is", True, True)
    s = edgelm.Session(model, n_ctx=256, n_threads=2)
    out = []
    s.generate(ids, 12, edgelm.Sampler(temperature=0), lambda t: out.append(t) or True)
    assert greedy(llm, "Photosynthesis is", 12)["choices"][0]["text"] == model.detokenize(out).decode()


def test_stop_strings_and_echo(llm):
    full = greedy(llm, "Count: 1, 2, 3,", 24)["choices"][0]["text"]
    assert " 5," in full
    r = greedy(llm, "Count: 1, 2, 3,", 24, stop=[" 5,", "never"])
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["choices"][0]["text"] == full[: full.index(" 5,")]
    e = greedy(llm, "Count: 1, 2, 3,", 24, echo=True)["choices"][0]["text"]
    assert e == "Count: 1, 2, 3," + full


def test_stream_equals_non_stream(llm):
    want = greedy(llm, "The history of Rome", 30)["choices"][0]["text"]
    chunks = list(greedy(llm, "The history of Rome", 30, stream=True))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len(chunks) > 10 and "".join(c["choices"][0]["text"] for c in chunks) == want
    # A stop string never shows in part, even split across tokens.
    cut = want[: want.index(" ", 10) + 2]
    stop = want[len(cut) - 2: len(cut) + 3]
    text = "".join(c["choices"][0]["text"] for c in greedy(llm, "The history of Rome", 30, stream=True, stop=[stop]))
    assert text == want[: want.index(stop)]


def test_stream_closed_early_frees_the_session(llm):
    it = greedy(llm, "Once upon a time", 50, stream=True)
    next(it)
    with pytest.raises(RuntimeError, match="already generating"):
        greedy(llm, "Hello", 2)
    it.close()
    assert greedy(llm, "Hello", 2)["usage"]["completion_tokens"] == 2


def test_sampling_is_seeded(llm):
    kw = dict(max_tokens=20, temperature=0.9, top_k=50, top_p=0.9, min_p=0.02, repeat_penalty=1.1)
    a = llm("In the forest", seed=7, **kw)["choices"][0]["text"]
    b = llm("In the forest", seed=7, **kw)["choices"][0]["text"]
    assert a == b and a


def test_chat_completion_and_stream(llm):
    msgs = [{"role": "user", "content": "Say hello to Ada."}]
    r = llm.create_chat_completion(messages=msgs, max_tokens=24, temperature=0)
    assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
    m = r["choices"][0]["message"]
    assert m["role"] == "assistant" and m["content"]
    chunks = list(llm.create_chat_completion(messages=msgs, max_tokens=24, temperature=0, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == m["content"]
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] is not None


def test_response_format_json_object_and_schema(llm):
    msgs = [{"role": "user", "content": "Give a JSON object with the name and age of a cat."}]
    r = llm.create_chat_completion(messages=msgs, max_tokens=120, temperature=0,
                                   response_format={"type": "json_object"})
    assert r["choices"][0]["finish_reason"] == "stop"
    assert isinstance(json.loads(r["choices"][0]["message"]["content"]), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 30}},
              "required": ["name", "age"], "additionalProperties": False}
    r = llm.create_chat_completion(messages=msgs, max_tokens=60, temperature=0,
                                   response_format={"type": "json_object", "schema": schema})
    doc = json.loads(r["choices"][0]["message"]["content"])
    assert set(doc) == {"name", "age"} and isinstance(doc["name"], str) and 0 <= doc["age"] <= 30
    assert r["choices"][0]["finish_reason"] == "stop"


def test_tokenize_detokenize(llm):
    ids = llm.tokenize("Grüße, 世界!".encode())
    assert llm.detokenize(ids).decode() == "Grüße, 世界!"
    assert llm.tokenize(b"<|im_start|>", add_bos=False, special=True) == [1]
    assert len(llm.tokenize(b"<|im_start|>", add_bos=False, special=False)) > 1
    with pytest.raises(TypeError):
        llm.tokenize("not bytes")


def test_embeddings(smollm2):
    e = edgelm.Llama(model_path=smollm2, n_ctx=256, n_threads=2, embedding=True, verbose=False)
    r = e.create_embedding(["Hello world", "A longer sentence here."])
    assert r["object"] == "list" and [d["index"] for d in r["data"]] == [0, 1]
    n0 = len(e.tokenize(b"Hello world"))
    assert len(r["data"][0]["embedding"]) == n0 and len(r["data"][0]["embedding"][0]) == e.n_embd()
    unit = e.embed("Hello world", normalize=True)
    assert abs(sum(x * x for x in unit[0]) - 1) < 1e-4


def test_speculative_and_lora_keep_their_meaning(smollm2):
    plain = edgelm.Llama(model_path=smollm2, n_ctx=512, n_threads=2, verbose=False)
    prompt = "Repeat after me: the quick brown fox jumps over the lazy dog. Again: the quick brown"
    want = greedy(plain, prompt, 24)["choices"][0]["text"]
    lookup = edgelm.Llama(model_path=smollm2, n_ctx=512, n_threads=2, verbose=False,
                          draft_model=edgelm.LlamaPromptLookupDecoding(num_pred_tokens=8))
    assert greedy(lookup, prompt, 24)["choices"][0]["text"] == want
    drafted = edgelm.Llama(model_path=smollm2, n_ctx=512, n_threads=2, verbose=False, draft_model=smollm2)
    assert greedy(drafted, prompt, 24)["choices"][0]["text"] == want

    adapter = os.path.join(ROOT, "tests", "fixtures", "lora", "smollm2-facts-r2.gguf")
    tuned = edgelm.Llama(model_path=smollm2, n_ctx=512, n_threads=2, verbose=False, lora_path=adapter)
    m = plain.model
    ids = m.tokenize(b"The capital of France is", True, False)
    base = edgelm.Session(m, n_ctx=64, n_threads=2).eval(ids).copy()
    with_lora = edgelm.Session(m, n_ctx=64, n_threads=2, lora=[(adapter, 1.0)]).eval(ids)
    assert abs(base - with_lora).max() > 1e-2
    out = []
    s = edgelm.Session(m, n_ctx=64, n_threads=2, lora=[(adapter, 1.0)])
    s.generate(ids, 10, edgelm.Sampler(temperature=0), lambda t: out.append(t) or True)
    assert greedy(tuned, "The capital of France is", 10)["choices"][0]["text"] == m.detokenize(out).decode()
