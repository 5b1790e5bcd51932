//! Rust errors as Python exceptions, with the message the `saelab` command would print.

use std::fmt::Display;

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::PyErr;

pyo3::create_exception!(
    saelab,
    SaelabError,
    PyException,
    "An error from saelab's library: a file that cannot be read, settings that cannot work, a \
     model or dictionary that does not fit. The message names the file, field or argument."
);

/// `Result<T, E>` → `PyResult<T>`, the error's whole chain in the message.
pub trait OrRaise<T> {
    fn or_raise(self) -> Result<T, PyErr>;
}

impl<T, E: Into<anyhow::Error>> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> Result<T, PyErr> {
        self.map_err(|e| saelab_error(e.into()))
    }
}

pub fn saelab_error(e: anyhow::Error) -> PyErr {
    SaelabError::new_err(format!("{e:#}"))
}

/// A bad argument's value: `ValueError("`name` ...")`.
pub fn bad_value(name: &str, message: impl Display) -> PyErr {
    PyValueError::new_err(format!("`{name}` {message}"))
}

/// A bad argument's type: `TypeError("`name` ...")`.
pub fn bad_type(name: &str, message: impl Display) -> PyErr {
    PyTypeError::new_err(format!("`{name}` {message}"))
}
