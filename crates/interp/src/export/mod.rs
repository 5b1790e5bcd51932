//! Feature databases written out for other tools.
//!
//! - `neuronpedia`: one dictionary as the batch files Neuronpedia imports.
//! - `reader`: the database read back a range of features at a time (format-neutral).
//! - `folder`: an output folder that refuses unrelated files and is written atomically,
//!   file by file.

pub mod folder;
pub mod neuronpedia;
pub mod reader;
