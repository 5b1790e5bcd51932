#!/usr/bin/env bash
# Sets up (fetches the default model and builds the default corpus if needed), then runs the
# whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
python3 -m unittest discover -s scripts/corpus -q
cargo fmt --all -- --check
# Release: the numeric tests run tens of times slower without optimisation.
cargo test --release --workspace
