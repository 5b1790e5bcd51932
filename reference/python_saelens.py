#!/usr/bin/env python3
"""Dictionaries trained and saved from Python (`import saelab`), loaded by the real SAELens
package, for the Python tests (`crates/python/tests/test_saelens_fixture.py`).

saelab (the wheel built from crates/python, installed in this environment) harvests the tiny
Llama fixture's `blocks.1.hook_resid_post` over 4,096 wiki tokens, trains one dictionary of each
architecture SAELens loads (TopK, standard ReLU, JumpReLU, Gated, and BatchTopK, saved as
JumpReLU) and saves each with `Sae.save`. SAELens's `SAE.load_from_disk` loads each folder and
encodes and decodes 16 cached activation rows; saelab encodes the same rows given as PyTorch
tensors (read through DLPack). The script fails unless both agree within 1e-5, and writes each
folder with an `expected.json` (inputs, SAELens's features and reconstructions).

Usage (from the repository root, with SAELAB_HOME holding the default corpus):
    (cd crates/python && maturin build --release) && pip install target/wheels/saelab-*.whl
    python reference/python_saelens.py [OUT_DIR]
"""

import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

import saelab

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "crates", "model", "tests", "fixtures", "tiny", "llama")
HOOK = "blocks.1.hook_resid_post"
SPECS = [
    "topk:k=4,width=64",
    "relu:width=48",
    "jumprelu:width=48",
    "gated:width=48",
    "batchtopk:k=4,width=64",
]
ROWS = 16
TOLERANCE = 1e-5


def main():
    from sae_lens import SAE

    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "crates", "python", "tests", "fixtures", "saelens")
    work = tempfile.mkdtemp()
    model = saelab.Model(TINY)
    cache = saelab.harvest(model, "wiki", HOOK, os.path.join(work, "cache"), tokens=4096, ctx=32, dtype="f32", progress=False)
    run = saelab.train(os.path.join(work, "run"), SPECS, cache=cache.path, batch=64, progress=False)
    batch = next(cache.windows(batch=2))
    x = np.ascontiguousarray(batch[HOOK].reshape(-1, model.d_model)[:ROWS])

    shutil.rmtree(out, ignore_errors=True)
    for name, ours in run.saes.items():
        folder = os.path.join(out, name)
        ours.save(folder)
        theirs = SAE.load_from_disk(folder, device="cpu")
        with torch.no_grad():
            xt = torch.from_numpy(x.copy())
            features = theirs.encode(xt)
            recon = theirs.decode(features)
        ours_features = ours.encode(xt)
        assert isinstance(ours_features, torch.Tensor), type(ours_features)
        diff_f = (ours_features - features).abs().max().item()
        diff_r = np.abs(ours.forward(x) - recon.numpy()).max()
        print(f"{name}: SAELens {type(theirs).__name__}, features max |diff| {diff_f:.2e}, "
              f"reconstructions {diff_r:.2e}, L0 {(features > 0).sum(1).float().mean():.1f}")
        assert diff_f < TOLERANCE and diff_r < TOLERANCE, name
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump({
                "inputs": x.tolist(),
                "features": features.tolist(),
                "reconstructions": recon.tolist(),
                "saelens_class": type(theirs).__name__,
            }, f)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
