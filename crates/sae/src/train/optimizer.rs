//! The optimiser state of one parameter tensor, whichever optimiser the run uses.

use super::adam::{Adam, AdamStep};
use super::config::Optimizer;
use super::signum::{Signum, SignumStep};

/// What every parameter's update needs at one step (the part of the unused optimiser is
/// ignored).
#[derive(Clone, Copy, Debug)]
pub struct OptimStep {
    pub adam: AdamStep,
    pub signum: SignumStep,
}

#[derive(Clone, Debug)]
pub enum ParamState {
    Adam(Adam),
    Signum(Signum),
}

impl ParamState {
    pub fn new(kind: Optimizer, len: usize) -> Self {
        match kind {
            Optimizer::Adam => ParamState::Adam(Adam::new(len)),
            Optimizer::Signum => ParamState::Signum(Signum::new()),
        }
    }

    /// Forgets the history of `len` parameters from `start`, re-initialised to `param`'s
    /// values there.
    pub fn reset(&mut self, param: &[f32], start: usize, len: usize) {
        match self {
            ParamState::Adam(a) => a.reset(start, len),
            ParamState::Signum(s) => s.reset(param, start, len),
        }
    }

    pub fn update(&mut self, param: &mut [f32], grad: &[f32], s: OptimStep) {
        match self {
            ParamState::Adam(a) => a.update(param, grad, s.adam),
            ParamState::Signum(o) => o.update(param, grad, s.signum),
        }
    }

    /// The weights to evaluate and save: Adam's are the parameters themselves, schedule-free
    /// sign descent's are the running average.
    pub fn evaluated(&self, param: &[f32], momentum: f32) -> Vec<f32> {
        match self {
            ParamState::Adam(_) => param.to_vec(),
            ParamState::Signum(s) => s.average(param, momentum),
        }
    }

    /// Named state tensors for a checkpoint: `(prefix, values)`. Schedule-free's iterate is
    /// empty before the first step, where it equals the weights.
    pub fn tensors<'a>(&'a self, param: &'a [f32]) -> Vec<(&'static str, &'a [f32])> {
        match self {
            ParamState::Adam(a) => vec![("adam_m", &a.m), ("adam_v", &a.v)],
            ParamState::Signum(s) if s.z.is_empty() => vec![("signum_z", param)],
            ParamState::Signum(s) => vec![("signum_z", &s.z)],
        }
    }

    /// The state restored from a checkpoint's tensors, read by `read(prefix)`.
    pub fn restore(
        kind: Optimizer,
        mut read: impl FnMut(&str) -> crate::error::Result<Vec<f32>>,
    ) -> crate::error::Result<Self> {
        Ok(match kind {
            Optimizer::Adam => ParamState::Adam(Adam {
                m: read("adam_m")?,
                v: read("adam_v")?,
            }),
            Optimizer::Signum => ParamState::Signum(Signum {
                z: read("signum_z")?,
            }),
        })
    }
}
