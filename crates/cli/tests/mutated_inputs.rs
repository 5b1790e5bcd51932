//! Bounded mutation testing of every file reader, run in CI: sound files (the test fixtures,
//! and a cache, an eval JSON and a GGUF made here) get random corruptions (bit flips, bytes
//! overwritten with 0, 0xFF and other edge values, truncation, repeated and inserted runs,
//! numbers in text replaced by huge, negative or non-finite ones), and each reader must
//! return a value or an error: a panic fails the test, naming the reader, file and seed, and
//! an abort (an allocation sized from a corrupt field) kills it. `SAELAB_MUTATIONS` sets the
//! number of corruptions per reader (default 150) and `SAELAB_MUTATION_SEED` shifts every
//! seed; RELIABILITY.md records longer runs.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::{saelab, stderr, tiny_cache, tiny_llama, train_tiny};
use saelab_model::{Batch, Hooks};
use saelab_sae::Dictionary;

fn mutations() -> u64 {
    std::env::var("SAELAB_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

/// SplitMix64: a seeded stream, so that any failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const EDGE_BYTES: [u8; 6] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];
const EDGE_NUMBERS: [&str; 7] = [
    "0",
    "-1",
    "4294967297",
    "18446744073709551615",
    "1e400",
    "-1e400",
    "99999999999999999999999",
];

/// One random corruption of `bytes`.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let len = out.len().max(1);
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let value = EDGE_BYTES[rng.below(EDGE_BYTES.len())];
            let start = rng.below(len);
            for b in out.iter_mut().skip(start).take(1 + rng.below(8)) {
                *b = value;
            }
        }
        2 => out.truncate(rng.below(len)),
        3 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(out.len());
            let chunk: Vec<u8> = out.get(start..end).unwrap_or_default().to_vec();
            let at = rng.below(len);
            out.splice(at.min(out.len())..at.min(out.len()), chunk);
        }
        4 => {
            let at = rng.below(len).min(out.len());
            let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            out.splice(at..at, junk);
        }
        _ => {
            // A run of ASCII digits becomes an edge number (sizes, counts, offsets in text).
            let digits: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].is_ascii_digit())
                .collect();
            if let Some(&start) = digits.get(rng.below(digits.len())) {
                let end = (start..out.len())
                    .find(|&i| !out[i].is_ascii_digit())
                    .unwrap_or(out.len());
                let number = EDGE_NUMBERS[rng.below(EDGE_NUMBERS.len())];
                out.splice(start..end, number.bytes());
            }
        }
    }
    out
}

/// A copy of folder `src` in a temp dir, with the names of its files.
fn copy(src: &Path) -> (tempfile::TempDir, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            std::fs::copy(entry.path(), tmp.path().join(&name)).unwrap();
            names.push(name);
        }
    }
    names.sort();
    (tmp, names)
}

/// `mutations()` corruptions of the files `names` in `dir` (one file at a time, restored
/// after), each given to `read`. Returns the panics, with what replays them.
fn corrupt_each(
    reader: &str,
    dir: &Path,
    names: &[String],
    seed: u64,
    read: &dyn Fn(&Path),
) -> Vec<String> {
    let originals: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect();
    let mut panics = Vec::new();
    let shift: u64 = std::env::var("SAELAB_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let seed = seed.wrapping_add(shift.wrapping_mul(1000));
    let mut rng = Rng(seed);
    for i in 0..mutations() {
        let which = rng.below(names.len());
        let path = dir.join(&names[which]);
        std::fs::write(&path, mutate(&originals[which], &mut rng)).unwrap();
        if catch_unwind(AssertUnwindSafe(|| read(dir))).is_err() {
            panics.push(format!(
                "{reader}: {} (seed {seed}, mutation {i})",
                names[which]
            ));
        }
        std::fs::write(&path, &originals[which]).unwrap();
    }
    panics
}

fn assert_no_panics(panics: Vec<String>) {
    assert!(
        panics.is_empty(),
        "readers panicked on corrupt input:\n{}",
        panics.join("\n")
    );
}

fn sae_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sae/tests/fixtures/peers")
}

/// Every dictionary layout (SAELens, dictionary_learning `ae.pt`, sparsify, transcoders,
/// SAELens's temporal SAEs): load, then encode and decode a few rows.
#[test]
fn dictionary_readers_survive_corrupt_files() {
    let mut panics = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(sae_fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("bad"))
        .collect();
    folders.sort();
    for (k, folder) in folders.iter().enumerate() {
        let (tmp, mut names) = copy(folder);
        names.retain(|n| n != "expected.json");
        let reader = format!("dictionary {}", folder.display());
        panics.extend(corrupt_each(
            &reader,
            tmp.path(),
            &names,
            k as u64,
            &|dir| {
                if let Ok(sae) = saelab_sae::format::load_any(dir) {
                    let x = vec![0.25f32; 3 * sae.d_in()];
                    let _ = sae.forward(&x);
                }
                if let Ok(t) = saelab_sae::format::saelens_temporal::TemporalSae::load(dir) {
                    let _ = t.forward(&vec![0.25f32; 3 * t.d_in]);
                }
            },
        ));
    }
    assert_no_panics(panics);
}

fn model_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny")
}

/// HF model folders (config.json, safetensors, tokenizer.json) of the three families: load,
/// tokenize and run a short forward.
#[test]
fn model_folder_readers_survive_corrupt_files() {
    let mut panics = Vec::new();
    for (k, family) in ["llama", "gpt2", "gpt_neox"].iter().enumerate() {
        let (tmp, names) = copy(&model_fixtures().join(family));
        panics.extend(corrupt_each(
            &format!("model {family}"),
            tmp.path(),
            &names,
            100 + k as u64,
            &|dir| {
                if let Ok(m) = saelab_model::load(Some(dir.to_str().unwrap())) {
                    let ids = m.tokenizer.encode("a short text").unwrap_or_default();
                    if !ids.is_empty() {
                        let _ = m.model.forward(&Batch::single(&ids), &mut Hooks::logits());
                    }
                }
            },
        ));
    }
    assert_no_panics(panics);
}

/// A GGUF v3 file: metadata (architecture, sizes) and two F32 tensors, aligned to 32.
fn small_gguf() -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&2u64.to_le_bytes());
    out.extend_from_slice(&2u64.to_le_bytes());
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    string(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    string(&mut out, "llama");
    string(&mut out, "llama.block_count");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, name) in ["token_embd.weight", "output_norm.weight"]
        .iter()
        .enumerate()
    {
        string(&mut out, name);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
        out.extend_from_slice(&4u64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(i as u64 * 128).to_le_bytes());
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for v in 0..64 {
        out.extend_from_slice(&(v as f32 * 0.5).to_le_bytes());
    }
    out
}

#[test]
fn the_gguf_reader_survives_corrupt_files() {
    use saelab_model::weights::WeightSource;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.gguf"), small_gguf()).unwrap();
    let names = vec!["m.gguf".to_string()];
    assert_no_panics(corrupt_each("gguf", tmp.path(), &names, 200, &|dir| {
        if let Ok(mut g) = saelab_model::gguf::GgufFile::open(&dir.join("m.gguf")) {
            for name in ["token_embd.weight", "output_norm.weight"] {
                let _ = g.tensor(name);
            }
            let _ = g.string("general.architecture");
        }
        // The full loader too: metadata read into a model config.
        let _ = saelab_model::load(Some(dir.join("m.gguf").to_str().unwrap()));
    }));
}

/// JSONL, Parquet and text corpora: every document read.
#[test]
fn corpus_readers_survive_corrupt_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..20)
        .map(|i| format!("{{\"text\": \"document {i} with some words\", \"n\": {i}}}"))
        .collect();
    std::fs::write(tmp.path().join("c.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(tmp.path().join("t.txt"), "one doc\n\nanother doc\n").unwrap();
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../data/tests/fixtures/pyarrow_snappy.parquet"),
        tmp.path().join("p.parquet"),
    )
    .unwrap();
    let mut panics = Vec::new();
    for (k, name) in ["c.jsonl", "t.txt", "p.parquet"].iter().enumerate() {
        let file = vec![name.to_string()];
        panics.extend(corrupt_each(
            "corpus",
            tmp.path(),
            &file,
            300 + k as u64,
            &|dir| {
                let path = dir.join(name);
                if let Ok(corpus) = saelab_data::Corpus::open(
                    path.to_str().unwrap(),
                    &saelab_data::CorpusOptions::default(),
                ) {
                    for doc in corpus.documents().take(1000) {
                        if doc.is_err() {
                            break;
                        }
                    }
                }
            },
        ));
    }
    assert_no_panics(panics);
}

/// A cache harvested from the tiny model: its manifest and shards, read back without the
/// sha256 check (so that corrupt bytes reach the decoder rather than the checksum).
#[test]
fn the_cache_reader_survives_corrupt_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let o = saelab()
        .args(["harvest", "--model", &tiny_llama(), "--corpus", "wiki"])
        .args([
            "--hook",
            "blocks.1.hook_resid_post",
            "--tokens",
            "512",
            "--ctx",
            "32",
        ])
        .args(["--dtype", "f16", "--out"])
        .arg(&cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (copy_dir, names) = copy(&cache);
    assert_no_panics(corrupt_each(
        "cache",
        copy_dir.path(),
        &names,
        400,
        &|dir| {
            if let Ok(c) = saelab_data::cache::ActivationCache::open(dir) {
                let options = saelab_data::cache::ReadOptions {
                    verify: false,
                    ..Default::default()
                };
                for w in c.windows(options) {
                    if w.is_err() {
                        break;
                    }
                }
            }
        },
    ));
}

/// An eval JSON rendered into the report page.
#[test]
fn the_report_survives_corrupt_eval_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = tmp.path().join("dict");
    let w = saelab_sae::SaeWeights::init_tied(32, 64, 1.0, 1);
    let mut sae = saelab_sae::Sae::new(w, saelab_sae::Activation::TopK { k: 4 }).unwrap();
    sae.metadata.hook_name = Some("blocks.1.hook_resid_post".into());
    sae.save(&dict).unwrap();
    let json = tmp.path().join("eval").join("eval.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let o = saelab()
        .args(["eval", "--model", &tiny_llama(), "--corpus", "wiki"])
        .args(["--tokens", "128", "--ctx", "32", "--sae"])
        .arg(&dict)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let names = vec!["eval.json".to_string()];
    let dir = json.parent().unwrap();
    assert_no_panics(corrupt_each("report", dir, &names, 500, &|dir| {
        if let Ok(text) = std::fs::read_to_string(dir.join("eval.json")) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                let _ = saelab_report::render_eval(&value);
            }
        }
    }));
}

/// A TOML run file with a dictionary of every kind and most keys: parsed, checked, and each
/// dictionary's training config built and validated (the allocation itself is not made:
/// a corrupt width within saelab's bounds may still be more than this machine holds).
#[test]
fn run_configs_survive_corrupt_files() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
cache = "no-such-cache"
hooks = ["blocks.1.hook_resid_post", "blocks.1.hook_mlp_out"]
tokens = 100000
batch = 256
buffer_mib = 64
checkpoint_every = 50
keep_checkpoints = 2
log_every = 5
holdout_windows = 16
pca = 8

[[sae]]
kind = "topk"
width = 512
k = 16
lr = 0.002
aux = 0.25
optimizer = "signum"
momentum = 0.9

[[sae]]
kind = "matryoshka"
width = 512
k = 8
widths = [32, 128]
b_dec = "mean"

[[sae]]
kind = "jumprelu"
width = 256
target_l0 = 12.5
bandwidth = 0.05
threshold = 0.02
warmup = 10
decay = 20

[[sae]]
kind = "relu"
width = 256
l1 = 2.5
ghost_grads = true
resample_every = 25
dead_after_tokens = 5000
encoder_scale = 0.5

[[sae]]
kind = "gated"
width = 256
l1 = 1.0
normalize = false

[[sae]]
kind = "batchtopk"
width = 256
k = 4
hook = "blocks.1.hook_resid_post"
out_hook = "blocks.1.hook_mlp_out"
skip = true
name = "tc"
"#;
    std::fs::write(tmp.path().join("run.toml"), text).unwrap();
    let names = vec!["run.toml".to_string()];
    assert_no_panics(corrupt_each(
        "run config",
        tmp.path(),
        &names,
        500,
        &|dir| {
            let Ok(run) = saelab_train::RunConfig::from_toml(&dir.join("run.toml")) else {
                return;
            };
            let _ = run.check();
            for spec in &run.sae {
                let _ = spec.train_config(64, 400, 0);
                let _ = spec.label(0);
            }
        },
    ));
}

/// Trainer checkpoints (the scalars' JSON and the tensors) of several trainers, restored
/// and stepped once.
#[test]
fn checkpoints_survive_corrupt_files() {
    use saelab_sae::{Optimizer, TrainArchitecture, TrainConfig, Trainer};
    let batch: Vec<f32> = (0..64 * 16)
        .map(|i| ((i * 7919) % 113) as f32 / 50.0 - 1.0)
        .collect();
    let configs = {
        let mut topk = TrainConfig::new(TrainArchitecture::TopK { k: 4 }, 16, 64, 20);
        topk.use_optimizer(Optimizer::Signum);
        let mut jumprelu = TrainConfig::new(TrainArchitecture::JumpRelu, 16, 64, 20);
        jumprelu.target_l0 = Some(6.0);
        let gated = TrainConfig::new(TrainArchitecture::Gated, 16, 64, 20);
        [topk, jumprelu, gated]
    };
    let mut panics = Vec::new();
    for (k, cfg) in configs.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let mut trainer = Trainer::new(cfg.clone()).unwrap();
        for _ in 0..3 {
            trainer.step(&batch).unwrap();
        }
        trainer.save_checkpoint(tmp.path()).unwrap();
        let (_, names) = copy(tmp.path());
        panics.extend(corrupt_each(
            &format!("checkpoint {:?}", cfg.architecture),
            tmp.path(),
            &names,
            600 + k as u64,
            &|dir| {
                if let Ok(mut t) = Trainer::load_checkpoint(cfg.clone(), dir) {
                    let _ = t.step(&batch);
                    let _ = t.dictionary();
                }
            },
        ));
    }
    assert_no_panics(panics);
}

/// A finished training run's own files (`config.json`, `metrics.jsonl`, `summary.json`):
/// each corrupt copy of the run folder is rendered into its report and resumed.
#[test]
fn run_folders_survive_corrupt_files() {
    use std::sync::atomic::AtomicBool;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = tmp.path().join("run");
    tiny_cache(&cache, &["blocks.1.hook_resid_post"], 1024);
    let flags = ["--checkpoint-every", "4", "--holdout-windows", "4"];
    let o = train_tiny(&cache, &run, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = ["config.json", "metrics.jsonl", "summary.json"]
        .map(String::from)
        .to_vec();
    struct Silent;
    impl saelab_train::Observer for Silent {
        fn warn(&mut self, _: &str) {}
        fn note(&mut self, _: &str) {}
    }
    let (rendered, resumed) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    assert_no_panics(corrupt_each("run folder", &run, &names, 700, &|dir| {
        if saelab_report::render_run(dir).is_ok() {
            rendered.set(rendered.get() + 1);
        }
        // Resuming writes into the folder: it gets a copy, so each mutation starts alike.
        let scratch = tempfile::tempdir().unwrap();
        copy_tree(dir, scratch.path());
        let interrupt = AtomicBool::new(false);
        let outcome = saelab_train::train(
            scratch.path(),
            saelab_train::Start::Resume,
            &mut Silent,
            &interrupt,
        );
        if outcome.is_ok() {
            resumed.set(resumed.get() + 1);
        }
    }));
    // Most corruptions (of the log and the summary) leave a run that renders and resumes:
    // the pass reaches the work, not only the parsers' first check.
    eprintln!(
        "run folders: {} of {} rendered, {} resumed",
        rendered.get(),
        mutations(),
        resumed.get()
    );
    assert!(rendered.get() > 0 && resumed.get() > 0);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Panics on the browser's own threads (its handlers run on a runtime whose threads carry
/// this name; a panic there becomes a 500 page, not a panic of the test's thread).
const SERVER_THREADS: &str = "mutation-server";
static SERVER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_server_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SERVER_THREADS) {
                SERVER_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// A feature database of two dictionaries (TopK and ReLU, with ablations) on the tiny model.
fn small_feature_database(dir: &Path) -> PathBuf {
    let db = dir.join("db").join("features.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let args = common::TinyFeatures::new(dir, 300, 1).args(&db);
    let o = saelab().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    db
}

/// Every page of the browser over the database `db`: its checks at start, the index, both
/// dictionaries, features, search, an ablation and the JSON API. Fails when a page gets
/// no answer or a thread of the server panicked. Returns the pages' statuses (none when the
/// server refused the database at start).
fn browse(runtime: &tokio::runtime::Runtime, db: &Path, ablation: &str) -> Vec<u16> {
    let mut options = saelab_serve::Options::new(db);
    options.port = 0;
    options.model = Some(tiny_llama());
    let Ok(server) = saelab_serve::Server::bind(&options) else {
        return Vec::new();
    };
    let mut statuses = Vec::new();
    let addr = server.local_addr().unwrap();
    let before = SERVER_PANICS.load(std::sync::atomic::Ordering::SeqCst);
    let task = runtime.spawn(server.run_async());
    for target in [
        "/",
        "/d/a",
        "/d/b?sort=max",
        "/d/a/f/0",
        "/d/a/f/7",
        "/d/b/f/3",
        "/d/a/search?token=river",
        ablation,
        "/api/dictionaries",
        "/api/d/b/f/1",
    ] {
        match saelab_serve::client::get(addr, target) {
            Ok(page) => statuses.push(page.status),
            Err(e) => {
                task.abort();
                panic!("{target}: no answer ({e})");
            }
        }
    }
    task.abort();
    let after = SERVER_PANICS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, after, "a thread of the server panicked");
    statuses
}

/// Each table with its columns and the columns that pick one row (its primary key, or
/// `rowid`).
fn table_keys(conn: &rusqlite::Connection) -> Vec<(String, Vec<String>, String)> {
    let strings = |sql: &str| -> Vec<(String, i64)> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)));
        rows.unwrap().map(|r| r.unwrap()).collect()
    };
    let tables = strings("SELECT name, 0 FROM sqlite_master WHERE type = 'table' ORDER BY name");
    tables
        .into_iter()
        .map(|(t, _)| {
            let columns = strings(&format!("SELECT name, pk FROM pragma_table_info('{t}')"));
            let key: Vec<String> = columns
                .iter()
                .filter(|(_, pk)| *pk > 0)
                .map(|(c, _)| format!("\"{c}\""))
                .collect();
            let key = match key.is_empty() {
                true => "rowid".to_string(),
                false => key.join(", "),
            };
            (t, columns.into_iter().map(|(c, _)| c).collect(), key)
        })
        .collect()
}

/// The page of an ablation stored in the database.
fn stored_ablation(conn: &rusqlite::Connection) -> String {
    conn.query_row(
        "SELECT d.name, e.feature, e.id FROM ablations a JOIN examples e ON e.id = a.example \
         JOIN dictionaries d ON d.id = e.dict LIMIT 1",
        [],
        |r| {
            let (name, feature, id): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(format!("/d/{name}/f/{feature}/ablation/{id}"))
        },
    )
    .unwrap()
}

/// Hostile values for one cell of the database: wrong types, odd-length and empty blobs,
/// negative and huge numbers.
fn hostile_value(rng: &mut Rng) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match rng.below(9) {
        0 => Value::Null,
        1 => Value::Integer(-1),
        2 => Value::Integer(i64::MAX),
        3 => Value::Integer(1 << 40),
        4 => Value::Real(f64::NAN),
        5 => Value::Real(-1e300),
        6 => Value::Text("<b>not a number</b>".into()),
        7 => Value::Blob(vec![1, 2, 3]),
        _ => Value::Blob(Vec::new()),
    }
}

/// The feature browser on corrupt databases: bytes of the file corrupted (most are caught by
/// SQLite's quick check at start), and single cells of a sound file set to hostile values
/// (which reach the page code).
#[test]
fn the_feature_browser_survives_corrupt_databases() {
    count_server_panics();
    let tmp = tempfile::tempdir().unwrap();
    let db = small_feature_database(tmp.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let (tables, ablation) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        (table_keys(&conn), stored_ablation(&conn))
    };
    // The premise: the sound database serves every page.
    assert_eq!(browse(&runtime, &db, &ablation), vec![200; 10]);
    let dir = db.parent().unwrap();
    let names = vec!["features.db".to_string()];
    let mut panics = corrupt_each("feature database (bytes)", dir, &names, 700, &|dir| {
        browse(&runtime, &dir.join("features.db"), &ablation);
    });

    let sound = std::fs::read(&db).unwrap();
    let mut rng = Rng(701);
    let (mut changed_cells, mut error_pages) = (0, 0);
    for i in 0..mutations() {
        std::fs::write(&db, &sound).unwrap();
        let (table, columns, key) = &tables[rng.below(tables.len())];
        let column = &columns[rng.below(columns.len())];
        let value = hostile_value(&mut rng);
        let offset = rng.below(64);
        let changed = {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let sql = format!(
                "UPDATE \"{table}\" SET \"{column}\" = ?1 WHERE ({key}) IN \
                 (SELECT {key} FROM \"{table}\" LIMIT 1 OFFSET ?2)"
            );
            conn.execute(&sql, rusqlite::params![value, offset as i64])
                .unwrap_or(0)
        };
        if changed == 0 {
            continue;
        }
        changed_cells += 1;
        match catch_unwind(AssertUnwindSafe(|| browse(&runtime, &db, &ablation))) {
            Ok(statuses) => error_pages += statuses.iter().filter(|&&s| s != 200).count(),
            Err(_) => panics.push(format!(
                "feature database (cells): {table}.{column} = {value:?} at row {offset} \
                 (seed 701, mutation {i})"
            )),
        }
    }
    eprintln!("{changed_cells} cells changed, {error_pages} error pages");
    assert_no_panics(panics);
}
