"""Training from Python is the command's training: the same files bit for bit, an interrupted
run that resumes to the same end, callbacks, and refused settings named."""

import pathlib

import pytest

import saelab
from conftest import run_cli

SPECS = ["topk:k=4,width=64", "relu:width=48"]


def final_files(run_dir) -> dict:
    final = pathlib.Path(run_dir) / "final"
    return {str(p.relative_to(final)): p.read_bytes() for p in sorted(final.rglob("*")) if p.is_file()}


def test_a_run_from_python_equals_the_commands_bit_for_bit(tiny_cache, trained, tmp_path):
    cli_out = tmp_path / "cli"
    run_cli("train", "--sae", SPECS[0], "--sae", SPECS[1], "--batch", 64, "--cache", tiny_cache.path, "--out", cli_out)
    ours, theirs = final_files(trained.out), final_files(cli_out)
    assert sorted(ours) == sorted(theirs) and len(ours) >= 4
    for name in ours:
        assert ours[name] == theirs[name], name
    assert set(trained.saes) == {"0-topk-64-k4", "1-relu-48"}
    assert trained.summary["steps"] == trained.summary["planned_steps"] > 0


def test_an_interrupted_run_resumes_to_the_same_end(tiny_cache, trained, tmp_path):
    out = tmp_path / "interrupted"
    seen = []

    def stop_at_20(step, stats):
        seen.append((step, stats))
        if step == 20:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        saelab.train(out, SPECS, cache=tiny_cache.path, batch=64, progress=False, callback=stop_at_20)
    assert [s for s, _ in seen] == list(range(1, 21))
    assert {"loss", "mse", "fvu", "l0", "dead_fraction"} <= set(seen[0][1][0])
    assert len(seen[0][1]) == 2
    assert (out / "checkpoints" / "step_20").is_dir()

    resumed = saelab.train(out, resume=True, progress=False)
    assert resumed.summary["steps"] == trained.summary["steps"]
    ours, whole = final_files(out), final_files(trained.out)
    for name in whole:
        assert ours[name] == whole[name], name


def test_bad_settings_are_named(tiny_cache, tmp_path):
    with pytest.raises(ValueError, match=r"`sae` \[0\] \"topk:k=0"):
        saelab.train(tmp_path / "a", "topk:k=0,width=64", cache=tiny_cache.path, progress=False)
    with pytest.raises(ValueError, match="`run`.*unknown field `batch_size`"):
        saelab.train(tmp_path / "b", SPECS, cache=tiny_cache.path, batch_size=64, progress=False)
    with pytest.raises(ValueError, match="`sae` is empty"):
        saelab.train(tmp_path / "c", [], cache=tiny_cache.path, progress=False)
    with pytest.raises(TypeError, match=r"`sae` \[0\] must be a spec string"):
        saelab.train(tmp_path / "d", [3], cache=tiny_cache.path, progress=False)
    with pytest.raises(ValueError, match="`resume`"):
        saelab.train(tmp_path / "e", SPECS, resume=True, progress=False)
    with pytest.raises(saelab.SaelabError, match="holds no|config.json"):
        saelab.train(tmp_path / "f", resume=True, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_spec_dict_trains_as_its_string(tiny_cache, tmp_path):
    a = saelab.train(tmp_path / "s", "topk:k=4,width=64", cache=tiny_cache.path, batch=64, progress=False)
    b = saelab.train(tmp_path / "d", {"kind": "topk", "k": 4, "width": 64}, cache=tiny_cache.path, batch=64, progress=False)
    assert final_files(a.out) == final_files(b.out)


def test_ctrl_c_takes_a_checkpoint_and_raises_keyboard_interrupt(tiny_cache, trained, tmp_path, sigint_raises):
    import os
    import signal
    import threading

    out = tmp_path / "ctrl-c"
    started = threading.Event()

    def press_ctrl_c():
        started.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    steps = []

    def note(step, stats):
        steps.append(step)
        if step == 5:
            started.set()

    with pytest.raises(KeyboardInterrupt):
        saelab.train(out, SPECS, cache=tiny_cache.path, batch=64, progress=False, callback=note)
    presser.join()
    assert steps[-1] < trained.summary["steps"]
    assert any((out / "checkpoints").iterdir())
    resumed = saelab.train(out, resume=True, progress=False)
    whole = final_files(trained.out)
    assert final_files(out) == whole and resumed.summary["steps"] == trained.summary["steps"]


def test_a_live_run_equals_the_commands(tmp_path):
    from conftest import TINY, TINY_HOOK

    settings = dict(model=TINY, corpus="wiki", hooks=TINY_HOOK, tokens=2048, ctx=32, batch=64)
    ours = saelab.train(tmp_path / "py", "topk:k=4,width=64", progress=False, **settings)
    run_cli("train", "--sae", "topk:k=4,width=64", "--model", TINY, "--corpus", "wiki", "--hook", TINY_HOOK,
            "--tokens", 2048, "--ctx", 32, "--batch", 64, "--out", tmp_path / "cli")
    assert final_files(ours.out) == final_files(tmp_path / "cli")
    assert ours.summary["tokens"] >= 2048 - 64
