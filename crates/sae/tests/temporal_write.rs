//! Temporal SAEs written by saelab: SAELens's own folders read and written back give the same
//! cfg.json fields, the same tensors and the same forward bit for bit; folders saelab wrote
//! from random parameters (committed under `fixtures/peers/saelab_temporal_written_*`) are
//! what `TemporalSae::save` writes today, and SAELens 6.54.12 loads them with
//! `SAE.load_from_disk` and runs them to the same codes and reconstruction
//! (`reference/temporal_saelens_roundtrip.py` wrote its outputs in `expected.safetensors`).
//!
//! To rewrite the committed folders after a deliberate change of the layout:
//! `SAELAB_WRITE_TEMPORAL_FIXTURES=1 cargo test -p saelab-sae --test temporal_write`, then
//! rerun the Python script.

mod common;

use std::path::{Path, PathBuf};

use common::max_rel;

use saelab_sae::format::saelens_temporal::{temporal_metadata, TemporalAttention, TemporalSae};
use saelab_sae::format::tensors::TensorFile;
use saelab_sae::rng::SplitMix64;
use serde_json::Value;

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers")
}

fn cfg(dir: &Path) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(dir.join("cfg.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        other => panic!("{}: cfg.json is {other}", dir.display()),
    }
}

/// Tensor names and bytes of a safetensors file, sorted by name.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn saelens_folders_are_written_back_as_saelens_wrote_them() {
    for name in ["tied_topk", "untied_topk_2layers", "tied_relu_rescaled"] {
        let theirs = peers().join(format!("saelens_temporal_{name}"));
        let sae = TemporalSae::load(&theirs).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("written");
        sae.save(&ours).unwrap();

        let (a, b) = (cfg(&theirs), cfg(&ours));
        let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        let (mut ka, mut kb) = (keys(&a), keys(&b));
        ka.sort();
        kb.sort();
        assert_eq!(ka, kb, "{name}: cfg.json fields differ");
        for (key, value) in &a {
            if key == "metadata" {
                // SAELens's metadata keys all come back; saelab may add known keys as null.
                for (mk, mv) in value.as_object().unwrap() {
                    assert_eq!(&b["metadata"][mk], mv, "{name}: metadata.{mk}");
                }
            } else {
                assert_eq!(&b[key], value, "{name}: cfg.json field {key}");
            }
        }
        assert_eq!(
            tensors(&theirs.join("sae_weights.safetensors")),
            tensors(&ours.join("sae_weights.safetensors")),
            "{name}: the tensors differ"
        );

        let again = TemporalSae::load(&ours).unwrap();
        let x = TensorFile::open(&theirs.join("expected.safetensors"))
            .unwrap()
            .read("x", &[10, 32])
            .unwrap();
        assert_eq!(
            sae.forward(&x).unwrap(),
            again.forward(&x).unwrap(),
            "{name}: the forward changed on the way through the files"
        );
    }
}

/// A temporal SAE with every parameter drawn at random (biases included, so no term is 0).
fn random_sae(seed: u64, tied: bool, n_layers: usize, k: Option<usize>, scale: f32) -> TemporalSae {
    let (d, f, h, e) = (32, 64, 2, 8);
    let mut rng = SplitMix64::new(seed);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| 0.3 * rng.normal()).collect() };
    let w_dec = draw(f * d);
    let w_enc = match tied {
        true => saelab_sae::weights::transpose(&w_dec, f, d),
        false => draw(d * f),
    };
    let b_dec = draw(d);
    let layers = (0..n_layers)
        .map(|_| TemporalAttention {
            k_w: draw(e * f),
            k_b: draw(e),
            q_w: draw(e * f),
            q_b: draw(e),
            v_w: draw(f * f),
            v_b: draw(f),
            o_w: draw(f * f),
            o_b: draw(f),
        })
        .collect();
    TemporalSae {
        d_in: d,
        d_sae: f,
        n_heads: h,
        n_embds: e,
        w_dec,
        w_enc,
        b_dec,
        tied,
        apply_b_dec_to_input: true,
        k,
        scale,
        layers,
        metadata: temporal_metadata(),
    }
}

/// The two folders saelab wrote for SAELens to read: tied ReLU with one layer and a rescale;
/// untied TopK with two layers.
fn written_cases() -> [(&'static str, TemporalSae); 2] {
    [
        ("tied_relu_rescaled", random_sae(7, true, 1, None, 0.25)),
        ("untied_topk_2layers", random_sae(8, false, 2, Some(6), 1.0)),
    ]
}

#[test]
fn the_committed_saelab_folders_are_what_save_writes() {
    let regenerate = std::env::var_os("SAELAB_WRITE_TEMPORAL_FIXTURES").is_some();
    for (name, sae) in written_cases() {
        let committed = peers().join(format!("saelab_temporal_written_{name}"));
        if regenerate {
            sae.save(&committed).unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        sae.save(tmp.path()).unwrap();
        for file in ["cfg.json", "sae_weights.safetensors"] {
            let now = std::fs::read(tmp.path().join(file)).unwrap();
            let then = std::fs::read(committed.join(file)).unwrap();
            assert!(
                now == then,
                "{name}/{file} is not what TemporalSae::save writes now (see this file's header)"
            );
        }
        // Round trip: the folder reads back to the same SAE, so the same forward bit for bit.
        let back = TemporalSae::load(tmp.path()).unwrap();
        let x: Vec<f32> = {
            let mut r = SplitMix64::new(99);
            (0..12 * 32).map(|_| 3.0 * r.normal()).collect()
        };
        let (a, b) = (sae.forward(&x).unwrap(), back.forward(&x).unwrap());
        assert!(a.z_pred.iter().any(|v| *v != 0.0), "{name}: no prediction");
        assert_eq!(
            a, b,
            "{name}: the forward changed on the way through the files"
        );
        assert_eq!(back.w_enc, sae.w_enc);
        assert_eq!(back.metadata, sae.metadata);
    }
}

#[test]
fn saelens_runs_what_saelab_wrote_as_saelab_does() {
    for (name, _) in written_cases() {
        let dir = peers().join(format!("saelab_temporal_written_{name}"));
        let sae = TemporalSae::load(&dir).unwrap();
        let expected = TensorFile::open(&dir.join("expected.safetensors")).unwrap();
        let x = expected.read("x", &[10, 32]).unwrap();
        let out = sae.forward(&x).unwrap();
        for (what, ours, width) in [
            ("z_novel", &out.z_novel, 64),
            ("z_pred", &out.z_pred, 64),
            ("reconstruction", &out.reconstruction, 32),
        ] {
            let theirs = expected.read(what, &[10, width]).unwrap();
            let err = max_rel(ours, &theirs);
            assert!(
                err < 1e-5,
                "{name}: {what} differs from SAELens's by {err:.2e} (of its max)"
            );
        }
        let theirs = expected.read("z_novel", &[10, 64]).unwrap();
        assert!(
            out.z_novel
                .iter()
                .zip(&theirs)
                .all(|(a, b)| (*a > 0.0) == (*b > 0.0)),
            "{name}: the novel codes fire on other latents"
        );
    }
}

#[test]
fn an_sae_that_cannot_be_saved_is_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |sae: TemporalSae| sae.save(tmp.path()).unwrap_err().to_string();
    let mut sae = random_sae(1, true, 1, Some(4), 1.0);
    sae.k = Some(0);
    assert!(err(sae).contains("`k`"));
    let mut sae = random_sae(1, true, 1, Some(4), 1.0);
    sae.scale = f32::NAN;
    assert!(err(sae).contains("`scale`"));
    let mut sae = random_sae(1, true, 1, Some(4), 1.0);
    sae.w_enc[3] += 1.0;
    let e = err(sae);
    assert!(e.contains("`w_enc`") && e.contains("tied"), "{e}");
    let mut sae = random_sae(1, false, 1, Some(4), 1.0);
    sae.layers[0].v_b.pop();
    assert!(err(sae).contains("`layers.v_b`"));
    let mut sae = random_sae(1, false, 1, Some(4), 1.0);
    sae.n_embds = 5;
    assert!(err(sae).contains("`n_embds`"));
    let mut sae = random_sae(1, false, 1, Some(4), 1.0);
    sae.layers.clear();
    assert!(err(sae).contains("`layers`"));
    let mut sae = random_sae(1, false, 1, Some(4), 1.0);
    sae.b_dec[0] = f32::INFINITY;
    assert!(err(sae).contains("`b_dec`"));
    // Nothing was written by the refused saves.
    assert!(!tmp.path().join("cfg.json").exists());
}
