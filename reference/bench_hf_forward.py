#!/usr/bin/env python3
"""HF transformers (PyTorch, CPU, f32) on the work `saelab bench forward` measures.

Loads the default GGUF with transformers (de-quantised to float32), then times, on random
token ids at batch 32 x 128 with no padding:
  * the forward to blocks.6.hook_resid_post: the model truncated to its first 7 decoder
    layers, run without the final norm and LM head (what stopping after block 6 costs);
  * the full forward with logits.
Best of --iters timed runs after one warm-up, like the Rust command. Prints one JSON line.

    /tmp/refenv/bin/python reference/bench_hf_forward.py [--gguf PATH] [--threads 2]

(Environment as in reference/README.md.)
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    home = Path(os.environ.get("SAELAB_HOME", Path.home() / ".cache" / "saelab"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=Path, default=home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--ctx", type=int, default=128)
    parser.add_argument("--layers", type=int, default=7, help="blocks run by the partial forward")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.gguf.parent), gguf_file=args.gguf.name, dtype=torch.float32
    ).eval()
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.ctx), generator=torch.Generator().manual_seed(0))
    tokens = args.batch * args.ctx

    def best(fn) -> float:
        with torch.inference_mode():
            fn()
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        return min(times)

    full = best(lambda: model(ids).logits)
    all_layers = model.model.layers
    model.model.layers = all_layers[: args.layers]
    partial = best(lambda: model.model(ids).last_hidden_state)
    model.model.layers = all_layers
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "ctx": args.ctx,
        "to_hook": {"blocks": args.layers, "seconds": partial, "tokens_per_s": tokens / partial},
        "full_logits": {"seconds": full, "tokens_per_s": tokens / full},
    }))


if __name__ == "__main__":
    main()
