"""Dictionary calls through Python against the same calls in Rust, on the same batch.

    python crates/python/bench/bench_encode.py DICT_DIR CACHE_DIR [ROWS] [REPEATS] [ROUNDS]

Takes ROWS (default 65,536) activation rows from the cache, writes them to a raw file for the
Rust side (`cargo run --release -p saelab-sae --example bench_encode`, built first), then
alternates ROUNDS times: the Rust example (REPEATS timed calls of each kind) and the same calls
through `saelab.Sae` (`forward`: encode and decode, the reconstruction returned; `encode_sparse`:
the features as compressed rows). Prints each side's median seconds per call and the ratio.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import saelab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    dict_dir, cache_dir = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    sae = saelab.Sae.load(dict_dir)
    cache = saelab.Cache(cache_dir)
    hook = cache.hooks[0][0]
    parts, have = [], 0
    for batch in cache.windows(batch=64):
        part = batch[hook].reshape(-1, sae.d_in)
        parts.append(part)
        have += len(part)
        if have >= rows:
            break
    x = np.ascontiguousarray(np.concatenate(parts)[:rows])
    assert len(x) == rows, f"the cache holds only {len(x)} rows"
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "saelab-sae", "--example", "bench_encode"], cwd=ROOT, check=True)
    rust_bin = os.path.join(ROOT, "target", "release", "examples", "bench_encode")

    def python_median(call):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            call(x)
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds)

    results = {"rust": {"forward": [], "encode": []}, "python": {"forward": [], "encode": []}}
    with tempfile.NamedTemporaryFile(suffix=".f32") as raw:
        raw.write(x.tobytes())
        raw.flush()
        for _ in range(rounds):
            out = json.loads(subprocess.run([rust_bin, dict_dir, raw.name, str(repeats)], capture_output=True, text=True, check=True).stdout)
            results["rust"]["forward"].append(out["forward"][0])
            results["rust"]["encode"].append(out["encode"][0])
            results["python"]["forward"].append(python_median(sae.forward))
            results["python"]["encode"].append(python_median(sae.encode_sparse))
    print(f"{sae}, batch {x.shape}, {repeats} calls x {rounds} rounds, median seconds per call")
    for call in ("forward", "encode"):
        rust = statistics.median(results["rust"][call])
        python = statistics.median(results["python"][call])
        print(f"{call:8} rust {rust:.4f}  python {python:.4f}  python/rust {python / rust:.3f}")


if __name__ == "__main__":
    main()
