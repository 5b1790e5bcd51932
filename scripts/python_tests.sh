#!/usr/bin/env bash
# Builds the Python package (crates/python) with maturin into a virtual environment under
# target/ and runs its tests. Needs the release build of the workspace first (the tests
# compare against target/release/saelab); scripts/test.sh calls it after the Rust tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
env_dir="${SAELAB_PYENV:-target/pyenv}"
if [ ! -x "$env_dir/bin/python" ]; then
  python3 -m venv "$env_dir"
fi
# Build and test tools only; saelab itself is built here from source, never downloaded.
"$env_dir/bin/python" -m pip install -q --disable-pip-version-check \
  "maturin>=1.9,<2" "numpy>=1.21" pandas pytest
# shellcheck disable=SC1091
source "$env_dir/bin/activate"
(cd crates/python && maturin develop --release --quiet)
python -m pytest -q crates/python/tests
