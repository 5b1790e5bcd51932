//! Structured results (eval results, run summaries, metadata) cross as JSON: the same
//! document the command line writes, read by Python's `json` into dicts and lists.

use pyo3::intern;
use pyo3::prelude::*;

use crate::errors::bad_value;

pub fn to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.import(intern!(py, "json"))?
        .call_method1(intern!(py, "loads"), (text,))
}

/// A Python value (dicts, lists, strings, numbers, paths as strings) as JSON; `name` is the
/// argument it came from.
pub fn from_python(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<serde_json::Value> {
    let py = obj.py();
    let text: String = py
        .import(intern!(py, "json"))?
        .call_method1(intern!(py, "dumps"), (obj,))
        .map_err(|e| bad_value(name, format!("cannot be written as JSON: {e}")))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| bad_value(name, e))
}
