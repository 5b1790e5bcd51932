//! A batch of token rows of equal length with an attention mask (1 = real token, 0 = padding).

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadSide {
    Left,
    Right,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    ids: Vec<u32>,
    mask: Vec<u8>,
    batch: usize,
    seq: usize,
}

impl Batch {
    /// One row, no padding.
    pub fn single(ids: &[u32]) -> Self {
        Batch {
            ids: ids.to_vec(),
            mask: vec![1; ids.len()],
            batch: 1,
            seq: ids.len(),
        }
    }

    /// Rows of possibly different lengths, padded with `pad_id` on `side`.
    pub fn padded(rows: &[Vec<u32>], side: PadSide, pad_id: u32) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut mask = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            let pad = seq - row.len();
            if side == PadSide::Left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u8, pad));
            }
            ids.extend_from_slice(row);
            mask.extend(std::iter::repeat_n(1u8, row.len()));
            if side == PadSide::Right {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u8, pad));
            }
        }
        Batch {
            ids,
            mask,
            batch: rows.len(),
            seq,
        }
    }

    /// A batch from flat row-major ids and mask.
    pub fn from_parts(ids: Vec<u32>, mask: Vec<u8>, batch: usize, seq: usize) -> Result<Self> {
        if ids.len() != batch * seq || mask.len() != batch * seq {
            return Err(ModelError::Invalid(format!(
                "batch of {batch}×{seq} needs {} ids and mask entries, got {} and {}",
                batch * seq,
                ids.len(),
                mask.len()
            )));
        }
        Ok(Batch {
            ids,
            mask,
            batch,
            seq,
        })
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn mask(&self) -> &[u8] {
        &self.mask
    }

    pub fn batch_size(&self) -> usize {
        self.batch
    }

    pub fn seq_len(&self) -> usize {
        self.seq
    }

    /// Position of each token: the count of real tokens before it in its row, so left- and
    /// right-padded rows see the same positions as unpadded ones. Padding gets position 0.
    pub fn positions(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.ids.len());
        for row in self.mask.chunks(self.seq.max(1)) {
            let mut seen = 0u32;
            for &m in row {
                if m != 0 {
                    out.push(seen);
                    seen += 1;
                } else {
                    out.push(0);
                }
            }
        }
        out
    }

    /// Rejects what the model cannot run: empty rows, too long, ids outside the vocabulary.
    pub fn check(&self, cfg: &ModelConfig) -> Result<()> {
        if self.seq == 0 || self.batch == 0 {
            return Err(ModelError::Invalid("the batch holds no tokens".into()));
        }
        if self.seq > cfg.context_length {
            return Err(ModelError::TooLong {
                what: "the input".into(),
                tokens: self.seq,
                context: cfg.context_length,
            });
        }
        if let Some(bad) = self.ids.iter().find(|&&id| id as usize >= cfg.vocab_size) {
            return Err(ModelError::Invalid(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                cfg.vocab_size
            )));
        }
        Ok(())
    }
}
