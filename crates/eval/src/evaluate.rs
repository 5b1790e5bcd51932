//! The evaluation driver: one clean forward per batch feeds every dictionary and baseline;
//! each edited forward restarts at the hook's block from the clean residual stream, so the
//! blocks before the hook run once per batch, not once per variant.
//!
//! Two passes over the windows: the first measures each hook's mean (the mean-ablation value)
//! and the firing counts that choose a pruned dictionary's removed latents; the second
//! everything else.
//!
//! A contextual dictionary (carry, temporal) runs over each batch's windows whole and in
//! order (`run_windows`, rows window-major as the hook's activations are), so each position
//! sees only its window's earlier positions; its reconstruction is then measured and spliced
//! at the same positions as a per-position dictionary's.

use std::borrow::Cow;

use candle_core::Tensor;
use saelab_data::windows::Window;
use saelab_model::{Batch, BlockSite, HookPoint, Hooks, Transformer};
use saelab_sae::contextual::window::AnyDictionary;
use saelab_sae::rng::SplitMix64;
use saelab_sae::{Dictionary, SaeWeights, SparseFeatures};

use crate::cross_entropy::{CeSums, CleanDistributions};
use crate::error::{EvalError, Result};
use crate::geometry::{de_projection, de_projection_raw, de_projection_scaled, decoder_norms, mcs};
use crate::histogram::{mean, median};
use crate::persistence::{persistence, summarize, Persistence, SUMMARY_MIN_FIRES};
use crate::perturbation::random_perturbation;
use crate::positions::{count, Positions};
use crate::reconstruction::{ReconstructionSums, SquaredNormSums};
use crate::results::{
    Contextual, DictionaryResults, Downstream, EvalParams, EvalResults, GeometrySummary,
    HookResults, Latents, Pruned, FORMAT, VERSION,
};
use crate::sparsity::SparsitySums;

/// A dictionary to evaluate at a hook of the model.
pub struct EvalDictionary {
    pub name: String,
    pub path: String,
    /// Where its output is compared and spliced.
    pub hook: HookPoint,
    /// A transcoder's input hook (upstream of `hook`, so read from the clean forward).
    pub input_hook: Option<HookPoint>,
    /// A per-position dictionary (`Sae`, `.into()`) or a contextual one.
    pub sae: AnyDictionary,
    /// Latents to remove before decoding; `None` evaluates the whole dictionary.
    pub prune: Option<Prune>,
}

/// Which latents a pruned dictionary loses: their activations are set to 0 after the
/// activation function (`Sae::forward_pruned`), at every evaluated position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prune {
    /// The N latents that fire at the most evaluated positions, counted in the first pass
    /// (ties: the lower index first).
    Densest(usize),
}

/// The pruned copies of `d` to evaluate beside it, one per count: `NAME-pruned-N` without
/// its N densest latents. `flag` names the setting in messages (`--prune-densest`).
pub fn pruned_copies(
    d: &EvalDictionary,
    counts: &[usize],
    flag: &str,
) -> Result<Vec<EvalDictionary>> {
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let Some(sae) = d.sae.per_position() else {
        return Err(EvalError::invalid(
            flag,
            format!(
                "dictionary `{}` is a {} dictionary, whose codes carry along the window: \
                 pruning applies to per-position dictionaries only",
                d.name,
                d.sae.architecture()
            ),
        ));
    };
    let d_sae = sae.d_sae();
    let mut out: Vec<EvalDictionary> = Vec::new();
    for &n in counts {
        if n == 0 || n >= d_sae {
            return Err(EvalError::invalid(
                flag,
                format!(
                    "N = {n}, but dictionary `{}` has {d_sae} latents; N must be in 1..{d_sae} (remove \
                     at least one, keep at least one)",
                    d.name
                ),
            ));
        }
        if out.iter().any(|e| e.prune == Some(Prune::Densest(n))) {
            return Err(EvalError::invalid(flag, format!("lists {n} twice")));
        }
        out.push(EvalDictionary {
            name: format!("{}-pruned-{n}", d.name),
            path: d.path.clone(),
            hook: d.hook,
            input_hook: d.input_hook,
            sae: sae.clone().into(),
            prune: Some(Prune::Densest(n)),
        });
    }
    Ok(out)
}

/// The latents a pruned dictionary lost, chosen in the first pass.
#[derive(Clone, Debug)]
struct Removal {
    mask: Vec<bool>,
    /// Densest first.
    latents: Vec<u32>,
    /// Σ of their firing counts, and the positions counted.
    fires: u64,
    positions: u64,
}

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Measure reconstruction and sparsity at special-token positions too.
    pub include_special: bool,
    /// Tokens over which density and deadness are judged (the first ones measured).
    pub dead_window: u64,
    /// Windows per forward.
    pub batch_windows: usize,
    /// Seed of the random-perturbation baseline.
    pub random_seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            include_special: false,
            dead_window: 1_000_000,
            batch_windows: 8,
            random_seed: 0,
        }
    }
}

/// Where an evaluation is: `pass` 1 measures each hook's mean, pass 2 everything else.
#[derive(Clone, Copy, Debug)]
pub struct EvalProgress {
    pub pass: u8,
    pub windows_done: usize,
    pub windows_total: usize,
}

/// Running sums for one dictionary.
struct DictionarySums {
    reconstruction: ReconstructionSums,
    /// A transcoder's input (an SAE's input is `reconstruction`'s x): its E‖x‖² scales the
    /// D/E projection.
    transcoder_input: Option<SquaredNormSums>,
    sparsity: SparsitySums,
    spliced: CeSums,
    random: CeSums,
    /// A contextual dictionary's context path and persistence.
    context: Option<ContextSums>,
}

/// Running sums of a contextual dictionary's window runs.
struct ContextSums {
    /// Σ‖r_ctx‖², Σ‖r_new‖² over every position run.
    energy: (f64, f64),
    /// Codes on, summed over the measured positions.
    on: u64,
    /// Per latent, over the measured positions of whole windows.
    persistence: Vec<Persistence>,
}

impl ContextSums {
    fn new(d_sae: usize) -> Self {
        ContextSums {
            energy: (0.0, 0.0),
            on: 0,
            persistence: vec![Persistence::default(); d_sae],
        }
    }

    /// One batch's codes (`[windows · len]` rows) at the measured positions.
    fn add(&mut self, codes: &SparseFeatures, measured: &[bool], len: usize) {
        let on = SparseFeatures::from_row_fn(codes.rows, codes.d_sae, |r, idx, val| {
            if measured[r] {
                let (i, v) = codes.row(r);
                for (&j, &a) in i.iter().zip(v).filter(|(_, a)| **a != 0.0) {
                    idx.push(j);
                    val.push(a);
                }
            }
        });
        self.on += on.nnz() as u64;
        for (sum, p) in self.persistence.iter_mut().zip(persistence(&on, len)) {
            sum.add(&p);
        }
    }
}

/// Running sums for the model alone at one hook.
#[derive(Default)]
struct HookSums {
    zero: CeSums,
    mean: CeSums,
}

/// Evaluates `dictionaries` on `windows` (all of one length), in order.
pub fn evaluate(
    model: &Transformer,
    windows: &[Window],
    dictionaries: &[EvalDictionary],
    options: &EvalOptions,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<EvalResults> {
    check_inputs(model, windows, dictionaries, options)?;
    let hooks = hooks_of(dictionaries);
    let FirstPass { means, removals } =
        first_pass(model, windows, dictionaries, &hooks, options, progress)?;

    let mut dict_sums: Vec<DictionarySums> = dictionaries
        .iter()
        .map(|d| DictionarySums {
            reconstruction: ReconstructionSums::new(d.sae.d_in()),
            transcoder_input: d.input_hook.map(|_| SquaredNormSums::new(d.sae.d_in())),
            sparsity: SparsitySums::new(d.sae.d_sae(), options.dead_window),
            spliced: CeSums::default(),
            random: CeSums::default(),
            context: d
                .sae
                .is_contextual()
                .then(|| ContextSums::new(d.sae.d_sae())),
        })
        .collect();
    // The weights geometry and MCS read: a per-position dictionary's own, a contextual
    // one's directions in the input's units.
    let geometries: Vec<Cow<SaeWeights>> = dictionaries
        .iter()
        .map(|d| match &d.sae {
            AnyDictionary::PerPosition(sae) => Cow::Borrowed(&sae.weights),
            AnyDictionary::Contextual(c) => Cow::Owned(c.geometry()),
        })
        .collect();
    let mut hook_sums: Vec<HookSums> = hooks.iter().map(|_| HookSums::default()).collect();
    let mut clean = CeSums::default();
    let rng = SplitMix64::new(options.random_seed);
    let mut done = 0;
    for chunk in windows.chunks(options.batch_windows) {
        let batch = batch_of(chunk)?;
        let positions = Positions::of(chunk, options.include_special);
        let len = chunk[0].ids.len();
        let first_row = (done * len) as u64;

        let mut reads = Hooks::default().with_logits();
        for &h in &hooks {
            reads = reads.read(h);
            if let Some(layer) = start_layer(h) {
                reads = reads.read(resid_pre(layer));
            }
        }
        for h in dictionaries.iter().filter_map(|d| d.input_hook) {
            reads = reads.read(h);
        }
        let out = model.forward(&batch, &mut reads)?;
        let logits = flat(out.logits.as_ref().expect("logits were asked for"))?;
        let distributions = CleanDistributions::new(
            &logits,
            model.cfg.vocab_size,
            batch.ids(),
            &positions.next_token,
        );
        drop(logits);
        clean.add(distributions.clean());

        for (h_index, &hook) in hooks.iter().enumerate() {
            let value = out.get(hook).expect("hook was read");
            let start = start_layer(hook).map(|l| (l, out.get(resid_pre(l)).expect("read")));
            let x = flat(value)?;
            let width = hook.width(&model.cfg);
            let score = |replacement: Vec<f32>| -> Result<CeSums> {
                let edited = Tensor::from_vec(replacement, value.dims(), value.device())?;
                let logits = edited_logits(model, &batch, hook, start, edited)?;
                Ok(distributions.compare(&logits))
            };

            let zero = spliced(&x, width, &positions.splice, |_| vec![0.0; width]);
            hook_sums[h_index].zero.add(score(zero)?);
            let mean_row: Vec<f32> = means[h_index].iter().map(|&m| m as f32).collect();
            let mean = spliced(&x, width, &positions.splice, |_| mean_row.clone());
            hook_sums[h_index].mean.add(score(mean)?);

            for ((d, sums), removal) in dictionaries.iter().zip(dict_sums.iter_mut()).zip(&removals)
            {
                if d.hook != hook {
                    continue;
                }
                // A transcoder predicts this hook from its input hook's clean activation.
                let input = match d.input_hook {
                    Some(h) => Some(flat(out.get(h).expect("input hook was read"))?),
                    None => None,
                };
                if let (Some(sums), Some(input)) = (&mut sums.transcoder_input, &input) {
                    sums.add_batch(input, &positions.measured);
                }
                let input = input.as_deref().unwrap_or(&x);
                // x̂, and the features L0 counts (a contextual dictionary's paid codes).
                let (x_hat, features) = match &d.sae {
                    AnyDictionary::PerPosition(sae) => {
                        let forward = match removal {
                            Some(r) => sae.forward_pruned(input, &r.mask)?,
                            None => sae.forward(input)?,
                        };
                        (forward.reconstruction, forward.features)
                    }
                    AnyDictionary::Contextual(c) => {
                        // The hook's rows are window-major, positions in order: whole
                        // windows of `len`, read from their second position as in training.
                        let run = c.run_after_start(input, len)?;
                        if let Some(context) = &mut sums.context {
                            context.energy.0 += run.context_energy.0;
                            context.energy.1 += run.context_energy.1;
                            context.add(&run.codes, &positions.measured, len);
                        }
                        (run.reconstruction, run.paid)
                    }
                };
                let x_hat = &x_hat;
                sums.reconstruction
                    .add_batch(&x, x_hat, &positions.measured);
                sums.sparsity.add_batch(&features, &positions.measured);
                let row = |t: usize| &x_hat[t * width..(t + 1) * width];
                sums.spliced
                    .add(score(spliced(&x, width, &positions.splice, |t| {
                        row(t).to_vec()
                    }))?);
                let random = spliced(&x, width, &positions.splice, |t| {
                    let mut r = rng.fork(first_row + t as u64);
                    random_perturbation(&x[t * width..(t + 1) * width], row(t), &mut r)
                });
                sums.random.add(score(random)?);
            }
        }
        done += chunk.len();
        progress(EvalProgress {
            pass: 2,
            windows_done: done,
            windows_total: windows.len(),
        });
    }

    let hook_results: Vec<HookResults> = hooks
        .iter()
        .zip(&hook_sums)
        .map(|(h, s)| HookResults {
            hook: h.to_string(),
            d: h.width(&model.cfg),
            ce_clean: clean.mean_ce(),
            ce_zero: s.zero.mean_ce(),
            ce_mean: s.mean.mean_ce(),
            kl_zero: s.zero.mean_kl(),
            kl_mean: s.mean.mean_kl(),
        })
        .collect();
    let dictionary_results: Vec<DictionaryResults> = dictionaries
        .iter()
        .zip(&dict_sums)
        .zip(&removals)
        .zip(&geometries)
        .map(|(((d, s), removal), geometry)| {
            let h = &hook_results[hooks.iter().position(|&p| p == d.hook).expect("listed")];
            dictionary_results(d, s, h, removal.as_ref(), geometry)
        })
        .collect();
    // A pruned dictionary has its source's decoder: no pairs of its own.
    let whole: Vec<usize> = (0..dictionaries.len())
        .filter(|&i| dictionaries[i].prune.is_none())
        .collect();
    let mut pairs = Vec::new();
    for &i in &whole {
        for &j in &whole {
            let (a, b) = (&dictionaries[i], &dictionaries[j]);
            if a.name != b.name && a.sae.d_in() == b.sae.d_in() {
                pairs.push(mcs(&a.name, &geometries[i], &b.name, &geometries[j]));
            }
        }
    }
    let measured = dict_sums.first().map_or(0, |s| s.reconstruction.tokens());
    let ctx = windows[0].ids.len();
    Ok(EvalResults {
        format: FORMAT.to_string(),
        version: VERSION,
        model: String::new(),
        corpus: String::new(),
        params: EvalParams {
            tokens_requested: None,
            ctx,
            windows: windows.len(),
            batch_windows: options.batch_windows,
            positions_evaluated: measured,
            include_special: options.include_special,
            reconstruction_positions: if options.include_special {
                "non-padding (special tokens included)".into()
            } else {
                "non-padding, non-special".into()
            },
            splice_positions: "non-padding, non-special (special positions keep their activation)"
                .into(),
            ce_positions: "input token real and not special, next-token target real".into(),
            ce_positions_counted: clean.positions,
            dead_window_tokens: measured.min(options.dead_window),
            legacy_mean: format!(
                "mean over each forward batch of {} windows",
                options.batch_windows
            ),
            random_seed: options.random_seed,
        },
        hooks: hook_results,
        dictionaries: dictionary_results,
        mcs: pairs,
    })
}

fn dictionary_results(
    d: &EvalDictionary,
    s: &DictionarySums,
    h: &HookResults,
    removal: Option<&Removal>,
    geometry: &SaeWeights,
) -> DictionaryResults {
    let (ce_spliced, kl) = (s.spliced.mean_ce(), s.spliced.mean_kl());
    // E‖x‖² of the dictionary's input over the positions measured (METRICS.md: s² = d / E‖x‖²).
    let input_mean_sq_norm = match &s.transcoder_input {
        Some(input) => input.mean(),
        None => s.reconstruction.mean_sq_norm(),
    };
    let (de_raw, norms, b_enc) = match &d.sae {
        AnyDictionary::PerPosition(sae) => {
            let w = &sae.weights;
            // A gated dictionary has no b_enc (its encoder bias is the gate's, b_gate).
            let b_enc = (sae.architecture() != "gated")
                .then(|| w.b_enc.iter().map(|&b| b as f64).collect());
            (de_projection_raw(sae), decoder_norms(w), b_enc)
        }
        // Already in the input's units; a temporal SAE has no encoder bias, and a carry
        // dictionary's reads the residual its carried codes leave.
        AnyDictionary::Contextual(_) => (de_projection(geometry), decoder_norms(geometry), None),
    };
    let de = de_projection_scaled(&de_raw, d.sae.d_in(), input_mean_sq_norm);
    let contextual = s.context.as_ref().map(|c| {
        let (ctx, new) = c.energy;
        Contextual {
            context_share: if ctx + new > 0.0 {
                ctx / (ctx + new)
            } else {
                0.0
            },
            context_energy: ctx,
            new_energy: new,
            l0_on: c.on as f64 / s.reconstruction.tokens().max(1) as f64,
            persistence: summarize(&c.persistence, SUMMARY_MIN_FIRES),
        }
    });
    DictionaryResults {
        name: d.name.clone(),
        path: d.path.clone(),
        hook: d.hook.to_string(),
        input_hook: d.input_hook.map(|h| h.to_string()),
        architecture: d.sae.architecture().to_string(),
        d_in: d.sae.d_in(),
        d_sae: d.sae.d_sae(),
        reconstruction: s.reconstruction.metrics(),
        sparsity: s.sparsity.metrics(),
        downstream: Downstream {
            ce_clean: h.ce_clean,
            ce_spliced,
            ce_delta: ce_spliced - h.ce_clean,
            ce_zero: h.ce_zero,
            ce_mean: h.ce_mean,
            ce_random: s.random.mean_ce(),
            loss_recovered: (h.ce_zero - ce_spliced) / (h.ce_zero - h.ce_clean),
            loss_recovered_mean_ablation: (h.ce_mean - ce_spliced) / (h.ce_mean - h.ce_clean),
            kl,
            kl_random: s.random.mean_kl(),
            kl_div_score: (h.kl_zero - kl) / h.kl_zero,
        },
        geometry: GeometrySummary {
            decoder_norm_mean: mean(&norms),
            de_projection_mean: mean(&de),
            de_projection_median: median(&de),
            de_projection_raw_mean: mean(&de_raw),
            de_projection_raw_median: median(&de_raw),
            input_mean_sq_norm,
        },
        latents: Latents {
            density: s.sparsity.density(),
            de_projection: de,
            de_projection_raw: de_raw,
            decoder_norm: norms,
            b_enc,
        },
        pruned: removal.map(|r| Pruned {
            by: "density".into(),
            count: r.latents.len(),
            densities_removed_sum: r.fires as f64 / r.positions.max(1) as f64,
            density_positions: r.positions,
            removed: r.latents.clone(),
        }),
        contextual,
    }
}

fn check_inputs(
    model: &Transformer,
    windows: &[Window],
    dictionaries: &[EvalDictionary],
    options: &EvalOptions,
) -> Result<()> {
    if dictionaries.is_empty() {
        return Err(EvalError::invalid("dictionaries", "none given"));
    }
    if windows.is_empty() {
        return Err(EvalError::invalid("windows", "no tokens to evaluate"));
    }
    if options.batch_windows == 0 {
        return Err(EvalError::invalid("batch_windows", "must be at least 1"));
    }
    let len = windows[0].ids.len();
    if let Some(w) = windows.iter().find(|w| w.ids.len() != len) {
        return Err(EvalError::invalid(
            "windows",
            format!(
                "all windows must have one length; found {len} and {}",
                w.ids.len()
            ),
        ));
    }
    for (i, d) in dictionaries.iter().enumerate() {
        if dictionaries[..i].iter().any(|e| e.name == d.name) {
            return Err(EvalError::invalid(
                "dictionaries",
                format!("two dictionaries are named `{}`", d.name),
            ));
        }
        for hook in std::iter::once(d.hook).chain(d.input_hook) {
            let width = hook.width(&model.cfg);
            if d.sae.d_in() != width {
                return Err(EvalError::Dictionary {
                    dictionary: d.path.clone(),
                    message: format!(
                        "its d_in is {} but hook `{hook}` of this model has width {width}",
                        d.sae.d_in(),
                    ),
                });
            }
        }
        let transcoder = d.sae.per_position().is_some_and(|s| s.transcoder.is_some());
        if d.input_hook.is_some() != transcoder {
            return Err(EvalError::Dictionary {
                dictionary: d.path.clone(),
                message: "a transcoder needs an input hook, and only a transcoder takes one".into(),
            });
        }
        if let (Some(_), AnyDictionary::Contextual(_)) = (d.prune, &d.sae) {
            return Err(EvalError::Dictionary {
                dictionary: d.path.clone(),
                message: "pruning applies to per-position dictionaries only, not to a \
                          contextual one"
                    .into(),
            });
        }
        if let Some(Prune::Densest(n)) = d.prune {
            if n == 0 || n >= d.sae.d_sae() {
                return Err(EvalError::Dictionary {
                    dictionary: d.path.clone(),
                    message: format!(
                        "cannot prune its {n} densest latents: it has {}, and pruning must \
                         remove at least one and keep at least one",
                        d.sae.d_sae()
                    ),
                });
            }
        }
        if let Some(input) = d.input_hook {
            if !input.precedes(d.hook) {
                return Err(EvalError::Dictionary {
                    dictionary: d.path.clone(),
                    message: format!(
                        "its input hook `{input}` is not before its output hook `{}` in the \
                         forward pass: splicing the output would change the input",
                        d.hook
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The hooks the dictionaries read, in order of first appearance.
fn hooks_of(dictionaries: &[EvalDictionary]) -> Vec<HookPoint> {
    let mut hooks: Vec<HookPoint> = Vec::new();
    for d in dictionaries {
        if !hooks.contains(&d.hook) {
            hooks.push(d.hook);
        }
    }
    hooks
}

/// What the first pass measures.
struct FirstPass {
    /// Each hook's mean over the splice positions (the mean-ablation value).
    means: Vec<Vec<f64>>,
    /// Per dictionary, the latents pruning removes.
    removals: Vec<Option<Removal>>,
}

/// Pass 1: each hook's mean, and each pruned dictionary's firing counts over the measured
/// positions (one count per distinct dictionary and input: pruned copies of one dictionary
/// share it). The forward stops after the last hook's block.
fn first_pass(
    model: &Transformer,
    windows: &[Window],
    dictionaries: &[EvalDictionary],
    hooks: &[HookPoint],
    options: &EvalOptions,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<FirstPass> {
    let mut sums: Vec<Vec<f64>> = hooks
        .iter()
        .map(|h| vec![0.0; h.width(&model.cfg)])
        .collect();
    let input_of = |d: &EvalDictionary| d.input_hook.unwrap_or(d.hook);
    // counter[i]: which firing count dictionary i's pruning reads.
    let mut counted: Vec<usize> = Vec::new();
    let counter: Vec<Option<usize>> = (0..dictionaries.len())
        .map(|i| {
            let d = &dictionaries[i];
            d.prune?;
            let same = counted.iter().position(|&j| {
                let e = &dictionaries[j];
                input_of(e) == input_of(d) && e.sae.per_position() == d.sae.per_position()
            });
            Some(same.unwrap_or_else(|| {
                counted.push(i);
                counted.len() - 1
            }))
        })
        .collect();
    let mut fires: Vec<Vec<u64>> = counted
        .iter()
        .map(|&i| vec![0; dictionaries[i].sae.d_sae()])
        .collect();
    let mut captured = hooks.to_vec();
    for &i in &counted {
        if !captured.contains(&input_of(&dictionaries[i])) {
            captured.push(input_of(&dictionaries[i]));
        }
    }

    let mut n = 0u64;
    let mut measured = 0u64;
    let mut done = 0;
    for chunk in windows.chunks(options.batch_windows) {
        let batch = batch_of(chunk)?;
        let positions = Positions::of(chunk, options.include_special);
        let out = model.forward(&batch, &mut Hooks::capture(captured.iter().copied()))?;
        for (h, sum) in hooks.iter().zip(sums.iter_mut()) {
            let x = flat(out.get(*h).expect("hook was read"))?;
            let width = sum.len();
            for (t, row) in x.chunks(width).enumerate() {
                if positions.splice[t] {
                    sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
                }
            }
        }
        for (&i, fires) in counted.iter().zip(fires.iter_mut()) {
            let d = &dictionaries[i];
            // `check_inputs` lets only per-position dictionaries be pruned.
            let Some(sae) = d.sae.per_position() else {
                continue;
            };
            let x = flat(out.get(input_of(d)).expect("hook was read"))?;
            let features = sae.encode(&x)?;
            // As `SparsitySums` counts a firing: a nonzero activation at a measured position.
            for (t, _) in positions.measured.iter().enumerate().filter(|(_, m)| **m) {
                let (idx, val) = features.row(t);
                for (&j, &v) in idx.iter().zip(val) {
                    if v != 0.0 {
                        fires[j as usize] += 1;
                    }
                }
            }
        }
        n += count(&positions.splice) as u64;
        measured += count(&positions.measured) as u64;
        done += chunk.len();
        progress(EvalProgress {
            pass: 1,
            windows_done: done,
            windows_total: windows.len(),
        });
    }
    let n = n.max(1) as f64;
    let means = sums
        .into_iter()
        .map(|s| s.into_iter().map(|v| v / n).collect())
        .collect();
    let removals = dictionaries
        .iter()
        .zip(&counter)
        .map(|(d, c)| match (d.prune, c) {
            (Some(Prune::Densest(count)), Some(c)) => Some(densest(&fires[*c], count, measured)),
            _ => None,
        })
        .collect();
    Ok(FirstPass { means, removals })
}

/// The `count` latents with the most firings (ties: the lower index first).
fn densest(fires: &[u64], count: usize, positions: u64) -> Removal {
    let mut order: Vec<u32> = (0..fires.len() as u32).collect();
    order.sort_by(|&a, &b| fires[b as usize].cmp(&fires[a as usize]).then(a.cmp(&b)));
    order.truncate(count);
    let mut mask = vec![false; fires.len()];
    for &j in &order {
        mask[j as usize] = true;
    }
    Removal {
        mask,
        fires: order.iter().map(|&j| fires[j as usize]).sum(),
        latents: order,
        positions,
    }
}

/// One model batch of equal-length windows.
pub fn batch_of(windows: &[Window]) -> Result<Batch> {
    let seq = windows[0].ids.len();
    let ids = windows.iter().flat_map(|w| w.ids.iter().copied()).collect();
    let mask = windows
        .iter()
        .flat_map(|w| w.mask.iter().copied())
        .collect();
    Ok(Batch::from_parts(ids, mask, windows.len(), seq)?)
}

/// `x` with the rows at `splice` positions replaced by `row(t)`.
fn spliced(x: &[f32], width: usize, splice: &[bool], row: impl Fn(usize) -> Vec<f32>) -> Vec<f32> {
    let mut out = x.to_vec();
    for (t, chunk) in out.chunks_mut(width).enumerate() {
        if splice[t] {
            chunk.copy_from_slice(&row(t));
        }
    }
    out
}

/// The block an edited forward can restart from for this hook, if any.
pub fn start_layer(hook: HookPoint) -> Option<usize> {
    match hook {
        HookPoint::Block { layer, .. } => Some(layer),
        _ => None,
    }
}

/// `blocks.{layer}.hook_resid_pre`, where an edited forward restarts.
pub fn resid_pre(layer: usize) -> HookPoint {
    HookPoint::Block {
        layer,
        site: BlockSite::ResidPre,
    }
}

/// Logits `[rows, vocab]` of a forward with `hook`'s value replaced by `edited`.
fn edited_logits(
    model: &Transformer,
    batch: &Batch,
    hook: HookPoint,
    start: Option<(usize, &Tensor)>,
    edited: Tensor,
) -> Result<Vec<f32>> {
    let mut hooks = Hooks::logits().edit(hook, move |_| Ok(edited.clone()));
    let out = match start {
        Some((layer, resid)) => model.forward_from(batch, layer, resid, &mut hooks)?,
        None => model.forward(batch, &mut hooks)?,
    };
    flat(out.logits.as_ref().expect("logits were asked for"))
}

/// A tensor's values, row-major, as f32.
fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}
