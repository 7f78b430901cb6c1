#!/usr/bin/env python3
"""The documentation's links: every relative link in README.md, docs/*.md and src/**/README.md
names a file or folder inside the repository, a link to a heading (FILE.md#heading) names a
heading that exists, and no link leaves the repository. Reads the source tree from
EDGELM_SOURCE_DIR (harness.SRC); needs no binary."""
import glob
import os
import re
import unicodedata
from urllib.parse import unquote

from harness import SRC, check, run_all

ROOT = os.path.realpath(SRC)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]*(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*\b(?:href|src)\s*=\s*\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def doc_files():
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "src", "**", "README.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * len(m.group(1))
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, re.sub(r"(`+)(?:(?!\1).)+?\1", lambda c: " " * len(c.group(0)), line)


def links(path):
    """(line number, target) of every link and image in a Markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for n, line in prose_lines(text):
        for pattern in (INLINE_LINK, HTML_LINK):
            for m in pattern.finditer(line):
                yield n, m.group(1)
        m = REFERENCE_DEF.match(line)
        if m:
            yield n, m.group(1)


def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    s = re.sub(r"<[^>]+>", "", s).replace("`", "").lower()
    s = "".join(c for c in s if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return s.replace(" ", "-")


def anchors(path):
    seen = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for _, line in prose_lines(text):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        k = seen.get(base, 0)
        seen[base] = k + 1
        yield base if k == 0 else f"{base}-{k}"


def resolve(doc, target):
    """(absolute path or None for a same-file anchor, anchor or None)."""
    path, _, anchor = target.partition("#")
    path = unquote(path)
    if not path:
        return None, anchor or None
    base = ROOT if path.startswith("/") else os.path.dirname(doc)
    return os.path.realpath(os.path.join(base, path.lstrip("/"))), anchor or None


def relative_links():
    for doc in doc_files():
        for n, target in links(doc):
            if target and not EXTERNAL.match(target):
                yield doc, n, target


def where(doc, n):
    return f"{os.path.relpath(doc, ROOT)}:{n}"


def test_the_documents_exist():
    names = {os.path.relpath(f, ROOT) for f in doc_files()}
    check("README.md" in names, "README.md is missing")
    check(any(n.startswith("docs" + os.sep) for n in names), "docs/*.md is missing")
    check(any(n.startswith("src" + os.sep) for n in names), "no src/**/README.md found")


def test_the_parser_finds_links():
    # Guards the test itself: the README links to docs/, so a parser that finds nothing is broken.
    found = [t for d, _, t in relative_links() if os.path.basename(d) == "README.md" and
             os.path.dirname(d) == ROOT]
    check(any(t.startswith("docs/") for t in found), f"no docs/ link found in README.md: {found}")


def test_no_link_leaves_the_repository():
    bad = []
    for doc, n, target in relative_links():
        path, _ = resolve(doc, target)
        if path is not None and os.path.commonpath([ROOT, path]) != ROOT:
            bad.append(f"{where(doc, n)}: {target}")
    check(not bad, "links that leave the repository:\n  " + "\n  ".join(bad))


def test_every_relative_link_resolves():
    bad = []
    for doc, n, target in relative_links():
        path, _ = resolve(doc, target)
        if path is not None and os.path.commonpath([ROOT, path]) == ROOT and not os.path.exists(path):
            bad.append(f"{where(doc, n)}: {target}")
    check(not bad, "links to missing files:\n  " + "\n  ".join(bad))


def test_every_heading_anchor_exists():
    bad = []
    cache = {}
    for doc, n, target in relative_links():
        path, anchor = resolve(doc, target)
        if anchor is None:
            continue
        md = doc if path is None else path
        if not (md.endswith(".md") and os.path.isfile(md)):
            continue
        if md not in cache:
            cache[md] = set(anchors(md))
        if anchor.lower() not in cache[md]:
            bad.append(f"{where(doc, n)}: {target} (headings: {', '.join(sorted(cache[md]))})")
    check(not bad, "links to missing headings:\n  " + "\n  ".join(bad))


def test_slug_follows_github():
    check(slug("The 8-bit KV cache") == "the-8-bit-kv-cache", slug("The 8-bit KV cache"))
    check(slug("`edgelm serve`: an OpenAI-compatible HTTP server") == "edgelm-serve-an-openai-compatible-http-server",
          slug("`edgelm serve`: an OpenAI-compatible HTTP server"))
    check(slug("Speed, side by side with llama.cpp") == "speed-side-by-side-with-llamacpp",
          slug("Speed, side by side with llama.cpp"))


if __name__ == "__main__":
    run_all(globals())
