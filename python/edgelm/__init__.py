"""edgelm for Python: small language models on the CPU.

    from edgelm import Llama
    llm = Llama(model_path="smollm2.gguf")
    print(llm("The capital of France is", max_tokens=16, temperature=0)["choices"][0]["text"])

`Llama` takes the arguments and returns the dicts llama-cpp-python's `Llama` does, so a script
written for llama-cpp-python switches by changing its import. `Model`, `Session` and `Sampler`
are edgelm's own lower level: numpy views of logits and hidden states, a generation loop with a
callback. `finetune`, `distill` and `train_classifier` train (a Python callback per step), and
`Classifier` serves an intent head. Errors from the library arrive as `FileNotFoundError` (a missing file), `ValueError`
(a bad argument, a corrupt file) or `edgelm.Error` (a RuntimeError) with the same one-line
message the command line prints.
"""
from ._edgelm import (  # noqa: F401
    Classifier,
    Detector,
    Drafter,
    Error,
    Model,
    Sampler,
    Session,
    bench,
    convert,
    json_object_grammar,
    json_schema_to_grammar,
    perplexity,
    quantize,
    resolve_model_path,
)
from .embed import embed  # noqa: F401
from .llama import Llama, LlamaPromptLookupDecoding  # noqa: F401
from .training import classifier, distill, finetune, train_classifier  # noqa: F401

__all__ = [
    "Llama", "LlamaPromptLookupDecoding", "Model", "Session", "Sampler", "Drafter", "Detector", "Error",
    "Classifier", "classifier", "finetune", "distill", "train_classifier",
    "bench", "convert", "embed", "perplexity", "quantize", "json_schema_to_grammar", "json_object_grammar", "resolve_model_path",
]
__version__ = "0.1.0"
