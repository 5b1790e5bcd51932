//! Hand-written CPU kernels: dense products (faer), selection, sparse products, vector loops.

pub mod gemm;
pub mod select;
pub mod sparse;
pub mod vector;
