//! The steering sweep on the tiny Llama fixture: α = 0 is the plain model (its greedy
//! continuation and its cross-entropy computed here from a plain forward), a push changes
//! the logits, rows do not depend on the list's order, and bad inputs are refused by name.

mod common;

use candle_core::DType;
use saelab_interp::fires::context_ids;
use saelab_interp::steer_sweep::{sweep, Sweep, SweepProgress, SweepRequest};
use saelab_model::{Batch, HookPoint, LoadedModel};

const PROMPT: &str = "The cat sat on";
const NEUTRAL: &str = "The river runs to the sea, and the road follows the river.";
const MAX_NEW: usize = 10;

fn hook(m: &LoadedModel) -> HookPoint {
    HookPoint::parse("blocks.0.hook_resid_post", &m.model.cfg).unwrap()
}

/// A fixed direction with no special structure.
fn direction(width: usize) -> Vec<f32> {
    (0..width)
        .map(|i| ((i * 7 + 3) % 11) as f32 / 11.0 - 0.45)
        .collect()
}

fn run(m: &LoadedModel, direction: &[f32], alphas: &[f32], targets: &[String]) -> Sweep {
    try_run(m, direction, alphas, targets).unwrap()
}

fn try_run(
    m: &LoadedModel,
    direction: &[f32],
    alphas: &[f32],
    targets: &[String],
) -> saelab_interp::Result<Sweep> {
    let request = SweepRequest {
        hook: hook(m),
        direction,
        alphas,
        prompt: PROMPT,
        max_new: MAX_NEW,
        neutral: NEUTRAL,
        targets,
    };
    sweep(m, &request, &mut |_| {})
}

/// Mean next-token CE of `ids` from a plain forward, over the positions after the start
/// token that have a next token, with the log-softmax written out.
fn plain_ce(m: &LoadedModel, ids: &[u32]) -> f64 {
    let logits = m.model.logits(&Batch::single(ids)).unwrap();
    let vocab = logits.dim(2).unwrap();
    let flat: Vec<f32> = logits
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut total = 0.0f64;
    for t in 1..ids.len() - 1 {
        let row: Vec<f64> = flat[t * vocab..(t + 1) * vocab]
            .iter()
            .map(|&l| l as f64)
            .collect();
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_z = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        total -= row[ids[t + 1] as usize] - log_z;
    }
    total / (ids.len() - 2) as f64
}

#[test]
fn alpha_zero_is_the_plain_model() {
    let m = common::tiny_llama();
    let d = direction(m.model.cfg.d_model);
    let out = run(&m, &d, &[0.0], &[]);
    let row = &out.rows[0];

    let prompt_ids = context_ids(&m.tokenizer, PROMPT).unwrap();
    assert_eq!(out.prompt_ids, prompt_ids);
    let plain = m
        .model
        .generate_greedy(&prompt_ids, MAX_NEW, m.tokenizer.eos_id())
        .unwrap();
    assert!(!plain.is_empty());
    assert_eq!(row.continuation.ids, plain);

    let neutral_ids = context_ids(&m.tokenizer, NEUTRAL).unwrap();
    assert_eq!(out.neutral.ids, neutral_ids);
    // No special token inside the text: every position after the start token but the last.
    assert_eq!(out.neutral.predicted, neutral_ids.len() - 2);
    let expected = plain_ce(&m, &neutral_ids);
    assert!(
        (row.neutral_ce - expected).abs() < 1e-10,
        "{} vs {expected}",
        row.neutral_ce
    );
    assert_eq!(row.neutral_ce, out.neutral.ce);
    assert_eq!(row.neutral_ce_delta, 0.0);
    assert_eq!(row.target_logprob, None);
    assert!(out.targets.is_none());
    assert!(out.activation_norm > 0.0);
    let norm = d.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    assert!((out.direction_norm - norm).abs() < 1e-12);
}

#[test]
fn a_push_moves_the_logits_and_the_measures() {
    let m = common::tiny_llama();
    let d = direction(m.model.cfg.d_model);
    // The targets: the greedy first token at α = 0 and one other token.
    let first = run(&m, &d, &[0.0], &[]).rows[0].continuation.ids[0];
    let targets = vec![m.tokenizer.decode(&[first]).unwrap(), " the".to_string()];
    let out = run(&m, &d, &[0.0, 40.0], &targets);
    let (zero, pushed) = (&out.rows[0], &out.rows[1]);
    let base = out.targets.as_ref().unwrap();
    assert_eq!(zero.target_logprob, Some(base.logprob));
    assert_eq!(zero.target_logprob_shift, Some(0.0));
    assert!(base.logprob < 0.0);
    let shift = pushed.target_logprob_shift.unwrap();
    assert!(shift != 0.0 && shift.is_finite(), "{shift}");
    assert_eq!(
        pushed.target_logprob_shift,
        Some(pushed.target_logprob.unwrap() - base.logprob)
    );
    assert!(pushed.neutral_ce_delta != 0.0 && pushed.neutral_ce_delta.is_finite());
    assert_ne!(pushed.continuation.ids, zero.continuation.ids);
}

#[test]
fn rows_do_not_depend_on_the_order_of_alphas() {
    let m = common::tiny_llama();
    let d = direction(m.model.cfg.d_model);
    let targets = vec![" the".to_string()];
    let forward = run(&m, &d, &[-20.0, 3.0, 20.0], &targets);
    let backward = run(&m, &d, &[20.0, 3.0, -20.0], &targets);
    let mut reversed = backward.rows.clone();
    reversed.reverse();
    assert_eq!(forward.rows, reversed);
    // α = 0 is the reference whether or not it is in the list.
    let with_zero = run(&m, &d, &[3.0, 0.0], &targets);
    assert_eq!(with_zero.rows[0], forward.rows[1]);
    assert_eq!(with_zero.rows[1].neutral_ce_delta, 0.0);
    assert_eq!(with_zero.rows[1].target_logprob_shift, Some(0.0));
}

#[test]
fn progress_counts_up_to_its_total() {
    let m = common::tiny_llama();
    let d = direction(m.model.cfg.d_model);
    let mut seen: Vec<SweepProgress> = Vec::new();
    let request = SweepRequest {
        hook: hook(&m),
        direction: &d,
        alphas: &[0.0, 1.0],
        prompt: PROMPT,
        max_new: 3,
        neutral: NEUTRAL,
        targets: &[],
    };
    sweep(&m, &request, &mut |p| seen.push(p)).unwrap();
    let last = seen.last().unwrap();
    assert_eq!((last.done, last.total), (9, 9));
    assert!(seen.windows(2).all(|w| w[0].done < w[1].done));
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let m = common::tiny_llama();
    let d = direction(m.model.cfg.d_model);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let err = try_run(&m, &d, &[1.0, bad], &[]).unwrap_err().to_string();
        assert!(err.starts_with("alpha"), "{err}");
    }
    let err = try_run(&m, &d, &[], &[]).unwrap_err().to_string();
    assert!(err.starts_with("alpha"), "{err}");
    let err = try_run(&m, &d[1..], &[1.0], &[]).unwrap_err().to_string();
    assert!(err.starts_with("direction") && err.contains("31"), "{err}");
    let mut nan = d.clone();
    nan[3] = f32::NAN;
    let err = try_run(&m, &nan, &[1.0], &[]).unwrap_err().to_string();
    assert!(err.starts_with("direction"), "{err}");
    let err = try_run(&m, &d, &[1.0], &[String::new()])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("targets"), "{err}");
    let request = SweepRequest {
        hook: hook(&m),
        direction: &d,
        alphas: &[1.0],
        prompt: PROMPT,
        max_new: 64,
        neutral: NEUTRAL,
        targets: &[],
    };
    let err = sweep(&m, &request, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("context of 64"), "{err}");
}
