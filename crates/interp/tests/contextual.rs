//! The feature database of contextual dictionaries (carry, temporal) on the tiny random
//! Llama: every example's activations are the dictionary's codes (what is on) from
//! `run_after_start` over the scanned windows, so a feature that holds shows on through its
//! region, top-1 is the codes' argmax, and each feature's persistence (P(stay), mean run)
//! is what the codes say.

mod common;

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use saelab_data::{windows, Corpus, CorpusOptions, Packing, Window, WindowConfig};
use saelab_interp::build::{build_database, BuildOptions, Provenance, Source};
use saelab_interp::db::blob;
use saelab_interp::scan::{ContextSpan, ScanDictionary, ScanOptions};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::contextual::window::WindowDictionary;
use saelab_sae::SaeWeights;

const CTX: usize = 16;
const BATCH: usize = 4;
const TOKENS: u64 = 203;
const HOOK: &str = "blocks.0.hook_resid_post";

const TEXT: &str = "The river runs past the old mill, and the miller counts his sacks.\n\n\
Paris is the capital of France; Berlin is the capital of Germany.\n\n\
In 1878 the novel was published in book form, and in 1879 it was translated.\n\n\
def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n\n\
She sells sea shells by the sea shore, and the shells she sells are surely sea shells.\n\n\
The quick brown fox jumps over the lazy dog while the dog sleeps in the sun.\n\n\
A storm came over the hills at night and the river rose above the old stone bridge.";

fn corpus(dir: &Path) -> Corpus {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, TEXT).unwrap();
    Corpus::open(path.to_str().unwrap(), &CorpusOptions::default()).unwrap()
}

fn carry(d: usize) -> CarrySae {
    let mut w = SaeWeights::init_tied(d, 48, 1.0, 2);
    w.b_enc.iter_mut().for_each(|b| *b = 0.05);
    CarrySae::new(w, 3, vec![0.9; 48], 1e-3).unwrap()
}

fn temporal(d: usize) -> saelab_sae::format::saelens_temporal::TemporalSae {
    let mut cfg = TemporalConfig::new(d, 48, Some(3));
    cfg.seed = 4;
    TemporalTrainer::new(cfg).unwrap().dictionary()
}

fn options() -> BuildOptions {
    BuildOptions {
        scan: ScanOptions {
            top_k: 3,
            quantile_bins: 3,
            per_bin: 2,
            context: ContextSpan {
                before: 4,
                after: 2,
            },
            include_special: false,
            seed: 11,
        },
        tokens: Some(TOKENS),
        lens_tokens: 5,
        nearest: 3,
        // Ablation is a per-position dictionary's question: contextual ones are passed over.
        ablate_top: 1,
        chunk_windows: BATCH,
    }
}

/// Codes `[window · CTX + t][feature]` of `d` over `windows`, forwards of `BATCH` windows as
/// the scan runs them, each window run whole.
fn direct_codes(
    m: &LoadedModel,
    windows: &[Window],
    hook: HookPoint,
    d: &dyn WindowDictionary,
) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for chunk in windows.chunks(BATCH) {
        let ids = chunk.iter().flat_map(|w| w.ids.clone()).collect();
        let mask = chunk.iter().flat_map(|w| w.mask.clone()).collect();
        let batch = Batch::from_parts(ids, mask, chunk.len(), CTX).unwrap();
        let out = m
            .model
            .forward(&batch, &mut Hooks::capture([hook]))
            .unwrap();
        let x = out
            .get(hook)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let codes = d.run_after_start(&x, CTX).unwrap().codes.to_dense();
        rows.extend(codes.chunks(d.d_sae()).map(<[f32]>::to_vec));
    }
    rows
}

/// (feature, window, pos, start, value, acts) of every example of a dictionary.
type ExampleRow = (i64, i64, i64, i64, f64, Vec<f32>);

fn examples(db: &Connection, name: &str) -> Vec<ExampleRow> {
    let mut stmt = db
        .prepare(
            "SELECT e.feature, e.window, e.pos, e.start, e.value, e.acts FROM examples e \
             JOIN dictionaries d ON d.id = e.dict WHERE d.name = ?1",
        )
        .unwrap();
    stmt.query_map([name], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            blob::f32_column(r, 5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// (p_stay, mean_run) of every feature of a dictionary, by feature.
fn persistence(db: &Connection, name: &str) -> Vec<(Option<f64>, Option<f64>)> {
    let mut stmt = db
        .prepare(
            "SELECT f.p_stay, f.mean_run FROM features f JOIN dictionaries d ON d.id = f.dict \
             WHERE d.name = ?1 ORDER BY f.feature",
        )
        .unwrap();
    stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn examples_show_the_codes_that_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(common::tiny_llama());
    let cfg = &model.model.cfg;
    let hook = HookPoint::parse(HOOK, cfg).unwrap();
    let (c, t) = (carry(cfg.d_model), temporal(cfg.d_model));
    let window = WindowConfig::for_tokenizer(&model.tokenizer, CTX, Packing::Packed);
    let source = Source::Corpus {
        documents: corpus(dir.path()).documents(),
        window: window.clone(),
        batch_windows: BATCH,
    };
    let path = dir.path().join("features.db");
    let dictionaries = vec![
        ScanDictionary {
            name: "carry".into(),
            path: "/nowhere/carry".into(),
            hook,
            sae: c.clone().into(),
        },
        ScanDictionary {
            name: "temporal".into(),
            path: "/nowhere/temporal".into(),
            hook,
            sae: t.clone().into(),
        },
    ];
    let provenance = Provenance {
        model_spec: "tiny".into(),
        corpus: "test".into(),
    };
    build_database(
        &path,
        model.clone(),
        source,
        dictionaries,
        &provenance,
        &options(),
        &mut |_| {},
    )
    .unwrap();
    let stream = windows(corpus(dir.path()).documents(), &model.tokenizer, window).unwrap();
    let scanned = saelab_eval::tokens::first_tokens(stream, TOKENS).unwrap();
    let db = Connection::open(&path).unwrap();

    let architecture: String = db
        .query_row(
            "SELECT architecture FROM dictionaries WHERE name = 'carry'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(architecture, "carry");
    let ablations: i64 = db
        .query_row("SELECT COUNT(*) FROM ablations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ablations, 0, "no ablations for contextual dictionaries");

    for (name, d) in [("carry", &c as &dyn WindowDictionary), ("temporal", &t)] {
        let codes = direct_codes(&model, &scanned, hook, d);
        let counted = |w: usize, p: usize| {
            let win = &scanned[w];
            win.mask[p] == 1 && !win.special[p]
        };
        let rows = examples(&db, name);
        assert!(rows.len() > 50, "{name}: {} examples", rows.len());
        let mut held = 0;
        for (f, w, pos, start, value, acts) in &rows {
            let (f, w) = (*f as usize, *w as usize);
            assert_eq!(
                *value as f32,
                codes[w * CTX + *pos as usize][f],
                "{name} {f}"
            );
            for (i, &a) in acts.iter().enumerate() {
                let p = *start as usize + i;
                let want = if counted(w, p) {
                    codes[w * CTX + p][f]
                } else {
                    0.0
                };
                assert_eq!(a, want, "{name} feature {f} window {w} position {p}");
            }
            // On here and at the position before: held, not only paid for at an onset.
            let at = (*pos - *start) as usize;
            if at > 0 && acts[at - 1] != 0.0 {
                held += 1;
            }
        }
        assert!(
            held > 10,
            "{name}: only {held} examples on at the position before"
        );

        // Persistence per feature, counted directly from the codes: pairs are firing
        // positions whose next position is counted, runs are broken by uncounted positions.
        let stored = persistence(&db, name);
        let mut some_held = 0;
        for (f, &(p_stay, mean_run)) in stored.iter().enumerate() {
            let (mut fires, mut pairs, mut stays, mut runs) = (0u64, 0u64, 0u64, 0u64);
            for w in 0..scanned.len() {
                let on = |p: usize| counted(w, p) && codes[w * CTX + p][f] != 0.0;
                for p in (0..CTX).filter(|&p| on(p)) {
                    fires += 1;
                    runs += u64::from(p == 0 || !on(p - 1));
                    if p + 1 < CTX && counted(w, p + 1) {
                        pairs += 1;
                        stays += u64::from(on(p + 1));
                    }
                }
            }
            let want_stay = (pairs >= 5).then(|| stays as f64 / pairs as f64);
            let want_run = (runs > 0).then(|| fires as f64 / runs as f64);
            assert_eq!(p_stay, want_stay, "{name} feature {f} P(stay)");
            assert_eq!(mean_run, want_run, "{name} feature {f} mean run");
            some_held += usize::from(p_stay.is_some_and(|p| p > 0.5));
        }
        assert!(some_held > 0, "{name}: no feature stays on");

        // Top-1 is the codes' largest value at a counted position, for every feature.
        let mut largest = vec![0.0f32; d.d_sae()];
        for r in (0..scanned.len() * CTX).filter(|&r| counted(r / CTX, r % CTX)) {
            for (l, &v) in largest.iter_mut().zip(&codes[r]) {
                *l = l.max(v);
            }
        }
        for (f, &best) in largest.iter().enumerate() {
            let top: Option<f64> = db
                .query_row(
                    "SELECT e.value FROM examples e JOIN dictionaries d ON d.id = e.dict \
                     WHERE d.name = ?1 AND e.feature = ?2 AND e.kind = 'top' AND e.rank = 0",
                    rusqlite::params![name, f as i64],
                    |r| r.get(0),
                )
                .ok();
            match top {
                Some(v) => assert_eq!(v as f32, best, "{name} feature {f}"),
                None => assert_eq!(best, 0.0, "{name} feature {f} fired but has no example"),
            }
        }
    }
}
