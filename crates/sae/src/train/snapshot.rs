//! Density snapshots: what each latent did since the last snapshot (its firing count) and
//! where it stands (its encoder bias and D/E projection), for watching latents die over a
//! run (seed 004).
//!
//! The D/E projection ⟨W_dec[i], W_enc[:, i]⟩ / ‖W_enc[:, i]‖² is taken in training units,
//! where inputs are scaled to E‖x‖² = d_in: METRICS.md's units, where a latent that reads and
//! writes the same direction faithfully sits near 1. `de_projection_raw` is the same ratio for
//! the dictionary as saved (the scales folded in), in the activations' own units.

use super::config::Optimizer;
use super::dead::FiringCounts;
use super::trainer::Trainer;

pub struct Snapshot {
    /// Steps taken when it was taken.
    pub step: u64,
    /// Firings per latent since the previous snapshot, over `tokens` tokens.
    pub interval: FiringCounts,
    pub b_enc: Vec<f32>,
    pub de_projection: Vec<f32>,
    pub de_projection_raw: Vec<f32>,
    pub control: Vec<bool>,
}

impl Trainer {
    /// The snapshot now; the next one counts from here.
    pub fn take_snapshot(&mut self) -> Snapshot {
        // Adam's evaluated weights are its parameters: no copy of the matrices (75 MB at
        // 16k latents) per snapshot.
        let averaged;
        let w = match self.cfg.optimizer {
            Optimizer::Adam => &self.weights,
            Optimizer::Signum => {
                averaged = self.evaluated_weights();
                &averaged
            }
        };
        let d = w.d_in;
        // Saving folds the scales in: W_enc·s_in and W_dec/s_out.
        let folded = f64::from(self.input_scale) * f64::from(self.output_scale);
        let de: Vec<f64> = w
            .w_dec
            .chunks_exact(d)
            .zip(w.w_enc_t.chunks_exact(d))
            .map(|(dec, enc)| {
                let dot: f64 = dec.iter().zip(enc).map(|(a, b)| f64::from(a * b)).sum();
                let sq: f64 = enc.iter().map(|b| f64::from(b * b)).sum();
                dot / sq
            })
            .collect();
        let b_enc = w.b_enc.clone();
        Snapshot {
            step: self.step,
            interval: self.firing.take_interval(),
            b_enc,
            de_projection: de.iter().map(|&v| v as f32).collect(),
            de_projection_raw: de.iter().map(|&v| (v / folded) as f32).collect(),
            control: self.control.clone(),
        }
    }

    /// Firings per latent since the start of training.
    pub fn total_firing(&self) -> FiringCounts {
        self.firing.total()
    }

    /// `control[j]`: latent j is in the control set, never resampled.
    pub fn control_latents(&self) -> &[bool] {
        &self.control
    }
}
