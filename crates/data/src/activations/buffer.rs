//! The shuffling buffer: activations from many windows held in memory of a fixed size, and
//! batches drawn from it at random, either single tokens `[B, d]` or whole windows
//! `[B, ctx, d]` with their masks (for dictionaries that look at context).
//!
//! The buffer is filled to capacity, batches are drawn without replacement, and once it is
//! below half full it is topped up again from the stream. Refills depend only on counts, not
//! on timing, so a seed gives the same batches whether the stream is live or read from disk.

use super::stream::WindowStream;
use super::{ActivationWindow, Layout};
use crate::error::{DataError, Result};
use crate::shuffle::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchShape {
    /// `B` token positions from anywhere in the buffer.
    Tokens(usize),
    /// `B` whole windows.
    Windows(usize),
}

impl BatchShape {
    pub fn rows(&self) -> usize {
        match *self {
            BatchShape::Tokens(b) | BatchShape::Windows(b) => b,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BufferConfig {
    /// Memory for the buffered activations and their token data, in bytes.
    pub bytes: usize,
    pub shape: BatchShape,
    pub seed: u64,
    /// Token batches: keep start, separator and other special positions (padding never).
    pub include_special: bool,
}

/// One batch. Token batches: `hooks[h]` is `[rows, d_h]`, and `ids`, `special` and `origin`
/// have one entry per row. Window batches: `hooks[h]` is `[rows, ctx, d_h]` and `ids`,
/// `mask`, `special` are `[rows, ctx]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationBatch {
    pub shape: BatchShape,
    pub rows: usize,
    pub hooks: Vec<Vec<f32>>,
    pub ids: Vec<u32>,
    pub mask: Vec<u8>,
    pub special: Vec<bool>,
    /// Where each row came from: (window index, position); position 0 for window rows.
    pub origin: Vec<(u64, u32)>,
}

/// Bytes of bookkeeping per buffered position besides the activations: id, mask, special.
const TOKEN_DATA_BYTES: usize = 6;
/// Bytes of bookkeeping per buffered row: its origin.
const ROW_DATA_BYTES: usize = 12;

pub struct ActivationBuffer {
    stream: WindowStream,
    layout: Layout,
    config: BufferConfig,
    rng: SplitMix64,
    /// Positions per row: 1 for tokens, ctx for windows.
    row_positions: usize,
    capacity: usize,
    values: Vec<f32>,
    ids: Vec<u32>,
    mask: Vec<u8>,
    special: Vec<bool>,
    origin: Vec<(u64, u32)>,
    exhausted: bool,
    failed: bool,
}

impl ActivationBuffer {
    pub fn new(stream: WindowStream, config: BufferConfig) -> Result<Self> {
        let layout = stream.layout().clone();
        layout.check()?;
        let rows = config.shape.rows();
        if rows == 0 {
            return Err(DataError::invalid("batch size", "must be positive"));
        }
        let row_positions = match config.shape {
            BatchShape::Tokens(_) => 1,
            BatchShape::Windows(_) => layout.ctx,
        };
        if let Some(total) = physical_memory().filter(|&total| config.bytes as u64 > total) {
            return Err(DataError::invalid(
                "buffer bytes",
                format!(
                    "{} bytes is more than this machine's {total} bytes of memory",
                    config.bytes
                ),
            ));
        }
        let row_bytes = Self::bytes_per_row(&layout, row_positions);
        let capacity = config.bytes / row_bytes;
        // A refill adds up to one window; it must fit beside a batch.
        let least = rows.saturating_add(layout.ctx / row_positions);
        if capacity < least {
            return Err(DataError::invalid(
                "buffer bytes",
                format!(
                    "{} bytes hold {capacity} rows of {row_bytes} bytes; a batch of {rows} \
                     needs at least {} bytes",
                    config.bytes,
                    least.saturating_mul(row_bytes)
                ),
            ));
        }
        let floats = layout.row_len() * row_positions;
        // capacity · floats · 4 ≤ bytes, so neither product overflows.
        let mut values = Vec::new();
        values.try_reserve_exact(capacity * floats).map_err(|e| {
            DataError::invalid("buffer bytes", format!("{} bytes: {e}", config.bytes))
        })?;
        Ok(ActivationBuffer {
            rng: SplitMix64::new(config.seed),
            values,
            ids: Vec::with_capacity(capacity * row_positions),
            mask: Vec::with_capacity(capacity * row_positions),
            special: Vec::with_capacity(capacity * row_positions),
            origin: Vec::with_capacity(capacity),
            stream,
            layout,
            config,
            row_positions,
            capacity,
            exhausted: false,
            failed: false,
        })
    }

    /// Memory one buffered row takes (saturating: a layout too large to count is larger
    /// than any buffer).
    pub fn bytes_per_row(layout: &Layout, row_positions: usize) -> usize {
        let floats = layout
            .hooks
            .iter()
            .try_fold(0usize, |sum, h| sum.checked_add(h.d))
            .unwrap_or(usize::MAX);
        floats
            .saturating_mul(4)
            .saturating_add(TOKEN_DATA_BYTES)
            .saturating_mul(row_positions)
            .saturating_add(ROW_DATA_BYTES)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Rows the buffer holds when full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn len(&self) -> usize {
        self.origin.len()
    }

    fn row_floats(&self) -> usize {
        self.layout.row_len() * self.row_positions
    }

    fn refill(&mut self) -> Result<()> {
        let most_per_window = self.layout.ctx / self.row_positions;
        while !self.exhausted && self.len() + most_per_window <= self.capacity {
            match self.stream.next().transpose()? {
                Some(window) => self.push_window(window)?,
                None => self.exhausted = true,
            }
        }
        Ok(())
    }

    fn push_window(&mut self, w: ActivationWindow) -> Result<()> {
        let ctx = self.layout.ctx;
        if w.ids.len() != ctx || w.hooks.len() != self.layout.hooks.len() {
            return Err(DataError::invalid(
                "activations",
                format!("window {} does not match the stream's layout", w.index),
            ));
        }
        if self.row_positions == ctx {
            for values in &w.hooks {
                self.values.extend_from_slice(values);
            }
            self.ids.extend_from_slice(&w.ids);
            self.mask.extend_from_slice(&w.mask);
            self.special.extend_from_slice(&w.special);
            self.origin.push((w.index, 0));
            return Ok(());
        }
        for t in 0..ctx {
            let keep = w.mask[t] == 1 && (self.config.include_special || !w.special[t]);
            if !keep {
                continue;
            }
            for (values, hook) in w.hooks.iter().zip(&self.layout.hooks) {
                self.values
                    .extend_from_slice(&values[t * hook.d..(t + 1) * hook.d]);
            }
            self.ids.push(w.ids[t]);
            self.mask.push(1);
            self.special.push(w.special[t]);
            self.origin.push((w.index, t as u32));
        }
        Ok(())
    }

    fn draw(&mut self, rows: usize) -> ActivationBatch {
        let floats = self.row_floats();
        let positions = self.row_positions;
        let mut hooks: Vec<Vec<f32>> = self
            .layout
            .hooks
            .iter()
            .map(|h| Vec::with_capacity(rows * positions * h.d))
            .collect();
        let mut batch = ActivationBatch {
            shape: self.config.shape,
            rows,
            hooks: Vec::new(),
            ids: Vec::with_capacity(rows * positions),
            mask: Vec::with_capacity(rows * positions),
            special: Vec::with_capacity(rows * positions),
            origin: Vec::with_capacity(rows),
        };
        for _ in 0..rows {
            let i = self.rng.below(self.len() as u64) as usize;
            let row = &self.values[i * floats..(i + 1) * floats];
            let mut at = 0;
            for (out, hook) in hooks.iter_mut().zip(&self.layout.hooks) {
                let n = hook.d * positions;
                out.extend_from_slice(&row[at..at + n]);
                at += n;
            }
            let span = i * positions..(i + 1) * positions;
            batch.ids.extend_from_slice(&self.ids[span.clone()]);
            batch.mask.extend_from_slice(&self.mask[span.clone()]);
            batch.special.extend_from_slice(&self.special[span]);
            batch.origin.push(self.origin[i]);
            self.swap_remove(i);
        }
        batch.hooks = hooks;
        if matches!(self.config.shape, BatchShape::Tokens(_)) {
            batch.mask.clear();
        }
        batch
    }

    /// Moves the last row into slot `i` and drops the last.
    fn swap_remove(&mut self, i: usize) {
        let last = self.len() - 1;
        let floats = self.row_floats();
        let positions = self.row_positions;
        if i != last {
            self.values
                .copy_within(last * floats..(last + 1) * floats, i * floats);
            let from = last * positions..(last + 1) * positions;
            self.ids.copy_within(from.clone(), i * positions);
            self.mask.copy_within(from.clone(), i * positions);
            self.special.copy_within(from, i * positions);
        }
        self.values.truncate(last * floats);
        self.ids.truncate(last * positions);
        self.mask.truncate(last * positions);
        self.special.truncate(last * positions);
        self.origin.swap_remove(i);
    }

    fn next_batch(&mut self) -> Result<Option<ActivationBatch>> {
        let rows = self.config.shape.rows();
        if self.len() < self.capacity / 2 || self.len() < rows {
            self.refill()?;
        }
        match self.len() {
            0 => Ok(None),
            n => Ok(Some(self.draw(rows.min(n)))),
        }
    }
}

impl Iterator for ActivationBuffer {
    type Item = Result<ActivationBatch>;

    /// Full batches, then what is left as one smaller batch when the stream ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_batch();
        if next.is_err() {
            self.failed = true;
        }
        next.transpose()
    }
}

/// The machine's physical memory in bytes, where the system says (Linux); a buffer larger
/// than it could only end with the process killed.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
