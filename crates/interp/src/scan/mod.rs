//! One streaming pass over activation windows for any number of dictionaries.
//!
//! Per batch of windows, each dictionary encodes its hook's activations once; the sparse
//! features are transposed to per-feature lists, and features are updated in parallel,
//! each in position order, so results never depend on the thread schedule. Memory is
//! bounded by the number of features times the examples kept, never by the corpus: a
//! window's ids are held only while some example refers to them.

pub mod example;
mod feature;
pub mod histogram;
pub mod limit;
pub mod quantile;
mod scanner;
pub mod top;

pub use example::{ContextSpan, Example};
pub use feature::FeatureScan;
pub use quantile::QuantileBin;
pub use scanner::{DictionaryScan, ScanDictionary, ScanOptions, Scanner};
