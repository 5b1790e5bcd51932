//! The Neuronpedia export of a database scanned on the tiny random Llama: every field the
//! importer reads is present, each value equals its database row (lens order, example
//! tokens and activations, bins, rounding to 3 decimals), features that never fired are
//! listed as skipped, and a folder holding other files is refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use saelab_data::{Corpus, CorpusOptions, Packing, WindowConfig};
use saelab_interp::build::{build_database, BuildOptions, Provenance, Source};
use saelab_interp::db::blob;
use saelab_interp::export::neuronpedia::{export, NeuronpediaOptions};
use saelab_interp::scan::{ContextSpan, ScanDictionary, ScanOptions};
use saelab_model::{HookPoint, LoadedModel};
use saelab_sae::{Activation, Sae, SaeWeights};
use serde_json::Value;

const CTX: usize = 16;
const DEAD: usize = 5;

const TEXT: &str = "The river runs past the old mill, and the miller counts his sacks.\n\n\
Paris is the capital of France; Berlin is the capital of Germany.\n\n\
In 1878 the novel was published in book form, and in 1879 it was translated.\n\n\
def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n\n\
The quick brown fox jumps over the lazy dog while the dog sleeps in the sun.";

fn tiny() -> Arc<LoadedModel> {
    Arc::new(common::tiny_llama())
}

/// A database with a TopK dictionary and a ReLU one whose feature `DEAD` cannot fire.
fn build(dir: &Path) -> PathBuf {
    let model = tiny();
    let cfg = &model.model.cfg;
    let hook = |name: &str| HookPoint::parse(name, cfg).unwrap();
    let mut relu = SaeWeights::init_tied(cfg.d_model, 24, 1.0, 3);
    relu.b_enc.iter_mut().for_each(|b| *b = -0.2);
    relu.b_enc[DEAD] = -1e6;
    let dictionaries = vec![
        ScanDictionary {
            name: "topk".into(),
            path: "/nowhere/topk".into(),
            hook: hook("blocks.0.hook_resid_post"),
            sae: Sae::new(
                SaeWeights::init_tied(cfg.d_model, 32, 1.0, 1),
                Activation::TopK { k: 4 },
            )
            .unwrap()
            .into(),
        },
        ScanDictionary {
            name: "relu".into(),
            path: "/nowhere/relu".into(),
            hook: hook("blocks.1.hook_resid_post"),
            sae: Sae::new(relu, Activation::Relu).unwrap().into(),
        },
    ];
    let corpus_path = dir.join("corpus.txt");
    std::fs::write(&corpus_path, TEXT).unwrap();
    let corpus = Corpus::open(corpus_path.to_str().unwrap(), &CorpusOptions::default()).unwrap();
    let source = Source::Corpus {
        documents: corpus.documents(),
        window: WindowConfig::for_tokenizer(&model.tokenizer, CTX, Packing::Packed),
        batch_windows: 4,
    };
    let options = BuildOptions {
        scan: ScanOptions {
            top_k: 3,
            quantile_bins: 3,
            per_bin: 2,
            context: ContextSpan {
                before: 4,
                after: 2,
            },
            include_special: false,
            seed: 5,
        },
        tokens: Some(150),
        lens_tokens: 6,
        nearest: 2,
        ablate_top: 0,
        chunk_windows: 4,
    };
    let path = dir.join("features.db");
    let provenance = Provenance {
        model_spec: "/models/Tiny-Llama.Q8_0.gguf".into(),
        corpus: "test corpus".into(),
    };
    build_database(
        &path,
        model,
        source,
        dictionaries,
        &provenance,
        &options,
        &mut |_| {},
    )
    .unwrap();
    path
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0 + 0.0
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every feature of the export's batch files, by index, checking batch-level fields.
fn exported_features(dir: &Path, batches: usize) -> BTreeMap<u64, Value> {
    let mut features = BTreeMap::new();
    let mut previous = None;
    for n in 0..batches {
        let batch = read_json(&dir.join(format!("batch-{n}.json")));
        assert_eq!(batch["model_id"], "tiny-llama");
        assert_eq!(batch["layer"], 1);
        assert_eq!(batch["sae_set"], "relu");
        for f in batch["features"].as_array().unwrap() {
            let index = f["feature_index"].as_u64().unwrap();
            assert!(previous < Some(index), "features out of order at {index}");
            previous = Some(index);
            features.insert(index, f.clone());
        }
    }
    assert!(!dir.join(format!("batch-{batches}.json")).exists());
    features
}

/// An example row as the export should show it.
struct Expected {
    kind: String,
    bin: Option<i64>,
    tokens: Vec<String>,
    /// Rounded activations.
    values: Vec<f64>,
    /// The example's own token in `tokens`.
    at: usize,
    /// Its rounded activation.
    value: f64,
}

struct Rows {
    db: Connection,
    dict: i64,
    positions: f64,
    texts: Vec<String>,
}

impl Rows {
    fn open(path: &Path) -> Rows {
        let db = Connection::open(path).unwrap();
        let (dict, positions): (i64, i64) = db
            .query_row(
                "SELECT id, positions FROM dictionaries WHERE name = 'relu'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let texts = db
            .prepare("SELECT text FROM tokens ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<Vec<String>>>()
            .unwrap();
        Rows {
            db,
            dict,
            positions: positions as f64,
            texts,
        }
    }

    fn lens(&self, feature: u64, side: i64) -> (Vec<String>, Vec<f64>) {
        self.db
            .prepare(
                "SELECT token, value FROM lens WHERE dict = ?1 AND feature = ?2 AND side = ?3 \
                 ORDER BY rank",
            )
            .unwrap()
            .query_map((self.dict, feature as i64, side), |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, f64>(1)?))
            })
            .unwrap()
            .map(|r| {
                let (t, v) = r.unwrap();
                (self.texts[t as usize].clone(), round3(v))
            })
            .unzip()
    }

    /// In the export's order: top by rank, then bins from the highest, each by rank.
    fn examples(&self, feature: u64) -> Vec<Expected> {
        self.db
            .prepare(
                "SELECT e.kind, e.bin, e.pos, e.start, e.value, e.acts, w.ids FROM examples e \
                 JOIN windows w ON w.id = e.window WHERE e.dict = ?1 AND e.feature = ?2 \
                 ORDER BY e.kind DESC, e.bin DESC, e.rank",
            )
            .unwrap()
            .query_map((self.dict, feature as i64), |r| {
                let pos = r.get::<_, u32>(2)? as usize;
                let start = r.get::<_, u32>(3)? as usize;
                let acts = blob::f32_column(r, 5)?;
                let ids = blob::u32_column(r, 6)?;
                let tokens = ids[start..start + acts.len()]
                    .iter()
                    .map(|&t| self.texts[t as usize].clone())
                    .collect();
                Ok(Expected {
                    kind: r.get(0)?,
                    bin: r.get(1)?,
                    tokens,
                    values: acts.iter().map(|&a| round3(a as f64)).collect(),
                    at: pos - start,
                    value: round3(r.get(4)?),
                })
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    }
}

#[test]
fn the_export_holds_the_database_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let out = dir.path().join("np");
    let options = NeuronpediaOptions {
        dictionary: Some("relu".into()),
        features_per_batch: 7,
        ..NeuronpediaOptions::default()
    };
    let done = export(&db, &out, &options).unwrap();
    let rows = Rows::open(&db);
    let counts: BTreeMap<u64, (i64, f64, f64)> = rows
        .db
        .prepare("SELECT feature, count, density, max_act FROM features WHERE dict = ?1")
        .unwrap()
        .query_map([rows.dict], |r| {
            Ok((
                r.get::<_, u32>(0)? as u64,
                (r.get(1)?, r.get(2)?, r.get(3)?),
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let alive: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| c.0 > 0)
        .map(|(f, _)| *f)
        .collect();
    let dead: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| c.0 == 0)
        .map(|(f, _)| *f)
        .collect();
    assert!(
        dead.contains(&(DEAD as u64)) && alive.len() > 7,
        "{dead:?} {alive:?}"
    );
    assert_eq!(
        (done.features, done.skipped, done.batches),
        (alive.len(), dead.len(), alive.len().div_ceil(7))
    );

    let skipped = read_json(&out.join("skipped_indexes.json"));
    assert_eq!(skipped["layer"], "1");
    assert_eq!(skipped["model_id"], "tiny-llama");
    let listed: Vec<u64> = skipped["skipped_indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(listed, dead);

    let features = exported_features(&out, done.batches);
    assert_eq!(features.keys().copied().collect::<Vec<_>>(), alive);
    let mut quantile_examples = 0;
    for (&index, f) in &features {
        let (count, density, max_act) = counts[&index];
        for key in [
            "neuron_alignment_indices",
            "correlated_features_pearson",
            "logits_hist_data_bar_values",
            "decoder_weights_dist",
        ] {
            assert_eq!(f[key], serde_json::json!([]), "{key}");
        }
        assert_eq!(f["frac_nonzero"].as_f64().unwrap(), density);
        assert_eq!(f["n_tokens_in_prompt"], CTX as u64);
        assert_eq!(f["n_prompts_total"], 150u64.div_ceil(CTX as u64));
        assert_eq!(f["dataset"], "test corpus");
        let heights = f["freq_hist_data_bar_heights"].as_array().unwrap();
        let total: u64 = heights.iter().map(|h| h.as_u64().unwrap()).sum();
        assert_eq!(total as i64, count);
        assert_eq!(
            heights.len(),
            f["freq_hist_data_bar_values"].as_array().unwrap().len()
        );

        let (pos_str, pos_values) = rows.lens(index, 1);
        let (neg_str, neg_values) = rows.lens(index, -1);
        assert!(!pos_str.is_empty() && !neg_str.is_empty());
        assert_eq!(strings(&f["pos_str"]), pos_str);
        assert_eq!(floats(&f["pos_values"]), pos_values);
        assert_eq!(strings(&f["neg_str"]), neg_str);
        assert_eq!(floats(&f["neg_values"]), neg_values);
        assert!(pos_values.windows(2).all(|w| w[0] >= w[1]));
        assert!(neg_values.windows(2).all(|w| w[0] <= w[1]));

        let expected = rows.examples(index);
        let activations = f["activations"].as_array().unwrap();
        assert_eq!(activations.len(), expected.len());
        for (a, e) in activations.iter().zip(&expected) {
            let Expected {
                kind,
                bin,
                tokens,
                values,
                at,
                value,
            } = e;
            assert_eq!(&strings(&a["tokens"]), tokens);
            let got = floats(&a["values"]);
            assert_eq!(&got, values);
            assert!(got.iter().all(|v| round3(*v) == *v));
            assert_eq!(a["qualifying_token_index"].as_u64().unwrap() as usize, *at);
            assert_eq!(got[*at], *value);
            if kind == "top" {
                assert_eq!(a["bin_min"].as_f64(), Some(-1.0));
                assert_eq!(a["bin_contains"].as_f64(), Some(-1.0));
                assert_eq!(a["bin_max"].as_f64(), Some(round3(max_act)));
            } else {
                quantile_examples += 1;
                let (lo, hi, n): (f64, f64, i64) = rows
                    .db
                    .query_row(
                        "SELECT lo, hi, count FROM quantile_bins \
                         WHERE dict = ?1 AND feature = ?2 AND bin = ?3",
                        (rows.dict, index as i64, bin.unwrap()),
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(a["bin_min"].as_f64(), Some(round3(lo)));
                assert_eq!(a["bin_max"].as_f64(), Some(round3(hi)));
                assert_eq!(a["bin_contains"].as_f64(), Some(n as f64 / rows.positions));
                assert!(round3(lo) <= *value && *value <= round3(hi));
            }
        }
    }
    assert!(quantile_examples > 0);
}

#[test]
fn names_default_and_override_and_several_dictionaries_need_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let e = export(&db, &dir.path().join("a"), &NeuronpediaOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`topk`") && e.contains("`relu`"), "{e}");

    let out = dir.path().join("b");
    let options = NeuronpediaOptions {
        dictionary: Some("topk".into()),
        model_id: Some("my-model".into()),
        sae_set: Some("res-test".into()),
        layer: Some(9),
        features_per_batch: 1000,
    };
    let done = export(&db, &out, &options).unwrap();
    assert_eq!(done.batches, 1);
    let batch = read_json(&out.join("batch-0.json"));
    assert_eq!(batch["model_id"], "my-model");
    assert_eq!(batch["sae_set"], "res-test");
    assert_eq!(batch["layer"], 9);

    // A smaller batch size into the same folder replaces the whole export.
    let again = NeuronpediaOptions {
        features_per_batch: 5,
        ..options
    };
    let done = export(&db, &out, &again).unwrap();
    assert!(done.batches > 1);
    let files = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(files, done.batches + 1);
}

#[test]
fn a_folder_with_other_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let out = dir.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    let options = NeuronpediaOptions {
        dictionary: Some("relu".into()),
        ..NeuronpediaOptions::default()
    };
    let e = export(&db, &out, &options).unwrap_err().to_string();
    assert!(
        e.contains(&out.display().to_string()) && e.contains("notes.txt"),
        "{e}"
    );
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}
