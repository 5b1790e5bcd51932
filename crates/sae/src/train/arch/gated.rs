//! The Gated SAE objective and its gradients (Rajamanoharan et al. 2024, "Improving
//! Dictionary Learning with Gated Sparse Autoencoders"), as dictionary_learning trains it.
//!
//! With xc = x − b_dec, the gate π_g = xc W_enc + b_gate (the shared `pre`, `b_enc` being
//! b_gate) and the magnitude π_m,tj = s_j (π_g,tj − b_gate_j) + b_mag_j, s_j = exp(r_mag_j):
//!   f = 1[π_g > 0] · relu(π_m),   x̂ = f W_dec + b_dec,
//!   L = (1/B) Σ_t ‖x̂_t − x_t‖²                                 (reconstruction)
//!     + (λ/B) Σ_t Σ_j relu(π_g,tj)                              (L1 on the gate)
//!     + (a/B) Σ_t ‖relu(π_g,t) W̄_dec + b̄_dec − x_t‖²           (aux; W̄, b̄ frozen copies),
//! a the aux term's warm-up weight (1 after it). The step 1[π_g > 0] passes no gradient.
//! With g = (2/B)(x̂ − x), h = (2a/B)(x̂_aux − x) and,
//! at the entries where the gate is open,
//!   δm_tj = ⟨g_t, W_dec[j]⟩ · 1[π_m,tj > 0],   δg_tj = ⟨h_t, W_dec[j]⟩ + λ/B:
//! ∂W_dec[j] = Σ_t f_tj g_t;  ∂b_mag_j = Σ_t δm_tj;  ∂r_mag_j = Σ_t δm_tj s_j (π_g,tj − b_gate_j);
//! ∂b_gate_j = Σ_t δg_tj;  ∂W_enc[:, j] = Σ_t (δg_tj + s_j δm_tj) xc_t;
//! ∂b_dec = Σ_t g_t − W_enc Σ_t (δg_t + s ⊙ δm_t).
//! Every sum runs over the gate's open entries only: gathers and scatters on the sparse path,
//! GEMMs over matrices holding zeros elsewhere on the dense one.

use rayon::prelude::*;

use super::{Architecture, Batch, Gradients, ParamSpec, SpecKind, TrainArchitecture};
use crate::dictionary::Activation;
use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::kernels::gemm::{matmul_nn, matmul_nt, matmul_tn};
use crate::kernels::select;
use crate::kernels::sparse::{decode, entry_dots, ByLatent};
use crate::kernels::vector::{axpy, dot, sum_f64, sum_rows, weighted_row_sum};
use crate::train::config::TrainConfig;
use crate::train::objective::{scatter_dense, LossParts, Path, Scratch};
use crate::train::trainer::{Trainer, DENSE_PATH_DENSITY};
use crate::weights::SaeWeights;

/// The names of Gated's parameters among the trainer's: the magnitude path's log scale and
/// bias (the gate's bias is the shared `b_enc`).
const R_MAG: &str = "r_mag";
const B_MAG: &str = "b_mag";

pub(crate) struct Gated;

pub(crate) const KIND: SpecKind = SpecKind {
    name: "gated",
    about: "a gate with an L1 penalty and a separate magnitude path",
    keys: &["l1", "target_l0", "penalty_warmup", "aux_warmup"],
    build: |_| TrainArchitecture::Gated,
};

impl Architecture for Gated {
    fn validate(&self, cfg: &TrainConfig) -> Result<()> {
        if cfg.transcoder {
            return Err(SaeError::config(
                "transcoder",
                "is not supported for Gated dictionaries (no peer stores gated transcoders)",
            ));
        }
        Ok(())
    }

    fn params(&self, cfg: &TrainConfig) -> Vec<ParamSpec> {
        [R_MAG, B_MAG]
            .into_iter()
            .map(|name| ParamSpec {
                name,
                initial: 0.0,
                shape: vec![cfg.d_sae],
            })
            .collect()
    }

    fn grads(&self, t: &mut Trainer, b: &Batch) -> Result<Gradients> {
        let indices = [index(&t.extra, R_MAG)?, index(&t.extra, B_MAG)?];
        let (weights, pre, scratch, grads) = (&t.weights, &t.pre, &mut t.scratch, &mut t.grads);
        let [r_mag, b_mag] = t
            .extra
            .get_disjoint_mut(indices)
            .map_err(|e| SaeError::Input(format!("Gated's parameters: {e}")))?;
        let (parts, features, path) = loss_and_grads(
            weights,
            GatedParams {
                r_mag: &r_mag.value,
                b_mag: &b_mag.value,
                aux_scale: b.aux_scale,
            },
            b.x,
            b.xc,
            pre,
            b.penalty,
            None,
            scratch,
            GatedGrads {
                weights: grads,
                r_mag: &mut r_mag.grad,
                b_mag: &mut b_mag.grad,
            },
        );
        Ok(Gradients {
            parts,
            features,
            path,
            error: None,
        })
    }

    fn inference(&self, t: &Trainer) -> Activation {
        Activation::Gated {
            r_mag: t.evaluated_param(R_MAG),
            b_mag: t.evaluated_param(B_MAG),
        }
    }
}

fn index(params: &[crate::train::trainer::ExtraParam], name: &str) -> Result<usize> {
    params
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| SaeError::Input(format!("a Gated trainer must hold `{name}`")))
}

/// Gated's own parameters beside the shared four, and their gradients' destination.
pub struct GatedParams<'a> {
    pub r_mag: &'a [f32],
    pub b_mag: &'a [f32],
    /// The weight of the auxiliary reconstruction (1 after its warm-up).
    pub aux_scale: f32,
}

pub struct GatedGrads<'a> {
    pub weights: &'a mut SaeWeights,
    pub r_mag: &'a mut [f32],
    pub b_mag: &'a mut [f32],
}

/// Loss parts (the aux reconstruction in `aux`, the gate's L1 in `l1`) and gradients of the
/// Gated objective on batch `x` with centred input `xc` and gate pre-activations `pre`.
/// Returns the features that fired (the magnitudes where the gate is open) and the path
/// taken. `Path::Dense` does the products over the gate's entries as GEMMs, for the early
/// steps when about half of all gates are open; `path: None` takes it when more than
/// `DENSE_PATH_DENSITY` of the gates are open.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grads(
    w: &SaeWeights,
    p: GatedParams,
    x: &[f32],
    xc: &[f32],
    pre: &[f32],
    l1_coefficient: f32,
    path: Option<Path>,
    scratch: &mut Scratch,
    out: GatedGrads,
) -> (LossParts, SparseFeatures, Path) {
    let (d, f_n) = (w.d_in, w.d_sae);
    let rows = x.len() / d;
    let inv_b = 1.0 / rows as f32;
    let scale: Vec<f32> = p.r_mag.iter().map(|r| r.exp()).collect();

    // The gate's open entries, with the gate value; the magnitudes on the same entries.
    let gate = select::above_threshold(pre, rows, f_n, None);
    let path = path.unwrap_or(
        match gate.nnz() as f64 / (rows * f_n).max(1) as f64 > DENSE_PATH_DENSITY {
            true => Path::Dense,
            false => Path::Sparse,
        },
    );
    let mag_in: Vec<f32> = gate
        .val
        .iter()
        .zip(&gate.idx)
        .map(|(&v, &j)| scale[j as usize] * (v - w.b_enc[j as usize]))
        .collect();
    let mag: Vec<f32> = mag_in
        .iter()
        .zip(&gate.idx)
        .map(|(&m, &j)| (m + p.b_mag[j as usize]).max(0.0))
        .collect();
    let ops = EntryOps {
        f: &gate,
        w_dec: &w.w_dec,
        d,
        path,
    };

    let mut parts = LossParts::default();
    // Main reconstruction from the magnitudes.
    let mut e = ops.decode(&mag, &w.b_dec, scratch);
    e.par_iter_mut().zip(x).for_each(|(a, b)| *a -= b);
    parts.sse = squared_norms(&e, d);
    parts.recon = parts.sse / rows as f64;
    let g: Vec<f32> = e.par_iter().map(|v| 2.0 * inv_b * v).collect();

    // Aux reconstruction from the gate values through the (frozen) decoder.
    let mut aux = ops.decode(&gate.val, &w.b_dec, scratch);
    aux.par_iter_mut().zip(x).for_each(|(a, b)| *a -= b);
    parts.aux = p.aux_scale as f64 * squared_norms(&aux, d) / rows as f64;
    let h: Vec<f32> = aux
        .par_iter()
        .map(|v| 2.0 * p.aux_scale * inv_b * v)
        .collect();
    parts.l1 = l1_coefficient as f64
        * inv_b as f64
        * sum_f64(rows, |t| {
            let (_, val) = gate.row(t);
            val.iter().map(|&v| v as f64).sum()
        });

    let dm: Vec<f32> = ops
        .dots(&g, scratch)
        .into_iter()
        .zip(&mag)
        .map(|(dot, &m)| if m > 0.0 { dot } else { 0.0 })
        .collect();
    let dg: Vec<f32> = ops
        .dots(&h, scratch)
        .into_iter()
        .map(|dot| dot + l1_coefficient * inv_b)
        .collect();
    let enc: Vec<f32> = dg
        .iter()
        .zip(&dm)
        .zip(&gate.idx)
        .map(|((&a, &b), &j)| a + scale[j as usize] * b)
        .collect();
    let dm_r: Vec<f32> = dm.iter().zip(&mag_in).map(|(a, b)| a * b).collect();

    let by = ByLatent::new(&gate);
    let grads = out.weights;
    ops.accumulate(&by, &mag, &g, &mut grads.w_dec, scratch);
    ops.accumulate(&by, &enc, xc, &mut grads.w_enc_t, scratch);
    grads.b_enc = by.sums(&dg);
    out.b_mag.copy_from_slice(&by.sums(&dm));
    out.r_mag.copy_from_slice(&by.sums(&dm_r));
    grads.b_dec = sum_rows(&g, d);
    let through_enc = weighted_row_sum(&by.sums(&enc), &w.w_enc_t, d);
    axpy(&mut grads.b_dec, -1.0, &through_enc);

    // The features that fired: the open gates with a positive magnitude.
    let features = SparseFeatures::from_row_fn(rows, f_n, |t, idx, val| {
        let r = gate.row_ptr[t]..gate.row_ptr[t + 1];
        for (&j, &m) in gate.idx[r.clone()].iter().zip(&mag[r]) {
            if m > 0.0 {
                idx.push(j);
                val.push(m);
            }
        }
    });
    (parts, features, path)
}

/// The three products over a set of entries (one coefficient per entry), on either path.
struct EntryOps<'a> {
    f: &'a SparseFeatures,
    w_dec: &'a [f32],
    d: usize,
    path: Path,
}

impl EntryOps<'_> {
    /// `bias + Σ_e coeff[e] W_dec[idx[e]]` per row.
    fn decode(&self, coeff: &[f32], bias: &[f32], scratch: &mut Scratch) -> Vec<f32> {
        let (rows, d) = (self.f.rows, self.d);
        let mut out = vec![0.0f32; rows * d];
        match self.path {
            Path::Sparse => decode(self.f, Some(coeff), self.w_dec, d, Some(bias), &mut out),
            Path::Dense => {
                scatter_dense(self.f, coeff, &mut scratch.f);
                matmul_nn(
                    &mut out,
                    &scratch.f,
                    self.w_dec,
                    rows,
                    self.f.d_sae,
                    d,
                    false,
                );
                out.par_chunks_mut(d).for_each(|r| axpy(r, 1.0, bias));
            }
        }
        out
    }

    /// `⟨g_t, W_dec[j]⟩` at every entry (t, j).
    fn dots(&self, g: &[f32], scratch: &mut Scratch) -> Vec<f32> {
        match self.path {
            Path::Sparse => entry_dots(self.f, g, self.w_dec, self.d),
            Path::Dense => {
                let (rows, f_n) = (self.f.rows, self.f.d_sae);
                scratch.df.resize(rows * f_n, 0.0);
                matmul_nt(&mut scratch.df, g, self.w_dec, rows, self.d, f_n, false);
                let all = &scratch.df;
                (0..rows)
                    .into_par_iter()
                    .flat_map_iter(|t| {
                        let (idx, _) = self.f.row(t);
                        idx.iter().map(move |&j| all[t * f_n + j as usize])
                    })
                    .collect()
            }
        }
    }

    /// `out[j] = Σ_{entries e of latent j} coeff[e] src[row(e)]`, `out` `[d_sae, d]`.
    fn accumulate(
        &self,
        by: &ByLatent,
        coeff: &[f32],
        src: &[f32],
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        match self.path {
            Path::Sparse => by.accumulate(coeff, src, self.d, out, false),
            Path::Dense => {
                scatter_dense(self.f, coeff, &mut scratch.f);
                let (rows, f_n) = (self.f.rows, self.f.d_sae);
                matmul_tn(out, &scratch.f, src, f_n, rows, self.d, false);
            }
        }
    }
}

/// Σ_t ‖r_t‖² over the rows of `r`.
fn squared_norms(r: &[f32], d: usize) -> f64 {
    sum_f64(r.len() / d, |t| {
        let row = &r[t * d..(t + 1) * d];
        dot(row, row) as f64
    })
}
