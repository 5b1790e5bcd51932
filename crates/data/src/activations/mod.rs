//! Activations of one or more hook points, window by window: produced by a model forward
//! (live) or read back from a disk cache, on a background thread, and mixed by a shuffling
//! buffer of bounded memory into the batches trainers consume.

pub mod buffer;
pub mod live;
pub mod stats;
pub mod stream;

pub use buffer::{ActivationBatch, ActivationBuffer, BatchShape, BufferConfig};
pub use live::{live_windows, LiveSpec};
pub use stats::{HookStats, NormStats};
pub use stream::{Sink, WindowStream};

use crate::error::{DataError, Result};

/// What a stream of activation windows holds: the context length and, for each hook, its
/// name and width.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    pub ctx: usize,
    pub hooks: Vec<HookLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookLayout {
    pub name: String,
    pub d: usize,
}

/// Refuses a hook named twice. A hook's name is its tensor's name in a shard and its key in
/// the manifest's statistics, so a repeat cannot be stored, and it is never what was meant.
pub fn check_distinct_hooks<S: AsRef<str>>(names: &[S]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        let name = name.as_ref();
        if names[..i].iter().any(|n| n.as_ref() == name) {
            return Err(DataError::invalid(
                "hook",
                format!("{name} is given more than once; give each hook once"),
            ));
        }
    }
    Ok(())
}

impl Layout {
    /// Refuses a repeated hook (see [`check_distinct_hooks`]).
    pub fn check(&self) -> Result<()> {
        let names: Vec<&str> = self.hooks.iter().map(|h| h.name.as_str()).collect();
        check_distinct_hooks(&names)
    }

    /// Floats per token, all hooks together.
    pub fn row_len(&self) -> usize {
        self.hooks.iter().map(|h| h.d).sum()
    }
}

/// One context window with the activations of every hook at every position.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationWindow {
    /// Index of the window in its stream (0 for the first window of the corpus).
    pub index: u64,
    pub ids: Vec<u32>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<u8>,
    /// Start, separator, padding and other special tokens: left out of token batches.
    pub special: Vec<bool>,
    /// Per hook, `[ctx, d]` row-major.
    pub hooks: Vec<Vec<f32>>,
}

impl ActivationWindow {
    /// Positions that count as training tokens (real and not special).
    pub fn counted(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.ids.len()).filter(|&t| self.mask[t] == 1 && !self.special[t])
    }
}
