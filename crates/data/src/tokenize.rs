//! Tokenizing a document stream a batch ahead, in parallel, in order: the stream stays lazy
//! (at most one batch is read ahead) and both cores work.

use std::collections::VecDeque;

use rayon::prelude::*;
use saelab_model::TextTokenizer;

use crate::document::Documents;
use crate::error::{DataError, Result};

/// Documents read ahead at most, and text bytes at most, per batch.
const BATCH_DOCUMENTS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;

pub struct Tokenized<'t> {
    documents: Documents,
    tokenizer: &'t TextTokenizer,
    ready: VecDeque<Result<Vec<u32>>>,
    /// Index of the next document read from the stream, for error messages.
    next_index: u64,
    strip_bos: bool,
    done: bool,
}

impl<'t> Tokenized<'t> {
    pub fn new(documents: Documents, tokenizer: &'t TextTokenizer) -> Self {
        Tokenized {
            documents,
            tokenizer,
            ready: VecDeque::new(),
            next_index: 0,
            strip_bos: adds_bos(tokenizer),
            done: false,
        }
    }

    fn refill(&mut self) {
        let mut texts = Vec::new();
        let mut bytes = 0;
        let mut failed = None;
        while texts.len() < BATCH_DOCUMENTS && bytes < BATCH_BYTES {
            match self.documents.next() {
                Some(Ok(doc)) => {
                    bytes += doc.text.len();
                    texts.push(doc.text);
                }
                Some(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                None => break,
            }
        }
        let first = self.next_index;
        self.next_index += texts.len() as u64;
        let encoded: Vec<Result<Vec<u32>>> = texts
            .par_iter()
            .enumerate()
            .map(|(i, text)| {
                encode(self.tokenizer, text, self.strip_bos).map_err(|source| {
                    DataError::Tokenizer {
                        document: first + i as u64,
                        cause: source,
                    }
                })
            })
            .collect();
        self.done = failed.is_some() || texts.len() < BATCH_DOCUMENTS && bytes < BATCH_BYTES;
        self.ready.extend(encoded);
        self.ready.extend(failed.map(Err));
    }
}

/// The document's tokens without the BOS the tokenizer's post-processor adds by itself
/// (`strip_bos`): windows put their own start token, and a second one would follow it.
fn encode(
    tokenizer: &TextTokenizer,
    text: &str,
    strip_bos: bool,
) -> saelab_model::Result<Vec<u32>> {
    let mut ids = tokenizer.encode(text)?;
    if strip_bos && !ids.is_empty() {
        ids.remove(0);
    }
    Ok(ids)
}

/// Whether encoding prepends BOS to any text (Llama's and Gemma's tokenizers do).
fn adds_bos(tokenizer: &TextTokenizer) -> bool {
    let probe = tokenizer.encode("a").unwrap_or_default();
    tokenizer.bos_id().is_some() && probe.first().copied() == tokenizer.bos_id()
}

impl Iterator for Tokenized<'_> {
    type Item = Result<Vec<u32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done {
            self.refill();
        }
        self.ready.pop_front()
    }
}
