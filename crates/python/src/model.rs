//! `saelab.Model`: the model host from Python. Forwards read any hooks into NumPy arrays and
//! replace hooks by a Python function's result or by a dictionary's reconstruction.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel, ModelConfig, PadSide};
use saelab_sae::Dictionary;

use crate::arrays::to_numpy;
use crate::errors::{bad_type, bad_value, OrRaise};
use crate::sae::Sae;

/// A language model and its tokenizer: the default model (`Model()`), a GGUF file, a Hugging
/// Face folder, or a hub id fetched through the Hugging Face cache.
#[pyclass(module = "saelab", frozen)]
pub struct Model {
    pub inner: Arc<LoadedModel>,
}

/// What replaces a hook's value during a forward.
enum Edit<'a> {
    /// The dictionary's reconstruction of the value.
    Splice(&'a saelab_sae::Sae),
    /// A Python function's result on the value (as float32 `[batch, seq, d]`).
    Function(Py<PyAny>),
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (model = None))]
    fn new(py: Python<'_>, model: Option<String>) -> PyResult<Model> {
        let loaded = py
            .detach(|| saelab_model::load(model.as_deref()))
            .or_raise()?;
        Ok(Model {
            inner: Arc::new(loaded),
        })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    #[getter]
    fn n_layers(&self) -> usize {
        self.inner.model.cfg.n_layers
    }

    #[getter]
    fn d_model(&self) -> usize {
        self.inner.model.cfg.d_model
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.model.cfg.vocab_size
    }

    #[getter]
    fn context_length(&self) -> usize {
        self.inner.model.cfg.context_length
    }

    /// Every hook point, in forward order, with its width.
    fn hooks(&self) -> Vec<(String, usize)> {
        let cfg = &self.inner.model.cfg;
        HookPoint::all(cfg)
            .into_iter()
            .map(|p| (p.to_string(), p.width(cfg)))
            .collect()
    }

    /// Token ids of `text`, as the model's tokenizer encodes it by default.
    fn tokenize(&self, text: &str) -> PyResult<Vec<u32>> {
        self.inner.tokenizer.encode(text).or_raise()
    }

    /// The text of token ids (special tokens kept).
    fn decode(&self, ids: Vec<u32>) -> PyResult<String> {
        self.inner.tokenizer.decode(&ids).or_raise()
    }

    /// Each id's token string (as the vocabulary spells it).
    fn tokens(&self, ids: Vec<u32>) -> Vec<Option<String>> {
        ids.iter()
            .map(|&id| self.inner.tokenizer.id_to_token(id))
            .collect()
    }

    /// Greedy continuation of `prompt` (the new text only), stopping at end of text.
    #[pyo3(signature = (prompt, max_tokens = 20))]
    fn generate(&self, py: Python<'_>, prompt: &str, max_tokens: usize) -> PyResult<String> {
        let ids = self.inner.tokenizer.encode(prompt).or_raise()?;
        let stop = self.inner.tokenizer.eos_id();
        let new = py
            .detach(|| self.inner.model.generate_greedy(&ids, max_tokens, stop))
            .or_raise()?;
        self.inner.tokenizer.decode(&new).or_raise()
    }

    /// One forward. `tokens` is a text, a list of ids, or a list of rows of ids (rows of
    /// different lengths are padded on the right; `mask` says which positions are real).
    /// Returns a dict of float32 arrays `[batch, seq, d]` for each hook in `hooks`, `logits`
    /// `[batch, seq, vocab]` when `logits` is true, and `mask` (uint8 `[batch, seq]`).
    /// `edits` maps a hook to a function of its value (float32 `[batch, seq, d]` in, the same
    /// shape out) or to a `Sae`, whose reconstruction replaces the value at every position.
    /// Without logits the forward stops after the last block it needs.
    #[pyo3(signature = (tokens, hooks = None, logits = true, edits = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        hooks: Option<Vec<String>>,
        logits: bool,
        edits: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cfg = &self.inner.model.cfg;
        let rows = self.token_rows(tokens)?;
        let pad = self.inner.tokenizer.eos_id().unwrap_or(0);
        let batch = Batch::padded(&rows, PadSide::Right, pad);
        batch.check(cfg).map_err(|e| bad_value("tokens", e))?;
        let points = hooks
            .unwrap_or_default()
            .iter()
            .map(|h| HookPoint::parse(h, cfg).map_err(|e| bad_value("hooks", e)))
            .collect::<PyResult<Vec<_>>>()?;

        let sources: Vec<(HookPoint, Bound<'py, PyAny>)> = match edits {
            None => Vec::new(),
            Some(dict) => dict
                .iter()
                .map(|(k, v)| {
                    let name: String = k
                        .extract()
                        .map_err(|_| bad_type("edits", "keys must be hook names"))?;
                    let point = HookPoint::parse(&name, cfg).map_err(|e| bad_value("edits", e))?;
                    Ok((point, v))
                })
                .collect::<PyResult<_>>()?,
        };
        let planned = sources
            .iter()
            .map(|(point, value)| Ok((*point, edit_of(*point, value, cfg)?)))
            .collect::<PyResult<Vec<_>>>()?;

        let model = &self.inner.model;
        let failure: Mutex<Option<PyErr>> = Mutex::new(None);
        let output = py.detach(|| {
            let mut reads = Hooks::capture(points.iter().copied());
            if logits {
                reads = reads.with_logits();
            }
            for (point, edit) in &planned {
                let failure = &failure;
                let point = *point;
                reads = match edit {
                    Edit::Splice(sae) => reads.edit(point, move |x| splice(sae, x)),
                    Edit::Function(f) => {
                        reads.edit(point, move |x| call_edit(f, point, x, failure))
                    }
                };
            }
            model.forward(&batch, &mut reads)
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        let output = output.or_raise()?;

        let out = PyDict::new(py);
        for point in &points {
            if let Some(t) = output.get(*point) {
                out.set_item(point.to_string(), tensor_to_numpy(py, t)?)?;
            }
        }
        if let Some(t) = &output.logits {
            out.set_item("logits", tensor_to_numpy(py, t)?)?;
        }
        let shape = [batch.batch_size(), batch.seq_len()];
        out.set_item("mask", to_numpy(py, batch.mask().to_vec(), &shape)?)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let cfg = &self.inner.model.cfg;
        format!(
            "Model({:?}, {} layers, d_model {})",
            self.inner.name, cfg.n_layers, cfg.d_model
        )
    }
}

impl Model {
    /// The `tokens` argument of `run` as rows of ids.
    fn token_rows(&self, tokens: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u32>>> {
        if tokens.is_none() {
            return Err(bad_type(
                "tokens",
                "is None; give a text, a list of ids or rows of ids",
            ));
        }
        let rows = if let Ok(text) = tokens.cast::<PyString>() {
            vec![self
                .inner
                .tokenizer
                .encode(&text.extract::<String>()?)
                .or_raise()?]
        } else if let Ok(row) = tokens.extract::<Vec<u32>>() {
            vec![row]
        } else if let Ok(rows) = tokens.extract::<Vec<Vec<u32>>>() {
            rows
        } else {
            return Err(bad_type(
                "tokens",
                "must be a text, a list of token ids or a list of rows of ids (non-negative ints)",
            ));
        };
        if rows.is_empty() || rows.iter().any(Vec::is_empty) {
            return Err(bad_value("tokens", "holds an empty row"));
        }
        let vocab = self.inner.model.cfg.vocab_size;
        if let Some(&bad) = rows.iter().flatten().find(|&&id| id as usize >= vocab) {
            return Err(bad_value(
                "tokens",
                format!("holds id {bad}, outside the vocabulary of {vocab}"),
            ));
        }
        Ok(rows)
    }
}

/// What `value` (an `edits` entry) does at `point`: a dictionary's splice or a function.
fn edit_of<'a>(
    point: HookPoint,
    value: &'a Bound<'_, PyAny>,
    cfg: &ModelConfig,
) -> PyResult<Edit<'a>> {
    if let Ok(sae) = value.cast::<Sae>() {
        let sae = &sae.get().inner;
        let width = point.width(cfg);
        if sae.transcoder.is_some() {
            return Err(bad_value(
                "edits",
                format!("{point}: a transcoder reads one hook and writes another; splice it with saelab.evaluate"),
            ));
        }
        if sae.d_in() != width {
            return Err(bad_value(
                "edits",
                format!(
                    "{point} has width {width}; the dictionary's d_in is {}",
                    sae.d_in()
                ),
            ));
        }
        return Ok(Edit::Splice(sae));
    }
    if value.is_callable() {
        return Ok(Edit::Function(value.clone().unbind()));
    }
    Err(bad_type(
        "edits",
        format!("{point}: a value must be a function or a saelab.Sae"),
    ))
}

/// A hook value's numbers, row-major, as float32.
fn tensor_values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

fn tensor_to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let values = py.detach(|| tensor_values(t)).or_raise()?;
    to_numpy(py, values, t.dims())
}

/// The dictionary's reconstruction of every position of `x` `[batch, seq, d]`.
fn splice(sae: &saelab_sae::Sae, x: &Tensor) -> candle_core::Result<Tensor> {
    let values = tensor_values(x)?;
    let out = sae
        .forward(&values)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Tensor::from_vec(out.reconstruction, x.dims(), x.device())?.to_dtype(x.dtype())
}

/// A Python function's replacement of `x`; a Python error is kept in `failure` and ends the
/// forward.
fn call_edit(
    f: &Py<PyAny>,
    point: HookPoint,
    x: &Tensor,
    failure: &Mutex<Option<PyErr>>,
) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let values = tensor_values(x)?;
    let result = Python::attach(|py| -> PyResult<Vec<f32>> {
        let array = to_numpy(py, values, &dims)?;
        let out = f.call1(py, (array,))?;
        let numpy = py.import("numpy")?;
        let out = numpy.call_method1("asarray", (out, "float32"))?;
        let shape: Vec<usize> = out.getattr("shape")?.extract()?;
        if shape != dims {
            return Err(bad_value(
                "edits",
                format!("{point}: the function returned shape {shape:?}, expected {dims:?}"),
            ));
        }
        numpy
            .call_method1("ascontiguousarray", (out,))?
            .call_method0("ravel")?
            .extract()
    });
    match result {
        Ok(values) => Tensor::from_vec(values, dims.as_slice(), x.device())?.to_dtype(x.dtype()),
        Err(e) => {
            let message = e.to_string();
            if let Ok(mut slot) = failure.lock() {
                slot.get_or_insert(e);
            }
            Err(candle_core::Error::Msg(format!(
                "edit at {point}: {message}"
            )))
        }
    }
}
