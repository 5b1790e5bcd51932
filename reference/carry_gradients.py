#!/usr/bin/env python3
"""The carry dictionary's loss and gradients by PyTorch autograd, for saelab's hand-derived
backward through the window (crates/sae/tests/carry_gradients.rs).

The forward is written here from its definition (crates/sae/src/contextual/carry.rs), one
position at a time: u_t = x_t − b_dec − stopgrad(W_decᵀ c_t), p_t = W_enc u_t + b_enc,
Δ = max(−c, p), the k largest |Δ| > 0 kept, a_t = c_t + Δ on them, x̂_t = W_decᵀ a_t + b_dec,
c_{t+1} = λ a_t where λ a_t ≥ floor. Loss: (1/N) Σ_t ‖x̂_t − x_t‖². Writes
crates/sae/tests/fixtures/carry_gradients/<case>.safetensors with the parameters, the input,
the loss and every gradient.

    /tmp/refenv/bin/python reference/carry_gradients.py
"""

import os

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/sae/tests/fixtures/carry_gradients")

CASES = {
    # (k, seed, decay drawn from): some latents forget, some hold.
    "mixed": (4, 7, "uniform"),
    "holding": (3, 8, "high"),
}


def forward(W_enc, b_enc, W_dec, b_dec, decay, x, k, floor):
    B, T, d = x.shape
    f = W_enc.shape[1]
    loss = x.new_zeros(())
    for b in range(B):
        c = x.new_zeros(f)
        for t in range(T):
            u = x[b, t] - b_dec - (c.detach() @ W_dec.detach())
            p = u @ W_enc + b_enc
            delta = torch.maximum(-c, p)
            score = delta.detach().abs()
            top = torch.topk(score, k)
            mask = torch.zeros(f)
            mask[top.indices[top.values > 0]] = 1.0
            a = c + mask * delta
            recon = a @ W_dec + b_dec
            loss = loss + ((recon - x[b, t]) ** 2).sum()
            nxt = decay * a
            c = nxt * (nxt.detach() >= floor).float()
    return loss / (B * T)


def main():
    os.makedirs(OUT, exist_ok=True)
    d, f, B, T, floor = 16, 32, 2, 8, 0.01
    for name, (k, seed, draw) in CASES.items():
        g = torch.Generator().manual_seed(seed)
        # Unit decoder rows and an encoder near their transpose, as training keeps them:
        # random untied weights make the carried codes grow without bound along the window.
        W_dec = torch.randn(f, d, generator=g)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        params = {
            "W_enc": W_dec.T + 0.1 * torch.randn(d, f, generator=g),
            "b_enc": 0.1 * torch.randn(f, generator=g),
            "W_dec": W_dec,
            "b_dec": 0.1 * torch.randn(d, generator=g),
            "decay": torch.rand(f, generator=g) if draw == "uniform"
            else 0.7 + 0.3 * torch.rand(f, generator=g),
        }
        x = torch.randn(B, T, d, generator=g)
        leaves = {n: v.clone().requires_grad_(True) for n, v in params.items()}
        loss = forward(leaves["W_enc"], leaves["b_enc"], leaves["W_dec"], leaves["b_dec"],
                       leaves["decay"], x, k, floor)
        loss.backward()
        tensors = {n: v.contiguous() for n, v in params.items()}
        tensors.update({f"grad_{n}": v.grad.contiguous() for n, v in leaves.items()})
        tensors["x"] = x.reshape(B * T, d).contiguous()
        tensors["loss"] = loss.detach().reshape(1)
        tensors["k"] = torch.tensor([float(k)])
        tensors["len"] = torch.tensor([float(T)])
        tensors["floor"] = torch.tensor([floor])
        save_file(tensors, os.path.join(OUT, f"{name}.safetensors"))
        print(name, "loss", loss.item(), "|grad decay|", leaves["decay"].grad.abs().max().item())


if __name__ == "__main__":
    main()
