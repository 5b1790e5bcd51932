//! Dictionaries on disk: SAELens folders (read and written), and the formats of
//! dictionary_learning and sparsify (read). [`load_any`] tells them apart.

pub mod any;
pub mod atomic;
pub mod dictionary_learning;
pub mod json_cfg;
pub mod saelens;
pub mod saelens_temporal;
pub mod sparsify;
pub mod tensors;
pub mod torch_file;

pub use any::{detect, load_any, Format};
