//! SAELens's temporal SAEs (architecture `temporal`, arXiv 2511.01836), read from their
//! folders and run on whole windows exactly as SAELens runs them. Each position's activation
//! is split into a part predicted from earlier positions and a novel part:
//!
//! ```text
//! x ← x·s − b_dec (b_dec only with apply_b_dec_to_input); r = x; z_pred = 0
//! per attention layer:
//!     z_in  = relu(λ r W_enc)                         λ = 1 / (4 d_in)
//!     z_ctx = z_in shifted one position later (zeros first)
//!     p     = relu(causal attention: queries from z_in, keys and values from z_ctx)
//!     D     = p W_dec;  a = ⟨D, r⟩ / (‖D‖ + 1e-6)²    (per position)
//!     z_pred += a p;  r −= a D
//! z_novel = relu(λ r W_enc), its k largest kept (TopK) or all (ReLU)
//! x̂ = ((z_novel + z_pred) W_dec + b_dec) / s         (b_dec unless tied without applying it)
//! ```
//!
//! W_enc is W_decᵀ when the weights are tied. The attention has its own bottleneck
//! (`d_sae / bottleneck_factor` wide for queries and keys, `d_sae` for values), `n_heads`
//! heads, biases on every projection, and the usual 1/√(head width) scale.
//!
//! [`TemporalSae::save`] writes the folder SAELens's `SAE.load_from_disk` reads back as a
//! `TemporalSAE` (`reference/temporal_saelens_roundtrip.py` checks it does, and runs it).

use std::path::Path;

use serde_json::{json, Value};

use super::atomic::write_atomic;
use super::saelens::{read_cfg, Cfg, CFG_FILE, WEIGHTS_FILE};
use super::tensors::{to_bytes, TensorFile};
use crate::dictionary::Metadata;
use crate::error::{Result, SaeError};
use crate::kernels::gemm::{matmul_nn, matmul_nt};
use crate::weights::transpose;

/// One attention layer's projections, PyTorch's `[out, in]` weights.
#[derive(Clone, Debug)]
pub struct TemporalAttention {
    pub k_w: Vec<f32>,
    pub k_b: Vec<f32>,
    pub q_w: Vec<f32>,
    pub q_b: Vec<f32>,
    pub v_w: Vec<f32>,
    pub v_b: Vec<f32>,
    pub o_w: Vec<f32>,
    pub o_b: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct TemporalSae {
    pub d_in: usize,
    pub d_sae: usize,
    pub n_heads: usize,
    /// Query and key width (`d_sae / bottleneck_factor`).
    pub n_embds: usize,
    /// `[d_sae, d_in]`.
    pub w_dec: Vec<f32>,
    /// `[d_in, d_sae]` (W_decᵀ when tied).
    pub w_enc: Vec<f32>,
    pub b_dec: Vec<f32>,
    pub tied: bool,
    pub apply_b_dec_to_input: bool,
    /// TopK's k for the novel codes; `None`: ReLU.
    pub k: Option<usize>,
    /// `constant_scalar_rescale`'s factor (1 otherwise).
    pub scale: f32,
    pub layers: Vec<TemporalAttention>,
    /// cfg.json's `metadata` (model, hook, SAELens versions), written back unchanged.
    pub metadata: Metadata,
}

/// The SAELens release whose temporal layout saelab writes (and is checked against).
pub const TEMPORAL_SAELENS_VERSION: &str = "6.54.12";

/// Metadata for a temporal SAE saelab made: the SAELens version of the layout, nothing
/// else known yet.
pub fn temporal_metadata() -> Metadata {
    let mut m = Metadata {
        sae_lens_version: Some(TEMPORAL_SAELENS_VERSION.to_string()),
        ..Metadata::default()
    };
    m.extra.insert(
        "sae_lens_training_version".into(),
        json!(TEMPORAL_SAELENS_VERSION),
    );
    m
}

/// One window's codes and reconstruction, row-major per position.
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalOutput {
    /// `[len, d_sae]`: the sparse codes of what is new at each position.
    pub z_novel: Vec<f32>,
    /// `[len, d_sae]`: the codes predicted from earlier positions.
    pub z_pred: Vec<f32>,
    /// `[len, d_in]`.
    pub reconstruction: Vec<f32>,
}

impl TemporalSae {
    /// Reads a SAELens folder whose cfg.json says `"architecture": "temporal"`.
    pub fn load(dir: &Path) -> Result<Self> {
        let (path, obj) = read_cfg(dir)?;
        let cfg = Cfg { path, obj: &obj };
        let architecture = cfg.string("architecture")?;
        if architecture != "temporal" {
            return Err(cfg.field_error(
                "architecture",
                format!("= {architecture:?}: not a temporal SAE"),
            ));
        }
        let d_in = cfg.positive("d_in")?;
        let d_sae = cfg.positive("d_sae")?;
        let n_heads = cfg.positive("n_heads")?;
        let n_layers = cfg.positive("n_attn_layers")?;
        let bottleneck = cfg.positive("bottleneck_factor")?;
        if !d_sae.is_multiple_of(bottleneck * n_heads) {
            return Err(cfg.field_error(
                "bottleneck_factor",
                format!(
                    "× n_heads = {} does not divide d_sae = {d_sae}",
                    bottleneck * n_heads
                ),
            ));
        }
        let tied = cfg.optional_bool("tied_weights")?.unwrap_or(true);
        let apply_b_dec_to_input = cfg.optional_bool("apply_b_dec_to_input")?.unwrap_or(true);
        let k = match cfg.obj.get("sae_diff_type").and_then(Value::as_str) {
            Some("relu") => None,
            Some("topk") | None => match cfg.obj.get("kval_topk") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(k) if k > 0 && (k as usize) <= d_sae => Some(k as usize),
                    _ => {
                        return Err(
                            cfg.field_error("kval_topk", format!("= {v} must be in 1..=d_sae"))
                        )
                    }
                },
            },
            Some(other) => {
                return Err(cfg.field_error(
                    "sae_diff_type",
                    format!("= {other:?} (expected \"topk\" or \"relu\")"),
                ))
            }
        };
        let scale = match cfg.obj.get("normalize_activations").and_then(Value::as_str) {
            None | Some("none") => 1.0,
            Some("constant_scalar_rescale") => cfg
                .obj
                .get("activation_normalization_factor")
                .and_then(Value::as_f64)
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| {
                    cfg.field_error(
                        "activation_normalization_factor",
                        "must be a positive number",
                    )
                })? as f32,
            Some(other) => {
                return Err(cfg.field_error(
                    "normalize_activations",
                    format!("= {other:?} is not supported for temporal SAEs here"),
                ))
            }
        };

        let metadata = match cfg.obj.get("metadata") {
            None | Some(Value::Null) => temporal_metadata(),
            Some(_) => cfg.metadata()?,
        };

        let file = TensorFile::open(&dir.join(WEIGHTS_FILE))?;
        let w_dec = file.read("W_dec", &[d_sae, d_in])?;
        let w_enc = match tied {
            true => transpose(&w_dec, d_sae, d_in),
            false => file.read("W_enc", &[d_in, d_sae])?,
        };
        let b_dec = file.read("b_dec", &[d_in])?;
        let n_embds = d_sae / bottleneck;
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let t =
                |name: &str, shape: &[usize]| file.read(&format!("attn_layers.{i}.{name}"), shape);
            layers.push(TemporalAttention {
                k_w: t("k_ctx.weight", &[n_embds, d_sae])?,
                k_b: t("k_ctx.bias", &[n_embds])?,
                q_w: t("q_target.weight", &[n_embds, d_sae])?,
                q_b: t("q_target.bias", &[n_embds])?,
                v_w: t("v_ctx.weight", &[d_sae, d_sae])?,
                v_b: t("v_ctx.bias", &[d_sae])?,
                o_w: t("c_proj.weight", &[d_sae, d_sae])?,
                o_b: t("c_proj.bias", &[d_sae])?,
            });
        }
        Ok(TemporalSae {
            d_in,
            d_sae,
            n_heads,
            n_embds,
            w_dec,
            w_enc,
            b_dec,
            tied,
            apply_b_dec_to_input,
            k,
            scale,
            layers,
            metadata,
        })
    }

    /// `d_sae / n_embds`, cfg.json's `bottleneck_factor`.
    pub fn bottleneck_factor(&self) -> usize {
        self.d_sae / self.n_embds.max(1)
    }

    /// Checks that the fields describe one SAE SAELens can build: widths that divide as its
    /// attention needs, every tensor of its shape, finite values, a positive scale, W_enc
    /// equal to W_decᵀ when tied (only W_dec is saved then). Errors name the field.
    pub fn check(&self) -> Result<()> {
        let (d, f, e, h) = (self.d_in, self.d_sae, self.n_embds, self.n_heads);
        for (field, v) in [("d_in", d), ("d_sae", f), ("n_heads", h), ("n_embds", e)] {
            if v == 0 {
                return Err(SaeError::config(field, "must be positive"));
            }
        }
        if !f.is_multiple_of(e) || !e.is_multiple_of(h) {
            return Err(SaeError::config(
                "n_embds",
                format!(
                    "= {e} must divide d_sae = {f} (bottleneck_factor = d_sae / n_embds) and be \
                     a multiple of n_heads = {h}"
                ),
            ));
        }
        if self.layers.is_empty() {
            return Err(SaeError::config(
                "layers",
                "is empty: a temporal SAE has at least one attention layer",
            ));
        }
        if let Some(k) = self.k {
            if k == 0 || k > f {
                return Err(SaeError::config(
                    "k",
                    format!("= {k} must be in 1..=d_sae = {f}"),
                ));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(SaeError::config(
                "scale",
                format!("= {} must be a positive number", self.scale),
            ));
        }
        let mut tensors: Vec<(&'static str, &[f32], usize)> = vec![
            ("w_dec", &self.w_dec, f * d),
            ("w_enc", &self.w_enc, d * f),
            ("b_dec", &self.b_dec, d),
        ];
        for l in &self.layers {
            tensors.extend([
                ("layers.k_w", &l.k_w[..], e * f),
                ("layers.k_b", &l.k_b[..], e),
                ("layers.q_w", &l.q_w[..], e * f),
                ("layers.q_b", &l.q_b[..], e),
                ("layers.v_w", &l.v_w[..], f * f),
                ("layers.v_b", &l.v_b[..], f),
                ("layers.o_w", &l.o_w[..], f * f),
                ("layers.o_b", &l.o_b[..], f),
            ]);
        }
        for (field, values, len) in tensors {
            if values.len() != len {
                return Err(SaeError::config(
                    field,
                    format!("has {} values, expected {len}", values.len()),
                ));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(SaeError::config(field, "holds a non-finite value"));
            }
        }
        if self.tied && self.w_enc != transpose(&self.w_dec, f, d) {
            return Err(SaeError::config(
                "w_enc",
                "differs from w_decᵀ although the weights are tied (only W_dec is saved)",
            ));
        }
        Ok(())
    }

    /// Writes the SAELens folder (`cfg.json`, `sae_weights.safetensors`) that
    /// `SAE.load_from_disk` reads as this `TemporalSAE`: W_enc only when untied (SAELens's
    /// tied model has no such parameter and refuses extra tensors), the scale as
    /// `constant_scalar_rescale` when it is not 1. Each file is written whole and renamed
    /// into place, cfg.json last.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.check()?;
        let (d, f, e) = (self.d_in, self.d_sae, self.n_embds);
        std::fs::create_dir_all(dir).map_err(|err| SaeError::io(dir, err))?;
        let names: Vec<[String; 8]> = (0..self.layers.len())
            .map(|i| {
                ["k_ctx", "q_target", "v_ctx", "c_proj"]
                    .into_iter()
                    .flat_map(|p| ["weight", "bias"].map(|w| format!("attn_layers.{i}.{p}.{w}")))
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("four projections of two tensors each")
            })
            .collect();
        let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
            ("W_dec", vec![f, d], &self.w_dec),
            ("b_dec", vec![d], &self.b_dec),
        ];
        if !self.tied {
            tensors.push(("W_enc", vec![d, f], &self.w_enc));
        }
        for (l, n) in self.layers.iter().zip(&names) {
            tensors.extend([
                (n[0].as_str(), vec![e, f], &l.k_w[..]),
                (n[1].as_str(), vec![e], &l.k_b[..]),
                (n[2].as_str(), vec![e, f], &l.q_w[..]),
                (n[3].as_str(), vec![e], &l.q_b[..]),
                (n[4].as_str(), vec![f, f], &l.v_w[..]),
                (n[5].as_str(), vec![f], &l.v_b[..]),
                (n[6].as_str(), vec![f, f], &l.o_w[..]),
                (n[7].as_str(), vec![f], &l.o_b[..]),
            ]);
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        write_atomic(&weights_path, &to_bytes(&weights_path, &tensors)?)?;

        let cfg_path = dir.join(CFG_FILE);
        let text =
            serde_json::to_string_pretty(&self.cfg_json()).map_err(|cause| SaeError::Json {
                path: cfg_path.clone(),
                cause,
            })?;
        // cfg.json last: a folder with a cfg.json has its weights.
        write_atomic(&cfg_path, text.as_bytes())
    }

    /// The fields SAELens's `TemporalSAEConfig.to_dict` writes, with the same values.
    fn cfg_json(&self) -> Value {
        let rescaled = self.scale != 1.0;
        // The shortest decimal that reads back as this f32 (0.1, not 0.10000000149011612):
        // SAELens multiplies float32 inputs by it, rounding it to the same f32.
        let factor: f64 = self.scale.to_string().parse().unwrap_or(self.scale as f64);
        json!({
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "normalize_activations": if rescaled { "constant_scalar_rescale" } else { "none" },
            "reshape_activations": "none",
            "metadata": serde_json::to_value(&self.metadata).unwrap_or(Value::Null),
            "n_heads": self.n_heads,
            "n_attn_layers": self.layers.len(),
            "bottleneck_factor": self.bottleneck_factor(),
            "sae_diff_type": if self.k.is_some() { "topk" } else { "relu" },
            "kval_topk": self.k,
            "tied_weights": self.tied,
            "activation_normalization_factor": factor,
            "architecture": "temporal",
        })
    }

    /// Runs one window `x` (`[len, d_in]`, positions in order).
    pub fn forward(&self, x: &[f32]) -> Result<TemporalOutput> {
        let (d, f) = (self.d_in, self.d_sae);
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(SaeError::Input(format!(
                "a window of {} values is not whole rows of d_in = {d}",
                x.len()
            )));
        }
        let len = x.len() / d;
        let lam = 1.0 / (4.0 * d as f32);
        let mut r: Vec<f32> = x.iter().map(|v| v * self.scale).collect();
        if self.apply_b_dec_to_input {
            for row in r.chunks_mut(d) {
                row.iter_mut().zip(&self.b_dec).for_each(|(v, b)| *v -= b);
            }
        }
        let encode = |r: &[f32]| -> Vec<f32> {
            let scaled: Vec<f32> = r.iter().map(|v| v * lam).collect();
            let mut z = vec![0.0f32; len * f];
            matmul_nn(&mut z, &scaled, &self.w_enc, len, d, f, false);
            z.iter_mut().for_each(|v| *v = v.max(0.0));
            z
        };
        let mut z_pred = vec![0.0f32; len * f];
        for layer in &self.layers {
            let z_in = encode(&r);
            let p = self.attend(layer, &z_in, len);
            let mut dz = vec![0.0f32; len * d];
            matmul_nn(&mut dz, &p, &self.w_dec, len, f, d, false);
            for t in 0..len {
                let (dt, rt) = (&dz[t * d..(t + 1) * d], &mut r[t * d..(t + 1) * d]);
                let n = dt.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-6;
                let a = dt.iter().zip(rt.iter()).map(|(a, b)| a * b).sum::<f32>() / (n * n);
                z_pred[t * f..(t + 1) * f]
                    .iter_mut()
                    .zip(&p[t * f..(t + 1) * f])
                    .for_each(|(z, pv)| *z += a * pv);
                rt.iter_mut().zip(dt).for_each(|(rv, dv)| *rv -= a * dv);
            }
        }
        let mut z_novel = encode(&r);
        if let Some(k) = self.k {
            for row in z_novel.chunks_mut(f) {
                keep_top_k(row, k);
            }
        }
        let total: Vec<f32> = z_novel.iter().zip(&z_pred).map(|(a, b)| a + b).collect();
        let mut reconstruction = vec![0.0f32; len * d];
        matmul_nn(&mut reconstruction, &total, &self.w_dec, len, f, d, false);
        let add_b_dec = !self.tied || self.apply_b_dec_to_input;
        for row in reconstruction.chunks_mut(d) {
            for (v, b) in row.iter_mut().zip(&self.b_dec) {
                if add_b_dec {
                    *v += b;
                }
                *v /= self.scale;
            }
        }
        Ok(TemporalOutput {
            z_novel,
            z_pred,
            reconstruction,
        })
    }

    /// relu(c_proj(causal attention)): queries from `z_in` at t, keys and values from
    /// `z_in` at t − 1 (a zero row before the first position), positions ≤ t.
    fn attend(&self, l: &TemporalAttention, z_in: &[f32], len: usize) -> Vec<f32> {
        let (f, e, h) = (self.d_sae, self.n_embds, self.n_heads);
        let mut ctx = vec![0.0f32; len * f];
        ctx[f..].copy_from_slice(&z_in[..(len - 1) * f]);
        let project = |input: &[f32], w: &[f32], b: &[f32], out_dim: usize| -> Vec<f32> {
            let mut out = vec![0.0f32; len * out_dim];
            matmul_nt(&mut out, input, w, len, f, out_dim, false);
            for row in out.chunks_mut(out_dim) {
                row.iter_mut().zip(b).for_each(|(v, bv)| *v += bv);
            }
            out
        };
        let k = project(&ctx, &l.k_w, &l.k_b, e);
        let v = project(&ctx, &l.v_w, &l.v_b, f);
        let q = project(z_in, &l.q_w, &l.q_b, e);
        let (hk, hv) = (e / h, f / h);
        let scale = 1.0 / (hk as f32).sqrt();
        let mut heads = vec![0.0f32; len * f];
        for head in 0..h {
            for t in 0..len {
                let qt = &q[t * e + head * hk..t * e + (head + 1) * hk];
                let scores: Vec<f32> = (0..=t)
                    .map(|s| {
                        let ks = &k[s * e + head * hk..s * e + (head + 1) * hk];
                        qt.iter().zip(ks).map(|(a, b)| a * b).sum::<f32>() * scale
                    })
                    .collect();
                let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let w: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
                let total: f32 = w.iter().sum();
                let out = &mut heads[t * f + head * hv..t * f + (head + 1) * hv];
                for (s, ws) in w.iter().enumerate() {
                    let vs = &v[s * f + head * hv..s * f + (head + 1) * hv];
                    out.iter_mut()
                        .zip(vs)
                        .for_each(|(o, x)| *o += ws / total * x);
                }
            }
        }
        let mut p = project(&heads, &l.o_w, &l.o_b, f);
        p.iter_mut().for_each(|v| *v = v.max(0.0));
        p
    }
}

/// Zeroes all but the k largest values of `row` (ties: the lower index kept).
fn keep_top_k(row: &mut [f32], k: usize) {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    for &j in &order[k.min(row.len())..] {
        row[j] = 0.0;
    }
}
