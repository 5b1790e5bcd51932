"""Corpora and caches from Python: documents and windows, a harvest equal to the command's
byte for byte, and cached activations equal to a forward's."""

import json
import pathlib

import numpy as np
import pytest

import saelab
from saelab._saelab import harvest as _harvest
from conftest import TINY, TINY_HOOK, run_cli


def test_documents_carry_their_metadata():
    docs = saelab.Corpus("wiki").documents()
    first = next(docs)
    assert first["text"] and {"title", "topic", "source"} <= set(first)
    assert sum(1 for _ in zip(range(50), docs)) == 50


def test_windows_are_whole_and_marked(tiny):
    batches = list(saelab.Corpus("wiki").windows(tiny, ctx=16, batch=4, limit=10))
    assert [b["ids"].shape for b in batches] == [(4, 16), (4, 16), (2, 16)]
    first = batches[0]
    assert first["special"][0, 0] and first["mask"].all()
    assert first["ids"].dtype == np.int64 and first["special"].dtype == np.bool_


def test_a_harvest_from_python_equals_the_commands(tiny, tmp_path):
    ours = saelab.harvest(tiny, "wiki", [TINY_HOOK, "blocks.0.mlp.hook_post"], tmp_path / "py", tokens=2048, ctx=32, progress=False)
    run_cli("harvest", "--model", TINY, "--corpus", "wiki", "--hook", TINY_HOOK, "--hook", "blocks.0.mlp.hook_post",
            "--tokens", 2048, "--ctx", 32, "--out", tmp_path / "cli")
    assert ours.hooks == [(TINY_HOOK, 32), ("blocks.0.mlp.hook_post", 64)]
    theirs = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    ours_manifest = json.loads((tmp_path / "py" / "manifest.json").read_text())
    ours_manifest["spec"]["model"] = theirs["spec"]["model"]  # named by the path given
    assert ours_manifest == theirs
    for shard in theirs["shards"]:
        assert (tmp_path / "py" / shard["file"]).read_bytes() == (tmp_path / "cli" / shard["file"]).read_bytes()


def test_cached_activations_equal_a_forward(tiny, tiny_cache):
    batch = next(tiny_cache.windows(batch=4, start=2))
    assert batch["index"].tolist() == [2, 3, 4, 5]
    out = tiny.run(batch["ids"].tolist(), hooks=[TINY_HOOK], logits=False)
    np.testing.assert_allclose(batch[TINY_HOOK], out[TINY_HOOK], rtol=1e-5, atol=1e-5)
    assert tiny_cache.manifest["spec"]["hooks"] == [{"name": TINY_HOOK, "d": 32}]
    assert sum(len(b["ids"]) for b in tiny_cache.windows(batch=7)) == tiny_cache.windows_count


def test_bad_input_is_named(tiny, tmp_path):
    with pytest.raises(saelab.SaelabError, match="no-such-corpus"):
        saelab.Corpus("no-such-corpus")
    with pytest.raises(ValueError, match="`format`"):
        saelab.Corpus("wiki", format="xml")
    with pytest.raises(ValueError, match="`ctx`"):
        saelab.Corpus("wiki").windows(tiny, ctx=1)
    with pytest.raises(ValueError, match="`hooks`.*blocks.1.hook_resid_post.*twice|`hooks`.*repeat|`hooks`"):
        saelab.harvest(tiny, "wiki", [TINY_HOOK, TINY_HOOK], tmp_path / "h", tokens=64, progress=False)
    with pytest.raises(ValueError, match="`tokens` must be positive"):
        saelab.harvest(tiny, "wiki", TINY_HOOK, tmp_path / "h", tokens=0, progress=False)
    with pytest.raises(ValueError, match="`dtype`"):
        saelab.harvest(tiny, "wiki", TINY_HOOK, tmp_path / "h", tokens=64, dtype="f8", progress=False)
    with pytest.raises(saelab.SaelabError, match="manifest.json"):
        saelab.Cache(tmp_path)
    with pytest.raises(TypeError, match="`corpus`"):
        saelab.harvest(tiny, 3, TINY_HOOK, tmp_path / "h", progress=False)


def test_ctrl_c_stops_a_harvest_that_then_resumes_to_the_same_files(tiny, tiny_cache, tmp_path, sigint_raises):
    import os
    import signal

    out = tmp_path / "stopped"
    seen = []

    def press_ctrl_c_once(windows):
        seen.append(windows)
        if windows >= 64 and len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="run it again to resume"):
        _harvest(tiny, saelab.Corpus("wiki"), [TINY_HOOK], str(out), tokens=4096, ctx=32, dtype="f32",
                 shard_tokens=1024, progress=press_ctrl_c_once)
    stopped_at = json.loads((out / "manifest.json").read_text())
    assert not stopped_at["complete"]
    resumed = saelab.harvest(tiny, "wiki", TINY_HOOK, out, tokens=4096, ctx=32, dtype="f32", shard_tokens=1024, progress=False)
    whole = saelab.harvest(tiny, "wiki", TINY_HOOK, tmp_path / "whole", tokens=4096, ctx=32, dtype="f32", shard_tokens=1024, progress=False)
    assert 0 < len(stopped_at["shards"]) < len(whole.manifest["shards"])
    assert resumed.manifest == whole.manifest
    for shard in whole.manifest["shards"]:
        assert (out / shard["file"]).read_bytes() == (tmp_path / "whole" / shard["file"]).read_bytes()
