//! What fires here: a text's tokens, each with the strongest features of every dictionary
//! read at its hook, from one forward that stops after the last block a dictionary needs.

use saelab_data::{Packing, WindowConfig};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel, TextTokenizer};
use saelab_sae::{Dictionary, Sae};

use crate::error::{InterpError, Result};

/// A dictionary and the hook point it reads.
#[derive(Clone, Copy)]
pub struct HookedDictionary<'a> {
    pub name: &'a str,
    pub hook: HookPoint,
    pub sae: &'a Sae,
}

/// How much to read and return.
#[derive(Clone, Copy, Debug)]
pub struct FiresLimits {
    /// The most tokens the text may encode to (the start token included).
    pub max_tokens: usize,
    /// Features kept per token and dictionary, strongest first.
    pub top_n: usize,
}

/// One token of the text and what fired on it.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenFires {
    pub id: u32,
    /// The token decoded alone.
    pub text: String,
    /// The start token and other special tokens (activations there are not comparable).
    pub special: bool,
    /// Per dictionary, in the order given: (feature, activation), strongest first.
    pub top: Vec<Vec<(u32, f32)>>,
}

/// The token ids the model sees for `text`, as a corpus window starts: the start token of
/// [`WindowConfig::for_tokenizer`] first, then the text without any BOS the tokenizer's own
/// post-processor adds (so features read here match the scan's).
pub fn context_ids(tokenizer: &TextTokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = tokenizer.encode(text)?;
    if adds_bos(tokenizer) && !ids.is_empty() {
        ids.remove(0);
    }
    Ok(start_token(tokenizer).into_iter().chain(ids).collect())
}

/// The token put before every text read here, as before every corpus window (the start of
/// [`WindowConfig::for_tokenizer`]); `None` where windows start with the text itself.
pub fn start_token(tokenizer: &TextTokenizer) -> Option<u32> {
    WindowConfig::for_tokenizer(tokenizer, 2, Packing::Packed).start
}

fn adds_bos(tokenizer: &TextTokenizer) -> bool {
    let probe = tokenizer.encode("a").unwrap_or_default();
    tokenizer.bos_id().is_some() && probe.first().copied() == tokenizer.bos_id()
}

/// Tokenizes `text`, runs one forward reading every dictionary's hook, and returns each
/// token with its strongest features per dictionary.
pub fn what_fires(
    loaded: &LoadedModel,
    text: &str,
    dictionaries: &[HookedDictionary<'_>],
    limits: FiresLimits,
) -> Result<Vec<TokenFires>> {
    if text.trim().is_empty() {
        return Err(InterpError::invalid("text", "is empty"));
    }
    let cfg = &loaded.model.cfg;
    for d in dictionaries {
        let width = d.hook.width(cfg);
        if d.sae.d_in() != width {
            return Err(InterpError::Dictionary {
                dictionary: d.name.to_string(),
                message: format!(
                    "reads {} values per token but hook {} has {width}",
                    d.sae.d_in(),
                    d.hook
                ),
            });
        }
    }
    let ids = context_ids(&loaded.tokenizer, text)?;
    let limit = limits.max_tokens.min(cfg.context_length);
    if ids.len() > limit {
        return Err(InterpError::invalid(
            "text",
            format!(
                "encodes to {} tokens; the limit is {limit} tokens",
                ids.len()
            ),
        ));
    }
    let out = loaded.model.forward(
        &Batch::single(&ids),
        &mut Hooks::capture(dictionaries.iter().map(|d| d.hook)),
    )?;
    let mut per_dictionary = Vec::with_capacity(dictionaries.len());
    for d in dictionaries {
        let value = out.get(d.hook).ok_or_else(|| {
            InterpError::invalid("hook", format!("{}: the forward read no value", d.hook))
        })?;
        let x_td = value
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let features = d.sae.encode(&x_td)?;
        let tops: Vec<Vec<(u32, f32)>> = (0..ids.len())
            .map(|t| strongest(features.row(t), limits.top_n))
            .collect();
        per_dictionary.push(tops);
    }
    let mut tokens = Vec::with_capacity(ids.len());
    for (t, &id) in ids.iter().enumerate() {
        tokens.push(TokenFires {
            id,
            text: loaded.tokenizer.decode(&[id])?,
            special: loaded.tokenizer.is_special(id),
            top: per_dictionary.iter().map(|d| d[t].clone()).collect(),
        });
    }
    Ok(tokens)
}

/// The `n` largest positive entries of a sparse row, largest first (lower index on ties).
fn strongest((idx, val): (&[u32], &[f32]), n: usize) -> Vec<(u32, f32)> {
    let mut entries: Vec<(u32, f32)> = idx
        .iter()
        .copied()
        .zip(val.iter().copied())
        .filter(|(_, v)| *v > 0.0)
        .collect();
    entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    entries.truncate(n);
    entries
}
