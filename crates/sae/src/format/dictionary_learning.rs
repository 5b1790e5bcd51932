//! dictionary_learning dictionaries (saprmarks/dictionary_learning): a folder with
//! `config.json` (`{"trainer": {...}, "buffer": {...}}`) and `ae.pt`, a `torch.save`d state
//! dict (or a training backup holding it under `"ae"`). PEERS.md §1b lists the classes.
//!
//! Each class maps onto an [`Sae`] whose encode and decode compute the peer's numbers
//! (`nn.Linear` weights are `[out, in]`, so `encoder.weight` is already one row per latent
//! and `decoder.weight [d_in, d_sae]` is transposed):
//!
//! | `dict_class` | peer forward | saelab |
//! |---|---|---|
//! | `AutoEncoder` | `relu(W_e(x − bias) + b_e)`, `W_d f + bias` | ReLU, `b_dec = bias`, applied to the input |
//! | `AutoEncoderNew` | `relu(W_e x + b_e)`, `W_d f + decoder.bias` | ReLU, `b_dec` not applied to the input |
//! | `JumpReluAutoEncoder` | `relu(pre·1[pre > θ])`, `pre = x W_enc + b_enc` | JumpReLU (θ per latent), `b_dec` not applied to the input |
//! | `AutoEncoderTopK` | top k of `relu(W_e(x − b_dec) + b_e)`, `W_d f + b_dec` | TopK, `k` from the `k` buffer or `trainer.k` |
//! | `BatchTopKSAE` | `relu(pre)·1[relu(pre) > θ]`, one global θ | JumpReLU with θ on every latent |
//! | `MatryoshkaBatchTopKSAE` | as BatchTopK, with `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]` | JumpReLU; `group_sizes` become `metadata.matryoshka_widths` |
//! | `GatedAutoEncoder` | `1[W(x − b_d) + b_gate > 0]·relu(e^{r_mag}·W(x − b_d) + b_mag)`, `W_d f + b_d` | Gated, `b_enc = gate_bias` |
//!
//! saelab's JumpReLU keeps `pre > max(θ, 0)`, which equals both peer forms for any sign of θ
//! (a BatchTopK threshold never set in training, −1, thus runs as a plain ReLU, as it does in
//! the peer).
//!
//! dictionary_learning scales only the biases by its `norm_factor` when it saves, so a saved
//! dictionary already works on raw activations; nothing is rescaled here.

use std::path::Path;

use super::json_cfg::{read_json, JsonCfg};
use super::torch_file::StateDict;
use crate::dictionary::{Activation, Metadata, Sae, MATRYOSHKA_WIDTHS_KEY};
use crate::error::{Result, SaeError};
use crate::weights::{transpose, SaeWeights};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "ae.pt";

const SUPPORTED: &str = "AutoEncoder, AutoEncoderNew, JumpReluAutoEncoder, AutoEncoderTopK, \
                         BatchTopKSAE, MatryoshkaBatchTopKSAE, GatedAutoEncoder";

pub fn load(dir: &Path) -> Result<Sae> {
    let cfg_path = dir.join(CONFIG_FILE);
    let value = read_json(&cfg_path)?;
    let root = JsonCfg::root(&cfg_path, &value)?;
    let trainer = root.child("trainer")?;
    let dict_class = trainer.string("dict_class")?;
    let d_in = trainer.positive("activation_dim")?;
    let d_sae = trainer.positive("dict_size")?;

    let mut state = StateDict::open(&dir.join(WEIGHTS_FILE))?;
    let mut w = SaeWeights::unfilled(d_in, d_sae);
    let mut apply_b_dec_to_input = true;
    let mut matryoshka = None;
    // `nn.Linear` encoder/decoder pair, as AutoEncoder, AutoEncoderNew, the TopK classes and
    // GatedAutoEncoder (whose encoder bias is `gate_bias`).
    let linear = |state: &mut StateDict, w: &mut SaeWeights, bias: &str| -> Result<()> {
        w.w_enc_t = state.read_f32("encoder.weight", &[d_sae, d_in])?;
        w.b_enc = state.read_f32(bias, &[d_sae])?;
        w.w_dec = transpose(
            &state.read_f32("decoder.weight", &[d_in, d_sae])?,
            d_in,
            d_sae,
        );
        Ok(())
    };
    let raw = |state: &mut StateDict, w: &mut SaeWeights| -> Result<()> {
        w.set_w_enc(&state.read_f32("W_enc", &[d_in, d_sae])?);
        w.b_enc = state.read_f32("b_enc", &[d_sae])?;
        w.w_dec = state.read_f32("W_dec", &[d_sae, d_in])?;
        w.b_dec = state.read_f32("b_dec", &[d_in])?;
        Ok(())
    };
    let activation = match dict_class {
        "AutoEncoder" => {
            linear(&mut state, &mut w, "encoder.bias")?;
            w.b_dec = state.read_f32("bias", &[d_in])?;
            Activation::Relu
        }
        "AutoEncoderNew" => {
            linear(&mut state, &mut w, "encoder.bias")?;
            w.b_dec = state.read_f32("decoder.bias", &[d_in])?;
            apply_b_dec_to_input = false;
            Activation::Relu
        }
        "JumpReluAutoEncoder" => {
            raw(&mut state, &mut w)?;
            // An attribute of the module, not saved in the state dict; False by default.
            apply_b_dec_to_input = trainer
                .optional_bool("apply_b_dec_to_input")?
                .unwrap_or(false);
            Activation::JumpRelu {
                threshold: state.read_f32("threshold", &[d_sae])?,
            }
        }
        "AutoEncoderTopK" => {
            linear(&mut state, &mut w, "encoder.bias")?;
            w.b_dec = state.read_f32("b_dec", &[d_in])?;
            Activation::TopK {
                k: topk_k(&mut state, &trainer, d_sae)?,
            }
        }
        "BatchTopKSAE" | "MatryoshkaBatchTopKSAE" => {
            if dict_class == "BatchTopKSAE" {
                linear(&mut state, &mut w, "encoder.bias")?;
                w.b_dec = state.read_f32("b_dec", &[d_in])?;
            } else {
                raw(&mut state, &mut w)?;
            }
            if dict_class == "MatryoshkaBatchTopKSAE" {
                matryoshka = Some(matryoshka_widths(&mut state, d_sae)?);
            }
            let threshold = global_threshold(&mut state)?;
            Activation::JumpRelu {
                threshold: vec![threshold; d_sae],
            }
        }
        "GatedAutoEncoder" => {
            linear(&mut state, &mut w, "gate_bias")?;
            w.b_dec = state.read_f32("decoder_bias", &[d_in])?;
            Activation::Gated {
                r_mag: state.read_f32("r_mag", &[d_sae])?,
                b_mag: state.read_f32("mag_bias", &[d_sae])?,
            }
        }
        other => {
            return Err(trainer.error(
                "dict_class",
                format!("= {other:?} is not supported (supported: {SUPPORTED})"),
            ));
        }
    };

    let context_size = if root.contains("buffer") {
        root.child("buffer")?.optional_u64("ctx_len")?
    } else {
        None
    };
    let mut metadata = Metadata {
        model_name: trainer.optional_string("lm_name")?.map(str::to_string),
        context_size,
        ..Metadata::default()
    };
    if let Some(widths) = matryoshka {
        metadata
            .extra
            .insert(MATRYOSHKA_WIDTHS_KEY.into(), serde_json::json!(widths));
    }
    let sae = Sae {
        weights: w,
        activation,
        apply_b_dec_to_input,
        input_scale: 1.0,
        metadata,
        log_density: None,
        transcoder: None,
    };
    sae.check()?;
    Ok(sae)
}

/// k of an AutoEncoderTopK: its `k` buffer, or `trainer.k` of config.json; both must agree.
fn topk_k(state: &mut StateDict, trainer: &JsonCfg, d_sae: usize) -> Result<usize> {
    let from_file = state.read_int_scalar("k")?;
    let from_cfg = trainer.optional_positive("k")?;
    let path = state.file.path().to_path_buf();
    let k = match (from_file, from_cfg) {
        (Some(f), Some(c)) if f != c as i64 => {
            return Err(trainer.error(
                "k",
                format!(
                    "= {c} disagrees with the `k` buffer ({f}) in {}",
                    path.display()
                ),
            ))
        }
        (_, Some(c)) => c,
        (Some(f), None) => {
            usize::try_from(f)
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| SaeError::Checkpoint {
                    path: path.clone(),
                    message: format!("tensor `k` = {f} must be a positive integer"),
                })?
        }
        (None, None) => {
            return Err(trainer.error(
                "k",
                format!(
                    "is missing, and {} holds no `k` buffer: a TopK dictionary needs k",
                    path.display()
                ),
            ))
        }
    };
    if k > d_sae {
        return Err(trainer.error("k", format!("= {k} is larger than dict_size ({d_sae})")));
    }
    Ok(k)
}

/// The prefix widths of a Matryoshka dictionary from its `group_sizes` buffer: positive
/// sizes summing to `dict_size`.
fn matryoshka_widths(state: &mut StateDict, d_sae: usize) -> Result<Vec<usize>> {
    let path = state.file.path().to_path_buf();
    let bad = |message: String| SaeError::Checkpoint {
        path: path.clone(),
        message,
    };
    let sizes = state.read_int_vec("group_sizes")?.ok_or_else(|| {
        bad("holds no `group_sizes` buffer: a Matryoshka dictionary needs it".into())
    })?;
    let mut widths = Vec::with_capacity(sizes.len());
    let mut total = 0usize;
    for &s in &sizes {
        let s = usize::try_from(s).ok().filter(|&s| s > 0).ok_or_else(|| {
            bad(format!(
                "tensor `group_sizes` = {sizes:?} holds a size below 1"
            ))
        })?;
        total = total.saturating_add(s);
        widths.push(total);
    }
    if total != d_sae {
        return Err(bad(format!(
            "tensor `group_sizes` = {sizes:?} sums to {total}, not dict_size = {d_sae}"
        )));
    }
    Ok(widths)
}

/// The single threshold of a BatchTopK dictionary (a 0-dim float buffer).
fn global_threshold(state: &mut StateDict) -> Result<f32> {
    let t = state.read_f32("threshold", &[])?;
    match t.first() {
        Some(v) if v.is_finite() => Ok(*v),
        _ => Err(SaeError::Checkpoint {
            path: state.file.path().to_path_buf(),
            message: format!("tensor `threshold` = {t:?} is not a finite number"),
        }),
    }
}
