//! The probe rows on the tiny Llama fixture, against a forward of each document alone:
//! batching and padding change nothing, pooling is the mean (or the last token) of the
//! positions after the start token, and features are the dictionary's encode of those rows.

use std::path::Path;

use candle_core::{DType, IndexOp};
use saelab_interp::fires::context_ids;
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_probe::collect::{collect, CollectOptions, DictionaryAt, Positions, Source};
use saelab_sae::{Activation, Dictionary, Sae, SaeWeights};

fn tiny() -> LoadedModel {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tiny/llama"
    );
    saelab_model::load::load_hf_dir(Path::new(dir), "llama").unwrap()
}

const TEXTS: [&str; 3] = [
    "The cat sat on the mat.",
    "A much longer document about dogs, which run in the park every morning and evening.",
    "Short.",
];

/// `[len, d]` hook values of one document run alone, start token first.
fn alone(m: &LoadedModel, text: &str, hook: HookPoint, ctx: usize) -> Vec<Vec<f32>> {
    let mut ids = context_ids(&m.tokenizer, text).unwrap();
    ids.truncate(ctx);
    let out = m
        .model
        .forward(&Batch::single(&ids), &mut Hooks::capture([hook]))
        .unwrap();
    let t = out
        .get(hook)
        .unwrap()
        .i(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    t.to_vec2::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
}

fn options(positions: Positions) -> CollectOptions {
    CollectOptions {
        ctx: 12,
        positions,
        batch: 2,
        seed: 5,
    }
}

#[test]
fn pooled_rows_equal_each_document_alone() {
    let m = tiny();
    let hook = HookPoint::parse("blocks.1.hook_resid_post", &m.model.cfg).unwrap();
    let d = m.model.cfg.d_model;
    let sae = Sae::new(
        SaeWeights::init_tied(d, 24, 1.0, 3),
        Activation::TopK { k: 3 },
    )
    .unwrap();
    let dicts = [DictionaryAt {
        name: "topk".into(),
        hook,
        sae: &sae,
    }];
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    for positions in [Positions::Mean, Positions::Last] {
        let c = collect(
            &m,
            &texts,
            &[hook],
            &dicts,
            &options(positions),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(c.row_document, [0, 1, 2]);
        let (acts, feats) = (&c.representations[0], &c.representations[1]);
        assert_eq!(
            (acts.source, feats.source),
            (Source::Activations, Source::Features)
        );
        for (doc, text) in TEXTS.iter().enumerate() {
            let rows = alone(&m, text, hook, 12);
            // The start token (position 0) is never a row.
            let used = &rows[1..];
            let want: Vec<f32> = match positions {
                Positions::Mean => (0..d)
                    .map(|j| used.iter().map(|r| r[j]).sum::<f32>() / used.len() as f32)
                    .collect(),
                _ => used.last().unwrap().clone(),
            };
            assert!(
                close(&acts.values[doc * d..(doc + 1) * d], &want),
                "{positions:?} {doc}"
            );
            let flat: Vec<f32> = used.iter().flatten().copied().collect();
            let f = sae.encode(&flat).unwrap();
            let mut pooled = vec![0f32; 24];
            let picked: Vec<usize> = match positions {
                Positions::Mean => (0..used.len()).collect(),
                _ => vec![used.len() - 1],
            };
            for &t in &picked {
                let (idx, val) = f.row(t);
                for (&i, &v) in idx.iter().zip(val) {
                    pooled[i as usize] += v / picked.len() as f32;
                }
            }
            assert!(
                close(&feats.values[doc * 24..(doc + 1) * 24], &pooled),
                "{positions:?} {doc}"
            );
        }
    }
}

#[test]
fn token_rows_are_positions_of_their_document() {
    let m = tiny();
    let hook = HookPoint::parse("blocks.0.hook_resid_post", &m.model.cfg).unwrap();
    let d = m.model.cfg.d_model;
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let c = collect(
        &m,
        &texts,
        &[hook],
        &[],
        &options(Positions::Tokens(4)),
        &mut |_| {},
    )
    .unwrap();
    let rep = &c.representations[0];
    assert_eq!(rep.values.len(), c.row_document.len() * d);
    for (doc, text) in TEXTS.iter().enumerate() {
        let rows = alone(&m, text, hook, 12);
        let mine: Vec<usize> = (0..c.row_document.len())
            .filter(|&r| c.row_document[r] == doc)
            .collect();
        assert_eq!(mine.len(), 4.min(rows.len() - 1), "document {doc}");
        for r in mine {
            let row = &rep.values[r * d..(r + 1) * d];
            assert!(
                rows[1..].iter().any(|p| close(row, p)),
                "row {r} is no position of {doc}"
            );
        }
    }
}

#[test]
fn bad_requests_are_named() {
    let m = tiny();
    let hook = HookPoint::parse("blocks.0.hook_resid_post", &m.model.cfg).unwrap();
    let wrong = Sae::new(
        SaeWeights::init_tied(7, 8, 1.0, 1),
        Activation::TopK { k: 2 },
    )
    .unwrap();
    let dicts = [DictionaryAt {
        name: "wrong".into(),
        hook,
        sae: &wrong,
    }];
    let texts = vec!["x y".to_string()];
    let e = collect(
        &m,
        &texts,
        &[hook],
        &dicts,
        &options(Positions::Mean),
        &mut |_| {},
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("`wrong` reads 7 values"), "{e}");
    let mut o = options(Positions::Mean);
    o.ctx = 1;
    let e = collect(&m, &texts, &[hook], &[], &o, &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("ctx:"), "{e}");
}

#[test]
fn a_mean_difference_is_the_difference_of_the_class_means_of_pooled_rows() {
    use saelab_probe::direction::mean_difference;
    use saelab_probe::labels::{label_documents, LabelSpec};
    let m = tiny();
    let hook = HookPoint::parse("blocks.1.hook_resid_post", &m.model.cfg).unwrap();
    let d = m.model.cfg.d_model;
    let docs = TEXTS
        .iter()
        .map(|t| Ok(saelab_data::Document::new(t.to_string())));
    let spec: LabelSpec = "contains:cat".parse().unwrap();
    let labelled = label_documents(docs, &[spec], 10, false).unwrap();
    let diff = mean_difference(&m, &labelled, hook, 12, 2, &mut |_| {}).unwrap();
    assert_eq!(diff.documents, [2, 1]);
    let pooled: Vec<Vec<f32>> = TEXTS
        .iter()
        .map(|t| {
            let rows = alone(&m, t, hook, 12);
            (0..d)
                .map(|j| rows[1..].iter().map(|r| r[j]).sum::<f32>() / (rows.len() - 1) as f32)
                .collect()
        })
        .collect();
    // Only the first text mentions a cat.
    let want: Vec<f32> = (0..d)
        .map(|j| pooled[0][j] - (pooled[1][j] + pooled[2][j]) / 2.0)
        .collect();
    assert!(close(&diff.direction, &want));
    let multi = label_documents(
        TEXTS
            .iter()
            .enumerate()
            .map(|(i, t)| Ok(saelab_data::Document::new(t.to_string()).with("k", i as u64))),
        &["k".parse().unwrap()],
        10,
        false,
    )
    .unwrap();
    let e = mean_difference(&m, &multi, hook, 12, 2, &mut |_| {})
        .err()
        .unwrap();
    assert!(e.to_string().contains("binary label"), "{e}");
}
