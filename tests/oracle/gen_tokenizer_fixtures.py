#!/usr/bin/env python3
"""Generate tokenizer fixtures from llama.cpp (through llama-cpp-python) for edgelm's tests.

    pip install llama-cpp-python gguf
    python3 tests/oracle/gen_tokenizer_fixtures.py            # writes tests/fixtures/tokenizer/*.json

Inputs: the SmolLM2-135M-Instruct GGUF from the model cache ($EDGELM_MODELS, default
~/.cache/edgelm/models; scripts/fetch-models.sh puts it there) and the corpus
tests/oracle/strings.json (a list of strings; {"hex": ..., "note": ...} entries are raw bytes that
are not valid UTF-8).

Outputs (committed, so the default test run needs neither Python nor llama.cpp):
  smollm2.json               every corpus string tokenized with parse_special off and on (and
                             add_special on for a subset), llama.cpp's detokenization of the ids
                             (detok / detok_special, left out when equal to the input),
                             token_to_piece for every id that occurs plus every special token, the
                             vocabulary facts (BOS/EOS/EOT, EOG and control ids) and the model's
                             SHA-256.
  smollm2_pretokenizers.json the same vocabulary re-labelled with other `tokenizer.ggml.pre`
                             names (written to temporary vocab-only GGUFs), so that the split
                             patterns of those pre-tokenizers are checked against llama.cpp too.
"""
import ctypes
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import llama_cpp

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests/oracle/strings.json"
OUT_DIR = ROOT / "tests/fixtures/tokenizer"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Pre-tokenizer names whose split patterns we support besides the model's own "smollm".
OTHER_PRE_NAMES = ["gpt-2", "default", "llama-bpe", "qwen2", "starcoder", "falcon"]


def model_path() -> Path:
    cache = Path(os.environ.get("EDGELM_MODELS", Path.home() / ".cache/edgelm/models"))
    path = cache / MODEL_FILE
    if not path.exists():
        sys.exit(f"{path} not found: run scripts/fetch-models.sh first")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_corpus():
    """Returns (bytes, note) pairs."""
    out = []
    for entry in json.loads(CORPUS.read_text(encoding="utf-8")):
        if isinstance(entry, str):
            out.append((entry.encode("utf-8"), None))
        else:
            out.append((bytes.fromhex(entry["hex"]), entry.get("note")))
    return out


def text_field(prefix: str, data: bytes) -> dict:
    """Valid UTF-8 is stored readable under `prefix`; anything else as hex under `prefix_hex`."""
    try:
        return {prefix: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {prefix + "_hex": data.hex()}


_log_callback = llama_cpp.llama_log_callback(lambda level, text, user: None)


class Vocab:
    """A vocab-only llama.cpp model, called through the C API (the high-level wrapper pads pieces)."""

    def __init__(self, path: Path):
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p())
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            sys.exit(f"llama.cpp could not load {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)

    def close(self):
        llama_cpp.llama_model_free(self.model)

    def tokenize(self, data: bytes, add_special: bool, parse_special: bool) -> list:
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        assert n >= 0, f"tokenize failed for {data!r}"
        return list(buf[:n])

    def piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        assert 0 <= n <= len(buf)
        return buf.raw[:n]

    def detokenize(self, ids: list, special: bool) -> bytes:
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        cap = 64 + 64 * len(ids)
        buf = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), buf, cap, False, special)
        assert 0 <= n <= cap
        return buf.raw[:n]


def has_special_text(data: bytes) -> bool:
    return b"<|" in data or b"<repo" in data or b"<file" in data or b"<jupyter" in data or b"<issue" in data \
        or b"<gh_" in data or b"<empty" in data


def smollm2_fixture(path: Path, corpus) -> dict:
    v = Vocab(path)
    cases = []
    used = set()
    for i, (data, note) in enumerate(corpus):
        combos = [(False, False), (False, True)]
        if i % 5 == 0 or has_special_text(data):
            combos.append((True, True))
        for add_special, parse_special in combos:
            ids = v.tokenize(data, add_special, parse_special)
            used.update(ids)
            case = text_field("text", data)
            if note:
                case["note"] = note
            case.update({"add_special": add_special, "parse_special": parse_special, "ids": ids})
            # Left out when equal to the input, which is the usual case.
            for field, special in (("detok", False), ("detok_special", True)):
                detok = v.detokenize(ids, special)
                if detok != data:
                    case.update(text_field(field, detok))
            cases.append(case)

    control = [t for t in range(v.n_vocab) if llama_cpp.llama_vocab_is_control(v.vocab, t)]
    eog = [t for t in range(v.n_vocab) if llama_cpp.llama_vocab_is_eog(v.vocab, t)]
    # Every id that occurs, every special one, and a spread over the whole vocabulary.
    piece_ids = sorted(used | set(control) | set(range(0, v.n_vocab, 97)) | {v.n_vocab - 1})
    pieces = {str(t): {"plain_hex": v.piece(t, False).hex(), "special_hex": v.piece(t, True).hex()}
              for t in piece_ids}
    facts = {
        "n_vocab": v.n_vocab,
        "bos": llama_cpp.llama_vocab_bos(v.vocab),
        "eos": llama_cpp.llama_vocab_eos(v.vocab),
        "eot": llama_cpp.llama_vocab_eot(v.vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v.vocab)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v.vocab)),
        "eog_ids": eog,
        "control_ids": control,
    }
    v.close()
    return {"vocab": facts, "cases": cases, "pieces": pieces}


def write_relabelled_copy(src: Path, dst: Path, pre: str):
    """A vocab-only GGUF: every metadata key of `src`, no tensors, tokenizer.ggml.pre = `pre`."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or key == "tokenizer.ggml.pre":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub)
    writer.add_string("tokenizer.ggml.pre", pre)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def pretokenizer_fixture(path: Path, corpus) -> dict:
    """texts: the corpus; pre_tokenizers: name -> ids of each text (parse_special on)."""
    families = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in OTHER_PRE_NAMES:
            copy = Path(tmp) / f"vocab-{pre}.gguf"
            write_relabelled_copy(path, copy, pre)
            v = Vocab(copy)
            families[pre] = [v.tokenize(data, False, True) for data, _ in corpus]
            v.close()
    return {"texts": [text_field("text", data) for data, _ in corpus], "pre_tokenizers": families}


def provenance(generator: str, model_file: str, path: Path) -> dict:
    """The fields every fixture starts with: which script and llama.cpp made it, from which file."""
    return {
        "generator": generator,
        "llama_cpp_python": llama_cpp.__version__,
        "model_file": model_file,
        "model_sha256": sha256(path),
        "model_bytes": path.stat().st_size,
    }


def write_json(path: Path, obj: dict):
    """One line per case / piece / family entry: compact, yet readable in a diff."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    items = list(obj.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if isinstance(value, list) and value:
            lines.append(f"{dump(key)}:[")
            lines += [dump(v) + ("," if j + 1 < len(value) else "") for j, v in enumerate(value)]
            lines.append("]" + comma)
        elif isinstance(value, dict) and value and all(isinstance(v, (list, dict)) for v in value.values()):
            lines.append(f"{dump(key)}:{{")
            sub = list(value.items())
            for j, (k, v) in enumerate(sub):
                if isinstance(v, list):
                    lines.append(f"{dump(k)}:[")
                    lines += [dump(x) + ("," if m + 1 < len(v) else "") for m, x in enumerate(v)]
                    lines.append("]" + ("," if j + 1 < len(sub) else ""))
                else:
                    lines.append(f"{dump(k)}:{dump(v)}" + ("," if j + 1 < len(sub) else ""))
            lines.append("}" + comma)
        else:
            lines.append(f"{dump(key)}:{dump(value)}{comma}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main():
    path = model_path()
    corpus = load_corpus()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    common = provenance("tests/oracle/gen_tokenizer_fixtures.py", MODEL_FILE, path)
    fixture = dict(common)
    fixture.update(smollm2_fixture(path, corpus))
    write_json(OUT_DIR / "smollm2.json", fixture)
    pre = dict(common)
    pre.update(pretokenizer_fixture(path, corpus))
    write_json(OUT_DIR / "smollm2_pretokenizers.json", pre)
    print(f"{len(fixture['cases'])} cases from {len(corpus)} strings; "
          f"{len(pre['pre_tokenizers'])} other pre-tokenizers -> {OUT_DIR}")


if __name__ == "__main__":
    main()
