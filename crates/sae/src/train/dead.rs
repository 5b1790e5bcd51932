//! Which latents fire: tokens since each one last fired (dead-latent detection for AuxK and
//! the stats) and firing counts per window (the density saved as `sparsity.safetensors`).

use crate::features::SparseFeatures;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FiringTracker {
    tokens_since_fired: Vec<u64>,
    window_counts: Vec<u64>,
    window_tokens: u64,
    window_steps: u64,
    steps_per_window: u64,
    last_density: Option<Vec<f32>>,
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
        }
    }

    /// Records a batch's features (a latent fires where its activation is nonzero).
    pub fn record(&mut self, f: &SparseFeatures) {
        let mut fired = vec![false; self.tokens_since_fired.len()];
        for (&j, &v) in f.idx.iter().zip(&f.val) {
            if v != 0.0 {
                fired[j as usize] = true;
                self.window_counts[j as usize] += 1;
            }
        }
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
}
