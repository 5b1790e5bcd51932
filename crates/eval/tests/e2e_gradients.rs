//! End-to-end training's gradients against PyTorch's autograd on HF's own models: a TopK
//! dictionary spliced at `blocks.0.hook_resid_post` of the tiny random Llama, GPT-2 and
//! GPT-NeoX models, differentiated through every later block, the final norm and the
//! unembedding, for the KL from the clean distributions and for the CE
//! (`reference/e2e_gradients.py` wrote the fixtures).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use saelab_data::windows::Window;
use saelab_eval::cross_entropy::{CleanDistributions, DownstreamLoss};
use saelab_eval::downstream::SplicedLoss;
use saelab_eval::positions::Positions;
use saelab_model::{Batch, BlockSite, HookPoint, Hooks, LoadedModel};
use saelab_sae::kernels::select;
use saelab_sae::train::objective::{
    forward_pre, loss_and_grads, DownstreamTerm, Objective, Path, Scratch,
};
use saelab_sae::weights::transpose;
use saelab_sae::SaeWeights;

const WINDOWS: usize = 2;
const SEQ: usize = 12;
const K: usize = 4;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e2e_gradients")
}

fn model(arch: &str) -> LoadedModel {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures/tiny")
        .join(arch);
    saelab_model::load::load_hf_dir(&dir, arch).expect("tiny model")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .expect("values")
}

/// ‖ours − reference‖ / ‖reference‖.
fn rel_err(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let num: f64 = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let den: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
    assert!(den > 0.0, "a zero reference gradient would prove nothing");
    (num / den).sqrt()
}

fn check(arch: &str, loss: DownstreamLoss, name: &str) {
    let fx: HashMap<String, Tensor> = candle_core::safetensors::load(
        fixture_dir().join(format!("{name}.safetensors")),
        &Device::Cpu,
    )
    .expect("fixture");
    let m = model(arch);
    let d = m.model.cfg.d_model;
    let f_n = fx["b_enc"].dims()[0];
    let ids: Vec<u32> = fx["ids"]
        .flatten_all()
        .and_then(|t| t.to_vec1::<i64>())
        .expect("ids")
        .iter()
        .map(|&v| v as u32)
        .collect();

    // Two windows whose first position plays the start token: not spliced, not counted.
    let windows: Vec<Window> = ids
        .chunks(SEQ)
        .map(|w| Window {
            ids: w.to_vec(),
            mask: vec![1; SEQ],
            special: (0..SEQ).map(|t| t == 0).collect(),
        })
        .collect();
    let positions = Positions::of(&windows, false);
    let batch = Batch::from_parts(ids.clone(), vec![1; ids.len()], WINDOWS, SEQ).expect("batch");
    let hook = HookPoint::parse("blocks.0.hook_resid_post", &m.model.cfg).expect("hook");
    let resid_pre = HookPoint::Block {
        layer: 0,
        site: BlockSite::ResidPre,
    };
    let out = m
        .model
        .forward(&batch, &mut Hooks::capture([hook, resid_pre]).with_logits())
        .expect("clean forward");
    let distributions = CleanDistributions::new(
        &values(out.logits.as_ref().expect("logits")),
        m.model.cfg.vocab_size,
        &ids,
        &positions.next_token,
    );
    let value = out.get(hook).expect("hook value");
    let spliced = SplicedLoss {
        model: &m.model,
        batch: &batch,
        hook,
        start: Some((0, out.get(resid_pre).expect("resid_pre"))),
        clean_value: value,
        splice: &positions.splice,
        distributions: &distributions,
        loss,
    };

    // The spliced rows, the dictionary, its TopK features.
    let x: Vec<f32> = values(value)
        .chunks(d)
        .zip(&positions.splice)
        .filter(|(_, s)| **s)
        .flat_map(|(r, _)| r.to_vec())
        .collect();
    let rows = x.len() / d;
    let w = SaeWeights {
        d_in: d,
        d_sae: f_n,
        w_enc_t: transpose(&values(&fx["W_enc"]), d, f_n),
        b_enc: values(&fx["b_enc"]),
        w_dec: values(&fx["W_dec"]),
        b_dec: values(&fx["b_dec"]),
    };
    let mut pre = Vec::new();
    let xc = forward_pre(&w, &x, true, &mut pre);
    let features = select::top_k_rows(&pre, rows, f_n, K, None);
    let down = |x_hat: &[f32]| spliced.loss_and_grad(x_hat).map_err(|e| e.to_string());
    let obj = Objective {
        features: &features,
        aux: None,
        l1: None,
        apply_b_dec_to_input: true,
        downstream: Some(DownstreamTerm {
            loss: &down,
            input_scale: 1.0,
            mse_coefficient: 0.0,
        }),
    };
    let mut grads = SaeWeights::zeros(d, f_n);
    let (parts, _) = loss_and_grads(
        &w,
        &x,
        &xc,
        &obj,
        Path::Sparse,
        &mut Scratch::default(),
        &mut grads,
    )
    .expect("downstream loss");

    let want_loss = values(&fx["loss"])[0] as f64;
    assert!(
        (parts.downstream - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0),
        "{name}: loss {} vs PyTorch {want_loss}",
        parts.downstream
    );
    assert_eq!(parts.recon, 0.0, "the MSE has no weight here");
    let pairs = [
        ("W_enc", transpose(&grads.w_enc_t, f_n, d)),
        ("b_enc", grads.b_enc.clone()),
        ("W_dec", grads.w_dec.clone()),
        ("b_dec", grads.b_dec.clone()),
    ];
    for (param, ours) in pairs {
        let err = rel_err(&ours, &values(&fx[&format!("grad_{param}")]));
        assert!(err < 1e-4, "{name}: ∂L/∂{param} relative error {err:.2e}");
    }
}

#[test]
fn kl_gradient_through_llama_equals_autograd() {
    check("llama", DownstreamLoss::Kl, "llama_kl");
}

#[test]
fn ce_gradient_through_llama_equals_autograd() {
    check("llama", DownstreamLoss::Ce, "llama_ce");
}

#[test]
fn kl_gradient_through_gpt2_equals_autograd() {
    check("gpt2", DownstreamLoss::Kl, "gpt2_kl");
}

#[test]
fn kl_gradient_through_gpt_neox_equals_autograd() {
    check("gpt_neox", DownstreamLoss::Kl, "gpt_neox_kl");
}
