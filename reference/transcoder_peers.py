#!/usr/bin/env python3
"""Transcoders made and read by the real peer packages, for saelab's import tests
(`crates/sae/tests/import.rs`).

- `sparsify_skip_transcoder/`: sparsify's `SparseCoder` with `TranscoderConfig(k=5,
  num_latents=40, skip_connection=True)`, random weights, written by its `save_to_disk`;
- `saelens_skip_transcoder/`, `saelens_jumprelu_transcoder/`: SAELens's `SkipTranscoder` and
  `JumpReLUTranscoder` with random weights, written by their `save_model`;
- with `--saelab DIR` (the output of `cargo run -p saelab-sae --example transcoder_fixture --
  DIR`): `saelab_topk_transcoder/` read by sparsify's `SparseCoder.load_from_disk` and
  `saelab_jumprelu_transcoder/` read by SAELens's `SAE.load_from_disk`.

Each folder gets an `expected.json` (the format of `peer_dictionaries.py`: inputs, dense
features, outputs under "reconstructions") computed by the package that reads it, with the
skip connection included. Inputs are redrawn until no pre-activation lies within 1e-3 of a
threshold, of zero, or (TopK) of the k-th largest value of its row.

Usage: python reference/transcoder_peers.py [--saelab DIR] [OUT_DIR]
"""

import argparse
import json
import os
import shutil

import torch

# CPU: sparsify's Triton decoder needs a GPU; its eager decoder is the same sum.
os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = 6
MARGIN = 1e-3
D, F = 16, 40


def clear_rows(gen, pre_fn, cut_fn, scale):
    rows = []
    while len(rows) < ROWS:
        x = torch.randn(1, D, generator=gen) * scale
        pre = pre_fn(x)[0]
        cuts = cut_fn(pre)
        if all(((pre - c).abs() > MARGIN).all() for c in cuts) and (pre.abs() > MARGIN).all():
            rows.append(x)
    return torch.cat(rows)


def write_expected(path, x, feats, out, **extra):
    e = {
        "d_in": D,
        "d_sae": feats.shape[1],
        "inputs": x.tolist(),
        "features": feats.tolist(),
        "reconstructions": out.tolist(),
    }
    e.update(extra)
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(e, f)


def kth_cuts(k):
    # The k-th and (k+1)-th largest values: a row whose pre-activations sit near either
    # could keep a different latent after rounding.
    return lambda pre: [pre.topk(k + 1).values[-2:].mean()] if pre.numel() > k else []


def sparsify_forward(sae, path, gen, scale):
    with torch.no_grad():
        pre_fn = lambda x: x @ sae.encoder.weight.T + sae.encoder.bias
        x = clear_rows(gen, pre_fn, kth_cuts(sae.cfg.k), scale)
        enc = sae.encode(x)
        feats = torch.zeros(ROWS, sae.num_latents).scatter_(1, enc.top_indices, enc.top_acts)
        out = sae(x).sae_out
    write_expected(path, x, feats, out)


def sparsify_made(out):
    from sparsify.config import TranscoderConfig
    from sparsify.sparse_coder import SparseCoder

    torch.manual_seed(5)
    sae = SparseCoder(D, TranscoderConfig(k=5, num_latents=F, skip_connection=True))
    with torch.no_grad():
        sae.encoder.weight.normal_(0, 0.5)
        sae.encoder.bias.normal_(0, 0.2)
        sae.W_dec.normal_(0, 0.4)
        sae.b_dec.normal_(0, 0.3)
        sae.W_skip.normal_(0, 0.2)
    dest = os.path.join(out, "sparsify_skip_transcoder")
    shutil.rmtree(dest, ignore_errors=True)
    sae.save_to_disk(dest)
    loaded = SparseCoder.load_from_disk(dest)
    sparsify_forward(loaded, dest, torch.Generator().manual_seed(6), 1.0)
    print("sparsify_skip_transcoder written by sparsify")


def saelens_forward(path, gen, scale):
    from sae_lens import SAE

    sae = SAE.load_from_disk(path, device="cpu")
    with torch.no_grad():
        threshold = getattr(sae, "threshold", None)
        pre_fn = lambda x: x @ sae.W_enc + sae.b_enc
        cut_fn = (lambda pre: [threshold]) if threshold is not None else (lambda pre: [])
        x = clear_rows(gen, pre_fn, cut_fn, scale)
        feats = sae.encode(x)
        out = sae(x)
    write_expected(path, x, feats, out)
    return sae


def saelens_made(out):
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.transcoder import (
        JumpReLUTranscoder,
        JumpReLUTranscoderConfig,
        SkipTranscoder,
        SkipTranscoderConfig,
    )

    torch.manual_seed(7)
    meta = dict(hook_name="blocks.1.ln2.hook_normalized", hook_name_out="blocks.1.hook_mlp_out")
    for name, cls, cfg_cls in [
        ("saelens_skip_transcoder", SkipTranscoder, SkipTranscoderConfig),
        ("saelens_jumprelu_transcoder", JumpReLUTranscoder, JumpReLUTranscoderConfig),
    ]:
        cfg = cfg_cls(d_in=D, d_sae=F, d_out=D, apply_b_dec_to_input=False,
                      metadata=SAEMetadata(**meta))
        sae = cls(cfg)
        with torch.no_grad():
            for p in sae.parameters():
                p.normal_(0, 0.3)
            if hasattr(sae, "threshold"):
                sae.threshold.uniform_(0.05, 0.4)
        dest = os.path.join(out, name)
        shutil.rmtree(dest, ignore_errors=True)
        sae.save_model(dest)
        loaded = saelens_forward(dest, torch.Generator().manual_seed(8), 1.0)
        print(f"{name} written by SAELens as {loaded.cfg.architecture()}")


def saelab_made(out, src):
    from sparsify.sparse_coder import SparseCoder

    for name in ("saelab_topk_transcoder", "saelab_jumprelu_transcoder"):
        dest = os.path.join(out, name)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(os.path.join(src, name), dest)
    dest = os.path.join(out, "saelab_topk_transcoder")
    sparsify_forward(SparseCoder.load_from_disk(dest), dest, torch.Generator().manual_seed(9), 2.0)
    print("saelab_topk_transcoder read by sparsify")
    dest = os.path.join(out, "saelab_jumprelu_transcoder")
    loaded = saelens_forward(dest, torch.Generator().manual_seed(10), 2.0)
    print(f"saelab_jumprelu_transcoder read by SAELens as {loaded.cfg.architecture()}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--saelab", help="folder written by the transcoder_fixture example")
    p.add_argument("out", nargs="?", default=os.path.join(REPO, "crates/sae/tests/fixtures/peers"))
    a = p.parse_args()
    sparsify_made(a.out)
    saelens_made(a.out)
    if a.saelab:
        saelab_made(a.out, a.saelab)


if __name__ == "__main__":
    main()
