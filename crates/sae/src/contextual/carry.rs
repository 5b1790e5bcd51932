//! saelab's contextual design, the **carry** dictionary: each latent carries a share λ_j of
//! its code to the next position, so a property of a region of text is paid for once, where
//! it starts (and once where it ends), instead of at every position (seed 001's "diff" of
//! the text). λ_j is learned: region features learn to hold (λ → 1), token features to
//! forget (λ → 0); the dictionary starts every latent in between.
//!
//! Per window, positions in order, with c₀ = 0:
//!
//! ```text
//! u_t = x_t − b_dec − W_decᵀ c_t               what the carried codes leave unexplained
//! p_t = W_enc u_t + b_enc
//! Δ_tj = max(−c_tj, p_tj)                      the change of latent j (relu(p) when c = 0)
//! S_t = the k latents of largest |Δ_tj| > 0    the onsets this position pays for
//! a_t = c_t + Δ_t on S_t, c_t elsewhere        the codes the decoder reads (≥ 0)
//! x̂_t = W_decᵀ a_t + b_dec
//! c_{t+1,j} = λ_j a_tj, dropped below `floor`  (so a forgetting latent leaves no trail)
//! ```
//!
//! A negative onset lowers a carried code; one of −c ends it. The encoder sees the residual
//! after the carried part, so a region feature that is already carried has a small onset
//! and leaves its slot to what is new. L0 counts onsets (|S_t|); `codes` are what is on.
//! Training ([`super::carry_train`]) treats the carried reconstruction in u_t as a constant:
//! the gradient reaches earlier positions through the carried codes themselves.

use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::dictionary::Metadata;
use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::format::atomic::write_atomic;
use crate::format::json_cfg::{read_json, JsonCfg};
use crate::format::saelens::{CFG_FILE, WEIGHTS_FILE};
use crate::format::tensors::{to_bytes, TensorFile};
use crate::kernels::gemm::matmul_nt;
use crate::kernels::select::top_k_of_row;
use crate::kernels::sparse::decode;
use crate::kernels::vector::{axpy, dot};
use crate::weights::{transpose, SaeWeights};

/// The architecture name in cfg.json.
pub const CARRY_ARCHITECTURE: &str = "carry";

#[derive(Clone, Debug, PartialEq)]
pub struct CarrySae {
    pub weights: SaeWeights,
    /// Onsets per position.
    pub k: usize,
    /// λ_j ∈ [0, 1]: the share of latent j's code carried to the next position.
    pub decay: Vec<f32>,
    /// Carried codes below this are dropped.
    pub floor: f32,
    pub metadata: Metadata,
}

/// A batch of windows run through a carry dictionary. Rows are window-major, positions in
/// order (`window · len + t`).
#[derive(Clone, Debug)]
pub struct CarryTrace {
    pub len: usize,
    /// c_t: the held codes each position starts from (all > 0).
    pub carried: SparseFeatures,
    /// Δ_t: the onsets each position pays for (signed).
    pub onsets: SparseFeatures,
    /// a_t = c_t + Δ_t: the codes the decoder reads (all > 0).
    pub codes: SparseFeatures,
    /// Per onset entry: the code is c + p (the gradient passes to p and c), not an ended
    /// carry (a code of 0, which passes none).
    pub passes: Vec<bool>,
    /// u_t, `[rows, d_in]`.
    pub inputs: Vec<f32>,
}

/// One position's entries, latent order.
#[derive(Clone, Debug, Default)]
struct RowTrace {
    carried: Vec<(u32, f32)>,
    onsets: Vec<(u32, f32, bool)>,
    codes: Vec<(u32, f32)>,
}

impl CarrySae {
    pub fn new(weights: SaeWeights, k: usize, decay: Vec<f32>, floor: f32) -> Result<Self> {
        check_sizes(&weights, k, &decay, floor)?;
        Ok(CarrySae {
            weights,
            k,
            decay,
            floor,
            metadata: Metadata::default(),
        })
    }

    /// Runs whole windows `x` (`[windows · len, d_in]`).
    pub fn run(&self, x: &[f32], len: usize) -> Result<CarryTrace> {
        run(&self.weights, self.k, &self.decay, self.floor, x, len)
    }

    /// x̂ of a trace (`[rows, d_in]`).
    pub fn reconstruct(&self, trace: &CarryTrace) -> Vec<f32> {
        reconstruct(&self.weights, trace)
    }

    /// Writes `cfg.json` (SAELens's fields plus `k` and `carry_floor`) and
    /// `sae_weights.safetensors` (SAELens's names and shapes, plus `decay`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
        let w = &self.weights;
        let (d, f) = (w.d_in, w.d_sae);
        let path = dir.join(WEIGHTS_FILE);
        let w_enc = w.w_enc();
        let tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
            ("W_enc", vec![d, f], &w_enc),
            ("b_enc", vec![f], &w.b_enc),
            ("W_dec", vec![f, d], &w.w_dec),
            ("b_dec", vec![d], &w.b_dec),
            ("decay", vec![f], &self.decay),
        ];
        write_atomic(&path, &to_bytes(&path, &tensors)?)?;
        let mut cfg = match serde_json::to_value(&self.metadata) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        cfg.insert("architecture".into(), json!(CARRY_ARCHITECTURE));
        cfg.insert("d_in".into(), json!(d));
        cfg.insert("d_sae".into(), json!(f));
        cfg.insert("k".into(), json!(self.k));
        cfg.insert("carry_floor".into(), json!(self.floor));
        cfg.insert("dtype".into(), json!("float32"));
        let cfg_path = dir.join(CFG_FILE);
        let text =
            serde_json::to_string_pretty(&Value::Object(cfg)).map_err(|e| SaeError::Json {
                path: cfg_path.clone(),
                cause: e,
            })?;
        // cfg.json last: a folder with a cfg.json has its weights.
        write_atomic(&cfg_path, text.as_bytes())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join(CFG_FILE);
        let value = read_json(&cfg_path)?;
        let cfg = JsonCfg::root(&cfg_path, &value)?;
        let architecture = cfg.string("architecture")?;
        if architecture != CARRY_ARCHITECTURE {
            return Err(cfg.error(
                "architecture",
                format!("= {architecture:?}: not a carry dictionary"),
            ));
        }
        let (d, f) = (cfg.positive("d_in")?, cfg.positive("d_sae")?);
        let k = cfg.positive("k")?;
        if k > f {
            return Err(cfg.error("k", format!("= {k} is more than d_sae = {f}")));
        }
        let floor = cfg
            .get("carry_floor")?
            .as_f64()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| cfg.error("carry_floor", "must be a positive number"))?
            as f32;
        let file = TensorFile::open(&dir.join(WEIGHTS_FILE))?;
        let w_enc = file.read("W_enc", &[d, f])?;
        let weights = SaeWeights {
            d_in: d,
            d_sae: f,
            w_enc_t: transpose(&w_enc, d, f),
            b_enc: file.read("b_enc", &[f])?,
            w_dec: file.read("W_dec", &[f, d])?,
            b_dec: file.read("b_dec", &[d])?,
        };
        let decay = file.read("decay", &[f])?;
        if let Some(j) = decay.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(SaeError::Input(format!(
                "{}: decay[{j}] = {} is outside [0, 1]",
                dir.join(WEIGHTS_FILE).display(),
                decay[j]
            )));
        }
        let metadata: Metadata = serde_json::from_value(value.clone()).unwrap_or_default();
        Ok(CarrySae {
            weights,
            k,
            decay,
            floor,
            metadata,
        })
    }
}

pub(crate) fn check_sizes(w: &SaeWeights, k: usize, decay: &[f32], floor: f32) -> Result<()> {
    let (d, f) = (w.d_in, w.d_sae);
    if k == 0 || k > f {
        return Err(SaeError::config(
            "k",
            format!("= {k} must be in 1..=d_sae ({f})"),
        ));
    }
    if !(floor.is_finite() && floor > 0.0) {
        return Err(SaeError::config(
            "floor",
            format!("= {floor} must be positive"),
        ));
    }
    if decay.len() != f || decay.iter().any(|v| !(0.0..=1.0).contains(v)) {
        return Err(SaeError::config(
            "decay",
            format!("must be {f} values in [0, 1]"),
        ));
    }
    let sizes_ok = w.w_enc_t.len() == f * d
        && w.w_dec.len() == f * d
        && w.b_enc.len() == f
        && w.b_dec.len() == d;
    if !sizes_ok {
        return Err(SaeError::Input(format!(
            "carry dictionary weights do not match d_in {d}, d_sae {f}"
        )));
    }
    Ok(())
}

/// The forward above over `x.len() / (len · d_in)` windows; windows run in parallel, and
/// each position's encoder product is one `[windows, d_in] × [d_in, d_sae]` GEMM.
pub(crate) fn run(
    w: &SaeWeights,
    k: usize,
    decay: &[f32],
    floor: f32,
    x: &[f32],
    len: usize,
) -> Result<CarryTrace> {
    let (d, f) = (w.d_in, w.d_sae);
    if len == 0 || x.is_empty() || !x.len().is_multiple_of(len * d) {
        return Err(SaeError::Input(format!(
            "{} values are not whole windows of {len} positions × d_in {d}",
            x.len()
        )));
    }
    let windows = x.len() / (len * d);
    let rows = windows * len;
    let mut traces: Vec<Vec<RowTrace>> = vec![vec![RowTrace::default(); len]; windows];
    let mut inputs = vec![0.0f32; rows * d];
    let mut u_t = vec![0.0f32; windows * d];
    let mut pre = vec![0.0f32; windows * f];
    for t in 0..len {
        // u_t per window, from the codes held into position t.
        u_t.par_chunks_mut(d)
            .zip(traces.par_iter())
            .enumerate()
            .for_each(|(b, (u, trace))| {
                let row = b * len + t;
                u.copy_from_slice(&x[row * d..(row + 1) * d]);
                u.iter_mut().zip(&w.b_dec).for_each(|(v, bd)| *v -= bd);
                if t > 0 {
                    for &(j, c) in &carry(&trace[t - 1].codes, decay, floor) {
                        let j = j as usize;
                        axpy(u, -c, &w.w_dec[j * d..(j + 1) * d]);
                    }
                }
            });
        for b in 0..windows {
            let row = b * len + t;
            inputs[row * d..(row + 1) * d].copy_from_slice(&u_t[b * d..(b + 1) * d]);
        }
        matmul_nt(&mut pre, &u_t, &w.w_enc_t, windows, d, f, false);
        pre.par_chunks_mut(f)
            .zip(traces.par_iter_mut())
            .for_each(|(p, trace)| {
                p.iter_mut().zip(&w.b_enc).for_each(|(v, b)| *v += b);
                let carried = match t {
                    0 => Vec::new(),
                    _ => carry(&trace[t - 1].codes, decay, floor),
                };
                trace[t] = select(p, carried, k);
            });
    }
    let flat: Vec<&RowTrace> = traces.iter().flatten().collect();
    let carried = SparseFeatures::from_row_fn(rows, f, |r, idx, val| {
        for &(j, v) in &flat[r].carried {
            idx.push(j);
            val.push(v);
        }
    });
    let onsets = SparseFeatures::from_row_fn(rows, f, |r, idx, val| {
        for &(j, v, _) in &flat[r].onsets {
            idx.push(j);
            val.push(v);
        }
    });
    let codes = SparseFeatures::from_row_fn(rows, f, |r, idx, val| {
        for &(j, v) in &flat[r].codes {
            idx.push(j);
            val.push(v);
        }
    });
    let passes = flat
        .iter()
        .flat_map(|r| r.onsets.iter().map(|o| o.2))
        .collect();
    Ok(CarryTrace {
        len,
        carried,
        onsets,
        codes,
        passes,
        inputs,
    })
}

/// What the next position starts from: λ_j a_j, where at least `floor`.
pub(crate) fn carry(codes: &[(u32, f32)], decay: &[f32], floor: f32) -> Vec<(u32, f32)> {
    codes
        .iter()
        .map(|&(j, a)| (j, decay[j as usize] * a))
        .filter(|&(_, c)| c >= floor)
        .collect()
}

/// One position's onsets and codes from its pre-activations `p` (overwritten) and the codes
/// it starts from.
fn select(p: &mut [f32], carried: Vec<(u32, f32)>, k: usize) -> RowTrace {
    // Rank held latents by the size of their change, |max(−c, p)|.
    let original: Vec<f32> = carried.iter().map(|&(j, _)| p[j as usize]).collect();
    for (&(j, c), &pj) in carried.iter().zip(&original) {
        p[j as usize] = pj.max(-c).abs();
    }
    let (mut idx, mut val) = (Vec::with_capacity(k), Vec::with_capacity(k));
    top_k_of_row(p, k, None, &mut idx, &mut val);
    let mut onsets = Vec::with_capacity(idx.len());
    for &j in &idx {
        match carried.binary_search_by_key(&j, |e| e.0) {
            Ok(i) => {
                let (c, pj) = (carried[i].1, original[i]);
                onsets.push((j, pj.max(-c), pj > -c));
            }
            Err(_) => onsets.push((j, p[j as usize], true)),
        }
    }
    // a = c + Δ: merge the two sorted lists, dropping codes that end at 0.
    let mut codes = Vec::with_capacity(carried.len() + onsets.len());
    let (mut i, mut o) = (0, 0);
    while i < carried.len() || o < onsets.len() {
        let next_c = carried.get(i).map_or(u32::MAX, |e| e.0);
        let next_o = onsets.get(o).map_or(u32::MAX, |e| e.0);
        let (j, v) = match next_c.cmp(&next_o) {
            std::cmp::Ordering::Less => {
                i += 1;
                (next_c, carried[i - 1].1)
            }
            std::cmp::Ordering::Greater => {
                o += 1;
                (next_o, onsets[o - 1].1)
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                o += 1;
                (next_c, carried[i - 1].1 + onsets[o - 1].1)
            }
        };
        if v > 0.0 {
            codes.push((j, v));
        }
    }
    RowTrace {
        carried,
        onsets,
        codes,
    }
}

pub(crate) fn reconstruct(w: &SaeWeights, trace: &CarryTrace) -> Vec<f32> {
    let mut out = vec![0.0f32; trace.codes.rows * w.d_in];
    decode(
        &trace.codes,
        None,
        &w.w_dec,
        w.d_in,
        Some(&w.b_dec),
        &mut out,
    );
    out
}

impl CarryTrace {
    /// Σ‖W_decᵀ c_t‖² and Σ‖W_decᵀ Δ_t‖²: the energy of the carried and the new parts.
    pub fn context_energy(&self, w_dec: &[f32], d: usize) -> (f64, f64) {
        let energy = |f: &SparseFeatures| -> f64 {
            let mut out = vec![0.0f32; f.rows * d];
            decode(f, None, w_dec, d, None, &mut out);
            out.par_chunks(d).map(|r| dot(r, r) as f64).sum()
        };
        (energy(&self.carried), energy(&self.onsets))
    }

    /// Share of the reconstruction carried by the context path: Σ‖W_decᵀ c_t‖² /
    /// Σ(‖W_decᵀ c_t‖² + ‖W_decᵀ Δ_t‖²).
    pub fn context_share(&self, w_dec: &[f32], d: usize) -> f64 {
        let (ctx, new) = self.context_energy(w_dec, d);
        if ctx + new > 0.0 {
            ctx / (ctx + new)
        } else {
            0.0
        }
    }

    /// Onsets per position.
    pub fn l0(&self) -> f64 {
        self.onsets.nnz() as f64 / self.onsets.rows.max(1) as f64
    }
}
