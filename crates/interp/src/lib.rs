//! saelab-interp: what each feature of a dictionary means.
//!
//! - `scan`: one streaming pass over activation windows (live from the model or from a
//!   cache) that keeps, per feature, its density, mean and max, a log-spaced activation
//!   histogram, the top-k activating contexts and uniformly sampled examples from equal-width
//!   activation bins, in memory bounded by the number of features, not the corpus.
//! - `lens`: decoder directions read through the final norm and the unembedding.
//! - `nearest`: each feature's closest decoder directions in the other dictionaries.
//! - `ablation`: how a feature's activation at a position changes when each earlier token
//!   is removed from the context.
//! - `fires`, `steer`: a text's active features, and generation with a feature's direction
//!   added at its hook (the browser's live pages).
//! - `db`: the SQLite feature database these write and the browser reads (schema in
//!   README.md, "The feature database").
//! - `export`: a feature database in other tools' layouts (Neuronpedia's batch files).

pub mod ablation;
pub mod build;
pub mod db;
pub mod error;
pub mod export;
pub mod fires;
pub mod lens;
pub mod nearest;
pub mod proxies;
pub mod scan;
pub mod steer;
pub mod steer_sweep;

pub use error::{InterpError, Result};
