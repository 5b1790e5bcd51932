"""The feature database from Python: the same numbers SQLite holds, examples and logit lens
that agree with them, and bad queries named."""

import sqlite3

import numpy as np
import pytest

import saelab
from conftest import TINY, run_cli


@pytest.fixture(scope="module")
def db(tiny_cache, trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "features.db"
    run_cli("features", "--model", TINY, "--cache", tiny_cache.path, "--sae", f"topk={trained.out}/final/0-topk-64-k4",
            "--db", path, "--tokens", 2048)
    return path


def test_summaries_equal_the_tables(db):
    features = saelab.Features(db)
    assert [d["name"] for d in features.dictionaries] == ["topk"]
    assert features.dictionaries[0]["d_sae"] == 64 and features.scan["ctx"] == 32
    summary = features.summary("topk")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT feature, count, density, max_act, p_stay, mean_run FROM features ORDER BY feature"
        ).fetchall()
    assert summary["index"].tolist() == [r[0] for r in rows]
    assert summary["count"].tolist() == [r[1] for r in rows]
    np.testing.assert_array_equal(summary["density"], [r[2] for r in rows])
    np.testing.assert_array_equal(summary["max_act"], [r[3] for r in rows])
    nan = float("nan")
    np.testing.assert_array_equal(summary["p_stay"], [nan if r[4] is None else r[4] for r in rows])
    np.testing.assert_array_equal(summary["mean_run"], [nan if r[5] is None else r[5] for r in rows])
    assert np.isfinite(summary["p_stay"]).sum() > 0


def test_a_features_examples_and_lens_agree(db):
    features = saelab.Features(db)
    summary = features.summary("topk")
    densest = int(summary["index"][np.argmax(summary["count"])])
    f = features.feature("topk", densest)
    assert f["count"] == summary["count"].max() and len(f["top"]) > 0
    strongest = f["top"][0]
    assert strongest["acts"][strongest["at"]] == pytest.approx(f["max_act"], rel=1e-6)
    assert len(strongest["tokens"]) == len(strongest["ids"]) == len(strongest["acts"])
    promoted = [v for _, v in f["promoted"]]
    assert promoted == sorted(promoted, reverse=True) and len(promoted) > 0
    assert sum(f["hist"]) == f["count"] and len(f["hist_edges"]) == len(f["hist"]) + 1
    assert sum(b["count"] for b in f["bins"]) == f["count"]
    silent = [int(i) for i, c in zip(summary["index"], summary["count"]) if c == 0]
    if silent:
        assert features.feature("topk", silent[0]) is None


def test_bad_queries_are_named(db, tmp_path):
    features = saelab.Features(db)
    with pytest.raises(ValueError, match="`dictionary` = \"relu\" is not in the database; it holds topk"):
        features.summary("relu")
    with pytest.raises(ValueError, match="`index` = 64 is out of range"):
        features.feature("topk", 64)
    with pytest.raises(saelab.SaelabError, match="nothing.db"):
        saelab.Features(tmp_path / "nothing.db")
