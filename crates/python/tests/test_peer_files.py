"""dictionary_learning and sparsify folders read from Python: each encodes and decodes the
inputs its own package computed (`reference/peer_dictionaries.py`) within 1e-5 of the largest
value, as the Rust import tests require."""

import json
import pathlib

import numpy as np
import pytest

import saelab

PEERS = pathlib.Path(__file__).resolve().parents[2] / "sae" / "tests" / "fixtures" / "peers"
NAMES = ["dl_standard", "dl_april", "dl_topk", "dl_batchtopk", "dl_jumprelu", "dl_gated", "sparsify_topk"]


@pytest.mark.parametrize("name", NAMES)
def test_peer_folders_encode_as_their_packages(name):
    expected = json.loads((PEERS / name / "expected.json").read_text())
    sae = saelab.Sae.load(PEERS / name)
    assert (sae.d_in, sae.d_sae) == (expected["d_in"], expected["d_sae"])
    x = np.asarray(expected["inputs"], dtype=np.float32)
    for got, want in ((sae.encode(x), expected["features"]), (sae.forward(x), expected["reconstructions"])):
        want = np.asarray(want)
        scale = max(1.0, np.abs(want).max())
        assert np.abs(got - want).max() <= 1e-5 * scale, name
