//! Contextual dictionaries run over windows causally: what a position pays for, what is on
//! and its reconstruction depend only on its window's positions up to it. The evaluation
//! and the features scan rely on this when they run whole windows at once.

use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::contextual::window::{AnyDictionary, WindowDictionary};
use saelab_sae::rng::SplitMix64;
use saelab_sae::{SaeWeights, SparseFeatures};

const D: usize = 16;
const LEN: usize = 12;
const WINDOWS: usize = 3;
/// Window 1 is changed from this position on.
const CUT: usize = 7;

fn carry() -> CarrySae {
    let mut w = SaeWeights::init_tied(D, 64, 1.0, 3);
    w.b_enc.iter_mut().for_each(|b| *b = 0.02);
    CarrySae::new(w, 4, vec![0.85; 64], 1e-3).unwrap()
}

fn temporal() -> saelab_sae::format::saelens_temporal::TemporalSae {
    let mut cfg = TemporalConfig::new(D, 64, Some(4));
    cfg.seed = 9;
    TemporalTrainer::new(cfg).unwrap().dictionary()
}

fn inputs(seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..WINDOWS * LEN * D)
        .map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn row(f: &SparseFeatures, r: usize) -> (Vec<u32>, Vec<f32>) {
    let (i, v) = f.row(r);
    (i.to_vec(), v.to_vec())
}

fn check(name: &str, d: &dyn WindowDictionary) {
    let x = inputs(1);
    let mut changed = x.clone();
    // Window 1's positions CUT.. replaced by other values.
    let other = inputs(2);
    let from = (LEN + CUT) * D;
    let to = 2 * LEN * D;
    changed[from..to].copy_from_slice(&other[from..to]);
    let a = d.run_windows(&x, LEN).unwrap();
    let b = d.run_windows(&changed, LEN).unwrap();
    let mut later_differ = false;
    for r in 0..WINDOWS * LEN {
        let changed_input = (LEN + CUT..2 * LEN).contains(&r);
        let rows_equal = row(&a.codes, r) == row(&b.codes, r)
            && row(&a.paid, r) == row(&b.paid, r)
            && a.reconstruction[r * D..(r + 1) * D] == b.reconstruction[r * D..(r + 1) * D];
        if !changed_input {
            // Earlier positions of window 1, and windows 0 and 2 whole.
            assert!(rows_equal, "{name}: row {r} changed with later inputs");
        } else if !rows_equal {
            later_differ = true;
        }
    }
    assert!(
        later_differ,
        "{name}: the changed positions changed nothing"
    );
}

#[test]
fn later_positions_do_not_change_earlier_codes_or_reconstructions() {
    check("carry", &carry());
    check("temporal", &temporal());
}

#[test]
fn any_dictionary_reads_both_kinds_from_their_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = carry();
    c.metadata.hook_name = Some("blocks.0.hook_resid_post".into());
    c.save(&dir.path().join("carry")).unwrap();
    temporal().save(&dir.path().join("temporal")).unwrap();
    let x = inputs(3);
    for (name, want) in [
        ("carry", c.run_windows(&x, LEN).unwrap()),
        ("temporal", temporal().run_windows(&x, LEN).unwrap()),
    ] {
        let d = AnyDictionary::load(&dir.path().join(name)).unwrap();
        assert!(d.is_contextual() && d.per_position().is_none());
        assert_eq!(d.architecture(), name);
        let got = d.window().run_windows(&x, LEN).unwrap();
        assert_eq!(got.codes, want.codes, "{name}");
        assert_eq!(got.reconstruction, want.reconstruction, "{name}");
        assert_eq!(d.window().geometry().d_sae, 64);
    }
    let loaded = AnyDictionary::load(&dir.path().join("carry")).unwrap();
    assert_eq!(
        loaded.metadata().hook_name.as_deref(),
        Some("blocks.0.hook_resid_post")
    );
}

/// Windows read from their second position: the first keeps its input and has no codes, and
/// the rest equal running the window without it; a huge first activation changes nothing.
#[test]
fn run_after_start_leaves_the_start_token_out() {
    let d = temporal();
    let x = inputs(5);
    let whole = d.run_after_start(&x, LEN).unwrap();
    let rest: Vec<f32> = x
        .chunks(LEN * D)
        .flat_map(|w| w[D..].iter().copied())
        .collect();
    let inner = d.run_windows(&rest, LEN - 1).unwrap();
    let windows = x.len() / (LEN * D);
    for b in 0..windows {
        let r0 = b * LEN;
        assert!(whole.codes.row(r0).0.is_empty() && whole.paid.row(r0).0.is_empty());
        assert_eq!(
            whole.reconstruction[r0 * D..(r0 + 1) * D],
            x[r0 * D..(r0 + 1) * D]
        );
        for t in 1..LEN {
            let (r, i) = (b * LEN + t, b * (LEN - 1) + t - 1);
            assert_eq!(whole.codes.row(r), inner.codes.row(i));
            assert_eq!(
                whole.reconstruction[r * D..(r + 1) * D],
                inner.reconstruction[i * D..(i + 1) * D]
            );
        }
    }
    let mut loud = x.clone();
    loud[..D].iter_mut().for_each(|v| *v *= 1000.0);
    let again = d.run_after_start(&loud, LEN).unwrap();
    assert_eq!(again.codes, whole.codes);
}
