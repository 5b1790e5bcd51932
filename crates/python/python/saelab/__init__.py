"""saelab: sparse dictionary learning for language-model activations, from Python.

The model host, corpora and activation caches, dictionaries, training and evaluation of the
``saelab`` command, on NumPy arrays (and CPU PyTorch tensors, read without a copy)::

    import saelab
    model = saelab.Model()                      # the default model (scripts/setup.sh)
    acts = model.run("Hello, world", hooks=["blocks.6.hook_resid_post"])
    cache = saelab.harvest(model, "wiki", ["blocks.6.hook_resid_post"], "cache/l6", tokens=200_000)
    run = saelab.train("runs/l6", ["topk:k=32,width=4096"], cache="cache/l6")
    results = saelab.evaluate(model, run.saes, corpus="wiki", tokens=4096)

Long work releases the GIL. Errors from the library raise ``SaelabError`` with the message the
command would print; bad arguments raise ``TypeError``/``ValueError`` naming the argument.
"""

import os
import pathlib
from dataclasses import dataclass
from os import PathLike, fspath
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _progress
from ._saelab import Cache, ContextualSae, Corpus, Features, Model, Sae, SaelabError, __version__
from ._saelab import evaluate as _evaluate
from ._saelab import harvest as _harvest
from ._saelab import train as _train

__all__ = [
    "Cache",
    "ContextualSae",
    "Corpus",
    "EvalResults",
    "Features",
    "Model",
    "Sae",
    "SaelabError",
    "TrainedRun",
    "evaluate",
    "harvest",
    "train",
    "__version__",
]

Path = Union[str, PathLike]


def _corpus(corpus: Union[str, Corpus]) -> Corpus:
    if isinstance(corpus, Corpus):
        return corpus
    if isinstance(corpus, str):
        return Corpus(corpus)
    raise TypeError(f"`corpus` must be a saelab.Corpus or a corpus name, got {type(corpus).__name__}")


def harvest(
    model: Model,
    corpus: Union[str, Corpus],
    hooks: Union[str, Sequence[str]],
    out: Path,
    *,
    tokens: Optional[int] = None,
    ctx: int = 128,
    packing: str = "packed",
    dtype: str = "f16",
    batch: int = 32,
    shard_tokens: int = 32768,
    shuffle: Optional[int] = None,
    progress: bool = True,
) -> Cache:
    """Writes the activations of ``hooks`` over ``corpus`` into a cache folder ``out`` (as
    ``saelab harvest``) and returns it; rerunning resumes a stopped harvest. ``tokens`` stops
    after that many tokens (whole windows); ``shuffle`` shuffles documents with that seed."""
    hooks = [hooks] if isinstance(hooks, str) else list(hooks)
    windows = None if tokens is None else -(-tokens // ctx)
    bars = _progress.Bars(progress)
    try:
        return _harvest(
            model, _corpus(corpus), hooks, fspath(out), tokens=tokens, ctx=ctx,
            packing=packing, dtype=dtype, batch=batch, shard_tokens=shard_tokens,
            shuffle=shuffle, progress=lambda done: bars.set("harvest (windows)", done, windows or 0),
        )
    finally:
        bars.close()


@dataclass
class TrainedRun:
    """What ``train`` returns: the dictionaries by name, ``summary.json`` and the folder."""

    saes: Dict[str, Sae]
    summary: Dict[str, Any]
    out: str

    @property
    def report(self) -> str:
        """The run's HTML report."""
        return fspath(pathlib.Path(self.out) / "report.html")


def train(
    out: Path,
    sae: Union[str, Mapping[str, Any], Sequence[Union[str, Mapping[str, Any]]], None] = None,
    *,
    resume: bool = False,
    progress: bool = True,
    callback: Optional[Callable[[int, List[Dict[str, Any]]], None]] = None,
    **run: Any,
) -> TrainedRun:
    """Trains dictionaries into the run folder ``out``, exactly as ``saelab train`` does.

    ``sae`` is one spec or a list, as strings (``"topk:k=32,width=16384"``) or dicts of the
    same keys. The other settings are keywords named as in a TOML run file: ``cache`` (a
    harvest to read) or ``model``/``corpus`` (a live stream), ``hooks``, ``tokens``,
    ``batch``, ``seed``, ``checkpoint_every``, ``holdout_windows``, ``pca``, ``ica``, ...
    ``callback(step, stats)`` gets each step's statistics (one dict per dictionary).
    ``resume=True`` continues the run in ``out`` from its last checkpoint. Ctrl-C stops after
    a checkpoint and raises ``KeyboardInterrupt``.
    """
    if isinstance(sae, (str, Mapping)):
        sae = [sae]
    settings = {k: (fspath(v) if isinstance(v, PathLike) else v) for k, v in run.items()}
    if isinstance(settings.get("hooks"), str):
        settings["hooks"] = [settings["hooks"]]
    bars = _progress.Bars(progress)
    try:
        saes, summary = _train(
            fspath(out), list(sae or []), settings, resume=resume,
            progress=lambda phase, done, total: bars.set(phase, done, total),
            callback=callback,
        )
    finally:
        bars.close()
    return TrainedRun(saes=saes, summary=summary, out=fspath(out))


class EvalResults(dict):
    """The ``saelab eval --json`` document as a dict, with a table view."""

    def to_dataframe(self):
        """One row per dictionary: its reconstruction, sparsity and downstream metrics
        (needs pandas)."""
        import pandas as pd

        rows = []
        for d in self["dictionaries"]:
            row = {k: d[k] for k in ("name", "hook", "architecture", "d_in", "d_sae")}
            for group in ("reconstruction", "sparsity", "downstream"):
                row.update({k: v for k, v in d[group].items() if not isinstance(v, (list, dict))})
            rows.append(row)
        return pd.DataFrame(rows).set_index("name")


def evaluate(
    model: Model,
    saes: Union[Sae, Path, Mapping[str, Union[Sae, Path]], Sequence[Union[Sae, Path]]],
    *,
    corpus: Union[str, Corpus] = "default",
    tokens: int,
    ctx: int = 128,
    packing: str = "packed",
    batch: int = 8,
    dead_window: int = 1_000_000,
    include_special: bool = False,
    seed: int = 0,
    hook: Optional[str] = None,
    json: Optional[Path] = None,
    report: Optional[Path] = None,
    progress: bool = True,
    prune_densest: Sequence[int] = (),
) -> EvalResults:
    """Every metric of METRICS.md (reconstruction, sparsity, spliced CE/KL, loss recovered,
    the random-perturbation baseline) for ``saes`` on the first ``tokens`` tokens of
    ``corpus``, as ``saelab eval``. ``saes`` is a dictionary, a folder, or a dict/list of them.
    ``json`` writes the results (and ``report``, default ``report.html`` beside it).
    ``prune_densest=[16, 64]`` also evaluates each dictionary without its 16 (64) densest
    latents, as entries ``NAME-pruned-16`` (``--prune-densest``)."""
    bars = _progress.Bars(progress)
    names = ("hook means", "eval")
    try:
        results = _evaluate(
            model, _named_saes(saes), _corpus(corpus), tokens, ctx=ctx, packing=packing,
            batch=batch, dead_window=dead_window, include_special=include_special, seed=seed,
            hook=hook, json_path=None if json is None else fspath(json),
            report=None if report is None else fspath(report),
            progress=lambda p, done, total: bars.set(names[min(p, 2) - 1], done, total),
            prune_densest=list(prune_densest),
        )
    finally:
        bars.close()
    return EvalResults(results)


def _named_saes(saes) -> Dict[str, Sae]:
    """``saes`` as a dict of name → Sae; folders are loaded and named after themselves."""
    if isinstance(saes, Mapping):
        items = list(saes.items())
    else:
        if isinstance(saes, (Sae, str, PathLike)):
            saes = [saes]
        items = []
        for i, s in enumerate(saes):
            name = f"sae{i}" if isinstance(s, Sae) else os.path.basename(fspath(s).rstrip("/"))
            items.append((name, s))
    named = {}
    for name, s in items:
        if isinstance(s, (str, PathLike)):
            s = Sae.load(fspath(s))
        elif not isinstance(s, Sae):
            raise TypeError(f"`saes`: {name!r} is a {type(s).__name__}; expected a saelab.Sae or a folder")
        named[str(name)] = s
    return named
