//! GPT-NeoX (Pythia) from a Hugging Face folder.

use candle_core::Tensor;

use crate::assemble::{linear, norm};
use crate::config::{Family, ModelConfig, NormKind};
use crate::error::Result;
use crate::json_config::JsonConfig;
use crate::linear::Linear;
use crate::transformer::{Block, Transformer};
use crate::weights::WeightSource;

pub fn config_from_hf(c: &JsonConfig) -> Result<ModelConfig> {
    c.reject_present("rope_scaling", "rope scaling is not supported")?;
    let d_model = c.usize("hidden_size")?;
    let n_heads = c.usize("num_attention_heads")?;
    let d_head = d_model / n_heads.max(1);
    let rotary_pct = c.opt_f64("rotary_pct")?.unwrap_or(0.25);
    let theta = match c.opt_f64("rotary_emb_base")? {
        Some(t) => t,
        None => c.opt_f64("rope_theta")?.unwrap_or(10_000.0),
    };
    Ok(ModelConfig {
        family: Family::GptNeox,
        vocab_size: c.usize("vocab_size")?,
        d_model,
        n_layers: c.usize("num_hidden_layers")?,
        n_heads,
        n_kv_heads: n_heads,
        d_head,
        d_mlp: c.usize("intermediate_size")?,
        context_length: c.usize("max_position_embeddings")?,
        norm: NormKind::Layer,
        norm_eps: c.opt_f64("layer_norm_eps")?.unwrap_or(1e-5),
        activation: c.activation("hidden_act", "gelu")?,
        gated_mlp: false,
        rotary_dim: (d_head as f64 * rotary_pct) as usize,
        rope_theta: theta as f32,
        learned_positions: false,
        parallel_residual: c.opt_bool("use_parallel_residual")?.unwrap_or(true),
        tied_embeddings: c.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        attn_bias: c.opt_bool("attention_bias")?.unwrap_or(true),
        mlp_bias: true,
    })
}

/// NeoX interleaves q, k and v per head (`[heads, 3, d_head]` on the output axis);
/// reorder to q for all heads, then k, then v.
fn split_heads_qkv(l: Linear, heads: usize, d_head: usize) -> Result<Linear> {
    let inp = l.weight().dim(1)?;
    let reorder = |t: &Tensor, rest: &[usize]| -> Result<Tensor> {
        let mut shape = vec![heads, 3, d_head];
        shape.extend_from_slice(rest);
        let mut flat = vec![3 * heads * d_head];
        flat.extend_from_slice(rest);
        Ok(t.reshape(shape)?
            .transpose(0, 1)?
            .contiguous()?
            .reshape(flat)?)
    };
    let w = reorder(&l.weight(), &[inp])?;
    let b = match l.bias() {
        Some(b) => Some(reorder(b, &[])?),
        None => None,
    };
    Linear::new(w, b)
}

pub fn build(cfg: ModelConfig, src: &mut dyn WeightSource) -> Result<Transformer> {
    let d = cfg.d_model;
    let embed = src.tensor_shaped("gpt_neox.embed_in.weight", &[cfg.vocab_size, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let p = format!("gpt_neox.layers.{l}");
        let ln = |src: &mut dyn WeightSource, name: &str| {
            norm(
                src,
                &cfg,
                &format!("{p}.{name}.weight"),
                Some(&format!("{p}.{name}.bias")),
            )
        };
        let lin = |src: &mut dyn WeightSource, name: &str, bias: bool, out: usize, inp: usize| {
            let b = bias.then(|| format!("{p}.{name}.bias"));
            linear(src, &format!("{p}.{name}.weight"), b.as_deref(), out, inp)
        };
        let qkv = lin(src, "attention.query_key_value", cfg.attn_bias, 3 * d, d)?;
        blocks.push(Block {
            ln1: ln(src, "input_layernorm")?,
            ln2: ln(src, "post_attention_layernorm")?,
            qkv: split_heads_qkv(qkv, cfg.n_heads, cfg.d_head)?,
            attn_out: lin(src, "attention.dense", cfg.attn_bias, d, d)?,
            mlp_in: lin(src, "mlp.dense_h_to_4h", true, cfg.d_mlp, d)?,
            mlp_out: lin(src, "mlp.dense_4h_to_h", true, d, cfg.d_mlp)?,
        });
    }
    let ln_final = norm(
        src,
        &cfg,
        "gpt_neox.final_layer_norm.weight",
        Some("gpt_neox.final_layer_norm.bias"),
    )?;
    let unembed = if cfg.tied_embeddings {
        Linear::new(embed.clone(), None)?
    } else {
        linear(src, "embed_out.weight", None, cfg.vocab_size, d)?
    };
    Transformer::new(cfg, embed, None, blocks, ln_final, unembed)
}
