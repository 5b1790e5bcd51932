"""Training throughput through Python against the `saelab train` command, same run.

    python crates/python/bench/bench_train.py CACHE_DIR [SPEC] [TOKENS] [ROUNDS]

Alternates ROUNDS times (which goes first alternates too): `saelab train`
(target/release/saelab) and `saelab.train` of the same
dictionary (default `topk:k=32,width=16384`) on the first TOKENS (default 409,600) training
tokens of the cache, each into a fresh folder; prints each run's tokens per second of training
(`summary.json`: tokens / seconds) and the medians' ratio.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

import saelab

ROOT = pathlib.Path(__file__).resolve().parents[3]


def main():
    cache = sys.argv[1]
    spec = sys.argv[2] if len(sys.argv) > 2 else "topk:k=32,width=16384"
    tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 409_600
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    binary = os.environ.get("SAELAB_BIN", str(ROOT / "target" / "release" / "saelab"))
    speeds = {"command": [], "python": []}
    with tempfile.TemporaryDirectory() as work:
        for r in range(rounds):
            def command():
                out = pathlib.Path(work) / f"cli{r}"
                subprocess.run([binary, "train", "--sae", spec, "--cache", cache, "--tokens", str(tokens), "--out", str(out)],
                               check=True, capture_output=True)
                summary = json.loads((out / "summary.json").read_text())
                speeds["command"].append(summary["tokens"] / summary["seconds"])

            def python():
                run = saelab.train(pathlib.Path(work) / f"py{r}", spec, cache=cache, tokens=tokens, progress=False)
                speeds["python"].append(run.summary["tokens"] / run.summary["seconds"])

            for side in ((command, python) if r % 2 == 0 else (python, command)):
                side()
            print(f"round {r}: command {speeds['command'][-1]:.0f} tokens/s, python {speeds['python'][-1]:.0f} tokens/s", flush=True)
    command, python = statistics.median(speeds["command"]), statistics.median(speeds["python"])
    print(f"{spec}, {tokens} tokens, median tokens/s: command {command:.0f}, python {python:.0f}, python/command {python / command:.3f}")


if __name__ == "__main__":
    main()
