#!/usr/bin/env bash
# Sets up (fetches the default model and builds the default corpus if needed), then runs the
# whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
python3 -m unittest discover -s scripts/corpus -q
cargo fmt --all -- --check
# The report's and the feature browser's tests open their pages in headless Chromium (and
# fail without it): SAELAB_CHROMIUM names the binary, else it is looked up on the PATH and,
# where apt is, installed.
if [ -z "${SAELAB_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 &&
  ! command -v chromium-browser >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test: error: headless Chromium is needed and there is no apt-get to install it:" \
      "install Chromium with this system's package manager and rerun, or set" \
      "SAELAB_CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
  as_root=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    as_root=sudo
  fi
  $as_root apt-get update
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
# Release: the numeric tests run tens of times slower without optimisation.
cargo test --release --workspace
# The Python package: built with maturin, then its tests (against the binary just built).
scripts/python_tests.sh
