//! The logit lens of decoder directions: which tokens a feature's direction promotes and
//! suppresses when read straight off by the unembedding.
//!
//! A direction `d` (a decoder row, in the hook's units) is mapped into the residual stream
//! when the hook is not already there (through the block's `W_out` for `mlp.hook_post`,
//! `W_O` for `attn.hook_z`, without biases), then through the final norm as a linear map
//! (RMSNorm: `γ ⊙ d / rms(d)`; LayerNorm: `γ ⊙ (d − mean d) / std(d)`, without β, which
//! adds the same logits to every feature), then through the unembedding without its bias.
//! The norm makes the result independent of the direction's scale. For a hook before the
//! end of the residual stream this is the direct path: what the direction does to the
//! logits if no later block reads it.

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use saelab_model::config::NormKind;
use saelab_model::{BlockSite, HookPoint, TextTokenizer, Transformer};

use crate::error::Result;

/// Features sent through the unembedding together (bounds memory at `block × vocab`).
const BLOCK: usize = 512;

/// How far a token's unembedding norm may sit from the median, in robust standard
/// deviations (1.4826 · MAD), before it is left out of every lens.
pub const OUTLIER_Z: f64 = 6.0;

/// Tokens left out of every lens, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Excluded {
    pub token: u32,
    pub reason: String,
}

/// One feature's promoted (`top`) and suppressed (`bottom`) tokens, most extreme first.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureLens {
    pub top: Vec<(u32, f32)>,
    pub bottom: Vec<(u32, f32)>,
}

/// How the lens reaches the logits from `hook`, or why it cannot.
pub enum LensPath {
    /// Into the residual stream through this block's `W_out` (`mlp.hook_post`) or `W_O`.
    Through {
        layer: usize,
        site: BlockSite,
    },
    /// Already in the residual stream.
    Residual,
    /// After the final norm: the unembedding alone.
    AfterFinalNorm,
    None(String),
}

impl LensPath {
    pub fn of(hook: HookPoint) -> Self {
        match hook {
            HookPoint::LnFinal => LensPath::AfterFinalNorm,
            HookPoint::Embed | HookPoint::PosEmbed => LensPath::Residual,
            HookPoint::Block { layer, site } => match site {
                BlockSite::ResidPre
                | BlockSite::ResidMid
                | BlockSite::ResidPost
                | BlockSite::AttnOut
                | BlockSite::MlpOut => LensPath::Residual,
                BlockSite::MlpPost | BlockSite::AttnZ => LensPath::Through { layer, site },
                _ => LensPath::None(format!(
                    "no logit lens: `{hook}` is an input of block {layer}'s sublayer, not a \
                     direction the residual stream carries"
                )),
            },
        }
    }

    /// The sentence stored with the dictionary.
    pub fn describe(&self, hook: HookPoint, n_layers: usize) -> String {
        let last = n_layers.saturating_sub(1);
        let end = matches!(
            hook,
            HookPoint::Block { layer, site: BlockSite::ResidPost } if layer == last
        );
        match self {
            LensPath::None(why) => why.clone(),
            LensPath::AfterFinalNorm => {
                "the unembedding W_U (the hook is after the final norm)".into()
            }
            LensPath::Residual if end => {
                "the final norm then W_U (the hook is the residual stream's end)".into()
            }
            LensPath::Residual => format!(
                "direct path: the final norm then W_U, as if no block after `{hook}` read the \
                 direction"
            ),
            LensPath::Through { layer, site } => format!(
                "direct path: through block {layer}'s {} into the residual stream, then the \
                 final norm and W_U, as if no later block read it",
                if *site == BlockSite::MlpPost {
                    "W_out"
                } else {
                    "W_O"
                }
            ),
        }
    }
}

/// Tokens left out of the lens: ids the tokenizer does not have (a padded vocabulary),
/// special tokens, and unembedding rows whose norm is an outlier (rows of tokens the model
/// never saw in training drift far from the rest).
pub fn excluded_tokens(model: &Transformer, tokenizer: &TextTokenizer) -> Result<Vec<Excluded>> {
    let w = model.unembed.weight().to_dtype(candle_core::DType::F32)?;
    let norms: Vec<f64> = w
        .sqr()?
        .sum(1)?
        .sqrt()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect();
    let median = median(&norms);
    let mad = median_abs_deviation(&norms, median) * 1.4826;
    let known = tokenizer.vocab_size();
    let mut out = Vec::new();
    for (id, &n) in norms.iter().enumerate() {
        let token = id as u32;
        let reason = if id >= known {
            Some("no token of the tokenizer has this id (padded vocabulary)".to_string())
        } else if tokenizer.is_special(token) {
            Some("special token".to_string())
        } else if mad > 0.0 && ((n - median) / mad).abs() > OUTLIER_Z {
            Some(format!(
                "unembedding norm {n:.4} is an outlier (median {median:.4}, robust sd {mad:.4})"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(Excluded { token, reason });
        }
    }
    Ok(out)
}

/// The lens of every row of `directions` (`[n, width]` row-major, the hook's width), with
/// `n_tokens` tokens per side; `None` when the hook has no lens.
pub fn logit_lens(
    model: &Transformer,
    hook: HookPoint,
    directions: &[f32],
    width: usize,
    n_tokens: usize,
    excluded: &[Excluded],
) -> Result<Option<Vec<FeatureLens>>> {
    let path = LensPath::of(hook);
    if matches!(path, LensPath::None(_)) || width == 0 {
        return Ok(None);
    }
    let vocab = model.cfg.vocab_size;
    let mut allowed = vec![true; vocab];
    for e in excluded {
        if let Some(a) = allowed.get_mut(e.token as usize) {
            *a = false;
        }
    }
    let mut out = Vec::with_capacity(directions.len() / width);
    for block in directions.chunks(BLOCK * width) {
        let rows = block.len() / width;
        let d = Tensor::from_slice(block, (rows, width), &Device::Cpu)?;
        let resid = into_residual(model, &path, d)?;
        let normed = final_norm(model, &path, &resid)?;
        let mut logits = model.unembed.forward(&normed)?;
        if let Some(b) = model.unembed.bias() {
            logits = logits.broadcast_sub(b)?;
        }
        let logits = logits.flatten_all()?.to_vec1::<f32>()?;
        let lens: Vec<FeatureLens> = logits
            .par_chunks(vocab)
            .map(|row| extremes(row, &allowed, n_tokens))
            .collect();
        out.extend(lens);
    }
    Ok(Some(out))
}

fn into_residual(model: &Transformer, path: &LensPath, d: Tensor) -> Result<Tensor> {
    Ok(match path {
        LensPath::Through { layer, site } => {
            let block = &model.blocks[*layer];
            let linear = if *site == BlockSite::MlpPost {
                &block.mlp_out
            } else {
                &block.attn_out
            };
            let mut r = linear.forward(&d)?;
            if let Some(b) = linear.bias() {
                r = r.broadcast_sub(b)?;
            }
            r
        }
        _ => d,
    })
}

/// The final norm as a linear map of a direction (no β), or nothing after the norm.
fn final_norm(model: &Transformer, path: &LensPath, r: &Tensor) -> Result<Tensor> {
    if matches!(path, LensPath::AfterFinalNorm) {
        return Ok(r.clone());
    }
    let norm = &model.ln_final;
    let centred = match norm.kind {
        NormKind::Rms => r.clone(),
        NormKind::Layer => r.broadcast_sub(&r.mean_keepdim(1)?)?,
    };
    let scale = (centred.sqr()?.mean_keepdim(1)? + norm.eps as f64)?.sqrt()?;
    let gamma = norm.weight.to_dtype(candle_core::DType::F32)?;
    Ok(centred.broadcast_div(&scale)?.broadcast_mul(&gamma)?)
}

/// The `n` largest and `n` smallest allowed values of a row; ties to the lower id.
fn extremes(row: &[f32], allowed: &[bool], n: usize) -> FeatureLens {
    let mut ids: Vec<u32> = (0..row.len() as u32)
        .filter(|&i| allowed[i as usize] && row[i as usize].is_finite())
        .collect();
    let by_value_desc =
        |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    let by_value_asc =
        |a: &u32, b: &u32| row[*a as usize].total_cmp(&row[*b as usize]).then(a.cmp(b));
    let pick = |ids: &mut Vec<u32>, cmp: &dyn Fn(&u32, &u32) -> std::cmp::Ordering| {
        let k = n.min(ids.len());
        if k > 0 && k < ids.len() {
            ids.select_nth_unstable_by(k - 1, cmp);
        }
        let mut head: Vec<u32> = ids[..k].to_vec();
        head.sort_by(cmp);
        head.into_iter().map(|i| (i, row[i as usize])).collect()
    };
    let top = pick(&mut ids, &by_value_desc);
    let bottom = pick(&mut ids, &by_value_asc);
    FeatureLens { top, bottom }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_abs_deviation(values: &[f64], median_value: f64) -> f64 {
    let dev: Vec<f64> = values.iter().map(|v| (v - median_value).abs()).collect();
    median(&dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_pick_the_allowed_largest_and_smallest() {
        let row = [0.5f32, 3.0, -2.0, 3.0, 9.0, -7.0];
        let allowed = [true, true, true, true, false, true];
        let lens = extremes(&row, &allowed, 2);
        assert_eq!(lens.top, [(1, 3.0), (3, 3.0)]);
        assert_eq!(lens.bottom, [(5, -7.0), (2, -2.0)]);
    }
}
