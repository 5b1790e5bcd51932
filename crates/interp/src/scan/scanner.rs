//! The scan driver: dictionaries, their hooks in the stream, and the per-feature states.
//!
//! A contextual dictionary (carry, temporal) runs over each window whole and in order, and
//! the scan records its codes, what is on at each position: a feature that marks a region
//! shows on through the region in its examples, not only where it was paid for.

use std::sync::Arc;

use rayon::prelude::*;
use saelab_data::activations::{ActivationWindow, Layout};
use saelab_model::HookPoint;
use saelab_sae::contextual::window::AnyDictionary;
use saelab_sae::rng::SplitMix64;
use saelab_sae::{Dictionary, SparseFeatures};

use super::example::{ContextSpan, Example, WindowIds};
use super::feature::{FeatureScan, FeatureState};
use crate::error::{InterpError, Result};

/// A dictionary to scan, at its hook.
pub struct ScanDictionary {
    pub name: String,
    pub path: String,
    pub hook: HookPoint,
    /// A per-position dictionary (`Sae`, `.into()`) or a contextual one.
    pub sae: AnyDictionary,
}

#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Top activating examples kept per feature.
    pub top_k: usize,
    /// B: the quantile grid's resolution (B + 1 to 2B bins are reported; see `quantile`).
    pub quantile_bins: usize,
    /// Examples sampled per quantile bin.
    pub per_bin: usize,
    /// Tokens of context kept around each example.
    pub context: ContextSpan,
    /// Count special-token positions (start, separator) too.
    pub include_special: bool,
    /// Seed of the quantile sampling.
    pub seed: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            top_k: 20,
            quantile_bins: 10,
            per_bin: 5,
            context: ContextSpan {
                before: 24,
                after: 4,
            },
            include_special: false,
            seed: 0,
        }
    }
}

/// The most memory the kept examples may take in the worst case (every feature keeping
/// every example it may), before any work starts.
const EXAMPLE_MEMORY_LIMIT: u64 = 16 << 30;

impl ScanOptions {
    /// Refuses settings that cannot work or whose examples could not fit in memory for
    /// `features` features.
    pub fn check(&self, features: usize) -> Result<()> {
        let bound = |field: &str, value: usize, max: usize| {
            if value > max {
                Err(InterpError::invalid(
                    field,
                    format!("= {value} is more than the {max} allowed"),
                ))
            } else {
                Ok(())
            }
        };
        bound("top_k", self.top_k, 10_000)?;
        bound("quantile_bins", self.quantile_bins, 1_000)?;
        bound("per_bin", self.per_bin, 1_000)?;
        bound("context_before", self.context.before, 65_536)?;
        bound("context_after", self.context.after, 65_536)?;
        if self.quantile_bins == 0 && self.per_bin > 0 {
            return Err(InterpError::invalid(
                "quantile_bins",
                "must be at least 1 (or per_bin 0 for no quantile examples)",
            ));
        }
        let per_feature = (self.top_k + 2 * self.quantile_bins * self.per_bin) as u64;
        let context = (self.context.before + self.context.after + 1) as u64;
        let worst = features as u64 * per_feature * context * 4;
        if worst > EXAMPLE_MEMORY_LIMIT {
            return Err(InterpError::invalid(
                "top_k",
                format!(
                    "{features} features × {per_feature} examples × {context} context tokens \
                     could hold {:.1} GiB of examples (the limit is {} GiB): keep fewer examples \
                     or less context",
                    worst as f64 / (1u64 << 30) as f64,
                    EXAMPLE_MEMORY_LIMIT >> 30
                ),
            ));
        }
        Ok(())
    }
}

/// One dictionary's scan results.
pub struct DictionaryScan {
    pub name: String,
    pub path: String,
    pub hook: HookPoint,
    pub sae: AnyDictionary,
    pub architecture: String,
    pub d_in: usize,
    pub d_sae: usize,
    /// Positions counted (real, and not special unless included).
    pub positions: u64,
    /// Mean number of active features per counted position (a contextual dictionary's
    /// codes on, carried ones included).
    pub l0: f64,
    pub features: Vec<FeatureScan>,
}

struct DictionaryState {
    dictionary: ScanDictionary,
    /// Index of the dictionary's hook in the stream's layout.
    hook_index: usize,
    features: Vec<FeatureState>,
    positions: u64,
    active: u64,
}

pub struct Scanner {
    options: ScanOptions,
    ctx: usize,
    dictionaries: Vec<DictionaryState>,
}

/// Features updated together by one task.
const FEATURE_BLOCK: usize = 256;

impl Scanner {
    /// Checks each dictionary against the stream's layout (its hook must be there, with
    /// the dictionary's width).
    pub fn new(
        layout: &Layout,
        dictionaries: Vec<ScanDictionary>,
        options: ScanOptions,
    ) -> Result<Self> {
        if dictionaries.is_empty() {
            return Err(InterpError::invalid("dictionaries", "none given"));
        }
        options.check(dictionaries.iter().map(|d| d.sae.d_sae()).sum())?;
        let mut states = Vec::new();
        for (i, d) in dictionaries.into_iter().enumerate() {
            let name = d.hook.to_string();
            let hook_index = layout
                .hooks
                .iter()
                .position(|h| h.name == name)
                .ok_or_else(|| InterpError::Dictionary {
                    dictionary: d.name.clone(),
                    message: format!("its hook `{name}` is not in the activations"),
                })?;
            let width = layout.hooks[hook_index].d;
            if d.sae.d_in() != width {
                return Err(InterpError::Dictionary {
                    dictionary: d.path.clone(),
                    message: format!(
                        "its d_in is {} but hook `{name}` has width {width}",
                        d.sae.d_in()
                    ),
                });
            }
            if states
                .iter()
                .any(|s: &DictionaryState| s.dictionary.name == d.name)
            {
                return Err(InterpError::invalid(
                    "dictionaries",
                    format!("two dictionaries are named `{}` (dictionary {i})", d.name),
                ));
            }
            let features = (0..d.sae.d_sae())
                .map(|_| FeatureState::new(options.top_k, options.quantile_bins, options.per_bin))
                .collect();
            states.push(DictionaryState {
                dictionary: d,
                hook_index,
                features,
                positions: 0,
                active: 0,
            });
        }
        Ok(Scanner {
            options,
            ctx: layout.ctx,
            dictionaries: states,
        })
    }

    /// Scans a batch of windows (in stream order, each of the layout's length).
    pub fn add(&mut self, windows: &[ActivationWindow]) -> Result<()> {
        if windows.is_empty() {
            return Ok(());
        }
        if let Some(w) = windows.iter().find(|w| w.ids.len() != self.ctx) {
            return Err(InterpError::invalid(
                "windows",
                format!(
                    "a window holds {} tokens, expected {}",
                    w.ids.len(),
                    self.ctx
                ),
            ));
        }
        let ctx = self.ctx;
        let counted: Vec<bool> = windows
            .iter()
            .flat_map(|w| {
                (0..ctx).map(|t| w.mask[t] == 1 && (self.options.include_special || !w.special[t]))
            })
            .collect();
        let ids: Vec<WindowIds> = windows.iter().map(real_ids).collect();
        let batch = Batch {
            windows,
            ids: &ids,
            counted: &counted,
            ctx,
        };
        for (d_index, state) in self.dictionaries.iter_mut().enumerate() {
            let d_in = state.dictionary.sae.d_in();
            let mut x = Vec::with_capacity(windows.len() * ctx * d_in);
            for w in windows {
                x.extend_from_slice(&w.hooks[state.hook_index]);
            }
            let features = match &state.dictionary.sae {
                AnyDictionary::PerPosition(sae) => sae.encode(&x)?,
                // Rows are window-major, positions in order: whole windows of `ctx`,
                // read from their second position as in training.
                AnyDictionary::Contextual(c) => c.run_after_start(&x, ctx)?.codes,
            };
            drop(x);
            let entries = by_feature(&features, &counted);
            state.positions += counted.iter().filter(|c| **c).count() as u64;
            state.active += entries.len() as u64;
            let options = &self.options;
            state
                .features
                .par_chunks_mut(FEATURE_BLOCK)
                .enumerate()
                .for_each(|(block, chunk)| {
                    for (i, feature_state) in chunk.iter_mut().enumerate() {
                        let f = block * FEATURE_BLOCK + i;
                        let rows = entries.feature(f).iter().map(|e| e.0 as usize);
                        feature_state.runs.add(rows, &counted, ctx);
                        for &(row, value) in entries.feature(f) {
                            let update = Update {
                                batch: &batch,
                                features: &features,
                                options,
                                dictionary: d_index,
                                feature: f,
                                row: row as usize,
                                value,
                            };
                            update.apply(feature_state);
                        }
                    }
                });
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<DictionaryScan> {
        self.dictionaries
            .into_iter()
            .map(|s| {
                let d = s.dictionary;
                DictionaryScan {
                    architecture: d.sae.architecture(),
                    d_in: d.sae.d_in(),
                    d_sae: d.sae.d_sae(),
                    l0: s.active as f64 / s.positions.max(1) as f64,
                    positions: s.positions,
                    features: s
                        .features
                        .into_iter()
                        .map(|f| f.finish(s.positions))
                        .collect(),
                    name: d.name,
                    path: d.path,
                    hook: d.hook,
                    sae: d.sae,
                }
            })
            .collect()
    }
}

/// A window's ids up to its last real token.
fn real_ids(w: &ActivationWindow) -> WindowIds {
    let len = w.mask.iter().rposition(|&m| m == 1).map_or(0, |p| p + 1);
    Arc::from(&w.ids[..len])
}

/// The batch as the feature updates see it.
struct Batch<'a> {
    windows: &'a [ActivationWindow],
    ids: &'a [WindowIds],
    counted: &'a [bool],
    ctx: usize,
}

/// The nonzero activations at counted rows, grouped by feature, rows ascending.
struct ByFeature {
    offsets: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl ByFeature {
    fn feature(&self, f: usize) -> &[(u32, f32)] {
        &self.entries[self.offsets[f]..self.offsets[f + 1]]
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

fn by_feature(features: &SparseFeatures, counted: &[bool]) -> ByFeature {
    let kept = |row: usize| {
        let (idx, val) = features.row(row);
        idx.iter()
            .zip(val)
            .filter(move |(_, &v)| counted[row] && v != 0.0)
    };
    let mut offsets = vec![0usize; features.d_sae + 1];
    for row in 0..features.rows {
        for (&j, _) in kept(row) {
            offsets[j as usize + 1] += 1;
        }
    }
    for f in 0..features.d_sae {
        offsets[f + 1] += offsets[f];
    }
    let mut next = offsets.clone();
    let mut entries = vec![(0u32, 0f32); offsets[features.d_sae]];
    for row in 0..features.rows {
        for (&j, &v) in kept(row) {
            entries[next[j as usize]] = (row as u32, v);
            next[j as usize] += 1;
        }
    }
    ByFeature { offsets, entries }
}

/// One nonzero activation offered to a feature's state.
struct Update<'a> {
    batch: &'a Batch<'a>,
    features: &'a SparseFeatures,
    options: &'a ScanOptions,
    dictionary: usize,
    feature: usize,
    /// Row in the batch: `window · ctx + position`.
    row: usize,
    value: f32,
}

impl Update<'_> {
    fn apply(&self, state: &mut FeatureState) {
        state.count(self.value);
        let (w, pos) = (self.row / self.batch.ctx, self.row % self.batch.ctx);
        let window = &self.batch.windows[w];
        let scan_row = window.index * self.batch.ctx as u64 + pos as u64;
        if state.top.admits(self.value, scan_row) {
            state.top.push(scan_row, self.example(0));
        }
        let key = sample_key(self.options.seed, self.dictionary, self.feature, scan_row);
        if let Some(bin) = state.quantiles.admit(self.value, key) {
            state.quantiles.insert(bin, self.example(key));
        }
    }

    /// The example at this activation, with the feature's value at every shown position
    /// (0 at positions the scan does not count).
    fn example(&self, key: u64) -> Example {
        let ctx = self.batch.ctx;
        let (w, pos) = (self.row / ctx, self.row % ctx);
        let ids = self.batch.ids[w].clone();
        let shown = self.options.context.around(pos, ids.len());
        let acts = shown
            .clone()
            .map(|t| {
                let row = w * ctx + t;
                if !self.batch.counted[row] {
                    return 0.0;
                }
                let (idx, val) = self.features.row(row);
                idx.binary_search(&(self.feature as u32))
                    .map_or(0.0, |k| val[k])
            })
            .collect();
        Example {
            window: self.batch.windows[w].index,
            ids,
            pos: pos as u32,
            value: self.value,
            start: shown.start as u32,
            acts,
            key,
        }
    }
}

/// The seeded random key of an activation for quantile sampling: a hash of the seed, the
/// dictionary, the feature and the position, so the sample never depends on batch sizes
/// or threads.
fn sample_key(seed: u64, dictionary: usize, feature: usize, row: u64) -> u64 {
    let a = mix(seed ^ mix(((dictionary as u64) << 40) ^ feature as u64));
    mix(a ^ row)
}

/// SplitMix64's output function: one step of the generator started at `z`.
fn mix(z: u64) -> u64 {
    SplitMix64::new(z).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_fit_are_refused_before_any_work() {
        let options = ScanOptions::default();
        assert!(options.check(16_384).is_ok());
        let huge = ScanOptions {
            top_k: 10_000,
            per_bin: 1_000,
            ..ScanOptions::default()
        };
        let err = huge.check(16_384).unwrap_err().to_string();
        assert!(err.contains("GiB"), "{err}");
        let too_many = ScanOptions {
            top_k: 1 << 40,
            ..ScanOptions::default()
        };
        assert!(too_many.check(1).unwrap_err().to_string().contains("top_k"));
        let no_bins = ScanOptions {
            quantile_bins: 0,
            ..ScanOptions::default()
        };
        assert!(no_bins.check(1).is_err());
    }
}
