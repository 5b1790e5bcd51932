#!/usr/bin/env bash
# saelab's main job on the embedded default, end to end: set up, harvest activations of the
# default model (SmolLM2-135M-Instruct, blocks.6.hook_resid_post) from the default corpus,
# train a small family of dictionaries at once from that cache, evaluate them (spliced CE/KL,
# baselines, every metric of METRICS.md), write the report page, and build the feature
# database that `saelab serve` browses. About 15 minutes on two cores from a fresh clone,
# build included.
#
#   scripts/demo.sh [OUT]        (default OUT: runs/demo; SAELAB_DEMO_TOKENS sets the harvest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-runs/demo}
tokens=${SAELAB_DEMO_TOKENS:-400000}
eval_tokens=${SAELAB_DEMO_EVAL_TOKENS:-4096}
features_tokens=${SAELAB_DEMO_FEATURES_TOKENS:-200000}
hook=blocks.6.hook_resid_post
start=$(date +%s)
elapsed() { echo "[$(($(date +%s) - start)) s]"; }

scripts/setup.sh
cargo build --release -p saelab-cli
saelab=target/release/saelab
# The README's examples call `saelab`: install the command (into cargo's bin folder, reusing
# the build just made, a copy of a few seconds).
cargo install --quiet --locked --path crates/cli --target-dir target
if [[ "$(command -v saelab)" != "$(cd "${CARGO_HOME:-$HOME/.cargo}/bin" && pwd)/saelab" ]]; then
  echo "note: saelab is installed in ${CARGO_HOME:-$HOME/.cargo}/bin, which is not first on your PATH;"
  echo "      add it (export PATH=\"${CARGO_HOME:-$HOME/.cargo}/bin:\$PATH\") or call $saelab"
fi
echo "$(elapsed) built"

echo "== activations: $tokens tokens of the shuffled default corpus at $hook"
# Rerunning resumes (or reuses) the cache.
$saelab harvest --hook "$hook" --corpus default --shuffle 1 --tokens "$tokens" --out "$out/cache"
echo "$(elapsed) harvested"

echo "== training three dictionaries at once from the cache"
# min_density: a firing floor for TopK (README, "Kinds"); on this budget it keeps all but
# about 1% of the latents firing on held-out tokens at no cost in fvu.
rm -rf "$out/run" # the demo's own run folder: a rerun starts it afresh
$saelab train --cache "$out/cache" --out "$out/run" --holdout-windows 64 --pca 32 \
  --sae topk:k=32,width=16384,min_density=0.00048828125,name=topk-16k \
  --sae topk:k=32,width=4096,min_density=0.00048828125,name=topk-4k \
  --sae relu:l1=2,width=4096,name=relu-4k
echo "$(elapsed) trained"

echo "== evaluation on the first $eval_tokens tokens of the default corpus"
$saelab eval --corpus default --tokens "$eval_tokens" --json "$out/run/eval.json" \
  --sae "$out/run/final/topk-16k" --sae "$out/run/final/topk-4k" --sae "$out/run/final/relu-4k"
echo "$(elapsed) evaluated"

echo "== feature database: $features_tokens tokens of the cache through the three dictionaries"
$saelab features --cache "$out/cache" --tokens "$features_tokens" --db "$out/features.db" --force \
  --sae "$out/run/final/topk-16k" --sae "$out/run/final/topk-4k" --sae "$out/run/final/relu-4k"
echo "$(elapsed) done"
echo
echo "open $out/run/report.html in a browser"
echo "browse the features: $saelab serve $out/features.db   (then open the URL it prints)"
