//! `saelab.Sae`: a trained dictionary (SAELens, sparsify or dictionary_learning files) that
//! encodes and decodes NumPy arrays and PyTorch tensors.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use saelab_sae::format::any::load_any;
use saelab_sae::format::{saelens, sparsify};
use saelab_sae::{Activation, Dictionary, SparseFeatures};

use crate::arrays::{to_numpy, Rows};
use crate::errors::{bad_value, OrRaise};
use crate::json;

/// A sparse dictionary: `encode` activations into features, `decode` features back,
/// `forward` both. Load one with `Sae.load(folder)`; training returns them too.
#[pyclass(module = "saelab", frozen)]
pub struct Sae {
    pub inner: saelab_sae::Sae,
}

impl Sae {
    fn features<'py>(&self, f: &Bound<'py, PyAny>) -> PyResult<(Rows<'py>, SparseFeatures)> {
        let rows = Rows::read(f, "f", self.inner.d_sae(), "the dictionary's d_sae")?;
        let dense = rows.values()?;
        let d_sae = self.inner.d_sae();
        let features = SparseFeatures::from_dense(dense, rows.rows, d_sae);
        Ok((rows, features))
    }
}

#[pymethods]
impl Sae {
    /// Loads a dictionary folder; the format (SAELens, sparsify, dictionary_learning) is told
    /// by its files.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Sae> {
        let inner = py.detach(|| load_any(&path)).or_raise()?;
        Ok(Sae { inner })
    }

    /// Writes the dictionary as a folder that SAELens (`format="saelens"`, the default) or
    /// sparsify (`format="sparsify"`) loads; files are replaced atomically.
    #[pyo3(signature = (path, format = "saelens"))]
    fn save(&self, py: Python<'_>, path: PathBuf, format: &str) -> PyResult<()> {
        let save = match format {
            "saelens" => saelens::save,
            "sparsify" => sparsify::save,
            _ => {
                return Err(bad_value(
                    "format",
                    format!("= {format:?}: give \"saelens\" or \"sparsify\""),
                ))
            }
        };
        py.detach(|| save(&self.inner, &path)).or_raise()
    }

    /// Dense features `[n, d_sae]` of activations `x` `[n, d_in]` (float32; one vector
    /// `[d_in]` gives `[d_sae]`).
    fn encode<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let rows = Rows::read(x, "x", self.inner.d_in(), "the dictionary's d_in")?;
        let values = rows.values()?;
        let features = py.detach(|| self.inner.encode(values)).or_raise()?;
        let dense = py.detach(|| features.to_dense());
        rows.give_back(py, dense, self.inner.d_sae())
    }

    /// Features of `x` in compressed-row form: `(indptr, indices, values)`, row t's entries at
    /// `indptr[t]:indptr[t+1]` (as `scipy.sparse.csr_matrix((values, indices, indptr))`).
    fn encode_sparse<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let rows = Rows::read(x, "x", self.inner.d_in(), "the dictionary's d_in")?;
        let values = rows.values()?;
        let f = py.detach(|| self.inner.encode(values)).or_raise()?;
        let indptr: Vec<i64> = f.row_ptr.iter().map(|&p| p as i64).collect();
        let nnz = f.idx.len();
        Ok((
            to_numpy(py, indptr, &[f.rows + 1])?,
            to_numpy(py, f.idx, &[nnz])?,
            to_numpy(py, f.val, &[nnz])?,
        ))
    }

    /// Reconstructions `[n, d_in]` of dense features `f` `[n, d_sae]` (a transcoder's skip
    /// connection, which reads the input, is added by `forward` only).
    fn decode<'py>(&self, py: Python<'py>, f: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (rows, features) = self.features(f)?;
        let out = py.detach(|| self.inner.decode(&features)).or_raise()?;
        rows.give_back(py, out, self.inner.d_in())
    }

    /// `decode(encode(x))` without the dense features in between.
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let rows = Rows::read(x, "x", self.inner.d_in(), "the dictionary's d_in")?;
        let values = rows.values()?;
        let out = py.detach(|| self.inner.forward(values)).or_raise()?;
        rows.give_back(py, out.reconstruction, self.inner.d_in())
    }

    #[getter]
    fn d_in(&self) -> usize {
        self.inner.d_in()
    }

    #[getter]
    fn d_sae(&self) -> usize {
        self.inner.d_sae()
    }

    /// SAELens's name of the architecture: `standard`, `topk`, `jumprelu` or `gated`.
    #[getter]
    fn architecture(&self) -> &'static str {
        self.inner.architecture()
    }

    /// TopK's k (None for other architectures).
    #[getter]
    fn k(&self) -> Option<usize> {
        match self.inner.activation {
            Activation::TopK { k } => Some(k),
            _ => None,
        }
    }

    /// The hook the dictionary reads, from its metadata (None when the files do not say).
    #[getter]
    fn hook_name(&self) -> Option<String> {
        self.inner.metadata.hook_name.clone()
    }

    /// A transcoder's output hook (None for an autoencoder).
    #[getter]
    fn hook_name_out(&self) -> Option<String> {
        self.inner.metadata.hook_name_out.clone()
    }

    /// SAELens's `metadata` (model, hook, context size, dataset, ...) as a dict.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(&self.inner.metadata).or_raise()?;
        json::to_python(py, &value)
    }

    /// The encoder `[d_in, d_sae]` as saved (input normalisation folded in), a copy.
    #[getter(W_enc)]
    fn w_enc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = saelens::folded_weights(&self.inner);
        to_numpy(py, w.w_enc(), &[w.d_in, w.d_sae])
    }

    /// The decoder `[d_sae, d_in]` as saved, a copy.
    #[getter(W_dec)]
    fn w_dec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = saelens::folded_weights(&self.inner);
        to_numpy(py, w.w_dec, &[w.d_sae, w.d_in])
    }

    /// The encoder bias `[d_sae]` (a gated dictionary's gate bias), a copy.
    #[getter]
    fn b_enc<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.inner.weights.b_enc.clone().into_pyarray(py)
    }

    /// The decoder bias `[d_in]` as saved, a copy.
    #[getter]
    fn b_dec<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        saelens::folded_weights(&self.inner).b_dec.into_pyarray(py)
    }

    /// JumpReLU's thresholds `[d_sae]` (None for other architectures), a copy.
    #[getter]
    fn threshold<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        match &self.inner.activation {
            Activation::JumpRelu { threshold } => Some(threshold.clone().into_pyarray(py)),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        let hook = self.inner.metadata.hook_name.as_deref().unwrap_or("?");
        format!(
            "Sae({}, d_in={}, d_sae={}, hook={hook})",
            self.inner.architecture(),
            self.inner.d_in(),
            self.inner.d_sae()
        )
    }
}
