//! A corpus named on the command line: a text file or folder, JSONL, Parquet (file or folder
//! of shards), or the default corpus by name; read as one lazy stream of documents.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::document::{Document, Documents};
use crate::error::{DataError, Result};
use crate::files::{has_extension, list_files};
use crate::jsonl::jsonl_documents;
use crate::parquet_text::parquet_documents;
use crate::plain::{file_documents, folder_documents, Delimiter};

/// The sources of the default corpus, built by scripts/setup.sh, in reading order.
pub const DEFAULT_SOURCES: [&str; 3] = ["wiki", "pydocs", "fortunes"];
/// Sources setup also builds that `default` leaves out: read them by name.
/// `languages`: the wiki extracts in English, French and Spanish, with a `language` field.
pub const OPTIONAL_SOURCES: [&str; 1] = ["languages"];
/// The JSONL field / Parquet column read when none is chosen.
pub const DEFAULT_FIELD: &str = "text";

const JSONL_EXTENSIONS: [&str; 2] = [".jsonl", ".ndjson"];
const PARQUET_EXTENSIONS: [&str; 1] = [".parquet"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Jsonl,
    Parquet,
}

impl FromStr for Format {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "text" | "txt" => Ok(Format::Text),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            other => Err(DataError::invalid(
                "format",
                format!("unknown format `{other}` (text, jsonl or parquet)"),
            )),
        }
    }
}

/// How to read a corpus given by path; every field may be left to its default.
#[derive(Debug, Clone, Default)]
pub struct CorpusOptions {
    /// Default: from the file extension (`.jsonl`, `.parquet`, else text); for a folder, the
    /// kind of file it holds (Parquet shards, else JSONL files, else one text per file).
    pub format: Option<Format>,
    /// The JSONL field or Parquet column with the text (default `text`).
    pub field: Option<String>,
    /// For a text file: documents end at a line holding exactly this (default: blank lines).
    pub delimiter: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Source {
    TextFile { path: PathBuf, delimiter: Delimiter },
    TextFolder { path: PathBuf, files: Vec<PathBuf> },
    Jsonl { files: Vec<PathBuf>, field: String },
    Parquet { files: Vec<PathBuf>, column: String },
}

impl Source {
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Source::TextFile { path, .. } => vec![path],
            Source::TextFolder { files, .. }
            | Source::Jsonl { files, .. }
            | Source::Parquet { files, .. } => files.iter().map(PathBuf::as_path).collect(),
        }
    }

    fn documents(&self) -> Documents {
        match self.clone() {
            Source::TextFile { path, delimiter } => file_documents(&path, delimiter),
            Source::TextFolder { files, .. } => folder_documents(files),
            Source::Jsonl { files, field } => Box::new(
                files
                    .into_iter()
                    .flat_map(move |f| jsonl_documents(&f, &field)),
            ),
            Source::Parquet { files, column } => Box::new(
                files
                    .into_iter()
                    .flat_map(move |f| parquet_documents(&f, &column)),
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Corpus {
    /// What the user asked for, for messages and metadata.
    pub name: String,
    pub sources: Vec<Source>,
    /// Sources of the default corpus that `default` left out because setup skipped them
    /// (name, setup's reason), for a warning: numbers then differ from a full corpus's.
    pub skipped: Vec<(String, String)>,
}

impl Corpus {
    /// Resolves `spec`: an existing file or folder, else `default` or a comma-separated list
    /// of default sources (`wiki,fortunes`).
    pub fn open(spec: &str, options: &CorpusOptions) -> Result<Corpus> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(DataError::invalid("corpus", "empty corpus name or path"));
        }
        let path = Path::new(spec);
        if path.exists() {
            let source = open_path(path, options)?;
            return Ok(Corpus {
                name: spec.to_string(),
                sources: vec![source],
                skipped: Vec::new(),
            });
        }
        let names: Vec<&str> = spec.split(',').map(str::trim).collect();
        if names
            .iter()
            .all(|n| *n == "default" || DEFAULT_SOURCES.contains(n) || OPTIONAL_SOURCES.contains(n))
        {
            if options.format.is_some() || options.field.is_some() || options.delimiter.is_some() {
                return Err(DataError::invalid(
                    spec,
                    "the default corpus has a fixed format: drop the format, field and \
                     delimiter options",
                ));
            }
            return Corpus::default_sources(&names);
        }
        Err(DataError::invalid(
            spec,
            format!(
                "no such file or folder, and not a default corpus name (default, {}, {})",
                DEFAULT_SOURCES.join(", "),
                OPTIONAL_SOURCES.join(", ")
            ),
        ))
    }

    /// The default corpus (or some of its sources) from `$SAELAB_HOME/corpus/<name>.jsonl`.
    /// `default` means the sources setup built: one it skipped (no apt, say) is left out and
    /// listed in `skipped`; asking for it by name is an error giving setup's reason.
    pub fn default_sources(names: &[&str]) -> Result<Corpus> {
        let dir = default_corpus_dir();
        let setup_skipped = skipped_by_setup(&dir);
        let mut sources = Vec::new();
        let mut picked: Vec<&str> = Vec::new();
        let mut skipped = Vec::new();
        for name in names {
            let expanded: &[&str] = if *name == "default" {
                &DEFAULT_SOURCES
            } else {
                std::slice::from_ref(name)
            };
            for n in expanded {
                if picked.contains(n) || skipped.iter().any(|(s, _)| s == n) {
                    continue;
                }
                let path = dir.join(format!("{n}.jsonl"));
                if !path.is_file() {
                    match setup_skipped.iter().find(|(s, _)| s == n) {
                        Some((_, reason)) if *name == "default" => {
                            skipped.push((n.to_string(), reason.clone()));
                            continue;
                        }
                        Some((_, reason)) => {
                            return Err(DataError::SkippedBySetup {
                                path,
                                name: n.to_string(),
                                reason: reason.clone(),
                            })
                        }
                        None => {
                            return Err(DataError::NotInstalled {
                                path,
                                name: n.to_string(),
                            })
                        }
                    }
                }
                picked.push(n);
                sources.push(Source::Jsonl {
                    files: vec![path],
                    field: DEFAULT_FIELD.to_string(),
                });
            }
        }
        if sources.is_empty() {
            // Setup never skips wiki, so only a damaged corpus folder gets here.
            return Err(DataError::NotInstalled {
                path: dir.join("wiki.jsonl"),
                name: "wiki".to_string(),
            });
        }
        Ok(Corpus {
            name: picked.join(","),
            sources,
            skipped,
        })
    }

    pub fn files(&self) -> Vec<&Path> {
        self.sources.iter().flat_map(Source::files).collect()
    }

    /// One warning per default-corpus source that `default` left out (see `skipped`).
    pub fn skipped_warnings(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(name, reason)| {
                format!(
                    "the default corpus is read without `{name}`, which scripts/setup.sh \
                     skipped ({reason}); numbers differ from the full corpus's"
                )
            })
            .collect()
    }

    /// All documents, source after source, file after file, read lazily. A corpus that
    /// yields no document at all ends with an error rather than silently.
    pub fn documents(&self) -> Documents {
        let sources = self.sources.clone();
        Box::new(NonEmpty {
            inner: Box::new(sources.into_iter().flat_map(|s| s.documents())),
            what: self.name.clone(),
            seen: 0,
            finished: false,
        })
    }
}

/// `$SAELAB_HOME/corpus`, where scripts/setup.sh builds the default corpus.
pub fn default_corpus_dir() -> PathBuf {
    saelab_model::load::saelab_home().join("corpus")
}

/// (source, reason) for each source `manifest.json` records as skipped by setup; none when
/// the manifest is missing or unreadable (the JSONL files then speak for themselves).
fn skipped_by_setup(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return Vec::new();
    };
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(skipped) = manifest.get("skipped").and_then(|s| s.as_object()) else {
        return Vec::new();
    };
    skipped
        .iter()
        .map(|(name, reason)| {
            let reason = reason.as_str().unwrap_or("no reason recorded");
            (name.clone(), reason.to_string())
        })
        .collect()
}

fn open_path(path: &Path, options: &CorpusOptions) -> Result<Source> {
    let files = if path.is_dir() {
        list_files(path)?
    } else {
        vec![path.to_path_buf()]
    };
    if options.format.is_none() {
        refuse_mixed_kinds(path, &files)?;
    }
    let format = match options.format {
        Some(f) => f,
        None if files.iter().any(|f| has_extension(f, &PARQUET_EXTENSIONS)) => Format::Parquet,
        None if files.iter().any(|f| has_extension(f, &JSONL_EXTENSIONS)) => Format::Jsonl,
        None => Format::Text,
    };
    let what = path.display().to_string();
    if format != Format::Text && options.delimiter.is_some() {
        return Err(DataError::invalid(
            what,
            "a delimiter applies only to text files",
        ));
    }
    if format == Format::Text && options.field.is_some() {
        return Err(DataError::invalid(
            what,
            "a field applies only to JSONL and Parquet",
        ));
    }
    let field = || {
        options
            .field
            .clone()
            .unwrap_or_else(|| DEFAULT_FIELD.to_string())
    };
    // In a folder, keep the files of the chosen format (a dataset folder has a README too).
    let of_kind = |exts: &[&str]| -> Result<Vec<PathBuf>> {
        if !path.is_dir() {
            return Ok(files.clone());
        }
        let kept: Vec<PathBuf> = files
            .iter()
            .filter(|f| has_extension(f, exts))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(DataError::Empty {
                what: format!("{what} (no {} files in the folder)", exts.join(" or ")),
            });
        }
        Ok(kept)
    };
    Ok(match format {
        Format::Parquet => Source::Parquet {
            files: of_kind(&PARQUET_EXTENSIONS)?,
            column: field(),
        },
        Format::Jsonl => Source::Jsonl {
            files: of_kind(&JSONL_EXTENSIONS)?,
            field: field(),
        },
        Format::Text if path.is_dir() => Source::TextFolder {
            path: path.to_path_buf(),
            files,
        },
        Format::Text => Source::TextFile {
            path: path.to_path_buf(),
            delimiter: match &options.delimiter {
                Some(d) => Delimiter::Line(d.clone()),
                None => Delimiter::BlankLine,
            },
        },
    })
}

/// A folder holding data files of more than one kind (`.parquet`, `.jsonl`, `.txt`) would
/// have only one kind read: refused, so that no file is silently left out. Other files (a
/// README) do not count.
fn refuse_mixed_kinds(path: &Path, files: &[PathBuf]) -> Result<()> {
    let kinds: Vec<String> = [
        ("Parquet", &PARQUET_EXTENSIONS[..]),
        ("JSONL", &JSONL_EXTENSIONS[..]),
        ("text", &[".txt"][..]),
    ]
    .iter()
    .filter_map(|(name, exts)| {
        let n = files.iter().filter(|f| has_extension(f, exts)).count();
        (n > 0).then(|| format!("{n} {name} ({})", exts.join(", ")))
    })
    .collect();
    if kinds.len() > 1 {
        return Err(DataError::invalid(
            path.display().to_string(),
            format!(
                "the folder holds files of several kinds ({}), and only one kind would be read: \
                 give --format (text, jsonl, parquet), or keep one kind per folder",
                kinds.join(", ")
            ),
        ));
    }
    Ok(())
}

struct NonEmpty {
    inner: Documents,
    what: String,
    seen: u64,
    finished: bool,
}

impl Iterator for NonEmpty {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.inner.next() {
            Some(Ok(doc)) => {
                self.seen += 1;
                Some(Ok(doc))
            }
            Some(Err(e)) => {
                self.finished = true;
                Some(Err(e))
            }
            None => {
                self.finished = true;
                (self.seen == 0).then(|| {
                    Err(DataError::Empty {
                        what: self.what.clone(),
                    })
                })
            }
        }
    }
}
