//! Dictionaries on disk.

pub mod atomic;
pub mod saelens;
pub mod tensors;
