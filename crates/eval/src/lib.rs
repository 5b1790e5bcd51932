//! Evaluation that states its definitions: every metric of METRICS.md, computed on stated
//! positions, with the parameters written next to the numbers.
//!
//! The accumulators (`reconstruction`, `sparsity`, `cross_entropy`) are plain numeric code
//! over row-major slices; `evaluate` joins them to a model and dictionaries.

pub mod cross_entropy;
pub mod dictionary_hooks;
pub mod downstream;
pub mod error;
pub mod evaluate;
pub mod geometry;
pub mod histogram;
pub mod persistence;
pub mod perturbation;
pub mod positions;
pub mod reconstruction;
pub mod results;
pub mod sparsity;
pub mod tokens;

pub use error::{EvalError, Result};
pub use evaluate::{evaluate, pruned_copies, EvalDictionary, EvalOptions, Prune};
pub use results::EvalResults;
