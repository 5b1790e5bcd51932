#!/usr/bin/env python3
"""Gradients of end-to-end dictionary training, by PyTorch's autograd on HF models.

For each tiny random model of crates/model/tests/fixtures/tiny/ (llama, gpt2, gpt_neox;
made by tiny_models.py) this draws a seeded TopK dictionary (d_in = the hidden size, 24
latents, k = 4) and two windows of 12 seeded token ids, splices the dictionary's
reconstruction at the output of block 0 (`blocks.0.hook_resid_post`) at every position but
the first (the first plays the start token, left clean), and differentiates

    kl: mean over the counted positions of KL(p_clean || p_spliced)
    ce: mean next-token cross-entropy of the spliced model

where a position counts when it is spliced and has a next token. The dictionary:

    pre = (x - b_dec) W_enc + b_enc;  f = pre at each row's k largest, 0 elsewhere
    x_hat = f W_dec + b_dec

It writes crates/eval/tests/fixtures/e2e_gradients/<arch>_<loss>.safetensors holding the ids
(int64 [2, 12]), the dictionary (W_enc [d, 24], b_enc, W_dec [24, d], b_dec), the loss (a
1-element tensor) and the gradients grad_W_enc, grad_b_enc, grad_W_dec, grad_b_dec. b_enc
starts at +0.5 so the kept pre-activations are positive (TopK keeps them as they are).

    /tmp/refenv/bin/pip install torch transformers safetensors numpy
    HF_HUB_OFFLINE=1 /tmp/refenv/bin/python reference/e2e_gradients.py
"""

import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "crates/model/tests/fixtures/tiny")
OUT = os.path.join(ROOT, "crates/eval/tests/fixtures/e2e_gradients")
F, K, WINDOWS, SEQ = 24, 4, 2, 12


def block0(model):
    inner = getattr(model, "model", None) or getattr(model, "transformer", None) or model.gpt_neox
    layers = getattr(inner, "layers", None) or getattr(inner, "h", None)
    return layers[0]


def run(arch, loss_name, seed):
    model = AutoModelForCausalLM.from_pretrained(
        os.path.join(TINY, arch), dtype=torch.float32, attn_implementation="eager"
    ).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    d = model.config.hidden_size
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (WINDOWS, SEQ), generator=g)
    w_enc = (0.5 * torch.randn(d, F, generator=g)).requires_grad_()
    b_enc = (0.5 + 0.1 * torch.randn(F, generator=g)).requires_grad_()
    w_dec = (0.5 * torch.randn(F, d, generator=g)).requires_grad_()
    b_dec = (0.1 * torch.randn(d, generator=g)).requires_grad_()

    with torch.no_grad():
        clean = model(ids, output_hidden_states=True)
    x = clean.hidden_states[1][:, 1:, :].reshape(-1, d)  # block 0's output, spliced rows
    clean_lp = torch.log_softmax(clean.logits.double(), -1)

    pre = (x - b_dec) @ w_enc + b_enc
    top = torch.topk(pre, K, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
    assert (top.values > 0).all(), "a kept pre-activation is not positive: change the seed"
    x_hat = (f @ w_dec + b_dec).reshape(WINDOWS, SEQ - 1, d)

    def splice(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = torch.cat([hidden[:, :1, :], x_hat], dim=1)
        return (hidden,) + tuple(output[1:]) if isinstance(output, tuple) else hidden

    handle = block0(model).register_forward_hook(splice)
    logits = model(ids).logits.double()
    handle.remove()
    lp = torch.log_softmax(logits, -1)
    # Counted: positions 1 .. SEQ-2 (spliced, with a next token).
    rows = slice(1, SEQ - 1)
    if loss_name == "kl":
        per = (clean_lp[:, rows].exp() * (clean_lp[:, rows] - lp[:, rows])).sum(-1)
    else:
        target = ids[:, 2:SEQ]
        per = -lp[:, rows].gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = per.mean()
    loss.backward()
    tensors = {
        "ids": ids.to(torch.int64),
        "W_enc": w_enc.detach(),
        "b_enc": b_enc.detach(),
        "W_dec": w_dec.detach(),
        "b_dec": b_dec.detach(),
        "loss": loss.detach().float().reshape(1),
        "grad_W_enc": w_enc.grad,
        "grad_b_enc": b_enc.grad,
        "grad_W_dec": w_dec.grad,
        "grad_b_dec": b_dec.grad,
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(OUT, f"{arch}_{loss_name}.safetensors"))
    print(f"{arch} {loss_name}: loss {loss.item():.6f}, |grad W_dec| {w_dec.grad.norm():.4e}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for i, (arch, loss_name) in enumerate(
        [("llama", "kl"), ("llama", "ce"), ("gpt2", "kl"), ("gpt_neox", "kl")]
    ):
        run(arch, loss_name, 1000 + i)


if __name__ == "__main__":
    main()
