//! sparsify dictionaries (EleutherAI): a folder with `cfg.json` and `sae.safetensors`
//! (PEERS.md §1c).
//!
//! Tensors: `encoder.weight [num_latents, d_in]` (an `nn.Linear`, one row per latent, which is
//! saelab's own encoder layout), `encoder.bias [num_latents]`, `W_dec [num_latents, d_in]`
//! (rows are latents, as saelab's `w_dec`), `b_dec [d_in]`. The forward pass of a sparse
//! autoencoder is `top_k(relu(W_e (x − b_dec) + b_e))`, `x̂ = Σ f_j W_dec[j] + b_dec`: a TopK
//! [`Sae`] that applies `b_dec` to its input. A transcoder (`transcode: true`) does not: it
//! encodes its input as it is and predicts another activation of the same width, plus
//! `x W_skipᵀ` with `W_skip [d_in, d_in]` when `skip_connection` is set (a skip connection
//! on a sparse autoencoder is refused by name, as are the `groupmax` activation and signed
//! TopK). saelab writes TopK transcoders here, the one peer layout that holds them.

use std::path::Path;

use serde_json::json;

use super::atomic::write_atomic;
use super::json_cfg::{read_json, JsonCfg};
use super::tensors::{to_bytes, TensorFile};
use crate::dictionary::{Activation, Sae, Transcoder};
use crate::error::{Result, SaeError};
use crate::weights::SaeWeights;

pub const CFG_FILE: &str = "cfg.json";
pub const WEIGHTS_FILE: &str = "sae.safetensors";

pub fn load(dir: &Path) -> Result<Sae> {
    let cfg_path = dir.join(CFG_FILE);
    let value = read_json(&cfg_path)?;
    let cfg = JsonCfg::root(&cfg_path, &value)?;

    let d_in = cfg.positive("d_in")?;
    match cfg.optional_string("activation")? {
        None | Some("topk") => {}
        Some(other) => {
            return Err(cfg.error(
                "activation",
                format!("= {other:?} is not supported (supported: \"topk\")"),
            ))
        }
    }
    if cfg.optional_bool("signed")? == Some(true) {
        return Err(cfg.error(
            "signed",
            "= true is not supported: saelab reads unsigned TopK, not signed TopK",
        ));
    }
    let transcode = cfg.optional_bool("transcode")? == Some(true);
    let skip = cfg.optional_bool("skip_connection")? == Some(true);
    if skip && !transcode {
        return Err(cfg.error(
            "skip_connection",
            "= true is not supported on a sparse autoencoder (only on a transcoder)",
        ));
    }
    // num_latents 0 (the default) means d_in · expansion_factor.
    let d_sae = match cfg.optional_u64("num_latents")? {
        Some(n) if n > 0 => usize::try_from(n)
            .map_err(|_| cfg.error("num_latents", format!("= {n} is too large")))?,
        _ => {
            let e = cfg.optional_positive("expansion_factor")?.ok_or_else(|| {
                cfg.error(
                    "expansion_factor",
                    "is missing, and num_latents is 0 or missing: the width is unknown",
                )
            })?;
            d_in.checked_mul(e)
                .ok_or_else(|| cfg.error("expansion_factor", format!("= {e} is too large")))?
        }
    };
    let k = cfg.positive("k")?;
    if k > d_sae {
        return Err(cfg.error(
            "k",
            format!("= {k} is larger than the number of latents ({d_sae})"),
        ));
    }

    let file = TensorFile::open(&dir.join(WEIGHTS_FILE))?;
    let mut weights = SaeWeights::unfilled(d_in, d_sae);
    weights.w_enc_t = file.read("encoder.weight", &[d_sae, d_in])?;
    weights.b_enc = file.read("encoder.bias", &[d_sae])?;
    weights.w_dec = file.read("W_dec", &[d_sae, d_in])?;
    weights.b_dec = file.read("b_dec", &[d_in])?;
    if file.contains("W_skip") && !skip {
        return Err(cfg.error(
            "skip_connection",
            format!("is not set, but {WEIGHTS_FILE} holds a skip connection `W_skip`"),
        ));
    }
    let mut sae = Sae::new(weights, Activation::TopK { k })?;
    // saelab writes where the dictionary was trained (sparsify ignores the key).
    if cfg.contains("metadata") {
        sae.metadata = serde_json::from_value(cfg.get("metadata")?.clone())
            .map_err(|e| cfg.error("metadata", format!("is not valid: {e}")))?;
    }
    if transcode {
        sae.apply_b_dec_to_input = false;
        sae.transcoder = Some(Transcoder {
            skip: match skip {
                true => Some(file.read("W_skip", &[d_in, d_in])?),
                false => None,
            },
        });
        sae.check()?;
    }
    Ok(sae)
}

/// Writes a TopK transcoder as sparsify saves one (`cfg.json` last, each file atomically).
pub fn save(sae: &Sae, dir: &Path) -> Result<()> {
    sae.check()?;
    let (Activation::TopK { k }, Some(transcoder)) = (&sae.activation, &sae.transcoder) else {
        return Err(SaeError::config(
            "architecture",
            "saelab writes sparsify's layout for TopK transcoders only",
        ));
    };
    std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
    let w = &sae.weights;
    let (d_in, d_sae) = (w.d_in, w.d_sae);
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("encoder.weight", vec![d_sae, d_in], &w.w_enc_t),
        ("encoder.bias", vec![d_sae], &w.b_enc),
        ("W_dec", vec![d_sae, d_in], &w.w_dec),
        ("b_dec", vec![d_in], &w.b_dec),
    ];
    if let Some(skip) = &transcoder.skip {
        tensors.push(("W_skip", vec![d_in, d_in], skip));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    write_atomic(&weights_path, &to_bytes(&weights_path, &tensors)?)?;
    let cfg = json!({
        "activation": "topk",
        "expansion_factor": (d_sae / d_in).max(1),
        "normalize_decoder": true,
        "num_latents": d_sae,
        "k": k,
        "multi_topk": false,
        "skip_connection": transcoder.skip.is_some(),
        "transcode": true,
        "d_in": d_in,
        "metadata": serde_json::to_value(&sae.metadata).unwrap_or_default(),
    });
    let cfg_path = dir.join(CFG_FILE);
    let text = serde_json::to_string_pretty(&cfg).map_err(|e| SaeError::Json {
        path: cfg_path.clone(),
        cause: e,
    })?;
    write_atomic(&cfg_path, text.as_bytes())
}
