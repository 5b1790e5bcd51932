//! The linear baseline a dictionary must beat: PCA, the best rank-K reconstruction
//! x̂ = μ + P Pᵀ (x − μ), fitted from streamed batches (mean and second moments in f64).

use crate::dictionary::{Activation, Sae};
use crate::error::{Result, SaeError};
use crate::kernels::gemm::matmul_tn;
use crate::weights::SaeWeights;

/// Running sums for the mean and covariance of streamed rows.
pub struct PcaFit {
    d: usize,
    n: u64,
    sum: Vec<f64>,
    xtx: Vec<f64>,
    scratch: Vec<f32>,
}

/// A fitted PCA: the mean and the top components, `[k, d]` row-major (largest first).
#[derive(Clone, Debug)]
pub struct Pca {
    pub mean: Vec<f32>,
    pub components: Vec<f32>,
    pub k: usize,
    /// Variance along each kept component, largest first.
    pub variances: Vec<f64>,
}

impl PcaFit {
    pub fn new(d: usize) -> Self {
        PcaFit {
            d,
            n: 0,
            sum: vec![0.0; d],
            xtx: vec![0.0; d * d],
            scratch: vec![0.0; d * d],
        }
    }

    /// Adds a row-major `[rows, d]` batch.
    pub fn add(&mut self, x: &[f32]) {
        let d = self.d;
        let rows = x.len() / d;
        if rows == 0 {
            return;
        }
        // Per batch in f32 (one GEMM), accumulated across batches in f64.
        matmul_tn(&mut self.scratch, x, x, d, rows, d, false);
        for (acc, v) in self.xtx.iter_mut().zip(&self.scratch) {
            *acc += f64::from(*v);
        }
        for row in x.chunks_exact(d) {
            for (s, v) in self.sum.iter_mut().zip(row) {
                *s += f64::from(*v);
            }
        }
        self.n += rows as u64;
    }

    pub fn rows(&self) -> u64 {
        self.n
    }

    /// The top `k` components of the covariance.
    pub fn fit(&self, k: usize) -> Result<Pca> {
        let d = self.d;
        if k == 0 || k > d {
            return Err(SaeError::Config {
                field: "pca components",
                message: format!("{k} is not in 1..={d}"),
            });
        }
        if self.n < 2 {
            return Err(SaeError::Input("PCA needs at least two rows".into()));
        }
        let n = self.n as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let cov =
            faer::Mat::<f64>::from_fn(d, d, |i, j| self.xtx[i * d + j] / n - mean[i] * mean[j]);
        let evd = cov
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|e| SaeError::Input(format!("PCA eigendecomposition failed: {e:?}")))?;
        let (u, s) = (evd.U(), evd.S());
        // Eigenvalues come in ascending order: the last k columns, largest first.
        let cols: Vec<usize> = (d - k..d).rev().collect();
        let components = cols
            .iter()
            .flat_map(|&c| (0..d).map(move |i| u[(i, c)] as f32))
            .collect();
        let variances = cols.iter().map(|&c| s.column_vector()[c]).collect();
        Ok(Pca {
            mean: mean.iter().map(|&m| m as f32).collect(),
            components,
            k,
            variances,
        })
    }
}

/// A linear code `c = E (x − μ)` with reconstruction `x̂ = μ + Dᵀ c` (`E`, `D` `[k, d]`) as a
/// dictionary `saelab eval` scores like any other: 2k ReLU latents, latent 2i reading `+E_i`
/// and writing `+D_i`, latent 2i+1 reading `−E_i` and writing `−D_i`, so that
/// `relu(c_i) − relu(−c_i) = c_i` and the reconstruction is the linear one exactly. Its L0
/// counts the nonzero coordinates of the code.
pub fn linear_code_dictionary(mean: &[f32], encoder: &[f32], decoder: &[f32]) -> Result<Sae> {
    let d = mean.len();
    let k = encoder.len() / d.max(1);
    if d == 0 || encoder.len() != k * d || decoder.len() != k * d || k == 0 {
        return Err(SaeError::Input(format!(
            "a linear code needs [k, {d}] encoder and decoder rows, got {} and {} values",
            encoder.len(),
            decoder.len()
        )));
    }
    let mut w = SaeWeights::zeros(d, 2 * k);
    for i in 0..k {
        for (sign, latent) in [(1.0f32, 2 * i), (-1.0, 2 * i + 1)] {
            for j in 0..d {
                w.w_enc_t[latent * d + j] = sign * encoder[i * d + j];
                w.w_dec[latent * d + j] = sign * decoder[i * d + j];
            }
        }
    }
    w.b_dec.copy_from_slice(mean);
    Sae::new(w, Activation::Relu)
}

impl Pca {
    /// The PCA as a dictionary (`linear_code_dictionary`: its components read and write).
    pub fn to_dictionary(&self) -> Result<Sae> {
        linear_code_dictionary(&self.mean, &self.components, &self.components)
    }

    /// Rank-k reconstruction of each row of `x`.
    pub fn reconstruct(&self, x: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        let mut out = Vec::with_capacity(x.len());
        let mut centred = vec![0.0f32; d];
        for row in x.chunks_exact(d) {
            for ((c, v), m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = v - m;
            }
            let mut rec = self.mean.clone();
            for p in self.components.chunks_exact(d) {
                let coef: f32 = p.iter().zip(&centred).map(|(a, b)| a * b).sum();
                for (r, a) in rec.iter_mut().zip(p) {
                    *r += coef * a;
                }
            }
            out.extend_from_slice(&rec);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_planted_subspace() {
        // Rows spread along e0 (variance ~9) and e1 (~1), tiny noise elsewhere, offset mean.
        let d = 6;
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut x = Vec::new();
        for _ in 0..4000 {
            let (a, b) = (3.0 * rng.normal(), rng.normal());
            for i in 0..d {
                let noise = 0.01 * rng.normal();
                x.push(
                    5.0 + noise
                        + if i == 0 {
                            a
                        } else if i == 1 {
                            b
                        } else {
                            0.0
                        },
                );
            }
        }
        let mut fit = PcaFit::new(d);
        for chunk in x.chunks(d * 1000) {
            fit.add(chunk);
        }
        let pca = fit.fit(2).unwrap();
        assert!((pca.variances[0] - 9.0).abs() < 0.6, "{:?}", pca.variances);
        assert!((pca.variances[1] - 1.0).abs() < 0.1, "{:?}", pca.variances);
        assert!(pca.components[0].abs() > 0.999 && pca.components[d + 1].abs() > 0.999);
        let rec = pca.reconstruct(&x[..d * 10]);
        for (a, b) in rec.iter().zip(&x[..d * 10]) {
            assert!((a - b).abs() < 0.05);
        }
        assert!(fit.fit(0).is_err() && fit.fit(7).is_err());
        // As a dictionary it reconstructs as the PCA does, with one latent per component on.
        use crate::Dictionary;
        let sae = pca.to_dictionary().unwrap();
        let out = sae.forward(&x[..d * 10]).unwrap();
        for (a, b) in out.reconstruction.iter().zip(&rec) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert!(out.features.l0() <= 2.0 && out.features.l0() > 1.0);
    }
}
