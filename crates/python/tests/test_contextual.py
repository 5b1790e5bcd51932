"""saelab.ContextualSae: a carry dictionary trained by `saelab train-contextual` runs whole
windows exactly as a NumPy transcription of its definition (README, "Contextual
dictionaries") does, from the files alone; per-position dictionaries run as `Sae` encodes."""

import json
import pathlib
import struct

import numpy as np
import pytest

import saelab
from conftest import TINY_HOOK, run_cli


@pytest.fixture(scope="module")
def contextual_run(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("contextual") / "run"
    # λ starts at 0.9 so that codes are carried from the first step on.
    run_cli("train-contextual", "--cache", tiny_cache.path, "--holdout-windows", 8, "--batch-windows", 8,
            "--sae", "carry:k=4,width=64,decay_init=0.9,name=carry", "--sae", "topk:k=4,width=64,name=topk",
            "--out", out)
    return pathlib.Path(out)


@pytest.fixture(scope="module")
def windows(tiny_cache):
    """Four windows of the tiny cache without their start token, as training reads them."""
    batch = next(tiny_cache.windows(batch=4))
    return np.ascontiguousarray(batch[TINY_HOOK][:, 1:, :])


def safetensors(path: pathlib.Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    return {
        name: np.frombuffer(body[t["data_offsets"][0]:t["data_offsets"][1]], dtype=np.float32).reshape(t["shape"])
        for name, t in header.items()
        if name != "__metadata__"
    }


def carry_reference(folder: pathlib.Path, x: np.ndarray):
    """codes, paid and the context share of a carry folder over windows x, in float64."""
    cfg = json.loads((folder / "cfg.json").read_text())
    w = {k: v.astype(np.float64) for k, v in safetensors(folder / "sae_weights.safetensors").items()}
    k, floor = cfg["k"], cfg["carry_floor"]
    n_windows, length, _ = x.shape
    f = w["W_dec"].shape[0]
    codes = np.zeros((n_windows, length, f))
    paid = np.zeros((n_windows, length, f))
    carried_energy = new_energy = 0.0
    for b in range(n_windows):
        c = np.zeros(f)
        for t in range(length):
            u = x[b, t] - w["b_dec"] - c @ w["W_dec"]
            p = u @ w["W_enc"] + w["b_enc"]
            held = c > 0
            delta = np.where(held, np.maximum(-c, p), p)
            score = np.where(held, np.abs(delta), p)
            order = np.argsort(-score, kind="stable")[:k]
            chosen = order[score[order] > 0]
            step = np.zeros(f)
            step[chosen] = delta[chosen]
            carried_energy += float(np.sum((c @ w["W_dec"]) ** 2))
            new_energy += float(np.sum((step @ w["W_dec"]) ** 2))
            a = c + step
            codes[b, t], paid[b, t] = a, step
            c = w["decay"] * a
            c[c < floor] = 0.0
    return codes, paid, carried_energy / (carried_energy + new_energy), w


def test_a_carry_dictionary_runs_as_its_definition(contextual_run, windows):
    folder = contextual_run / "final" / "carry"
    sae = saelab.ContextualSae.load(folder)
    assert (sae.architecture, sae.d_sae, sae.d_in) == ("carry", 64, windows.shape[-1])
    out = sae.run(windows)
    codes, paid, share, w = carry_reference(folder, windows.astype(np.float64))
    assert out["codes"].shape == codes.shape and out["paid"].shape == paid.shape
    np.testing.assert_allclose(out["codes"], codes, atol=2e-4)
    np.testing.assert_allclose(out["paid"], paid, atol=2e-4)
    np.testing.assert_allclose(out["reconstruction"], codes @ w["W_dec"] + w["b_dec"], atol=5e-4)
    assert out["context_share"] == pytest.approx(share, rel=1e-3)
    # It pays for k onsets and holds more: codes are carried between positions.
    assert out["l0"] <= 4 and out["codes_on"] > out["l0"]
    assert out["context_share"] > 0.0
    np.testing.assert_array_equal(sae.decay, w["decay"].astype(np.float32))
    # One window gives one window back (its product alone rounds a little differently).
    single = sae.run(np.ascontiguousarray(windows[0]))
    np.testing.assert_allclose(single["codes"], out["codes"][0], atol=1e-5)


def test_a_per_position_dictionary_runs_as_sae_encodes(contextual_run, windows):
    folder = contextual_run / "final" / "topk"
    out = saelab.ContextualSae.load(folder).run(windows)
    rows = np.ascontiguousarray(windows.reshape(-1, windows.shape[-1]))
    encoded = saelab.Sae.load(folder).encode(rows)
    np.testing.assert_array_equal(out["codes"].reshape(encoded.shape), encoded)
    assert out["context_share"] == 0.0


def test_bad_windows_are_named(contextual_run, windows):
    sae = saelab.ContextualSae.load(contextual_run / "final" / "carry")
    with pytest.raises(ValueError, match="`x` has shape .*d_in is"):
        sae.run(np.zeros((2, 3, windows.shape[-1] + 1), dtype=np.float32))
    with pytest.raises(TypeError, match="`x` has dtype float64"):
        sae.run(windows.astype(np.float64))
    with pytest.raises(saelab.SaelabError, match="nowhere: .*does not exist"):
        saelab.ContextualSae.load(contextual_run / "nowhere")
