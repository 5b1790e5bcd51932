//! A realistic feature database built the way a scan would, on the tiny Llama fixture: real
//! windows of real text, real dictionaries (random TopK) saved as SAELens folders, and
//! statistics, examples and bins computed from the dictionaries' actual activations. The
//! lens and nearest tables are filled from the decoders. Two vocabulary entries read as
//! HTML (`<script>…`, `<img …>`) and sit in a window, a lens and the meta table.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use saelab_interp::db::schema::{CREATE, FORMAT, SCHEMA_VERSION};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_sae::{Activation, Dictionary, Metadata, Sae, SaeWeights};

pub const SCRIPT: &str = "<script>alert(1)</script>";
pub const IMG: &str = "<img src=x onerror=alert(1)>";
/// Vocabulary ids whose display text the fixture replaces with the two strings above.
pub const SCRIPT_TOKEN: u32 = 298;
pub const IMG_TOKEN: u32 = 299;
pub const HIST_BINS: usize = 8;

pub fn tiny_model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny/llama")
}

pub fn tiny_model() -> LoadedModel {
    saelab_model::load(Some(tiny_model_dir().to_str().unwrap())).unwrap()
}

pub struct DictSpec {
    pub name: &'static str,
    pub hook: &'static str,
    pub d_sae: usize,
    pub k: usize,
}

pub struct Spec {
    pub windows: Vec<String>,
    pub dicts: Vec<DictSpec>,
    pub top_k: usize,
    pub bins: usize,
    pub per_bin: usize,
}

const SENTENCES: [&str; 10] = [
    "The cat sat on the mat and looked at the door.",
    "Paris is the capital of France, and Rome is the capital of Italy.",
    "She opened the window; the rain had stopped at last.",
    "In 1969 the first people walked on the moon.",
    "def add(a, b): return a + b",
    "The river runs past the old mill into the sea.",
    "A small dog barked at the red car in the street.",
    "Water boils at 100 degrees at sea level.",
    "He wrote three letters and posted them before noon.",
    "Green trees and blue skies make a fine summer day.",
];

impl Spec {
    /// The tests' database: ten sentences and a window with the HTML tokens, two
    /// dictionaries at two hooks.
    pub fn small() -> Spec {
        let mut windows: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
        windows.push("MARKUP".into());
        Spec {
            windows,
            dicts: vec![
                DictSpec {
                    name: "resid0-topk",
                    hook: "blocks.0.hook_resid_post",
                    d_sae: 48,
                    k: 4,
                },
                DictSpec {
                    name: "resid1-topk",
                    hook: "blocks.1.hook_resid_post",
                    d_sae: 40,
                    k: 3,
                },
            ],
            top_k: 4,
            bins: 3,
            per_bin: 2,
        }
    }

    /// A benchmark-sized database: `windows` windows of pseudo-random sentences, one
    /// dictionary of `d_sae` features.
    pub fn large(windows: usize, d_sae: usize) -> Spec {
        let words: Vec<&str> = SENTENCES.iter().flat_map(|s| s.split(' ')).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let texts = (0..windows)
            .map(|_| {
                (0..24)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        words[(state % words.len() as u64) as usize]
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        Spec {
            windows: texts,
            dicts: vec![DictSpec {
                name: "resid0-16k",
                hook: "blocks.0.hook_resid_post",
                d_sae,
                k: 32,
            }],
            top_k: 10,
            bins: 4,
            per_bin: 3,
        }
    }
}

pub struct Fixture {
    pub db: PathBuf,
    pub dict_dirs: Vec<PathBuf>,
    pub model: LoadedModel,
}

/// Per-position sparse activations of one dictionary over all windows.
struct Activations {
    /// rows[window][pos] = (feature, value) entries, ascending feature.
    rows: Vec<Vec<Vec<(u32, f32)>>>,
}

impl Activations {
    fn at(&self, window: usize, pos: usize, feature: u32) -> f32 {
        let row = &self.rows[window][pos];
        row.binary_search_by_key(&feature, |e| e.0)
            .map_or(0.0, |k| row[k].1)
    }
}

pub fn build(dir: &Path, spec: &Spec) -> Fixture {
    let model = tiny_model();
    let cfg = &model.model.cfg;
    let windows: Vec<Vec<u32>> = spec
        .windows
        .iter()
        .map(|text| {
            let mut ids = vec![0u32];
            if text == "MARKUP" {
                ids.extend(model.tokenizer.encode("The page said").unwrap());
                ids.extend([SCRIPT_TOKEN, IMG_TOKEN]);
                ids.extend(
                    model
                        .tokenizer
                        .encode(" and then nothing happened.")
                        .unwrap(),
                );
            } else {
                ids.extend(model.tokenizer.encode(text).unwrap());
            }
            ids.truncate(cfg.context_length);
            ids
        })
        .collect();

    let db = dir.join("features.sqlite");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(CREATE).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let model_config = format!(
        r#"{{"d_model":{},"n_layers":{},"vocab_size":{}}}"#,
        cfg.d_model, cfg.n_layers, cfg.vocab_size
    );
    let positions: usize = windows.iter().map(|w| w.len() - 1).sum();
    let meta = [
        ("format", FORMAT.to_string()),
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("saelab_version", "0.1.0".into()),
        ("model", tiny_model_dir().display().to_string()),
        ("model_config", model_config),
        ("corpus", format!("notes {SCRIPT}.jsonl")),
        ("tokens", positions.to_string()),
        ("ctx", "64".into()),
        ("seed", "0".into()),
        ("top_k", spec.top_k.to_string()),
        ("quantile_bins", spec.bins.to_string()),
        ("per_bin", spec.per_bin.to_string()),
        ("context_before", "6".into()),
        ("context_after", "3".into()),
        ("include_special", "false".into()),
        ("ablation_method", saelab_interp::ablation::METHOD.into()),
    ];
    for (k, v) in meta {
        conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", (k, v))
            .unwrap();
    }
    for id in 0..cfg.vocab_size as u32 {
        let text = match id {
            SCRIPT_TOKEN => SCRIPT.to_string(),
            IMG_TOKEN => IMG.to_string(),
            _ => model.tokenizer.decode(&[id]).unwrap(),
        };
        conn.execute(
            "INSERT INTO tokens (id, text, special) VALUES (?1, ?2, ?3)",
            (id, text, model.tokenizer.is_special(id)),
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO lens_excluded (token, reason) VALUES (0, 'special token')",
        [],
    )
    .unwrap();
    for (w, ids) in windows.iter().enumerate() {
        let blob: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        conn.execute(
            "INSERT INTO windows (id, ids) VALUES (?1, ?2)",
            (w as i64, blob),
        )
        .unwrap();
    }

    let mut saes = Vec::new();
    let mut dict_dirs = Vec::new();
    for (d, ds) in spec.dicts.iter().enumerate() {
        let hook = HookPoint::parse(ds.hook, cfg).unwrap();
        let w = SaeWeights::init_tied(cfg.d_model, ds.d_sae, 1.0, 11 + d as u64);
        let mut sae = Sae::new(w, Activation::TopK { k: ds.k }).unwrap();
        sae.metadata = Metadata {
            hook_name: Some(ds.hook.to_string()),
            ..Metadata::default()
        };
        let sae_dir = dir.join(ds.name);
        sae.save(&sae_dir).unwrap();
        let acts = activations(&model, &windows, hook, &sae);
        write_dictionary(
            &conn, d as i64, ds, &sae_dir, &windows, &acts, spec, positions,
        );
        saes.push(sae);
        dict_dirs.push(sae_dir);
    }
    write_nearest(&conn, &saes);
    conn.execute_batch("COMMIT").unwrap();
    Fixture {
        db,
        dict_dirs,
        model,
    }
}

fn activations(
    model: &LoadedModel,
    windows: &[Vec<u32>],
    hook: HookPoint,
    sae: &Sae,
) -> Activations {
    let rows = windows
        .iter()
        .map(|ids| {
            let out = model
                .model
                .forward(&Batch::single(ids), &mut Hooks::capture([hook]))
                .unwrap();
            let x = out
                .get(hook)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let f = sae.encode(&x).unwrap();
            (0..ids.len())
                .map(|t| {
                    let (idx, val) = f.row(t);
                    idx.iter()
                        .copied()
                        .zip(val.iter().copied())
                        .filter(|e| e.1 > 0.0)
                        .collect()
                })
                .collect()
        })
        .collect();
    Activations { rows }
}

pub fn hist_edges() -> Vec<f64> {
    (0..=HIST_BINS)
        .map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / HIST_BINS as f64))
        .collect()
}

fn f32_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// P(stay) (from 5 pairs) and mean run of a feature firing at `fires` ((window, pos, _) in
/// order), over windows of `rows[w].len()` positions.
fn persistence(
    fires: &[(usize, usize, f32)],
    rows: &[Vec<Vec<(u32, f32)>>],
) -> (Option<f64>, Option<f64>) {
    let on = |w: usize, t: usize| fires.iter().any(|e| e.0 == w && e.1 == t);
    let (mut pairs, mut stays, mut runs) = (0u64, 0u64, 0u64);
    for &(w, t, _) in fires {
        runs += u64::from(!(t > 1 && on(w, t - 1)));
        if t + 1 < rows[w].len() {
            pairs += 1;
            stays += u64::from(on(w, t + 1));
        }
    }
    let p_stay = (pairs >= 5).then(|| stays as f64 / pairs as f64);
    let mean_run = (runs > 0).then(|| fires.len() as f64 / runs as f64);
    (p_stay, mean_run)
}

#[allow(clippy::too_many_arguments)]
fn write_dictionary(
    conn: &Connection,
    dict: i64,
    ds: &DictSpec,
    sae_dir: &Path,
    windows: &[Vec<u32>],
    acts: &Activations,
    spec: &Spec,
    positions: usize,
) {
    // Firing (window, pos, value) per feature; position 0 (the start token) is left out.
    let mut firing: Vec<Vec<(usize, usize, f32)>> = vec![Vec::new(); ds.d_sae];
    for (w, rows) in acts.rows.iter().enumerate() {
        for (t, row) in rows.iter().enumerate().skip(1) {
            for &(f, v) in row {
                firing[f as usize].push((w, t, v));
            }
        }
    }
    let total: usize = firing.iter().map(Vec::len).sum();
    let edges = hist_edges();
    conn.execute(
        "INSERT INTO dictionaries (id, name, path, hook, architecture, d_in, d_sae, positions, \
         l0, lens, hist_edges) VALUES (?1, ?2, ?3, ?4, 'topk', 32, ?5, ?6, ?7, ?8, ?9)",
        (
            dict,
            ds.name,
            sae_dir.display().to_string(),
            ds.hook,
            ds.d_sae as i64,
            positions as i64,
            total as f64 / positions as f64,
            "direct path: the decoder row through the final norm's scale and the unembedding",
            serde_json::to_string(&edges).unwrap(),
        ),
    )
    .unwrap();
    let mut example = conn
        .prepare(
            "INSERT INTO examples (dict, feature, kind, bin, rank, window, pos, token, value, \
             start, acts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .unwrap();
    for (f, fires) in firing.iter_mut().enumerate() {
        let count = fires.len();
        let max = fires.iter().map(|e| e.2).fold(0f32, f32::max);
        let mean = if count > 0 {
            fires.iter().map(|e| f64::from(e.2)).sum::<f64>() / count as f64
        } else {
            0.0
        };
        let mut hist = [0u32; HIST_BINS];
        for e in fires.iter() {
            let b = edges.iter().filter(|&&x| f64::from(e.2) >= x).count();
            hist[b.saturating_sub(1).min(HIST_BINS - 1)] += 1;
        }
        let hist_blob: Vec<u8> = hist.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (p_stay, mean_run) = persistence(fires, &acts.rows);
        conn.execute(
            "INSERT INTO features (dict, feature, count, density, mean_act, max_act, hist, \
             p_stay, mean_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            (
                dict,
                f as i64,
                count as i64,
                count as f64 / positions as f64,
                mean,
                f64::from(max),
                hist_blob,
                p_stay,
                mean_run,
            ),
        )
        .unwrap();
        let mut insert =
            |kind: &str, bin: Option<i64>, rank: usize, (w, t, v): (usize, usize, f32)| {
                let ids = &windows[w];
                let start = t.saturating_sub(6);
                let end = (t + 4).min(ids.len());
                let shown: Vec<f32> = (start..end).map(|p| acts.at(w, p, f as u32)).collect();
                example
                    .execute((
                        dict,
                        f as i64,
                        kind,
                        bin,
                        rank as i64,
                        w as i64,
                        t as i64,
                        ids[t],
                        f64::from(v),
                        start as i64,
                        f32_blob(&shown),
                    ))
                    .unwrap();
            };
        let mut by_value = fires.clone();
        by_value.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        for (rank, &e) in by_value.iter().take(spec.top_k).enumerate() {
            insert("top", None, rank, e);
        }
        if count > 0 {
            for b in 0..spec.bins {
                let lo = f64::from(max) * b as f64 / spec.bins as f64;
                let hi = f64::from(max) * (b + 1) as f64 / spec.bins as f64;
                let last = b + 1 == spec.bins;
                let inside: Vec<(usize, usize, f32)> = fires
                    .iter()
                    .copied()
                    .filter(|e| {
                        let v = f64::from(e.2);
                        v >= lo && (v < hi || (last && v <= hi))
                    })
                    .collect();
                conn.execute(
                    "INSERT INTO quantile_bins (dict, feature, bin, lo, hi, count) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    (dict, f as i64, b as i64, lo, hi, inside.len() as i64),
                )
                .unwrap();
                for (rank, &e) in inside.iter().take(spec.per_bin).enumerate() {
                    insert("quantile", Some(b as i64), rank, e);
                }
            }
        }
        for side in [1i64, -1] {
            for rank in 0..5u32 {
                let token = if dict == 0 && f == 0 && side == 1 && rank == 0 {
                    SCRIPT_TOKEN
                } else {
                    1 + ((f as u32 * 7 + rank * 13 + (side == -1) as u32 * 101) % 290)
                };
                let value = side as f64 * (3.0 - 0.4 * f64::from(rank) + f as f64 * 0.01);
                conn.execute(
                    "INSERT INTO lens (dict, feature, side, rank, token, value) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    (dict, f as i64, side, rank, token, value),
                )
                .unwrap();
            }
        }
    }
}

fn write_nearest(conn: &Connection, saes: &[Sae]) {
    for (a, sa) in saes.iter().enumerate() {
        for (b, sb) in saes.iter().enumerate() {
            if a == b {
                continue;
            }
            let d = sa.d_in();
            for fa in 0..sa.d_sae() {
                let ra = &sa.weights.w_dec[fa * d..(fa + 1) * d];
                let mut cos: Vec<(usize, f64)> = (0..sb.d_sae())
                    .map(|fb| {
                        let rb = &sb.weights.w_dec[fb * d..(fb + 1) * d];
                        let dot: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
                        let na: f32 = ra.iter().map(|x| x * x).sum::<f32>().sqrt();
                        let nb: f32 = rb.iter().map(|x| x * x).sum::<f32>().sqrt();
                        (fb, f64::from(dot / (na * nb)))
                    })
                    .collect();
                cos.sort_by(|x, y| y.1.total_cmp(&x.1));
                for (rank, (fb, c)) in cos.iter().take(3).enumerate() {
                    conn.execute(
                        "INSERT INTO nearest (dict, feature, other, rank, other_feature, cosine) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        (a as i64, fa as i64, b as i64, rank as i64, *fb as i64, c),
                    )
                    .unwrap();
                }
            }
        }
    }
}
