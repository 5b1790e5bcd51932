//! Arrays in and out: arguments checked (dtype, layout, shape) with errors that name them,
//! PyTorch tensors read through DLPack without a copy, and results handed to NumPy without a
//! copy (the array owns the Rust buffer).

use numpy::{
    dtype, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;

use crate::errors::{bad_type, bad_value};

/// A float32 argument of shape `[rows, cols]`, or one vector `[cols]`.
pub struct Rows<'py> {
    array: PyReadonlyArrayDyn<'py, f32>,
    pub rows: usize,
    /// A single vector came in: results go back without the row axis.
    vector: bool,
    /// A PyTorch tensor came in: results go back as tensors.
    torch: bool,
}

impl<'py> Rows<'py> {
    /// Reads `obj` (`name` in messages) as rows of `cols` values (`cols_what` says what
    /// fixes that width, e.g. "the dictionary's d_in").
    pub fn read(
        obj: &Bound<'py, PyAny>,
        name: &str,
        cols: usize,
        cols_what: &str,
    ) -> PyResult<Self> {
        let expected = format!("a float32 array of shape [n, {cols}]");
        let (array, shape, torch) = float32(obj, name, &expected)?;
        let (rows, vector) = match shape.as_slice() {
            [c] => (usize::from(*c > 0), true),
            [r, _] => (*r, false),
            _ => {
                return Err(bad_value(
                    name,
                    format!("has shape {shape:?}; expected {expected} or one vector [{cols}]"),
                ))
            }
        };
        if shape.last() != Some(&cols) {
            return Err(bad_value(
                name,
                format!("has shape {shape:?}; {cols_what} is {cols}, so expected {expected}"),
            ));
        }
        Ok(Rows {
            array,
            rows,
            vector,
            torch,
        })
    }

    pub fn values(&self) -> PyResult<&[f32]> {
        contiguous(&self.array)
    }

    /// `data` (`rows × cols`, row-major) in the caller's form: NumPy or PyTorch, one vector
    /// or rows, as the argument came.
    pub fn give_back(
        &self,
        py: Python<'py>,
        data: Vec<f32>,
        cols: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shape = if self.vector {
            vec![cols]
        } else {
            vec![self.rows, cols]
        };
        shaped(py, data, shape, self.torch)
    }
}

/// Whole windows of activations: `[windows, len, cols]`, or one window `[len, cols]`.
pub struct Windows<'py> {
    array: PyReadonlyArrayDyn<'py, f32>,
    pub windows: usize,
    pub len: usize,
    /// One window came in: results go back without the window axis.
    single: bool,
    torch: bool,
}

impl<'py> Windows<'py> {
    pub fn read(obj: &Bound<'py, PyAny>, name: &str, cols: usize) -> PyResult<Self> {
        let expected = format!("a float32 array of shape [windows, len, {cols}]");
        let (array, shape, torch) = float32(obj, name, &expected)?;
        let (windows, len, single) = match shape.as_slice() {
            [l, c] if *c == cols => (1, *l, true),
            [w, l, c] if *c == cols => (*w, *l, false),
            _ => {
                return Err(bad_value(
                    name,
                    format!(
                        "has shape {shape:?}; the dictionary's d_in is {cols}, so expected \
                         {expected} or one window [len, {cols}]"
                    ),
                ))
            }
        };
        if len == 0 {
            return Err(bad_value(name, "has windows of length 0"));
        }
        Ok(Windows {
            array,
            windows,
            len,
            single,
            torch,
        })
    }

    pub fn values(&self) -> PyResult<&[f32]> {
        contiguous(&self.array)
    }

    /// `data` (`windows × len × cols`) shaped as the argument came, NumPy or PyTorch.
    pub fn give_back(
        &self,
        py: Python<'py>,
        data: Vec<f32>,
        cols: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shape = if self.single {
            vec![self.len, cols]
        } else {
            vec![self.windows, self.len, cols]
        };
        shaped(py, data, shape, self.torch)
    }
}

/// `obj` as a C-contiguous float32 array, with its shape and whether it was a PyTorch
/// tensor; `expected` says what was wanted in errors.
fn float32<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    expected: &str,
) -> PyResult<(PyReadonlyArrayDyn<'py, f32>, Vec<usize>, bool)> {
    let torch = is_torch(obj);
    let array = as_numpy(obj, name, expected)?;
    let py = obj.py();
    let descr = array.dtype();
    if !descr.is_equiv_to(&dtype::<f32>(py)) {
        return Err(bad_type(
            name,
            format!("has dtype {descr}; expected float32 (convert with .astype(np.float32))"),
        ));
    }
    let shape = array.shape().to_vec();
    if !array.is_c_contiguous() {
        return Err(bad_value(
            name,
            "is not C-contiguous (a transposed or strided view); pass \
             np.ascontiguousarray(...) (or .contiguous() for a tensor)",
        ));
    }
    let array = array
        .cast::<PyArrayDyn<f32>>()
        .map_err(|_| bad_type(name, format!("is not {expected}")))?
        .readonly();
    Ok((array, shape, torch))
}

/// The values of an array checked C-contiguous by [`float32`].
fn contiguous<'a>(array: &'a PyReadonlyArrayDyn<'_, f32>) -> PyResult<&'a [f32]> {
    array
        .as_slice()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// `data` as a NumPy array of `shape` without a copy, or a PyTorch tensor viewing it.
fn shaped<'py>(
    py: Python<'py>,
    data: Vec<f32>,
    shape: Vec<usize>,
    torch: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let array = data.into_pyarray(py).reshape(shape)?.into_any();
    if torch {
        let torch = py.import(intern!(py, "torch"))?;
        return torch.call_method1(intern!(py, "from_numpy"), (array,));
    }
    Ok(array)
}

/// A PyTorch tensor (results for it go back as tensors).
fn is_torch(obj: &Bound<'_, PyAny>) -> bool {
    obj.get_type()
        .module()
        .map(|m| m.to_string_lossy().starts_with("torch"))
        .unwrap_or(false)
}

/// `obj` as a NumPy array: itself, or a DLPack exporter (a CPU PyTorch tensor) viewed
/// without a copy.
fn as_numpy<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    expected: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if obj.is_none() {
        return Err(bad_type(name, format!("is None; expected {expected}")));
    }
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        return Ok(array.clone());
    }
    let py = obj.py();
    if obj.hasattr(intern!(py, "__dlpack__"))? {
        let numpy = py.import(intern!(py, "numpy"))?;
        let viewed = numpy
            .call_method1(intern!(py, "from_dlpack"), (obj,))
            .map_err(|e| {
                bad_value(
                    name,
                    format!(
                        "cannot be read without a copy ({e}); pass a CPU tensor, detached \
                         (tensor.detach().cpu())"
                    ),
                )
            })?;
        return Ok(viewed.cast_into::<PyUntypedArray>()?);
    }
    let type_name = obj.get_type().name()?;
    Err(bad_type(
        name,
        format!("is a {type_name}; expected {expected} (NumPy or a PyTorch tensor)"),
    ))
}

/// A row-major buffer as a NumPy array of `shape`, without a copy.
pub fn to_numpy<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(data.into_pyarray(py).reshape(shape.to_vec())?.into_any())
}
