//! Realistic synthetic inputs for the report tests: an eval of several dictionaries with
//! thousands of latents, and a training-run folder.

#![allow(dead_code)] // each test binary uses part of this

use serde_json::{json, Value};
use std::path::Path;

/// xorshift64*: a few lines, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

pub const TOKENS: u64 = 19_843;

/// Bins of 0.25 in log10 density and the dead count, as the eval writes them.
fn density_histogram(density: &[f64]) -> Value {
    let mut counts = std::collections::BTreeMap::<i64, u64>::new();
    let mut dead = 0;
    for &d in density {
        if d == 0.0 {
            dead += 1;
        } else {
            *counts.entry((d.log10() / 0.25).floor() as i64).or_default() += 1;
        }
    }
    let bins: Vec<Value> = counts
        .into_iter()
        .map(|(b, n)| json!({"lo": b as f64 * 0.25, "hi": (b + 1) as f64 * 0.25, "count": n}))
        .collect();
    json!({"bin_width": 0.25, "bins": bins, "dead": dead})
}

/// One dictionary's entry: `d_sae` latents, `dead` of them dead, TopK (fixed L0) or not.
fn dictionary(
    name: &str,
    arch: &str,
    d_sae: usize,
    dead: usize,
    k: Option<u64>,
    seed: u64,
) -> Value {
    let mut rng = Rng::new(seed);
    let mut density = Vec::with_capacity(d_sae);
    let mut projection = Vec::with_capacity(d_sae);
    let mut b_enc = Vec::with_capacity(d_sae);
    let stride = (d_sae / dead.max(1)).max(1);
    for i in 0..d_sae {
        let z = rng.normal();
        let d = if dead > 0 && i % stride == 0 && i / stride < dead {
            0.0
        } else {
            // Densities of at least one token in the window, at most 1.
            10f64.powf(-2.6 + 0.75 * z).clamp(1.0 / TOKENS as f64, 1.0)
        };
        density.push(d);
        projection.push(0.92 + 0.05 * z + 0.04 * rng.normal());
        b_enc.push(-0.08 + 0.06 * z + 0.03 * rng.normal());
    }
    let dead_count = density.iter().filter(|d| **d == 0.0).count();
    let l0_histogram = match k {
        Some(k) => json!({"bin_width": 1.0, "bins": [{"lo": k, "hi": k + 1, "count": TOKENS}]}),
        None => {
            let bins: Vec<Value> = (20..110)
                .map(|l| {
                    // A normal curve over the window's tokens (σ = 14 → peak ≈ TOKENS / 35).
                    let z = (l as f64 - 58.0) / 14.0;
                    let count = TOKENS as f64 / 35.1 * (-0.5 * z * z).exp();
                    json!({"lo": l, "hi": l + 1, "count": count.round()})
                })
                .collect();
            json!({"bin_width": 1.0, "bins": bins})
        }
    };
    let l0 = k.map_or(58.3, |k| k as f64);
    let fvu = match (k, d_sae) {
        (None, _) => 0.16,
        (_, n) if n > 8000 => 0.085,
        _ => 0.12,
    };
    let ce_spliced = 2.81 + fvu * 3.0;
    let b_enc = if arch == "gated" {
        Value::Null
    } else {
        json!(b_enc)
    };
    json!({
        "name": name, "path": format!("runs/demo/final/{name}"), "hook": "blocks.6.hook_resid_post",
        "architecture": arch, "d_in": 576, "d_sae": d_sae,
        "reconstruction": {"mse": fvu * 1.1, "sse_per_token": fvu * 640.0, "l2_loss": 7.1, "fvu": fvu,
            "variance_explained": 1.0 - fvu, "cossim": 0.95, "relative_norm": 0.97, "shrinkage": 0.98,
            "explained_variance_legacy": 0.9},
        "sparsity": {"l0": l0, "l1": 80.0, "dead": dead_count,
            "alive_pct": 100.0 * (1.0 - dead_count as f64 / d_sae as f64),
            "dead_window_tokens": TOKENS, "density_histogram": density_histogram(&density),
            "l0_histogram": l0_histogram},
        "downstream": {"ce_clean": 2.81, "ce_spliced": ce_spliced, "ce_delta": ce_spliced - 2.81,
            "ce_zero": 9.1, "ce_mean": 6.2, "ce_random": 4.6 + fvu * 4.0,
            "loss_recovered": (9.1 - ce_spliced) / (9.1 - 2.81), "loss_recovered_mean_ablation": 0.9,
            "kl": fvu * 3.5, "kl_random": 2.2, "kl_div_score": 0.94},
        "geometry": {"decoder_norm_mean": 1.0, "de_projection_mean": 0.92, "de_projection_median": 0.92},
        "latents": {"density": density, "de_projection": projection,
            "decoder_norm": vec![1.0; d_sae], "b_enc": b_enc}
    })
}

fn mcs(a: &str, b: &str, centre: f64) -> Value {
    let bins: Vec<Value> = (0..20)
        .map(|i| {
            let x = i as f64 * 0.05 + 0.025;
            let z = (x - centre) / 0.12;
            json!({"lo": i as f64 * 0.05, "hi": (i + 1) as f64 * 0.05, "count": (900.0 * (-0.5 * z * z).exp()).round()})
        })
        .collect();
    json!({"a": a, "b": b, "mean": centre - 0.02, "median": centre,
        "histogram": {"bin_width": 0.05, "bins": bins}})
}

/// An eval of three dictionaries (16k and 4k TopK, 4k gated with no b_enc) and two MCS pairs.
pub fn eval_json() -> Value {
    json!({
        "format": "saelab-eval", "version": 1,
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf", "corpus": "default",
        "params": {
            "tokens_requested": 20000, "ctx": 128, "windows": 157, "batch_windows": 8,
            "positions_evaluated": TOKENS, "include_special": false,
            "reconstruction_positions": "non-padding, non-special",
            "splice_positions": "non-padding, non-special (special positions keep their activation)",
            "ce_positions": "input token real and not special, next-token target real",
            "ce_positions_counted": 19686, "dead_window_tokens": TOKENS,
            "legacy_mean": "mean over each forward batch of batch_windows windows", "random_seed": 0
        },
        "hooks": [{"hook": "blocks.6.hook_resid_post", "d": 576, "ce_clean": 2.81, "ce_zero": 9.1,
            "ce_mean": 6.2, "kl_zero": 6.0, "kl_mean": 3.1}],
        "dictionaries": [
            dictionary("topk-16k", "topk", 16384, 240, Some(32), 1),
            dictionary("topk-4k", "topk", 4096, 6, Some(32), 2),
            dictionary("gated-4k", "gated", 4096, 40, None, 3),
        ],
        "mcs": [mcs("topk-16k", "topk-4k", 0.62), mcs("topk-4k", "topk-16k", 0.81)]
    })
}

/// A run folder: metrics.jsonl for two dictionaries (with a resumed stretch and a partial
/// last line), summary.json, config.json and an eval.json.
pub fn write_run(dir: &Path) {
    let mut lines = String::new();
    let mut rng = Rng::new(7);
    let log = |lines: &mut String, step: u64, rng: &mut Rng| {
        let t = step as f64 / 400.0;
        // (name, TopK's k, FVU floor, dead peak, peak learning rate)
        for (name, k, floor, peak, top_lr) in [
            ("topk-16k", Some(32.0), 0.08, 0.15, 4e-4),
            ("relu-4k", None, 0.12, 0.04, 3e-4),
        ] {
            let fvu = floor + 0.9 * (-6.0 * t).exp() + 0.01 * rng.normal().abs();
            let l0 = k.unwrap_or(60.0 + 2500.0 * (-9.0 * t).exp());
            let dead = peak * (t * 8.0).min(1.0) * (-3.0 * t).exp();
            let decay = if t > 0.8 { (1.0 - t) / 0.2 } else { 1.0 };
            let lr = top_lr * (step as f64 / 40.0).min(1.0) * decay;
            let line = json!({"step": step, "lr": lr, "l1_coefficient": 0.0, "loss": fvu * 1.1,
                "recon_loss": fvu, "aux_loss": 0.01, "l1_loss": 0.0, "mse": fvu * 1.3, "fvu": fvu,
                "l0": l0, "dead_fraction": dead, "threshold": null, "dense_path": false,
                "resampled": 0, "name": name, "tokens": step * 4096, "tokens_per_s": 21000.5});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    };
    for step in (2..=250).step_by(2) {
        log(&mut lines, step, &mut rng);
    }
    for step in (200..=400).step_by(2) {
        log(&mut lines, step, &mut rng); // resumed from the step-200 checkpoint
    }
    lines.push_str(r#"{"step": 402, "na"#);
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let summary = json!({"steps": 400, "tokens": 400 * 4096, "seconds": 78.2,
        "last_step": [], "holdout": {"windows": 16, "tokens": 2031,
        "positions": "real, non-special tokens of the cache's last windows", "dead_window_tokens": 2031,
        "dictionaries": [
            {"name": "topk-16k", "fvu": 0.091, "mse": 0.11, "l0": 32.0, "dead": 310, "dead_fraction": 0.019},
            {"name": "relu-4k", "fvu": 0.14, "mse": 0.16, "l0": 63.5, "dead": 12, "dead_fraction": 0.003}],
        "pca": {"components": 32, "fitted_on_tokens": "the training batches", "fvu": 0.41}}});
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    let config = json!({"run": {"model": null, "corpus": "default", "tokens": 1638400, "batch": 4096},
        "dictionaries": [{"name": "topk-16k"}, {"name": "relu-4k"}], "total_steps": 400});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut eval = eval_json();
    eval["dictionaries"].as_array_mut().unwrap().truncate(2);
    eval["mcs"].as_array_mut().unwrap().clear();
    std::fs::write(dir.join("eval.json"), eval.to_string()).unwrap();
}
