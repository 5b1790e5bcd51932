//! Resampling dead latents (Bricken et al. 2023, "Towards Monosemanticity"): each latent
//! silent for `dead_after_tokens` gets a new direction, an input of the current batch drawn
//! with probability proportional to its squared reconstruction error, so that it starts by
//! covering what the dictionary reconstructs worst.
//!
//! For a dead latent j and a drawn input x_t (in training units), with v = x_t − b_dec:
//! W_dec[j] = v/‖v‖ (times the mean alive decoder norm when norms are free),
//! W_enc[:, j] = 0.2 · (mean alive encoder norm) · v/‖v‖, b_enc[j] = 0, JumpReLU's
//! threshold and Gated's r_mag, b_mag back to their initial values, and Adam forgets the
//! moments of all of them.

use super::trainer::Trainer;
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::kernels::vector::norm;
use crate::rng::SplitMix64;

/// The new encoder rows' norm, as a fraction of the alive rows' mean.
const ENCODER_NORM_FRACTION: f32 = 0.2;

impl Trainer {
    /// Resamples the latents dead now; `batch` is the step's input in original units and
    /// `x` the same in training units. Returns how many were resampled.
    pub(super) fn resample_dead(&mut self, batch: &[f32], x: &[f32]) -> Result<usize> {
        // The control set is left to die undisturbed.
        let dead: Vec<u32> = self
            .firing
            .dead(self.cfg.dead_after_tokens)
            .into_iter()
            .filter(|&j| !self.control[j as usize])
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        let d = self.cfg.d_in;
        let rows = x.len() / d;
        // Squared errors, in original units (the sampling weights only need proportions).
        let reconstruction = self.dictionary().forward(batch)?.reconstruction;
        let mut cumulative = Vec::with_capacity(rows);
        let mut total = 0.0f64;
        for (row, rec) in batch.chunks_exact(d).zip(reconstruction.chunks_exact(d)) {
            total += row
                .iter()
                .zip(rec)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>();
            cumulative.push(total);
        }
        if total <= 0.0 {
            return Ok(0);
        }
        let is_dead = {
            let mut v = vec![false; self.cfg.d_sae];
            dead.iter().for_each(|&j| v[j as usize] = true);
            v
        };
        let mean_alive_norm = |m: &[f32]| {
            let norms: Vec<f32> = m
                .chunks_exact(d)
                .zip(&is_dead)
                .filter(|(_, dead)| !**dead)
                .map(|(r, _)| norm(r))
                .collect();
            match norms.len() {
                0 => 1.0,
                n => norms.iter().sum::<f32>() / n as f32,
            }
        };
        let enc_norm = ENCODER_NORM_FRACTION * mean_alive_norm(&self.weights.w_enc_t);
        let dec_norm = match self.cfg.unit_norm_decoder() {
            true => 1.0,
            false => mean_alive_norm(&self.weights.w_dec),
        };
        let mut rng = SplitMix64::new(self.cfg.seed ^ 0x7E5A_3B1E ^ self.step);
        for &j in &dead {
            let j = j as usize;
            let u = rng.next_f64() * total;
            let t = cumulative.partition_point(|&c| c <= u).min(rows - 1);
            let mut v: Vec<f32> = x[t * d..(t + 1) * d]
                .iter()
                .zip(&self.weights.b_dec)
                .map(|(a, b)| a - b)
                .collect();
            let n = norm(&v);
            if n == 0.0 {
                continue;
            }
            v.iter_mut().for_each(|a| *a /= n);
            let row = j * d..(j + 1) * d;
            for ((dec, enc), a) in self.weights.w_dec[row.clone()]
                .iter_mut()
                .zip(&mut self.weights.w_enc_t[row])
                .zip(&v)
            {
                *dec = dec_norm * a;
                *enc = enc_norm * a;
            }
            self.weights.b_enc[j] = 0.0;
            let w = &self.weights;
            self.opt[0].reset(&w.w_enc_t, j * d, d);
            self.opt[1].reset(&w.b_enc, j, 1);
            self.opt[2].reset(&w.w_dec, j * d, d);
            for extra in &mut self.extra {
                extra.value[j] = extra.initial;
                extra.opt.reset(&extra.value, j, 1);
            }
            self.firing.revive(j);
        }
        Ok(dead.len())
    }
}
