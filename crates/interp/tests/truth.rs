//! The feature database against direct computations on the tiny random Llama: top-1
//! activations equal an encode-and-argmax of the hook's activations, quantile examples lie
//! in their bins, densities equal `saelab eval`'s on the same tokens, the logit lens equals
//! W_dec · final norm · W_U computed here, and an ablation equals deleting the token.

mod common;

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use saelab_data::{windows, Corpus, CorpusOptions, Packing, Window, WindowConfig};
use saelab_eval::{evaluate, EvalDictionary, EvalOptions};
use saelab_interp::ablation::{ablate, AblationRequest};
use saelab_interp::build::{build_database, BuildOptions, Provenance, Source};
use saelab_interp::db::blob;
use saelab_interp::scan::{ContextSpan, ScanDictionary, ScanOptions};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_sae::{Activation, Dictionary, Sae, SaeWeights};

const CTX: usize = 16;
const BATCH: usize = 4;
const TOKENS: u64 = 203;

const TEXT: &str = "The river runs past the old mill, and the miller counts his sacks.\n\n\
Paris is the capital of France; Berlin is the capital of Germany.\n\n\
In 1878 the novel was published in book form, and in 1879 it was translated.\n\n\
def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n\n\
She sells sea shells by the sea shore, and the shells she sells are surely sea shells.\n\n\
The quick brown fox jumps over the lazy dog while the dog sleeps in the sun.\n\n\
Numbers: 1, 2, 3, 5, 8, 13, 21, 34, 55, 89 and then 144 follow one another.\n\n\
A storm came over the hills at night and the river rose above the old stone bridge.";

fn tiny() -> Arc<LoadedModel> {
    Arc::new(common::tiny_llama())
}

fn corpus(dir: &Path) -> Corpus {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, TEXT).unwrap();
    Corpus::open(path.to_str().unwrap(), &CorpusOptions::default()).unwrap()
}

fn hook(m: &LoadedModel, name: &str) -> HookPoint {
    HookPoint::parse(name, &m.model.cfg).unwrap()
}

/// Random dictionaries: TopK and ReLU on the residual stream (two hooks), ReLU on the MLP.
fn dictionaries(m: &LoadedModel) -> Vec<ScanDictionary> {
    let cfg = &m.model.cfg;
    let mut relu = SaeWeights::init_tied(cfg.d_model, 40, 1.0, 3);
    relu.b_enc.iter_mut().for_each(|b| *b = -0.3);
    let mut mlp = SaeWeights::init_tied(cfg.d_mlp, 24, 1.0, 5);
    mlp.b_enc.iter_mut().for_each(|b| *b = -0.05);
    let make = |name: &str, hook_name: &str, sae: Sae| ScanDictionary {
        name: name.into(),
        path: format!("/nowhere/{name}"),
        hook: hook(m, hook_name),
        sae: sae.into(),
    };
    vec![
        make(
            "topk",
            "blocks.0.hook_resid_post",
            Sae::new(
                SaeWeights::init_tied(cfg.d_model, 48, 1.0, 1),
                Activation::TopK { k: 4 },
            )
            .unwrap(),
        ),
        make(
            "relu",
            "blocks.1.hook_resid_post",
            Sae::new(relu, Activation::Relu).unwrap(),
        ),
        make(
            "mlp",
            "blocks.1.mlp.hook_post",
            Sae::new(mlp, Activation::Relu).unwrap(),
        ),
    ]
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
        lens_tokens: 20,
        nearest: 3,
        ablate_top: 1,
        chunk_windows: BATCH,
    }
}

struct Built {
    _dir: tempfile::TempDir,
    db: Connection,
    model: Arc<LoadedModel>,
    windows: Vec<Window>,
}

fn build() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny();
    let window = WindowConfig::for_tokenizer(&model.tokenizer, CTX, Packing::Packed);
    let source = Source::Corpus {
        documents: corpus(dir.path()).documents(),
        window: window.clone(),
        batch_windows: BATCH,
    };
    let path = dir.path().join("features.db");
    let provenance = Provenance {
        model_spec: "tiny".into(),
        corpus: "test".into(),
    };
    build_database(
        &path,
        model.clone(),
        source,
        dictionaries(&model),
        &provenance,
        &options(),
        &mut |_| {},
    )
    .unwrap();
    let stream = windows(corpus(dir.path()).documents(), &model.tokenizer, window).unwrap();
    let windows = saelab_eval::tokens::first_tokens(stream, TOKENS).unwrap();
    let db = Connection::open(&path).unwrap();
    Built {
        _dir: dir,
        db,
        model,
        windows,
    }
}

fn dict_id(db: &Connection, name: &str) -> i64 {
    db.query_row("SELECT id FROM dictionaries WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Encodes every window's activations at the dictionary's hook (forwards of `BATCH`
/// windows, as the scan runs them) and returns, per feature, the first position of the
/// largest activation at a counted position: (window, position, value).
fn direct_argmax(b: &Built, d: &ScanDictionary) -> Vec<Option<(u64, usize, f32)>> {
    let mut best: Vec<Option<(u64, usize, f32)>> = vec![None; d.sae.d_sae()];
    for (c, chunk) in b.windows.chunks(BATCH).enumerate() {
        let ids = chunk.iter().flat_map(|w| w.ids.clone()).collect();
        let mask = chunk.iter().flat_map(|w| w.mask.clone()).collect();
        let batch = Batch::from_parts(ids, mask, chunk.len(), CTX).unwrap();
        let out = b
            .model
            .model
            .forward(&batch, &mut Hooks::capture([d.hook]))
            .unwrap();
        let x = out
            .get(d.hook)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let f = d.sae.per_position().unwrap().encode(&x).unwrap().to_dense();
        for (w, window) in chunk.iter().enumerate() {
            for t in 0..CTX {
                if window.mask[t] == 0 || window.special[t] {
                    continue;
                }
                let row = &f[(w * CTX + t) * d.sae.d_sae()..][..d.sae.d_sae()];
                for (j, &v) in row.iter().enumerate() {
                    let better = match best[j] {
                        None => v != 0.0,
                        Some((_, _, b)) => v > b,
                    };
                    if better {
                        best[j] = Some(((c * BATCH + w) as u64, t, v));
                    }
                }
            }
        }
    }
    best
}

#[test]
fn the_database_agrees_with_direct_computations() {
    let b = build();
    let dicts = dictionaries(&b.model);

    for d in &dicts {
        let id = dict_id(&b.db, &d.name);
        // Top-1 value and position equal an encode and argmax, exactly.
        let direct = direct_argmax(&b, d);
        let mut fired = 0;
        for (f, expected) in direct.iter().enumerate() {
            let top: Option<(i64, i64, f64)> =
                b.db.query_row(
                    "SELECT window, pos, value FROM examples \
                     WHERE dict = ?1 AND feature = ?2 AND kind = 'top' AND rank = 0",
                    [id, f as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ok();
            match (expected, top) {
                (None, None) => {}
                (Some((w, t, v)), Some((dw, dt, dv))) => {
                    fired += 1;
                    assert_eq!((dw as u64, dt as usize), (*w, *t), "{} feature {f}", d.name);
                    assert_eq!(dv as f32, *v, "{} feature {f}", d.name);
                }
                other => panic!("{} feature {f}: {other:?}", d.name),
            }
        }
        assert!(fired > 5, "{}: only {fired} features fired", d.name);
        check_quantiles(&b.db, id, &d.name);
    }
    check_density_against_eval(&b, &dicts);
    check_lens(&b, &dicts);
    check_nearest(&b, &dicts);
}

/// feature, value, pos, start, acts, lo, hi, whether the bin is the feature's last.
type QuantileRow = (i64, f64, i64, i64, Vec<u8>, f64, f64, bool);

/// Every quantile example lies in its bin, shows its own value at its position, and the
/// bins count every firing.
fn check_quantiles(db: &Connection, dict: i64, name: &str) {
    let mut stmt = db
        .prepare(
            "SELECT e.feature, e.value, e.pos, e.start, e.acts, q.lo, q.hi, \
             q.bin = (SELECT MAX(bin) FROM quantile_bins WHERE dict = e.dict AND feature = e.feature) \
             FROM examples e JOIN quantile_bins q \
             ON q.dict = e.dict AND q.feature = e.feature AND q.bin = e.bin \
             WHERE e.dict = ?1 AND e.kind = 'quantile'",
        )
        .unwrap();
    let rows: Vec<QuantileRow> = stmt
        .query_map([dict], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.len() > 10, "{name}: {} quantile examples", rows.len());
    for (f, v, pos, start, acts, lo, hi, last) in rows {
        assert!(
            v >= lo && (v < hi || (last && v <= hi)),
            "{name} feature {f}: {v} outside [{lo}, {hi})"
        );
        let acts = blob::to_f32(&acts).unwrap();
        assert_eq!(acts[(pos - start) as usize] as f64, v);
    }
    let mismatched: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM features f WHERE f.dict = ?1 AND f.count != \
             COALESCE((SELECT SUM(count) FROM quantile_bins q \
                       WHERE q.dict = f.dict AND q.feature = f.feature), 0)",
            [dict],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        mismatched, 0,
        "{name}: bin counts must add up to the firing count"
    );
}

fn check_density_against_eval(b: &Built, dicts: &[ScanDictionary]) {
    let eval_dicts: Vec<EvalDictionary> = dicts
        .iter()
        .map(|d| EvalDictionary {
            input_hook: None,
            name: d.name.clone(),
            path: d.path.clone(),
            hook: d.hook,
            sae: d.sae.per_position().unwrap().clone().into(),
            prune: None,
        })
        .collect();
    let options = EvalOptions {
        batch_windows: BATCH,
        ..EvalOptions::default()
    };
    let results = evaluate(
        &b.model.model,
        &b.windows,
        &eval_dicts,
        &options,
        &mut |_| {},
    )
    .unwrap();
    for (d, r) in dicts.iter().zip(&results.dictionaries) {
        let id = dict_id(&b.db, &d.name);
        let mut stmt =
            b.db.prepare("SELECT density FROM features WHERE dict = ?1 ORDER BY feature")
                .unwrap();
        let density: Vec<f64> = stmt
            .query_map([id], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(density.len(), r.latents.density.len());
        for (f, (a, e)) in density.iter().zip(&r.latents.density).enumerate() {
            assert!(
                (a - e).abs() <= 1e-6,
                "{} feature {f}: {a} vs eval {e}",
                d.name
            );
        }
        let positions: i64 =
            b.db.query_row(
                "SELECT positions FROM dictionaries WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(positions as u64, results.params.positions_evaluated);
    }
}

/// The lens, recomputed in f64 from the weights: the direction (through W_out for the MLP
/// hook), RMS-normalised with the final norm's ε and γ, times W_U.
fn check_lens(b: &Built, dicts: &[ScanDictionary]) {
    let m = &b.model.model;
    let cfg = &m.cfg;
    let to_vec =
        |t: candle_core::Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let w_u = to_vec(m.unembed.weight());
    let gamma = to_vec(m.ln_final.weight.clone());
    let eps = m.ln_final.eps as f64;
    let w_out = to_vec(m.blocks[1].mlp_out.weight()); // [d_model, d_mlp]
    let excluded: Vec<i64> =
        b.db.prepare("SELECT token FROM lens_excluded")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    for d in dicts {
        let id = dict_id(&b.db, &d.name);
        let width = d.sae.d_in();
        for f in 0..d.sae.d_sae() {
            let dir = &d.sae.per_position().unwrap().weights.w_dec[f * width..(f + 1) * width];
            let resid: Vec<f64> = if width == cfg.d_model {
                dir.iter().map(|&v| v as f64).collect()
            } else {
                (0..cfg.d_model)
                    .map(|i| {
                        (0..width)
                            .map(|j| w_out[i * width + j] as f64 * dir[j] as f64)
                            .sum()
                    })
                    .collect()
            };
            let rms = (resid.iter().map(|v| v * v).sum::<f64>() / cfg.d_model as f64 + eps).sqrt();
            let mut logits: Vec<(i64, f64)> = (0..cfg.vocab_size)
                .filter(|t| !excluded.contains(&(*t as i64)))
                .map(|t| {
                    let row = &w_u[t * cfg.d_model..(t + 1) * cfg.d_model];
                    let v = (0..cfg.d_model)
                        .map(|i| row[i] as f64 * gamma[i] as f64 * resid[i] / rms)
                        .sum();
                    (t as i64, v)
                })
                .collect();
            logits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let stored: Vec<(i64, f64)> = b
                .db
                .prepare("SELECT token, value FROM lens WHERE dict = ?1 AND feature = ?2 AND side = 1 ORDER BY rank")
                .unwrap()
                .query_map([id, f as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(stored.len(), 20);
            let scale = logits[0].1.abs().max(1e-6);
            // Values agree rank by rank; a near-tie may swap two neighbouring tokens.
            for (rank, ((_, sv), (_, ev))) in stored.iter().zip(&logits).enumerate() {
                assert!(
                    (sv - ev).abs() <= 1e-4 * scale,
                    "{} f{f} rank {rank}: {sv} vs {ev}",
                    d.name
                );
            }
            let ids: Vec<i64> = stored.iter().map(|s| s.0).collect();
            let expected: Vec<i64> = logits[..20].iter().map(|s| s.0).collect();
            let same = ids.iter().filter(|t| expected.contains(t)).count();
            assert!(
                same >= 19,
                "{} f{f}: lens tokens {ids:?} vs {expected:?}",
                d.name
            );
        }
        let lens: String =
            b.db.query_row("SELECT lens FROM dictionaries WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            lens.starts_with("direct path") || lens.contains("residual stream's end"),
            "{lens}"
        );
    }
}

fn check_nearest(b: &Built, dicts: &[ScanDictionary]) {
    // topk and relu share d_in: each lists the other; the MLP dictionary (another width)
    // has no neighbours.
    let (topk, relu, mlp) = (
        dict_id(&b.db, "topk"),
        dict_id(&b.db, "relu"),
        dict_id(&b.db, "mlp"),
    );
    let d = dicts[0].sae.d_in();
    let a = &dicts[0].sae.per_position().unwrap().weights.w_dec;
    let other = &dicts[1].sae.per_position().unwrap().weights.w_dec;
    let (feature, j, cos): (i64, i64, f64) =
        b.db.query_row(
            "SELECT feature, other_feature, cosine FROM nearest \
             WHERE dict = ?1 AND other = ?2 AND rank = 0 AND feature = 7",
            [topk, relu],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let cosine = |x: &[f32], y: &[f32]| -> f64 {
        let dot: f64 = x.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64).sum();
        let n = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        dot / (n(x) * n(y))
    };
    let row = |w: &[f32], i: usize| w[i * d..(i + 1) * d].to_vec();
    let best = (0..dicts[1].sae.d_sae())
        .map(|k| cosine(&row(a, feature as usize), &row(other, k)))
        .fold(f64::MIN, f64::max);
    assert!((cos - best).abs() < 1e-5, "{cos} vs {best}");
    assert!((cosine(&row(a, 7), &row(other, j as usize)) - best).abs() < 1e-5);
    let count = |dict: i64| -> i64 {
        b.db.query_row(
            "SELECT COUNT(*) FROM nearest WHERE dict = ?1",
            [dict],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count(relu), 40 * 3);
    assert_eq!(count(mlp), 0);
}

#[test]
fn removing_a_token_equals_deleting_it_from_the_text() {
    let model = tiny();
    let d = &dictionaries(&model)[0];
    let ids: Vec<u32> = std::iter::once(0)
        .chain(
            model
                .tokenizer
                .encode("the river runs past the old mill")
                .unwrap(),
        )
        .collect();
    let pos = ids.len() - 1;
    let encode_last = |ids: &[u32]| -> Vec<f32> {
        let out = model
            .model
            .forward(&Batch::single(ids), &mut Hooks::capture([d.hook]))
            .unwrap();
        let x = out
            .get(d.hook)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w = d.sae.d_in();
        d.sae
            .per_position()
            .unwrap()
            .encode(&x[(ids.len() - 1) * w..])
            .unwrap()
            .to_dense()
    };
    let base = encode_last(&ids);
    let feature = (0..base.len())
        .max_by(|&a, &b| base[a].total_cmp(&base[b]))
        .unwrap();
    let request = AblationRequest {
        hook: d.hook,
        ids: &ids,
        pos,
        feature,
        range: 0..pos,
    };
    let a = ablate(
        &model.model,
        d.sae.per_position().unwrap(),
        &request,
        |id| id == 0,
    )
    .unwrap();
    assert!((a.base - base[feature]).abs() < 1e-5);
    assert!(a.deltas[0].is_nan(), "the start token is kept");
    let mut moved = 0;
    for j in 1..pos {
        let mut deleted = ids.clone();
        deleted.remove(j);
        let expected = encode_last(&deleted)[feature] - base[feature];
        assert!(
            (a.deltas[j] - expected).abs() < 1e-4,
            "token {j}: {} vs {expected}",
            a.deltas[j]
        );
        moved += usize::from(expected.abs() > 1e-3);
    }
    assert!(moved > 0, "some deletion must change the feature");
}

#[test]
fn a_dictionary_of_the_wrong_width_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny();
    let window = WindowConfig::for_tokenizer(&model.tokenizer, CTX, Packing::Packed);
    let mut d = dictionaries(&model).remove(0);
    d.sae = Sae::new(SaeWeights::init_tied(7, 8, 1.0, 0), Activation::Relu)
        .unwrap()
        .into();
    let path = dir.path().join("x.db");
    let err = build_database(
        &path,
        model.clone(),
        Source::Corpus {
            documents: corpus(dir.path()).documents(),
            window,
            batch_windows: BATCH,
        },
        vec![d],
        &Provenance {
            model_spec: String::new(),
            corpus: String::new(),
        },
        &options(),
        &mut |_| {},
    )
    .err()
    .expect("a 7-wide dictionary on a 32-wide hook must be refused")
    .to_string();
    assert!(
        err.contains("/nowhere/topk") && err.contains("d_in is 7"),
        "{err}"
    );
    assert!(!path.exists(), "no database is left behind");
}

#[test]
fn the_database_does_not_depend_on_the_thread_count() {
    let dump = |threads: usize| -> Vec<String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let b = pool.install(build);
        let mut rows = Vec::new();
        for query in [
            "SELECT dict, feature, count, density, mean_act, max_act, hex(hist) FROM features ORDER BY dict, feature",
            "SELECT dict, feature, kind, bin, rank, window, pos, value, start, hex(acts) FROM examples ORDER BY id",
            "SELECT dict, feature, bin, lo, hi, count FROM quantile_bins ORDER BY dict, feature, bin",
            "SELECT example, base, hex(deltas) FROM ablations ORDER BY example",
        ] {
            let mut stmt = b.db.prepare(query).unwrap();
            let n = stmt.column_count();
            let mut q = stmt.query([]).unwrap();
            while let Some(row) = q.next().unwrap() {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                rows.push(cells.join("|"));
            }
        }
        rows
    };
    let one = dump(1);
    assert!(one.len() > 500, "{} rows", one.len());
    assert_eq!(one, dump(3));
}

/// LayerNorm models (GPT-2): the lens centres the direction, divides by its standard
/// deviation, scales by γ and leaves β and any unembedding bias out.
#[test]
fn the_lens_through_a_layer_norm_matches_an_independent_computation() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tiny/gpt2"
    );
    let m = saelab_model::load::load_hf_dir(Path::new(dir), "gpt2").unwrap();
    let cfg = &m.model.cfg;
    let d = cfg.d_model;
    let hook = hook(&m, "blocks.0.hook_resid_post");
    let directions = SaeWeights::init_tied(d, 6, 1.0, 9).w_dec;
    let n = 7;
    let lens = saelab_interp::lens::logit_lens(&m.model, hook, &directions, d, n, &[])
        .unwrap()
        .expect("the residual stream has a lens");
    let to_vec =
        |t: candle_core::Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let w_u = to_vec(m.model.unembed.weight());
    let gamma = to_vec(m.model.ln_final.weight.clone());
    let eps = m.model.ln_final.eps as f64;
    for (f, got) in lens.iter().enumerate() {
        let x: Vec<f64> = directions[f * d..(f + 1) * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mean = x.iter().sum::<f64>() / d as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let normed: Vec<f64> = (0..d)
            .map(|i| (x[i] - mean) / (var + eps).sqrt() * gamma[i] as f64)
            .collect();
        let mut logits: Vec<(u32, f64)> = (0..cfg.vocab_size)
            .map(|t| {
                let row = &w_u[t * d..(t + 1) * d];
                (t as u32, (0..d).map(|i| row[i] as f64 * normed[i]).sum())
            })
            .collect();
        logits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let scale = logits[0].1.abs();
        for (rank, (&(_, v), (_, e))) in got.top.iter().zip(&logits).enumerate() {
            assert!(
                (v as f64 - e).abs() <= 1e-4 * scale,
                "f{f} top {rank}: {v} vs {e}"
            );
        }
        let last = logits.len() - 1;
        for (rank, &(_, v)) in got.bottom.iter().enumerate() {
            let e = logits[last - rank].1;
            assert!(
                (v as f64 - e).abs() <= 1e-4 * scale,
                "f{f} bottom {rank}: {v} vs {e}"
            );
        }
    }
}
