#!/usr/bin/env bash
# Screenshots of feature-browser pages in headless Chromium, as documentation shows them:
#
#   scripts/feature_screenshots.sh DATABASE OUT_DIR PAGE...
#
# PAGE is a path of the browser, e.g. /d/carry-8k/f/4459 or "/d/carry-8k?sort=persistence".
# Each page is saved as OUT_DIR/<page with / ? = & as _>.png. Uses target/release/saelab
# (or $SAELAB_BIN) and chromium (or $SAELAB_CHROMIUM).
set -euo pipefail
fail() { echo "feature_screenshots: error: $*" >&2; exit 1; }
[[ $# -ge 3 ]] || fail "usage: $0 DATABASE OUT_DIR PAGE..."
db="$1" out="$2"
shift 2
[[ -f "$db" ]] || fail "$db: no such database"
bin="${SAELAB_BIN:-$(dirname "${BASH_SOURCE[0]}")/../target/release/saelab}"
[[ -x "$bin" ]] || fail "$bin is missing: build it with cargo build --release (or set SAELAB_BIN)"
chromium="${SAELAB_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[[ -n "$chromium" ]] || fail "headless Chromium is needed: install chromium or set SAELAB_CHROMIUM"
mkdir -p "$out"

log="$(mktemp)"
profile="$(mktemp -d)"
"$bin" serve --port 0 "$db" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$log" "$profile"' EXIT
url=""
for _ in $(seq 1 600); do
  url="$(grep -o 'http://[0-9.:]*' "$log" | head -n 1 || true)"
  [[ -n "$url" ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "saelab serve stopped"; }
  sleep 0.1
done
[[ -n "$url" ]] || { cat "$log" >&2; fail "saelab serve printed no URL within a minute"; }

for page in "$@"; do
  name="$(echo "${page#/}" | tr '/?=&' '____')"
  "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1280,2000 \
    --screenshot="$out/$name.png" "$url$page" >/dev/null 2>&1 ||
    fail "chromium could not render $url$page"
  echo "$out/$name.png"
done
