"""A script written for llama-cpp-python: completion, chat, streaming, embeddings, tokenize.

run(Llama, model_path) takes the Llama class, so the same code runs with
`from llama_cpp import Llama` (tests/oracle/llama_cpp_python_compat.py writes its results as a
fixture) and with `from edgelm import Llama` (tests/python/test_compat.py compares).
"""


def run(Llama, model_path):
    out = {}
    llm = Llama(model_path=model_path, n_ctx=512, n_threads=2, seed=1, verbose=False)

    r = llm("The capital of France is", max_tokens=24, temperature=0)
    out["completion"] = {"text": r["choices"][0]["text"], "finish_reason": r["choices"][0]["finish_reason"],
                         "usage": r["usage"], "object": r["object"]}

    r = llm.create_completion("List three colors:\n1.", max_tokens=48, temperature=0, stop=["\n3."])
    out["completion_stop"] = {"text": r["choices"][0]["text"], "finish_reason": r["choices"][0]["finish_reason"]}

    r = llm("Water boils at", max_tokens=12, temperature=0, echo=True)
    out["completion_echo"] = r["choices"][0]["text"]

    chunks = list(llm("Once upon a time", max_tokens=32, temperature=0, stream=True))
    out["completion_stream"] = {"text": "".join(c["choices"][0]["text"] for c in chunks),
                                "last_finish_reason": chunks[-1]["choices"][0]["finish_reason"],
                                "object": chunks[0]["object"]}

    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the tallest mountain on Earth?"}]
    r = llm.create_chat_completion(messages=messages, max_tokens=48, temperature=0)
    out["chat"] = {"content": r["choices"][0]["message"]["content"], "role": r["choices"][0]["message"]["role"],
                   "finish_reason": r["choices"][0]["finish_reason"], "usage": r["usage"], "object": r["object"]}

    deltas = list(llm.create_chat_completion(
        messages=[{"role": "user", "content": "Name a primary color."}], max_tokens=32, temperature=0, stream=True))
    out["chat_stream"] = {"content": "".join(d["choices"][0]["delta"].get("content") or "" for d in deltas),
                          "first_delta": deltas[0]["choices"][0]["delta"],
                          "last_finish_reason": deltas[-1]["choices"][0]["finish_reason"],
                          "object": deltas[0]["object"]}

    out["tokenize"] = llm.tokenize(b"Hello, world! Tokenize this.")
    out["tokenize_special"] = llm.tokenize(b"<|im_start|>user\nHi<|im_end|>", add_bos=False, special=True)
    out["tokenize_plain"] = llm.tokenize(b"<|im_start|>user", add_bos=False, special=False)
    out["detokenize"] = llm.detokenize(out["tokenize"]).decode("utf-8")
    out["n_ctx"] = llm.n_ctx()
    out["n_vocab"] = llm.n_vocab()
    out["token_eos"] = llm.token_eos()
    out["token_bos"] = llm.token_bos()
    del llm

    emb = Llama(model_path=model_path, n_ctx=512, n_threads=2, embedding=True, verbose=False)
    r = emb.create_embedding("Hello world")
    out["embedding"] = {"object": r["object"], "n": len(r["data"]), "usage": r["usage"],
                        "vectors": r["data"][0]["embedding"]}
    return out
