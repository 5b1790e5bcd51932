#!/usr/bin/env bash
# Sets up, builds, and runs saelab's main job on the default model.
# (Today: the model host. Training and evaluation join this script as they land.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release -p saelab-cli
saelab=target/release/saelab

echo "== hook points of the default model (first 12 of $($saelab hooks | wc -l))"
$saelab hooks | head -n 12
echo
echo "== greedy continuation of \"The capital of France is\""
$saelab generate --prompt "The capital of France is" --max-tokens 12
echo
echo
echo "== the default corpus (documents, bytes, tokens, 128-token windows)"
$saelab corpus --corpus default --stats
echo
echo "== activation statistics over scripts/sample.txt"
$saelab activations --hook blocks.6.hook_resid_post --hook blocks.6.hook_mlp_out --text scripts/sample.txt
