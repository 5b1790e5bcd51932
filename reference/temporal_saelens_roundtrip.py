#!/usr/bin/env python3
"""Temporal SAEs written by saelab, read and run by SAELens itself.

Reads each crates/sae/tests/fixtures/peers/saelab_temporal_written_<name>/ (cfg.json and
sae_weights.safetensors written by `TemporalSae::save`, see crates/sae/tests/temporal_write.rs)
with `SAE.load_from_disk`, which builds the SAE class its cfg.json names and loads the
weights strictly (a missing, extra or misshapen tensor is an error), checks it built a
`TemporalSAE` with the configuration saelab meant, and adds `expected.safetensors`: a window
`x` [10, d_in] and SAELens's `z_novel`, `z_pred` (`encode_with_predictions`) and
`reconstruction` (`forward`), which saelab's forward must match.

    /tmp/refenv/bin/pip install sae-lens==6.54.12
    /tmp/refenv/bin/python reference/temporal_saelens_roundtrip.py
"""

import os

import torch
from safetensors.torch import save_file
from sae_lens import SAE
from sae_lens.saes.temporal_sae import TemporalSAE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/sae/tests/fixtures/peers")

# What saelab meant to write (crates/sae/tests/temporal_write.rs, written_cases).
CASES = {
    "tied_relu_rescaled": dict(n_attn_layers=1, sae_diff_type="relu", tied_weights=True,
                               normalize_activations="constant_scalar_rescale",
                               activation_normalization_factor=0.25),
    "untied_topk_2layers": dict(n_attn_layers=2, sae_diff_type="topk", kval_topk=6,
                                tied_weights=False, normalize_activations="none"),
}


def main():
    for i, (name, meant) in enumerate(CASES.items()):
        folder = os.path.join(OUT, f"saelab_temporal_written_{name}")
        sae = SAE.load_from_disk(folder, device="cpu")
        assert isinstance(sae, TemporalSAE), type(sae)
        for key, value in dict(d_in=32, d_sae=64, n_heads=2, bottleneck_factor=8,
                               apply_b_dec_to_input=True, **meant).items():
            assert getattr(sae.cfg, key) == value, (name, key, getattr(sae.cfg, key), value)
        assert hasattr(sae, "W_enc") != meant["tied_weights"]
        torch.manual_seed(200 + i)
        x = 3.0 * torch.randn(1, 10, 32)
        with torch.no_grad():
            z_novel, z_pred = sae.encode_with_predictions(x)
            recon = sae.forward(x)
        save_file({"x": x[0].contiguous(), "z_novel": z_novel[0].contiguous(),
                   "z_pred": z_pred[0].contiguous(), "reconstruction": recon[0].contiguous()},
                  os.path.join(folder, "expected.safetensors"))
        print(name, "nonzero novel per position", (z_novel[0] > 0).sum(-1).tolist(),
              "|z_pred|", z_pred.norm().item(), "|recon|", recon.norm().item())


if __name__ == "__main__":
    main()
