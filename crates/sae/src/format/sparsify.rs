//! sparsify dictionaries (EleutherAI): a folder with `cfg.json` and `sae.safetensors`
//! (PEERS.md §1c).
//!
//! Tensors: `encoder.weight [num_latents, d_in]` (an `nn.Linear`, one row per latent, which is
//! saelab's own encoder layout), `encoder.bias [num_latents]`, `W_dec [num_latents, d_in]`
//! (rows are latents, as saelab's `w_dec`), `b_dec [d_in]`. The forward pass of a sparse
//! autoencoder is `top_k(relu(W_e (x − b_dec) + b_e))`, `x̂ = Σ f_j W_dec[j] + b_dec`: a TopK
//! [`Sae`] that applies `b_dec` to its input. Transcoders, skip connections and the
//! `groupmax` activation have no saelab equivalent and are refused by name.

use std::path::Path;

use super::json_cfg::{read_json, JsonCfg};
use super::tensors::TensorFile;
use crate::dictionary::{Activation, Sae};
use crate::error::Result;
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
    for (field, what) in [
        ("transcode", "transcoders"),
        ("skip_connection", "skip connections"),
        ("signed", "signed TopK"),
    ] {
        if cfg.optional_bool(field)? == Some(true) {
            return Err(cfg.error(
                field,
                format!("= true is not supported: saelab reads sparse autoencoders, not {what}"),
            ));
        }
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
    if file.contains("W_skip") {
        return Err(cfg.error(
            "skip_connection",
            format!("is not set, but {WEIGHTS_FILE} holds a skip connection `W_skip`, which saelab does not support"),
        ));
    }

    Sae::new(weights, Activation::TopK { k })
}
