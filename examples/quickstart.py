"""saelab from Python, end to end on the default model: read activations at a hook, train a
small dictionary, evaluate it, look at what its features fire on, plot their densities.

Run it as a script (`python examples/quickstart.py [WORK_DIR]`) or cell by cell in Jupyter
(the `# %%` markers). It needs the package (README, "From Python") and the default model and
corpus (scripts/setup.sh); matplotlib and pandas are used when installed. With the defaults it
takes a few minutes on two cores; SAELAB_QUICKSTART_TOKENS makes it shorter or longer.
"""

# %% The model and a hook
import os
import sys
import tempfile

import numpy as np

import saelab

HOOK = "blocks.6.hook_resid_post"
TOKENS = int(os.environ.get("SAELAB_QUICKSTART_TOKENS", "100000"))
work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="saelab-quickstart-")

model = saelab.Model()
print(model, "-", len(model.hooks()), "hook points")
out = model.run("The capital of France is", hooks=[HOOK])
print(HOOK, out[HOOK].shape, "logits", out["logits"].shape)
print("next token:", repr(model.decode([int(out["logits"][0, -1].argmax())])))

# %% Activations of the wiki corpus into a cache
cache = saelab.harvest(model, "wiki", HOOK, os.path.join(work, "cache"), tokens=TOKENS, shuffle=0)
print(cache)

# %% Train a TopK dictionary on it
history = []
run = saelab.train(
    os.path.join(work, "run"),
    "topk:k=16,width=2048",
    cache=cache.path,
    batch=1024,
    holdout_windows=16,
    callback=lambda step, stats: history.append((step, stats[0]["fvu"], stats[0]["l0"])),
)
sae = next(iter(run.saes.values()))
print(sae, "held-out fvu", run.summary["holdout"]["dictionaries"][0]["fvu"])
print("fvu over training:", [round(fvu, 3) for _, fvu, _ in history[:: max(1, len(history) // 8)]])

# %% Evaluate: reconstruction, sparsity, and the model's loss with the dictionary spliced in
results = saelab.evaluate(model, run.saes, corpus="wiki", tokens=2048)
d = results["dictionaries"][0]
print(f"fvu {d['reconstruction']['fvu']:.3f}  L0 {d['sparsity']['l0']:.1f}  "
      f"CE +{d['downstream']['ce_delta']:.3f} nats  loss recovered {d['downstream']['loss_recovered']:.3f}")
try:
    print(results.to_dataframe()[["fvu", "l0", "ce_delta", "kl"]])
except ImportError:
    pass

# %% What fires on a text
text = "def parse(path):\n    return open(path).read()"
ids = model.tokenize(text)
acts = model.run([ids], hooks=[HOOK], logits=False)[HOOK][0]
features = sae.encode(np.ascontiguousarray(acts))
for token, row in zip(model.tokens(ids), features):
    top = np.argsort(-row)[:3]
    print(f"{token!r:>12}", "  ".join(f"#{j}={row[j]:.2f}" for j in top if row[j] > 0))

# %% Feature densities over the cache
fires, rows = np.zeros(sae.d_sae), 0
for batch in cache.windows(batch=64):
    x = batch[HOOK][~batch["special"]]
    indptr, indices, values = sae.encode_sparse(np.ascontiguousarray(x))
    np.add.at(fires, indices, 1)
    rows += len(x)
density = fires / rows
print(f"{(density == 0).mean():.1%} of the features never fired in {rows} tokens")
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.hist(np.log10(density[density > 0]), bins=50)
    plt.xlabel("log10 feature density")
    plt.ylabel("features")
    plt.savefig(os.path.join(work, "density.png"))
    print("plot:", os.path.join(work, "density.png"))
except ImportError:
    pass
print("report:", run.report)
