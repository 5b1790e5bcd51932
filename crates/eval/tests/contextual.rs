//! The evaluator on contextual dictionaries (carry, temporal) and a tiny random Llama: a
//! carry dictionary that reconstructs exactly changes nothing, and the spliced CE equals
//! one computed by hand from `run_after_start` over each window.

use candle_core::{DType, Tensor};
use saelab_data::windows::Window;
use saelab_eval::evaluate::batch_of;
use saelab_eval::positions::Positions;
use saelab_eval::{evaluate, pruned_copies, EvalDictionary, EvalOptions, EvalResults};
use saelab_model::{HookPoint, Hooks, LoadedModel};
use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::contextual::window::{AnyDictionary, WindowDictionary};
use saelab_sae::{Activation, Sae, SaeWeights};

const HOOK: &str = "blocks.0.hook_resid_post";

fn tiny_llama() -> LoadedModel {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tiny/llama"
    );
    saelab_model::load::load_hf_dir(std::path::Path::new(dir), "llama").unwrap()
}

/// A window starting with `<|endoftext|>` (id 0), right-padded to `len`.
fn window(m: &LoadedModel, text: &str, len: usize) -> Window {
    let mut ids = vec![0];
    ids.extend(m.tokenizer.encode(text).unwrap());
    assert!(ids.len() <= len, "text too long for the window");
    let real = ids.len();
    ids.resize(len, 0);
    let mask: Vec<u8> = (0..len).map(|t| u8::from(t < real)).collect();
    let special = (0..len).map(|t| t == 0 || t >= real).collect();
    Window { ids, mask, special }
}

const TEXTS: [&str; 3] = [
    "the cat sat on the mat and looked at the dog",
    "a quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny model",
];

fn windows(m: &LoadedModel) -> Vec<Window> {
    TEXTS.iter().map(|t| window(m, t, 48)).collect()
}

fn dictionary(m: &LoadedModel, name: &str, sae: AnyDictionary) -> EvalDictionary {
    EvalDictionary {
        input_hook: None,
        name: name.into(),
        path: format!("/dictionaries/{name}"),
        hook: HookPoint::parse(HOOK, &m.model.cfg).unwrap(),
        sae,
        prune: None,
    }
}

/// Batches of 2 windows: 3 windows make a full batch and a short one.
fn run(m: &LoadedModel, windows: &[Window], dicts: &[EvalDictionary]) -> EvalResults {
    let options = EvalOptions {
        batch_windows: 2,
        ..EvalOptions::default()
    };
    evaluate(&m.model, windows, dicts, &options, &mut |_| {}).unwrap()
}

/// ±e_i latents with no carry: x̂ = relu(x) − relu(−x) = x bit for bit.
fn exact_carry(d: usize) -> CarrySae {
    let w = Sae::identity(d).unwrap().weights;
    CarrySae::new(w, 2 * d, vec![0.0; 2 * d], 1e-3).unwrap()
}

/// Random directions that hold most of their code from one position to the next.
fn lossy_carry(d: usize, d_sae: usize, k: usize) -> CarrySae {
    let mut w = SaeWeights::init_tied(d, d_sae, 1.0, 11);
    w.b_enc.iter_mut().for_each(|b| *b = 0.05);
    CarrySae::new(w, k, vec![0.9; d_sae], 1e-3).unwrap()
}

fn temporal(d: usize, d_sae: usize, k: usize) -> saelab_sae::format::saelens_temporal::TemporalSae {
    let mut cfg = TemporalConfig::new(d, d_sae, Some(k));
    cfg.seed = 5;
    TemporalTrainer::new(cfg).unwrap().dictionary()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

#[test]
fn a_carry_dictionary_that_reconstructs_exactly_changes_nothing() {
    let m = tiny_llama();
    let d = m.model.cfg.d_model;
    let r = run(
        &m,
        &windows(&m),
        &[dictionary(&m, "exact", exact_carry(d).into())],
    );
    let out = &r.dictionaries[0];
    assert_eq!(out.architecture, "carry");
    assert_eq!(out.downstream.ce_spliced, out.downstream.ce_clean);
    assert_eq!(out.downstream.ce_delta, 0.0);
    assert_eq!(out.downstream.kl, 0.0);
    assert_eq!(out.reconstruction.fvu, 0.0);
    let ctx = out
        .contextual
        .as_ref()
        .expect("a carry dictionary reports its context path");
    // Nothing is carried: every code is paid for where it is on.
    assert_eq!(ctx.context_share, 0.0);
    assert_eq!(ctx.l0_on, out.sparsity.l0);
    assert!(out.sparsity.l0 > 0.0);
}

/// CE of `m` over `windows` with `hook` replaced, at the splice positions, by the
/// dictionary's `run_after_start` over each window alone: one window per forward.
fn ce_by_hand(m: &LoadedModel, windows: &[Window], d: &dyn WindowDictionary) -> f64 {
    let hook = HookPoint::parse(HOOK, &m.model.cfg).unwrap();
    let (mut total, mut n) = (0.0f64, 0u64);
    for w in windows {
        let batch = batch_of(std::slice::from_ref(w)).unwrap();
        let clean = m
            .model
            .forward(&batch, &mut Hooks::capture([hook]))
            .unwrap();
        let value = clean.get(hook).unwrap();
        let x = flat(value);
        let len = w.ids.len();
        let width = x.len() / len;
        let run = d.run_after_start(&x, len).unwrap();
        let positions = Positions::of(std::slice::from_ref(w), false);
        let mut edited = x.clone();
        for t in 0..len {
            if positions.splice[t] {
                edited[t * width..(t + 1) * width]
                    .copy_from_slice(&run.reconstruction[t * width..(t + 1) * width]);
            }
        }
        let edited = Tensor::from_vec(edited, value.dims(), value.device()).unwrap();
        let mut hooks = Hooks::logits().edit(hook, move |_| Ok(edited.clone()));
        let out = m.model.forward(&batch, &mut hooks).unwrap();
        let logits = flat(out.logits.as_ref().unwrap());
        let vocab = logits.len() / len;
        for t in 0..len {
            if !positions.next_token[t] {
                continue;
            }
            let row = &logits[t * vocab..(t + 1) * vocab];
            let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = row.iter().map(|&v| (v as f64 - top).exp()).sum();
            let target = row[w.ids[t + 1] as usize] as f64;
            total += top + z.ln() - target;
            n += 1;
        }
    }
    total / n as f64
}

#[test]
fn the_spliced_cross_entropy_is_the_one_computed_by_hand() {
    let m = tiny_llama();
    let d = m.model.cfg.d_model;
    let ws = windows(&m);
    let carry = lossy_carry(d, 4 * d, 3);
    let temporal = temporal(d, 4 * d, 4);
    let by_hand = [ce_by_hand(&m, &ws, &carry), ce_by_hand(&m, &ws, &temporal)];
    let r = run(
        &m,
        &ws,
        &[
            dictionary(&m, "carry", carry.clone().into()),
            dictionary(&m, "temporal", temporal.clone().into()),
        ],
    );
    for (out, want) in r.dictionaries.iter().zip(by_hand) {
        let got = out.downstream.ce_spliced;
        eprintln!(
            "{}: ce_spliced {got} (by hand {want}), ce_clean {}, l0 {}, {:?}",
            out.name, out.downstream.ce_clean, out.sparsity.l0, out.contextual
        );
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "{}: evaluated {got}, by hand {want}",
            out.name
        );
        // The dictionary is lossy: the check above would catch a splice that did nothing.
        assert!(
            (got - out.downstream.ce_clean).abs() > 1e-3,
            "{}: ce_spliced {got} = ce_clean",
            out.name
        );
        assert!(out.downstream.kl > 0.0);
        let ctx = out.contextual.as_ref().unwrap();
        assert!(
            ctx.context_share > 0.0 && ctx.context_share < 1.0,
            "{}: context share {}",
            out.name,
            ctx.context_share
        );
        assert!(ctx.persistence.latents > 0, "{}", out.name);
        // What is on includes what is carried: at least what is paid for.
        assert!(ctx.l0_on >= out.sparsity.l0, "{}", out.name);
    }
    // A carry code at 0.9 of itself lasts: latents stay on more often than not.
    let carry_p = r.dictionaries[0]
        .contextual
        .as_ref()
        .unwrap()
        .persistence
        .clone();
    assert!(carry_p.p_stay_median.unwrap() > 0.5, "{carry_p:?}");
    assert!(carry_p.mean_run_median.unwrap() > 1.5, "{carry_p:?}");
    // Geometry and cosines cover contextual dictionaries too.
    assert_eq!(r.dictionaries[0].latents.decoder_norm.len(), 4 * d);
    assert!(r.mcs.iter().any(|p| p.a == "carry" && p.b == "temporal"));
}

#[test]
fn l0_counts_what_each_position_pays_for() {
    let m = tiny_llama();
    let d = m.model.cfg.d_model;
    let ws = windows(&m);
    let carry = lossy_carry(d, 4 * d, 3);
    let r = run(&m, &ws, &[dictionary(&m, "carry", carry.clone().into())]);
    // By hand: onsets at the measured positions, each window run alone.
    let hook = HookPoint::parse(HOOK, &m.model.cfg).unwrap();
    let (mut paid, mut on, mut positions) = (0usize, 0usize, 0usize);
    for w in &ws {
        let batch = batch_of(std::slice::from_ref(w)).unwrap();
        let out = m
            .model
            .forward(&batch, &mut Hooks::capture([hook]))
            .unwrap();
        let run = carry
            .run_after_start(&flat(out.get(hook).unwrap()), w.ids.len())
            .unwrap();
        let measured = Positions::of(std::slice::from_ref(w), false).measured;
        for (t, _) in measured.iter().enumerate().filter(|(_, m)| **m) {
            paid += run.paid.row(t).1.iter().filter(|v| **v != 0.0).count();
            on += run.codes.row(t).1.iter().filter(|v| **v != 0.0).count();
            positions += 1;
        }
    }
    let out = &r.dictionaries[0];
    assert_eq!(r.params.positions_evaluated, positions as u64);
    let l0 = paid as f64 / positions as f64;
    assert!(
        (out.sparsity.l0 - l0).abs() < 1e-12,
        "{} vs {l0}",
        out.sparsity.l0
    );
    let l0_on = on as f64 / positions as f64;
    let ctx = out.contextual.as_ref().unwrap();
    assert!((ctx.l0_on - l0_on).abs() < 1e-12);
    assert!(l0_on > l0, "carried codes are on without being paid for");
}

#[test]
fn per_position_results_have_no_contextual_part_and_pruning_a_contextual_one_is_refused() {
    let m = tiny_llama();
    let d = m.model.cfg.d_model;
    let w = SaeWeights::init_tied(d, 2 * d, 1.0, 7);
    let topk = Sae::new(w, Activation::TopK { k: 4 }).unwrap();
    let r = run(&m, &windows(&m), &[dictionary(&m, "topk", topk.into())]);
    assert!(r.dictionaries[0].contextual.is_none());
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("context_share"));

    let carry = dictionary(&m, "carry", lossy_carry(d, 4 * d, 3).into());
    let err = pruned_copies(&carry, &[2], "--prune-densest")
        .err()
        .expect("pruning a carry dictionary is refused")
        .to_string();
    assert!(
        err.contains("--prune-densest") && err.contains("carry"),
        "{err}"
    );
    assert!(pruned_copies(&carry, &[], "--prune-densest")
        .unwrap()
        .is_empty());
}
