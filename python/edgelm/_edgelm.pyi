"""
edgelm's C++ library for Python (use the edgelm package, not this module)
"""

from collections.abc import Callable, Sequence
from typing import Annotated, overload

import numpy
from numpy.typing import NDArray


def finetune(model: Model, train: str, output: str, val: str | None = None, options: dict = {}, on_step: object | None = None, on_epoch: object | None = None, on_eval: object | None = None) -> dict:
    """
    Fine-tunes every weight (or LoRA adapters, options['lora_rank'] > 0) on JSON Lines or text data and writes the model (or adapter) GGUF; returns the report. Use edgelm.finetune (keyword arguments).
    """

def distill(teacher: Model, train: str, output: str, prune_layers: int, val: str | None = None, options: dict = {}, on_step: object | None = None, on_epoch: object | None = None, on_eval: object | None = None, on_teacher_progress: object | None = None) -> dict:
    """
    A student pruned from the teacher, trained to mimic it (edgelm distill); returns the report. Use edgelm.distill (keyword arguments).
    """

def train_classifier(model: Model, train: str, val: str, output: str, options: dict = {}, on_epoch: object | None = None) -> dict:
    """
    Trains an intent head on the model's features (edgelm intent train); returns the report. Use edgelm.train_classifier (keyword arguments).
    """

class Classifier:
    """An intent head bound to its backbone model, ready to classify text."""

    def __init__(self, model: Model, head_path: str, n_threads: int = 1, max_batch: int = 16) -> None:
        """
        Loads the head (a GGUF written by edgelm intent train) and checks it was trained on this model.
        """

    @property
    def labels(self) -> list[str]: ...

    @property
    def oos_threshold(self) -> float: ...

    def classify(self, text: str, top_k: int = 1) -> dict:
        """
        {'intent', 'confidence', 'oos', 'top': [(label, probability), ...]}; intent is 'oos' when the top probability is below the head's threshold.
        """

    def classify_batch(self, texts: Sequence[str], top_k: int = 1) -> list:
        """classify() of several texts, run in batches: one dict per text."""

class Error(RuntimeError):
    pass

def resolve_model_path(name_or_path: str) -> str:
    """
    A path that exists as is; otherwise a model-cache alias ("smollm2") or file name in the cache.
    """

def json_schema_to_grammar(schema_json: str) -> str:
    """
    GBNF for the JSON documents a JSON Schema (given as JSON text) accepts.
    """

def json_object_grammar() -> str:
    """GBNF for any JSON object."""

class Model:
    """
    A loaded GGUF model: immutable, shareable between sessions and threads.
    """

    @staticmethod
    def load(path: str) -> Model:
        """
        Loads a GGUF file (or a model-cache alias such as "smollm2"). Raises FileNotFoundError for a missing file and ValueError for a corrupt or unsupported one.
        """

    @property
    def path(self) -> str: ...

    @property
    def arch(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def n_embd(self) -> int: ...

    @property
    def n_layer(self) -> int: ...

    @property
    def n_ctx_train(self) -> int: ...

    @property
    def n_params(self) -> int: ...

    @property
    def chat_template(self) -> str | None: ...

    @property
    def bos(self) -> int:
        """BOS token id (-1: none)"""

    @property
    def eos(self) -> int:
        """EOS token id (-1: none)"""

    @property
    def add_bos(self) -> bool:
        """whether the model's metadata asks for BOS before a prompt"""

    def is_eog(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, EOT, <|im_end|>, ...)."""

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        """
        Token ids of UTF-8 text. add_bos: BOS first when the model's metadata asks for it; special: recognise control tokens such as <|im_start|> in the text.
        """

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> bytes:
        """
        The text of token ids as UTF-8 bytes (a character split by the ids comes back as U+FFFD).
        """

    def token_to_piece(self, token: int, special: bool = False) -> bytes:
        """The raw bytes of one token."""

    def render_chat(self, messages_json: str, add_generation_prompt: bool = True) -> str:
        """
        The prompt text of a conversation (a JSON list of messages), rendered with the model's chat template as transformers' apply_chat_template does.
        """

class Sampler:
    """
    Token sampling: greedy, temperature, top-k, top-p, min-p, penalties; seeded.
    """

    def __init__(self, temperature: float = 0.800000011920929, top_k: int = 40, top_p: float = 0.949999988079071, min_p: float = 0.05000000074505806, repeat_penalty: float = 1.0, repeat_last_n: int = 64, presence_penalty: float = 0.0, frequency_penalty: float = 0.0, seed: int = 15560218, grammar: str | None = None, model: Model | None = None) -> None:
        """
        temperature <= 0 is greedy. grammar: GBNF text that every sampled token must follow (needs model). Raises ValueError naming an out-of-range parameter or a grammar error.
        """

    def sample(self, logits: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)]) -> int:
        """The next token drawn from n_vocab logits (a float32 array)."""

    def accept(self, token: int) -> None:
        """Feeds a chosen token to the penalty window and the grammar."""

    def accept_prompt(self, tokens: Sequence[int]) -> None:
        """Feeds prompt tokens to the penalty window (not the grammar)."""

    def reset(self) -> None: ...

    @property
    def grammar_complete(self) -> bool | None:
        """None without a grammar; else whether the text so far is complete."""

class Drafter:
    """Proposes tokens for speculative decoding."""

    @staticmethod
    def from_model(draft: Model, target: Model, n_ctx: int = 2048, n_threads: int = 0) -> Drafter:
        """
        A smaller model with the target's vocabulary drafts; raises ValueError when the vocabularies differ.
        """

    @staticmethod
    def lookup(ngram_min: int = 2, ngram_max: int = 4) -> Drafter:
        """
        Prompt lookup: proposes what followed the latest earlier occurrence of the last n tokens.
        """

    def describe(self) -> str: ...

class Session:
    """
    KV cache, scratch and threads for running a model. Arrays it returns are read-only views of its own buffers: valid until the next call on the session (copy to keep).
    """

    def __init__(self, model: Model, n_ctx: int = 2048, n_threads: int = 0, n_batch: int = 256, n_seq: int = 1, n_layers: int = 0, kv_type: str = 'f16', lora: Sequence[tuple[str, float]] = []) -> None:
        """
        n_threads 0: all cores. n_layers > 0 runs only the first n_layers blocks (early exit). lora: [(adapter_path, scale), ...].
        """

    @property
    def model(self) -> Model: ...

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_threads(self) -> int: ...

    def n_past(self, seq: int = 0) -> int: ...

    def tokens(self, seq: int = 0) -> list[int]:
        """Tokens in the KV cache of seq, in order."""

    def truncate(self, n_keep: int, seq: int = 0) -> None:
        """Drops cached positions from n_keep on."""

    def reuse_prefix(self, tokens: Sequence[int], seq: int = 0) -> int:
        """
        Keeps the longest cached prefix shared with tokens (one fewer when all match) and returns its length.
        """

    def eval(self, tokens: Sequence[int], seq: int = 0) -> Annotated[NDArray[numpy.float32], dict(shape=(None,), writable=False)]:
        """
        Appends tokens and returns the next-token logits: a read-only float32 view (n_vocab,).
        """

    def eval_all(self, tokens: Sequence[int], seq: int = 0) -> Annotated[NDArray[numpy.float32], dict(shape=(None, None), writable=False)]:
        """
        Like eval, with logits after every token: a read-only view (n_tokens, n_vocab).
        """

    def hidden(self, tokens: Sequence[int], seq: int = 0) -> Annotated[NDArray[numpy.float32], dict(shape=(None, None), writable=False)]:
        """
        Appends tokens and returns each one's final hidden state (after the output norm, or the last run block's output with early exit): a read-only view (n_tokens, n_embd).
        """

    def hidden_batch(self, texts: Sequence[Sequence[int]]) -> Annotated[NDArray[numpy.float32], dict(shape=(None, None), writable=False)]:
        """
        Hidden states of several texts (text i in sequence i from an empty cache), in as few passes as the batch allows: a read-only view (total tokens, n_embd), text after text.
        """

    def generate(self, prompt: Sequence[int], max_tokens: int, sampler: Sampler, on_token: Callable, drafter: Drafter | None = None) -> int:
        """
        Evaluates prompt after the cached tokens, then samples up to max_tokens tokens, calling on_token(id) -> bool for each (False stops). Stops at an end-of-generation token or a full context. Returns the number of tokens generated. The GIL is released while the model runs; Ctrl-C raises KeyboardInterrupt after the current token.
        """

def perplexity(model: Model, text: str, n_ctx: int = 512, n_chunks: int = -1, n_threads: int = 0) -> dict:
    """
    Perplexity of text as llama.cpp's perplexity tool computes it: {'ppl', 'stderr', 'mean_nll', ...}.
    """

def bench(model: Model, n_prompt: Sequence[int] = [512], n_gen: Sequence[int] = [128], threads: Sequence[int] = [1, 2], reps: int = 5, n_batch: int = 512, kv_type: str = 'f16') -> list:
    """
    Prompt (ppN) and generation (tgN) speed as `edgelm bench` and llama-bench measure them: one dict per test and thread count, {'test', 'threads', 'median_ts', 'min_ts', 'max_ts', 'samples_ts', ...} in tokens/s. Not interruptible: keep reps and lengths small in interactive use.
    """

def quantize(input: str, output: str, type: str = 'q8_0', n_threads: int = 0) -> dict:
    """
    Writes a quantized copy of a GGUF model (atomically); returns sizes and notes.
    """

def convert(hf_dir: str, output: str, type: str = 'f16', n_threads: int = 0) -> dict:
    """
    Converts a Hugging Face checkpoint directory (config.json, tokenizer.json, *.safetensors) to a GGUF file of the given type (f32, f16, bf16 or any type quantize takes), as `edgelm convert` does; returns {'arch', 'tokenizer_model', 'tensors', 'bytes_out', 'notes', ...}.
    """

class Detector:
    """
    Streaming anomaly detector for one sensor series: push samples, get scores in [0, 1].
    """

    def __init__(self, config_json: str | None = None) -> None:
        """config_json: a JSON object of settings (as `edgelm anomaly --config`)."""

    @overload
    def push(self, timestamps_ms: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], values: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)]) -> Annotated[NDArray[numpy.float32], dict(shape=(None,))]:
        """
        Feeds samples in order (int64 milliseconds, float32 values); returns one score per sample.
        """

    @overload
    def push(self, timestamps_ms: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], values: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu', writable=False)]) -> Annotated[NDArray[numpy.float32], dict(shape=(None,))]:
        """
        Several sensors at once: values is float32 (n, channels), channels as the configuration's.
        """

    @property
    def channels(self) -> int: ...

    def state(self) -> bytes:
        """
        The whole state as bytes (configuration included), for Detector.from_state: the same edgelm build on the same CPU architecture continues exactly where this one is.
        """

    @staticmethod
    def from_state(state: bytes) -> Detector:
        """
        A detector restored from state() bytes; ValueError for damaged or foreign bytes.
        """

    def __getstate__(self) -> bytes: ...

    def __setstate__(self, arg: bytes, /) -> None: ...

    @property
    def samples_seen(self) -> int: ...

    @property
    def alarm_threshold(self) -> float: ...

    def copy(self) -> Detector:
        """
        A snapshot of the whole state: a detector that continues exactly where this one is.
        """

    def __copy__(self) -> Detector: ...

    def __deepcopy__(self, memo: object) -> Detector: ...
