//! Synthetic activations with structure along the token axis, where the truth is known: each
//! position is a sparse sum of unit directions, some of them **token features** (drawn afresh
//! at every position) and some **region features** (a two-state Markov chain per window: on
//! for a run of positions of geometric length, with one magnitude per run, then off). A
//! dictionary that encodes each position alone pays for an active region feature at every
//! position of its run; one that looks back need not. Windows are row-major
//! `[len, d]`, positions in order.

use crate::rng::SplitMix64;

#[derive(Clone, Debug)]
pub struct RegionConfig {
    pub d: usize,
    pub token_features: usize,
    /// Token features active at each position (distinct).
    pub per_position: usize,
    pub region_features: usize,
    /// Mean length of a region feature's run, in positions (≥ 1): it switches off with
    /// probability 1 / `mean_run` at each step.
    pub mean_run: f64,
    /// Region features active at a position on average (the chain's stationary share times
    /// `region_features`).
    pub regions_active: f64,
    pub seed: u64,
}

/// One window: its activations and which features are on at each position.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionWindow {
    pub x: Vec<f32>,
    /// Per position, the token features on.
    pub tokens: Vec<Vec<u32>>,
    /// Per position, the region features on.
    pub regions: Vec<Vec<u32>>,
}

pub struct RegionSource {
    pub cfg: RegionConfig,
    /// `[token_features, d]` unit rows.
    pub token_truth: Vec<f32>,
    /// `[region_features, d]` unit rows.
    pub region_truth: Vec<f32>,
    p_on: f64,
    p_off: f64,
    rng: SplitMix64,
}

impl RegionSource {
    /// Fails on settings that cannot be met (no room for the active features, a run shorter
    /// than one position, more active regions than exist).
    pub fn new(cfg: RegionConfig) -> Result<Self, String> {
        if cfg.d == 0 || cfg.per_position > cfg.token_features {
            return Err(format!(
                "per_position {} must be at most token_features {} (d {} > 0)",
                cfg.per_position, cfg.token_features, cfg.d
            ));
        }
        if cfg.mean_run.is_nan() || cfg.mean_run < 1.0 {
            return Err(format!("mean_run must be at least 1, got {}", cfg.mean_run));
        }
        let share = cfg.regions_active / cfg.region_features.max(1) as f64;
        if !(0.0..1.0).contains(&share) {
            return Err(format!(
                "regions_active {} must be in [0, region_features {})",
                cfg.regions_active, cfg.region_features
            ));
        }
        let p_off = 1.0 / cfg.mean_run;
        // Stationary share π = p_on / (p_on + p_off).
        let p_on = share * p_off / (1.0 - share);
        Ok(RegionSource {
            token_truth: unit_rows(cfg.token_features, cfg.d, cfg.seed),
            region_truth: unit_rows(cfg.region_features, cfg.d, cfg.seed ^ 0x02E6_10A5),
            p_on,
            p_off,
            rng: SplitMix64::new(cfg.seed ^ 0x5EED_1234),
            cfg,
        })
    }

    /// The next window of `len` positions; each region chain starts from its stationary
    /// distribution, so every position of a window is alike in law.
    pub fn window(&mut self, len: usize) -> RegionWindow {
        let d = self.cfg.d;
        let share = self.p_on / (self.p_on + self.p_off);
        let mut x = vec![0.0f32; len * d];
        let mut tokens = Vec::with_capacity(len);
        let mut regions = Vec::with_capacity(len);
        // Magnitude of each region feature's current run (0: off).
        let mut magnitude = vec![0.0f32; self.cfg.region_features];
        for m in magnitude.iter_mut() {
            if self.rng.next_f64() < share {
                *m = self.rng.uniform(0.5, 1.5);
            }
        }
        for t in 0..len {
            if t > 0 {
                for m in magnitude.iter_mut() {
                    let flip = if *m > 0.0 { self.p_off } else { self.p_on };
                    if self.rng.next_f64() < flip {
                        *m = if *m > 0.0 {
                            0.0
                        } else {
                            self.rng.uniform(0.5, 1.5)
                        };
                    }
                }
            }
            let row = &mut x[t * d..(t + 1) * d];
            let mut on = Vec::new();
            for (j, &m) in magnitude.iter().enumerate() {
                if m > 0.0 {
                    add(row, m, &self.region_truth[j * d..(j + 1) * d]);
                    on.push(j as u32);
                }
            }
            regions.push(on);
            let mut chosen: Vec<u32> = Vec::with_capacity(self.cfg.per_position);
            while chosen.len() < self.cfg.per_position {
                let i = self.rng.below(self.cfg.token_features as u64) as u32;
                if !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            for &i in &chosen {
                let m = self.rng.uniform(0.5, 1.5);
                let i = i as usize;
                add(row, m, &self.token_truth[i * d..(i + 1) * d]);
            }
            tokens.push(chosen);
        }
        RegionWindow { x, tokens, regions }
    }
}

fn add(row: &mut [f32], m: f32, direction: &[f32]) {
    for (o, v) in row.iter_mut().zip(direction) {
        *o += m * v;
    }
}

/// `n` random unit directions in R^d, row-major.
fn unit_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    let mut out = vec![0.0f32; n * d];
    for row in out.chunks_exact_mut(d) {
        row.iter_mut().for_each(|v| *v = r.normal());
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RegionConfig {
        RegionConfig {
            d: 16,
            token_features: 64,
            per_position: 3,
            region_features: 32,
            mean_run: 20.0,
            regions_active: 2.0,
            seed: 3,
        }
    }

    /// The chains have the stated run length and share; token features are i.i.d.; the
    /// activations are the sums the labels say.
    #[test]
    fn region_runs_and_shares_match_the_settings() {
        let mut source = RegionSource::new(config()).unwrap();
        let (mut on, mut positions, mut runs, mut stays, mut pairs) = (0usize, 0, 0, 0, 0);
        for _ in 0..400 {
            let w = source.window(128);
            positions += 128;
            for t in 0..128 {
                on += w.regions[t].len();
                assert_eq!(w.tokens[t].len(), 3);
                for j in &w.regions[t] {
                    let starts = t == 0 || !w.regions[t - 1].contains(j);
                    runs += usize::from(starts);
                    if t + 1 < 128 {
                        pairs += 1;
                        stays += usize::from(w.regions[t + 1].contains(j));
                    }
                }
            }
        }
        let active = on as f64 / positions as f64;
        assert!(
            (active - 2.0).abs() < 0.1,
            "regions active per position {active}"
        );
        let p_stay = stays as f64 / pairs as f64;
        assert!(
            (p_stay - 0.95).abs() < 0.005,
            "P(on at t+1 | on at t) = {p_stay}"
        );
        // Runs cut by the window's ends are shorter than the chain's mean of 20.
        let mean_run = on as f64 / runs as f64;
        assert!((12.0..20.0).contains(&mean_run), "mean run {mean_run}");
    }

    #[test]
    fn a_window_is_the_sum_its_labels_say_up_to_magnitudes() {
        let mut source = RegionSource::new(config()).unwrap();
        let w = source.window(8);
        let d = 16;
        for t in 0..8 {
            // x is a nonnegative combination of the labelled rows: its projection on the
            // span's complement is 0 when the rows are orthonormalised; checked here by
            // least squares on the labelled rows.
            let rows: Vec<&[f32]> = w.tokens[t]
                .iter()
                .map(|&i| &source.token_truth[i as usize * d..(i as usize + 1) * d])
                .chain(
                    w.regions[t]
                        .iter()
                        .map(|&j| &source.region_truth[j as usize * d..(j as usize + 1) * d]),
                )
                .collect();
            let residual = residual_after_projection(&w.x[t * d..(t + 1) * d], &rows);
            assert!(residual < 1e-4, "position {t}: residual {residual}");
        }
    }

    /// ‖x − P x‖ where P projects on the span of `rows` (Gram–Schmidt).
    fn residual_after_projection(x: &[f32], rows: &[&[f32]]) -> f32 {
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for r in rows {
            let mut v: Vec<f64> = r.iter().map(|&a| a as f64).collect();
            for b in &basis {
                let c: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(b).for_each(|(a, b)| *a -= c * b);
            }
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if n > 1e-9 {
                basis.push(v.iter().map(|a| a / n).collect());
            }
        }
        let mut e: Vec<f64> = x.iter().map(|&a| a as f64).collect();
        for b in &basis {
            let c: f64 = e.iter().zip(b).map(|(a, b)| a * b).sum();
            e.iter_mut().zip(b).for_each(|(a, b)| *a -= c * b);
        }
        e.iter().map(|a| a * a).sum::<f64>().sqrt() as f32
    }

    #[test]
    fn impossible_settings_are_refused() {
        let mut c = config();
        c.mean_run = 0.5;
        assert!(RegionSource::new(c).is_err());
        let mut c = config();
        c.regions_active = 40.0;
        assert!(RegionSource::new(c).is_err());
        let mut c = config();
        c.per_position = 100;
        assert!(RegionSource::new(c).is_err());
    }
}
