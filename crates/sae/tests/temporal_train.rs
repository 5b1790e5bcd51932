//! The temporal SAE trainer: its loss and gradients equal PyTorch autograd's on SAELens's own
//! `TemporalSAE` (`reference/temporal_gradients.py`), bad settings and batches are refused
//! naming what is wrong, what it trains saves as a SAELens folder that runs as it trained,
//! and it learns the region source's windows.

use std::path::{Path, PathBuf};

use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::format::saelens_temporal::TemporalSae;
use saelab_sae::format::tensors::TensorFile;
use saelab_sae::synthetic::{RegionConfig, RegionSource};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/temporal_gradients/{name}"))
}

/// max |ours − theirs| over max |theirs| (or, where autograd's gradient is 0 everywhere,
/// as the keys' bias is, whose shift every score of a row shares: max |ours| over `floor`).
fn max_rel(ours: &[f32], theirs: &[f32], floor: f32) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(floor);
    ours.iter()
        .zip(theirs)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs() / scale))
}

/// SAELens's shape of each parameter of the fixtures (d_in 16, d_sae 32, query width 8).
fn shape_of(param: &str) -> Vec<usize> {
    let tail = param.rsplit('.').next().unwrap_or(param);
    match param {
        "W_dec" => vec![32, 16],
        "W_enc" => vec![16, 32],
        "b_dec" => vec![16],
        p if p.contains("k_ctx") || p.contains("q_target") => match tail {
            "weight" => vec![8, 32],
            _ => vec![8],
        },
        _ => match tail {
            "weight" => vec![32, 32],
            _ => vec![32],
        },
    }
}

fn check_gradients(name: &str) -> f32 {
    let dir = fixture(name);
    let sae = TemporalSae::load(&dir).unwrap();
    let reference = TensorFile::open(&dir.join("grads.safetensors")).unwrap();
    let x = reference.read("x", &[16, 16]).unwrap();
    let loss = reference.read("loss", &[1]).unwrap()[0] as f64;
    let mut cfg = TemporalConfig::for_sae(&sae);
    cfg.novel_norm_coefficient = reference.read("gamma_reg", &[1]).unwrap()[0];
    let trainer = TemporalTrainer::from_sae(&sae, cfg).unwrap();
    let ours = trainer.gradients(&x, 8).unwrap();
    let loss_err = ((ours.loss - loss) / loss).abs();
    assert!(
        loss_err < 1e-5,
        "{name}: loss {} vs autograd's {loss}",
        ours.loss
    );

    let expected_names = 2 + usize::from(!sae.tied) + 8 * sae.layers.len();
    assert_eq!(
        ours.grads.len(),
        expected_names,
        "{name}: one gradient per parameter"
    );
    // A gradient that is 0 in exact arithmetic (the keys' bias) must be 0 to within 1e-8 of
    // the largest gradient of all: measured against a floor of 1e-4 of it.
    let overall = ours
        .grads
        .iter()
        .flat_map(|(_, g)| g.iter())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (param, g) in &ours.grads {
        let theirs = reference
            .read(&format!("grad.{param}"), &shape_of(param))
            .unwrap_or_else(|e| panic!("{name}: {param}: {e}"));
        let err = max_rel(g, &theirs, 1e-4 * overall);
        assert!(
            err < 1e-4,
            "{name}: the gradient of {param} differs from autograd's by {err:.2e} of its max"
        );
        worst = worst.max(err);
    }
    worst
}

/// Loss and every gradient within 1e-4 of autograd's (relative to each tensor's largest).
#[test]
fn tied_topk_gradients_match_autograd() {
    let worst = check_gradients("tied_topk");
    eprintln!("tied_topk: worst gradient error {worst:.2e}");
}

#[test]
fn untied_relu_two_layer_gradients_match_autograd() {
    let worst = check_gradients("untied_relu_2layers");
    eprintln!("untied_relu_2layers: worst gradient error {worst:.2e}");
}

#[test]
fn bad_settings_and_batches_are_refused_naming_the_field() {
    let err = |cfg: TemporalConfig| TemporalTrainer::new(cfg).err().unwrap().to_string();
    let base = TemporalConfig::new(16, 32, Some(4));
    assert!(base.validate().is_ok());
    let mut c = base.clone();
    c.k = Some(33);
    assert!(err(c).contains("`k`"));
    let mut c = base.clone();
    c.bottleneck_factor = 3;
    assert!(err(c).contains("`bottleneck_factor`"));
    let mut c = base.clone();
    c.n_heads = 0;
    assert!(err(c).contains("`n_heads`"));
    let mut c = base.clone();
    c.lr = f32::NAN;
    assert!(err(c).contains("`lr`"));
    let mut c = base.clone();
    c.beta2 = 1.0;
    assert!(err(c).contains("`beta2`"));
    let mut c = base.clone();
    c.novel_norm_coefficient = -1.0;
    assert!(err(c).contains("`novel_norm_coefficient`"));

    let mut t = TemporalTrainer::new(base.clone()).unwrap();
    let e = t.step(&[1.0; 16 * 5], 2).unwrap_err().to_string();
    assert!(e.contains("len = 2") && e.contains("d_in = 16"), "{e}");
    let e = t.step(&[1.0; 16 * 4], 0).unwrap_err().to_string();
    assert!(e.contains("len"), "{e}");
    let mut x = vec![1.0; 16 * 4];
    x[20] = f32::INFINITY;
    let e = t.step(&x, 4).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("row 1"), "{e}");
    let e = t.step(&[0.0; 16 * 4], 4).unwrap_err().to_string();
    assert!(e.contains("all zeros"), "{e}");

    // A config that does not describe the SAE it should continue.
    let sae = TemporalSae::load(&fixture("tied_topk")).unwrap();
    let mut c = TemporalConfig::for_sae(&sae);
    c.k = Some(5);
    let e = TemporalTrainer::from_sae(&sae, c)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`k`") && e.contains("Some(6)"), "{e}");
}

fn region_source(seed: u64) -> RegionSource {
    RegionSource::new(RegionConfig {
        d: 32,
        token_features: 64,
        per_position: 2,
        region_features: 16,
        mean_run: 16.0,
        regions_active: 2.0,
        seed,
    })
    .unwrap()
}

/// Saved and loaded back, what the trainer trained reconstructs raw windows as the trainer
/// does in its units: its loss on a batch is the loss of the saved SAE's forward, rescaled.
#[test]
fn the_trained_sae_saves_and_runs_as_it_trained() {
    let mut source = region_source(4);
    let mut cfg = TemporalConfig::new(32, 64, Some(4));
    cfg.n_heads = 2;
    cfg.bottleneck_factor = 4;
    cfg.tied = false;
    cfg.n_attn_layers = 2;
    cfg.seed = 3;
    let mut trainer = TemporalTrainer::new(cfg).unwrap();
    let batch =
        |s: &mut RegionSource| -> Vec<f32> { (0..4).flat_map(|_| s.window(16).x).collect() };
    for _ in 0..20 {
        trainer.step(&batch(&mut source), 16).unwrap();
    }
    let s = trainer.input_scale();
    assert!(s > 0.0 && s != 1.0, "scale {s}");
    let tmp = tempfile::tempdir().unwrap();
    trainer.dictionary().save(tmp.path()).unwrap();
    let sae = TemporalSae::load(tmp.path()).unwrap();
    assert_eq!(sae.scale, s);

    let x = batch(&mut source);
    let theirs = trainer.gradients(&x, 16).unwrap().loss;
    let mut sse = 0.0f64;
    for w in x.chunks(16 * 32) {
        let out = sae.forward(w).unwrap();
        sse += w
            .iter()
            .zip(&out.reconstruction)
            .map(|(a, b)| (((a - b) * s) as f64).powi(2))
            .sum::<f64>();
    }
    let ours = sse / 64.0;
    assert!(
        ((ours - theirs) / theirs).abs() < 1e-4,
        "the saved SAE's loss {ours} vs the trainer's {theirs}"
    );
}

/// A tied TopK temporal SAE (d_in 32, d_sae 128, k 4, one layer, 2 heads, bottleneck 4,
/// lr 3e-2) on the region source (2 token and ~2 region features per position, runs of 16
/// positions) in batches of 8 windows × 32 positions: the batch fvu falls from 0.815 at the
/// first step to 0.097 (mean of the last 20 of 1000 steps; 0.136 at step 500), with the
/// context path carrying about 70% of the reconstruction's energy. About 7 s in release.
#[test]
fn a_temporal_sae_learns_the_region_windows() {
    let mut source = region_source(9);
    let mut cfg = TemporalConfig::new(32, 128, Some(4));
    cfg.n_heads = 2;
    cfg.bottleneck_factor = 4;
    cfg.lr = 3e-2;
    cfg.seed = 1;
    let mut trainer = TemporalTrainer::new(cfg).unwrap();
    let steps = 1000;
    let mut history = Vec::with_capacity(steps);
    for _ in 0..steps {
        let x: Vec<f32> = (0..8).flat_map(|_| source.window(32).x).collect();
        history.push(trainer.step(&x, 32).unwrap());
    }
    let first = history[0].fvu;
    let tail = &history[steps - 20..];
    let last = tail.iter().map(|s| s.fvu).sum::<f64>() / tail.len() as f64;
    let share = tail.iter().map(|s| s.context_share).sum::<f64>() / tail.len() as f64;
    let l0 = tail.iter().map(|s| s.l0).sum::<f64>() / tail.len() as f64;
    eprintln!("fvu {first:.3} -> {last:.3}, l0 {l0:.2}, context share {share:.3}");
    assert!(first > 0.7, "the first fvu {first} is already low");
    assert!(last < 0.15, "fvu only fell from {first:.3} to {last:.3}");
    assert!(l0 <= 4.0 + 1e-9, "l0 {l0} above k");
    assert!(
        (0.3..1.0).contains(&share),
        "the context path carries {share:.3} of the reconstruction"
    );
    assert_eq!(trainer.steps(), steps as u64);
    assert_eq!(history[steps - 1].step, steps as u64 - 1);
}
