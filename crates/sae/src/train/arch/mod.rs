//! The training architectures, one file each. Every file implements [`Architecture`]: the
//! parameters it has beside the shared four (by name), its defaults, how it selects the
//! features that fire, its loss terms beyond the reconstruction, and its inference form. The
//! trainer (`trainer.rs`) owns what they share: inputs and their scale, AuxK and ghost grads,
//! the optimiser, schedules, the skip connection, firing statistics, checkpoints.
//!
//! Adding an architecture is a new file here plus its registration in this one: its variant
//! of [`TrainArchitecture`] (the name saved in configs and checkpoints), its line in
//! [`TrainArchitecture::rule`], which builds the file's rule from the variant, and its spec
//! kind in [`SPEC_KINDS`], which is all that `saelab train --sae`, run files and the Python
//! bindings need to know of it (`spec.rs`).

mod batchtopk;
pub mod gated;
pub mod jumprelu;
pub mod matryoshka;
mod relu_l1;
mod topk;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::ghost::add_ghost_grads;
use super::objective::{
    loss_and_grads, AuxTerm, DownstreamTerm, L1Term, LossParts, Objective, Path,
};
use super::trainer::{Trainer, DENSE_PATH_DENSITY};
use crate::dictionary::Activation;
use crate::error::Result;
use crate::features::SparseFeatures;
use crate::kernels::select;

/// Which dictionary is trained, with the sparsity rule of its training objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainArchitecture {
    /// k largest activations per token, AuxK for dead latents (Gao et al. 2024).
    TopK { k: usize },
    /// k·B largest over a batch of B tokens; runs as JumpReLU with a learned threshold.
    BatchTopK { k: usize },
    /// BatchTopK whose nested prefixes (`matryoshka_widths`) each learn to reconstruct the
    /// input on their own (Bussmann et al. 2025, Nabeshima 2024); runs as JumpReLU.
    MatryoshkaBatchTopK { k: usize },
    /// ReLU with an L1 penalty.
    ReluL1 { variant: L1Variant },
    /// JumpReLU with an L0 penalty; each latent's threshold learns through a
    /// straight-through estimator of bandwidth `jumprelu_bandwidth` (Rajamanoharan et al. 2024).
    #[serde(rename = "jumprelu")]
    JumpRelu,
    /// Gated: an L1 penalty on the gate's pre-activations and an auxiliary reconstruction
    /// from them through the frozen decoder (Rajamanoharan et al. 2024).
    Gated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L1Variant {
    /// Unit-norm decoder rows (gradient projected, rows renormalised after each step).
    Standard,
    /// L1 weighted by decoder row norms, decoder unconstrained ("April update").
    April,
}

impl TrainArchitecture {
    /// The rule that trains this architecture.
    pub(crate) fn rule(&self) -> Box<dyn Architecture> {
        match *self {
            TrainArchitecture::TopK { k } => Box::new(topk::TopK { k }),
            TrainArchitecture::BatchTopK { k } => Box::new(batchtopk::BatchTopK { k }),
            TrainArchitecture::MatryoshkaBatchTopK { k } => Box::new(matryoshka::Matryoshka { k }),
            TrainArchitecture::ReluL1 { variant } => Box::new(relu_l1::ReluL1 { variant }),
            TrainArchitecture::JumpRelu => Box::new(jumprelu::JumpRelu),
            TrainArchitecture::Gated => Box::new(gated::Gated),
        }
    }
}

/// A kind of dictionary that specs name (`topk:k=32,width=…`): the architecture it trains
/// and the spec keys that apply to it alone (`spec.rs` lists the keys every kind takes).
pub struct SpecKind {
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// Its own keys, e.g. `k` for TopK; a kind that takes `k` requires it.
    pub keys: &'static [&'static str],
    /// The architecture, from the spec's `k` (given whenever `keys` has it).
    pub build: fn(k: usize) -> TrainArchitecture,
}

/// Every kind a spec may name, in the order help texts list them.
pub const SPEC_KINDS: [SpecKind; 7] = [
    topk::KIND,
    batchtopk::KIND,
    matryoshka::KIND,
    relu_l1::STANDARD,
    relu_l1::APRIL,
    jumprelu::KIND,
    gated::KIND,
];

/// A parameter beside the shared four (`W_enc`, `b_enc`, `W_dec`, `b_dec`): its name in
/// checkpoints, its value at the start (and after a resample) and its shape.
pub(crate) struct ParamSpec {
    pub name: &'static str,
    pub initial: f32,
    pub shape: Vec<usize>,
}

/// The lr of the penalised trainers (ReLU-L1, JumpReLU, Gated).
pub(crate) const PENALISED_LR: f32 = 1e-3;

/// What one batch's objective gave: the loss terms, the features that fired, which kernels
/// ran, and with `want_error` the error x̂ − x (for a skip connection's gradient).
pub(crate) struct Gradients {
    pub parts: LossParts,
    pub features: SparseFeatures,
    pub path: Path,
    pub error: Option<Vec<f32>>,
}

/// What a batch's objective reads: `x` is what the dictionary reconstructs (its input, or a
/// transcoder's target less the skip term), `xc` what its encoder reads; the trainer's
/// `pre` holds the pre-activations of `xc`.
pub(crate) struct Batch<'a> {
    pub x: &'a [f32],
    pub xc: &'a [f32],
    pub rows: usize,
    /// The sparsity penalty's coefficient this step (after its warm-up).
    pub penalty: f32,
    /// The weight of the auxiliary losses this step (their warm-up; 1 after it).
    pub aux_scale: f32,
    pub want_error: bool,
    /// End-to-end training's downstream loss (TopK, BatchTopK and ReLU-L1 only).
    pub downstream: Option<DownstreamTerm<'a>>,
}

/// One training architecture. The defaults are those of a ReLU-family trainer penalised
/// by a coefficient, with unit-norm decoder rows and no parameters of its own.
pub(crate) trait Architecture {
    /// Latents kept per token when the count is fixed (TopK, BatchTopK); `None` for the
    /// trainers whose sparsity comes from a penalty.
    fn k(&self) -> Option<usize> {
        None
    }

    /// Defaults of `TrainConfig::new` that differ from the shared ones.
    fn configure(&self, _cfg: &mut TrainConfig) {}

    /// The lr of a run of `total_steps` over `d_sae` latents, with Adam.
    fn default_lr(&self, _d_sae: usize, _total_steps: u64) -> f32 {
        PENALISED_LR
    }

    /// Decoder rows kept at unit norm (the gradient's parallel part removed, rows
    /// renormalised after each step).
    fn unit_norm_decoder(&self) -> bool {
        true
    }

    /// The sparsity coefficient the config asks for, before its warm-up.
    fn sparsity_coefficient(&self, cfg: &TrainConfig) -> f32 {
        cfg.l1_coefficient
    }

    /// Whether ghost grads apply (ReLU-L1; the TopK family has AuxK).
    fn ghost_grads(&self) -> bool {
        false
    }

    /// Checks of the config that only this architecture makes.
    fn validate(&self, _cfg: &TrainConfig) -> Result<()> {
        Ok(())
    }

    /// Its own parameters beside the shared four.
    fn params(&self, _cfg: &TrainConfig) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// The features that fire for the trainer's `pre` (`rows` tokens).
    fn select(&self, t: &mut Trainer, rows: usize) -> SparseFeatures {
        let f_n = t.cfg.d_sae;
        select::above_threshold(&t.pre, rows, f_n, None)
    }

    /// The L1 term of the objective, if it has one.
    fn l1(&self, _penalty: f32) -> Option<L1Term> {
        None
    }

    /// Adds losses of its own that need only the features, with their gradients, to the
    /// trainer's; returns what they add to the reconstruction loss.
    fn add_reconstruction_terms(&self, _t: &mut Trainer, _b: &Batch, _f: &SparseFeatures) -> f64 {
        0.0
    }

    /// Whether `add_error_terms` needs the reconstruction error.
    fn needs_error(&self) -> bool {
        false
    }

    /// Adds losses of its own that read the error e = x̂ − x, with their gradients, to the
    /// trainer's `parts` and gradients.
    fn add_error_terms(
        &self,
        _t: &mut Trainer,
        _b: &Batch,
        _f: &SparseFeatures,
        _e: &[f32],
        _parts: &mut LossParts,
    ) {
    }

    /// The batch's losses, features and gradients (into the trainer's `grads` and its
    /// parameters' gradients). Most architectures share this objective (`objective.rs`) and
    /// add their terms through the hooks above; Gated has its own.
    fn grads(&self, t: &mut Trainer, b: &Batch) -> Result<Gradients> {
        shared_objective(self, t, b)
    }

    /// With a `target_l0`, steers the dictionary towards it from the step's L0 directly and
    /// returns true; by default returns false, and the trainer steers the penalty's
    /// coefficient instead (`target_l0.rs`).
    fn steer_l0(&self, _t: &mut Trainer, _l0: f64, _target: f64) -> bool {
        false
    }

    /// Constraints applied to the parameters after each optimiser step.
    fn after_update(&self, _t: &mut Trainer) {}

    /// Starts the trainer where one cut `tau` over the first batch's pre-activations keeps
    /// the target L0 (`target_l0`): by default a bias of −τ on every latent.
    fn start_at_cut(&self, t: &mut Trainer, tau: f32) {
        t.weights.b_enc.iter_mut().for_each(|b| *b -= tau);
    }

    /// How the trained dictionary selects its features at inference.
    fn inference(&self, t: &Trainer) -> Activation;
}

/// The objective of `objective.rs` with the architecture's selection and terms, AuxK over
/// the latents dead before this step and ghost grads over the same latents.
fn shared_objective<A: Architecture + ?Sized>(
    rule: &A,
    t: &mut Trainer,
    b: &Batch,
) -> Result<Gradients> {
    let (f_n, rows) = (t.cfg.d_sae, b.rows);
    let features = rule.select(t, rows);

    let mut dead = t.firing.dead(t.cfg.dead_after_tokens);
    if t.cfg.control_aux {
        dead.retain(|&j| !t.control[j as usize]);
    }
    let aux_k = t.cfg.aux_k();
    let aux_features = (aux_k > 0 && !dead.is_empty() && t.cfg.aux_coefficient > 0.0)
        .then(|| select::top_k_rows(&t.pre, rows, f_n, aux_k.min(dead.len()), Some(&dead)));
    let aux = aux_features.as_ref().map(|af| AuxTerm {
        features: af,
        coefficient: b.aux_scale
            * t.cfg.aux_coefficient
            * (dead.len() as f32 / aux_k as f32).min(1.0),
    });
    let density = features.nnz() as f64 / (rows as f64 * f_n as f64);
    let path = match t.cfg.penalised() && density > DENSE_PATH_DENSITY {
        true => Path::Dense,
        false => Path::Sparse,
    };
    let objective = Objective {
        features: &features,
        aux,
        l1: rule.l1(b.penalty),
        apply_b_dec_to_input: t.cfg.apply_b_dec_to_input(),
        downstream: b.downstream,
    };
    let (mut parts, recon) = loss_and_grads(
        &t.weights,
        b.x,
        b.xc,
        &objective,
        path,
        &mut t.scratch,
        &mut t.grads,
    )?;
    parts.recon += rule.add_reconstruction_terms(t, b, &features);
    let ghost = t.cfg.ghost_grads && !dead.is_empty();
    let mut error = None;
    if rule.needs_error() || ghost || b.want_error {
        let e: Vec<f32> = recon.iter().zip(b.x).map(|(a, x)| a - x).collect();
        rule.add_error_terms(t, b, &features, &e, &mut parts);
        if ghost {
            let (w, pre, grads) = (&t.weights, &t.pre, &mut t.grads);
            parts.aux += add_ghost_grads(w, pre, &e, b.xc, &dead, b.aux_scale, grads);
        }
        error = b.want_error.then_some(e);
    }
    Ok(Gradients {
        parts,
        features,
        path,
        error,
    })
}
