//! The flags that name a corpus and say how to read it, shared by every verb that reads one.

use anyhow::{Context, Result};
use saelab_data::{Corpus, CorpusOptions};

#[derive(clap::Args, Clone)]
pub struct CorpusArg {
    /// A text file or folder, a JSONL file, a Parquet file or folder of shards, or the
    /// default corpus by name: default, wiki, pydocs, fortunes (comma-separated for several), or
    /// languages (the wiki extracts in English, French and Spanish, labelled by `language`).
    #[arg(long, default_value = "default")]
    pub corpus: String,
    /// How to read the files (default: from their extension).
    #[arg(long, value_parser = ["text", "jsonl", "parquet"])]
    pub format: Option<String>,
    /// The JSONL field or Parquet column holding the text (default: text).
    #[arg(long)]
    pub field: Option<String>,
    /// For a text file: documents end at a line holding exactly this (default: blank lines).
    #[arg(long)]
    pub delimiter: Option<String>,
}

impl CorpusArg {
    pub fn open(&self) -> Result<Corpus> {
        let options = CorpusOptions {
            format: self.format.as_deref().map(str::parse).transpose()?,
            field: self.field.clone(),
            delimiter: self.delimiter.clone(),
        };
        let corpus = Corpus::open(&self.corpus, &options).context("--corpus")?;
        for warning in corpus.skipped_warnings() {
            eprintln!("warning: --corpus {}: {warning}", self.corpus);
        }
        Ok(corpus)
    }
}
