//! The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against HF transformers loading the
//! same file (`reference/smollm2_gguf_logits.py`, fixture committed): token ids, logits within
//! 1e-4 of the largest |logit|, layer-6 residuals, greedy continuations. Needs
//! `scripts/setup.sh` to have installed the model.

mod common;

use std::sync::OnceLock;

use candle_core::Tensor;
use common::*;
use saelab_model::hooks::{BlockSite, HookPoint, Hooks};
use saelab_model::{Batch, LoadedModel};

fn model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = saelab_model::load::default_model_path();
        assert!(
            path.exists(),
            "{} is missing: run scripts/setup.sh before the tests",
            path.display()
        );
        saelab_model::load(None).unwrap()
    })
}

fn reference() -> &'static serde_json::Value {
    static REF: OnceLock<serde_json::Value> = OnceLock::new();
    REF.get_or_init(|| read_json(&fixtures().join("smollm2_reference.json")))
}

fn prompts() -> &'static Vec<serde_json::Value> {
    reference()["prompts"].as_array().unwrap()
}

fn resid_post(layer: usize) -> HookPoint {
    HookPoint::Block {
        layer,
        site: BlockSite::ResidPost,
    }
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let m = model();
    for p in prompts() {
        let text = p["text"].as_str().unwrap();
        assert_eq!(
            m.tokenizer.encode(text).unwrap(),
            ids(&p["token_ids"]),
            "{text:?}"
        );
    }
}

#[test]
fn logits_equal_the_reference_within_1e4_of_the_largest_logit() {
    let m = model();
    let probe = ids(&reference()["probe_ids"]);
    let probe_idx = Tensor::new(probe.as_slice(), m.model.device()).unwrap();
    assert!(prompts().len() >= 8);
    for p in prompts() {
        let text = p["text"].as_str().unwrap();
        let out = m
            .model
            .forward(
                &Batch::single(&ids(&p["token_ids"])),
                &mut Hooks::logits().read(resid_post(6)),
            )
            .unwrap();
        let logits = out.logits.unwrap().squeeze(0).unwrap();
        let probed = rows(&logits.index_select(&probe_idx, 1).unwrap());
        let all = rows(&logits);
        let norms = floats(&p["resid_post_6_norms"]);
        let resid = rows(out.captured.get(&resid_post(6)).unwrap());
        for (pos, want) in p["positions"].as_array().unwrap().iter().enumerate() {
            let max_logit = want["max_abs_logit"].as_f64().unwrap() as f32;
            let tol = 1e-4 * max_logit;
            let diff = max_abs_diff(&probed[pos], &floats(&want["probe_logits"]));
            assert!(
                diff <= tol,
                "{text:?} pos {pos}: probe logits differ by {diff} > {tol}"
            );
            for (id, value) in ids(&want["top5_ids"])
                .iter()
                .zip(floats(&want["top5_logits"]))
            {
                let got = all[pos][*id as usize];
                assert!(
                    (got - value).abs() <= tol,
                    "{text:?} pos {pos} id {id}: {got} vs {value}"
                );
            }
            assert!(
                (max_abs(&all[pos]) - max_logit).abs() <= tol,
                "{text:?} pos {pos}: max |logit|"
            );
            let norm = resid[pos].iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                (norm - norms[pos]).abs() <= 1e-4 * norms[pos],
                "{text:?} pos {pos}: resid norm {norm} vs {}",
                norms[pos]
            );
            let first8 = floats(&p["resid_post_6_first8"][pos]);
            assert!(
                max_abs_diff(&resid[pos][..8], &first8) <= 1e-4 * norms[pos],
                "{text:?} pos {pos}: resid values"
            );
        }
    }
}

#[test]
fn greedy_continuations_equal_the_reference() {
    let m = model();
    for g in reference()["greedy"].as_array().unwrap() {
        let p = &prompts()[g["prompt_index"].as_u64().unwrap() as usize];
        let max_new = g["max_new_tokens"].as_u64().unwrap() as usize;
        let new = m
            .model
            .generate_greedy(&ids(&p["token_ids"]), max_new, m.tokenizer.eos_id())
            .unwrap();
        assert_eq!(new, ids(&g["new_ids"]));
        assert_eq!(
            m.tokenizer.decode(&new).unwrap(),
            g["new_text"].as_str().unwrap()
        );
    }
}

#[test]
fn forward_to_layer_3_runs_4_of_30_blocks() {
    let m = model();
    assert_eq!(m.model.cfg.n_layers, 30);
    let batch = Batch::single(&ids(&prompts()[0]["token_ids"]));
    let out = m
        .model
        .forward(&batch, &mut Hooks::capture([resid_post(3)]))
        .unwrap();
    assert_eq!(out.blocks_run, 4);
    assert!(out.logits.is_none());
    // The early-stopped value is the same as the one a full forward sees.
    let full = m
        .model
        .forward(&batch, &mut Hooks::logits().read(resid_post(3)))
        .unwrap();
    assert_eq!(full.blocks_run, 30);
    assert_eq!(
        rows(out.get(resid_post(3)).unwrap()),
        rows(full.get(resid_post(3)).unwrap())
    );
}

#[test]
fn replacing_a_hook_by_its_own_value_is_exact_and_by_zeros_is_not() {
    let m = model();
    let batch = Batch::single(&ids(&prompts()[2]["token_ids"]));
    let point = resid_post(6);
    let clean = m
        .model
        .forward(&batch, &mut Hooks::logits().read(point))
        .unwrap();
    let captured = clean.get(point).unwrap().clone();
    let clean_logits = rows(clean.logits.as_ref().unwrap());

    let replaced = m
        .model
        .forward(
            &batch,
            &mut Hooks::logits().edit(point, |_| Ok(captured.clone())),
        )
        .unwrap();
    assert_eq!(
        rows(replaced.logits.as_ref().unwrap()),
        clean_logits,
        "bit-identical logits"
    );

    let zeroed = m
        .model
        .forward(&batch, &mut Hooks::logits().edit(point, |x| x.zeros_like()))
        .unwrap();
    let diff = max_abs_diff(
        &rows(zeroed.logits.as_ref().unwrap()).concat(),
        &clean_logits.concat(),
    );
    assert!(
        diff > 1.0,
        "zeroing the residual stream changed logits by only {diff}"
    );
}

/// transformers builds this GGUF's tokenizer without SmolLM2's digit pre-tokenizer; the two
/// differ only on unusual digits (Arabic-Indic, superscripts). saelab follows SmolLM2's own
/// `tokenizer.json` (Digits then ByteLevel), which the reference script rebuilt in Python.
#[test]
fn unusual_digits_follow_smollm2s_own_pre_tokenizer() {
    let m = model();
    let notes = &reference()["tokenizer_notes"]["digit_split_pretokenizer_mismatches"];
    let cases = notes.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            m.tokenizer.encode(text).unwrap(),
            ids(&case["digits_bytelevel"]),
            "{text:?}"
        );
    }
}
