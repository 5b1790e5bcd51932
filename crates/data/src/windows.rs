//! Fixed-length token windows, produced lazily from a document stream: documents packed
//! across windows (joined by a separator token), or one document per window, padded.
//!
//! Every window starts with the model's document-start token when it has one, so position 0
//! is always the same attention-sink token (flagged special and excluded later) and never a
//! token cut from the middle of a text with no context before it.

use std::str::FromStr;

use saelab_model::TextTokenizer;

use crate::document::Documents;
use crate::error::{DataError, Result};
use crate::fuse::next_until_error;
use crate::tokenize::Tokenized;

pub const DEFAULT_WINDOW_LEN: usize = 128;

/// The text of the token that GPT-2-style vocabularies (GPT-2, Pythia, SmolLM2) put between
/// documents in pretraining.
const END_OF_TEXT: &str = "<|endoftext|>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// Documents back to back, separated by the separator token, cut into full windows.
    Packed,
    /// One document per window (a long one continues in the next windows), padded and masked.
    Padded,
}

impl FromStr for Packing {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "packed" | "pack" => Ok(Packing::Packed),
            "padded" | "pad" => Ok(Packing::Padded),
            other => Err(DataError::invalid(
                "packing",
                format!("unknown mode `{other}` (packed or padded)"),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowConfig {
    /// Tokens per window, the start token included.
    pub len: usize,
    pub packing: Packing,
    /// Put at position 0 of every window.
    pub start: Option<u32>,
    /// Put between two documents in packed mode.
    pub separator: Option<u32>,
    /// Put at padded (masked) positions; its value does not matter to a masked forward.
    pub pad: u32,
}

impl WindowConfig {
    /// The choice for this tokenizer. Start and separator are the vocabulary's
    /// `<|endoftext|>` when it has that special token (what GPT-2, Pythia and SmolLM2 saw
    /// between documents in pretraining; SmolLM2-Instruct's BOS is the chat marker
    /// `<|im_start|>`, which is not a document start), else its BOS and EOS.
    pub fn for_tokenizer(tokenizer: &TextTokenizer, len: usize, packing: Packing) -> Self {
        let end_of_text = special_id(tokenizer, END_OF_TEXT);
        let start = end_of_text.or(tokenizer.bos_id());
        let separator = end_of_text.or(tokenizer.eos_id()).or(start);
        WindowConfig {
            len,
            packing,
            start,
            separator,
            pad: separator.or(start).unwrap_or(0),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let least = 1 + usize::from(self.start.is_some());
        if self.len < least {
            return Err(DataError::invalid(
                "window length",
                format!("{} is too short (at least {least})", self.len),
            ));
        }
        // A window is held whole in memory while it fills; no model reads one longer.
        let most = saelab_model::config::MAX_CONTEXT;
        if self.len > most {
            return Err(DataError::invalid(
                "window length",
                format!("{} tokens is longer than saelab's bound {most}", self.len),
            ));
        }
        Ok(())
    }

    fn content_len(&self) -> usize {
        self.len - usize::from(self.start.is_some())
    }
}

/// The id of `text` if the tokenizer reads it as one special token.
fn special_id(tokenizer: &TextTokenizer, text: &str) -> Option<u32> {
    match tokenizer.encode(text).ok()?.as_slice() {
        [id] if tokenizer.is_special(*id) => Some(*id),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub ids: Vec<u32>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<u8>,
    /// True for tokens later stages should leave out: start, separator, padding, and any
    /// token the tokenizer calls special.
    pub special: Vec<bool>,
}

impl Window {
    fn new(len: usize) -> Self {
        Window {
            ids: Vec::with_capacity(len),
            mask: Vec::with_capacity(len),
            special: Vec::with_capacity(len),
        }
    }

    fn push(&mut self, id: u32, real: bool, special: bool) {
        self.ids.push(id);
        self.mask.push(u8::from(real));
        self.special.push(special || !real);
    }

    /// Real (unpadded) tokens.
    pub fn real_len(&self) -> usize {
        self.mask.iter().filter(|m| **m == 1).count()
    }
}

/// Windows over `documents`, tokenized with `tokenizer`, made on demand.
pub fn windows(
    documents: Documents,
    tokenizer: &TextTokenizer,
    config: WindowConfig,
) -> Result<Windows<'_>> {
    config.validate()?;
    Ok(Windows {
        documents: Tokenized::new(documents, tokenizer),
        tokenizer,
        config,
        buffer: Vec::new(),
        pos: 0,
        boundary: Vec::new(),
        documents_read: 0,
        tokens_read: 0,
        finished: false,
    })
}

pub struct Windows<'t> {
    documents: Tokenized<'t>,
    tokenizer: &'t TextTokenizer,
    config: WindowConfig,
    /// Tokens read and not yet put in a window, from `pos` on.
    buffer: Vec<u32>,
    pos: usize,
    /// Parallel to `buffer`: true for separators this stream inserted.
    boundary: Vec<bool>,
    documents_read: u64,
    tokens_read: u64,
    finished: bool,
}

impl Windows<'_> {
    pub fn documents_read(&self) -> u64 {
        self.documents_read
    }

    /// Tokens of the documents read so far (start, separator and padding not counted).
    pub fn tokens_read(&self) -> u64 {
        self.tokens_read
    }

    fn pending(&self) -> usize {
        self.buffer.len() - self.pos
    }

    /// Reads documents until one has tokens; false when the stream is over.
    fn read_document(&mut self) -> Result<bool> {
        loop {
            let Some(ids) = self.documents.next().transpose()? else {
                return Ok(false);
            };
            self.documents_read += 1;
            self.tokens_read += ids.len() as u64;
            if ids.is_empty() {
                continue;
            }
            // Drop what earlier windows consumed before the buffer grows.
            self.buffer.drain(..self.pos);
            self.boundary.drain(..self.pos);
            self.pos = 0;
            if self.config.packing == Packing::Packed && self.tokens_read > ids.len() as u64 {
                if let Some(sep) = self.config.separator {
                    self.buffer.push(sep);
                    self.boundary.push(true);
                }
            }
            self.boundary.resize(self.buffer.len() + ids.len(), false);
            self.buffer.extend(ids);
            return Ok(true);
        }
    }

    fn next_window(&mut self) -> Result<Option<Window>> {
        let content = self.config.content_len();
        loop {
            // A separator landing at the front of a window after the start token says
            // nothing the start token does not: skip it.
            if self.config.start.is_some() && self.pending() > 0 && self.boundary[self.pos] {
                self.pos += 1;
            }
            let enough = match self.config.packing {
                Packing::Packed => self.pending() >= content,
                Packing::Padded => self.pending() > 0,
            };
            if enough {
                return Ok(Some(self.take(content)));
            }
            if !self.read_document()? {
                // The last, partial window of a packed stream is padded, not dropped.
                return Ok((self.pending() > 0).then(|| self.take(content)));
            }
        }
    }

    /// A window from up to `content` pending tokens, padded to the full length.
    fn take(&mut self, content: usize) -> Window {
        let mut w = Window::new(self.config.len);
        if let Some(start) = self.config.start {
            w.push(start, true, true);
        }
        let n = content.min(self.pending());
        for i in self.pos..self.pos + n {
            let id = self.buffer[i];
            w.push(id, true, self.boundary[i] || self.tokenizer.is_special(id));
        }
        self.pos += n;
        while w.ids.len() < self.config.len {
            w.push(self.config.pad, false, true);
        }
        w
    }
}

impl Iterator for Windows<'_> {
    type Item = Result<Window>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut finished = self.finished;
        let item = next_until_error(&mut finished, || self.next_window());
        self.finished = finished;
        item
    }
}
