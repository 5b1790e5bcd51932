#!/usr/bin/env python3
"""The temporal SAE's training loss and its gradients by PyTorch's autograd, on SAELens's own
`TemporalSAE`, for saelab's trainer (`crates/sae/tests/temporal_train.rs`).

The loss is the one of the authors' training script (train_temporal_saes.py of
github.com/eslubana/temporalSAEs): the squared error summed over d_in and averaged over
positions, plus, for ReLU novel codes, `gamma_reg` times the mean L2 norm of the novel codes.

Writes crates/sae/tests/fixtures/temporal_gradients/<name>/ for two small SAEs (d_in 16,
d_sae 32, 2 heads, bottleneck 4), every parameter drawn at random (biases included):

- `tied_topk`: tied weights, one attention layer, TopK k = 6, b_dec applied to the input;
- `untied_relu_2layers`: untied weights, two layers, ReLU with gamma_reg = 2, b_dec only
  added to the output.

Each folder holds the SAE as `save_model` writes it (cfg.json, sae_weights.safetensors) and
`grads.safetensors`: `x` [16, 16] (two windows of 8 positions, row-major), `loss` [1],
`gamma_reg` [1] and `grad.<parameter name>` for every parameter. Inputs are redrawn until
every ReLU input is at least 1e-4 away from 0 and, with TopK, each position's k-th and
(k+1)-th novel codes differ by 1e-4, so float rounding cannot change which units pass.

    /tmp/refenv/bin/pip install sae-lens==6.54.12
    /tmp/refenv/bin/python reference/temporal_gradients.py
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sae_lens.saes.temporal_sae import TemporalSAE, TemporalSAEConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/sae/tests/fixtures/temporal_gradients")
WINDOWS, LEN, D_IN, D_SAE = 2, 8, 16, 32
MARGIN = 1e-4

CASES = {
    "tied_topk": (dict(n_attn_layers=1, sae_diff_type="topk", kval_topk=6, tied_weights=True,
                       apply_b_dec_to_input=True), 0.0),
    "untied_relu_2layers": (dict(n_attn_layers=2, sae_diff_type="relu", tied_weights=False,
                                 apply_b_dec_to_input=False), 2.0),
}


def loss_of(sae, x, gamma):
    """The authors' loss on SAELens's forward."""
    z_novel, _ = sae.encode_with_predictions(x)
    recon = sae.forward(x)
    n = x.shape[0] * x.shape[1]
    loss = F.mse_loss(recon, x, reduction="sum") / n
    if sae.cfg.sae_diff_type == "relu":
        loss = loss + gamma * z_novel.norm(dim=-1).mean()
    return loss


@torch.no_grad()
def margin(sae, x):
    """The smallest distance of a ReLU input from 0, and of a TopK cut, in the forward."""
    x = sae.process_sae_in(x)
    w_enc = sae.W_dec.T if sae.cfg.tied_weights else sae.W_enc
    r, smallest = x, float("inf")
    for layer in sae.attn_layers:
        pre = torch.matmul(r * sae.lam, w_enc)
        smallest = min(smallest, pre.abs().min().item())
        z_in = F.relu(pre)
        z_ctx = torch.cat((torch.zeros_like(z_in[:, :1, :]), z_in[:, :-1, :]), dim=1)
        p_pre, _ = layer(z_ctx, z_in)
        smallest = min(smallest, p_pre.abs().min().item())
        p = F.relu(p_pre)
        dz = torch.matmul(p, sae.W_dec)
        a = (dz * r).sum(-1, keepdim=True) / (dz.norm(dim=-1, keepdim=True) + sae.eps).pow(2)
        r = r - a * dz
    pre = torch.matmul(r * sae.lam, w_enc)
    smallest = min(smallest, pre.abs().min().item())
    if sae.cfg.sae_diff_type == "topk":
        top = F.relu(pre).topk(sae.cfg.kval_topk + 1, dim=-1).values
        kth, next_ = top[..., -2], top[..., -1]
        # A cut between two zeros does not matter: no gradient passes a zero code.
        gap = torch.where(kth > 0, kth - next_, torch.full_like(kth, float("inf")))
        smallest = min(smallest, gap.min().item())
    return smallest


def main():
    for i, (name, (extra, gamma)) in enumerate(CASES.items()):
        torch.manual_seed(300 + i)
        cfg = TemporalSAEConfig(d_in=D_IN, d_sae=D_SAE, n_heads=2, bottleneck_factor=4,
                                dtype="float32", device="cpu", **extra)
        sae = TemporalSAE(cfg)
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(0.3 * torch.randn_like(p))
        for _ in range(1000):
            x = 3.0 * torch.randn(WINDOWS, LEN, D_IN)
            m = margin(sae, x)
            if m >= MARGIN:
                break
        else:
            raise SystemExit(f"{name}: no input with margin {MARGIN}")
        loss = loss_of(sae, x, gamma)
        sae.zero_grad()
        loss.backward()
        folder = os.path.join(OUT, name)
        sae.save_model(folder)
        tensors = {"x": x.reshape(WINDOWS * LEN, D_IN).contiguous(),
                   "loss": loss.detach().reshape(1), "gamma_reg": torch.tensor([gamma])}
        for pname, p in sae.named_parameters():
            tensors[f"grad.{pname}"] = p.grad.detach().contiguous()
        save_file(tensors, os.path.join(folder, "grads.safetensors"))
        print(name, "loss", loss.item(), "margin", m, "grad max |.|",
              {k[5:]: round(v.abs().max().item(), 4) for k, v in tensors.items()
               if k.startswith("grad.")})


if __name__ == "__main__":
    main()
