//! Corpora, activation caches and harvesting: `saelab.Corpus`, `saelab.Cache`,
//! `saelab.harvest`. Streams run on a background thread and hand over NumPy batches.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use saelab_data::activations::ActivationWindow;
use saelab_data::cache::{
    harvest as harvest_cache, harvest_documents, ActivationCache, Harvest, HarvestSettings,
    HarvestSpec, ReadOptions,
};
use saelab_data::{windows, CorpusOptions, Document, Documents, Window, WindowConfig};

use crate::arrays::to_numpy;
use crate::errors::{bad_value, OrRaise};
use crate::json;
use crate::model::Model;

/// A corpus: a text, JSONL or Parquet file or folder, or the default corpus by name
/// (`default`, `wiki`, `pydocs`, `fortunes`, comma-separated for several).
#[pyclass(module = "saelab", frozen)]
pub struct Corpus {
    pub inner: saelab_data::Corpus,
}

#[pymethods]
impl Corpus {
    /// `format` is `text`, `jsonl` or `parquet` (default: from the extension); `field` the
    /// JSONL field or Parquet column holding the text; `delimiter` ends a text file's
    /// documents (default: blank lines).
    #[new]
    #[pyo3(signature = (name = "default", format = None, field = None, delimiter = None))]
    fn new(
        name: &str,
        format: Option<&str>,
        field: Option<String>,
        delimiter: Option<String>,
    ) -> PyResult<Corpus> {
        let format = format
            .map(str::parse)
            .transpose()
            .map_err(|e: saelab_data::DataError| bad_value("format", e))?;
        let options = CorpusOptions {
            format,
            field,
            delimiter,
        };
        let inner = saelab_data::Corpus::open(name, &options).or_raise()?;
        Ok(Corpus { inner })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// Warnings about parts of the default corpus that setup could not build.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.skipped_warnings()
    }

    /// The documents in order, as dicts: `text` and the document's metadata fields.
    fn documents(&self) -> DocumentIter {
        DocumentIter {
            inner: Mutex::new(self.inner.documents()),
        }
    }

    /// The corpus cut into token windows by `model`'s tokenizer, `batch` windows at a time:
    /// dicts of `ids` (int64 `[b, ctx]`), `mask` (uint8, 1 for real tokens) and `special`
    /// (bool: start, separator, padding and special tokens, which training leaves out).
    /// `packing` is `packed` (documents run on across windows) or `padded` (one per window).
    #[pyo3(signature = (model, ctx = saelab_data::DEFAULT_WINDOW_LEN, packing = "packed", batch = 32, limit = None))]
    fn windows(
        &self,
        model: &Model,
        ctx: usize,
        packing: &str,
        batch: usize,
        limit: Option<usize>,
    ) -> PyResult<WindowIter> {
        if ctx < 2 {
            return Err(bad_value(
                "ctx",
                format!("= {ctx}: a window needs at least 2 tokens"),
            ));
        }
        if batch == 0 {
            return Err(bad_value("batch", "must be positive"));
        }
        let packing = packing
            .parse()
            .map_err(|e: saelab_data::DataError| bad_value("packing", e))?;
        let loaded = model.inner.clone();
        let config = WindowConfig::for_tokenizer(&loaded.tokenizer, ctx, packing);
        let documents = self.inner.documents();
        let limit = limit.unwrap_or(usize::MAX);
        let (tx, rx) = sync_channel(2);
        std::thread::spawn(move || {
            let stream = match windows(documents, &loaded.tokenizer, config) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            let mut chunk = Vec::with_capacity(batch);
            for window in stream.take(limit) {
                match window {
                    Ok(w) => chunk.push(w),
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                }
                if chunk.len() == batch && tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(Ok(chunk));
            }
        });
        Ok(WindowIter {
            rx: Mutex::new(rx),
            ctx,
        })
    }

    fn __repr__(&self) -> String {
        format!("Corpus({:?})", self.inner.name)
    }
}

#[pyclass(module = "saelab")]
pub struct DocumentIter {
    inner: Mutex<Documents>,
}

#[pymethods]
impl DocumentIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let next = py.detach(|| self.inner.lock().map(|mut d| d.next()).map_err(|_| ()));
        let Some(document) = next.map_err(|_| bad_value("documents", "a reader failed"))? else {
            return Ok(None);
        };
        let Document { text, meta } = document.or_raise()?;
        let dict = PyDict::new(py);
        for (key, value) in meta.iter() {
            dict.set_item(key, json::to_python(py, value)?)?;
        }
        dict.set_item("text", text)?;
        Ok(Some(dict))
    }
}

#[pyclass(module = "saelab")]
pub struct WindowIter {
    rx: Mutex<Receiver<anyhow::Result<Vec<Window>>>>,
    ctx: usize,
}

#[pymethods]
impl WindowIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let received = py.detach(|| self.rx.lock().ok().and_then(|rx| rx.recv().ok()));
        let Some(chunk) = received else {
            return Ok(None);
        };
        let chunk = chunk.or_raise()?;
        let dict = PyDict::new(py);
        put_tokens(
            &dict,
            chunk.iter().map(|w| (&w.ids, &w.mask, &w.special)),
            chunk.len(),
            self.ctx,
        )?;
        Ok(Some(dict))
    }
}

/// `ids`, `mask` and `special` of a batch of windows into `dict`.
fn put_tokens<'a>(
    dict: &Bound<'_, PyDict>,
    rows: impl Iterator<Item = (&'a Vec<u32>, &'a Vec<u8>, &'a Vec<bool>)>,
    n: usize,
    ctx: usize,
) -> PyResult<()> {
    let py = dict.py();
    let (mut ids, mut mask, mut special) = (Vec::new(), Vec::new(), Vec::new());
    for (i, m, s) in rows {
        ids.extend(i.iter().map(|&v| v as i64));
        mask.extend_from_slice(m);
        special.extend_from_slice(s);
    }
    dict.set_item("ids", to_numpy(py, ids, &[n, ctx])?)?;
    dict.set_item("mask", to_numpy(py, mask, &[n, ctx])?)?;
    dict.set_item("special", to_numpy(py, special, &[n, ctx])?)?;
    Ok(())
}

/// An activation cache made by `harvest` (or `saelab harvest`): shards of windows of one or
/// more hooks, with a manifest.
#[pyclass(module = "saelab", frozen)]
pub struct Cache {
    inner: ActivationCache,
}

#[pymethods]
impl Cache {
    #[new]
    fn new(path: PathBuf) -> PyResult<Cache> {
        Ok(Cache {
            inner: ActivationCache::open(path).or_raise()?,
        })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir.clone()
    }

    /// The cached hooks and their widths.
    #[getter]
    fn hooks(&self) -> Vec<(String, usize)> {
        let spec = &self.inner.manifest.spec;
        spec.hooks.iter().map(|h| (h.name.clone(), h.d)).collect()
    }

    #[getter]
    fn windows_count(&self) -> u64 {
        self.inner.manifest.windows()
    }

    /// Training tokens (real, not special) in the cache.
    #[getter]
    fn tokens(&self) -> u64 {
        self.inner.manifest.tokens()
    }

    #[getter]
    fn ctx(&self) -> usize {
        self.inner.manifest.spec.window.len
    }

    /// The whole manifest (the harvest's settings, shards, per-hook statistics) as a dict.
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(&self.inner.manifest).or_raise()?;
        json::to_python(py, &value)
    }

    /// The cached windows in stored order, `batch` at a time: dicts of `ids`, `mask`,
    /// `special` (as `Corpus.windows`) and each hook's activations (float32
    /// `[b, ctx, d]`, under the hook's name), from window `start` up to `end`.
    #[pyo3(signature = (batch = 32, start = 0, end = None, verify = true))]
    fn windows(
        &self,
        batch: usize,
        start: u64,
        end: Option<u64>,
        verify: bool,
    ) -> PyResult<CacheIter> {
        if batch == 0 {
            return Err(bad_value("batch", "must be positive"));
        }
        let options = ReadOptions {
            verify,
            skip_windows: start,
            end_window: end,
            ..ReadOptions::default()
        };
        let stream = self.inner.windows(options);
        Ok(CacheIter {
            stream: Mutex::new(Box::new(stream)),
            batch,
            start,
            end: end.unwrap_or(u64::MAX),
            hooks: self.hooks(),
            ctx: self.ctx(),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Cache({:?}, {} windows of {} tokens, hooks {:?})",
            self.inner.dir,
            self.inner.manifest.windows(),
            self.ctx(),
            self.hooks().iter().map(|h| h.0.clone()).collect::<Vec<_>>()
        )
    }
}

type WindowStream = Box<dyn Iterator<Item = saelab_data::Result<ActivationWindow>> + Send>;

#[pyclass(module = "saelab")]
pub struct CacheIter {
    stream: Mutex<WindowStream>,
    batch: usize,
    start: u64,
    end: u64,
    hooks: Vec<(String, usize)>,
    ctx: usize,
}

#[pymethods]
impl CacheIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let (start, end, batch) = (self.start, self.end, self.batch);
        let chunk = py.detach(|| -> anyhow::Result<Vec<ActivationWindow>> {
            let mut stream = self
                .stream
                .lock()
                .map_err(|_| anyhow::anyhow!("the cache reader failed"))?;
            let mut chunk = Vec::with_capacity(batch);
            while chunk.len() < batch {
                match stream.next() {
                    None => break,
                    Some(w) => {
                        let w = w?;
                        if w.index >= end {
                            break;
                        }
                        if w.index >= start {
                            chunk.push(w);
                        }
                    }
                }
            }
            Ok(chunk)
        });
        let chunk = chunk.or_raise()?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let dict = PyDict::new(py);
        let n = chunk.len();
        put_tokens(
            &dict,
            chunk.iter().map(|w| (&w.ids, &w.mask, &w.special)),
            n,
            self.ctx,
        )?;
        dict.set_item(
            "index",
            to_numpy(py, chunk.iter().map(|w| w.index).collect(), &[n])?,
        )?;
        for (h, (name, d)) in self.hooks.iter().enumerate() {
            let mut values = Vec::with_capacity(n * self.ctx * d);
            for w in &chunk {
                values.extend_from_slice(&w.hooks[h]);
            }
            dict.set_item(name, to_numpy(py, values, &[n, self.ctx, *d])?)?;
        }
        Ok(Some(dict))
    }
}

/// Harvests `hooks` of `model` over `corpus` into a cache at `out` (resuming a harvest that
/// was stopped there); `progress(windows_done)` is called as shards are written.
#[pyfunction]
#[pyo3(signature = (model, corpus, hooks, out, tokens = None, ctx = saelab_data::DEFAULT_WINDOW_LEN, packing = "packed", dtype = "f16", batch = 32, shard_tokens = 32768, shuffle = None, progress = None))]
#[allow(clippy::too_many_arguments)]
pub fn harvest(
    py: Python<'_>,
    model: &Model,
    corpus: &Corpus,
    hooks: Vec<String>,
    out: PathBuf,
    tokens: Option<u64>,
    ctx: usize,
    packing: &str,
    dtype: &str,
    batch: usize,
    shard_tokens: usize,
    shuffle: Option<u64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Cache> {
    for (name, value) in [
        ("ctx", ctx),
        ("batch", batch),
        ("shard_tokens", shard_tokens),
    ] {
        if value == 0 {
            return Err(bad_value(name, "must be positive"));
        }
    }
    if tokens == Some(0) {
        return Err(bad_value("tokens", "must be positive"));
    }
    if hooks.is_empty() {
        return Err(bad_value("hooks", "is empty; name at least one hook"));
    }
    saelab_data::activations::check_distinct_hooks(&hooks).map_err(|e| bad_value("hooks", e))?;
    let settings = HarvestSettings {
        tokens,
        ctx,
        packing: packing
            .parse()
            .map_err(|e: saelab_data::DataError| bad_value("packing", e))?,
        dtype: dtype
            .parse()
            .map_err(|e: saelab_data::DataError| bad_value("dtype", e))?,
        batch,
        shard_tokens,
        shuffle,
    };
    let loaded = model.inner.clone();
    let spec = HarvestSpec::for_model(&loaded, &corpus.inner.name, &hooks, &settings)
        .map_err(|e| bad_value("hooks", e))?;
    saelab_train::folder::create(&out, "out").or_raise()?;
    let _lock = saelab_train::folder::lock(&out, "out").or_raise()?;
    let job = Harvest::new(&loaded, spec, &out).or_raise()?;
    let documents = harvest_documents(&corpus.inner, shuffle);
    // A progress function's exception, or Ctrl-C, stops the harvest after its last shard.
    let mut failed: Option<PyErr> = None;
    let result = py.detach(|| {
        harvest_cache(loaded, documents, &job, &mut |windows| {
            failed = Python::attach(|py| {
                py.check_signals()?;
                match &progress {
                    Some(f) => f.call1(py, (windows,)).map(drop),
                    None => Ok(()),
                }
            })
            .err();
            failed.is_none()
        })
    });
    match (result, failed) {
        (Err(stopped @ saelab_data::DataError::Stopped { .. }), Some(e))
            if e.is_instance_of::<PyKeyboardInterrupt>(py) =>
        {
            Err(PyKeyboardInterrupt::new_err(stopped.to_string()))
        }
        (_, Some(e)) => Err(e),
        (result, None) => {
            result.or_raise()?;
            Cache::new(out)
        }
    }
}
