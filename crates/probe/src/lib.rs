//! Linear probes: logistic regression on hook activations and dictionary features, sparse
//! probing on the top-k latents, and the XOR experiment (METRICS.md, "Probes").

pub mod collect;
pub mod direction;
pub mod error;
pub mod experiment;
pub mod labels;
pub mod lbfgs;
pub mod logistic;
pub mod matrix;
pub mod run;
pub mod split;
pub mod xor;

pub use error::{ProbeError, Result};
