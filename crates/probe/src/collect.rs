//! What a probe reads: each document's hook activations (and dictionary features), pooled per
//! document or kept per token, from one forward per batch of documents that stops after the
//! last block needed.

use std::fmt;
use std::str::FromStr;

use candle_core::DType;
use saelab_interp::fires::context_ids;
use saelab_interp::fires::start_token;
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel, PadSide};
use saelab_sae::{Dictionary, Sae};
use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::split::shuffle;

/// Which positions of a document become probe rows. The start token is never one: it is
/// the same token in every document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// One row per document: the mean over its tokens.
    Mean,
    /// One row per document: its last token (the end of the context read).
    Last,
    /// One row per token, at most this many per document (picked by seed), all labelled
    /// with the document's label.
    Tokens(usize),
}

impl FromStr for Positions {
    type Err = ProbeError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Positions::Mean),
            "last" => Ok(Positions::Last),
            "tokens" => Ok(Positions::Tokens(16)),
            _ => Err(ProbeError::invalid(
                "positions",
                format!("`{s}`: expected mean, last or tokens"),
            )),
        }
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Positions::Mean => write!(f, "mean over each document's tokens"),
            Positions::Last => write!(f, "each document's last token"),
            Positions::Tokens(n) => write!(f, "up to {n} tokens per document"),
        }
    }
}

/// A dictionary whose features are read as one representation.
pub struct DictionaryAt<'a> {
    pub name: String,
    pub hook: HookPoint,
    pub sae: &'a Sae,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Activations,
    Features,
}

/// Rows of one representation, row-major `[rows, dim]`.
pub struct Representation {
    /// The hook for activations, the dictionary's name for features.
    pub name: String,
    pub hook: HookPoint,
    pub source: Source,
    pub dim: usize,
    pub values: Vec<f32>,
}

pub struct Collected {
    /// The document of each row.
    pub row_document: Vec<usize>,
    pub representations: Vec<Representation>,
    /// Tokens run through the model (start tokens included).
    pub tokens: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct CollectOptions {
    /// Tokens read per document, the start token included.
    pub ctx: usize,
    pub positions: Positions,
    /// Documents per forward.
    pub batch: usize,
    pub seed: u64,
}

/// Runs every document (its first `ctx` tokens) and returns one representation per hook in
/// `hooks` (activations) and per dictionary (features), rows in document order.
/// `progress(done)` is told the documents done after each batch.
pub fn collect(
    loaded: &LoadedModel,
    texts: &[String],
    hooks: &[HookPoint],
    dictionaries: &[DictionaryAt<'_>],
    options: &CollectOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Collected> {
    let cfg = &loaded.model.cfg;
    if options.ctx < 2 || options.ctx > cfg.context_length {
        return Err(ProbeError::invalid(
            "ctx",
            format!(
                "{} tokens: needs at least 2 (a start token and one token of text) and at most \
                 the model's context of {}",
                options.ctx, cfg.context_length
            ),
        ));
    }
    if let Positions::Tokens(0) = options.positions {
        return Err(ProbeError::invalid(
            "positions",
            "tokens per document must be at least 1",
        ));
    }
    for d in dictionaries {
        let width = d.hook.width(cfg);
        if d.sae.d_in() != width {
            return Err(ProbeError::invalid(
                "dictionary",
                format!(
                    "`{}` reads {} values per token but {} has {width}",
                    d.name,
                    d.sae.d_in(),
                    d.hook
                ),
            ));
        }
    }
    let mut read: Vec<HookPoint> = hooks.to_vec();
    read.extend(dictionaries.iter().map(|d| d.hook));
    read.sort_unstable();
    read.dedup();
    let mut representations: Vec<Representation> = hooks
        .iter()
        .map(|&hook| Representation {
            name: hook.to_string(),
            hook,
            source: Source::Activations,
            dim: hook.width(cfg),
            values: Vec::new(),
        })
        .chain(dictionaries.iter().map(|d| Representation {
            name: d.name.clone(),
            hook: d.hook,
            source: Source::Features,
            dim: d.sae.d_sae(),
            values: Vec::new(),
        }))
        .collect();
    let skip = usize::from(start_token(&loaded.tokenizer).is_some());
    let pad = loaded.tokenizer.eos_id().unwrap_or(0);
    let mut row_document = Vec::new();
    let mut tokens = 0;
    for (first, chunk) in (0..texts.len())
        .step_by(options.batch.max(1))
        .map(|s| (s, &texts[s..(s + options.batch.max(1)).min(texts.len())]))
    {
        let mut rows = Vec::with_capacity(chunk.len());
        for text in chunk {
            let mut ids = context_ids(&loaded.tokenizer, text)?;
            ids.truncate(options.ctx);
            tokens += ids.len();
            rows.push(ids);
        }
        let batch = Batch::padded(&rows, PadSide::Right, pad);
        let mut capture = Hooks::capture(read.iter().copied());
        let out = loaded.model.forward(&batch, &mut capture)?;
        let seq = batch.seq_len();
        for &hook in &read {
            let value = out
                .get(hook)
                .ok_or_else(|| ProbeError::invalid("hook", format!("{hook} was not captured")))?;
            let width = hook.width(cfg);
            let flat = value
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            for (r, ids) in rows.iter().enumerate() {
                let document = first + r;
                let picked = pick_positions(ids.len(), skip, options, document);
                if picked.is_empty() {
                    continue;
                }
                let token_rows: Vec<f32> = picked
                    .iter()
                    .flat_map(|&p| {
                        let at = (r * seq + p) * width;
                        flat[at..at + width].iter().copied()
                    })
                    .collect();
                for rep in representations.iter_mut().filter(|rep| rep.hook == hook) {
                    let dense = match rep.source {
                        Source::Activations => token_rows.clone(),
                        Source::Features => {
                            let d = dictionaries
                                .iter()
                                .find(|d| d.name == rep.name)
                                .expect("every feature representation has its dictionary");
                            dense_features(d.sae, &token_rows)?
                        }
                    };
                    pool_into(&mut rep.values, &dense, rep.dim, options.positions);
                }
                if hook == read[0] {
                    let rows_added = match options.positions {
                        Positions::Tokens(_) => picked.len(),
                        _ => 1,
                    };
                    row_document.extend(std::iter::repeat_n(document, rows_added));
                }
            }
        }
        progress(first + chunk.len());
    }
    Ok(Collected {
        row_document,
        representations,
        tokens,
    })
}

/// The positions of a document of `len` tokens that become rows (the first `skip` are the
/// start token).
fn pick_positions(
    len: usize,
    skip: usize,
    options: &CollectOptions,
    document: usize,
) -> Vec<usize> {
    let mut all: Vec<usize> = (skip..len).collect();
    match options.positions {
        Positions::Mean => all,
        Positions::Last => all.last().map(|&p| vec![p]).unwrap_or_default(),
        Positions::Tokens(n) => {
            if all.len() > n {
                shuffle(
                    &mut all,
                    options.seed ^ (document as u64).wrapping_mul(0x9E37_79B9),
                );
                all.truncate(n);
                all.sort_unstable();
            }
            all
        }
    }
}

/// A dictionary's features of `rows` token rows as dense rows.
fn dense_features(sae: &Sae, token_rows: &[f32]) -> Result<Vec<f32>> {
    let features = sae.encode(token_rows)?;
    let d_sae = sae.d_sae();
    let n = token_rows.len() / sae.d_in();
    let mut dense = vec![0f32; n * d_sae];
    for t in 0..n {
        let (idx, val) = features.row(t);
        for (&i, &v) in idx.iter().zip(val) {
            dense[t * d_sae + i as usize] = v;
        }
    }
    Ok(dense)
}

/// Appends a document's rows as `positions` asks: their mean, or every row (`Last` and
/// `Tokens` were already picked).
fn pool_into(out: &mut Vec<f32>, dense: &[f32], dim: usize, positions: Positions) {
    match positions {
        Positions::Mean => {
            let n = dense.len() / dim;
            let start = out.len();
            out.resize(start + dim, 0.0);
            for row in dense.chunks_exact(dim) {
                for (o, v) in out[start..].iter_mut().zip(row) {
                    *o += v;
                }
            }
            for o in &mut out[start..] {
                *o /= n as f32;
            }
        }
        Positions::Last | Positions::Tokens(_) => out.extend_from_slice(dense),
    }
}
