//! `saelab.ContextualSae`: a dictionary run over whole windows in order — a carry or
//! temporal dictionary (what `saelab train-contextual` writes), or any per-position one run
//! position by position — returning what each position pays for, what is on, the
//! reconstruction and the share of it carried from earlier positions.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::window::{load_window_dictionary, WindowDictionary};
use saelab_sae::SparseFeatures;

use crate::arrays::Windows;
use crate::errors::OrRaise;
use crate::json;

#[pyclass(module = "saelab", frozen)]
pub struct ContextualSae {
    inner: Box<dyn WindowDictionary>,
    /// A carry dictionary's λ per latent.
    decay: Option<Vec<f32>>,
}

#[pymethods]
impl ContextualSae {
    /// Loads a carry or temporal folder (or any dictionary folder `Sae.load` reads).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<ContextualSae> {
        py.detach(|| {
            let inner = load_window_dictionary(&path)?;
            let decay = match inner.architecture().as_str() {
                "carry" => Some(CarrySae::load(&path)?.decay),
                _ => None,
            };
            Ok::<_, saelab_sae::SaeError>(ContextualSae { inner, decay })
        })
        .or_raise()
    }

    /// Writes the dictionary's folder (a temporal SAE in SAELens's layout).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).or_raise()
    }

    /// Runs windows `x` `[windows, len, d_in]` (or one window `[len, d_in]`, float32), each
    /// from its first position in order. Returns a dict: `codes` (what is on at each
    /// position, carried codes included) and `paid` (what each position pays for: carry's
    /// onsets, temporal's novel codes), both `[windows, len, d_sae]`; `reconstruction`
    /// `[windows, len, d_in]`; `context_share` (the reconstruction's energy carried from
    /// earlier positions); `l0` (paid per position) and `codes_on` (on per position).
    /// Leave out a window's start token yourself, as training does: its outlier
    /// activation would be carried on.
    fn run<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let (d, f) = (self.inner.d_in(), self.inner.d_sae());
        let windows = Windows::read(x, "x", d)?;
        let values = windows.values()?;
        let out = py
            .detach(|| self.inner.run_windows(values, windows.len))
            .or_raise()?;
        let positions = out.codes.rows.max(1) as f64;
        let per_position = |s: &SparseFeatures| s.idx.len() as f64 / positions;
        let result = PyDict::new(py);
        result.set_item("l0", per_position(&out.paid))?;
        result.set_item("codes_on", per_position(&out.codes))?;
        result.set_item("context_share", out.context_share())?;
        let (codes, paid) = py.detach(|| (out.codes.to_dense(), out.paid.to_dense()));
        result.set_item("codes", windows.give_back(py, codes, f)?)?;
        result.set_item("paid", windows.give_back(py, paid, f)?)?;
        result.set_item(
            "reconstruction",
            windows.give_back(py, out.reconstruction, d)?,
        )?;
        Ok(result)
    }

    #[getter]
    fn d_in(&self) -> usize {
        self.inner.d_in()
    }

    #[getter]
    fn d_sae(&self) -> usize {
        self.inner.d_sae()
    }

    /// `carry`, `temporal`, or a per-position dictionary's SAELens name.
    #[getter]
    fn architecture(&self) -> String {
        self.inner.architecture()
    }

    /// A carry dictionary's λ `[d_sae]`, the share of each latent's code carried to the next
    /// position (None for other dictionaries), a copy.
    #[getter]
    fn decay<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.decay.clone().map(|d| d.into_pyarray(py))
    }

    /// The decoder rows `[d_sae, d_in]` (the latents' directions), a copy.
    #[getter(W_dec)]
    fn w_dec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (d, f) = (self.inner.d_in(), self.inner.d_sae());
        crate::arrays::to_numpy(py, self.inner.decoder().to_vec(), &[f, d])
    }

    /// The dictionary's metadata (model, hook, ...) as a dict.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(self.inner.metadata()).or_raise()?;
        json::to_python(py, &value)
    }

    fn __repr__(&self) -> String {
        let hook = self.inner.metadata().hook_name.as_deref().unwrap_or("?");
        format!(
            "ContextualSae({}, d_in={}, d_sae={}, hook={hook})",
            self.inner.architecture(),
            self.inner.d_in(),
            self.inner.d_sae()
        )
    }
}
