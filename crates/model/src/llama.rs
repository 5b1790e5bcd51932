//! Llama-family models (SmolLM2, Llama 2/3 without rope scaling) from HF folders or GGUF.

use crate::assemble::{linear, norm, stack};
use crate::config::{Activation, Family, ModelConfig, NormKind};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::json_config::JsonConfig;
use crate::transformer::{Block, Transformer};
use crate::weights::WeightSource;

pub fn config_from_hf(c: &JsonConfig) -> Result<ModelConfig> {
    c.reject_present("rope_scaling", "rope scaling is not supported")?;
    let d_model = c.usize("hidden_size")?;
    let n_heads = c.usize("num_attention_heads")?;
    let bias = c.opt_bool("attention_bias")?.unwrap_or(false);
    Ok(ModelConfig {
        family: Family::Llama,
        vocab_size: c.usize("vocab_size")?,
        d_model,
        n_layers: c.usize("num_hidden_layers")?,
        n_heads,
        n_kv_heads: c.opt_usize("num_key_value_heads")?.unwrap_or(n_heads),
        d_head: c.opt_usize("head_dim")?.unwrap_or(d_model / n_heads.max(1)),
        d_mlp: c.usize("intermediate_size")?,
        context_length: c.usize("max_position_embeddings")?,
        norm: NormKind::Rms,
        norm_eps: c.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        activation: c.activation("hidden_act", "silu")?,
        gated_mlp: true,
        rotary_dim: c.opt_usize("head_dim")?.unwrap_or(d_model / n_heads.max(1)),
        rope_theta: c.opt_f64("rope_theta")?.unwrap_or(10_000.0) as f32,
        learned_positions: false,
        parallel_residual: false,
        tied_embeddings: c.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        attn_bias: bias,
        mlp_bias: c.opt_bool("mlp_bias")?.unwrap_or(false),
    })
}

pub fn config_from_gguf(g: &GgufFile) -> Result<ModelConfig> {
    let arch = g.string("general.architecture")?;
    if arch != "llama" {
        return Err(ModelError::config(
            g.path(),
            "general.architecture",
            format!("unsupported architecture `{arch}` (saelab reads llama GGUF files)"),
        ));
    }
    let d_model = g.usize("llama.embedding_length")?;
    let n_heads = g.usize("llama.attention.head_count")?;
    let d_head = d_model / n_heads.max(1);
    let vocab_size = match g.usize("llama.vocab_size") {
        Ok(v) => v,
        Err(_) => g.array("tokenizer.ggml.tokens")?.len(),
    };
    Ok(ModelConfig {
        family: Family::Llama,
        vocab_size,
        d_model,
        n_layers: g.usize("llama.block_count")?,
        n_heads,
        n_kv_heads: g.usize("llama.attention.head_count_kv").unwrap_or(n_heads),
        d_head,
        d_mlp: g.usize("llama.feed_forward_length")?,
        context_length: g.usize("llama.context_length")?,
        norm: NormKind::Rms,
        norm_eps: g.f32("llama.attention.layer_norm_rms_epsilon")? as f64,
        activation: Activation::Silu,
        gated_mlp: true,
        rotary_dim: g.usize("llama.rope.dimension_count").unwrap_or(d_head),
        rope_theta: g.f32("llama.rope.freq_base").unwrap_or(10_000.0),
        learned_positions: false,
        parallel_residual: false,
        tied_embeddings: !g.has("output.weight"),
        attn_bias: false,
        mlp_bias: false,
    })
}

/// Tensor names in the two layouts.
#[derive(Clone, Copy)]
pub enum Naming {
    Hf,
    Gguf,
}

impl Naming {
    fn name(self, layer: usize, hf: &str, gguf: &str) -> String {
        match self {
            Naming::Hf => format!("model.layers.{layer}.{hf}"),
            Naming::Gguf => format!("blk.{layer}.{gguf}"),
        }
    }
}

pub fn build(cfg: ModelConfig, src: &mut dyn WeightSource, naming: Naming) -> Result<Transformer> {
    let (d, dh) = (cfg.d_model, cfg.d_head);
    let (embed_name, norm_name, out_name) = match naming {
        Naming::Hf => (
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
        ),
        Naming::Gguf => ("token_embd.weight", "output_norm.weight", "output.weight"),
    };
    let embed = src.tensor_shaped(embed_name, &[cfg.vocab_size, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let n = |hf: &str, gguf: &str| naming.name(l, hf, gguf);
        let proj = |src: &mut dyn WeightSource, hf: &str, gguf: &str, out: usize, inp: usize| {
            let bias = cfg
                .attn_bias
                .then(|| n(&format!("{hf}.bias"), &format!("{gguf}.bias")));
            linear(
                src,
                &n(&format!("{hf}.weight"), &format!("{gguf}.weight")),
                bias.as_deref(),
                out,
                inp,
            )
        };
        let mut q = proj(src, "self_attn.q_proj", "attn_q", cfg.n_heads * dh, d)?;
        let mut k = proj(src, "self_attn.k_proj", "attn_k", cfg.n_kv_heads * dh, d)?;
        if let Naming::Gguf = naming {
            q = unpermute_rotary(&q, cfg.n_heads)?;
            k = unpermute_rotary(&k, cfg.n_kv_heads)?;
        }
        let v = proj(src, "self_attn.v_proj", "attn_v", cfg.n_kv_heads * dh, d)?;
        let o = proj(src, "self_attn.o_proj", "attn_output", d, cfg.n_heads * dh)?;
        let mlp = |src: &mut dyn WeightSource, hf: &str, gguf: &str, out: usize, inp: usize| {
            let bias = cfg
                .mlp_bias
                .then(|| n(&format!("{hf}.bias"), &format!("{gguf}.bias")));
            linear(
                src,
                &n(&format!("{hf}.weight"), &format!("{gguf}.weight")),
                bias.as_deref(),
                out,
                inp,
            )
        };
        let gate = mlp(src, "mlp.gate_proj", "ffn_gate", cfg.d_mlp, d)?;
        let up = mlp(src, "mlp.up_proj", "ffn_up", cfg.d_mlp, d)?;
        let down = mlp(src, "mlp.down_proj", "ffn_down", d, cfg.d_mlp)?;
        blocks.push(Block {
            ln1: norm(
                src,
                &cfg,
                &n("input_layernorm.weight", "attn_norm.weight"),
                None,
            )?,
            ln2: norm(
                src,
                &cfg,
                &n("post_attention_layernorm.weight", "ffn_norm.weight"),
                None,
            )?,
            qkv: stack(&[q, k, v])?,
            attn_out: o,
            mlp_in: stack(&[gate, up])?,
            mlp_out: down,
        });
    }
    let ln_final = norm(src, &cfg, norm_name, None)?;
    let unembed = if cfg.tied_embeddings {
        crate::linear::Linear::new(embed.clone(), None)?
    } else {
        linear(src, out_name, None, cfg.vocab_size, d)?
    };
    Transformer::new(cfg, embed, None, blocks, ln_final, unembed)
}

/// GGUF converters reorder q/k rows so rotary pairs are adjacent; restore the
/// "rotate half" order: rows `(head, pair, 2)` become `(head, 2, pair)`.
fn unpermute_rotary(l: &crate::linear::Linear, heads: usize) -> Result<crate::linear::Linear> {
    let w = l.weight();
    let (out, inp) = w.dims2()?;
    let dh = out / heads;
    let w = w
        .reshape((heads, dh / 2, 2, inp))?
        .transpose(1, 2)?
        .reshape((out, inp))?;
    crate::linear::Linear::new(w, l.bias().cloned())
}
