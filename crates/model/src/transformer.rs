//! A decoder-only transformer whose family differences are all in its configuration and
//! weights, with hook points at every TransformerLens site.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use crate::attention::{causal_attention, Heads, RotaryTables};
use crate::batch::Batch;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::gated::gated_product;
use crate::hooks::{BlockSite, HookPoint, Hooks};
use crate::layers::{activate, Norm, Rotary};
use crate::linear::Linear;

/// One block's weights. `qkv` holds q, k and v stacked in that order on the output axis;
/// `mlp_in` holds the gate then the up projection for gated MLPs.
#[derive(Clone, Debug)]
pub struct Block {
    pub ln1: Norm,
    pub ln2: Norm,
    pub qkv: Linear,
    pub attn_out: Linear,
    pub mlp_in: Linear,
    pub mlp_out: Linear,
}

#[derive(Clone, Debug)]
pub struct Transformer {
    pub cfg: ModelConfig,
    pub embed: Tensor,
    pub pos_embed: Option<Tensor>,
    pub blocks: Vec<Block>,
    pub ln_final: Norm,
    pub unembed: Linear,
    rotary: Option<Rotary>,
}

/// What a forward returns: logits if asked, and every hook value that was read.
#[derive(Debug)]
pub struct Output {
    /// `[batch, seq, vocab]`, present when the hooks asked for logits.
    pub logits: Option<Tensor>,
    pub captured: BTreeMap<HookPoint, Tensor>,
    /// How many blocks actually ran.
    pub blocks_run: usize,
}

impl Output {
    pub fn get(&self, point: HookPoint) -> Option<&Tensor> {
        self.captured.get(&point)
    }
}

/// Per-forward state shared by the blocks.
struct Context<'h, 'a, 'm> {
    hooks: &'h mut Hooks<'a>,
    captured: BTreeMap<HookPoint, Tensor>,
    mask: &'m [u8],
    rotary: Option<(Tensor, Tensor)>,
}

impl Context<'_, '_, '_> {
    fn visit(&mut self, point: HookPoint, value: Tensor) -> Result<Tensor> {
        self.hooks.visit(point, value, &mut self.captured)
    }
}

impl Transformer {
    pub fn new(
        cfg: ModelConfig,
        embed: Tensor,
        pos_embed: Option<Tensor>,
        blocks: Vec<Block>,
        ln_final: Norm,
        unembed: Linear,
    ) -> Result<Self> {
        cfg.validate().map_err(ModelError::Invalid)?;
        let rotary = if cfg.rotary_dim > 0 {
            Some(Rotary::new(
                cfg.rotary_dim,
                cfg.rope_theta,
                cfg.context_length,
                embed.device(),
            )?)
        } else {
            None
        };
        Ok(Transformer {
            cfg,
            embed,
            pos_embed,
            blocks,
            ln_final,
            unembed,
            rotary,
        })
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Runs the model on `batch`, applying `hooks`' edits, reading its hooks, and stopping
    /// after the last block they need.
    pub fn forward(&self, batch: &Batch, hooks: &mut Hooks<'_>) -> Result<Output> {
        self.run(batch, hooks, None)
    }

    /// Continues a forward from the residual stream entering block `layer` (the value of
    /// `blocks.{layer}.hook_resid_pre`, `[batch, seq, d_model]`), so that several edited
    /// forwards can share the blocks before `layer`. Hooks before that block cannot be
    /// read or edited here.
    pub fn forward_from(
        &self,
        batch: &Batch,
        layer: usize,
        resid_pre: &Tensor,
        hooks: &mut Hooks<'_>,
    ) -> Result<Output> {
        let cfg = &self.cfg;
        if layer >= cfg.n_layers {
            return Err(ModelError::Invalid(format!(
                "cannot start a forward at block {layer}: the model has {} blocks",
                cfg.n_layers
            )));
        }
        let expected = [batch.batch_size(), batch.seq_len(), cfg.d_model];
        if resid_pre.dims() != expected {
            return Err(ModelError::Invalid(format!(
                "the residual stream to start from has shape {:?}, expected {expected:?}",
                resid_pre.dims()
            )));
        }
        if let Some(early) = hooks.earliest_point().filter(|p| p.starts_before(layer)) {
            return Err(ModelError::Invalid(format!(
                "hook `{early}` comes before block {layer}, where this forward starts"
            )));
        }
        self.run(batch, hooks, Some((layer, resid_pre.clone())))
    }

    fn run(
        &self,
        batch: &Batch,
        hooks: &mut Hooks<'_>,
        start: Option<(usize, Tensor)>,
    ) -> Result<Output> {
        let cfg = &self.cfg;
        batch.check(cfg)?;
        let device = self.device();
        let (b, t) = (batch.batch_size(), batch.seq_len());
        let positions = Tensor::from_vec(batch.positions(), (b, t), device)?;
        let rotary = match &self.rotary {
            Some(r) => Some(r.tables(&positions)?),
            None => None,
        };
        let mut ctx = Context {
            hooks,
            captured: BTreeMap::new(),
            mask: batch.mask(),
            rotary,
        };

        let (first_block, mut x) = match start {
            Some((layer, resid)) => (layer, resid),
            None => (0, self.embed_tokens(batch, &positions, &mut ctx)?),
        };
        let blocks_run = ctx.hooks.blocks_needed(cfg);
        for layer in first_block..blocks_run {
            x = self.block(layer, x, &mut ctx)?;
        }

        let logits =
            if ctx.hooks.wants_logits() || ctx.hooks.captures().contains(&HookPoint::LnFinal) {
                let normed = ctx.visit(HookPoint::LnFinal, self.ln_final.forward(&x)?)?;
                if ctx.hooks.wants_logits() {
                    Some(self.unembed.forward(&normed)?)
                } else {
                    None
                }
            } else {
                None
            };
        Ok(Output {
            logits,
            captured: ctx.captured,
            blocks_run,
        })
    }

    fn embed_tokens(
        &self,
        batch: &Batch,
        positions: &Tensor,
        ctx: &mut Context<'_, '_, '_>,
    ) -> Result<Tensor> {
        let d = self.cfg.d_model;
        let (b, t) = (batch.batch_size(), batch.seq_len());
        let ids = Tensor::from_slice(batch.ids(), (b, t), self.device())?;
        let embedded = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, d))?;
        let mut x = ctx.visit(HookPoint::Embed, embedded)?;
        if let Some(pe) = &self.pos_embed {
            let pos = pe
                .index_select(&positions.flatten_all()?, 0)?
                .reshape((b, t, d))?;
            let pos = ctx.visit(HookPoint::PosEmbed, pos)?;
            x = (x + pos)?;
        }
        Ok(x)
    }

    fn block(&self, layer: usize, x: Tensor, ctx: &mut Context<'_, '_, '_>) -> Result<Tensor> {
        let block = &self.blocks[layer];
        let at = |site| HookPoint::Block { layer, site };
        let resid_pre = ctx.visit(at(BlockSite::ResidPre), x)?;
        let normed = ctx.visit(at(BlockSite::Ln1Normalized), block.ln1.forward(&resid_pre)?)?;
        let attn = self.attention(layer, &normed, ctx)?;
        let attn = ctx.visit(at(BlockSite::AttnOut), attn)?;
        let (mlp_input, resid_mid) = if self.cfg.parallel_residual {
            (resid_pre.clone(), None)
        } else {
            let mid = ctx.visit(at(BlockSite::ResidMid), (&resid_pre + &attn)?)?;
            (mid.clone(), Some(mid))
        };
        let normed2 = ctx.visit(at(BlockSite::Ln2Normalized), block.ln2.forward(&mlp_input)?)?;
        let mlp = self.mlp(layer, &normed2, ctx)?;
        let mlp = ctx.visit(at(BlockSite::MlpOut), mlp)?;
        let resid_post = match resid_mid {
            Some(mid) => (mid + mlp)?,
            None => ((resid_pre + attn)? + mlp)?,
        };
        ctx.visit(at(BlockSite::ResidPost), resid_post)
    }

    fn attention(&self, layer: usize, x: &Tensor, ctx: &mut Context<'_, '_, '_>) -> Result<Tensor> {
        let cfg = &self.cfg;
        let block = &self.blocks[layer];
        let (b, t, _) = x.dims3()?;
        let qkv = block.qkv.forward(x)?;
        let heads = Heads {
            heads: cfg.n_heads,
            kv_heads: cfg.n_kv_heads,
            d_head: cfg.d_head,
        };
        let tables = match (&self.rotary, &ctx.rotary) {
            (Some(rotary), Some((cos, sin))) => Some(RotaryTables { rotary, cos, sin }),
            _ => None,
        };
        let z = causal_attention(&qkv, heads, tables.as_ref(), ctx.mask)?;
        let z = ctx.visit(
            HookPoint::Block {
                layer,
                site: BlockSite::AttnZ,
            },
            z,
        )?;
        block
            .attn_out
            .forward(&z.reshape((b, t, cfg.n_heads * cfg.d_head))?)
    }

    fn mlp(&self, layer: usize, x: &Tensor, ctx: &mut Context<'_, '_, '_>) -> Result<Tensor> {
        let cfg = &self.cfg;
        let block = &self.blocks[layer];
        let at = |site| HookPoint::Block { layer, site };
        let pre = block.mlp_in.forward(x)?;
        let gate_or_up_hooked = [BlockSite::MlpPre, BlockSite::MlpPreLinear]
            .iter()
            .any(|&site| ctx.hooks.touches(at(site)));
        let post = if cfg.gated_mlp && !gate_or_up_hooked {
            gated_product(&pre, cfg.d_mlp, cfg.activation)?
        } else if cfg.gated_mlp {
            let gate = pre.narrow(2, 0, cfg.d_mlp)?.contiguous()?;
            let up = pre.narrow(2, cfg.d_mlp, cfg.d_mlp)?.contiguous()?;
            let gate = ctx.visit(at(BlockSite::MlpPre), gate)?;
            let up = ctx.visit(at(BlockSite::MlpPreLinear), up)?;
            (activate(&gate, cfg.activation)? * up)?
        } else {
            let pre = ctx.visit(at(BlockSite::MlpPre), pre)?;
            activate(&pre, cfg.activation)?
        };
        let post = ctx.visit(at(BlockSite::MlpPost), post)?;
        block.mlp_out.forward(&post)
    }

    /// Logits for `batch` with no hooks.
    pub fn logits(&self, batch: &Batch) -> Result<Tensor> {
        let out = self.forward(batch, &mut Hooks::logits())?;
        out.logits
            .ok_or_else(|| ModelError::Invalid("forward returned no logits".into()))
    }
}
