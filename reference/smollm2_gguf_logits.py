#!/usr/bin/env python3
"""Reference logits for SmolLM2-135M-Instruct (Q4_1 GGUF) computed with HF transformers.

Loads the GGUF file with transformers' GGUF loader (which de-quantizes every
tensor to float32), runs a fixed set of varied prompts one at a time (no
padding, no batching) and writes a compact JSON fixture that saelab's Rust
tests compare against:

  * per position: max |logit|, top-5 ids and logits, and the logits at 64 fixed
    "probe" vocab ids (chosen with a seeded RNG; 0, 1 and 2 always included);
  * per position: L2 norm and first 8 dims of the output of decoder layer 6
    (`hidden_states[7]`, i.e. resid_post of block 6, before any final norm);
  * greedy continuations (8 new tokens, `do_sample=False`) for two prompts.

Floats are written as the shortest decimal that reads back as the same
float32 (also when parsed as float64 and then cast to float32).

The script also prints a short summary of the GGUF metadata and checks that
the tokenizer transformers builds from the GGUF (pre-tokenizer: ByteLevel
only) gives the same ids as the real SmolLM2 pre-tokenizer
(Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)])
on every prompt; the result is stored in the fixture.

Set up (CPU is enough, a run takes well under a minute):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch transformers gguf numpy accelerate sentencepiece

Run (no network needed; the tokenizer comes from the GGUF metadata):

    HF_HUB_OFFLINE=1 /tmp/refenv/bin/python reference/smollm2_gguf_logits.py \
        [GGUF_PATH] [OUTPUT_JSON]

GGUF_PATH defaults to
${SAELAB_HOME:-~/.cache/saelab}/models/SmolLM2-135M-Instruct.Q4_1.gguf and
OUTPUT_JSON to crates/model/tests/fixtures/smollm2_reference.json in this repo.
"""

import argparse
import collections
import hashlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HIDDEN_INDEX = 7  # hidden_states[7] == output of decoder layer index 6
LAYER_INDEX = HIDDEN_INDEX - 1
N_PROBES = 64
PROBE_SEED = 20240607
GREEDY_NEW_TOKENS = 8

LONG_PARAGRAPH = (
    "The history of computing is a story of abstraction layered on abstraction. "
    "Early machines were programmed by rewiring panels, and each new problem meant "
    "hours of careful work with cables and switches. Stored-program computers changed "
    "that: instructions became data, and data could be written, copied and corrected. "
    "Assemblers gave names to numbers, compilers turned formulas into instructions, and "
    "operating systems let many programs share one processor without stepping on each "
    "other. Today a single line of a high-level language may expand into thousands of "
    "machine operations, yet most programmers never need to think about them."
)

PROMPTS = [
    # 0: plain prose
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.",
    # 1: Python code with indentation
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint(fibonacci(10))\n",
    # 2: numbers
    "3.14159 and 1,234,567 in 2024",
    # 3: accented French
    "L'été dernier, nous sommes allés à la plage près de Nîmes; c'était très agréable.",
    # 4: Chinese
    "机器学习是人工智能的一个分支。",
    # 5: emoji mixed with text
    "I love pizza 🍕 and cats 🐱🐈 so much! 👍🏽",
    # 6: long run of whitespace
    "a    \t\t  \n\n\n        \t b\n \n\t\t\t\tc          end",
    # 7: mixed punctuation
    "Wait... what?! (Really) -- yes: [a] {b} <c> \"d\" 'e' @f #g $h %i ^j &k *l ~m `n` |o| \\p /q",
    # 8: chat-template-looking string with special tokens in the text
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    # 9: a single word
    "Hello",
    # 10: ~100-token paragraph
    LONG_PARAGRAPH,
    # 11: capital of France (good for greedy decoding)
    "The capital of France is",
]

GREEDY_PROMPTS = [8, 11]


def default_gguf_path():
    home = os.environ.get("SAELAB_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "saelab")
    return os.path.join(home, "models", GGUF_NAME)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def f32(x):
    """Shortest decimal (as a Python float) that reads back as the float32 `x`,
    both when parsed directly as float32 and when parsed as float64 then cast."""
    x = np.float32(x)
    if not np.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    short = float(np.format_float_scientific(x, unique=True))
    if np.float32(short) == x:
        return short
    return float(x)  # exact value of the float32, always round-trips


def f32list(t):
    """float32 tensor -> list of Python floats that round-trip to the same float32."""
    return [f32(x) for x in t.detach().to(torch.float32).reshape(-1).cpu().numpy()]


def inspect_gguf(path):
    """Print a summary of the GGUF metadata and of the tensor dtypes."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    print("== GGUF metadata ==", file=sys.stderr)
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.scores"):
            print(f"  {key}: array of {len(field.data)}", file=sys.stderr)
            continue
        if key == "tokenizer.ggml.token_type":
            types = collections.Counter(int(field.parts[i][0]) for i in field.data)
            print(f"  {key}: {dict(types)}", file=sys.stderr)
            continue
        value = field.contents()
        if isinstance(value, str) and len(value) > 80:
            value = value[:80] + "..."
        print(f"  {key}: {value!r}", file=sys.stderr)
    kinds = collections.Counter()
    for t in r.tensors:
        kind = t.name.split(".", 2)[2] if t.name.startswith("blk.") else t.name
        kinds[(kind, t.tensor_type.name)] += 1
    print("== tensor dtypes ==", file=sys.stderr)
    for (kind, ty), n in sorted(kinds.items()):
        print(f"  {kind:24s} {ty:6s} x{n}", file=sys.stderr)


def digit_split_agrees(tok, texts):
    """Compare the GGUF-built tokenizer with the real SmolLM2 pre-tokenizer on `texts`.

    The real tokenizer.json uses Sequence[Digits(individual_digits=True),
    ByteLevel(add_prefix_space=False, use_regex=True)]; the GGUF carries only
    vocab + merges + pre="smollm", and transformers rebuilds it with ByteLevel
    alone. We rebuild a tokenizer with the real pre-tokenizer from the same
    vocab/merges and compare.
    """
    from tokenizers import Tokenizer, pre_tokenizers

    real = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    real.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    mismatches = []
    for text in texts:
        a = tok(text)["input_ids"]
        b = real.encode(text).ids
        if a != b:
            mismatches.append({"text": text, "hf_gguf": a, "digits_bytelevel": b})
    return mismatches


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", nargs="?", default=default_gguf_path())
    ap.add_argument(
        "output",
        nargs="?",
        default=os.path.join(REPO_ROOT, "crates", "model", "tests", "fixtures", "smollm2_reference.json"),
    )
    args = ap.parse_args()

    gguf_path = os.path.abspath(args.gguf)
    gguf_dir, gguf_file = os.path.split(gguf_path)
    torch.manual_seed(0)

    inspect_gguf(gguf_path)

    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size

    print("== tokenizer ==", file=sys.stderr)
    for s in ["12345 abc", "<|im_start|>user\nHi<|im_end|>"]:
        ids = tok(s)["input_ids"]
        print(f"  {s!r} -> {ids} {tok.convert_ids_to_tokens(ids)}", file=sys.stderr)
    print(
        f"  bos={tok.bos_token!r}/{tok.bos_token_id} eos={tok.eos_token!r}/{tok.eos_token_id} "
        f"pad={tok.pad_token!r}/{tok.pad_token_id} unk={tok.unk_token!r}/{tok.unk_token_id}",
        file=sys.stderr,
    )

    rng = np.random.default_rng(PROBE_SEED)
    others = rng.choice(np.arange(3, vocab), size=N_PROBES - 3, replace=False)
    probe_ids = [0, 1, 2] + sorted(int(i) for i in others)
    probe_t = torch.tensor(probe_ids)

    # Capture the layer-6 output with a hook too, to be sure which tensor
    # hidden_states[7] is.
    captured = {}

    def hook(_module, _inputs, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output

    handle = model.model.layers[LAYER_INDEX].register_forward_hook(hook)

    prompts_out = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok(text)["input_ids"]
            input_ids = torch.tensor([ids])
            out = model(input_ids=input_ids, output_hidden_states=True, use_cache=False)
            logits = out.logits[0].to(torch.float32)  # [seq, vocab]
            hs = out.hidden_states[HIDDEN_INDEX][0]  # [seq, hidden]
            hooked = captured["h"].reshape(hs.shape)
            assert torch.equal(hs, hooked), "hidden_states[7] is not the output of layer 6"
            positions = []
            for p in range(logits.shape[0]):
                row = logits[p]
                top = torch.topk(row, 5)
                positions.append(
                    {
                        "max_abs_logit": f32(row.abs().max()),
                        "top5_ids": [int(i) for i in top.indices],
                        "top5_logits": f32list(top.values),
                        "probe_logits": f32list(row[probe_t]),
                    }
                )
            prompts_out.append(
                {
                    "text": text,
                    "token_ids": ids,
                    "positions": positions,
                    "resid_post_6_norms": f32list(hs.norm(dim=-1)),
                    "resid_post_6_first8": [f32list(hs[p, :8]) for p in range(hs.shape[0])],
                }
            )
            roundtrip = tok.decode(ids) == text
            print(f"  prompt {len(prompts_out) - 1}: {len(ids)} tokens, decode round-trips: {roundtrip}", file=sys.stderr)

        handle.remove()

        greedy = []
        for idx in GREEDY_PROMPTS:
            ids = prompts_out[idx]["token_ids"]
            input_ids = torch.tensor([ids])
            gen = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=GREEDY_NEW_TOKENS,
                do_sample=False,
            )
            new_ids = [int(i) for i in gen[0, len(ids):]]
            greedy.append(
                {
                    "prompt_index": idx,
                    "max_new_tokens": GREEDY_NEW_TOKENS,
                    "new_ids": new_ids,
                    "new_text": tok.decode(new_ids),
                }
            )
            print(f"  greedy {idx}: {new_ids} {tok.decode(new_ids)!r}", file=sys.stderr)

    mismatches = digit_split_agrees(tok, PROMPTS + ["12345 abc", " 42", "x2y3 ١٢٣ ²³ 5½"])
    print(f"== digit-split check: {len(mismatches)} mismatches ==", file=sys.stderr)
    for m in mismatches:
        print(f"  {m}", file=sys.stderr)

    fixture = {
        "model": gguf_file,
        "gguf_sha256": sha256_file(gguf_path),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "hidden_states_index": HIDDEN_INDEX,
        "probe_seed": PROBE_SEED,
        "probe_ids": probe_ids,
        "tokenizer_notes": {
            "bos_prepended": tok("Hello")["input_ids"][:1] == [tok.bos_token_id],
            "digit_split_pretokenizer_mismatches": mismatches,
        },
        "prompts": prompts_out,
        "greedy": greedy,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
