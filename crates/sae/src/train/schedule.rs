//! Schedules: the learning rate (linear warm-up, constant, linear decay to zero over the
//! last steps), and a linear warm-up of its own for each loss term beside the
//! reconstruction (the sparsity penalty, and the auxiliary losses).

use super::config::TrainConfig;

/// Learning rate for step `step` (0-based).
pub fn lr_at(cfg: &TrainConfig, step: u64) -> f32 {
    let mut factor = 1.0f64;
    if cfg.lr_warmup_steps > 0 && step < cfg.lr_warmup_steps {
        factor = (step + 1) as f64 / cfg.lr_warmup_steps as f64;
    }
    let decay_start = cfg.total_steps.saturating_sub(cfg.lr_decay_steps);
    if cfg.lr_decay_steps > 0 && step >= decay_start {
        let left = cfg.total_steps.saturating_sub(step) as f64;
        factor *= left / cfg.lr_decay_steps as f64;
    }
    (cfg.lr as f64 * factor) as f32
}

/// Sparsity-penalty coefficient for step `step` (L1, or JumpReLU's L0) when the full
/// coefficient is `full`: ramps linearly so early dense features are not killed before they
/// find directions.
pub fn penalty_at(cfg: &TrainConfig, step: u64, full: f32) -> f32 {
    (full as f64 * ramp(step, cfg.l1_warmup_steps)) as f32
}

/// The weight of the auxiliary losses (AuxK, ghost grads, Gated's auxiliary reconstruction)
/// at step `step`: ramps linearly to 1 over `aux_warmup_steps`.
pub fn aux_scale_at(cfg: &TrainConfig, step: u64) -> f32 {
    ramp(step, cfg.aux_warmup_steps) as f32
}

/// (step + 1)/steps during a warm-up of `steps` steps, then 1.
fn ramp(step: u64, steps: u64) -> f64 {
    if steps == 0 || step >= steps {
        1.0
    } else {
        (step + 1) as f64 / steps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::TrainArchitecture;

    #[test]
    fn warm_up_constant_then_decay_to_zero() {
        let mut cfg = TrainConfig::new(TrainArchitecture::TopK { k: 4 }, 8, 16, 100);
        cfg.lr = 1.0;
        cfg.lr_warmup_steps = 10;
        cfg.lr_decay_steps = 20;
        assert!((lr_at(&cfg, 0) - 0.1).abs() < 1e-6);
        assert!((lr_at(&cfg, 9) - 1.0).abs() < 1e-6);
        assert_eq!(lr_at(&cfg, 50), 1.0);
        assert_eq!(lr_at(&cfg, 80), 1.0);
        assert!((lr_at(&cfg, 90) - 0.5).abs() < 1e-6);
        assert!(lr_at(&cfg, 99) > 0.0);
        assert_eq!(lr_at(&cfg, 100), 0.0);

        cfg.l1_coefficient = 2.0;
        cfg.l1_warmup_steps = 4;
        let full = cfg.sparsity_coefficient();
        assert_eq!(penalty_at(&cfg, 0, full), 0.5);
        assert_eq!(penalty_at(&cfg, 3, full), 2.0);
        assert_eq!(penalty_at(&cfg, 1000, full), 2.0);
        cfg.architecture = TrainArchitecture::JumpRelu;
        cfg.l0_coefficient = 8.0;
        assert_eq!(penalty_at(&cfg, 1, cfg.sparsity_coefficient()), 4.0);

        assert_eq!(aux_scale_at(&cfg, 0), 1.0, "no warm-up by default");
        cfg.aux_warmup_steps = 8;
        assert_eq!(aux_scale_at(&cfg, 0), 0.125);
        assert_eq!(aux_scale_at(&cfg, 3), 0.5);
        assert_eq!(aux_scale_at(&cfg, 7), 1.0);
        assert_eq!(aux_scale_at(&cfg, 500), 1.0);
    }
}
