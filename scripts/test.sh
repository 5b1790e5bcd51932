#!/usr/bin/env bash
# Sets up (fetches the default model if needed), then runs the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo fmt --all -- --check
# Release: the numeric tests run tens of times slower without optimisation.
cargo test --release --workspace
