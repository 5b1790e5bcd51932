//! The activation pipeline on the tiny llama fixture: live and cached activations give the
//! same batches, harvests resume, statistics match a direct computation, and damaged or
//! mismatched caches are clear errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use saelab_data::activations::{
    live_windows, ActivationBatch, ActivationBuffer, BatchShape, BufferConfig, HookLayout,
    LiveSpec, NormStats,
};
use saelab_data::cache::{harvest, ActivationCache, CacheDtype, Harvest, HarvestSpec, ReadOptions};
use saelab_data::{Document, Documents, Packing, WindowConfig};
use saelab_model::{HookPoint, LoadedModel};

fn tiny_llama() -> Arc<LoadedModel> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny/llama");
    Arc::new(saelab_model::load::load_hf_dir(&dir, "tiny-llama").unwrap())
}

/// A few hundred words of varied text as documents.
fn documents() -> Documents {
    let texts: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "Document {i} talks about item {} and the number {}. It goes on for a while, \
                 repeating itself {} times with small changes: alpha beta gamma {i}.",
                i * 7 % 13,
                i * i,
                i % 5
            )
        })
        .collect();
    Box::new(texts.into_iter().map(|t| Ok(Document::new(t))))
}

const HOOKS: [&str; 2] = ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_post"];

fn spec(model: &LoadedModel, dtype: CacheDtype) -> HarvestSpec {
    let cfg = &model.model.cfg;
    HarvestSpec {
        model: model.name.clone(),
        corpus: "test".into(),
        hooks: HOOKS
            .iter()
            .map(|h| HookLayout {
                name: h.to_string(),
                d: HookPoint::parse(h, cfg).unwrap().width(cfg),
            })
            .collect(),
        window: WindowConfig::for_tokenizer(&model.tokenizer, 16, Packing::Packed),
        dtype,
        windows_per_shard: 8,
        batch_windows: 4,
        max_windows: Some(30),
        shuffle_seed: None,
    }
}

fn run_harvest(
    model: &Arc<LoadedModel>,
    spec: HarvestSpec,
    dir: &Path,
) -> saelab_data::Result<saelab_data::cache::Manifest> {
    let job = Harvest::new(model, spec, dir)?;
    harvest(model.clone(), documents(), &job, &mut |_| true)
}

fn live_spec(model: &LoadedModel, spec: &HarvestSpec) -> LiveSpec {
    LiveSpec {
        points: HOOKS
            .iter()
            .map(|h| HookPoint::parse(h, &model.model.cfg).unwrap())
            .collect(),
        window: spec.window.clone(),
        batch_windows: spec.batch_windows,
        max_windows: spec.max_windows,
        skip_windows: 0,
    }
}

fn batches(buffer: ActivationBuffer) -> Vec<ActivationBatch> {
    buffer.map(Result::unwrap).collect()
}

#[test]
fn cached_and_live_activations_give_the_same_batches() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&model, CacheDtype::F32);
    let manifest = run_harvest(&model, spec.clone(), dir.path()).unwrap();
    assert!(manifest.complete);
    assert_eq!(manifest.windows(), 30);
    assert_eq!(manifest.shards.len(), 4, "8 + 8 + 8 + 6 windows");
    let cache = ActivationCache::open(dir.path()).unwrap();
    for shape in [BatchShape::Tokens(24), BatchShape::Windows(3)] {
        let config = BufferConfig {
            bytes: 40_000,
            shape,
            seed: 7,
            include_special: false,
        };
        let live = live_windows(model.clone(), documents(), live_spec(&model, &spec)).unwrap();
        let from_live = batches(ActivationBuffer::new(live, config.clone()).unwrap());
        let from_cache = batches(
            ActivationBuffer::new(cache.windows(ReadOptions::default()), config.clone()).unwrap(),
        );
        assert!(from_live.len() > 5);
        assert_eq!(from_live, from_cache, "{shape:?}");
        let other_seed = BufferConfig { seed: 8, ..config };
        let reshuffled = batches(
            ActivationBuffer::new(cache.windows(ReadOptions::default()), other_seed).unwrap(),
        );
        assert_ne!(
            from_cache[0].origin, reshuffled[0].origin,
            "the seed matters"
        );
    }
}

#[test]
fn token_batches_hold_every_training_token_once() {
    let model = tiny_llama();
    let spec = spec(&model, CacheDtype::F32);
    let live = live_windows(model.clone(), documents(), live_spec(&model, &spec)).unwrap();
    let config = BufferConfig {
        bytes: 30_000,
        shape: BatchShape::Tokens(32),
        seed: 1,
        include_special: false,
    };
    let buffer = ActivationBuffer::new(live, config).unwrap();
    let d0 = buffer.layout().hooks[0].d;
    let all = batches(buffer);
    let mut origins: Vec<(u64, u32)> = all.iter().flat_map(|b| b.origin.clone()).collect();
    let n = origins.len();
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), n, "no token is drawn twice");
    // 30 windows of 16 with the start token left out.
    assert_eq!(n, 30 * 15);
    assert!(all.iter().all(|b| b.special.iter().all(|s| !s)));
    assert!(all.iter().all(|b| b.hooks[0].len() == b.rows * d0));
}

#[test]
fn statistics_match_a_direct_computation_and_survive_f16() {
    let model = tiny_llama();
    let spec32 = spec(&model, CacheDtype::F32);
    let live = live_windows(model.clone(), documents(), live_spec(&model, &spec32)).unwrap();
    let mut direct = NormStats::new(spec32.hooks[0].d);
    for w in live {
        let w = w.unwrap();
        let d = spec32.hooks[0].d;
        for t in w.counted() {
            direct.add(&w.hooks[0][t * d..(t + 1) * d]);
        }
    }
    let direct = direct.finish().unwrap();
    for dtype in [CacheDtype::F32, CacheDtype::F16, CacheDtype::Bf16] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = run_harvest(&model, spec(&model, dtype), dir.path()).unwrap();
        // Statistics come from the f32 activations, whatever the dtype on disk.
        assert_eq!(manifest.stats[HOOKS[0]], direct, "{dtype:?}");
        assert_eq!(manifest.tokens(), direct.tokens);
        // Activation bytes per window position, plus ids (4), mask (1) and special (1).
        let d_total: usize = spec32.hooks.iter().map(|h| h.d).sum();
        let data = 30 * 16 * (d_total * dtype.bytes() + 6);
        assert!(manifest.bytes() as usize > data && (manifest.bytes() as usize) < data + 4 * 1024);
    }
}

#[test]
fn a_complete_harvest_is_not_redone_and_other_settings_are_refused() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let first = run_harvest(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    let again = run_harvest(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    assert_eq!(first, again);
    let err = run_harvest(&model, spec(&model, CacheDtype::Bf16), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("dtype"),
        "{err}"
    );
    // Another window length changes the window count too: the length is named, first
    // (the count used to be the only field named).
    let mut longer = spec(&model, CacheDtype::F16);
    longer.window.len = 32;
    longer.max_windows = longer.max_windows.map(|w| w / 2);
    let err = run_harvest(&model, longer, dir.path())
        .unwrap_err()
        .to_string();
    let (len, count) = (err.find("window.len"), err.find("max_windows"));
    assert!(len.is_some() && count.is_some() && len < count, "{err}");
}

#[test]
fn a_folder_holding_other_files_is_refused() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = run_harvest(&model, spec(&model, CacheDtype::F16), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notes.txt") && err.contains("manifest.json"),
        "{err}"
    );
}

#[test]
fn an_empty_corpus_is_an_error_and_leaves_no_shard() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    let job = Harvest::new(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    let blank: Documents = Box::new(std::iter::empty());
    let err = harvest(model.clone(), blank, &job, &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no token windows"), "{err}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| !f.ends_with(".safetensors")),
        "{files:?}"
    );
}

fn damaged_cache(damage: impl Fn(&Path)) -> String {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    run_harvest(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    damage(&dir.path().join("shard_00001.safetensors"));
    let cache = ActivationCache::open(dir.path()).unwrap();
    let mut read = cache.windows(ReadOptions::default());
    // The first shard is fine; the error comes with the second.
    let good: Vec<_> = read.by_ref().take(8).collect();
    assert!(good.iter().all(Result::is_ok));
    read.find_map(Result::err).expect("an error").to_string()
}

#[test]
fn a_shard_whose_sha256_fails_is_named() {
    let err = damaged_cache(|path| {
        let mut bytes = std::fs::read(path).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    });
    assert!(
        err.contains("shard_00001.safetensors") && err.contains("sha256 mismatch"),
        "{err}"
    );
}

#[test]
fn a_truncated_shard_is_named() {
    let err = damaged_cache(|path| {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        err.contains("shard_00001.safetensors") && err.contains("damaged"),
        "{err}"
    );
}

#[test]
fn a_corrupt_shard_read_without_verification_is_still_an_error() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    run_harvest(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    let path = dir.path().join("shard_00000.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] = 0xff; // the header length: now far past the end of the file
    std::fs::write(&path, bytes).unwrap();
    let cache = ActivationCache::open(dir.path()).unwrap();
    let options = ReadOptions {
        verify: false,
        ..ReadOptions::default()
    };
    let err = cache
        .windows(options)
        .find_map(Result::err)
        .expect("an error")
        .to_string();
    assert!(
        err.contains("shard_00000.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

#[test]
fn a_folder_without_manifest_is_not_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let err = ActivationCache::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("no manifest.json") && err.contains("saelab harvest"),
        "{err}"
    );
}

#[test]
fn a_window_range_of_the_cache_reads_exactly_those_windows() {
    let model = tiny_llama();
    let dir = tempfile::tempdir().unwrap();
    run_harvest(&model, spec(&model, CacheDtype::F16), dir.path()).unwrap();
    let cache = ActivationCache::open(dir.path()).unwrap();
    let all: Vec<_> = cache
        .windows(ReadOptions::default())
        .map(Result::unwrap)
        .collect();
    let options = ReadOptions {
        skip_windows: 5,
        end_window: Some(20),
        ..ReadOptions::default()
    };
    let part: Vec<_> = cache.windows(options).map(Result::unwrap).collect();
    assert_eq!(part.as_slice(), &all[5..20]);
}

/// A repeated hook used to panic inside safetensors after the manifest was written (harvest)
/// and in the buffer (training from a cache). Harvest, live activations and cache reading
/// refuse it, naming the hook, before any work.
#[test]
fn a_repeated_hook_is_refused_before_any_work() {
    let model = tiny_llama();
    let cfg = &model.model.cfg;
    let layout = |name: &str| HookLayout {
        name: name.to_string(),
        d: HookPoint::parse(name, cfg).unwrap().width(cfg),
    };
    let repeats: [&[&str]; 3] = [
        &[HOOKS[0], HOOKS[0]],
        &[HOOKS[0], HOOKS[1], HOOKS[0]],
        &[HOOKS[1], HOOKS[0], HOOKS[1], HOOKS[1]],
    ];
    for hooks in repeats {
        let dir = tempfile::tempdir().unwrap();
        let mut harvest_spec = spec(&model, CacheDtype::F32);
        harvest_spec.hooks = hooks.iter().map(|h| layout(h)).collect();
        let err = run_harvest(&model, harvest_spec.clone(), dir.path())
            .expect_err("a repeated hook was harvested")
            .to_string();
        assert!(err.contains("more than once"), "{hooks:?}: {err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{hooks:?}: the refused harvest wrote files"
        );

        let mut live = live_spec(&model, &harvest_spec);
        live.points = hooks
            .iter()
            .map(|h| HookPoint::parse(h, cfg).unwrap())
            .collect();
        let err = live_windows(model.clone(), documents(), live)
            .err()
            .expect("repeated live hooks were accepted")
            .to_string();
        assert!(err.contains("more than once"), "{hooks:?}: {err}");
    }

    // A manifest that names a hook twice (as the panicking harvest left) is a named error.
    let dir = tempfile::tempdir().unwrap();
    run_harvest(&model, spec(&model, CacheDtype::F32), dir.path()).unwrap();
    let path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first = manifest["spec"]["hooks"][0].clone();
    manifest["spec"]["hooks"][1] = first;
    std::fs::write(&path, manifest.to_string()).unwrap();
    let err = ActivationCache::open(dir.path())
        .err()
        .expect("a manifest with a repeated hook was opened")
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains(HOOKS[0]) && err.contains("more than once"),
        "{err}"
    );
}
