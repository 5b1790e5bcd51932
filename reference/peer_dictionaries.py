#!/usr/bin/env python3
"""Tiny dictionaries in the file formats of dictionary_learning and sparsify, with the features
and reconstructions their forward passes give, for saelab's import tests
(`crates/sae/tests/import.rs`).

Neither peer package is imported: the tensor names, shapes, config keys and forward formulas
are written out below from the format notes in PEERS.md (sections 1b and 1c). Each fixture is a
folder under `crates/sae/tests/fixtures/peers/` holding the peer's files plus `expected.json`:

    {"format", "class", "d_in", "d_sae", "inputs": [[d_in]...],
     "features": [[d_sae]...] (dense), "reconstructions": [[d_in]...]}

Usage: python reference/peer_dictionaries.py [OUT_DIR]
"""

import json
import os
import sys
from collections import OrderedDict

import torch
from safetensors.torch import save_file

D, F = 16, 32  # activation_dim / d_in, dict_size / num_latents
ROWS = 6
MARGIN = 1e-3  # no pre-activation this close to a cut (threshold, k-th value, zero)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    REPO, "crates", "sae", "tests", "fixtures", "peers")


def randn(gen, *shape, scale=1.0):
    return (torch.randn(*shape, generator=gen) * scale).float()


# ----------------------------------------------------------------------------------------------
# Modules whose state_dict() has the peers' keys (PEERS.md 1b). Built as nn.Modules so the saved
# OrderedDict carries the same `_metadata` attribute a real state dict does.


class DLAutoEncoder(torch.nn.Module):
    """dictionary_learning AutoEncoder: bias [D], encoder.weight [F,D], encoder.bias [F],
    decoder.weight [D,F] (no decoder bias)."""

    def __init__(self, g):
        super().__init__()
        self.bias = torch.nn.Parameter(randn(g, D, scale=0.3))
        self.encoder = torch.nn.Linear(D, F)
        self.decoder = torch.nn.Linear(F, D, bias=False)
        with torch.no_grad():
            self.encoder.weight.copy_(randn(g, F, D, scale=0.4))
            self.encoder.bias.copy_(randn(g, F, scale=0.2))
            self.decoder.weight.copy_(randn(g, D, F, scale=0.3))

    def pre(self, x):
        return (x - self.bias) @ self.encoder.weight.T + self.encoder.bias

    def encode(self, x):  # relu(W(x - bias) + b)
        return torch.relu(self.pre(x))

    def decode(self, f):  # Wd f + bias
        return f @ self.decoder.weight.T + self.bias


class DLAutoEncoderNew(torch.nn.Module):
    """dictionary_learning AutoEncoderNew: encoder.weight/bias, decoder.weight [D,F],
    decoder.bias [D]; no input centering."""

    def __init__(self, g):
        super().__init__()
        self.encoder = torch.nn.Linear(D, F)
        self.decoder = torch.nn.Linear(F, D)
        with torch.no_grad():
            self.encoder.weight.copy_(randn(g, F, D, scale=0.4))
            self.encoder.bias.copy_(randn(g, F, scale=0.2))
            self.decoder.weight.copy_(randn(g, D, F, scale=0.3))
            self.decoder.bias.copy_(randn(g, D, scale=0.3))

    def pre(self, x):
        return x @ self.encoder.weight.T + self.encoder.bias

    def encode(self, x):
        return torch.relu(self.pre(x))

    def decode(self, f):
        return f @ self.decoder.weight.T + self.decoder.bias


class DLJumpRelu(torch.nn.Module):
    """dictionary_learning JumpReluAutoEncoder: W_enc [D,F], b_enc [F], W_dec [F,D], b_dec [D],
    threshold [F]; apply_b_dec_to_input is False (an attribute, not saved)."""

    def __init__(self, g):
        super().__init__()
        self.W_enc = torch.nn.Parameter(randn(g, D, F, scale=0.4))
        self.b_enc = torch.nn.Parameter(randn(g, F, scale=0.2))
        self.W_dec = torch.nn.Parameter(randn(g, F, D, scale=0.3))
        self.b_dec = torch.nn.Parameter(randn(g, D, scale=0.3))
        th = torch.rand(F, generator=g) * 0.8
        th[3] = -0.5  # a negative threshold: the relu still zeroes negative pre-activations
        self.threshold = torch.nn.Parameter(th.float())

    def pre(self, x):
        return x @ self.W_enc + self.b_enc

    def encode(self, x):  # relu(pre * (pre > threshold))
        pre = self.pre(x)
        return torch.relu(pre * (pre > self.threshold))

    def decode(self, f):
        return f @ self.W_dec + self.b_dec


class DLTopK(torch.nn.Module):
    """dictionary_learning AutoEncoderTopK / BatchTopKSAE: buffers k (0-dim int32) and
    threshold (0-dim float32, -1 = unset); decoder.weight [D,F], encoder.weight [F,D],
    encoder.bias [F], b_dec [D]."""

    def __init__(self, g, k, threshold, use_threshold):
        super().__init__()
        self.register_buffer("k", torch.tensor(k, dtype=torch.int))
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))
        self.decoder = torch.nn.Linear(F, D, bias=False)
        self.encoder = torch.nn.Linear(D, F)
        self.b_dec = torch.nn.Parameter(randn(g, D, scale=0.3))
        with torch.no_grad():
            self.encoder.weight.copy_(randn(g, F, D, scale=0.4))
            self.encoder.bias.copy_(randn(g, F, scale=0.2))
            self.decoder.weight.copy_(randn(g, D, F, scale=0.3))
        self.use_threshold = use_threshold

    def pre(self, x):
        return (x - self.b_dec) @ self.encoder.weight.T + self.encoder.bias

    def encode(self, x):
        post_relu = torch.relu(self.pre(x))
        if self.use_threshold:  # BatchTopKSAE: relu(pre) * (relu(pre) > threshold)
            return post_relu * (post_relu > self.threshold)
        vals, idx = post_relu.topk(int(self.k), dim=-1)  # AutoEncoderTopK: top k of relu(pre)
        return torch.zeros_like(post_relu).scatter(-1, idx, vals)

    def decode(self, f):
        return f @ self.decoder.weight.T + self.b_dec


class DLMatryoshka(torch.nn.Module):
    """dictionary_learning MatryoshkaBatchTopKSAE: k, threshold, group_sizes (int64 [n]),
    W_enc [D,F], b_enc [F], W_dec [F,D], b_dec [D]; encodes like BatchTopKSAE."""

    def __init__(self, g, k, threshold, group_sizes):
        super().__init__()
        self.register_buffer("k", torch.tensor(k, dtype=torch.int))
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))
        self.register_buffer("group_sizes", torch.tensor(group_sizes, dtype=torch.int64))
        self.W_enc = torch.nn.Parameter(randn(g, D, F, scale=0.4))
        self.b_enc = torch.nn.Parameter(randn(g, F, scale=0.2))
        self.W_dec = torch.nn.Parameter(randn(g, F, D, scale=0.3))
        self.b_dec = torch.nn.Parameter(randn(g, D, scale=0.3))

    def pre(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x):
        post_relu = torch.relu(self.pre(x))
        return post_relu * (post_relu > self.threshold)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec


class DLGated(torch.nn.Module):
    """dictionary_learning GatedAutoEncoder: decoder_bias [D], encoder.weight [F,D] (no bias),
    r_mag [F], gate_bias [F], mag_bias [F], decoder.weight [D,F] (no bias).
    x_enc = W(x - decoder_bias); f = 1[x_enc + gate_bias > 0] * relu(exp(r_mag) x_enc + mag_bias);
    out = decoder(f) + decoder_bias."""

    def __init__(self, g):
        super().__init__()
        self.decoder_bias = torch.nn.Parameter(randn(g, D))
        self.encoder = torch.nn.Linear(D, F, bias=False)
        self.r_mag = torch.nn.Parameter(randn(g, F))
        self.gate_bias = torch.nn.Parameter(randn(g, F))
        self.mag_bias = torch.nn.Parameter(randn(g, F))
        self.decoder = torch.nn.Linear(F, D, bias=False)

    def gate_and_mag(self, x):
        x_enc = (x - self.decoder_bias) @ self.encoder.weight.T
        return x_enc + self.gate_bias, self.r_mag.exp() * x_enc + self.mag_bias

    def pre(self, x):  # both cuts are at zero
        return torch.cat(self.gate_and_mag(x), dim=-1)

    def encode(self, x):
        pi_gate, pi_mag = self.gate_and_mag(x)
        return (pi_gate > 0).float() * torch.relu(pi_mag)

    def decode(self, f):
        return f @ self.decoder.weight.T + self.decoder_bias


class Sparsify(torch.nn.Module):
    """sparsify SparseCoder (SAE, not transcoder): encoder.weight [L,D], encoder.bias [L],
    W_dec [L,D], b_dec [D]. pre = relu(enc(x - b_dec)); top k; out = sum top_acts W_dec[idx]
    + b_dec."""

    def __init__(self, g, k):
        super().__init__()
        self.k = k
        self.encoder = torch.nn.Linear(D, F)
        self.W_dec = torch.nn.Parameter(randn(g, F, D, scale=0.3))
        self.b_dec = torch.nn.Parameter(randn(g, D, scale=0.3))
        with torch.no_grad():
            self.encoder.weight.copy_(randn(g, F, D, scale=0.4))
            self.encoder.bias.copy_(randn(g, F, scale=0.2))

    def pre(self, x):
        return (x - self.b_dec) @ self.encoder.weight.T + self.encoder.bias

    def encode(self, x):
        post_relu = torch.relu(self.pre(x))
        top_acts, top_idx = post_relu.topk(self.k, dim=-1)
        return torch.zeros_like(post_relu).scatter(-1, top_idx, top_acts)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec


# ----------------------------------------------------------------------------------------------


def cuts(module):
    """The values no pre-activation may come close to (so f32 rounding cannot flip a choice)."""
    if isinstance(module, DLJumpRelu):
        return [module.threshold.detach()]
    if isinstance(module, (DLMatryoshka,)) or (isinstance(module, DLTopK) and module.use_threshold):
        return [module.threshold.detach()]
    return []


def safe_inputs(module, g):
    """Inputs whose pre-activations keep MARGIN from zero, thresholds and the k-th value."""
    k = getattr(module, "k", None)
    k = int(k) if k is not None else None
    topk = isinstance(module, Sparsify) or (isinstance(module, DLTopK) and not module.use_threshold)
    for _ in range(1000):
        x = randn(g, ROWS, D)
        with torch.no_grad():
            pre = module.pre(x)
        bad = (pre.abs() < MARGIN).any()
        for c in cuts(module):
            bad = bad or ((pre - c).abs() < MARGIN).any()
        if topk:
            s = torch.relu(pre).sort(dim=-1, descending=True).values
            bad = bad or (s[:, k - 1] - s[:, k] < MARGIN).any() or (s[:, k - 1] <= 0).any()
        if not bad:
            return x
    raise SystemExit("no safe inputs found")


def expected(module, g, fmt, cls):
    x = safe_inputs(module, g)
    with torch.no_grad():
        f = module.encode(x)
        recon = module.decode(f)
    assert f.dtype == torch.float32 and recon.dtype == torch.float32
    nnz = (f != 0).sum(dim=-1)
    assert (nnz > 0).all() and (nnz < F).all(), nnz
    return {
        "format": fmt,
        "class": cls,
        "d_in": D,
        "d_sae": F,
        "inputs": x.tolist(),
        "features": f.tolist(),
        "reconstructions": recon.tolist(),
    }


def dl_config(trainer_class, dict_class, extra):
    trainer = {
        "trainer_class": trainer_class,
        "dict_class": dict_class,
        "lr": 0.0003,
        "steps": 1000,
        "seed": 0,
        "activation_dim": D,
        "dict_size": F,
        "device": "cpu",
        "layer": 3,
        "lm_name": "EleutherAI/pythia-70m-deduped",
        "wandb_name": f"{trainer_class}-tiny",
        "submodule_name": "resid_post_layer_3",
        "warmup_steps": 100,
        "decay_start": None,
    }
    trainer.update(extra)
    buffer = {
        "d_submodule": D,
        "io": "out",
        "n_ctxs": 3000,
        "ctx_len": 128,
        "refresh_batch_size": 32,
        "out_batch_size": 1024,
        "device": "cpu",
    }
    return {"trainer": trainer, "buffer": buffer}


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")


def write_dl(name, module, config, g, save=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    sd = module.state_dict()
    torch.save(sd if save is None else save(sd), os.path.join(d, "ae.pt"))
    write_json(os.path.join(d, "config.json"), config)
    if hasattr(module, "encode"):
        cls = config["trainer"]["dict_class"]
        write_json(os.path.join(d, "expected.json"), expected(module, g, "dictionary_learning", cls))


def main():
    torch.manual_seed(0)  # nn.Linear default init of the gated fixture
    g = torch.Generator().manual_seed(20260612)

    write_dl("dl_standard", DLAutoEncoder(g),
             dl_config("StandardTrainer", "AutoEncoder",
                       {"l1_penalty": 0.1, "resample_steps": None, "sparsity_warmup_steps": 500}), g)
    write_dl("dl_april", DLAutoEncoderNew(g),
             dl_config("StandardTrainerAprilUpdate", "AutoEncoderNew",
                       {"l1_penalty": 0.1, "sparsity_warmup_steps": 500}), g)
    write_dl("dl_jumprelu", DLJumpRelu(g),
             dl_config("JumpReluTrainer", "JumpReluAutoEncoder",
                       {"bandwidth": 0.001, "sparsity_penalty": 1.0, "sparsity_warmup_steps": 500,
                        "target_l0": 8}), g)
    topk_extra = {"auxk_alpha": 1 / 32, "threshold_beta": 0.999, "threshold_start_step": 1000, "k": 6}
    write_dl("dl_topk", DLTopK(g, 6, -1.0, use_threshold=False),
             dl_config("TopKTrainer", "AutoEncoderTopK", topk_extra), g)
    write_dl("dl_batchtopk", DLTopK(g, 6, 0.9, use_threshold=True),
             dl_config("BatchTopKTrainer", "BatchTopKSAE", dict(topk_extra, top_k_aux=8)), g)
    write_dl("dl_matryoshka", DLMatryoshka(g, 6, 0.9, [4, 12, 16]),
             dl_config("MatryoshkaBatchTopKTrainer", "MatryoshkaBatchTopKSAE",
                       dict(topk_extra, top_k_aux=8, group_fractions=[0.125, 0.375, 0.5],
                            group_weights=[1 / 3] * 3, group_sizes=[4, 12, 16])), g)

    # A backup checkpoint: the state dict under "ae", next to optimizer state and the config.
    backup_module = DLTopK(g, 5, -1.0, use_threshold=False)
    backup_cfg = dl_config("TopKTrainer", "AutoEncoderTopK", dict(topk_extra, k=5))

    def backup(sd):
        opt = torch.optim.Adam(backup_module.parameters(), lr=1e-3)
        backup_module.b_dec.grad = torch.ones(D)
        opt.step()
        return {"step": 10, "ae": backup_module.state_dict(), "optimizer": opt.state_dict(),
                "config": backup_cfg, "norm_factor": 1.5}

    write_dl("dl_topk_backup", backup_module, backup_cfg, g, save=backup)

    # A bad input: a TopK state dict without its k buffer (and no k in the config).
    no_k = DLTopK(g, 6, -1.0, use_threshold=False)
    no_k_cfg = dl_config("TopKTrainer", "AutoEncoderTopK", topk_extra)
    del no_k_cfg["trainer"]["k"]
    d = os.path.join(OUT, "bad", "dl_topk_no_k")
    os.makedirs(d, exist_ok=True)
    sd = no_k.state_dict()
    del sd["k"]
    torch.save(sd, os.path.join(d, "ae.pt"))
    write_json(os.path.join(d, "config.json"), no_k_cfg)

    # The gated module draws from `g` where it always did; its inputs come from a generator of
    # their own, so the fixtures after it keep their values.
    write_dl("dl_gated", DLGated(g),
             dl_config("GatedSAETrainer", "GatedAutoEncoder",
                       {"l1_penalty": 0.1, "sparsity_warmup_steps": 500}),
             torch.Generator().manual_seed(20261130))

    # sparsify: num_latents 0 means d_in * expansion_factor (16 * 2 = 32).
    sp = Sparsify(g, 6)
    d = os.path.join(OUT, "sparsify_topk")
    os.makedirs(d, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in sp.state_dict().items()},
              os.path.join(d, "sae.safetensors"))
    write_json(os.path.join(d, "cfg.json"), {
        "activation": "topk",
        "expansion_factor": 2,
        "normalize_decoder": True,
        "num_latents": 0,
        "k": 6,
        "multi_topk": False,
        "skip_connection": False,
        "transcode": False,
        "d_in": D,
    })
    write_json(os.path.join(d, "expected.json"), expected(sp, g, "sparsify", "SparseCoder"))

    # Tied weights: decoder.weight is encoder.weight.T, a non-contiguous view of the same
    # storage; torch.save keeps the strides and writes the storage once.
    tied = DLAutoEncoder(g)
    tied.decoder.weight = torch.nn.Parameter(tied.encoder.weight.T)
    assert not tied.decoder.weight.is_contiguous()
    write_dl("dl_tied", tied,
             dl_config("StandardTrainer", "AutoEncoder",
                       {"l1_penalty": 0.1, "resample_steps": None, "sparsity_warmup_steps": 500}), g)

    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f"{os.path.relpath(p, OUT)}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
