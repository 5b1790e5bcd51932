"""Dictionaries from Python: encode/decode against an independent NumPy computation from the
weights, files round trips, arrays read through DLPack, and bad input named."""

import numpy as np
import pytest

import saelab


def reference_features(sae, x):
    """SAELens's encoder written out in NumPy from the saved weights."""
    pre = (x.astype(np.float64) - sae.b_dec) @ sae.W_enc + sae.b_enc
    f = np.maximum(pre, 0.0)
    if sae.architecture == "topk":
        keep = np.argsort(-f, axis=1, kind="stable")[:, : sae.k]
        mask = np.zeros_like(f, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        f = np.where(mask, f, 0.0)
    return f


@pytest.mark.parametrize("name", ["0-topk-64-k4", "1-relu-48"])
def test_encode_decode_equal_numpy_from_the_weights(trained, rows, name):
    sae = trained.saes[name]
    f = sae.encode(rows)
    assert f.shape == (rows.shape[0], sae.d_sae) and f.dtype == np.float32
    np.testing.assert_allclose(f, reference_features(sae, rows), rtol=1e-4, atol=1e-5)
    if sae.architecture == "topk":
        assert ((f > 0).sum(axis=1) <= sae.k).all()
    recon = sae.decode(f)
    np.testing.assert_allclose(recon, f.astype(np.float64) @ sae.W_dec + sae.b_dec, rtol=1e-4, atol=1e-5)
    # forward is decode(encode(x)) without the dense features in between.
    np.testing.assert_array_equal(sae.forward(rows), recon)


def test_one_vector_gives_one_vector(trained, rows):
    sae = trained.saes["0-topk-64-k4"]
    # The same row alone or in a batch: equal up to the GEMM's summation order.
    np.testing.assert_allclose(sae.encode(rows[3]), sae.encode(rows)[3], rtol=1e-5, atol=1e-6)
    assert sae.forward(rows[3]).shape == (sae.d_in,)


def test_sparse_features_equal_the_dense_ones(trained, rows):
    sae = trained.saes["0-topk-64-k4"]
    indptr, indices, values = sae.encode_sparse(rows)
    dense = np.zeros((rows.shape[0], sae.d_sae), dtype=np.float32)
    for t in range(rows.shape[0]):
        dense[t, indices[indptr[t] : indptr[t + 1]]] = values[indptr[t] : indptr[t + 1]]
    np.testing.assert_array_equal(dense, sae.encode(rows))


def test_saved_folders_load_back_equal(trained, rows, tmp_path):
    sae = trained.saes["0-topk-64-k4"]
    sae.save(tmp_path / "saved")
    back = saelab.Sae.load(tmp_path / "saved")
    assert (back.architecture, back.d_in, back.d_sae, back.k) == ("topk", sae.d_in, sae.d_sae, 4)
    for w in ("W_enc", "W_dec", "b_enc", "b_dec"):
        np.testing.assert_array_equal(getattr(back, w), getattr(sae, w))
    np.testing.assert_array_equal(back.encode(rows), sae.encode(rows))


def test_metadata_names_the_hook(trained):
    sae = trained.saes["1-relu-48"]
    assert sae.hook_name == "blocks.1.hook_resid_post"
    assert sae.metadata["hook_name"] == sae.hook_name
    assert sae.threshold is None and sae.k is None
    assert "standard" in repr(sae)


class Exporter:
    """An array offered only through DLPack, as a CPU PyTorch tensor offers itself."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_dlpack_exporters_are_read_without_a_copy(trained, rows):
    sae = trained.saes["0-topk-64-k4"]
    np.testing.assert_array_equal(sae.encode(Exporter(rows)), sae.encode(rows))


def test_bad_arrays_are_named(trained, rows):
    sae = trained.saes["0-topk-64-k4"]
    with pytest.raises(TypeError, match="`x` has dtype float64; expected float32"):
        sae.encode(rows.astype(np.float64))
    with pytest.raises(ValueError, match="`x` is not C-contiguous"):
        sae.encode(np.asfortranarray(rows))
    with pytest.raises(ValueError, match=r"`x` has shape \[16, 5\]; the dictionary's d_in is 32"):
        sae.encode(np.zeros((16, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"`x` has shape \[2, 2, 32\]"):
        sae.forward(np.zeros((2, 2, 32), dtype=np.float32))
    with pytest.raises(TypeError, match="`x` is None"):
        sae.encode(None)
    with pytest.raises(TypeError, match="`x` is a list"):
        sae.encode([[0.0] * 32])
    with pytest.raises(ValueError, match="`f` has shape"):
        sae.decode(rows)
    with pytest.raises(ValueError, match="`format`"):
        sae.save("/tmp/never", format="onnx")


def test_library_errors_keep_their_message(tmp_path):
    with pytest.raises(saelab.SaelabError, match=str(tmp_path)):
        saelab.Sae.load(tmp_path)


def test_long_calls_let_other_threads_run(trained):
    import threading
    import time

    sae = trained.saes["0-topk-64-k4"]
    x = np.random.default_rng(0).standard_normal((400_000, sae.d_in)).astype(np.float32)
    ticks, stop = [0], threading.Event()

    def tick():
        while not stop.is_set():
            ticks[0] += 1

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    before = ticks[0]
    start = time.perf_counter()
    sae.forward(x)
    seconds = time.perf_counter() - start
    during = ticks[0] - before
    stop.set()
    ticker.join()
    # Holding the GIL, the call would leave the ticker one switch interval (5 ms) at most.
    assert seconds > 0.05 and during > 1000, (seconds, during)
