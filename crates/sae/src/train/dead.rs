//! Which latents fire: tokens since each one last fired (dead-latent detection for AuxK and
//! the stats), firing counts per window (the density saved as `sparsity.safetensors`), and
//! counts since the last density snapshot and since the start of training (a run's
//! `snapshots/`, which record how latents die).

use crate::features::SparseFeatures;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FiringTracker {
    tokens_since_fired: Vec<u64>,
    window_counts: Vec<u64>,
    window_tokens: u64,
    window_steps: u64,
    steps_per_window: u64,
    last_density: Option<Vec<f32>>,
    /// Counts and tokens since the last `take_interval` (checkpoints from before snapshots
    /// existed read as empty and start counting at the resume).
    #[serde(default)]
    interval_counts: Vec<u64>,
    #[serde(default)]
    interval_tokens: u64,
    /// Counts and tokens since the start of training.
    #[serde(default)]
    total_counts: Vec<u64>,
    #[serde(default)]
    total_tokens: u64,
}

/// Firing counts over a stretch of training.
#[derive(Clone, Debug, PartialEq)]
pub struct FiringCounts {
    pub counts: Vec<u64>,
    pub tokens: u64,
}

impl FiringTracker {
    pub fn new(d_sae: usize, steps_per_window: u64) -> Self {
        FiringTracker {
            tokens_since_fired: vec![0; d_sae],
            window_counts: vec![0; d_sae],
            window_tokens: 0,
            window_steps: 0,
            steps_per_window: steps_per_window.max(1),
            last_density: None,
            interval_counts: vec![0; d_sae],
            interval_tokens: 0,
            total_counts: vec![0; d_sae],
            total_tokens: 0,
        }
    }

    /// Records a batch's features (a latent fires where its activation is nonzero).
    pub fn record(&mut self, f: &SparseFeatures) {
        let n = self.tokens_since_fired.len();
        self.interval_counts.resize(n, 0);
        self.total_counts.resize(n, 0);
        let mut fired = vec![false; n];
        for (&j, &v) in f.idx.iter().zip(&f.val) {
            if v != 0.0 {
                let j = j as usize;
                fired[j] = true;
                self.window_counts[j] += 1;
                self.interval_counts[j] += 1;
                self.total_counts[j] += 1;
            }
        }
        self.interval_tokens += f.rows as u64;
        self.total_tokens += f.rows as u64;
        for (t, fired) in self.tokens_since_fired.iter_mut().zip(&fired) {
            *t = if *fired {
                0
            } else {
                t.saturating_add(f.rows as u64)
            };
        }
        self.window_tokens += f.rows as u64;
        self.window_steps += 1;
        if self.window_steps >= self.steps_per_window {
            self.last_density = Some(self.window_density());
            self.window_counts.iter_mut().for_each(|c| *c = 0);
            self.window_tokens = 0;
            self.window_steps = 0;
        }
    }

    /// The counts since the last call (or the start), and a fresh interval.
    pub fn take_interval(&mut self) -> FiringCounts {
        let n = self.tokens_since_fired.len();
        FiringCounts {
            counts: std::mem::replace(&mut self.interval_counts, vec![0; n]),
            tokens: std::mem::take(&mut self.interval_tokens),
        }
        .padded(n)
    }

    /// The counts since the start of training.
    pub fn total(&self) -> FiringCounts {
        FiringCounts {
            counts: self.total_counts.clone(),
            tokens: self.total_tokens,
        }
        .padded(self.tokens_since_fired.len())
    }

    pub fn tokens_since_fired(&self) -> &[u64] {
        &self.tokens_since_fired
    }

    /// Counts latent `j` as just fired (a resampled latent starts a new life).
    pub fn revive(&mut self, j: usize) {
        self.tokens_since_fired[j] = 0;
    }

    /// Latents silent for at least `after_tokens` tokens, ascending.
    pub fn dead(&self, after_tokens: u64) -> Vec<u32> {
        (0..self.tokens_since_fired.len() as u32)
            .filter(|&j| self.tokens_since_fired[j as usize] >= after_tokens)
            .collect()
    }

    fn window_density(&self) -> Vec<f32> {
        let n = self.window_tokens.max(1) as f64;
        self.window_counts
            .iter()
            .map(|&c| (c as f64 / n) as f32)
            .collect()
    }

    /// log10(frequency + 1e-10) per latent over the last complete window (or the current
    /// one before any window completed), as SAELens's `sparsity` tensor.
    pub fn log_density(&self) -> Vec<f32> {
        let density = self
            .last_density
            .clone()
            .unwrap_or_else(|| self.window_density());
        density
            .iter()
            .map(|&p| ((p as f64) + 1e-10).log10() as f32)
            .collect()
    }
}

impl FiringCounts {
    /// Zero counts for latents never recorded (an interval that saw no step).
    fn padded(mut self, n: usize) -> Self {
        self.counts.resize(n, 0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_since_firing_and_density() {
        let mut tr = FiringTracker::new(3, 2);
        // Two rows: latent 0 fires twice, latent 1 once, latent 2 never.
        let f = SparseFeatures::from_dense(&[1.0, 0.0, 0.0, 2.0, 3.0, 0.0], 2, 3);
        tr.record(&f);
        assert_eq!(tr.tokens_since_fired(), &[0, 0, 2]);
        assert_eq!(tr.dead(2), vec![2]);
        let g = SparseFeatures::from_dense(&[0.0, 1.0, 0.0, 0.0, 0.0, 0.0], 2, 3);
        tr.record(&g);
        assert_eq!(tr.tokens_since_fired(), &[2, 0, 4]);
        let ld = tr.log_density();
        assert!((ld[0] - (0.5f32).log10()).abs() < 1e-6);
        assert!((ld[1] - (0.5f32).log10()).abs() < 1e-6);
        assert!((ld[2] + 10.0).abs() < 1e-4);
    }

    #[test]
    fn intervals_partition_the_total() {
        let mut tr = FiringTracker::new(3, 100);
        let a = SparseFeatures::from_dense(&[1.0, 0.0, 0.0, 2.0, 3.0, 0.0], 2, 3);
        let b = SparseFeatures::from_dense(&[0.0, 1.0, 0.0], 1, 3);
        tr.record(&a);
        let first = tr.take_interval();
        tr.record(&b);
        tr.record(&a);
        let second = tr.take_interval();
        assert_eq!((first.counts, first.tokens), (vec![2, 1, 0], 2));
        assert_eq!((second.counts.clone(), second.tokens), (vec![2, 2, 0], 3));
        assert_eq!(tr.total().counts, vec![4, 3, 0]);
        assert_eq!(tr.total().tokens, 5);
        // Nothing since the last interval.
        assert_eq!(tr.take_interval().counts, vec![0, 0, 0]);
    }
}
