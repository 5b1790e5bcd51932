//! Adam (Kingma & Ba) with PyTorch's bias correction, elementwise in parallel chunks: no
//! reductions, so the result is the same on any number of threads.

use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct Adam {
    pub(crate) m: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// 1-based step count, for the bias correction.
    pub t: u64,
}

const CHUNK: usize = 1 << 14;

impl Adam {
    pub fn new(len: usize) -> Self {
        Adam {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// Forgets the moments of `len` parameters from `start` (re-initialised parameters).
    pub fn reset(&mut self, start: usize, len: usize) {
        self.m[start..start + len].iter_mut().for_each(|v| *v = 0.0);
        self.v[start..start + len].iter_mut().for_each(|v| *v = 0.0);
    }

    pub fn update(&mut self, param: &mut [f32], grad: &[f32], s: AdamStep) {
        let bc1 = 1.0 - (s.beta1 as f64).powf(s.t as f64);
        let bc2 = 1.0 - (s.beta2 as f64).powf(s.t as f64);
        let step = (s.lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let (b1, b2, eps) = (s.beta1, s.beta2, s.eps);
        param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| {
                for i in 0..p.len() {
                    let gi = g[i];
                    m[i] = b1 * m[i] + (1.0 - b1) * gi;
                    v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                    let denom = v[i].sqrt() * inv_sqrt_bc2 + eps;
                    p[i] -= step * m[i] / denom;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr() {
        // With bias correction, step 1 moves by lr·g/(|g| + eps) ≈ lr·sign(g).
        let mut p = vec![1.0f32, -2.0, 0.5];
        let g = vec![0.3f32, -4.0, 0.0];
        let mut a = Adam::new(3);
        a.update(
            &mut p,
            &g,
            AdamStep {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                t: 1,
            },
        );
        assert!((p[0] - 0.9).abs() < 1e-6);
        assert!((p[1] + 1.9).abs() < 1e-6);
        assert_eq!(p[2], 0.5);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut p = vec![5.0f32, -3.0];
        let mut a = Adam::new(2);
        for t in 1..=2000 {
            let g: Vec<f32> = p.iter().map(|x| 2.0 * (x - 1.0)).collect();
            a.update(
                &mut p,
                &g,
                AdamStep {
                    lr: 0.05,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    t,
                },
            );
        }
        assert!(p.iter().all(|x| (x - 1.0).abs() < 1e-2), "{p:?}");
    }
}
