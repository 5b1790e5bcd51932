#!/usr/bin/env python3
"""Create tiny random HF models (llama, gpt2, gpt_neox) and their expected outputs.

For each architecture this writes, under
crates/model/tests/fixtures/tiny/<arch>/ (or OUTPUT_DIR/<arch>/):

  config.json        HF config as written by save_pretrained, plus the legacy
                     top-level rope keys real hub checkpoints carry
                     (llama: rope_theta; gpt_neox: rotary_pct, rotary_emb_base)
  model.safetensors  float32 weights (save_pretrained, safe_serialization)
  tokenizer.json     a byte-level BPE (vocab 300) trained here on a few
                     sentences; identical in all three dirs; no post-processor,
                     so no BOS/EOS is ever added
  expected.json      outputs of the HF model in float32, eager attention:
      prompts[i]: text, token_ids, logits [seq][vocab],
                  hidden_states [n_layers+1][seq][hidden] (the list that
                  output_hidden_states=True returns: entry 0 is the embedding
                  output, entry k the output of block k-1, and the LAST entry
                  has the final norm applied, i.e. it equals the input to the
                  LM head rather than the raw output of the last block)
      left_padded / right_padded: the two prompts as one batch, padded with
                  pad_id, with attention_mask, position_ids
                  (= cumsum(mask)-1, 0 where mask is 0, as HF generate does)
                  and logits [batch][seq][vocab]; rows at padded positions are
                  null (their values are meaningless).

All weights are drawn with a fixed seed: normal(0, 0.2) for every weight and
bias, and 1 + normal(0, 0.1) for norm weights, so outputs are far from trivial.
Floats are written as the shortest decimal that round-trips to the same
float32 (checked also through a float64 parse followed by a cast to float32).

Set up and run (CPU only, a few seconds):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch transformers tokenizers safetensors numpy
    /tmp/refenv/bin/python reference/tiny_models.py [OUTPUT_DIR]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 1234
VOCAB = 300
PAD_ID = 0  # "<|endoftext|>", the only special token

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "A tiny model for testing hook points in a transformer.",
    "Hello world! This is a small corpus for a byte-level BPE tokenizer.",
    "The residual stream carries information between the layers of the model.",
    "Sparse autoencoders find features in the activations of language models.",
    "def add(a, b):\n    return a + b\n",
    "Numbers like 42, 3.14 and 2024 appear here too.",
    "the the the and and of of to to in in is is that that",
]

PROMPTS = [
    "Hello world, the model is tiny.",
    "The fox jumps over 42 lazy dogs.",
]


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


def f32_nested(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().to(torch.float32).cpu().numpy()
    if t.ndim == 1:
        return [f32(v) for v in t]
    return [f32_nested(s) for s in t]


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    tok.post_processor = None
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    assert tok.token_to_id("<|endoftext|>") == PAD_ID
    return tok


def randomize(model, gen):
    """Re-draw every parameter: norms ~ 1 + N(0, 0.1), everything else ~ N(0, 0.2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = any(k in name for k in ("norm", "ln_", "layernorm"))
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.2 * noise)


def make_models():
    common = dict(vocab_size=VOCAB, pad_token_id=PAD_ID, bos_token_id=PAD_ID, eos_token_id=PAD_ID)
    return {
        "llama": (
            LlamaForCausalLM,
            LlamaConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=64,
                rms_norm_eps=1e-5,
                rope_theta=10000.0,
                tie_word_embeddings=False,
                **common,
            ),
            {"rope_theta": 10000.0},
        ),
        "gpt2": (
            GPT2LMHeadModel,
            GPT2Config(
                n_embd=32,
                n_layer=2,
                n_head=4,
                n_positions=64,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                **common,
            ),
            {},
        ),
        "gpt_neox": (
            GPTNeoXForCausalLM,
            GPTNeoXConfig(
                hidden_size=32,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=64,
                rotary_pct=0.25,
                rotary_emb_base=10000,
                use_parallel_residual=True,
                tie_word_embeddings=False,
                layer_norm_eps=1e-5,
                hidden_dropout=0.0,
                attention_dropout=0.0,
                **common,
            ),
            {"rotary_pct": 0.25, "rotary_emb_base": 10000},
        ),
    }


def padded_batch(seqs, left):
    n = max(len(s) for s in seqs)
    ids, mask = [], []
    for s in seqs:
        pad = [PAD_ID] * (n - len(s))
        m0, m1 = [0] * (n - len(s)), [1] * len(s)
        ids.append(pad + s if left else s + pad)
        mask.append(m0 + m1 if left else m1 + m0)
    ids = torch.tensor(ids)
    mask = torch.tensor(mask)
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return ids, mask, pos


def run_batch(model, seqs, left, singles):
    ids, mask, pos = padded_batch(seqs, left)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    rows = []
    worst = 0.0
    for b in range(ids.shape[0]):
        real = [p for p in range(ids.shape[1]) if mask[b, p] == 1]
        worst = max(worst, float((logits[b, real] - singles[b]).abs().max()))
        rows.append([f32_nested(logits[b, p]) if mask[b, p] == 1 else None for p in range(ids.shape[1])])
    return (
        {
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
            "position_ids": pos.tolist(),
            "logits": rows,
        },
        worst,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output_dir", nargs="?", default=os.path.join(REPO_ROOT, "crates", "model", "tests", "fixtures", "tiny"))
    args = ap.parse_args()

    torch.manual_seed(SEED)
    tok = build_tokenizer()
    total = 0
    for arch, (cls, config, legacy_keys) in make_models().items():
        gen = torch.Generator().manual_seed(SEED)
        config._attn_implementation = "eager"
        model = cls(config).to(torch.float32).eval()
        randomize(model, gen)

        out_dir = os.path.join(args.output_dir, arch)
        os.makedirs(out_dir, exist_ok=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        gen_cfg = os.path.join(out_dir, "generation_config.json")
        if os.path.exists(gen_cfg):
            os.remove(gen_cfg)
        cfg_path = os.path.join(out_dir, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg.update(legacy_keys)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        tok.save(os.path.join(out_dir, "tokenizer.json"))

        # Reload from disk so the expected outputs are those of the files.
        model = cls.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()

        prompts = []
        singles = []
        with torch.no_grad():
            for text in PROMPTS:
                ids = tok.encode(text).ids
                out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
                singles.append(out.logits[0])
                prompts.append(
                    {
                        "text": text,
                        "token_ids": ids,
                        "logits": f32_nested(out.logits[0]),
                        "hidden_states": [f32_nested(h[0]) for h in out.hidden_states],
                    }
                )
        seqs = [p["token_ids"] for p in prompts]
        left, left_err = run_batch(model, seqs, True, singles)
        right, right_err = run_batch(model, seqs, False, singles)
        expected = {
            "arch": arch,
            "seed": SEED,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "pad_id": PAD_ID,
            "hidden_states_note": "entry 0 = embeddings output, entry k = output of block k-1, "
            "last entry has the final norm applied",
            "prompts": prompts,
            "left_padded": left,
            "right_padded": right,
        }
        exp_path = os.path.join(out_dir, "expected.json")
        with open(exp_path, "w") as f:
            json.dump(expected, f, separators=(",", ":"))
            f.write("\n")
        size = sum(os.path.getsize(os.path.join(out_dir, n)) for n in os.listdir(out_dir))
        total += size
        print(
            f"{arch}: tokens {[len(s) for s in seqs]}, hidden_states {len(prompts[0]['hidden_states'])}, "
            f"max |batched - single| left {left_err:.2e} right {right_err:.2e}, "
            f"max |logit| {max(float(s.abs().max()) for s in singles):.2f}, dir {size} bytes",
            file=sys.stderr,
        )
    print(f"total {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
