#!/usr/bin/env python3
"""Reference spliced-model metrics for SmolLM2-135M-Instruct (Q4_1 GGUF) with HF transformers.

An independent computation of the metrics in METRICS.md ("Which positions count",
"Reconstruction", "Sparsity", "Downstream") on a small padded batch, for saelab's evaluator
to be compared against (same token ids, same dictionary, 1e-3 relative).

What it does:

  1. Loads the GGUF exactly as smollm2_gguf_logits.py does (transformers de-quantizes every
     tensor to float32; eager attention; the LM head is tied to `token_embd.weight`, the
     GGUF has no `output.weight`).
  2. Builds a deterministic SAELens "standard" (ReLU) dictionary for
     `blocks.6.hook_resid_post` (output of decoder layer 6 = `hidden_states[7]`) from the
     layer-6 activations of a few training texts (not the evaluated ones): b_dec = their
     mean, V = their top 32 principal directions (unit rows), W_dec = [V; -V] (64 latents),
     W_enc = W_dec.T, b_enc = -0.1 * rms(projection) * uniform(0, 1) (seeded), each
     threshold moved to the middle of the widest nearby gap between the evaluated
     positions' projections, so that no pre-activation at a spliced position is close to
     0 (l0 and density do not flip under tiny numerical differences).
  3. Builds 4 rows from 5 short texts (GGUF tokenizer, nothing added): each row starts
     with id 0 (`<|endoftext|>`), row 2 is packed `[0] + doc_a + [0] + doc_b`; rows are
     right-padded with id 0 to the longest, attention_mask 0 on padding,
     position_ids = cumsum(mask) - 1 clamped at 0.
  4. Runs four variants in one batch each, replacing the layer-6 output with a forward
     hook at the splice positions S (mask 1 and not special): clean (no edit), spliced
     (x -> x_hat, float32), zero (x -> 0), mean (x -> mu, mu = float64 mean of x over S
     of all rows, cast to float32).
  5. Computes, in float64 from the float32 model outputs: CE over positions C (mask[t] = 1,
     t + 1 < len, mask[t + 1] = 1, input token at t not special) for each variant, KL of
     each variant from clean, reconstruction and sparsity metrics over S on the clean x
     (the whole fixture is one batch, also for `explained_variance_legacy`).

Checks printed (and stored in the fixture): splicing x_hat = x gives kl == 0 and the clean
CE exactly; each row run alone (unpadded) gives the batch's per-position clean CE within
1e-5; the hook's x equals `hidden_states[7]`.

Writes OUTPUT_DIR (default crates/eval/tests/fixtures/spliced_reference/):

  dictionary/cfg.json                  SAELens v6 cfg (keys as saelab writes them)
  dictionary/sae_weights.safetensors   W_enc [576, 64], b_enc [64], W_dec [64, 576],
                                       b_dec [576], float32
  expected.json                        rows, positions, every metric, per-position CE

Set up and run (CPU only, about a minute on 2 cores; no network):

    python3 -m venv /work/refenv
    /work/refenv/bin/pip install torch transformers gguf numpy accelerate sentencepiece tokenizers safetensors
    HF_HUB_OFFLINE=1 /work/refenv/bin/python reference/spliced_eval.py [GGUF_PATH] [OUTPUT_DIR]

Float32 values (weights aside) are written as the shortest decimal that reads back as the
same float32; float64 metrics as Python's repr (shortest round-trip float64).
"""

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
LAYER_INDEX = 6  # model.model.layers[6]; its output is hidden_states[7]
HOOK_NAME = f"blocks.{LAYER_INDEX}.hook_resid_post"
N_COMPONENTS = 32  # d_sae = 2 * N_COMPONENTS
DICT_SEED = 20250611
BIAS_SCALE = 0.1  # b_enc_i ~ -BIAS_SCALE * rms(projection_i) * uniform(0, 1)
GAP_WINDOW = 0.1  # thresholds move at most this many rms(projection) to find a wide gap
SEP_ID = 0  # <|endoftext|>: row start, document separator, padding
SAELENS_VERSION = "6.18.0"

# Texts whose layer-6 activations define the dictionary (not evaluated).
TRAIN_TEXTS = [
    "Photosynthesis converts light energy into chemical energy. Plants take in carbon dioxide "
    "and water, and with sunlight they produce glucose and release oxygen into the air.",
    "import numpy as np\n\ndef normalize(v):\n    n = np.linalg.norm(v)\n    return v / n if n > 0 else v\n",
    "The meeting was moved to Thursday at 3 pm because the projector in room 204 was broken. "
    "Please bring your laptops and the printed agenda.",
    "Once upon a time, in a village at the edge of a dark forest, there lived an old clockmaker "
    "who repaired every clock in town except his own.",
    "SELECT name, COUNT(*) AS orders FROM customers JOIN orders ON customers.id = orders.customer_id "
    "GROUP BY name ORDER BY orders DESC LIMIT 10;",
    "The stock market fell sharply on Monday as investors worried about rising interest rates, "
    "while oil prices climbed for the third day in a row.",
    "To bake bread, mix flour, water, salt and yeast, knead the dough for ten minutes, let it rise "
    "for an hour, shape it, and bake at 230 degrees.",
    "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\nprintf(\"%d\\n\", sum);\n",
]

# The evaluated documents (5 texts -> 4 rows; row 2 packs two of them).
DOCS = {
    "prose": "The library opens at nine in the morning, but most students arrive after lunch, "
    "when the reading rooms are quiet and the light through the tall windows is warm. "
    "On Fridays it closes early, so the librarians ask everyone to return their books before four.",
    "code": "def mean(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n\n"
    "print(mean([1, 2, 3, 4]))\n",
    "list": "Shopping list: eggs, milk, 2 apples, bread and a jar of honey.",
    "question": "Why is the sky blue? Sunlight is scattered by air molecules, and blue light scatters the most.",
    "short": "Rust makes memory safety a compile-time property: the borrow checker rejects dangling references.",
}
ROWS = [
    ["prose"],
    ["code"],
    ["list", "question"],  # packed: [0] + list + [0] + question
    ["short"],
]


def default_gguf_path():
    home = os.environ.get("SAELAB_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "saelab")
    return os.path.join(home, "models", GGUF_NAME)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def f32(x):
    """Shortest decimal (as a Python float) that reads back as the float32 `x`,
    both when parsed directly as float32 and when parsed as float64 then cast."""
    x = np.float32(x)
    if not np.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    short = float(np.format_float_scientific(x, unique=True))
    if np.float32(short) == x:
        return short
    return float(x)  # exact value of the float32, always round-trips


def f64(x):
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return x  # json writes repr(), the shortest decimal that reads back the same float64


def special_ids_of(tok):
    """Ids the tokenizer marks special: all_special_ids plus added tokens flagged special."""
    ids = set(int(i) for i in tok.all_special_ids)
    ids |= {int(i) for i, t in tok.added_tokens_decoder.items() if t.special}
    return sorted(ids)


def gguf_control_ids(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    f = r.fields["tokenizer.ggml.token_type"]
    return [i for i, j in enumerate(f.data) if int(f.parts[j][0]) == 3]


class Splicer:
    """Forward hook on a decoder layer: records its output and, when `replacement` is set,
    returns the output with positions `where` replaced by `replacement` ([B, T, d])."""

    def __init__(self):
        self.captured = None
        self.where = None
        self.replacement = None

    def __call__(self, _module, _inputs, output):
        h = output[0] if isinstance(output, tuple) else output
        self.captured = h.detach().clone()
        if self.replacement is None:
            return None
        new = torch.where(self.where[..., None], self.replacement.to(h.dtype), h)
        if isinstance(output, tuple):
            return (new,) + tuple(output[1:])
        return new


def forward(model, splicer, ids, mask, pos, where=None, replacement=None):
    splicer.where, splicer.replacement = where, replacement
    try:
        with torch.no_grad():
            out = model(
                input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, output_hidden_states=True
            )
    finally:
        splicer.where, splicer.replacement = None, None
    return out


def position_ids(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0).masked_fill(mask == 0, 0)


def build_dictionary(model, splicer, tok, special, eval_x):
    """PCA dictionary from TRAIN_TEXTS; thresholds placed away from the evaluated projections."""
    acts = []
    for text in TRAIN_TEXTS:
        ids = [SEP_ID] + tok(text, add_special_tokens=False)["input_ids"]
        t = torch.tensor([ids])
        m = torch.ones_like(t)
        forward(model, splicer, t, m, position_ids(m))
        h = splicer.captured[0].to(torch.float64).numpy()
        keep = [i for i, tid in enumerate(ids) if tid not in special]
        acts.append(h[keep])
    acts = np.concatenate(acts)  # [n, d] float64
    n_train = acts.shape[0]
    mean = acts.mean(0)
    centered = acts - mean
    _, sing, vt = np.linalg.svd(centered, full_matrices=False)
    v = vt[:N_COMPONENTS].copy()
    # Fix the SVD's sign ambiguity: the largest-|.| entry of each direction is positive.
    for k in range(N_COMPONENTS):
        if v[k, np.argmax(np.abs(v[k]))] < 0:
            v[k] = -v[k]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rms = sing[:N_COMPONENTS] / math.sqrt(n_train)

    w_dec = np.concatenate([v, -v]).astype(np.float32)  # [64, d]
    w_enc = np.ascontiguousarray(w_dec.T)  # [d, 64]
    b_dec = mean.astype(np.float32)

    # Thresholds: target tau_i = BIAS_SCALE * rms * u (u ~ U(0,1), seeded); latent i fires
    # when its projection s_i = (x - b_dec) . w_i exceeds tau_i (b_enc_i = -tau_i). Move
    # tau_i to the middle of the widest gap between evaluated projections within
    # GAP_WINDOW * rms of the target, so no evaluated pre-activation sits near zero.
    rng = np.random.default_rng(DICT_SEED)
    u = rng.uniform(0.0, 1.0, size=2 * N_COMPONENTS)
    rms2 = np.concatenate([rms, rms])
    proj = (eval_x.astype(np.float32) - b_dec).astype(np.float64) @ w_enc.astype(np.float64)  # [n_eval, 64]
    b_enc = np.zeros(2 * N_COMPONENTS, dtype=np.float64)
    for i in range(2 * N_COMPONENTS):
        target = BIAS_SCALE * rms2[i] * u[i]
        lo_w, hi_w = max(target - GAP_WINDOW * rms2[i], 0.0), target + GAP_WINDOW * rms2[i]
        vals = np.sort(np.concatenate([[lo_w, hi_w], proj[:, i][(proj[:, i] > lo_w) & (proj[:, i] < hi_w)]]))
        gaps = np.diff(vals)
        j = int(np.argmax(gaps))
        b_enc[i] = -0.5 * (vals[j] + vals[j + 1])
    b_enc = b_enc.astype(np.float32)
    info = {
        "train_texts": TRAIN_TEXTS,
        "train_positions": int(n_train),
        "seed": DICT_SEED,
        "bias_scale": BIAS_SCALE,
        "gap_window": GAP_WINDOW,
        "component_rms": [f64(r) for r in rms],
    }
    return w_enc, b_enc, w_dec, b_dec, info


def encode(x, w_enc, b_enc, w_dec, b_dec):
    """SAELens standard forward in float32: f = relu((x - b_dec) W_enc + b_enc), x_hat = f W_dec + b_dec."""
    pre = (x - b_dec) @ w_enc + b_enc
    f = torch.relu(pre)
    x_hat = f @ w_dec + b_dec
    return pre, f, x_hat


def reconstruction_metrics(X, XH, mu64):
    """METRICS.md's reconstruction metrics of XH against X (float64, [n, d]); mu64 the mean of X."""
    d = X.shape[1]
    err2 = ((X - XH) ** 2).sum(-1)
    dev2 = ((X - mu64) ** 2).sum(-1)
    xn, xhn = X.norm(dim=-1), XH.norm(dim=-1)
    fvu = float(err2.sum() / dev2.sum())
    return {
        "mse": float((err2 / d).mean()),
        "sse_per_token": float(err2.mean()),
        "l2_loss": float(err2.sqrt().mean()),
        "fvu": fvu,
        "variance_explained": 1.0 - fvu,
        "cossim": float(((X * XH).sum(-1) / (xn * xhn)).mean()),
        "relative_norm": float((xhn / xn).mean()),
        "shrinkage": float((xhn**2).sum() / (X * XH).sum()),
        "explained_variance_legacy": float((1.0 - err2 / dev2).mean()),
    }


def sparsity_metrics(F):
    """L0, L1, dead latents and density of features F (float64, [n, d_sae])."""
    fires = F != 0
    density = fires.to(torch.float64).mean(0)
    return {
        "l0": float(fires.sum(-1).to(torch.float64).mean()),
        "l1": float(F.abs().sum(-1).mean()),
        "dead": int((density == 0).sum()),
        "density": [f64(v) for v in density],
    }


def downstream_metrics(ce_clean, ce_spliced, ce_zero, ce_mean, kl_spliced, kl_zero, kl_mean):
    return {
        "ce_clean": ce_clean,
        "ce_spliced": ce_spliced,
        "ce_zero": ce_zero,
        "ce_mean": ce_mean,
        "ce_delta": ce_spliced - ce_clean,
        "loss_recovered": (ce_zero - ce_spliced) / (ce_zero - ce_clean),
        "loss_recovered_mean_ablation": (ce_mean - ce_spliced) / (ce_mean - ce_clean),
        "kl": kl_spliced,
        "kl_zero": kl_zero,
        "kl_mean": kl_mean,
        "kl_div_score": (kl_zero - kl_spliced) / kl_zero,
    }


def log_probs(logits):
    return torch.log_softmax(logits.to(torch.float64), dim=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", nargs="?", default=default_gguf_path())
    ap.add_argument(
        "output",
        nargs="?",
        default=os.path.join(REPO_ROOT, "crates", "eval", "tests", "fixtures", "spliced_reference"),
    )
    args = ap.parse_args()

    gguf_path = os.path.abspath(args.gguf)
    gguf_dir, gguf_file = os.path.split(gguf_path)
    torch.manual_seed(0)

    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_file, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    print(
        f"== model: tie_word_embeddings={model.config.tie_word_embeddings}, lm_head shares "
        f"embed_tokens storage: {tied}, attn={model.config._attn_implementation} ==",
        file=sys.stderr,
    )

    special_list = special_ids_of(tok)
    control = gguf_control_ids(gguf_path)
    print(f"== special ids (tokenizer): {special_list}; GGUF control tokens: {control} ==", file=sys.stderr)
    special = set(special_list)
    assert SEP_ID in special

    # ---- rows ----
    doc_ids = {}
    for name, text in DOCS.items():
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert not any(i in special for i in ids), f"{name} tokenizes to a special token"
        assert tok.decode(ids) == text, f"{name} does not round-trip"
        doc_ids[name] = ids
    rows = []
    for names in ROWS:
        ids = []
        for name in names:
            ids += [SEP_ID] + doc_ids[name]
        rows.append(ids)
    lens = [len(r) for r in rows]
    assert len(set(lens)) == len(lens), f"row lengths must differ: {lens}"
    assert 20 <= min(lens) and max(lens) <= 64, lens
    T = max(lens)
    B = len(rows)
    ids_np = np.full((B, T), SEP_ID, dtype=np.int64)
    mask_np = np.zeros((B, T), dtype=np.int64)
    for b, r in enumerate(rows):
        ids_np[b, : len(r)] = r
        mask_np[b, : len(r)] = 1
    special_np = np.array([[int(mask_np[b, t] == 1 and ids_np[b, t] in special) for t in range(T)] for b in range(B)])
    ids = torch.tensor(ids_np)
    mask = torch.tensor(mask_np)
    pos = position_ids(mask)
    print(f"== rows: lengths {lens}, padded to {T} ==", file=sys.stderr)

    S_np = (mask_np == 1) & (special_np == 0)  # splice / measured positions
    C_np = np.zeros((B, T), dtype=bool)  # CE / KL positions
    C_np[:, :-1] = (mask_np[:, :-1] == 1) & (mask_np[:, 1:] == 1) & (special_np[:, :-1] == 0)
    S = torch.tensor(S_np)
    n_S, n_C = int(S_np.sum()), int(C_np.sum())
    print(f"== |S| = {n_S}, |C| = {n_C} ==", file=sys.stderr)

    splicer = Splicer()
    handle = model.model.layers[LAYER_INDEX].register_forward_hook(splicer)

    # ---- clean ----
    out_clean = forward(model, splicer, ids, mask, pos)
    x = splicer.captured  # [B, T, d] float32
    assert torch.equal(x, out_clean.hidden_states[LAYER_INDEX + 1]), "hook output is not hidden_states[7]"
    lp_clean = log_probs(out_clean.logits)
    x_S = x[S]  # [n_S, d] float32
    mu64 = x_S.to(torch.float64).mean(0)
    mu32 = mu64.to(torch.float32)

    # ---- dictionary ----
    w_enc, b_enc, w_dec, b_dec, dict_info = build_dictionary(model, splicer, tok, special, x_S.numpy())
    W_enc, B_enc, W_dec, B_dec = (torch.from_numpy(a) for a in (w_enc, b_enc, w_dec, b_dec))
    pre, f, x_hat = encode(x, W_enc, B_enc, W_dec, B_dec)  # float32, [B, T, ...]
    min_abs_pre = float(pre[S].abs().min())
    min_rel_pre = float((pre[S].abs() / torch.from_numpy(np.concatenate([dict_info["component_rms"]] * 2)).float()).min())
    print(f"== min |pre-activation| over S: {min_abs_pre:.4g} ({min_rel_pre:.4g} x rms) ==", file=sys.stderr)

    def variant(replacement):
        out = forward(model, splicer, ids, mask, pos, where=S, replacement=replacement)
        return log_probs(out.logits)

    lp_spliced = variant(x_hat)
    lp_zero = variant(torch.zeros_like(x))
    lp_mean = variant(mu32.expand_as(x))
    lp_identity = variant(x)  # check (a)

    targets = torch.tensor(np.concatenate([ids_np[:, 1:], np.zeros((B, 1), dtype=np.int64)], axis=1))
    C = torch.tensor(C_np)

    def ce_per_pos(lp):
        return -lp.gather(-1, targets[..., None])[..., 0]  # [B, T] float64

    def kl_per_pos(lp):
        p = lp_clean.exp()
        return (p * (lp_clean - lp)).sum(-1)  # [B, T] float64

    def mean_over_C(v):
        return float(v[C].sum() / n_C)

    ce = {name: ce_per_pos(lp) for name, lp in [("clean", lp_clean), ("spliced", lp_spliced), ("zero", lp_zero), ("mean", lp_mean), ("identity", lp_identity)]}
    kl = {name: kl_per_pos(lp) for name, lp in [("spliced", lp_spliced), ("zero", lp_zero), ("mean", lp_mean), ("identity", lp_identity)]}
    ce_clean, ce_spliced, ce_zero, ce_mean = (mean_over_C(ce[k]) for k in ("clean", "spliced", "zero", "mean"))
    kl_spliced, kl_zero, kl_mean = (mean_over_C(kl[k]) for k in ("spliced", "zero", "mean"))

    # ---- check (a): splicing x_hat = x changes nothing ----
    kl_identity = mean_over_C(kl["identity"])
    ce_identity = mean_over_C(ce["identity"])
    check_a = kl_identity == 0.0 and ce_identity == ce_clean and torch.equal(ce["identity"][C], ce["clean"][C])
    print(f"check (a) identity splice: kl = {kl_identity!r}, ce = {ce_identity!r} vs clean {ce_clean!r} -> {'ok' if check_a else 'FAIL'}", file=sys.stderr)

    # ---- check (b): each row alone, unpadded ----
    max_diff_b = 0.0
    for b, r in enumerate(rows):
        t = torch.tensor([r])
        m = torch.ones_like(t)
        out = forward(model, splicer, t, m, position_ids(m))
        lp = log_probs(out.logits)[0]
        alone = -lp[:-1].gather(-1, t[0, 1:, None])[..., 0]
        cb = C_np[b, : len(r) - 1]
        d = (alone[cb] - ce["clean"][b, : len(r) - 1][cb]).abs().max().item()
        max_diff_b = max(max_diff_b, d)
    check_b = max_diff_b <= 1e-5
    print(f"check (b) rows alone vs padded batch: max |dCE| = {max_diff_b:.3g} -> {'ok' if check_b else 'FAIL'}", file=sys.stderr)
    handle.remove()
    assert check_a and check_b

    # ---- reconstruction and sparsity over S, float64 from float32 ----
    recon = reconstruction_metrics(x_S.to(torch.float64), x_hat[S].to(torch.float64), mu64)
    sparsity = sparsity_metrics(f[S].to(torch.float64))
    d = x_S.shape[1]
    downstream = downstream_metrics(ce_clean, ce_spliced, ce_zero, ce_mean, kl_spliced, kl_zero, kl_mean)

    def per_pos(v):
        return [[f64(v[b, t]) if C_np[b, t] else None for t in range(T)] for b in range(B)]

    # ---- write ----
    out_dir = os.path.abspath(args.output)
    dict_dir = os.path.join(out_dir, "dictionary")
    os.makedirs(dict_dir, exist_ok=True)
    save_file(
        {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec},
        os.path.join(dict_dir, "sae_weights.safetensors"),
    )
    cfg = {
        "architecture": "standard",
        "d_in": int(d),
        "d_sae": 2 * N_COMPONENTS,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAELENS_VERSION,
            "model_name": MODEL_NAME,
            "hook_name": HOOK_NAME,
            "context_size": T,
            "prepend_bos": True,
            "dataset_path": None,
            "exclude_special_tokens": True,
        },
    }
    with open(os.path.join(dict_dir, "cfg.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=2)
        fh.write("\n")

    fixture = {
        "model": gguf_file,
        "gguf_sha256": sha256_file(gguf_path),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "gguf": importlib.metadata.version("gguf"),
            "accelerate": importlib.metadata.version("accelerate"),
        },
        "hook": HOOK_NAME,
        "hidden_states_index": LAYER_INDEX + 1,
        "d": int(d),
        "d_sae": 2 * N_COMPONENTS,
        "special_ids": special_list,
        "pad_id": SEP_ID,
        "definitions": {
            "splice_positions": "mask 1 and not special (special positions keep their activation)",
            "ce_positions": "mask[t] = 1, t + 1 < len, mask[t + 1] = 1, token at t not special",
            "mu": "float64 mean of the clean x over the splice positions of all rows (cast to float32 for ce_mean)",
            "legacy_mean": "mu (the whole fixture is one batch)",
            "position_ids": "cumsum(mask) - 1, 0 where mask is 0",
            "log": "natural",
        },
        "rows": [
            {
                "docs": ROWS[b],
                "ids": [int(v) for v in ids_np[b]],
                "mask": [int(v) for v in mask_np[b]],
                "special": [int(v) for v in special_np[b]],
                "length": lens[b],
            }
            for b in range(B)
        ],
        "counts": {"splice_positions": n_S, "ce_positions": n_C},
        "mu_norm": f64(mu64.norm()),
        "reconstruction": recon,
        "sparsity": sparsity,
        "downstream": downstream,
        "per_position": {
            "ce_clean": per_pos(ce["clean"]),
            "ce_spliced": per_pos(ce["spliced"]),
            "kl_spliced": per_pos(kl["spliced"]),
        },
        "dictionary": dict_info | {"min_abs_pre_activation": f32(min_abs_pre), "min_pre_activation_over_rms": f32(min_rel_pre)},
        "checks": {
            "identity_splice_kl": kl_identity,
            "identity_splice_ce_equals_clean": ce_identity == ce_clean,
            "rows_alone_max_abs_ce_diff": f64(max_diff_b),
            "lm_head_tied_to_embed_tokens": bool(tied),
        },
    }
    path = os.path.join(out_dir, "expected.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(fixture, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")

    for k, v in list(downstream.items()) + list(recon.items()) + [(k, sparsity[k]) for k in ("l0", "l1", "dead")]:
        print(f"  {k:32s} {v!r}", file=sys.stderr)
    for root, _, files in os.walk(out_dir):
        for name in sorted(files):
            p = os.path.join(root, name)
            print(f"wrote {p} ({os.path.getsize(p)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
