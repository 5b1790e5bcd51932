//! The carry dictionary's hand-derived gradients (back through each window's held codes)
//! against PyTorch autograd on the same forward written from its definition
//! (`reference/carry_gradients.py`): the loss and the gradients of W_enc, b_enc, W_dec, b_dec
//! and λ agree within 1e-4 of each tensor's largest value, for latents that mostly forget
//! and for latents that mostly hold. Also: the forward's invariants on those windows, and a
//! saved dictionary reads back equal.

mod common;

use std::path::{Path, PathBuf};

use common::max_rel;

use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::carry_train::{CarryConfig, CarryTrainer};
use saelab_sae::format::tensors::TensorFile;
use saelab_sae::weights::transpose;
use saelab_sae::SaeWeights;

const D: usize = 16;
const F: usize = 32;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/carry_gradients/{name}.safetensors"))
}

struct Case {
    trainer: CarryTrainer,
    x: Vec<f32>,
    len: usize,
    file: TensorFile,
}

fn case(name: &str) -> Case {
    let file = TensorFile::open(&fixture(name)).unwrap();
    let scalar = |n: &str| file.read(n, &[1]).unwrap()[0];
    let (k, len, floor) = (
        scalar("k") as usize,
        scalar("len") as usize,
        scalar("floor"),
    );
    let w_enc = file.read("W_enc", &[D, F]).unwrap();
    let weights = SaeWeights {
        d_in: D,
        d_sae: F,
        w_enc_t: transpose(&w_enc, D, F),
        b_enc: file.read("b_enc", &[F]).unwrap(),
        w_dec: file.read("W_dec", &[F, D]).unwrap(),
        b_dec: file.read("b_dec", &[D]).unwrap(),
    };
    let decay = file.read("decay", &[F]).unwrap();
    let mut cfg = CarryConfig::new(D, F, k);
    cfg.floor = floor;
    let x = file.read("x", &[2 * len, D]).unwrap();
    Case {
        trainer: CarryTrainer::from_weights(cfg, weights, decay).unwrap(),
        x,
        len,
        file,
    }
}

fn check(name: &str) {
    let c = case(name);
    let out = c.trainer.gradients(&c.x, c.len).unwrap();
    let expected_loss = c.file.read("loss", &[1]).unwrap()[0];
    let loss_err = ((out.loss as f32 - expected_loss) / expected_loss).abs();
    let g = &out.grads;
    let w_enc = transpose(&g.w_enc_t, F, D);
    let errs = [
        ("loss", loss_err),
        (
            "W_enc",
            max_rel(&w_enc, &c.file.read("grad_W_enc", &[D, F]).unwrap()),
        ),
        (
            "b_enc",
            max_rel(&g.b_enc, &c.file.read("grad_b_enc", &[F]).unwrap()),
        ),
        (
            "W_dec",
            max_rel(&g.w_dec, &c.file.read("grad_W_dec", &[F, D]).unwrap()),
        ),
        (
            "b_dec",
            max_rel(&g.b_dec, &c.file.read("grad_b_dec", &[D]).unwrap()),
        ),
        (
            "decay",
            max_rel(&out.decay, &c.file.read("grad_decay", &[F]).unwrap()),
        ),
    ];
    eprintln!("{name}: {errs:?}, context share {:.3}", out.context_share);
    for (what, e) in errs {
        assert!(
            e < 1e-4,
            "{name}: {what} differs from autograd by {e} (relative)"
        );
    }
    // The case exercises the context path, or it would check nothing beyond TopK.
    assert!(
        out.context_share > 0.05,
        "{name}: context share {}",
        out.context_share
    );
}

#[test]
fn gradients_equal_autograd_when_latents_mostly_forget() {
    check("mixed");
}

#[test]
fn gradients_equal_autograd_when_latents_mostly_hold() {
    check("holding");
}

#[test]
fn forward_invariants_and_files() {
    let c = case("holding");
    let cfg = c.trainer.config().clone();
    let sae = c.trainer.dictionary();
    let trace = sae.run(&c.x, c.len).unwrap();
    // k onsets at most per position, codes all positive, the first position carries nothing.
    for r in 0..trace.onsets.rows {
        assert!(trace.onsets.row(r).0.len() <= cfg.k);
        assert!(trace.codes.row(r).1.iter().all(|&v| v > 0.0));
        if r % c.len == 0 {
            assert!(trace.carried.row(r).0.is_empty());
        } else {
            // What is carried is λ·a of the previous position's codes, at least the floor.
            for (&j, &v) in trace.carried.row(r).0.iter().zip(trace.carried.row(r).1) {
                let (idx, val) = trace.codes.row(r - 1);
                let i = idx.binary_search(&j).expect("carried from a code");
                assert!((v - sae.decay[j as usize] * val[i]).abs() < 1e-6 && v >= cfg.floor);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    sae.save(dir.path()).unwrap();
    let back = CarrySae::load(dir.path()).unwrap();
    assert_eq!(back.weights, sae.weights);
    assert_eq!(
        (back.k, &back.decay, back.floor),
        (sae.k, &sae.decay, sae.floor)
    );
    let again = back.run(&c.x, c.len).unwrap();
    assert_eq!(again.codes, trace.codes);

    // Bad files name what is wrong.
    let cfg_path = dir.path().join("cfg.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, text.replace("\"carry\"", "\"topk\"")).unwrap();
    let err = CarrySae::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("architecture") && err.contains("not a carry"),
        "{err}"
    );
    std::fs::write(&cfg_path, text.replace("\"k\": 3", "\"k\": 99")).unwrap();
    let err = CarrySae::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("k") && err.contains("d_sae"), "{err}");
}

#[test]
fn bad_settings_are_refused() {
    let mut cfg = CarryConfig::new(D, F, 0);
    let err = CarryTrainer::new(cfg.clone()).err().unwrap().to_string();
    assert!(err.contains('k'), "{err}");
    cfg.k = 4;
    cfg.decay_init = 1.5;
    let err = CarryTrainer::new(cfg.clone()).err().unwrap().to_string();
    assert!(err.contains("decay_init"), "{err}");
    cfg.decay_init = 0.1;
    let mut t = CarryTrainer::new(cfg).unwrap();
    // Not whole windows.
    let err = t.step(&vec![1.0; D * 5], 4).unwrap_err().to_string();
    assert!(err.contains("whole windows"), "{err}");
}
