"""Evaluation from Python is `saelab eval`: the same document, and a table of it."""

import json

import pytest

import saelab
from conftest import TINY, TINY_HOOK, run_cli


def without_paths(doc):
    for d in doc["dictionaries"]:
        d.pop("path")
    return doc


def test_evaluate_equals_the_command(tiny, trained, tmp_path):
    ours = saelab.evaluate(tiny, trained.saes, corpus="wiki", tokens=512, ctx=32, json=tmp_path / "py" / "eval.json", progress=False)
    args = ["eval", "--model", TINY, "--corpus", "wiki", "--tokens", 512, "--ctx", 32, "--json", tmp_path / "cli.json"]
    for name in trained.saes:
        args += ["--sae", f"{name}={trained.out}/final/{name}"]
    run_cli(*args)
    theirs = json.loads((tmp_path / "cli.json").read_text())
    theirs["model"] = ours["model"]  # named by the path given
    assert without_paths(dict(ours)) == without_paths(theirs)
    assert json.loads((tmp_path / "py" / "eval.json").read_text())["dictionaries"][0]["name"] == "0-topk-64-k4"
    assert (tmp_path / "py" / "report.html").is_file()


def test_folders_and_single_dictionaries_are_accepted(tiny, trained):
    folder = f"{trained.out}/final/0-topk-64-k4"
    results = saelab.evaluate(tiny, folder, corpus="wiki", tokens=64, ctx=32, progress=False)
    assert [d["name"] for d in results["dictionaries"]] == ["0-topk-64-k4"]
    assert results["dictionaries"][0]["hook"] == TINY_HOOK


def test_bad_input_is_named(tiny, trained):
    sae = trained.saes["0-topk-64-k4"]
    with pytest.raises(ValueError, match="`tokens` must be positive"):
        saelab.evaluate(tiny, sae, corpus="wiki", tokens=0, progress=False)
    with pytest.raises(ValueError, match="`hook`"):
        saelab.evaluate(tiny, sae, corpus="wiki", tokens=64, hook="blocks.99.hook_resid_post", progress=False)
    with pytest.raises(TypeError, match="`saes`"):
        saelab.evaluate(tiny, {"a": 3}, corpus="wiki", tokens=64, progress=False)
    with pytest.raises(saelab.SaelabError, match="width|d_in"):
        saelab.evaluate(tiny, sae, corpus="wiki", tokens=64, hook="blocks.0.mlp.hook_post", progress=False)


def test_results_as_a_table(tiny, trained):
    results = saelab.evaluate(tiny, trained.saes, corpus="wiki", tokens=64, ctx=32, progress=False)
    table = results.to_dataframe()
    assert list(table.index) == ["0-topk-64-k4", "1-relu-48"]
    by_name = {d["name"]: d for d in results["dictionaries"]}
    for name in table.index:
        assert table.loc[name, "ce_delta"] == by_name[name]["downstream"]["ce_delta"]
        assert table.loc[name, "d_sae"] == by_name[name]["d_sae"]
    assert {"fvu", "l0", "loss_recovered", "kl"} <= set(table.columns)


def test_pruned_copies_equal_the_command(tiny, trained, tmp_path):
    folder = f"{trained.out}/final/0-topk-64-k4"
    ours = saelab.evaluate(tiny, folder, corpus="wiki", tokens=256, ctx=32, prune_densest=[4, 16], progress=False)
    names = [d["name"] for d in ours["dictionaries"]]
    assert names == ["0-topk-64-k4", "0-topk-64-k4-pruned-4", "0-topk-64-k4-pruned-16"]
    run_cli("eval", "--model", TINY, "--corpus", "wiki", "--tokens", 256, "--ctx", 32, "--sae", folder,
            "--prune-densest", "4,16", "--json", tmp_path / "cli.json")
    theirs = json.loads((tmp_path / "cli.json").read_text())
    theirs["model"] = ours["model"]
    assert without_paths(dict(ours)) == without_paths(theirs)
    with pytest.raises(ValueError, match="prune_densest"):
        saelab.evaluate(tiny, folder, corpus="wiki", tokens=64, ctx=32, prune_densest=[64], progress=False)
