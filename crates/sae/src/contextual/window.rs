//! Dictionaries run over whole windows: the one interface the evaluation, the features scan
//! and the run driver use for contextual dictionaries (carry, temporal) and per-position
//! ones alike (each row encoded alone), so that every metric is computed the same way for
//! both.

use std::path::Path;

use rayon::prelude::*;

use super::carry::{CarrySae, CARRY_ARCHITECTURE};
use crate::dictionary::{Dictionary, Metadata, Sae};
use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::format::json_cfg::{read_json, JsonCfg};
use crate::format::saelens::CFG_FILE;
use crate::format::saelens_temporal::TemporalSae;
use crate::kernels::gemm::matmul_nn;
use crate::kernels::vector::dot;
use crate::weights::{transpose, SaeWeights};

/// Whole windows `[windows · len, d_in]` through a dictionary.
#[derive(Clone, Debug)]
pub struct WindowForward {
    /// What each position pays for: the onsets (carry), the novel codes (temporal), the
    /// features (per-position dictionaries). L0 counts these.
    pub paid: SparseFeatures,
    /// What is on at each position: the codes the decoder reads (carried + onsets for carry,
    /// novel + predicted for temporal; the features for per-position dictionaries).
    /// Persistence and top examples read these.
    pub codes: SparseFeatures,
    /// `[rows, d_in]`, in the input's units.
    pub reconstruction: Vec<f32>,
    /// Σ‖r_ctx‖² and Σ‖r_new‖²: the decoded context and new parts (biases left out); zero
    /// for a per-position dictionary.
    pub context_energy: (f64, f64),
}

impl WindowForward {
    /// Σ‖r_ctx‖² / Σ(‖r_ctx‖² + ‖r_new‖²): the share of the reconstruction carried by the
    /// context path.
    pub fn context_share(&self) -> f64 {
        let (ctx, new) = self.context_energy;
        if ctx + new > 0.0 {
            ctx / (ctx + new)
        } else {
            0.0
        }
    }
}

pub trait WindowDictionary: Send + Sync {
    fn d_in(&self) -> usize;
    fn d_sae(&self) -> usize;
    /// `"carry"`, `"temporal"` or the per-position architecture's SAELens name.
    fn architecture(&self) -> String;
    /// Runs `x` as whole windows of `len` positions, each causally.
    fn run_windows(&self, x: &[f32], len: usize) -> Result<WindowForward>;
    /// The decoder rows `[d_sae, d_in]`: the latents' directions (for logit lens, cosines;
    /// a temporal SAE's are in its rescaled units).
    fn decoder(&self) -> &[f32];
    fn save(&self, dir: &Path) -> Result<()>;
    /// Where its activations came from (`hook_name` places it in a model).
    fn metadata(&self) -> &Metadata;
    /// Its encoder and decoder directions as per-position weights in the input's units
    /// (input scales folded in; `b_enc` zero where there is none), for the geometry metrics:
    /// decoder norms, D/E projections and cosines between dictionaries.
    fn geometry(&self) -> SaeWeights;

    /// Runs whole windows of a model's hook from their second position, as contextual
    /// training reads them: the start token's activation (an outlier many times the others'
    /// norm) would otherwise be encoded and carried into the window. Position 0 keeps its
    /// input as its reconstruction and has no codes.
    fn run_after_start(&self, x: &[f32], len: usize) -> Result<WindowForward> {
        let d = self.d_in();
        let windows = whole_windows(x, len, d)?;
        if len == 1 {
            let none = SparseFeatures::from_row_fn(windows, self.d_sae(), |_, _, _| {});
            return Ok(WindowForward {
                paid: none.clone(),
                codes: none,
                reconstruction: x.to_vec(),
                context_energy: (0.0, 0.0),
            });
        }
        let rest: Vec<f32> = x
            .chunks(len * d)
            .flat_map(|w| w[d..].iter().copied())
            .collect();
        let out = self.run_windows(&rest, len - 1)?;
        // Row r of the whole windows is row r − 1 − (r / len) of `out`, except each window's
        // first.
        let inner = |r: usize| (!r.is_multiple_of(len)).then(|| r - r / len - 1);
        let widen = |f: &SparseFeatures| {
            SparseFeatures::from_row_fn(windows * len, f.d_sae, |r, idx, val| {
                if let Some(i) = inner(r) {
                    let (j, v) = f.row(i);
                    idx.extend_from_slice(j);
                    val.extend_from_slice(v);
                }
            })
        };
        let mut reconstruction = x.to_vec();
        for r in 0..windows * len {
            if let Some(i) = inner(r) {
                reconstruction[r * d..(r + 1) * d]
                    .copy_from_slice(&out.reconstruction[i * d..(i + 1) * d]);
            }
        }
        Ok(WindowForward {
            paid: widen(&out.paid),
            codes: widen(&out.codes),
            reconstruction,
            context_energy: out.context_energy,
        })
    }
}

fn whole_windows(x: &[f32], len: usize, d: usize) -> Result<usize> {
    if len == 0 || x.is_empty() || !x.len().is_multiple_of(len * d) {
        return Err(SaeError::Input(format!(
            "{} values are not whole windows of {len} positions × d_in {d}",
            x.len()
        )));
    }
    Ok(x.len() / (len * d))
}

impl WindowDictionary for Sae {
    fn d_in(&self) -> usize {
        self.weights.d_in
    }
    fn d_sae(&self) -> usize {
        self.weights.d_sae
    }
    fn architecture(&self) -> String {
        self.activation.saelens_name().to_string()
    }
    fn run_windows(&self, x: &[f32], len: usize) -> Result<WindowForward> {
        whole_windows(x, len, self.weights.d_in)?;
        let out = self.forward(x)?;
        Ok(WindowForward {
            paid: out.features.clone(),
            codes: out.features,
            reconstruction: out.reconstruction,
            context_energy: (0.0, 0.0),
        })
    }
    fn decoder(&self) -> &[f32] {
        &self.weights.w_dec
    }
    fn save(&self, dir: &Path) -> Result<()> {
        Dictionary::save(self, dir)
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn geometry(&self) -> SaeWeights {
        // In memory it acts as s·W_enc and W_dec / s (what saving writes).
        let s = self.input_scale;
        let mut w = self.weights.clone();
        if s != 1.0 {
            w.w_enc_t.iter_mut().for_each(|v| *v *= s);
            w.w_dec.iter_mut().for_each(|v| *v /= s);
            w.b_dec.iter_mut().for_each(|v| *v /= s);
        }
        w
    }
}

impl WindowDictionary for CarrySae {
    fn d_in(&self) -> usize {
        self.weights.d_in
    }
    fn d_sae(&self) -> usize {
        self.weights.d_sae
    }
    fn architecture(&self) -> String {
        CARRY_ARCHITECTURE.to_string()
    }
    fn run_windows(&self, x: &[f32], len: usize) -> Result<WindowForward> {
        let trace = self.run(x, len)?;
        let reconstruction = self.reconstruct(&trace);
        let context_energy = trace.context_energy(&self.weights.w_dec, self.weights.d_in);
        Ok(WindowForward {
            paid: trace.onsets,
            codes: trace.codes,
            reconstruction,
            context_energy,
        })
    }
    fn decoder(&self) -> &[f32] {
        &self.weights.w_dec
    }
    fn save(&self, dir: &Path) -> Result<()> {
        CarrySae::save(self, dir)
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn geometry(&self) -> SaeWeights {
        self.weights.clone()
    }
}

impl WindowDictionary for TemporalSae {
    fn d_in(&self) -> usize {
        self.d_in
    }
    fn d_sae(&self) -> usize {
        self.d_sae
    }
    fn architecture(&self) -> String {
        "temporal".to_string()
    }
    fn run_windows(&self, x: &[f32], len: usize) -> Result<WindowForward> {
        let (d, f) = (self.d_in, self.d_sae);
        let windows = whole_windows(x, len, d)?;
        let outs = (0..windows)
            .into_par_iter()
            .map(|b| self.forward(&x[b * len * d..(b + 1) * len * d]))
            .collect::<Result<Vec<_>>>()?;
        let rows = windows * len;
        let novel: Vec<f32> = outs
            .iter()
            .flat_map(|o| o.z_novel.iter().copied())
            .collect();
        let pred: Vec<f32> = outs.iter().flat_map(|o| o.z_pred.iter().copied()).collect();
        let total: Vec<f32> = novel.iter().zip(&pred).map(|(a, b)| a + b).collect();
        // The decoded parts in the input's units (the decoder reads training units).
        let energy = |z: &[f32]| -> f64 {
            let mut r = vec![0.0f32; rows * d];
            matmul_nn(&mut r, z, &self.w_dec, rows, f, d, false);
            let s2 = (self.scale as f64).powi(2);
            r.par_chunks(d).map(|row| dot(row, row) as f64).sum::<f64>() / s2
        };
        Ok(WindowForward {
            paid: SparseFeatures::from_dense(&novel, rows, f),
            codes: SparseFeatures::from_dense(&total, rows, f),
            reconstruction: outs.into_iter().flat_map(|o| o.reconstruction).collect(),
            context_energy: (energy(&pred), energy(&novel)),
        })
    }
    fn decoder(&self) -> &[f32] {
        &self.w_dec
    }
    fn save(&self, dir: &Path) -> Result<()> {
        TemporalSae::save(self, dir)
    }
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    fn geometry(&self) -> SaeWeights {
        // z = relu(λ·(s·x − b_dec) W_enc), x̂ = (z W_dec + b_dec) / s, λ = 1 / (4 d_in).
        let (d, f, s) = (self.d_in, self.d_sae, self.scale);
        let lam = 1.0 / (4.0 * d as f32);
        let mut w_enc_t = transpose(&self.w_enc, d, f);
        w_enc_t.iter_mut().for_each(|v| *v *= lam * s);
        SaeWeights {
            d_in: d,
            d_sae: f,
            w_enc_t,
            b_enc: vec![0.0; f],
            w_dec: self.w_dec.iter().map(|v| v / s).collect(),
            b_dec: self.b_dec.iter().map(|v| v / s).collect(),
        }
    }
}

/// Any dictionary folder saelab reads, as a window dictionary: carry and temporal folders by
/// their cfg.json's `architecture`, everything else through the per-position readers.
pub fn load_window_dictionary(dir: &Path) -> Result<Box<dyn WindowDictionary>> {
    Ok(match AnyDictionary::load(dir)? {
        AnyDictionary::PerPosition(sae) => Box::new(sae),
        AnyDictionary::Contextual(d) => d,
    })
}

/// A per-position or a contextual dictionary. Callers that run both keep a per-position
/// dictionary's whole interface (transcoders, pruning, the row-by-row forward), so its
/// results stay exactly what they were, and run a contextual one over whole windows.
// One per dictionary loaded, never in bulk: the per-position variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnyDictionary {
    PerPosition(Sae),
    Contextual(Box<dyn WindowDictionary>),
}

impl AnyDictionary {
    /// Carry and temporal folders by their cfg.json's `architecture`, everything else
    /// through the per-position readers.
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join(CFG_FILE);
        if cfg_path.is_file() {
            let value = read_json(&cfg_path)?;
            let cfg = JsonCfg::root(&cfg_path, &value)?;
            if cfg.contains("architecture") {
                match cfg.string("architecture")? {
                    CARRY_ARCHITECTURE => {
                        return Ok(AnyDictionary::Contextual(Box::new(CarrySae::load(dir)?)))
                    }
                    "temporal" => {
                        return Ok(AnyDictionary::Contextual(Box::new(TemporalSae::load(dir)?)))
                    }
                    _ => {}
                }
            }
        }
        Ok(AnyDictionary::PerPosition(crate::format::load_any(dir)?))
    }

    /// Either kind, run over whole windows.
    pub fn window(&self) -> &dyn WindowDictionary {
        match self {
            AnyDictionary::PerPosition(sae) => sae,
            AnyDictionary::Contextual(d) => d.as_ref(),
        }
    }

    pub fn per_position(&self) -> Option<&Sae> {
        match self {
            AnyDictionary::PerPosition(sae) => Some(sae),
            AnyDictionary::Contextual(_) => None,
        }
    }

    pub fn is_contextual(&self) -> bool {
        matches!(self, AnyDictionary::Contextual(_))
    }

    pub fn d_in(&self) -> usize {
        self.window().d_in()
    }

    pub fn d_sae(&self) -> usize {
        self.window().d_sae()
    }

    /// A per-position dictionary's own name (`topk`, `jumprelu_transcoder`, ...), else
    /// `carry` or `temporal`.
    pub fn architecture(&self) -> String {
        match self {
            AnyDictionary::PerPosition(sae) => Dictionary::architecture(sae).to_string(),
            AnyDictionary::Contextual(d) => d.architecture(),
        }
    }

    pub fn metadata(&self) -> &Metadata {
        self.window().metadata()
    }
}

impl From<Sae> for AnyDictionary {
    fn from(sae: Sae) -> Self {
        AnyDictionary::PerPosition(sae)
    }
}

impl From<CarrySae> for AnyDictionary {
    fn from(d: CarrySae) -> Self {
        AnyDictionary::Contextual(Box::new(d))
    }
}

impl From<TemporalSae> for AnyDictionary {
    fn from(d: TemporalSae) -> Self {
        AnyDictionary::Contextual(Box::new(d))
    }
}

impl std::fmt::Debug for AnyDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} dictionary ({} × {})",
            self.architecture(),
            self.d_in(),
            self.d_sae()
        )
    }
}
