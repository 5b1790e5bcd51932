//! Tokenizers: a Hugging Face `tokenizer.json`, or one built from a GGUF file's metadata.

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    special: BTreeSet<u32>,
}

impl TextTokenizer {
    /// Encodes as the model's tokenizer does by default (special tokens added only if its
    /// post-processor adds them; special-token text matched as single tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids as the tokenizer does by default: special tokens are kept.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Ids of special tokens (BOS, EOS, chat markers...), excluded from training data later.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Reads a `tokenizer.json`; BOS/EOS ids come from the model's `config.json` values.
    pub fn from_file(path: &Path, bos: Option<u32>, eos: Option<u32>) -> Result<Self> {
        if !path.exists() {
            return Err(ModelError::file(
                path,
                "missing (a model folder needs tokenizer.json)",
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::file(path, format!("cannot read the tokenizer: {e}")))?;
        // Malformed JSON is named here: the tokenizers crate unwraps some of its own parse
        // errors (inside a `decoder`) and would panic on it.
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| ModelError::file(path, format!("not valid JSON: {e}")))?;
        let parsed = crate::panic_guard::quietly(|| text.parse::<tokenizers::Tokenizer>());
        let inner = match parsed {
            Some(r) => {
                r.map_err(|e| ModelError::file(path, format!("cannot read the tokenizer: {e}")))?
            }
            None => {
                return Err(ModelError::file(
                    path,
                    "cannot read the tokenizer: the tokenizers library failed on this file \
                     (it is malformed)",
                ))
            }
        };
        let mut special: BTreeSet<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        special.extend(bos);
        special.extend(eos);
        Ok(TextTokenizer {
            inner,
            bos,
            eos,
            special,
        })
    }

    /// Builds a byte-level BPE tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let model = g.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(ModelError::config(
                g.path(),
                "tokenizer.ggml.model",
                format!("unsupported tokenizer `{model}` (saelab builds byte-level BPE, `gpt2`)"),
            ));
        }
        let tokens = strings(g, "tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings(g, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(ModelError::config(
                    g.path(),
                    "tokenizer.ggml.merges",
                    format!("merge `{m}` is not two tokens separated by a space"),
                )),
            })
            .collect::<Result<_>>()?;
        let types: Vec<i32> = match g.metadata("tokenizer.ggml.token_type") {
            Some(_) => g
                .array("tokenizer.ggml.token_type")?
                .iter()
                .map(|v| v.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| {
                ModelError::file(g.path(), format!("cannot build the BPE tokenizer: {e}"))
            })?;
        let mut inner = tokenizers::Tokenizer::new(bpe);

        let pre = g
            .string("tokenizer.ggml.pre")
            .unwrap_or_else(|_| "default".into());
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match pre.as_str() {
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            "gpt2" | "default" => byte_level.into(),
            other => {
                return Err(ModelError::config(
                    g.path(),
                    "tokenizer.ggml.pre",
                    format!(
                        "unsupported pre-tokenizer `{other}` (saelab knows smollm, gpt2, default)"
                    ),
                ))
            }
        };
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let id = |key: &str| g.usize(key).ok().map(|v| v as u32);
        let (bos, eos) = (
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        let add_bos = matches!(
            g.metadata("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(true))
        );
        if let (true, Some(bos)) = (add_bos, bos) {
            let bos_text = tokens.get(bos as usize).cloned().unwrap_or_default();
            let template = TemplateProcessing::builder()
                .try_single(format!("{bos_text}:0 $A:0"))
                .and_then(|b| b.try_pair(format!("{bos_text}:0 $A:0 $B:1")))
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
                .special_tokens(vec![(bos_text.clone(), bos)])
                .build()
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            inner.with_post_processor(Some(template));
        }

        let mut special = BTreeSet::new();
        let mut control = Vec::new();
        let mut user = Vec::new();
        for (i, (text, ty)) in tokens.iter().zip(&types).enumerate() {
            match *ty {
                TOKEN_TYPE_CONTROL => {
                    special.insert(i as u32);
                    control.push(AddedToken::from(text.clone(), true));
                }
                TOKEN_TYPE_USER_DEFINED => user.push(AddedToken::from(text.clone(), false)),
                _ => {}
            }
        }
        inner
            .add_special_tokens(control)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        inner
            .add_tokens(user)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        special.extend(bos);
        special.extend(eos);
        Ok(TextTokenizer {
            inner,
            bos,
            eos,
            special,
        })
    }
}

fn strings(g: &GgufFile, key: &str) -> Result<Vec<String>> {
    g.array(key)?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| ModelError::config(g.path(), key, e.to_string()))
        })
        .collect()
}
