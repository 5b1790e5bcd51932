//! SAELens's temporal SAEs, saved and run by SAELens 6.54.12 (`reference/temporal_saelens.py`),
//! read and run by saelab: the novel and predicted codes and the reconstruction of a window
//! agree with SAELens's for tied and untied weights, one and two attention layers, TopK and
//! ReLU novel codes, and a constant input rescale.

mod common;

use std::path::{Path, PathBuf};

use common::max_rel;

use saelab_sae::format::saelens_temporal::TemporalSae;
use saelab_sae::format::tensors::TensorFile;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/peers/saelens_temporal_{name}"))
}

fn check(name: &str, layers: usize) {
    let dir = fixture(name);
    let sae = TemporalSae::load(&dir).unwrap();
    assert_eq!(sae.layers.len(), layers);
    let expected = TensorFile::open(&dir.join("expected.safetensors")).unwrap();
    let x = expected.read("x", &[10, 32]).unwrap();
    let out = sae.forward(&x).unwrap();
    for (what, ours) in [
        ("z_novel", &out.z_novel),
        ("z_pred", &out.z_pred),
        ("reconstruction", &out.reconstruction),
    ] {
        let shape = if what == "reconstruction" {
            [10, 32]
        } else {
            [10, 64]
        };
        let theirs = expected.read(what, &shape).unwrap();
        let err = max_rel(ours, &theirs);
        assert!(
            err < 1e-5,
            "{name}: {what} differs from SAELens's by {err:.2e} (of its max)"
        );
        if what == "z_novel" {
            let same_support = ours
                .iter()
                .zip(&theirs)
                .all(|(a, b)| (*a > 0.0) == (*b > 0.0));
            assert!(
                same_support,
                "{name}: the novel codes fire on other latents"
            );
        }
    }
}

#[test]
fn tied_topk_with_one_layer_matches_saelens() {
    check("tied_topk", 1);
}

#[test]
fn untied_topk_with_two_layers_matches_saelens() {
    check("untied_topk_2layers", 2);
}

#[test]
fn tied_relu_with_a_rescale_matches_saelens() {
    check("tied_relu_rescaled", 1);
}

#[test]
fn a_plain_dictionary_or_a_window_of_the_wrong_width_is_refused() {
    let plain =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers/saelens_matryoshka");
    let err = TemporalSae::load(&plain).unwrap_err().to_string();
    assert!(
        err.contains("architecture") && err.contains("not a temporal SAE"),
        "{err}"
    );
    let sae = TemporalSae::load(&fixture("tied_topk")).unwrap();
    let err = sae.forward(&[0.0; 33]).unwrap_err().to_string();
    assert!(err.contains("d_in = 32"), "{err}");
    // The per-position reader says where to go instead.
    let err = saelab_sae::format::any::load_any(&fixture("tied_topk"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TemporalSae"), "{err}");
}
