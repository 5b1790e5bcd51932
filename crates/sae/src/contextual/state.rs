//! A contextual trainer's whole state on disk, so that a resumed run takes exactly the steps
//! an uninterrupted one would: parameters and Adam's moments in `state.safetensors` (f32, bit
//! for bit) and the config, step and input scale in `trainer.json`. Each file is written
//! beside its name and renamed into place.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, SaeError};
use crate::format::atomic::write_atomic;
use crate::format::tensors::{to_bytes, TensorFile};
use crate::train::adam::Adam;

pub const STATE: &str = "state.safetensors";
pub const TRAINER: &str = "trainer.json";

/// One parameter with its optimiser state, as stored.
pub struct Stored<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub value: &'a [f32],
    pub adam: &'a Adam,
}

pub fn save<S: Serialize>(dir: &Path, params: &[Stored], scalars: &S) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
    let names: Vec<(String, String, String)> = params
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                format!("adam_m.{}", p.name),
                format!("adam_v.{}", p.name),
            )
        })
        .collect();
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = Vec::new();
    for (p, (n, m, v)) in params.iter().zip(&names) {
        tensors.push((n, p.shape.clone(), p.value));
        tensors.push((m, p.shape.clone(), &p.adam.m));
        tensors.push((v, p.shape.clone(), &p.adam.v));
    }
    let path = dir.join(STATE);
    write_atomic(&path, &to_bytes(&path, &tensors)?)?;
    let path = dir.join(TRAINER);
    let text = serde_json::to_vec_pretty(scalars).map_err(|e| SaeError::Json {
        path: path.clone(),
        cause: e,
    })?;
    // trainer.json last: a folder with one has its state.
    write_atomic(&path, &text)
}

pub fn read_scalars<S: DeserializeOwned>(dir: &Path) -> Result<S> {
    let path = dir.join(TRAINER);
    let text = std::fs::read_to_string(&path).map_err(|e| SaeError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| SaeError::Json { path, cause: e })
}

/// Reads parameter `name` of `shape` and its moments into `value` and `adam`.
pub fn read_param(
    file: &TensorFile,
    name: &str,
    shape: &[usize],
    value: &mut Vec<f32>,
    adam: &mut Adam,
) -> Result<()> {
    *value = file.read(name, shape)?;
    adam.m = file.read(&format!("adam_m.{name}"), shape)?;
    adam.v = file.read(&format!("adam_v.{name}"), shape)?;
    Ok(())
}

/// A checkpoint resumes only the config it was saved with.
pub fn check_config<C: PartialEq + std::fmt::Debug>(dir: &Path, saved: &C, ours: &C) -> Result<()> {
    if saved != ours {
        return Err(SaeError::Input(format!(
            "{}: the checkpoint was trained with another config ({saved:?}) than this run's ({ours:?})",
            dir.display()
        )));
    }
    Ok(())
}

pub fn open(dir: &Path) -> Result<TensorFile> {
    TensorFile::open(&dir.join(STATE))
}
