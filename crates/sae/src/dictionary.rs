//! What a trained dictionary is to its users: encode activations into sparse features,
//! decode features back, describe where it was trained, and live in a folder on disk.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SaeError};
use crate::features::SparseFeatures;
use crate::kernels::{select, sparse};
use crate::weights::SaeWeights;

/// A dictionary's interface, whatever its architecture.
pub trait Dictionary {
    fn d_in(&self) -> usize;
    fn d_sae(&self) -> usize;
    /// The SAELens name of the architecture (`standard`, `topk`, `jumprelu`, `gated`).
    fn architecture(&self) -> &'static str;
    fn metadata(&self) -> &Metadata;
    /// Features of a row-major `[rows, d_in]` batch.
    fn encode(&self, x: &[f32]) -> Result<SparseFeatures>;
    /// Reconstructions `[rows, d_in]` of features, in the input's units (a transcoder's
    /// skip connection, which reads the input, is added by `forward` only).
    fn decode(&self, f: &SparseFeatures) -> Result<Vec<f32>>;
    fn forward(&self, x: &[f32]) -> Result<Forward> {
        let features = self.encode(x)?;
        let reconstruction = self.decode(&features)?;
        Ok(Forward {
            features,
            reconstruction,
        })
    }
    /// Writes a SAELens-format folder (created if missing; files replaced atomically).
    fn save(&self, dir: &Path) -> Result<()>;
    fn load(dir: &Path) -> Result<Self>
    where
        Self: Sized;
}

#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    pub features: SparseFeatures,
    pub reconstruction: Vec<f32>,
}

/// How pre-activations become features.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// `relu(pre)` (SAELens `standard`).
    Relu,
    /// The k largest of `relu(pre)` per row.
    TopK { k: usize },
    /// `pre · 1[pre > threshold_j]` (also how a BatchTopK dictionary runs after training).
    JumpRelu { threshold: Vec<f32> },
    /// Gated (Rajamanoharan et al. 2024): `b_enc` is the gate bias; a latent fires where
    /// `pre > 0` with magnitude `relu(exp(r_mag)·(pre − b_enc) + b_mag)`, i.e. the magnitude
    /// path reads the gate's encoder direction rescaled by `exp(r_mag)`.
    Gated { r_mag: Vec<f32>, b_mag: Vec<f32> },
}

impl Activation {
    pub fn saelens_name(&self) -> &'static str {
        match self {
            Activation::Relu => "standard",
            Activation::TopK { .. } => "topk",
            Activation::JumpRelu { .. } => "jumprelu",
            Activation::Gated { .. } => "gated",
        }
    }
}

/// The SAELens version whose file layout saelab writes. SAELens takes a `metadata` without
/// `sae_lens_version` (or one below 6) for a v5 file and converts it, so it must be there.
pub const SAELENS_FORMAT_VERSION: &str = "6.18.0";

/// The metadata key holding a Matryoshka dictionary's nested prefix widths.
pub const MATRYOSHKA_WIDTHS_KEY: &str = "matryoshka_widths";

/// Where the dictionary's training activations came from (SAELens's `metadata`). Keys this
/// struct does not name are kept in `extra` and written back unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub sae_lens_version: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub hook_name: Option<String>,
    #[serde(default)]
    pub context_size: Option<u64>,
    #[serde(default)]
    pub prepend_bos: Option<bool>,
    #[serde(default)]
    pub dataset_path: Option<String>,
    #[serde(default)]
    pub exclude_special_tokens: Option<bool>,
    /// A transcoder's output hook: it reads `hook_name` and predicts this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_name_out: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            sae_lens_version: Some(SAELENS_FORMAT_VERSION.to_string()),
            model_name: None,
            hook_name: None,
            context_size: None,
            prepend_bos: None,
            dataset_path: None,
            exclude_special_tokens: None,
            hook_name_out: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// What makes a dictionary a transcoder: it encodes the activation at `metadata.hook_name`
/// and predicts the one at `metadata.hook_name_out` (of the same width), as
/// `ŷ = f W_dec + b_dec (+ W_skip x)`; `b_dec` is an output bias, never applied to the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcoder {
    /// The skip connection `W_skip [d_in, d_in]`, row-major as SAELens and sparsify store it
    /// (output × input): `ŷ += x W_skipᵀ`.
    pub skip: Option<Vec<f32>>,
}

/// A sparse autoencoder: `f = act((s·x − b_dec) W_enc + b_enc)`, `x̂ = (f W_dec + b_dec) / s`
/// with `s` the input scale fixed in training (1 when inputs were not normalised); or a
/// transcoder (`transcoder` set, `s` = 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Sae {
    pub weights: SaeWeights,
    pub activation: Activation,
    pub apply_b_dec_to_input: bool,
    /// Inputs are multiplied by this before encoding and reconstructions divided by it, so
    /// the dictionary works in the activations' own units. Folded into the weights on save.
    pub input_scale: f32,
    pub metadata: Metadata,
    /// log10 of each latent's firing frequency (+1e-10), as SAELens's `sparsity.safetensors`.
    pub log_density: Option<Vec<f32>>,
    pub transcoder: Option<Transcoder>,
}

impl Sae {
    pub fn new(weights: SaeWeights, activation: Activation) -> Result<Self> {
        let sae = Sae {
            weights,
            activation,
            apply_b_dec_to_input: true,
            input_scale: 1.0,
            metadata: Metadata::default(),
            log_density: None,
            transcoder: None,
        };
        sae.check()?;
        Ok(sae)
    }

    /// A dictionary that reconstructs every input exactly: 2·d_in ReLU latents reading and
    /// writing ±e_i, so x̂ = relu(x) − relu(−x) = x bit for bit. Splicing it into a model
    /// must change nothing, which makes it the sanity check of an evaluation.
    pub fn identity(d_in: usize) -> Result<Self> {
        let d = d_in;
        let mut w = SaeWeights::zeros(d, 2 * d);
        for i in 0..d {
            w.w_enc_t[i * d + i] = 1.0;
            w.w_enc_t[(d + i) * d + i] = -1.0;
            w.w_dec[i * d + i] = 1.0;
            w.w_dec[(d + i) * d + i] = -1.0;
        }
        Sae::new(w, Activation::Relu)
    }

    /// Checks shapes and values that the type alone cannot.
    pub fn check(&self) -> Result<()> {
        let w = &self.weights;
        if w.d_in == 0 {
            return Err(SaeError::config("d_in", "must be at least 1"));
        }
        if w.d_sae == 0 {
            return Err(SaeError::config("d_sae", "must be at least 1"));
        }
        let matrix = w.d_in.checked_mul(w.d_sae).ok_or_else(|| {
            SaeError::config(
                "d_sae",
                format!("d_in × d_sae = {} × {} overflows", w.d_in, w.d_sae),
            )
        })?;
        let sizes = [
            ("W_enc", w.w_enc_t.len(), matrix),
            ("b_enc", w.b_enc.len(), w.d_sae),
            ("W_dec", w.w_dec.len(), matrix),
            ("b_dec", w.b_dec.len(), w.d_in),
        ];
        for (name, got, want) in sizes {
            if got != want {
                return Err(SaeError::config(
                    name,
                    format!("holds {got} values, expected {want}"),
                ));
            }
        }
        match &self.activation {
            Activation::TopK { k } if *k == 0 || *k > w.d_sae => {
                return Err(SaeError::config(
                    "k",
                    format!("= {k} must be in 1..=d_sae ({})", w.d_sae),
                ))
            }
            Activation::JumpRelu { threshold } if threshold.len() != w.d_sae => {
                return Err(SaeError::config(
                    "threshold",
                    format!(
                        "holds {} values, expected d_sae = {}",
                        threshold.len(),
                        w.d_sae
                    ),
                ))
            }
            Activation::Gated { r_mag, b_mag } => {
                for (name, v) in [("r_mag", r_mag), ("b_mag", b_mag)] {
                    if v.len() != w.d_sae {
                        return Err(SaeError::config(
                            name,
                            format!("holds {} values, expected d_sae = {}", v.len(), w.d_sae),
                        ));
                    }
                }
            }
            _ => {}
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return Err(SaeError::config(
                "input_scale",
                format!("= {} must be positive", self.input_scale),
            ));
        }
        if let Some(t) = &self.transcoder {
            self.check_transcoder(t)?;
        }
        self.check_finite()
    }

    /// A NaN or infinity in any weight would give plausible-looking numbers downstream (NaN
    /// metrics written as `null`): refused, naming the tensor and the first bad entry.
    fn check_finite(&self) -> Result<()> {
        let w = &self.weights;
        let mut tensors: Vec<(&str, &[f32])> = vec![
            ("W_enc", &w.w_enc_t),
            ("b_enc", &w.b_enc),
            ("W_dec", &w.w_dec),
            ("b_dec", &w.b_dec),
        ];
        match &self.activation {
            Activation::JumpRelu { threshold } => tensors.push(("threshold", threshold)),
            Activation::Gated { r_mag, b_mag } => {
                tensors.push(("r_mag", r_mag));
                tensors.push(("b_mag", b_mag));
            }
            _ => {}
        }
        if let Some(skip) = self.transcoder.as_ref().and_then(|t| t.skip.as_ref()) {
            tensors.push(("W_skip", skip));
        }
        for (name, values) in tensors {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                let count = values.iter().filter(|v| !v.is_finite()).count();
                return Err(SaeError::config(
                    name,
                    format!(
                        "holds {count} non-finite values (the first, {}, at index {i}): the \
                         dictionary is broken",
                        values[i]
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_transcoder(&self, t: &Transcoder) -> Result<()> {
        let d = self.weights.d_in;
        if self.apply_b_dec_to_input {
            return Err(SaeError::config(
                "apply_b_dec_to_input",
                "must be false for a transcoder: b_dec is its output bias",
            ));
        }
        if self.input_scale != 1.0 {
            return Err(SaeError::config(
                "input_scale",
                "must be 1 for a transcoder (its scales are folded into the weights)",
            ));
        }
        if matches!(self.activation, Activation::Gated { .. }) {
            return Err(SaeError::config(
                "architecture",
                "gated transcoders are not supported (no peer stores them)",
            ));
        }
        if let Some(skip) = &t.skip {
            if Some(skip.len()) != d.checked_mul(d) {
                return Err(SaeError::config(
                    "W_skip",
                    format!(
                        "holds {} values, expected d_in × d_in = {d} × {d}",
                        skip.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The skip connection's term `x W_skipᵀ` added to `out` (a transcoder with one).
    fn add_skip(&self, x: &[f32], out: &mut [f32]) {
        if let Some(skip) = self.transcoder.as_ref().and_then(|t| t.skip.as_ref()) {
            let d = self.weights.d_in;
            let rows = x.len() / d;
            crate::kernels::gemm::matmul_nt(out, x, skip, rows, d, d, true);
        }
    }

    /// `forward` with the latents marked in `removed` (one mark per latent) switched off:
    /// their activations are set to 0 after the activation function, so that a TopK
    /// dictionary does not pick another latent in their place. This is pruning a trained
    /// dictionary, not a dictionary trained without those latents.
    pub fn forward_pruned(&self, x: &[f32], removed: &[bool]) -> Result<Forward> {
        if removed.len() != self.weights.d_sae {
            return Err(SaeError::Input(format!(
                "{} pruning marks for {} latents",
                removed.len(),
                self.weights.d_sae
            )));
        }
        let features = self.encode(x)?.without(removed);
        let mut reconstruction = self.decode(&features)?;
        self.add_skip(x, &mut reconstruction);
        Ok(Forward {
            features,
            reconstruction,
        })
    }

    /// Pre-activations of a batch (in training units, after the input scale).
    pub fn pre_activations(&self, x: &[f32]) -> Result<Vec<f32>> {
        self.weights.batch_rows(x)?;
        let mut xs = self.weights.centered(x, false);
        if self.input_scale != 1.0 {
            xs.iter_mut().for_each(|v| *v *= self.input_scale);
        }
        let xc = self.weights.centered(&xs, self.apply_b_dec_to_input);
        let mut pre = Vec::new();
        self.weights.pre_activations(&xc, &mut pre);
        Ok(pre)
    }
}

impl Dictionary for Sae {
    fn d_in(&self) -> usize {
        self.weights.d_in
    }

    fn d_sae(&self) -> usize {
        self.weights.d_sae
    }

    fn architecture(&self) -> &'static str {
        let skip = self.transcoder.as_ref().map(|t| t.skip.is_some());
        match (&self.activation, skip) {
            (_, None) => self.activation.saelens_name(),
            (Activation::Relu, Some(false)) => "transcoder",
            (Activation::Relu, Some(true)) => "skip_transcoder",
            (Activation::JumpRelu { .. }, Some(false)) => "jumprelu_transcoder",
            (Activation::JumpRelu { .. }, Some(true)) => "jumprelu_skip_transcoder",
            (Activation::TopK { .. }, Some(false)) => "topk_transcoder",
            (Activation::TopK { .. }, Some(true)) => "topk_skip_transcoder",
            (Activation::Gated { .. }, Some(_)) => "gated_transcoder",
        }
    }

    /// With a transcoder's skip connection, which needs the input as well as the features.
    fn forward(&self, x: &[f32]) -> Result<Forward> {
        let features = self.encode(x)?;
        let mut reconstruction = self.decode(&features)?;
        self.add_skip(x, &mut reconstruction);
        Ok(Forward {
            features,
            reconstruction,
        })
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn encode(&self, x: &[f32]) -> Result<SparseFeatures> {
        let pre = self.pre_activations(x)?;
        let rows = x.len() / self.weights.d_in;
        let d_sae = self.weights.d_sae;
        Ok(match &self.activation {
            Activation::Relu => select::above_threshold(&pre, rows, d_sae, None),
            Activation::TopK { k } => select::top_k_rows(&pre, rows, d_sae, *k, None),
            Activation::JumpRelu { threshold } => {
                select::above_threshold(&pre, rows, d_sae, Some(threshold))
            }
            Activation::Gated { r_mag, b_mag } => {
                let mag_scale: Vec<f32> = r_mag.iter().map(|r| r.exp()).collect();
                select::gated(&pre, rows, &self.weights.b_enc, &mag_scale, b_mag)
            }
        })
    }

    fn decode(&self, f: &SparseFeatures) -> Result<Vec<f32>> {
        let w = &self.weights;
        if f.d_sae != w.d_sae {
            return Err(SaeError::Input(format!(
                "features have {} latents, the dictionary {}",
                f.d_sae, w.d_sae
            )));
        }
        if let Some(&j) = f.idx.iter().find(|&&j| j as usize >= w.d_sae) {
            return Err(SaeError::Input(format!(
                "feature index {j} is out of range (d_sae = {})",
                w.d_sae
            )));
        }
        let mut out = vec![0.0f32; f.rows * w.d_in];
        sparse::decode(f, None, &w.w_dec, w.d_in, Some(&w.b_dec), &mut out);
        if self.input_scale != 1.0 {
            let inv = 1.0 / self.input_scale;
            out.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(out)
    }

    /// A SAELens folder; a TopK transcoder, which SAELens cannot hold, in sparsify's layout.
    fn save(&self, dir: &Path) -> Result<()> {
        match (&self.activation, &self.transcoder) {
            (Activation::TopK { .. }, Some(_)) => crate::format::sparsify::save(self, dir),
            _ => crate::format::saelens::save(self, dir),
        }
    }

    fn load(dir: &Path) -> Result<Self> {
        crate::format::saelens::load(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruned_latents_are_zeroed_after_the_activation_not_replaced() {
        // Latent j reads and writes e_j; TopK-1 picks the largest coordinate.
        let mut w = SaeWeights::zeros(3, 3);
        for j in 0..3 {
            w.w_enc_t[j * 3 + j] = 1.0;
            w.w_dec[j * 3 + j] = 1.0;
        }
        let sae = Sae::new(w, Activation::TopK { k: 1 }).unwrap();
        let x = [3.0, 2.0, 1.0, 0.5, 4.0, 1.0];
        let pruned = sae.forward_pruned(&x, &[true, false, false]).unwrap();
        // Row 0: latent 0 won and was removed; latent 1 does not take its place.
        assert_eq!(pruned.features.row(0).0, &[] as &[u32]);
        assert_eq!(pruned.features.row(1), (&[1u32][..], &[4.0f32][..]));
        assert_eq!(pruned.reconstruction, vec![0.0, 0.0, 0.0, 0.0, 4.0, 0.0]);
        let none = sae.forward_pruned(&x, &[false; 3]).unwrap();
        assert_eq!(none, sae.forward(&x).unwrap());
        assert!(sae.forward_pruned(&x, &[true]).is_err());
    }
}
