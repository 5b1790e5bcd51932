//! saelab-sae: sparse dictionaries (sparse autoencoders) over activation vectors.
//!
//! The crate knows nothing of models: its input is activation batches, row-major `&[f32]`
//! of shape `[batch, d_in]`. It holds the dictionary architectures (ReLU, TopK, JumpReLU,
//! Gated), their SAELens-format files, imports of the peers' files, and trainers (TopK with
//! AuxK, BatchTopK, ReLU + L1 in its standard and April-update forms with optional ghost
//! grads, JumpReLU, Gated) with hand-derived gradients on CPU kernels.

pub mod baseline;
pub mod baseline_ica;
pub mod contextual;
pub mod dictionary;
pub mod error;
pub mod features;
pub mod format;
pub mod kernels;
pub mod rng;
pub mod synthetic;
pub mod train;
pub mod weights;

pub use dictionary::{Activation, Dictionary, Forward, Metadata, Sae, Transcoder};
pub use error::{Result, SaeError};
pub use features::SparseFeatures;
pub use train::config::{BDecInit, L1Variant, Optimizer, TrainArchitecture, TrainConfig};
pub use train::spec::SaeSpec;
pub use train::trainer::{StepStats, Trainer};
pub use weights::SaeWeights;
