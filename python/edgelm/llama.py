"""edgelm.Llama: the llama-cpp-python `Llama` interface over edgelm's engine.

Same constructor keywords, method names, sampling keywords and OpenAI-shaped response dicts as
llama-cpp-python, so `from edgelm import Llama` replaces `from llama_cpp import Llama`.
docs/python.md lists what is the same and what differs.
"""
from __future__ import annotations

import json
import os
import queue
import random
import sys
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ._edgelm import Drafter, Model, Sampler, Session, json_object_grammar, json_schema_to_grammar
from .text import TextAssembler

LLAMA_DEFAULT_SEED = 0xFFFFFFFF

# llama-cpp-python constructor keywords that choose things a CPU build has no use for (GPU
# offload, memory mapping, NUMA, RoPE overrides read from the file anyway): accepted so that
# scripts run unchanged, and ignored.
_IGNORED_INIT = {
    "n_gpu_layers", "split_mode", "main_gpu", "tensor_split", "rpc_servers", "vocab_only", "use_mmap",
    "use_mlock", "kv_overrides", "n_ubatch", "n_threads_batch", "rope_scaling_type", "pooling_type",
    "rope_freq_base", "rope_freq_scale", "yarn_ext_factor", "yarn_attn_factor", "yarn_beta_fast",
    "yarn_beta_slow", "yarn_orig_ctx", "logits_all", "offload_kqv", "flash_attn", "op_offload", "swa_full",
    "no_perf", "last_n_tokens_size", "numa", "chat_handler", "tokenizer", "type_k", "type_v", "spm_infill",
    "lora_base", "chat_format", "n_seq_max",
}


class LlamaPromptLookupDecoding:
    """Speculative decoding by prompt lookup, as llama_cpp.llama_speculative's class of this name:
    pass an instance as Llama(draft_model=...)."""

    def __init__(self, max_ngram_size: int = 2, num_pred_tokens: int = 10):
        if max_ngram_size < 1:
            raise ValueError(f"max_ngram_size must be at least 1, not {max_ngram_size}")
        self.max_ngram_size = max_ngram_size
        self.num_pred_tokens = num_pred_tokens

    def _drafter(self, model: Model) -> Drafter:
        return Drafter.lookup(1, self.max_ngram_size)


class Llama:
    """A model, a session (KV cache) and the llama-cpp-python methods over them.

    model_path: a GGUF file (or an edgelm model-cache alias such as "smollm2").
    n_ctx: context positions (0: the model's training context). n_threads: None or 0 uses all
    cores. seed: the default sampling seed. lora_path / lora_scale: a LoRA adapter (GGUF).
    draft_model: speculative decoding, a LlamaPromptLookupDecoding or the path of a smaller
    GGUF model with the same vocabulary. embedding: allow create_embedding/embed. verbose: one
    line about the model on stderr after loading.
    """

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_threads: Optional[int] = None,
        seed: int = LLAMA_DEFAULT_SEED,
        lora_path: Optional[str] = None,
        lora_scale: float = 1.0,
        draft_model: Union[None, str, LlamaPromptLookupDecoding] = None,
        embedding: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ):
        unknown = sorted(set(kwargs) - _IGNORED_INIT)
        if unknown:
            raise TypeError(f"Llama() got an unexpected keyword argument {unknown[0]!r}")
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path must be a path, not {type(model_path).__name__}")
        self.model_path = os.fspath(model_path)
        self.verbose = verbose
        self._model = Model.load(self.model_path)
        if n_ctx is None or n_ctx < 0:
            raise ValueError(f"n_ctx must be 0 (the model's training context) or more, not {n_ctx}")
        self._n_ctx = int(n_ctx) if n_ctx > 0 else (self._model.n_ctx_train or 2048)
        self.n_batch = int(n_batch)
        lora = [(os.fspath(lora_path), float(lora_scale))] if lora_path else []
        self._session = Session(self._model, n_ctx=self._n_ctx, n_threads=int(n_threads or 0),
                                n_batch=self.n_batch, lora=lora)
        self.n_threads = self._session.n_threads
        self._seed = seed or LLAMA_DEFAULT_SEED
        self._embedding = bool(embedding)
        self._embed_session: Optional[Session] = None
        self._lock = threading.Lock()
        self._pieces: Dict[int, bytes] = {}
        self._drafter: Optional[Drafter] = None
        if isinstance(draft_model, LlamaPromptLookupDecoding):
            self._drafter = draft_model._drafter(self._model)
        elif isinstance(draft_model, (str, os.PathLike)):
            self._drafter = Drafter.from_model(Model.load(os.fspath(draft_model)), self._model,
                                               n_ctx=self._n_ctx, n_threads=self.n_threads)
        elif draft_model is not None:
            raise TypeError("draft_model must be a LlamaPromptLookupDecoding or the path of a GGUF draft model")
        if verbose:
            print(f"edgelm: {self._model.name} ({self._model.arch}, {self._model.n_params / 1e6:.0f}M parameters) "
                  f"from {self.model_path}, n_ctx {self._n_ctx}, {self.n_threads} threads", file=sys.stderr)

    # -- edgelm's own objects ---------------------------------------------------------------
    @property
    def model(self) -> Model:
        """The loaded edgelm.Model."""
        return self._model

    @property
    def session(self) -> Session:
        """The edgelm.Session that generation runs in (its KV cache holds the last text)."""
        return self._session

    # -- llama-cpp-python's small accessors ---------------------------------------------------
    def n_ctx(self) -> int:
        return self._n_ctx

    def n_vocab(self) -> int:
        return self._model.n_vocab

    def n_embd(self) -> int:
        return self._model.n_embd

    def token_bos(self) -> int:
        return self._model.bos

    def token_eos(self) -> int:
        return self._model.eos

    def set_seed(self, seed: int) -> None:
        self._seed = seed

    def reset(self) -> None:
        """Forgets the cached text (the next call evaluates its whole prompt)."""
        self._session.truncate(0)

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> List[int]:
        """Token ids of UTF-8 bytes; add_bos adds BOS when the model asks for one."""
        if not isinstance(text, (bytes, bytearray)):
            raise TypeError(f"tokenize takes bytes (text.encode('utf-8')), not {type(text).__name__}")
        return self._model.tokenize(bytes(text), add_bos, special)

    def detokenize(self, tokens: Sequence[int], prev_tokens: Optional[Sequence[int]] = None,
                   special: bool = False) -> bytes:
        """The UTF-8 bytes of token ids (prev_tokens is accepted and not needed)."""
        return self._model.detokenize(list(tokens), special)

    # -- completion ---------------------------------------------------------------------------
    def __call__(self, prompt: Union[str, List[int]], **kwargs: Any):
        """Same as create_completion."""
        return self.create_completion(prompt, **kwargs)

    def create_completion(
        self,
        prompt: Union[str, List[int]],
        suffix: Optional[str] = None,
        max_tokens: Optional[int] = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        logprobs: Optional[int] = None,
        echo: bool = False,
        stop: Optional[Union[str, List[str]]] = None,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        top_k: int = 40,
        stream: bool = False,
        seed: Optional[int] = None,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        stopping_criteria: Any = None,
        logits_processor: Any = None,
        grammar: Optional[str] = None,
        logit_bias: Optional[Dict[int, float]] = None,
    ):
        """Completes a prompt; returns a text_completion dict, or with stream=True an iterator of
        chunks. temperature <= 0 is greedy. grammar: GBNF text the completion must follow."""
        for name, value, neutral in (("suffix", suffix, None), ("logprobs", logprobs, None),
                                     ("typical_p", typical_p, 1.0), ("tfs_z", tfs_z, 1.0),
                                     ("mirostat_mode", mirostat_mode, 0), ("stopping_criteria", stopping_criteria, None),
                                     ("logits_processor", logits_processor, None), ("logit_bias", logit_bias, None)):
            if value != neutral:
                raise ValueError(f"{name} is not supported by edgelm.Llama; leave it at {neutral!r}")
        prompt_tokens = self._prompt_tokens(prompt)
        sampler = self._sampler(temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
                                frequency_penalty, seed, getattr(grammar, "_grammar", grammar))
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        prefix = (prompt if isinstance(prompt, str) else self.detokenize(prompt_tokens).decode("utf-8", "ignore")) if echo else ""
        meta = {"id": f"cmpl-{uuid.uuid4()}", "object": "text_completion", "created": int(time.time()),
                "model": model if model is not None else self.model_path}
        run = self._run(prompt_tokens, max_tokens, sampler, stops, stream)
        if stream:
            return self._completion_chunks(run, meta, prefix)
        text, finish, n = run()
        return dict(meta, choices=[{"text": prefix + text, "index": 0, "logprobs": None, "finish_reason": finish}],
                    usage={"prompt_tokens": len(prompt_tokens), "completion_tokens": n,
                           "total_tokens": len(prompt_tokens) + n})

    def _completion_chunks(self, run, meta, prefix) -> Iterator[Dict[str, Any]]:
        if prefix:
            yield dict(meta, choices=[{"text": prefix, "index": 0, "logprobs": None, "finish_reason": None}])
        for piece, finish in run:
            if piece or finish:
                yield dict(meta, choices=[{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}])

    # -- chat ---------------------------------------------------------------------------------
    def create_chat_completion(
        self,
        messages: List[Dict[str, Any]],
        functions: Any = None,
        function_call: Any = None,
        tools: Any = None,
        tool_choice: Any = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: Optional[Union[str, List[str]]] = None,
        seed: Optional[int] = None,
        response_format: Optional[Dict[str, Any]] = None,
        max_tokens: Optional[int] = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        logits_processor: Any = None,
        grammar: Optional[str] = None,
        logit_bias: Optional[Dict[str, float]] = None,
        logprobs: Optional[bool] = None,
        top_logprobs: Optional[int] = None,
    ):
        """Replies to a conversation (OpenAI-style messages) rendered with the model's chat
        template; returns a chat.completion dict, or with stream=True an iterator of
        chat.completion.chunk dicts. response_format {"type": "json_object"} (optionally with
        "schema") constrains the reply to JSON with edgelm's grammar engine."""
        if functions or tools or function_call or tool_choice:
            raise ValueError("tools and functions are not supported by edgelm.Llama; use edgelm serve for tool calls")
        if logprobs or top_logprobs:
            raise ValueError("logprobs are not supported by edgelm.Llama")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("messages must be a list of {'role': ..., 'content': ...} dicts")
        rendered = self._model.render_chat(json.dumps(messages, ensure_ascii=False), True)
        prompt_tokens = self._model.tokenize(rendered.encode("utf-8"), False, True)
        if response_format is not None:
            grammar = _response_format_grammar(response_format)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        eos = self._model.eos
        if eos >= 0:  # as llama-cpp-python's template formatter: the EOS text also stops
            stops.append(self._model.token_to_piece(eos, True).decode("utf-8", "ignore"))
        completion = self.create_completion(
            prompt_tokens, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            typical_p=typical_p, stream=stream, stop=stops, seed=seed, presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty, repeat_penalty=repeat_penalty, tfs_z=tfs_z,
            mirostat_mode=mirostat_mode, mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta, model=model,
            logits_processor=logits_processor, grammar=grammar, logit_bias=logit_bias)
        if stream:
            return _chat_chunks(completion)
        c = completion["choices"][0]
        return {"id": "chat" + completion["id"], "object": "chat.completion", "created": completion["created"],
                "model": completion["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": c["text"]}, "logprobs": None,
                             "finish_reason": c["finish_reason"]}],
                "usage": completion["usage"]}

    # -- embeddings ---------------------------------------------------------------------------
    def embed(self, input: Union[str, List[str]], normalize: bool = False, truncate: bool = True,
              return_count: bool = False):
        """Per-token hidden states (after the output norm) of each text, as lists: what
        llama-cpp-python returns for a model without a pooling type. For pooled vectors as a
        numpy array use edgelm.embed()."""
        if not self._embedding:
            raise RuntimeError("Llama model must be created with embedding=True to call this method")
        texts = [input] if isinstance(input, str) else list(input)
        if self._embed_session is None:
            self._embed_session = Session(self._model, n_ctx=self._n_ctx, n_threads=self.n_threads,
                                          n_batch=self.n_batch)
        data, total = [], 0
        for text in texts:
            toks = self._model.tokenize(text.encode("utf-8"), True, False)
            if truncate:
                toks = toks[: self.n_batch]
            if len(toks) > self.n_batch:
                raise ValueError(f"Requested tokens ({len(toks)}) exceed batch size of {self.n_batch}")
            total += len(toks)
            if not toks:
                data.append([])
                continue
            self._embed_session.truncate(0)
            rows = np.array(self._embed_session.hidden(toks))
            if normalize:
                rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            data.append(rows.tolist())
        self._embed_session.truncate(0)
        out = data[0] if isinstance(input, str) else data
        return (out, total) if return_count else out

    def create_embedding(self, input: Union[str, List[str]], model: Optional[str] = None) -> Dict[str, Any]:
        """OpenAI-shaped embedding response over embed()."""
        embeds, total = self.embed(input, return_count=True)
        if isinstance(input, str):
            embeds = [embeds]
        return {"object": "list", "data": [{"object": "embedding", "embedding": e, "index": i} for i, e in enumerate(embeds)],
                "model": model if model is not None else self.model_path,
                "usage": {"prompt_tokens": total, "total_tokens": total}}

    # -- internals ----------------------------------------------------------------------------
    def _prompt_tokens(self, prompt: Union[str, List[int]]) -> List[int]:
        if isinstance(prompt, str):
            toks = self._model.tokenize(prompt.encode("utf-8"), True, True) if prompt else []
        elif isinstance(prompt, (list, tuple)) and all(isinstance(t, (int, np.integer)) for t in prompt):
            toks = [int(t) for t in prompt]
        else:
            raise TypeError("prompt must be a str or a list of token ids")
        if not toks:
            toks = [self._model.bos] if self._model.bos >= 0 else []
        if not toks:
            raise ValueError("the prompt is empty and the model has no BOS token to start from")
        if len(toks) >= self._n_ctx:
            raise ValueError(f"Requested tokens ({len(toks)}) exceed context window of {self._n_ctx}")
        return toks

    def _sampler(self, temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty,
                 seed, grammar) -> Sampler:
        if seed is None:  # as llama-cpp-python: each call draws its seed from the Llama's seed
            seed = random.Random(self._seed).randint(0, 2**32)
        return Sampler(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), min_p=float(min_p),
                       repeat_penalty=float(repeat_penalty), presence_penalty=float(presence_penalty),
                       frequency_penalty=float(frequency_penalty), seed=int(seed) & 0xFFFFFFFFFFFFFFFF,
                       grammar=grammar, model=self._model if grammar is not None else None)

    def _piece(self, tok: int) -> bytes:
        p = self._pieces.get(tok)
        if p is None:
            p = self._pieces[tok] = self._model.token_to_piece(tok, False)
        return p

    def _run(self, prompt_tokens, max_tokens, sampler, stops, stream):
        """A generation: called, runs to the end and returns (text, finish_reason, n_tokens);
        iterated (stream), yields (text piece, finish_reason or None)."""
        room = self._n_ctx - len(prompt_tokens)
        limit = room if max_tokens is None or max_tokens <= 0 else min(int(max_tokens), room)
        return _Generation(self, prompt_tokens, limit, sampler, stops, stream)


class _Generation:
    def __init__(self, llm: Llama, prompt_tokens, limit, sampler, stops, stream):
        self.llm, self.prompt, self.limit, self.sampler = llm, prompt_tokens, limit, sampler
        self.text = TextAssembler(llm._piece, stops)
        self.stream = stream

    def _start(self):
        s = self.llm._session
        n_keep = s.reuse_prefix(self.prompt)  # the cached prefix shared with the last text stays
        if n_keep:
            self.sampler.accept_prompt(self.prompt[:n_keep])
        return self.prompt[n_keep:]

    def _finish_reason(self, n):
        return "stop" if self.text.stopped or n < self.limit else "length"

    def __call__(self):
        with _busy(self.llm):
            rest = self._start()
            n = self.llm._session.generate(rest, self.limit, self.sampler, self.text.push, self.llm._drafter)
        return self.text.finish(), self._finish_reason(n), n

    def __iter__(self):
        # The generation runs in a worker thread that hands token ids over a queue; this
        # generator turns them into text. Closing it early (break, an exception, Ctrl-C in the
        # consumer) stops the worker after its current token.
        q: "queue.Queue" = queue.Queue()
        halt = threading.Event()
        result: Dict[str, Any] = {}

        def on_token(tok):
            q.put(tok)
            return not halt.is_set()

        def work():
            try:
                result["n"] = self.llm._session.generate(rest, self.limit, self.sampler, on_token, self.llm._drafter)
            except BaseException as e:  # handed to the consumer
                result["error"] = e
            finally:
                q.put(None)

        with _busy(self.llm):
            rest = self._start()
            worker = threading.Thread(target=work, name="edgelm-generate", daemon=True)
            worker.start()
            try:
                n = 0
                while True:
                    tok = q.get()
                    if tok is None:
                        break
                    n += 1
                    more = self.text.push(tok)
                    piece = self.text.take()
                    if piece:
                        yield piece, None
                    if not more:
                        halt.set()
                        break
            finally:
                halt.set()
                worker.join()
            if "error" in result:
                raise result["error"]
            tail = self.text.finish_tail()
            yield tail, self._finish_reason(result.get("n", n) if not self.text.stopped else n)


class _busy:
    """Holds a Llama's session for one generation. A second generation while one is open (a
    stream not yet read to its end, another thread) is an error, not a wait that could never end."""

    def __init__(self, llm: Llama):
        self.lock = llm._lock

    def __enter__(self):
        if not self.lock.acquire(blocking=False):
            raise RuntimeError("this Llama is already generating (a stream not read to its end, or another "
                               "thread): finish or close that stream first, or use one Llama per thread")

    def __exit__(self, *exc):
        self.lock.release()


def _chat_chunks(chunks) -> Iterator[Dict[str, Any]]:
    first = True
    for c in chunks:
        meta = {"id": "chat" + c["id"], "model": c["model"], "created": c["created"], "object": "chat.completion.chunk"}
        if first:
            yield dict(meta, choices=[{"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}])
            first = False
        choice = c["choices"][0]
        if choice["text"]:
            yield dict(meta, choices=[{"index": 0, "delta": {"content": choice["text"]}, "logprobs": None,
                                       "finish_reason": None}])
        if choice["finish_reason"] is not None:
            yield dict(meta, choices=[{"index": 0, "delta": {}, "logprobs": None,
                                       "finish_reason": choice["finish_reason"]}])


def _response_format_grammar(rf: Dict[str, Any]) -> Optional[str]:
    """GBNF for llama-cpp-python's response_format ({"type": "json_object"[, "schema": ...]}) or
    OpenAI's ({"type": "json_schema", "json_schema": {"schema": ...}})."""
    if not isinstance(rf, dict) or not isinstance(rf.get("type"), str):
        raise ValueError("response_format must be a dict with a 'type': 'text', 'json_object' or 'json_schema'")
    kind = rf["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        schema = rf.get("schema")
        return json_object_grammar() if schema is None else json_schema_to_grammar(json.dumps(schema))
    if kind == "json_schema":
        js = rf.get("json_schema")
        if not isinstance(js, dict) or "schema" not in js:
            raise ValueError("response_format {'type': 'json_schema'} needs 'json_schema': {'schema': {...}}")
        return json_schema_to_grammar(json.dumps(js["schema"]))
    raise ValueError(f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'")
