//! The evaluation driver: one clean forward per batch feeds every dictionary and baseline;
//! each edited forward restarts at the hook's block from the clean residual stream, so the
//! blocks before the hook run once per batch, not once per variant.

use candle_core::Tensor;
use saelab_data::windows::Window;
use saelab_model::{Batch, BlockSite, HookPoint, Hooks, Transformer};
use saelab_sae::rng::SplitMix64;
use saelab_sae::{Dictionary, Sae};

use crate::cross_entropy::{CeSums, CleanDistributions};
use crate::error::{EvalError, Result};
use crate::geometry::{de_projection, decoder_norms, mcs};
use crate::histogram::{mean, median};
use crate::perturbation::random_perturbation;
use crate::positions::{count, Positions};
use crate::reconstruction::ReconstructionSums;
use crate::results::{
    DictionaryResults, Downstream, EvalParams, EvalResults, GeometrySummary, HookResults, Latents,
    FORMAT, VERSION,
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
    pub sae: Sae,
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
    sparsity: SparsitySums,
    spliced: CeSums,
    random: CeSums,
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
    let means = hook_means(model, windows, &hooks, options, progress)?;

    let mut dict_sums: Vec<DictionarySums> = dictionaries
        .iter()
        .map(|d| DictionarySums {
            reconstruction: ReconstructionSums::new(d.sae.d_in()),
            sparsity: SparsitySums::new(d.sae.d_sae(), options.dead_window),
            spliced: CeSums::default(),
            random: CeSums::default(),
        })
        .collect();
    let mut hook_sums: Vec<HookSums> = hooks.iter().map(|_| HookSums::default()).collect();
    let mut clean = CeSums::default();
    let rng = SplitMix64::new(options.random_seed);
    let mut done = 0;
    for chunk in windows.chunks(options.batch_windows) {
        let batch = batch_of(chunk)?;
        let positions = Positions::of(chunk, options.include_special);
        let first_row = (done * chunk[0].ids.len()) as u64;

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

            for (d, sums) in dictionaries.iter().zip(dict_sums.iter_mut()) {
                if d.hook != hook {
                    continue;
                }
                // A transcoder predicts this hook from its input hook's clean activation.
                let forward = match d.input_hook {
                    Some(h) => d
                        .sae
                        .forward(&flat(out.get(h).expect("input hook was read"))?)?,
                    None => d.sae.forward(&x)?,
                };
                let x_hat = &forward.reconstruction;
                sums.reconstruction
                    .add_batch(&x, x_hat, &positions.measured);
                sums.sparsity
                    .add_batch(&forward.features, &positions.measured);
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
        .map(|(d, s)| {
            let h = &hook_results[hooks.iter().position(|&p| p == d.hook).expect("listed")];
            dictionary_results(d, s, h)
        })
        .collect();
    let mut pairs = Vec::new();
    for a in dictionaries {
        for b in dictionaries {
            if a.name != b.name && a.sae.d_in() == b.sae.d_in() {
                pairs.push(mcs(&a.name, &a.sae.weights, &b.name, &b.sae.weights));
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
) -> DictionaryResults {
    let (ce_spliced, kl) = (s.spliced.mean_ce(), s.spliced.mean_kl());
    let w = &d.sae.weights;
    let de = de_projection(w);
    let norms = decoder_norms(w);
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
        },
        latents: Latents {
            density: s.sparsity.density(),
            de_projection: de,
            decoder_norm: norms,
            // A gated dictionary has no b_enc (its encoder bias is the gate's, b_gate).
            b_enc: (d.sae.architecture() != "gated")
                .then(|| w.b_enc.iter().map(|&b| b as f64).collect()),
        },
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
        if d.input_hook.is_some() != d.sae.transcoder.is_some() {
            return Err(EvalError::Dictionary {
                dictionary: d.path.clone(),
                message: "a transcoder needs an input hook, and only a transcoder takes one".into(),
            });
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

/// Pass 1: each hook's mean over the splice positions (the mean-ablation value). The
/// forward stops after the last hook's block.
fn hook_means(
    model: &Transformer,
    windows: &[Window],
    hooks: &[HookPoint],
    options: &EvalOptions,
    progress: &mut dyn FnMut(EvalProgress),
) -> Result<Vec<Vec<f64>>> {
    let mut sums: Vec<Vec<f64>> = hooks
        .iter()
        .map(|h| vec![0.0; h.width(&model.cfg)])
        .collect();
    let mut n = 0u64;
    let mut done = 0;
    for chunk in windows.chunks(options.batch_windows) {
        let batch = batch_of(chunk)?;
        let positions = Positions::of(chunk, options.include_special);
        let out = model.forward(&batch, &mut Hooks::capture(hooks.iter().copied()))?;
        for (h, sum) in hooks.iter().zip(sums.iter_mut()) {
            let x = flat(out.get(*h).expect("hook was read"))?;
            let width = sum.len();
            for (t, row) in x.chunks(width).enumerate() {
                if positions.splice[t] {
                    sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
                }
            }
        }
        n += count(&positions.splice) as u64;
        done += chunk.len();
        progress(EvalProgress {
            pass: 1,
            windows_done: done,
            windows_total: windows.len(),
        });
    }
    let n = n.max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|s| s.into_iter().map(|v| v / n).collect())
        .collect())
}

fn batch_of(windows: &[Window]) -> Result<Batch> {
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
fn start_layer(hook: HookPoint) -> Option<usize> {
    match hook {
        HookPoint::Block { layer, .. } => Some(layer),
        _ => None,
    }
}

fn resid_pre(layer: usize) -> HookPoint {
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
