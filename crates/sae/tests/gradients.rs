//! Hand-derived gradients against candle's autograd (in f64) on small random inputs. The
//! kept entries (TopK, BatchTopK, AuxK) come from our forward pass and enter the autograd
//! graph as fixed 0/1 masks.

use candle_core::{Device, Tensor, Var};
use saelab_sae::features::SparseFeatures;
use saelab_sae::kernels::select;
use saelab_sae::rng::SplitMix64;
use saelab_sae::train::objective::{
    forward_pre, loss_and_grads, AuxTerm, L1Term, Objective, Path, Scratch,
};
use saelab_sae::SaeWeights;

const D: usize = 12;
const F: usize = 40;
const B: usize = 16;

fn random_setup(seed: u64) -> (SaeWeights, Vec<f32>) {
    let mut w = SaeWeights::init_tied(D, F, 1.0, seed);
    let mut r = SplitMix64::new(seed + 100);
    // Untie and perturb so that no gradient term is zero by symmetry.
    w.w_enc_t.iter_mut().for_each(|v| *v += 0.3 * r.normal());
    w.w_dec.iter_mut().for_each(|v| *v *= r.uniform(0.5, 1.5));
    w.b_enc.iter_mut().for_each(|v| *v = 0.1 * r.normal());
    w.b_dec.iter_mut().for_each(|v| *v = 0.2 * r.normal());
    let x: Vec<f32> = (0..B * D).map(|_| r.normal()).collect();
    (w, x)
}

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    let v: Vec<f64> = data.iter().map(|&x| x as f64).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

fn mask(f: &SparseFeatures) -> Tensor {
    let m: Vec<f32> = f
        .to_dense()
        .iter()
        .map(|&v| if v != 0.0 { 1.0 } else { 0.0 })
        .collect();
    t(&m, &[f.rows, f.d_sae])
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f64>())
        .expect("to_vec")
}

/// ‖ours − reference‖ / ‖reference‖.
fn rel_err(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let num: f64 = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (*a as f64 - b).powi(2))
        .sum();
    let den: f64 = reference.iter().map(|b| b * b).sum();
    assert!(
        den > 0.0,
        "reference gradient is zero: the test would prove nothing"
    );
    (num / den).sqrt()
}

struct Case<'a> {
    w: &'a SaeWeights,
    x: &'a [f32],
    features: &'a SparseFeatures,
    aux: Option<(&'a SparseFeatures, f32)>,
    l1: Option<L1Term>,
    path: Path,
}

fn check(case: Case) {
    let Case {
        w,
        x,
        features,
        aux,
        l1,
        path,
    } = case;
    // Ours.
    let mut pre = Vec::new();
    let xc = forward_pre(w, x, true, &mut pre);
    let obj = Objective {
        features,
        aux: aux.map(|(f, c)| AuxTerm {
            features: f,
            coefficient: c,
        }),
        l1,
        apply_b_dec_to_input: true,
    };
    let mut grads = SaeWeights::zeros(D, F);
    let (parts, _) = loss_and_grads(w, x, &xc, &obj, path, &mut Scratch::default(), &mut grads);

    // Reference.
    let w_enc = Var::from_tensor(&t(&w.w_enc(), &[D, F])).expect("var");
    let b_enc = Var::from_tensor(&t(&w.b_enc, &[F])).expect("var");
    let w_dec = Var::from_tensor(&t(&w.w_dec, &[F, D])).expect("var");
    let b_dec = Var::from_tensor(&t(&w.b_dec, &[D])).expect("var");
    let xt = t(x, &[B, D]);
    let run = || -> candle_core::Result<(Tensor, f64, f64, f64)> {
        let pre = xt
            .broadcast_sub(b_dec.as_tensor())?
            .matmul(w_enc.as_tensor())?
            .broadcast_add(b_enc.as_tensor())?;
        let f = (pre.relu()? * mask(features))?;
        let xhat = f
            .matmul(w_dec.as_tensor())?
            .broadcast_add(b_dec.as_tensor())?;
        let recon = ((&xhat - &xt)?.sqr()?.sum_all()? / B as f64)?;
        let mut total = recon.clone();
        let mut aux_v = 0.0;
        if let Some((af, c)) = aux {
            let a = (pre.relu()? * mask(af))?;
            let ehat = a.matmul(w_dec.as_tensor())?;
            let r = (&xt - &xhat)?.detach();
            let l = (((ehat - r)?.sqr()?.sum_all()? * c as f64)? / B as f64)?;
            aux_v = l.to_scalar::<f64>()?;
            total = (total + l)?;
        }
        let mut l1_v = 0.0;
        if let Some(l1) = l1 {
            let weighted = if l1.weighted_by_decoder_norm {
                let norms = w_dec.as_tensor().sqr()?.sum(1)?.sqrt()?;
                f.broadcast_mul(&norms)?
            } else {
                f.clone()
            };
            let l = ((weighted.sum_all()? * l1.coefficient as f64)? / B as f64)?;
            l1_v = l.to_scalar::<f64>()?;
            total = (total + l)?;
        }
        Ok((total, recon.to_scalar::<f64>()?, aux_v, l1_v))
    };
    let (total, recon, aux_v, l1_v) = run().expect("reference forward");
    let g = total.backward().expect("backward");
    let grad = |v: &Var| values(g.get(v.as_tensor()).expect("gradient exists"));

    assert!(
        (parts.recon - recon).abs() <= 1e-5 * recon.abs().max(1.0),
        "recon {} vs {recon}",
        parts.recon
    );
    assert!(
        (parts.aux - aux_v).abs() <= 1e-5 * aux_v.abs().max(1.0),
        "aux {} vs {aux_v}",
        parts.aux
    );
    assert!(
        (parts.l1 - l1_v).abs() <= 1e-5 * l1_v.abs().max(1.0),
        "l1 {} vs {l1_v}",
        parts.l1
    );
    let checks = [
        ("W_enc", rel_err(&grads.w_enc(), &grad(&w_enc))),
        ("b_enc", rel_err(&grads.b_enc, &grad(&b_enc))),
        ("W_dec", rel_err(&grads.w_dec, &grad(&w_dec))),
        ("b_dec", rel_err(&grads.b_dec, &grad(&b_dec))),
    ];
    for (name, err) in checks {
        assert!(err < 1e-4, "{name}: relative error {err:e}");
    }
}

fn pre_of(w: &SaeWeights, x: &[f32]) -> Vec<f32> {
    let mut pre = Vec::new();
    forward_pre(w, x, true, &mut pre);
    pre
}

#[test]
fn topk_gradients_match_autograd() {
    let (w, x) = random_setup(1);
    let pre = pre_of(&w, &x);
    let features = select::top_k_rows(&pre, B, F, 5, None);
    assert!(features.nnz() > B * 3, "enough kept entries");
    check(Case {
        w: &w,
        x: &x,
        features: &features,
        aux: None,
        l1: None,
        path: Path::Sparse,
    });
}

#[test]
fn topk_with_auxk_gradients_match_autograd() {
    let (w, x) = random_setup(2);
    let pre = pre_of(&w, &x);
    let features = select::top_k_rows(&pre, B, F, 5, None);
    // Every third latent counts as dead; some are also in the main top-k of some rows.
    let dead: Vec<u32> = (0..F as u32).step_by(3).collect();
    let aux = select::top_k_rows(&pre, B, F, 4, Some(&dead));
    assert!(aux.nnz() > B * 2);
    check(Case {
        w: &w,
        x: &x,
        features: &features,
        aux: Some((&aux, 0.7)),
        l1: None,
        path: Path::Sparse,
    });
}

#[test]
fn batchtopk_gradients_match_autograd() {
    let (w, x) = random_setup(3);
    let pre = pre_of(&w, &x);
    let (features, min) = select::batch_top_k(&pre, B, F, 4 * B);
    assert_eq!(features.nnz(), 4 * B);
    assert!(min.is_some());
    let dead: Vec<u32> = (1..F as u32).step_by(4).collect();
    let aux = select::top_k_rows(&pre, B, F, 3, Some(&dead));
    check(Case {
        w: &w,
        x: &x,
        features: &features,
        aux: Some((&aux, 1.0 / 32.0)),
        l1: None,
        path: Path::Sparse,
    });
}

#[test]
fn relu_l1_standard_gradients_match_autograd_on_both_paths() {
    let (w, x) = random_setup(4);
    let pre = pre_of(&w, &x);
    let features = select::above_threshold(&pre, B, F, None);
    let l1 = Some(L1Term {
        coefficient: 0.8,
        weighted_by_decoder_norm: false,
    });
    for path in [Path::Sparse, Path::Dense] {
        check(Case {
            w: &w,
            x: &x,
            features: &features,
            aux: None,
            l1,
            path,
        });
    }
}

#[test]
fn relu_l1_april_gradients_match_autograd_on_both_paths() {
    let (w, x) = random_setup(5);
    let pre = pre_of(&w, &x);
    let features = select::above_threshold(&pre, B, F, None);
    let l1 = Some(L1Term {
        coefficient: 0.8,
        weighted_by_decoder_norm: true,
    });
    for path in [Path::Sparse, Path::Dense] {
        check(Case {
            w: &w,
            x: &x,
            features: &features,
            aux: None,
            l1,
            path,
        });
    }
}
