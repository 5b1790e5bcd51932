//! `saelab._saelab`: the native half of the `saelab` Python package. Each file wraps one part
//! of the library (the model host, corpora and caches, dictionaries, training, evaluation);
//! `python/saelab/` adds what is easier in Python (progress bars, pandas, PyTorch tensors).
//!
//! Long work runs with the GIL released; errors become `saelab.SaelabError` with the
//! library's message, and bad arguments `TypeError`/`ValueError` naming the argument.

mod arrays;
mod contextual;
mod data;
mod errors;
mod eval;
mod features;
mod json;
mod model;
mod sae;
mod train;

use pyo3::prelude::*;

// Rust's own allocations (weights, batches) through mimalloc, as in the `saelab` command, so
// that work from Python runs as fast as from the command line.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _saelab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SaelabError", m.py().get_type::<errors::SaelabError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<sae::Sae>()?;
    m.add_class::<contextual::ContextualSae>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<data::Corpus>()?;
    m.add_class::<data::Cache>()?;
    m.add_class::<features::Features>()?;
    m.add_function(wrap_pyfunction!(data::harvest, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate, m)?)?;
    Ok(())
}
