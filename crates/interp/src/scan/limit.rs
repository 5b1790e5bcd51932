//! The first N tokens of a window stream, as `saelab eval` reads them: window positions
//! counted with their start and separator tokens, the last window masked after its N-th.

use saelab_data::activations::ActivationWindow;

use crate::error::{InterpError, Result};

pub struct FirstTokens<I> {
    inner: I,
    remaining: u64,
}

impl<I> FirstTokens<I> {
    pub fn new(inner: I, tokens: u64) -> Self {
        FirstTokens {
            inner,
            remaining: tokens,
        }
    }
}

impl<I: Iterator<Item = saelab_data::Result<ActivationWindow>>> Iterator for FirstTokens<I> {
    type Item = Result<ActivationWindow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut window = match self.inner.next()? {
            Ok(w) => w,
            Err(e) => return Some(Err(InterpError::Data(e))),
        };
        let mut seen = 0u64;
        for t in 0..window.ids.len() {
            if window.mask[t] == 1 {
                if seen >= self.remaining {
                    window.mask[t] = 0;
                    window.special[t] = true;
                }
                seen += 1;
            }
        }
        self.remaining = self.remaining.saturating_sub(seen);
        Some(Ok(window))
    }
}

/// Refills `chunk` with up to `size` windows from `windows`; false once none are left.
pub fn next_chunk<I: Iterator<Item = Result<ActivationWindow>>>(
    windows: &mut I,
    size: usize,
    chunk: &mut Vec<ActivationWindow>,
) -> Result<bool> {
    chunk.clear();
    while chunk.len() < size {
        match windows.next() {
            Some(w) => chunk.push(w?),
            None => break,
        }
    }
    Ok(!chunk.is_empty())
}
