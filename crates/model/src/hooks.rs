//! Hook points with TransformerLens names, and the set of reads and edits a forward applies.

use std::collections::BTreeMap;
use std::fmt;

use candle_core::Tensor;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// A place in a block where activations can be read or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockSite {
    ResidPre,
    Ln1Normalized,
    AttnZ,
    AttnOut,
    ResidMid,
    Ln2Normalized,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    ResidPost,
}

impl BlockSite {
    const ALL: [BlockSite; 11] = [
        BlockSite::ResidPre,
        BlockSite::Ln1Normalized,
        BlockSite::AttnZ,
        BlockSite::AttnOut,
        BlockSite::ResidMid,
        BlockSite::Ln2Normalized,
        BlockSite::MlpPre,
        BlockSite::MlpPreLinear,
        BlockSite::MlpPost,
        BlockSite::MlpOut,
        BlockSite::ResidPost,
    ];

    fn suffix(self) -> &'static str {
        match self {
            BlockSite::ResidPre => "hook_resid_pre",
            BlockSite::Ln1Normalized => "ln1.hook_normalized",
            BlockSite::AttnZ => "attn.hook_z",
            BlockSite::AttnOut => "hook_attn_out",
            BlockSite::ResidMid => "hook_resid_mid",
            BlockSite::Ln2Normalized => "ln2.hook_normalized",
            BlockSite::MlpPre => "mlp.hook_pre",
            BlockSite::MlpPreLinear => "mlp.hook_pre_linear",
            BlockSite::MlpPost => "mlp.hook_post",
            BlockSite::MlpOut => "hook_mlp_out",
            BlockSite::ResidPost => "hook_resid_post",
        }
    }

    /// Whether this site exists in a model with this configuration.
    fn exists_in(self, cfg: &ModelConfig) -> bool {
        match self {
            BlockSite::ResidMid => !cfg.parallel_residual,
            BlockSite::MlpPreLinear => cfg.gated_mlp,
            _ => true,
        }
    }
}

/// A named hook point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    Embed,
    PosEmbed,
    Block { layer: usize, site: BlockSite },
    LnFinal,
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => write!(f, "hook_embed"),
            HookPoint::PosEmbed => write!(f, "hook_pos_embed"),
            HookPoint::Block { layer, site } => write!(f, "blocks.{layer}.{}", site.suffix()),
            HookPoint::LnFinal => write!(f, "ln_final.hook_normalized"),
        }
    }
}

/// The shape of a hook's tensor, in symbols (`batch`, `pos`) and numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookShape(pub Vec<String>);

impl fmt::Display for HookShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.join(", "))
    }
}

impl HookPoint {
    /// Whether the forward pass computes `self` before `later`, so that editing `later`
    /// leaves `self` unchanged. The derived order is the forward order: variants, layers and
    /// block sites are declared in the order they are computed.
    pub fn precedes(self, later: HookPoint) -> bool {
        self < later
    }

    /// Every hook point of a model, in forward order.
    pub fn all(cfg: &ModelConfig) -> Vec<HookPoint> {
        let mut points = vec![HookPoint::Embed];
        if cfg.learned_positions {
            points.push(HookPoint::PosEmbed);
        }
        for layer in 0..cfg.n_layers {
            for site in BlockSite::ALL {
                if site.exists_in(cfg) {
                    points.push(HookPoint::Block { layer, site });
                }
            }
        }
        points.push(HookPoint::LnFinal);
        points
    }

    /// Parses a TransformerLens name, checking it exists in this model.
    pub fn parse(name: &str, cfg: &ModelConfig) -> Result<HookPoint> {
        HookPoint::all(cfg)
            .into_iter()
            .find(|p| p.to_string() == name)
            .ok_or_else(|| ModelError::UnknownHook {
                name: name.to_string(),
                suggestions: nearest_names(name, cfg).join(", "),
            })
    }

    /// Whether this point's value is made before block `layer` starts.
    pub fn starts_before(&self, layer: usize) -> bool {
        match self {
            HookPoint::Embed | HookPoint::PosEmbed => true,
            HookPoint::Block { layer: l, .. } => *l < layer,
            HookPoint::LnFinal => false,
        }
    }

    /// The number of blocks that must run before this hook's value exists.
    pub fn blocks_needed(&self, cfg: &ModelConfig) -> usize {
        match self {
            HookPoint::Embed | HookPoint::PosEmbed => 0,
            HookPoint::Block { layer, .. } => layer + 1,
            HookPoint::LnFinal => cfg.n_layers,
        }
    }

    /// Values per token position (the product of the shape's dimensions after `pos`).
    pub fn width(&self, cfg: &ModelConfig) -> usize {
        match self {
            HookPoint::Block {
                site: BlockSite::AttnZ,
                ..
            } => cfg.n_heads * cfg.d_head,
            HookPoint::Block {
                site: BlockSite::MlpPre | BlockSite::MlpPreLinear | BlockSite::MlpPost,
                ..
            } => cfg.d_mlp,
            _ => cfg.d_model,
        }
    }

    pub fn shape(&self, cfg: &ModelConfig) -> HookShape {
        let dims: Vec<String> = match self {
            HookPoint::Block {
                site: BlockSite::AttnZ,
                ..
            } => vec![cfg.n_heads.to_string(), cfg.d_head.to_string()],
            HookPoint::Block {
                site: BlockSite::MlpPre | BlockSite::MlpPreLinear | BlockSite::MlpPost,
                ..
            } => vec![cfg.d_mlp.to_string()],
            _ => vec![cfg.d_model.to_string()],
        };
        let mut shape = vec!["batch".to_string(), "pos".to_string()];
        shape.extend(dims);
        HookShape(shape)
    }
}

/// The three valid names closest to `name` by edit distance.
fn nearest_names(name: &str, cfg: &ModelConfig) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = HookPoint::all(cfg)
        .into_iter()
        .map(|p| {
            let s = p.to_string();
            (edit_distance(name, &s), s)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, s)| s).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A caller's function that replaces a hook's value; it must keep the shape.
pub type HookFn<'a> = Box<dyn FnMut(&Tensor) -> candle_core::Result<Tensor> + 'a>;

/// What one forward should read, edit and return.
#[derive(Default)]
pub struct Hooks<'a> {
    capture: Vec<HookPoint>,
    edits: BTreeMap<HookPoint, HookFn<'a>>,
    logits: bool,
}

impl<'a> Hooks<'a> {
    /// A forward that returns logits and reads nothing else.
    pub fn logits() -> Self {
        Hooks {
            logits: true,
            ..Default::default()
        }
    }

    /// A forward that reads these hooks and stops after the last block they need.
    pub fn capture(points: impl IntoIterator<Item = HookPoint>) -> Self {
        let mut hooks = Hooks::default();
        for p in points {
            hooks = hooks.read(p);
        }
        hooks
    }

    pub fn read(mut self, point: HookPoint) -> Self {
        if !self.capture.contains(&point) {
            self.capture.push(point);
        }
        self
    }

    pub fn with_logits(mut self) -> Self {
        self.logits = true;
        self
    }

    /// Replaces the value at `point` by `f(value)` for the rest of the forward.
    pub fn edit(
        mut self,
        point: HookPoint,
        f: impl FnMut(&Tensor) -> candle_core::Result<Tensor> + 'a,
    ) -> Self {
        self.edits.insert(point, Box::new(f));
        self
    }

    /// Whether this forward reads or edits `point` (lets the model skip materialising
    /// values nobody looks at).
    pub fn touches(&self, point: HookPoint) -> bool {
        self.capture.contains(&point) || self.edits.contains_key(&point)
    }

    /// The earliest point this forward reads or edits, if any.
    pub fn earliest_point(&self) -> Option<HookPoint> {
        self.capture
            .iter()
            .chain(self.edits.keys())
            .copied()
            .min_by_key(|p| match p {
                HookPoint::Embed | HookPoint::PosEmbed => (0, 0),
                HookPoint::Block { layer, .. } => (1, *layer),
                HookPoint::LnFinal => (2, 0),
            })
    }

    pub fn wants_logits(&self) -> bool {
        self.logits
    }

    pub fn captures(&self) -> &[HookPoint] {
        &self.capture
    }

    /// Blocks the forward must run: all of them for logits, else up to the last hook read.
    /// Edits alone do not extend the forward: an edit nobody reads after has no effect.
    pub fn blocks_needed(&self, cfg: &ModelConfig) -> usize {
        if self.logits {
            return cfg.n_layers;
        }
        self.capture
            .iter()
            .map(|p| p.blocks_needed(cfg))
            .max()
            .unwrap_or(0)
    }

    /// Applies the edit at `point`, if any, then records the value if it is read.
    pub(crate) fn visit(
        &mut self,
        point: HookPoint,
        value: Tensor,
        captured: &mut BTreeMap<HookPoint, Tensor>,
    ) -> Result<Tensor> {
        let value = match self.edits.get_mut(&point) {
            Some(f) => {
                let edited = f(&value)?;
                if edited.dims() != value.dims() {
                    return Err(ModelError::Invalid(format!(
                        "the edit at hook `{point}` returned shape {:?}, expected {:?}",
                        edited.dims(),
                        value.dims()
                    )));
                }
                edited.to_dtype(value.dtype())?
            }
            None => value,
        };
        if self.capture.contains(&point) {
            captured.insert(point, value.clone());
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_precede_in_forward_order() {
        let at = |layer, site| HookPoint::Block { layer, site };
        let order = [
            HookPoint::Embed,
            HookPoint::PosEmbed,
            at(0, BlockSite::ResidPost),
            at(1, BlockSite::ResidPre),
            at(1, BlockSite::AttnOut),
            at(1, BlockSite::Ln2Normalized),
            at(1, BlockSite::MlpPost),
            at(1, BlockSite::MlpOut),
            at(1, BlockSite::ResidPost),
            at(10, BlockSite::ResidPre),
            HookPoint::LnFinal,
        ];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                assert_eq!(a.precedes(*b), i < j, "{a} before {b}");
            }
        }
        assert_eq!(
            BlockSite::ALL.windows(2).filter(|w| w[0] >= w[1]).count(),
            0
        );
    }
}
