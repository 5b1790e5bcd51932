//! Training: configuration, objectives with their gradients, optimisers (Adam, schedule-free
//! sign descent), schedules, firing
//! statistics and the step loop.

pub mod adam;
pub mod checkpoint;
pub mod config;
pub mod dead;
pub mod gated;
pub mod geometric_median;
pub mod ghost;
pub mod jumprelu;
pub mod matryoshka;
pub mod objective;
pub mod optimizer;
pub mod resample;
pub mod schedule;
pub mod set;
pub mod signum;
pub mod target_l0;
pub mod trainer;
pub mod transcoder;
