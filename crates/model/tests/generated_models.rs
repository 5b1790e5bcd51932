//! Tiny models of each family written here with seeded random weights: every hook has the
//! shape `saelab hooks` announces, hook values add up as the architecture says, and a Llama
//! forward equals a plain-loop computation written out below.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use common::*;
use saelab_model::hooks::{BlockSite, HookPoint, Hooks};
use saelab_model::load::load_hf_dir;
use saelab_model::Batch;

const VOCAB: usize = 300; // the fixture tokenizer's vocabulary
const D: usize = 8;
const HEADS: usize = 2;
const KV: usize = 1;
const DH: usize = 4;
const MLP: usize = 12;
const CTX: usize = 16;
const THETA: f32 = 10_000.0;
const EPS: f32 = 1e-5;

struct Rng(u64);
impl Rng {
    fn normal(&mut self) -> f32 {
        // Sum of uniforms: roughly normal, deterministic, no dependency.
        (0..4)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .sum::<f32>()
    }
    fn vec(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.normal()).collect()
    }
}

fn write_model(
    dir: &Path,
    config: serde_json::Value,
    tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>,
) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(
        fixtures().join("tiny/llama/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, (shape, v))| {
            (
                k.clone(),
                Tensor::from_vec(v.clone(), shape.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
}

fn llama_weights(rng: &mut Rng) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let mut w = HashMap::new();
    let mut put = |name: &str, shape: Vec<usize>, scale: f32, offset: f32, rng: &mut Rng| {
        let n = shape.iter().product();
        w.insert(name.to_string(), (shape, rng.vec(n, scale, offset)));
    };
    put("model.embed_tokens.weight", vec![VOCAB, D], 1.0, 0.0, rng);
    let p = "model.layers.0";
    put(
        &format!("{p}.input_layernorm.weight"),
        vec![D],
        0.2,
        1.0,
        rng,
    );
    put(
        &format!("{p}.post_attention_layernorm.weight"),
        vec![D],
        0.2,
        1.0,
        rng,
    );
    put(
        &format!("{p}.self_attn.q_proj.weight"),
        vec![HEADS * DH, D],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.self_attn.k_proj.weight"),
        vec![KV * DH, D],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.self_attn.v_proj.weight"),
        vec![KV * DH, D],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.self_attn.o_proj.weight"),
        vec![D, HEADS * DH],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.mlp.gate_proj.weight"),
        vec![MLP, D],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.mlp.up_proj.weight"),
        vec![MLP, D],
        0.5,
        0.0,
        rng,
    );
    put(
        &format!("{p}.mlp.down_proj.weight"),
        vec![D, MLP],
        0.5,
        0.0,
        rng,
    );
    put("model.norm.weight", vec![D], 0.2, 1.0, rng);
    put("lm_head.weight", vec![VOCAB, D], 0.5, 0.0, rng);
    w
}

fn llama_config() -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama", "vocab_size": VOCAB, "hidden_size": D, "num_hidden_layers": 1,
        "num_attention_heads": HEADS, "num_key_value_heads": KV, "intermediate_size": MLP,
        "max_position_embeddings": CTX, "rms_norm_eps": EPS, "rope_theta": THETA,
        "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 0
    })
}

// ---- the plain-loop Llama forward --------------------------------------------------------

fn matvec(w: &[f32], x: &[f32], out: usize) -> Vec<f32> {
    let inp = x.len();
    (0..out)
        .map(|o| (0..inp).map(|i| w[o * inp + i] * x[i]).sum())
        .collect()
}

fn rms(x: &[f32], g: &[f32]) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let s = 1.0 / (ms + EPS).sqrt();
    x.iter().zip(g).map(|(v, g)| v * s * g).collect()
}

/// Rotates the halves of one head vector as the "rotate half" convention does.
fn rope(v: &[f32], pos: usize) -> Vec<f32> {
    let half = DH / 2;
    let mut out = v.to_vec();
    for i in 0..half {
        let angle = pos as f32 / THETA.powf((2 * i) as f32 / DH as f32);
        let (c, s) = (angle.cos(), angle.sin());
        out[i] = v[i] * c - v[i + half] * s;
        out[i + half] = v[i + half] * c + v[i] * s;
    }
    out
}

fn plain_llama_logits(w: &HashMap<String, (Vec<usize>, Vec<f32>)>, ids: &[u32]) -> Vec<Vec<f32>> {
    let g = |n: &str| &w[n].1;
    let p = "model.layers.0";
    let xs: Vec<Vec<f32>> = ids
        .iter()
        .map(|&t| g("model.embed_tokens.weight")[t as usize * D..(t as usize + 1) * D].to_vec())
        .collect();
    let normed: Vec<Vec<f32>> = xs
        .iter()
        .map(|x| rms(x, g(&format!("{p}.input_layernorm.weight"))))
        .collect();
    let q: Vec<Vec<f32>> = normed
        .iter()
        .map(|x| matvec(g(&format!("{p}.self_attn.q_proj.weight")), x, HEADS * DH))
        .collect();
    let k: Vec<Vec<f32>> = normed
        .iter()
        .map(|x| matvec(g(&format!("{p}.self_attn.k_proj.weight")), x, KV * DH))
        .collect();
    let v: Vec<Vec<f32>> = normed
        .iter()
        .map(|x| matvec(g(&format!("{p}.self_attn.v_proj.weight")), x, KV * DH))
        .collect();
    let mut logits = Vec::new();
    for t in 0..ids.len() {
        let mut z = vec![0.0; HEADS * DH];
        for h in 0..HEADS {
            let kvh = h / (HEADS / KV);
            let qh = rope(&q[t][h * DH..(h + 1) * DH], t);
            let scores: Vec<f32> = (0..=t)
                .map(|s| {
                    let ks = rope(&k[s][kvh * DH..(kvh + 1) * DH], s);
                    qh.iter().zip(&ks).map(|(a, b)| a * b).sum::<f32>() / (DH as f32).sqrt()
                })
                .collect();
            let m = scores.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            for (s, es) in e.iter().enumerate() {
                for j in 0..DH {
                    z[h * DH + j] += es / sum * v[s][kvh * DH + j];
                }
            }
        }
        let attn = matvec(g(&format!("{p}.self_attn.o_proj.weight")), &z, D);
        let mid: Vec<f32> = xs[t].iter().zip(&attn).map(|(a, b)| a + b).collect();
        let n2 = rms(&mid, g(&format!("{p}.post_attention_layernorm.weight")));
        let gate = matvec(g(&format!("{p}.mlp.gate_proj.weight")), &n2, MLP);
        let up = matvec(g(&format!("{p}.mlp.up_proj.weight")), &n2, MLP);
        let act: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(a, u)| a / (1.0 + (-a).exp()) * u)
            .collect();
        let mlp = matvec(g(&format!("{p}.mlp.down_proj.weight")), &act, D);
        let post: Vec<f32> = mid.iter().zip(&mlp).map(|(a, b)| a + b).collect();
        let fin = rms(&post, g("model.norm.weight"));
        logits.push(matvec(g("lm_head.weight"), &fin, VOCAB));
    }
    logits
}

#[test]
fn llama_forward_equals_the_plain_loop_computation() {
    let dir = tempfile::tempdir().unwrap();
    let weights = llama_weights(&mut Rng(7));
    write_model(dir.path(), llama_config(), &weights);
    let m = load_hf_dir(dir.path(), "generated").unwrap();
    let ids = [3u32, 250, 17, 99, 0, 42, 42];
    let got = rows(&m.model.logits(&Batch::single(&ids)).unwrap());
    let want = plain_llama_logits(&weights, &ids);
    for (t, (g, w)) in got.iter().zip(&want).enumerate() {
        let diff = max_abs_diff(g, w);
        assert!(diff <= 1e-4 * max_abs(w).max(1.0), "position {t}: {diff}");
    }
}

fn gpt2_model(dir: &Path, rng: &mut Rng) {
    let mut w = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, offset: f32, rng: &mut Rng| {
        let n = shape.iter().product();
        w.insert(name, (shape, rng.vec(n, 0.5, offset)));
    };
    put("wte.weight".into(), vec![VOCAB, D], 0.0, rng);
    put("wpe.weight".into(), vec![CTX, D], 0.0, rng);
    for l in 0..2 {
        let h = format!("h.{l}");
        for ln in ["ln_1", "ln_2"] {
            put(format!("{h}.{ln}.weight"), vec![D], 1.0, rng);
            put(format!("{h}.{ln}.bias"), vec![D], 0.0, rng);
        }
        for (name, i, o) in [
            ("attn.c_attn", D, 3 * D),
            ("attn.c_proj", D, D),
            ("mlp.c_fc", D, MLP),
            ("mlp.c_proj", MLP, D),
        ] {
            put(format!("{h}.{name}.weight"), vec![i, o], 0.0, rng);
            put(format!("{h}.{name}.bias"), vec![o], 0.0, rng);
        }
    }
    put("ln_f.weight".into(), vec![D], 1.0, rng);
    put("ln_f.bias".into(), vec![D], 0.0, rng);
    let config = serde_json::json!({
        "model_type": "gpt2", "vocab_size": VOCAB, "n_embd": D, "n_layer": 2, "n_head": HEADS,
        "n_positions": CTX, "n_inner": MLP, "eos_token_id": 0
    });
    write_model(dir, config, &w);
}

fn neox_model(dir: &Path, rng: &mut Rng) {
    let mut w = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, offset: f32, rng: &mut Rng| {
        let n = shape.iter().product();
        w.insert(name, (shape, rng.vec(n, 0.5, offset)));
    };
    put("gpt_neox.embed_in.weight".into(), vec![VOCAB, D], 0.0, rng);
    for l in 0..2 {
        let p = format!("gpt_neox.layers.{l}");
        for ln in ["input_layernorm", "post_attention_layernorm"] {
            put(format!("{p}.{ln}.weight"), vec![D], 1.0, rng);
            put(format!("{p}.{ln}.bias"), vec![D], 0.0, rng);
        }
        for (name, o, i) in [
            ("attention.query_key_value", 3 * D, D),
            ("attention.dense", D, D),
            ("mlp.dense_h_to_4h", MLP, D),
            ("mlp.dense_4h_to_h", D, MLP),
        ] {
            put(format!("{p}.{name}.weight"), vec![o, i], 0.0, rng);
            put(format!("{p}.{name}.bias"), vec![o], 0.0, rng);
        }
    }
    put("gpt_neox.final_layer_norm.weight".into(), vec![D], 1.0, rng);
    put("gpt_neox.final_layer_norm.bias".into(), vec![D], 0.0, rng);
    put("embed_out.weight".into(), vec![VOCAB, D], 0.0, rng);
    let config = serde_json::json!({
        "model_type": "gpt_neox", "vocab_size": VOCAB, "hidden_size": D, "num_hidden_layers": 2,
        "num_attention_heads": HEADS, "intermediate_size": MLP, "max_position_embeddings": CTX,
        "rotary_pct": 0.5, "use_parallel_residual": true, "eos_token_id": 0
    });
    write_model(dir, config, &w);
}

#[test]
fn every_hook_has_its_announced_shape_and_values_add_up() {
    let mut rng = Rng(11);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    write_model(dirs[0].path(), llama_config(), &llama_weights(&mut rng));
    gpt2_model(dirs[1].path(), &mut rng);
    neox_model(dirs[2].path(), &mut rng);
    for dir in &dirs {
        let m = load_hf_dir(dir.path(), "generated").unwrap();
        let cfg = &m.model.cfg;
        let points = HookPoint::all(cfg);
        let (b, t) = (2, 5);
        let batch = Batch::padded(
            &[vec![1, 2, 3, 4, 5], vec![9, 8, 7]],
            saelab_model::PadSide::Left,
            0,
        );
        let out = m
            .model
            .forward(&batch, &mut Hooks::capture(points.clone()))
            .unwrap();
        for p in &points {
            let value = out.get(*p).unwrap_or_else(|| panic!("{p} not captured"));
            let announced = p.shape(cfg).0;
            assert_eq!(announced[0], "batch");
            assert_eq!(announced[1], "pos");
            let mut want = vec![b, t];
            want.extend(announced[2..].iter().map(|s| s.parse::<usize>().unwrap()));
            assert_eq!(value.dims(), &want[..], "{:?} {p}", cfg.family);
        }
        for layer in 0..cfg.n_layers {
            let at = |site| out.get(HookPoint::Block { layer, site }).unwrap().clone();
            let post = at(BlockSite::ResidPost);
            let sum = if cfg.parallel_residual {
                ((at(BlockSite::ResidPre) + at(BlockSite::AttnOut)).unwrap()
                    + at(BlockSite::MlpOut))
                .unwrap()
            } else {
                (at(BlockSite::ResidMid) + at(BlockSite::MlpOut)).unwrap()
            };
            let diff = max_abs_diff(&rows(&post).concat(), &rows(&sum).concat());
            assert!(
                diff < 1e-5,
                "{:?} layer {layer}: resid_post ≠ sum of parts ({diff})",
                cfg.family
            );
        }
    }
}
