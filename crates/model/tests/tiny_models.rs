//! Tiny random Llama, GPT-2 and GPT-NeoX models (committed fixtures made by
//! `reference/tiny_models.py` with HF transformers) must give the reference's logits and
//! hidden states, unpadded and left- or right-padded.

mod common;

use common::*;
use saelab_model::hooks::{BlockSite, HookPoint, Hooks};
use saelab_model::{Batch, LoadedModel, PadSide};

const FAMILIES: [&str; 3] = ["llama", "gpt2", "gpt_neox"];

fn load(family: &str) -> (LoadedModel, serde_json::Value) {
    let dir = fixtures().join("tiny").join(family);
    let model = saelab_model::load::load_hf_dir(&dir, family).unwrap();
    (model, read_json(&dir.join("expected.json")))
}

/// Relative to the largest reference value, as the logits criterion of the issue.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let scale = max_abs(want).max(1.0);
    let diff = max_abs_diff(got, want);
    assert!(
        diff <= tol * scale,
        "{what}: max |diff| {diff} > {tol} × {scale}"
    );
}

#[test]
fn tokens_logits_and_hidden_states_match_the_reference() {
    for family in FAMILIES {
        let (m, expected) = load(family);
        let n_layers = m.model.cfg.n_layers;
        for prompt in expected["prompts"].as_array().unwrap() {
            let want_ids = ids(&prompt["token_ids"]);
            let got_ids = m
                .tokenizer
                .encode(prompt["text"].as_str().unwrap())
                .unwrap();
            assert_eq!(got_ids, want_ids, "{family}: token ids");

            let mut points = vec![HookPoint::Block {
                layer: 0,
                site: BlockSite::ResidPre,
            }];
            points.extend((0..n_layers - 1).map(|layer| HookPoint::Block {
                layer,
                site: BlockSite::ResidPost,
            }));
            points.push(HookPoint::LnFinal);
            let out = m
                .model
                .forward(
                    &Batch::single(&got_ids),
                    &mut Hooks::capture(points.clone()).with_logits(),
                )
                .unwrap();
            let hidden = prompt["hidden_states"].as_array().unwrap();
            assert_eq!(hidden.len(), points.len());
            for (point, want) in points.iter().zip(hidden) {
                let got = rows(out.get(*point).unwrap());
                for (g, w) in got.iter().zip(want.as_array().unwrap()) {
                    assert_close(&format!("{family} {point}"), g, &floats(w), 1e-5);
                }
            }
            let logits = rows(out.logits.as_ref().unwrap());
            for (g, w) in logits.iter().zip(prompt["logits"].as_array().unwrap()) {
                assert_close(&format!("{family} logits"), g, &floats(w), 1e-5);
            }
        }
    }
}

#[test]
fn padded_batches_match_the_reference_at_real_positions() {
    for family in FAMILIES {
        let (m, expected) = load(family);
        let pad = expected["pad_id"].as_u64().unwrap() as u32;
        let prompts: Vec<Vec<u32>> = expected["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| ids(&p["token_ids"]))
            .collect();
        for (side, key) in [
            (PadSide::Left, "left_padded"),
            (PadSide::Right, "right_padded"),
        ] {
            let batch = Batch::padded(&prompts, side, pad);
            let reference = &expected[key];
            let want_ids: Vec<u32> = reference["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(ids)
                .collect();
            assert_eq!(batch.ids(), &want_ids[..], "{family} {key}: ids");
            let want_pos: Vec<u32> = reference["position_ids"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(ids)
                .collect();
            let mask = batch.mask().to_vec();
            for (i, (got, want)) in batch.positions().iter().zip(&want_pos).enumerate() {
                if mask[i] != 0 {
                    assert_eq!(got, want, "{family} {key}: position {i}");
                }
            }
            let logits = rows(&m.model.logits(&batch).unwrap());
            let want_rows: Vec<&serde_json::Value> = reference["logits"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap())
                .collect();
            let mut checked = 0;
            for (i, (g, w)) in logits.iter().zip(want_rows).enumerate() {
                if mask[i] != 0 {
                    assert_close(&format!("{family} {key} row {i}"), g, &floats(w), 1e-5);
                    checked += 1;
                }
            }
            assert_eq!(checked, prompts.iter().map(Vec::len).sum::<usize>());
        }
    }
}

/// Reading the gate and up projections switches the gated MLP from its fused kernel to
/// separate ops; the logits must not change.
#[test]
fn reading_mlp_inputs_does_not_change_the_logits() {
    let (m, expected) = load("llama");
    let ids = ids(&expected["prompts"][0]["token_ids"]);
    let batch = Batch::single(&ids);
    let plain = rows(&m.model.logits(&batch).unwrap()).concat();
    let pre = HookPoint::Block {
        layer: 1,
        site: BlockSite::MlpPre,
    };
    let out = m
        .model
        .forward(&batch, &mut Hooks::logits().read(pre))
        .unwrap();
    let read = rows(out.logits.as_ref().unwrap()).concat();
    assert!(
        max_abs_diff(&plain, &read) <= 1e-5 * max_abs(&plain),
        "logits changed"
    );
    assert_eq!(
        out.get(pre).unwrap().dims(),
        &[1, ids.len(), m.model.cfg.d_mlp]
    );
}

/// A forward restarted at a block from the clean residual stream gives the full forward's
/// logits exactly, edits included; hooks before that block are refused.
#[test]
fn forward_from_a_block_matches_the_full_forward() {
    for family in FAMILIES {
        let (m, expected) = load(family);
        let rows_ids: Vec<Vec<u32>> = (0..2)
            .map(|i| ids(&expected["prompts"][i]["token_ids"]))
            .collect();
        let batch = Batch::padded(&rows_ids, PadSide::Right, 0);
        let resid_pre = HookPoint::Block {
            layer: 1,
            site: BlockSite::ResidPre,
        };
        let mlp_out = HookPoint::Block {
            layer: 1,
            site: BlockSite::MlpOut,
        };
        let halve = |x: &candle_core::Tensor| x * 0.5;
        let full = m
            .model
            .forward(
                &batch,
                &mut Hooks::logits().read(resid_pre).edit(mlp_out, halve),
            )
            .unwrap();
        let start = full.get(resid_pre).unwrap();
        let resumed = m
            .model
            .forward_from(&batch, 1, start, &mut Hooks::logits().edit(mlp_out, halve))
            .unwrap();
        assert_eq!(
            rows(full.logits.as_ref().unwrap()),
            rows(resumed.logits.as_ref().unwrap()),
            "{family}"
        );
        let early = HookPoint::Block {
            layer: 0,
            site: BlockSite::MlpOut,
        };
        let err = m
            .model
            .forward_from(&batch, 1, start, &mut Hooks::logits().read(early))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("blocks.0.hook_mlp_out") && err.contains("block 1"),
            "{err}"
        );
    }
}
