//! `saelab.Features`: a feature database (`saelab features`) queried from Python: its
//! dictionaries, every feature's density, and one feature's logit lens and examples.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use saelab_interp::export::reader::{DictionaryRow, ExampleRecord, FeatureReader};

use crate::arrays::to_numpy;
use crate::errors::{bad_value, OrRaise};

/// A feature database made by `saelab features` (the one `saelab serve` shows).
#[pyclass(module = "saelab", frozen)]
pub struct Features {
    // SQLite connections are not shared between threads; one call at a time.
    reader: Mutex<FeatureReader>,
    path: PathBuf,
}

impl Features {
    fn with<T>(&self, f: impl FnOnce(&FeatureReader) -> PyResult<T>) -> PyResult<T> {
        let reader = self
            .reader
            .lock()
            .map_err(|_| bad_value("Features", "an earlier call failed while reading"))?;
        f(&reader)
    }
}

fn dictionary<'a>(reader: &'a FeatureReader, name: &str) -> PyResult<&'a DictionaryRow> {
    reader
        .dictionaries
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = reader
                .dictionaries
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            bad_value(
                "dictionary",
                format!(
                    "= {name:?} is not in the database; it holds {}",
                    names.join(", ")
                ),
            )
        })
}

fn token_text(reader: &FeatureReader, id: u32) -> String {
    reader
        .vocabulary
        .get(id as usize)
        .cloned()
        .unwrap_or_else(|| format!("<{id}>"))
}

/// An example as a dict: token texts and ids, activations, and where the example's token is.
fn example<'py>(
    py: Python<'py>,
    reader: &FeatureReader,
    e: &ExampleRecord,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let tokens: Vec<String> = e.ids.iter().map(|&id| token_text(reader, id)).collect();
    dict.set_item("tokens", tokens)?;
    dict.set_item("ids", e.ids.clone())?;
    dict.set_item("acts", e.acts.clone())?;
    dict.set_item("at", e.at)?;
    Ok(dict)
}

#[pymethods]
impl Features {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Features> {
        let reader = py.detach(|| FeatureReader::open(&path)).or_raise()?;
        Ok(Features {
            reader: Mutex::new(reader),
            path,
        })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The dictionaries scanned: `name`, `hook`, `d_sae`, `positions` (tokens counted).
    #[getter]
    fn dictionaries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with(|r| {
            let list = PyList::empty(py);
            for d in &r.dictionaries {
                let dict = PyDict::new(py);
                dict.set_item("name", &d.name)?;
                dict.set_item("hook", &d.hook)?;
                dict.set_item("d_sae", d.d_sae)?;
                dict.set_item("positions", d.positions)?;
                list.append(dict)?;
            }
            Ok(list)
        })
    }

    /// What the scan read: `corpus`, `tokens`, `ctx`.
    #[getter]
    fn scan<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(|r| {
            let dict = PyDict::new(py);
            dict.set_item("corpus", &r.scan.corpus)?;
            dict.set_item("tokens", r.scan.tokens)?;
            dict.set_item("ctx", r.scan.ctx)?;
            Ok(dict)
        })
    }

    /// Every feature of `dictionary`: arrays `index`, `count`, `density`, `max_act`,
    /// `p_stay` and `mean_run` (NaN where the database has none; ready for
    /// `pandas.DataFrame`).
    fn summary<'py>(&self, py: Python<'py>, dictionary: &str) -> PyResult<Bound<'py, PyDict>> {
        self.with(|r| {
            let d = self::dictionary(r, dictionary)?;
            let rows = r.summaries(d).or_raise()?;
            let n = rows.len();
            let dict = PyDict::new(py);
            dict.set_item(
                "index",
                to_numpy(py, rows.iter().map(|f| f.index).collect(), &[n])?,
            )?;
            dict.set_item(
                "count",
                to_numpy(py, rows.iter().map(|f| f.count).collect(), &[n])?,
            )?;
            dict.set_item(
                "density",
                to_numpy(py, rows.iter().map(|f| f.density).collect(), &[n])?,
            )?;
            dict.set_item(
                "max_act",
                to_numpy(py, rows.iter().map(|f| f.max_act).collect(), &[n])?,
            )?;
            // NaN where the database has none (too rare to say; never fired).
            let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
            dict.set_item(
                "p_stay",
                to_numpy(py, rows.iter().map(|f| or_nan(f.p_stay)).collect(), &[n])?,
            )?;
            dict.set_item(
                "mean_run",
                to_numpy(py, rows.iter().map(|f| or_nan(f.mean_run)).collect(), &[n])?,
            )?;
            Ok(dict)
        })
    }

    /// Feature `index` of `dictionary`: `count`, `density`, `max_act`, its activation
    /// histogram (`hist` between `hist_edges`), its logit lens (`promoted`, `suppressed`:
    /// (token, value) pairs), its `top` examples and its quantile `bins` with examples. None
    /// for a feature that never fired in the scan.
    fn feature<'py>(
        &self,
        py: Python<'py>,
        dictionary: &str,
        index: u32,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.with(|r| {
            let d = self::dictionary(r, dictionary)?;
            if index >= d.d_sae {
                return Err(bad_value(
                    "index",
                    format!(
                        "= {index} is out of range: {dictionary} has {} features",
                        d.d_sae
                    ),
                ));
            }
            let Some(f) = r.features(d, index, index).or_raise()?.into_iter().next() else {
                return Ok(None);
            };
            let dict = PyDict::new(py);
            dict.set_item("index", f.index)?;
            dict.set_item("count", f.count)?;
            dict.set_item("density", f.density)?;
            dict.set_item("max_act", f.max_act)?;
            dict.set_item("hist", f.hist.clone())?;
            dict.set_item("hist_edges", d.hist_edges.clone())?;
            let lens = |entries: &[(u32, f64)]| -> Vec<(String, f64)> {
                entries
                    .iter()
                    .map(|&(id, v)| (token_text(r, id), v))
                    .collect()
            };
            dict.set_item("promoted", lens(&f.lens_promoted))?;
            dict.set_item("suppressed", lens(&f.lens_suppressed))?;
            let top = PyList::empty(py);
            for e in &f.top {
                top.append(example(py, r, e)?)?;
            }
            dict.set_item("top", top)?;
            let bins = PyList::empty(py);
            for b in &f.bins {
                let bin = PyDict::new(py);
                bin.set_item("lo", b.lo)?;
                bin.set_item("hi", b.hi)?;
                bin.set_item("count", b.count)?;
                let examples = PyList::empty(py);
                for e in &b.examples {
                    examples.append(example(py, r, e)?)?;
                }
                bin.set_item("examples", examples)?;
                bins.append(bin)?;
            }
            dict.set_item("bins", bins)?;
            Ok(Some(dict))
        })
    }

    fn __repr__(&self) -> String {
        format!("Features({:?})", self.path)
    }
}
