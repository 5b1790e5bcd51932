"""Dictionaries saved from Python and loaded by the real SAELens package
(`reference/python_saelens.py`): saelab reads each folder back and encodes and decodes the
same inputs as SAELens did, within 1e-5."""

import json
import pathlib

import numpy as np
import pytest

import saelab

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "saelens"
FOLDERS = sorted(p for p in FIXTURES.iterdir() if p.is_dir())


def test_every_architecture_is_there():
    assert [p.name for p in FOLDERS] == [
        "0-topk-64-k4", "1-relu-48", "2-jumprelu-48", "3-gated-48", "4-batchtopk-64-k4",
    ]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_saelens_reads_what_python_saved(folder):
    expected = json.loads((folder / "expected.json").read_text())
    sae = saelab.Sae.load(folder)
    x = np.asarray(expected["inputs"], dtype=np.float32)
    np.testing.assert_allclose(sae.encode(x), expected["features"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(sae.forward(x), expected["reconstructions"], rtol=0, atol=1e-5)
    # Features that fire: the comparison is not one of zeros.
    assert (np.asarray(expected["features"]) > 0).sum(axis=1).mean() >= 2
