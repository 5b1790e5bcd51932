#!/usr/bin/env python3
"""Reference spliced-model metrics for a transcoder on SmolLM2-135M-Instruct (Q4_1 GGUF), with
HF transformers: the independent computation saelab's evaluator is compared against when a
dictionary reads one hook and is spliced at another (METRICS.md; `spliced_eval.py` does the
same for a dictionary at one hook, and this script reuses its model loading, rows, positions
and CE/KL definitions).

The transcoder reads the input of layer 6's MLP (`blocks.6.ln2.hook_normalized`, the output
of `post_attention_layernorm`) and predicts the MLP's output (`blocks.6.hook_mlp_out`). It is
a deterministic SAELens `transcoder` (ReLU, no skip connection, 64 latents) built from the
training texts of `spliced_eval.py` (not the evaluated ones):

  b_dec = the mean MLP output; V = its top 32 principal directions (unit rows, sign fixed);
  the coordinates of the centred outputs along V are regressed (ridge, in the span of the
  inputs' top 48 principal directions) on the inputs; W_enc = [B, -B], W_dec = [V; -V], and
  each b_enc is the regression's intercept less a threshold moved into the widest gap between
  the evaluated positions' pre-activations (no pre-activation near zero at a spliced position).

A forward hook on `model.model.layers[6].mlp` records its input and output and, for the
spliced variants, replaces the output at the splice positions by the transcoder's prediction
from the clean input (the input is upstream of the splice, so it is the clean one), by zero,
or by the mean output. Every metric follows spliced_eval.py with x the clean MLP output.

Writes OUTPUT_DIR (default crates/eval/tests/fixtures/spliced_transcoder/):
  transcoder/cfg.json, transcoder/sae_weights.safetensors, expected.json

    HF_HUB_OFFLINE=1 /tmp/refenv/bin/python reference/spliced_transcoder.py [GGUF_PATH] [OUTPUT_DIR]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spliced_eval as ref  # noqa: E402

LAYER = 6
IN_HOOK = f"blocks.{LAYER}.ln2.hook_normalized"
OUT_HOOK = f"blocks.{LAYER}.hook_mlp_out"
N_COMPONENTS = 32
N_INPUT_COMPONENTS = 48
RIDGE = 1e-2


class MlpSplicer:
    """Forward hook on an MLP: records its input and output; with `replacement`, returns the
    output with positions `where` replaced."""

    def __init__(self):
        self.x_in = self.y = self.where = self.replacement = None

    def __call__(self, _module, inputs, output):
        self.x_in = inputs[0].detach().clone()
        self.y = output.detach().clone()
        if self.replacement is None:
            return None
        return torch.where(self.where[..., None], self.replacement.to(output.dtype), output)


def run(model, hook, ids, mask, pos, where=None, replacement=None):
    hook.where, hook.replacement = where, replacement
    try:
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    finally:
        hook.where, hook.replacement = None, None


def build_transcoder(model, hook, tok, special, eval_in):
    xs, ys = [], []
    for text in ref.TRAIN_TEXTS:
        ids = [ref.SEP_ID] + tok(text, add_special_tokens=False)["input_ids"]
        t = torch.tensor([ids])
        m = torch.ones_like(t)
        run(model, hook, t, m, ref.position_ids(m))
        keep = [i for i, tid in enumerate(ids) if tid not in special]
        xs.append(hook.x_in[0].to(torch.float64).numpy()[keep])
        ys.append(hook.y[0].to(torch.float64).numpy()[keep])
    X, Y = np.concatenate(xs), np.concatenate(ys)
    y_mean = Y.mean(0)
    _, _, vt = np.linalg.svd(Y - y_mean, full_matrices=False)
    v = vt[:N_COMPONENTS].copy()
    for k in range(N_COMPONENTS):
        if v[k, np.argmax(np.abs(v[k]))] < 0:
            v[k] = -v[k]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    coords = (Y - y_mean) @ v.T  # [n, 32]
    x_mean = X.mean(0)
    _, _, ut = np.linalg.svd(X - x_mean, full_matrices=False)
    u = ut[:N_INPUT_COMPONENTS]  # [48, d]
    Z = (X - x_mean) @ u.T
    beta = np.linalg.solve(Z.T @ Z + RIDGE * np.trace(Z.T @ Z) / Z.shape[1] * np.eye(Z.shape[1]), Z.T @ coords)
    b_lin = u.T @ beta  # [d, 32]: coords ≈ (x - x_mean) b_lin
    intercept = -x_mean @ b_lin
    w_enc = np.concatenate([b_lin, -b_lin], axis=1).astype(np.float32)  # [d, 64]
    lin = np.concatenate([intercept, -intercept])
    w_dec = np.concatenate([v, -v]).astype(np.float32)
    b_dec = y_mean.astype(np.float32)
    # Thresholds at the middle of the widest gap between evaluated pre-activations near
    # a small positive target, so no spliced position sits near zero.
    proj = eval_in.astype(np.float64) @ w_enc.astype(np.float64) + lin  # [n_eval, 64]
    rng = np.random.default_rng(ref.DICT_SEED)
    b_enc = np.zeros(2 * N_COMPONENTS)
    for i in range(2 * N_COMPONENTS):
        rms = float(np.sqrt((proj[:, i] ** 2).mean())) or 1.0
        target = ref.BIAS_SCALE * rms * rng.uniform()
        lo, hi = max(target - ref.GAP_WINDOW * rms, 0.0), target + ref.GAP_WINDOW * rms
        vals = np.sort(np.concatenate([[lo, hi], proj[:, i][(proj[:, i] > lo) & (proj[:, i] < hi)]]))
        j = int(np.argmax(np.diff(vals)))
        b_enc[i] = lin[i] - 0.5 * (vals[j] + vals[j + 1])
    return w_enc, b_enc.astype(np.float32), w_dec, b_dec, int(X.shape[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", nargs="?", default=ref.default_gguf_path())
    ap.add_argument(
        "output",
        nargs="?",
        default=os.path.join(ref.REPO_ROOT, "crates", "eval", "tests", "fixtures", "spliced_transcoder"),
    )
    args = ap.parse_args()
    gguf_dir, gguf_file = os.path.split(os.path.abspath(args.gguf))
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_file, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    special = set(ref.special_ids_of(tok))

    doc_ids = {name: tok(text, add_special_tokens=False)["input_ids"] for name, text in ref.DOCS.items()}
    rows = [sum(([ref.SEP_ID] + doc_ids[n] for n in names), []) for names in ref.ROWS]
    lens = [len(r) for r in rows]
    B, T = len(rows), max(lens)
    ids_np = np.full((B, T), ref.SEP_ID, dtype=np.int64)
    mask_np = np.zeros((B, T), dtype=np.int64)
    for b, r in enumerate(rows):
        ids_np[b, : len(r)] = r
        mask_np[b, : len(r)] = 1
    special_np = np.array([[int(mask_np[b, t] == 1 and ids_np[b, t] in special) for t in range(T)] for b in range(B)])
    ids, mask = torch.tensor(ids_np), torch.tensor(mask_np)
    pos = ref.position_ids(mask)
    S_np = (mask_np == 1) & (special_np == 0)
    C_np = np.zeros((B, T), dtype=bool)
    C_np[:, :-1] = (mask_np[:, :-1] == 1) & (mask_np[:, 1:] == 1) & (special_np[:, :-1] == 0)
    S, C = torch.tensor(S_np), torch.tensor(C_np)
    n_S, n_C = int(S_np.sum()), int(C_np.sum())

    hook = MlpSplicer()
    handle = model.model.layers[LAYER].mlp.register_forward_hook(hook)
    out_clean = run(model, hook, ids, mask, pos)
    x_in, y = hook.x_in, hook.y  # [B, T, d] float32
    lp_clean = ref.log_probs(out_clean.logits)
    y_S = y[S]
    mu64 = y_S.to(torch.float64).mean(0)

    w_enc, b_enc, w_dec, b_dec, n_train = build_transcoder(model, hook, tok, special, x_in[S].numpy())
    W_enc, B_enc, W_dec, B_dec = (torch.from_numpy(a) for a in (w_enc, b_enc, w_dec, b_dec))
    pre = x_in @ W_enc + B_enc  # SAELens transcoder: no b_dec on the input
    f = torch.relu(pre)
    y_hat = f @ W_dec + B_dec
    min_abs_pre = float(pre[S].abs().min())
    print(f"== {n_train} training positions; min |pre| over S: {min_abs_pre:.4g} ==", file=sys.stderr)

    def variant(replacement):
        return ref.log_probs(run(model, hook, ids, mask, pos, where=S, replacement=replacement).logits)

    lp = {
        "spliced": variant(y_hat),
        "zero": variant(torch.zeros_like(y)),
        "mean": variant(mu64.to(torch.float32).expand_as(y)),
        "identity": variant(y),
    }
    handle.remove()
    targets = torch.tensor(np.concatenate([ids_np[:, 1:], np.zeros((B, 1), dtype=np.int64)], axis=1))

    def ce_of(l):
        return float((-l.gather(-1, targets[..., None])[..., 0])[C].sum() / n_C)

    def kl_of(l):
        return float((lp_clean.exp() * (lp_clean - l)).sum(-1)[C].sum() / n_C)

    ce_clean = ce_of(lp_clean)
    assert kl_of(lp["identity"]) == 0.0 and ce_of(lp["identity"]) == ce_clean, "identity splice"
    ce_spliced, ce_zero, ce_mean = (ce_of(lp[k]) for k in ("spliced", "zero", "mean"))
    kl_spliced, kl_zero, kl_mean = (kl_of(lp[k]) for k in ("spliced", "zero", "mean"))

    recon = ref.reconstruction_metrics(y_S.to(torch.float64), y_hat[S].to(torch.float64), mu64)
    sparsity = ref.sparsity_metrics(f[S].to(torch.float64))
    downstream = ref.downstream_metrics(ce_clean, ce_spliced, ce_zero, ce_mean, kl_spliced, kl_zero, kl_mean)
    d = y_S.shape[1]

    out_dir = os.path.abspath(args.output)
    tdir = os.path.join(out_dir, "transcoder")
    os.makedirs(tdir, exist_ok=True)
    save_file(
        {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec},
        os.path.join(tdir, "sae_weights.safetensors"),
    )
    cfg = {
        "architecture": "transcoder",
        "d_in": int(d),
        "d_out": int(d),
        "d_sae": 2 * N_COMPONENTS,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": False,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": ref.SAELENS_VERSION,
            "model_name": ref.MODEL_NAME,
            "hook_name": IN_HOOK,
            "hook_name_out": OUT_HOOK,
            "context_size": T,
            "prepend_bos": True,
            "exclude_special_tokens": True,
        },
    }
    with open(os.path.join(tdir, "cfg.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=2)
        fh.write("\n")
    fixture = {
        "model": gguf_file,
        "input_hook": IN_HOOK,
        "hook": OUT_HOOK,
        "rows": [
            {
                "ids": [int(v) for v in ids_np[b]],
                "mask": [int(v) for v in mask_np[b]],
                "special": [int(v) for v in special_np[b]],
            }
            for b in range(B)
        ],
        "counts": {"splice_positions": n_S, "ce_positions": n_C},
        "reconstruction": recon,
        "sparsity": sparsity,
        "downstream": downstream,
        "transcoder": {"train_positions": n_train, "min_abs_pre_activation": ref.f32(min_abs_pre)},
    }
    with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as fh:
        json.dump(fixture, fh, separators=(",", ":"))
        fh.write("\n")
    for k, v in list(downstream.items()) + list(recon.items()) + [(k, sparsity[k]) for k in ("l0", "l1", "dead")]:
        print(f"  {k:32s} {v!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
