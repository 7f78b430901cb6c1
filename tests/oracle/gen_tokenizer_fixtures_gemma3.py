#!/usr/bin/env python3
"""Generate the Gemma 3 (SentencePiece-style vocabulary) tokenizer fixtures from llama.cpp.

    pip install llama-cpp-python gguf
    scripts/fetch-models.sh gemma3
    python3 tests/oracle/gen_tokenizer_fixtures_gemma3.py   # writes tests/fixtures/tokenizer/gemma3*.json

Inputs: gemma-3-270m-q4_k_m.gguf from the model cache ($EDGELM_MODELS, default
~/.cache/edgelm/models), the shared corpus tests/oracle/strings.json, and EXTRA_STRINGS and
EXTRA_BYTES below (Gemma's own special tokens, HTML tags and whitespace runs that are
user-defined tokens there, literal "▁", byte-fallback and cut-short UTF-8 cases). The
vocabulary is loaded vocab-only.

Outputs (committed, so the default test run needs neither Python nor llama.cpp):
  gemma3.json               every string tokenized with add_special off/on x parse_special
                            off/on, llama.cpp's detokenization (llama_detokenize with
                            remove_special off; detok / detok_special, left out when equal to the
                            input), token_to_piece for every id that occurs, the first 400 ids,
                            a sample of the control tokens and a spread over the vocabulary, the vocabulary facts and the
                            model's SHA-256.
  gemma3_space_prefix.json  the same vocabulary with tokenizer.ggml.add_space_prefix = true (as
                            Llama 2 / Mistral / Phi-3 vocabularies have it), written to a
                            temporary vocab-only GGUF: ids and detokenizations for the strings
                            with parse_special off/on and add_special off/on.
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_tokenizer_fixtures import (  # noqa: E402  (the shared helpers)
    Vocab, load_corpus, provenance, text_field, write_json)

import llama_cpp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests/fixtures/tokenizer"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
EXTRA_STRINGS = [
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>",
    "<eos>",
    "<pad><unk><mask>",
    "text<end_of_turn>more",
    "start_of_turn>",
    "<start_of_image> an image <end_of_image>",
    "[multimodal] marker",
    "<table><tr><td>1</td></tr></table>",
    "<b>bold</b> <i>it</i> <s>strike</s>",
    "<h1>Title</h1>\n<blockquote>q</blockquote>",
    "a  b   c    d",
    "a\tb\t\tc\t\t\td",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    " " * 40 + "x",
    "\u2581literal lower one eighth block",
    "\u2581\u2581 two of them\u2581",
    "<0x41> is not a byte here",
    "<unused0> <unused99>",
    "\x00\x01\x02 control bytes",
    "\x7f\x1b[0m escape",
    "\U0001F9EC\U0001FAE0\U0001FAE8 newer emoji",
    "\U00020000\U0002A6D6 CJK extension B",
    "\uE000\uF8FF private use",
    " ",
    "  ",
    "   leading three",
    "trailing three   ",
]
# Raw bytes: a lead byte whose sequence is cut short takes the escaped space after it into the
# same "character" (so it comes back as "▁", not " ").
EXTRA_BYTES = [
    (bytes.fromhex("f02061"), "truncated 4-byte lead before a space"),
    (bytes.fromhex("78c320"), "truncated 2-byte lead before a space"),
]
# The add_special x parse_special combinations recorded for every string.
PREFIX_COMBOS = [(False, False), (False, True), (True, False), (True, True)]


def model_path() -> Path:
    import os

    cache = Path(os.environ.get("EDGELM_MODELS", Path.home() / ".cache/edgelm/models"))
    path = cache / MODEL_FILE
    if not path.exists():
        sys.exit(f"{path} not found: run scripts/fetch-models.sh gemma3 first")
    return path


def strings():
    out = load_corpus()
    out += [(s.encode("utf-8"), "gemma3 extra") for s in EXTRA_STRINGS]
    out += [(data, "gemma3 extra: " + note) for data, note in EXTRA_BYTES]
    return out


def tokenize_cases(v: Vocab, corpus, used: set) -> list:
    cases = []
    for data, note in corpus:
        for add_special, parse_special in PREFIX_COMBOS:
            ids = v.tokenize(data, add_special, parse_special)
            used.update(ids)
            case = text_field("text", data)
            if note:
                case["note"] = note
            case.update({"add_special": add_special, "parse_special": parse_special, "ids": ids})
            for field, special in (("detok", False), ("detok_special", True)):
                detok = v.detokenize(ids, special)
                if detok != data:
                    case.update(text_field(field, detok))
            cases.append(case)
    return cases


def gemma3_fixture(path: Path, corpus) -> dict:
    v = Vocab(path)
    used = set()
    cases = tokenize_cases(v, corpus, used)
    control = [t for t in range(v.n_vocab) if llama_cpp.llama_vocab_is_control(v.vocab, t)]
    eog = [t for t in range(v.n_vocab) if llama_cpp.llama_vocab_is_eog(v.vocab, t)]
    # Every id that occurs, the first 400 (the special and user-defined ones and the byte
    # tokens), a sample of the 6,000 <unusedN> control tokens, and a spread over the vocabulary.
    piece_ids = sorted(used | set(range(0, 400)) | {t for t in control if t % 37 == 0}
                       | set(range(0, v.n_vocab, 211)) | {v.n_vocab - 1})
    pieces = {str(t): {"plain_hex": v.piece(t, False).hex(), "special_hex": v.piece(t, True).hex()}
              for t in piece_ids}
    facts = {
        "n_vocab": v.n_vocab,
        "type": llama_cpp.llama_vocab_type(v.vocab),  # 1 = LLAMA_VOCAB_TYPE_SPM
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


def write_copy_with_space_prefix(src: Path, dst: Path):
    """A vocab-only GGUF: every metadata key of `src`, no tensors, add_space_prefix = true."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "tokenizer.ggml.add_space_prefix"):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub)
    writer.add_bool("tokenizer.ggml.add_space_prefix", True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def space_prefix_fixture(path: Path, corpus) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "vocab-space-prefix.gguf"
        write_copy_with_space_prefix(path, copy)
        v = Vocab(copy)
        cases = tokenize_cases(v, corpus, set())
        v.close()
    return {"add_space_prefix": True, "cases": cases}


def main():
    path = model_path()
    corpus = strings()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    common = provenance("tests/oracle/gen_tokenizer_fixtures_gemma3.py", MODEL_FILE, path)
    fixture = dict(common)
    fixture.update(gemma3_fixture(path, corpus))
    write_json(OUT_DIR / "gemma3.json", fixture)
    prefix = dict(common)
    prefix.update(space_prefix_fixture(path, corpus))
    write_json(OUT_DIR / "gemma3_space_prefix.json", prefix)
    print(f"{len(fixture['cases'])} + {len(prefix['cases'])} cases from {len(corpus)} strings -> {OUT_DIR}")


if __name__ == "__main__":
    main()
