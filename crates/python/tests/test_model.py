"""The model host from Python: hooks read into arrays with masks, edits by functions and by
dictionaries, tokenizer round trips, and bad input named."""

import numpy as np
import pytest

import saelab
from conftest import HOOK, TINY_HOOK, run_cli


def test_the_default_model_reads_hooks_and_logits(model):
    out = model.run("The capital of France is", hooks=[HOOK, "blocks.2.hook_mlp_out"])
    n = len(model.tokenize("The capital of France is"))
    assert out[HOOK].shape == (1, n, model.d_model) and out[HOOK].dtype == np.float32
    assert out["blocks.2.hook_mlp_out"].shape == (1, n, model.d_model)
    assert out["logits"].shape == (1, n, model.vocab_size)
    assert out["mask"].tolist() == [[1] * n]
    # The greedy continuation the command prints is the one the logits give.
    ids = model.tokenize("The capital of France is")
    expected = run_cli("generate", "--prompt", "The capital of France is", "--max-tokens", 1).stdout
    assert model.decode([int(out["logits"][0, -1].argmax())]) in expected
    assert model.generate("The capital of France is", max_tokens=1) == model.decode([int(out["logits"][0, -1].argmax())])
    assert ids == model.tokenize(model.decode(ids))


def test_tokens_match_the_command(model):
    printed = run_cli("tokenize", "--text", "Hello, world").stdout
    assert model.tokenize("Hello, world") == [int(t) for t in printed.strip().strip("[]").split(",")]
    assert model.tokens(model.tokenize("Hello, world")) == ["Hello", ",", "Ġworld"]


def test_rows_of_different_lengths_are_padded_and_masked(tiny):
    rows = [[5, 6, 7, 8], [9, 10]]
    out = tiny.run(rows, hooks=[TINY_HOOK], logits=False)
    assert out["mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert "logits" not in out
    # A right-padded row's real positions equal the row run alone (causal attention).
    alone = tiny.run([9, 10], hooks=[TINY_HOOK], logits=False)[TINY_HOOK]
    np.testing.assert_allclose(out[TINY_HOOK][1, :2], alone[0], rtol=1e-5, atol=1e-5)


def test_an_identity_edit_changes_nothing_and_a_zero_edit_reaches_the_logits(tiny):
    tokens = [[3, 4, 5, 6, 7]]
    clean = tiny.run(tokens, hooks=[TINY_HOOK])
    same = tiny.run(tokens, hooks=[TINY_HOOK], edits={TINY_HOOK: lambda x: x})
    np.testing.assert_array_equal(same["logits"], clean["logits"])
    seen = []

    def zero(x):
        seen.append(x.shape)
        return np.zeros_like(x)

    zeroed = tiny.run(tokens, hooks=[TINY_HOOK], edits={"blocks.0.hook_resid_post": zero})
    assert seen == [(1, 5, tiny.d_model)]
    assert not np.allclose(zeroed["logits"], clean["logits"])


def test_a_dictionary_edit_splices_its_reconstruction(tiny, trained):
    sae = trained.saes["0-topk-64-k4"]
    tokens = [[3, 4, 5, 6, 7, 8]]
    spliced = tiny.run(tokens, hooks=[TINY_HOOK], edits={TINY_HOOK: sae})
    by_hand = tiny.run(
        tokens, hooks=[TINY_HOOK],
        edits={TINY_HOOK: lambda x: sae.forward(np.ascontiguousarray(x.reshape(-1, x.shape[-1]))).reshape(x.shape)},
    )
    np.testing.assert_array_equal(spliced["logits"], by_hand["logits"])
    np.testing.assert_array_equal(spliced[TINY_HOOK], by_hand[TINY_HOOK])


def test_bad_input_is_named(tiny, trained):
    with pytest.raises(ValueError, match="`hooks`.*blocks.9.hook_resid_post"):
        tiny.run([1, 2], hooks=["blocks.9.hook_resid_post"])
    with pytest.raises(TypeError, match="`tokens` is None"):
        tiny.run(None)
    with pytest.raises(TypeError, match="`tokens` must be"):
        tiny.run(3.5)
    with pytest.raises(ValueError, match="`tokens` holds id 99999999"):
        tiny.run([1, 99999999])
    with pytest.raises(ValueError, match="`tokens` holds an empty row"):
        tiny.run([[1, 2], []])
    with pytest.raises(TypeError, match="`edits`.*a function or a saelab.Sae"):
        tiny.run([1, 2], edits={TINY_HOOK: 3})
    with pytest.raises(ValueError, match="`edits`.*the function returned shape"):
        tiny.run([1, 2], edits={TINY_HOOK: lambda x: x[:, :1]})
    with pytest.raises(ZeroDivisionError):
        tiny.run([1, 2], edits={TINY_HOOK: lambda x: 1 / 0})
    with pytest.raises(ValueError, match="`edits`.*has width 64; the dictionary's d_in is 32"):
        tiny.run([1, 2], edits={"blocks.0.mlp.hook_post": trained.saes["0-topk-64-k4"]})
    with pytest.raises(saelab.SaelabError, match="/nowhere/model.gguf"):
        saelab.Model("/nowhere/model.gguf")



def test_the_quickstart_runs_end_to_end(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[3] / "examples" / "quickstart.py"
    env = dict(os.environ, SAELAB_QUICKSTART_TOKENS="4000")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "next token: ' Paris'" in done.stdout
    assert "loss recovered" in done.stdout and (tmp_path / "run" / "report.html").is_file()


def test_a_hub_id_offline_fails_naming_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(saelab.SaelabError, match="someorg/some-model.*not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        saelab.Model("someorg/some-model")
