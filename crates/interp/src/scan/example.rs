//! An activating example: a position of a window, with the feature's activation at every
//! token of the context shown around it.

use std::sync::Arc;

/// A window's real token ids, shared by every example drawn from it: a window that tops
/// many features is held once.
pub type WindowIds = Arc<[u32]>;

#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// Index of the window in the scan.
    pub window: u64,
    pub ids: WindowIds,
    /// The example's position in the window.
    pub pos: u32,
    pub value: f32,
    /// First position of the shown context; `acts` covers `start..start + acts.len()`.
    pub start: u32,
    pub acts: Vec<f32>,
    /// The seeded random key that chose a quantile example (0 for top examples).
    pub key: u64,
}

impl Example {
    pub fn token(&self) -> u32 {
        self.ids[self.pos as usize]
    }

    /// Position of the example in the scan (`window · ctx + pos`), which orders ties.
    pub fn row(&self, ctx: usize) -> u64 {
        self.window * ctx as u64 + self.pos as u64
    }
}

/// How much context an example keeps around its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextSpan {
    pub before: usize,
    pub after: usize,
}

impl ContextSpan {
    /// The shown positions around `pos` in a window of `len` real tokens.
    pub fn around(&self, pos: usize, len: usize) -> std::ops::Range<usize> {
        pos.saturating_sub(self.before)..(pos + self.after + 1).min(len)
    }
}
