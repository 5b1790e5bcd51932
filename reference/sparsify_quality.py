"""Quality per token of EleutherAI's sparsify trainer, on the batches saelab trains on.

Runs sparsify's own classes (SparseCoder, SignSGD, schedulefree's ScheduleFreeWrapper; or
torch's Adam) in the order sparsify's Trainer uses them for one SAE on one hook: b_dec set
to the first batch's mean, decoder rows renormalised before each forward, the gradient's
component parallel to each decoder row removed, then the step. The batches are the ones
`saelab train` draws, written by

    saelab bench batches --cache CACHE --holdout-windows N --out batches.npy

and the held-out windows are the cache's last N, read here from its shards (real,
non-special positions), so both trainers are measured on the same tokens. The averaged
(schedule-free "x") weights are evaluated, as sparsify saves them.

Prints one JSON line per evaluation: step, tokens, held-out fvu (about the held-out mean),
the fraction of latents silent over the held-out tokens, and the step's training fvu.
With --save DIR the final dictionary is written in sparsify's layout with the input scale
folded into its weights (so `saelab eval --sae DIR` reads raw activations).

    /tmp/refenv/bin/python reference/sparsify_quality.py --batches batches.npy \
        --cache CACHE --holdout-windows 64 [--raw] [--optimizer adam] [--eval-every 10]
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from safetensors.numpy import load_file


def held_out(cache, hook, windows):
    """The cache's last `windows` windows: real, non-special rows of `hook`, as float32."""
    manifest = json.load(open(os.path.join(cache, "manifest.json")))
    total = sum(s["windows"] for s in manifest["shards"])
    first = total - windows
    rows = []
    for shard in manifest["shards"]:
        end = shard["first_window"] + shard["windows"]
        if end <= first:
            continue
        t = load_file(os.path.join(cache, shard["file"]))
        skip = max(0, first - shard["first_window"])
        acts = t[hook][skip:].astype(np.float32)
        keep = (t["mask"][skip:] == 1) & (t["special"][skip:] == 0)
        rows.append(acts[keep])
    return np.concatenate(rows)


def evaluate(sae, x):
    """Held-out fvu about the held-out mean, and the fraction of latents never selected."""
    sse, fired = 0.0, torch.zeros(sae.num_latents, dtype=torch.bool)
    with torch.no_grad():
        for i in range(0, len(x), 4096):
            chunk = x[i : i + 4096]
            out = sae(chunk)
            sse += float((out.sae_out - chunk).pow(2).sum())
            fired[out.latent_indices.flatten()] = True
    total = float((x - x.mean(0)).pow(2).sum())
    return sse / total, 1.0 - float(fired.float().mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--holdout-windows", type=int, required=True)
    p.add_argument("--hook", default="blocks.6.hook_resid_post")
    p.add_argument("--width", type=int, default=16384)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--optimizer", choices=["signum", "adam"], default="signum")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--raw", action="store_true", help="do not scale inputs to E|x|^2 = d")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None)
    a = p.parse_args()

    # CPU: sparsify's Triton decoder needs a GPU; its eager decoder is the same sum.
    os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")
    from schedulefree import ScheduleFreeWrapper
    from sparsify import SparseCoder, SparseCoderConfig
    from sparsify.sign_sgd import SignSGD

    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count())
    batches = np.load(a.batches, mmap_mode="r")
    steps, _, d = batches.shape
    first = torch.from_numpy(batches[0].astype(np.float32))
    scale = 1.0 if a.raw else float(np.sqrt(d / first.pow(2).sum(1).mean()))
    x_eval = torch.from_numpy(held_out(a.cache, a.hook, a.holdout_windows)) * scale

    cfg = SparseCoderConfig(num_latents=a.width, k=a.k)
    sae = SparseCoder(d, cfg, device="cpu", dtype=torch.float32)
    if a.optimizer == "signum":
        lr = a.lr or 5e-3 / (a.width / 2**14) ** 0.5
        opt = ScheduleFreeWrapper(SignSGD([dict(params=sae.parameters(), lr=lr)]), momentum=0.95)
        opt.train()
    else:
        lr = a.lr or 2e-4 / (a.width / 2**14) ** 0.5
        opt = torch.optim.Adam(sae.parameters(), lr=lr)

    def report(step, train_fvu):
        if a.optimizer == "signum":
            opt.eval()
        fvu, silent = evaluate(sae, x_eval)
        if a.optimizer == "signum":
            opt.train()
        print(json.dumps({"step": step, "tokens": step * batches.shape[1], "fvu": fvu,
                          "silent": silent, "train_fvu": train_fvu}), flush=True)

    start = time.time()
    for step in range(steps):
        x = torch.from_numpy(batches[step].astype(np.float32)) * scale
        if step == 0:
            sae.b_dec.data = x.mean(0)
        sae.set_decoder_norm_to_unit_norm()
        out = sae(x)
        out.fvu.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        if (step + 1) % a.eval_every == 0 or step + 1 == steps:
            report(step + 1, float(out.fvu))
    print(json.dumps({"tokens_per_s": steps * batches.shape[1] / (time.time() - start)}))

    if a.save:
        if a.optimizer == "signum":
            opt.eval()
        with torch.no_grad():
            # The input scale folded in: the saved SAE reads raw activations.
            sae.encoder.weight.mul_(scale)
            sae.b_dec.div_(scale)
            sae.W_dec.div_(scale)
        sae.save_to_disk(a.save)


if __name__ == "__main__":
    main()
