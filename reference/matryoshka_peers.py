#!/usr/bin/env python3
"""Matryoshka BatchTopK dictionaries made and read by the real peer packages, for saelab's
import tests (`crates/sae/tests/import.rs`).

Unlike `peer_dictionaries.py`, this script imports the peers:

- `dl_matryoshka_trained/`: dictionary_learning's own `trainSAE` trains a
  `MatryoshkaBatchTopKTrainer` for 40 steps on random activations (normalised, so its save folds
  the scale into the biases and threshold) and writes `ae.pt` and `config.json` itself;
- `saelens_matryoshka/`: SAELens's `MatryoshkaBatchTopKTrainingSAE` takes 40 Adam steps on its
  own training loss and writes itself with `save_inference_model` (as JumpReLU, as SAELens does);
- `saelab_matryoshka/` (only with `--saelab-run DIR`): a Matryoshka dictionary that
  `saelab train` wrote (`DIR/final/<name>`), loaded by SAELens's `SAE.load_from_disk`.

Each folder gets an `expected.json` in the format of `peer_dictionaries.py` (inputs, dense
features and reconstructions), computed by the package that reads the folder: dictionary_learning's
`MatryoshkaBatchTopKSAE.from_pretrained` for the first, SAELens's `SAE.load_from_disk` for the
others. Inputs are redrawn until no pre-activation lies within 1e-3 of the threshold.

Usage: python reference/matryoshka_peers.py [--saelab-run DIR] [OUT_DIR]
"""

import argparse
import json
import os
import shutil

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = 6
MARGIN = 1e-3


def expected(path, d_in, d_sae, inputs, features, recon, **extra):
    out = {
        "d_in": d_in,
        "d_sae": d_sae,
        "inputs": inputs.tolist(),
        "features": features.tolist(),
        "reconstructions": recon.tolist(),
    }
    out.update(extra)
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(out, f)


def clear_inputs(gen, d_in, pre_fn, threshold, scale):
    """Rows whose pre-activations all lie more than MARGIN from the threshold and from 0."""
    rows = []
    while len(rows) < ROWS:
        x = torch.randn(1, d_in, generator=gen) * scale
        pre = pre_fn(x)
        if ((pre - threshold).abs() > MARGIN).all() and (pre.abs() > MARGIN).all():
            rows.append(x)
    return torch.cat(rows)


def dictionary_learning_trained(out):
    from dictionary_learning.training import trainSAE
    from dictionary_learning.trainers.matryoshka_batch_top_k import (
        MatryoshkaBatchTopKSAE,
        MatryoshkaBatchTopKTrainer,
    )

    d_in, d_sae, steps = 16, 64, 40
    gen = torch.Generator().manual_seed(0)
    basis = torch.randn(d_sae, d_in, generator=gen)

    def batches():
        g = torch.Generator().manual_seed(1)
        while True:
            codes = torch.relu(torch.randn(256, d_sae, generator=g) - 1.5)
            yield (codes @ basis + 3.0).float()

    save_dir = os.path.join(out, "_dl_run")
    shutil.rmtree(save_dir, ignore_errors=True)
    trainSAE(
        data=batches(),
        trainer_configs=[
            dict(
                trainer=MatryoshkaBatchTopKTrainer,
                steps=steps,
                activation_dim=d_in,
                dict_size=d_sae,
                k=6,
                layer=3,
                lm_name="EleutherAI/pythia-70m-deduped",
                group_fractions=[1 / 8, 1 / 4, 5 / 8],
                warmup_steps=5,
                threshold_start_step=10,
                seed=0,
                device="cpu",
            )
        ],
        steps=steps,
        save_dir=save_dir,
        normalize_activations=True,
        device="cpu",
    )
    dest = os.path.join(out, "dl_matryoshka_trained")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(os.path.join(save_dir, "trainer_0"), dest)
    shutil.rmtree(save_dir, ignore_errors=True)

    ae = MatryoshkaBatchTopKSAE.from_pretrained(os.path.join(dest, "ae.pt"))
    with torch.no_grad():
        pre_fn = lambda x: (x - ae.b_dec) @ ae.W_enc + ae.b_enc
        x = clear_inputs(gen, d_in, pre_fn, ae.threshold.item(), 1.0) + 3.0
        feats = ae.encode(x)
        recon = ae(x)
    sizes = ae.group_sizes.tolist()
    widths = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    expected(dest, d_in, d_sae, x, feats, recon, matryoshka_widths=widths)
    print(f"dl_matryoshka_trained: threshold {ae.threshold.item():.4f}, widths {widths}")


def saelens_forward(path, gen, extra):
    from sae_lens import SAE

    sae = SAE.load_from_disk(path, device="cpu")
    with torch.no_grad():
        d_in = sae.cfg.d_in
        scale = sae.W_dec.norm(dim=1).mean().item() * 4
        pre_fn = lambda x: (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        x = clear_inputs(gen, d_in, pre_fn, sae.threshold, scale)
        feats = sae.encode(x)
        recon = sae.decode(feats)
    expected(path, d_in, sae.cfg.d_sae, x, feats, recon, **extra)
    return sae


def saelens_trained(out):
    from sae_lens.saes.matryoshka_batchtopk_sae import (
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
    )
    from sae_lens.saes.sae import TrainStepInput

    torch.manual_seed(2)
    d_in, d_sae = 16, 48
    cfg = MatryoshkaBatchTopKTrainingSAEConfig(
        d_in=d_in, d_sae=d_sae, k=5, matryoshka_widths=[6, 18, d_sae]
    )
    sae = MatryoshkaBatchTopKTrainingSAE(cfg)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    basis = torch.randn(d_sae, d_in, generator=gen)
    for step in range(40):
        x = torch.relu(torch.randn(256, d_sae, generator=gen) - 1.5) @ basis
        step_in = TrainStepInput(
            sae_in=x,
            coefficients={},
            dead_neuron_mask=None,
            n_training_steps=step,
            is_logging_step=False,
        )
        loss = sae.training_forward_pass(step_in).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    dest = os.path.join(out, "saelens_matryoshka")
    shutil.rmtree(dest, ignore_errors=True)
    sae.save_inference_model(dest)
    loaded = saelens_forward(dest, gen, {"matryoshka_widths": [6, 18, d_sae]})
    print(f"saelens_matryoshka: saved as {loaded.cfg.architecture()}")


def saelab_written(out, run_dir):
    final = os.path.join(run_dir, "final")
    names = [n for n in sorted(os.listdir(final)) if "matryoshka" in n]
    if len(names) != 1:
        raise SystemExit(f"{final}: expected one matryoshka dictionary, found {names}")
    dest = os.path.join(out, "saelab_matryoshka")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for f in ("cfg.json", "sae_weights.safetensors"):
        shutil.copy(os.path.join(final, names[0], f), dest)
    with open(os.path.join(dest, "cfg.json")) as f:
        widths = json.load(f)["metadata"]["matryoshka_widths"]
    loaded = saelens_forward(dest, torch.Generator().manual_seed(4), {"matryoshka_widths": widths})
    print(f"saelab_matryoshka: SAELens loaded it as {loaded.cfg.architecture()}, widths {widths}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--saelab-run", help="a `saelab train` run folder with one matryoshka dictionary")
    p.add_argument("out", nargs="?", default=os.path.join(REPO, "crates/sae/tests/fixtures/peers"))
    a = p.parse_args()
    dictionary_learning_trained(a.out)
    saelens_trained(a.out)
    if a.saelab_run:
        saelab_written(a.out, a.saelab_run)


if __name__ == "__main__":
    main()
