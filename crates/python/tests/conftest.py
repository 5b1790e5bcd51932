"""Fixtures of the Python tests: the default model, the tiny Llama fixture, a small cache and
the `saelab` binary (built by `cargo test`/`cargo build --release`) to compare against."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import saelab

ROOT = pathlib.Path(__file__).resolve().parents[3]
TINY = ROOT / "crates" / "model" / "tests" / "fixtures" / "tiny" / "llama"
HOOK = "blocks.6.hook_resid_post"
TINY_HOOK = "blocks.1.hook_resid_post"


def saelab_binary() -> str:
    path = os.environ.get("SAELAB_BIN") or str(ROOT / "target" / "release" / "saelab")
    assert os.path.exists(path), f"{path} is missing: build it with cargo build --release (or set SAELAB_BIN)"
    return path


def run_cli(*args) -> subprocess.CompletedProcess:
    out = subprocess.run([saelab_binary(), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="session")
def model():
    return saelab.Model()


@pytest.fixture(scope="session")
def tiny():
    return saelab.Model(str(TINY))


@pytest.fixture(scope="session")
def tiny_cache(tiny, tmp_path_factory):
    """4,096 tokens of the tiny model's second block over the wiki corpus, in f32."""
    out = tmp_path_factory.mktemp("tiny") / "cache"
    return saelab.harvest(tiny, "wiki", TINY_HOOK, out, tokens=4096, ctx=32, dtype="f32", progress=False)


@pytest.fixture(scope="session")
def trained(tiny_cache, tmp_path_factory):
    """A TopK and a ReLU dictionary trained on the tiny cache."""
    out = tmp_path_factory.mktemp("run") / "run"
    run = saelab.train(
        out, ["topk:k=4,width=64", "relu:width=48"], cache=tiny_cache.path, batch=64, progress=False
    )
    return run


@pytest.fixture(scope="session")
def rows(tiny_cache):
    """The first windows of the tiny cache as rows of activations."""
    batch = next(tiny_cache.windows(batch=8))
    return np.ascontiguousarray(batch[TINY_HOOK].reshape(-1, batch[TINY_HOOK].shape[-1]))


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt for the test, as at an interactive prompt. A process
    started in the background by a non-interactive shell inherits SIGINT ignored, and Python
    then installs no handler: a Ctrl-C test would see nothing."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
