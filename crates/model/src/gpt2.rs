//! GPT-2 from a Hugging Face folder. Its `Conv1D` layers store weights `[in, out]`.

use crate::assemble::norm;
use crate::config::{Family, ModelConfig, NormKind};
use crate::error::Result;
use crate::json_config::JsonConfig;
use crate::linear::Linear;
use crate::transformer::{Block, Transformer};
use crate::weights::WeightSource;

pub fn config_from_hf(c: &JsonConfig) -> Result<ModelConfig> {
    let d_model = c.usize("n_embd")?;
    let n_heads = c.usize("n_head")?;
    let context_length = match c.opt_usize("n_positions")? {
        Some(n) => n,
        None => c.usize("n_ctx")?,
    };
    Ok(ModelConfig {
        family: Family::Gpt2,
        vocab_size: c.usize("vocab_size")?,
        d_model,
        n_layers: c.usize("n_layer")?,
        n_heads,
        n_kv_heads: n_heads,
        d_head: d_model / n_heads.max(1),
        d_mlp: c.opt_usize("n_inner")?.unwrap_or(d_model.saturating_mul(4)),
        context_length,
        norm: NormKind::Layer,
        norm_eps: c.opt_f64("layer_norm_epsilon")?.unwrap_or(1e-5),
        activation: c.activation("activation_function", "gelu_new")?,
        gated_mlp: false,
        rotary_dim: 0,
        rope_theta: 0.0,
        learned_positions: true,
        parallel_residual: false,
        tied_embeddings: true,
        attn_bias: true,
        mlp_bias: true,
    })
}

/// Checkpoints name tensors with or without the `transformer.` prefix.
fn prefix(src: &dyn WeightSource) -> &'static str {
    if src.has("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    }
}

/// A `Conv1D` layer: weight `[in, out]`, bias `[out]`.
fn conv1d(src: &mut dyn WeightSource, name: &str, inp: usize, out: usize) -> Result<Linear> {
    let w = src.tensor_shaped(&format!("{name}.weight"), &[inp, out])?;
    let b = src.tensor_shaped(&format!("{name}.bias"), &[out])?;
    Linear::new(w.t()?.contiguous()?, Some(b))
}

pub fn build(cfg: ModelConfig, src: &mut dyn WeightSource) -> Result<Transformer> {
    let p = prefix(src);
    let d = cfg.d_model;
    let embed = src.tensor_shaped(&format!("{p}wte.weight"), &[cfg.vocab_size, d])?;
    let pos = src.tensor_shaped(&format!("{p}wpe.weight"), &[cfg.context_length, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let h = format!("{p}h.{l}");
        let ln = |src: &mut dyn WeightSource, name: &str| {
            norm(
                src,
                &cfg,
                &format!("{h}.{name}.weight"),
                Some(&format!("{h}.{name}.bias")),
            )
        };
        let qkv = conv1d(src, &format!("{h}.attn.c_attn"), d, 3 * d)?;
        blocks.push(Block {
            ln1: ln(src, "ln_1")?,
            ln2: ln(src, "ln_2")?,
            qkv,
            attn_out: conv1d(src, &format!("{h}.attn.c_proj"), d, d)?,
            mlp_in: conv1d(src, &format!("{h}.mlp.c_fc"), d, cfg.d_mlp)?,
            mlp_out: conv1d(src, &format!("{h}.mlp.c_proj"), cfg.d_mlp, d)?,
        });
    }
    let ln_final = norm(
        src,
        &cfg,
        &format!("{p}ln_f.weight"),
        Some(&format!("{p}ln_f.bias")),
    )?;
    let unembed = Linear::new(embed.clone(), None)?;
    Transformer::new(cfg, embed, Some(pos), blocks, ln_final, unembed)
}
