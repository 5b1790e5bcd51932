//! Training: configuration, the architectures (`arch/`, one file each), the shared objective
//! with its gradients, optimisers (Adam, schedule-free sign descent), schedules, firing
//! statistics and the step loop.

pub mod adam;
pub mod arch;
pub mod checkpoint;
pub mod config;
pub mod dead;
pub mod floor;
pub mod geometric_median;
pub mod ghost;
pub mod objective;
pub mod optimizer;
pub mod resample;
pub mod schedule;
pub mod set;
pub mod signum;
pub mod snapshot;
pub mod spec;
pub mod target_l0;
pub mod trainer;
pub mod transcoder;

// The architectures' own maths, where they were before `arch/`.
pub use arch::{gated, jumprelu, matryoshka};
