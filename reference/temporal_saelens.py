#!/usr/bin/env python3
"""Temporal SAEs made and run by SAELens itself, for saelab's reader.

Writes crates/sae/tests/fixtures/peers/saelens_temporal_<name>/ for three configurations
(tied TopK with one attention layer; untied TopK with two layers and b_dec applied to the
input; tied ReLU with a constant scalar rescale), each a folder saved by
`TemporalSAE.save_model` (cfg.json, sae_weights.safetensors) with every parameter drawn at
random (biases included, so that no term is zero), plus `expected.safetensors`: a window
`x` [1, 10, d_in] and SAELens's `z_novel`, `z_pred` (`encode_with_predictions`) and
`reconstruction` (`forward`).

    /tmp/refenv/bin/pip install sae-lens==6.54.12
    /tmp/refenv/bin/python reference/temporal_saelens.py
"""

import os

import torch
from safetensors.torch import save_file
from sae_lens.saes.temporal_sae import TemporalSAE, TemporalSAEConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/sae/tests/fixtures/peers")

CASES = {
    "tied_topk": dict(n_attn_layers=1, sae_diff_type="topk", kval_topk=6, tied_weights=True,
                      apply_b_dec_to_input=False),
    "untied_topk_2layers": dict(n_attn_layers=2, sae_diff_type="topk", kval_topk=5,
                                tied_weights=False, apply_b_dec_to_input=True),
    "tied_relu_rescaled": dict(n_attn_layers=1, sae_diff_type="relu", tied_weights=True,
                               apply_b_dec_to_input=True,
                               normalize_activations="constant_scalar_rescale",
                               activation_normalization_factor=0.5),
}


def main():
    for i, (name, extra) in enumerate(CASES.items()):
        torch.manual_seed(100 + i)
        cfg = TemporalSAEConfig(d_in=32, d_sae=64, n_heads=2, bottleneck_factor=8,
                                dtype="float32", device="cpu", **extra)
        sae = TemporalSAE(cfg)
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(0.3 * torch.randn_like(p))
        folder = os.path.join(OUT, f"saelens_temporal_{name}")
        sae.save_model(folder)
        x = 3.0 * torch.randn(1, 10, 32)
        with torch.no_grad():
            z_novel, z_pred = sae.encode_with_predictions(x)
            recon = sae.forward(x)
        save_file({"x": x[0].contiguous(), "z_novel": z_novel[0].contiguous(),
                   "z_pred": z_pred[0].contiguous(), "reconstruction": recon[0].contiguous()},
                  os.path.join(folder, "expected.safetensors"))
        print(name, "nonzero novel per position", (z_novel[0] > 0).sum(-1).tolist(),
              "|z_pred|", z_pred.norm().item())


if __name__ == "__main__":
    main()
