//! The ICA baseline: FastICA (Hyvärinen 1999; symmetric decorrelation, the log-cosh
//! contrast) on rows whitened by a fitted PCA. Its K directions span the same subspace as
//! the PCA's K components, so it reconstructs exactly as that PCA does; what differs is the
//! code: the rotation that makes the K coordinates as non-Gaussian (for activations: as
//! sparse) as a linear map can.

use faer::Mat;

use crate::baseline::Pca;
use crate::error::{Result, SaeError};

/// A fitted ICA: `s = W (x − μ)` with `W` the unmixing rows `[k, d]`, and `x̂ = μ + A s`
/// with `A`'s columns (stored as rows `[k, d]`) the directions in activation space.
#[derive(Clone, Debug, PartialEq)]
pub struct Ica {
    pub mean: Vec<f32>,
    pub unmixing: Vec<f32>,
    pub mixing: Vec<f32>,
    pub k: usize,
    /// FastICA iterations taken, and whether they met the tolerance.
    pub iterations: usize,
    pub converged: bool,
}

/// How FastICA iterates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IcaOptions {
    pub max_iterations: usize,
    /// Stop when every unmixing direction's cosine with its previous value is within this
    /// of ±1.
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for IcaOptions {
    fn default() -> Self {
        IcaOptions {
            max_iterations: 200,
            tolerance: 1e-4,
            seed: 0,
        }
    }
}

impl Ica {
    /// Fits K = `pca.k` independent directions to the rows of `x` (`[n, d]`), whitened by
    /// `pca` (fitted on the same or similar rows).
    pub fn fit(pca: &Pca, x: &[f32], options: IcaOptions) -> Result<Ica> {
        let (d, k) = (pca.mean.len(), pca.k);
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(SaeError::Input(format!(
                "ICA needs whole rows of {d} values, got {}",
                x.len()
            )));
        }
        let n = x.len() / d;
        if n < 2 * k {
            return Err(SaeError::Input(format!(
                "ICA of {k} components needs at least {} rows, got {n}",
                2 * k
            )));
        }
        if let Some(v) = pca.variances.iter().find(|v| **v <= 0.0) {
            return Err(SaeError::Input(format!(
                "the PCA has a component of variance {v}: the rows span fewer than {k} dimensions"
            )));
        }
        // Whitening: z = Λ^{-1/2} Pᵀ (x − μ), one column per row of x.
        let whiten: Vec<f64> = (0..k)
            .flat_map(|c| {
                let scale = 1.0 / pca.variances[c].sqrt();
                pca.components[c * d..(c + 1) * d]
                    .iter()
                    .map(move |&p| p as f64 * scale)
            })
            .collect();
        let whitening = Mat::<f64>::from_fn(k, d, |c, j| whiten[c * d + j]);
        let centred = Mat::<f64>::from_fn(d, n, |j, t| (x[t * d + j] - pca.mean[j]) as f64);
        let z = &whitening * &centred;
        drop(centred);

        let mut rng = crate::rng::SplitMix64::new(options.seed);
        let mut w =
            symmetric_decorrelation(&Mat::<f64>::from_fn(k, k, |_, _| rng.normal() as f64))?;
        let (mut iterations, mut converged) = (0, false);
        while iterations < options.max_iterations {
            iterations += 1;
            let next = symmetric_decorrelation(&fixed_point_step(&w, &z))?;
            // |diag(W_new W_oldᵀ)| → 1 as the directions stop moving (up to sign).
            let moved = (0..k)
                .map(|i| {
                    let dot: f64 = (0..k).map(|j| next[(i, j)] * w[(i, j)]).sum();
                    (1.0 - dot.abs()).abs()
                })
                .fold(0.0f64, f64::max);
            w = next;
            if moved < options.tolerance {
                converged = true;
                break;
            }
        }

        // Unmixing in activation space: W Λ^{-1/2} Pᵀ; mixing: P Λ^{1/2} Wᵀ (W is orthogonal).
        let mut unmixing = vec![0.0f32; k * d];
        let mut mixing = vec![0.0f32; k * d];
        for i in 0..k {
            for c in 0..k {
                let wic = w[(i, c)];
                let sd = pca.variances[c].sqrt();
                let p = &pca.components[c * d..(c + 1) * d];
                for (j, &pj) in p.iter().enumerate() {
                    unmixing[i * d + j] += (wic * whiten[c * d + j]) as f32;
                    mixing[i * d + j] += (wic * sd * pj as f64) as f32;
                }
            }
        }
        Ok(Ica {
            mean: pca.mean.clone(),
            unmixing,
            mixing,
            k,
            iterations,
            converged,
        })
    }

    /// The ICA as a dictionary (`linear_code_dictionary`: the unmixing rows read, the
    /// mixing directions write).
    pub fn to_dictionary(&self) -> Result<crate::Sae> {
        crate::baseline::linear_code_dictionary(&self.mean, &self.unmixing, &self.mixing)
    }

    /// The sources `[n, k]` of rows `x` `[n, d]`.
    pub fn sources(&self, x: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        let mut out = Vec::with_capacity(x.len() / d * self.k);
        for row in x.chunks_exact(d) {
            for w in self.unmixing.chunks_exact(d) {
                out.push(
                    w.iter()
                        .zip(row.iter().zip(&self.mean))
                        .map(|(a, (v, m))| a * (v - m))
                        .sum(),
                );
            }
        }
        out
    }
}

/// One FastICA fixed-point update of every row of `w` at once:
/// `w_i ← E[z g(w_iᵀz)] − E[g'(w_iᵀz)] w_i`, with `g = tanh` (the log-cosh contrast).
fn fixed_point_step(w: &Mat<f64>, z: &Mat<f64>) -> Mat<f64> {
    let (k, n) = (z.nrows(), z.ncols());
    let u = w * z;
    let g = Mat::<f64>::from_fn(k, n, |i, t| u[(i, t)].tanh());
    let slope: Vec<f64> = (0..k)
        .map(|i| (0..n).map(|t| 1.0 - g[(i, t)] * g[(i, t)]).sum::<f64>() / n as f64)
        .collect();
    let moment = &g * z.transpose();
    Mat::<f64>::from_fn(k, k, |i, j| {
        moment[(i, j)] / n as f64 - slope[i] * w[(i, j)]
    })
}

/// `(W Wᵀ)^{-1/2} W`: the orthogonal matrix nearest to `W`'s rows, none favoured.
fn symmetric_decorrelation(w: &Mat<f64>) -> Result<Mat<f64>> {
    let k = w.nrows();
    let gram = w * w.transpose();
    let evd = gram
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| SaeError::Input(format!("ICA decorrelation failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S());
    let inv_sqrt = Mat::<f64>::from_fn(k, k, |i, j| {
        (0..k)
            .map(|c| u[(i, c)] * u[(j, c)] / s.column_vector()[c].max(1e-300).sqrt())
            .sum()
    });
    Ok(&inv_sqrt * w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::PcaFit;
    use crate::rng::SplitMix64;

    /// Amari et al.'s distance of `p = W A` from a scaled permutation: 0 when the sources are
    /// recovered exactly (up to order, sign and scale), at most 1.
    fn amari_distance(p: &[f64], k: usize) -> f64 {
        let a = |i: usize, j: usize| p[i * k + j].abs();
        let mut total = 0.0;
        for i in 0..k {
            let max = (0..k).map(|j| a(i, j)).fold(0.0, f64::max);
            total += (0..k).map(|j| a(i, j)).sum::<f64>() / max - 1.0;
        }
        for j in 0..k {
            let max = (0..k).map(|i| a(i, j)).fold(0.0, f64::max);
            total += (0..k).map(|i| a(i, j)).sum::<f64>() / max - 1.0;
        }
        total / (2.0 * k as f64 * (k as f64 - 1.0))
    }

    #[test]
    fn recovers_a_known_mixing_of_non_gaussian_sources() {
        let (k, d, n) = (4, 6, 20_000);
        let mut rng = SplitMix64::new(11);
        // Laplace, uniform, a sparse spike train and a bimodal source.
        let source = |c: usize, rng: &mut SplitMix64| -> f32 {
            let u = rng.uniform(0.0, 1.0);
            match c {
                0 => -(1.0 - 2.0 * (u - 0.5).abs()).ln() * (u - 0.5).signum(),
                1 => 3f32.sqrt() * (2.0 * u - 1.0),
                2 => {
                    if u < 0.1 {
                        3.0 * rng.normal()
                    } else {
                        0.0
                    }
                }
                _ => (if u < 0.5 { 1.0 } else { -1.0 }) + 0.3 * rng.normal(),
            }
        };
        let a: Vec<f32> = (0..d * k).map(|_| rng.normal()).collect(); // [d, k]
        let mut x = Vec::with_capacity(n * d);
        for _ in 0..n {
            let s: Vec<f32> = (0..k).map(|c| source(c, &mut rng)).collect();
            for i in 0..d {
                x.push(2.0 + (0..k).map(|c| a[i * k + c] * s[c]).sum::<f32>());
            }
        }
        let mut fit = PcaFit::new(d);
        fit.add(&x);
        let pca = fit.fit(k).unwrap();
        let ica = Ica::fit(&pca, &x, IcaOptions::default()).unwrap();
        assert!(ica.converged, "{} iterations", ica.iterations);
        // P = W A, k × k.
        let p: Vec<f64> = (0..k)
            .flat_map(|i| {
                let w = &ica.unmixing[i * d..(i + 1) * d];
                let a = &a;
                (0..k).map(move |c| (0..d).map(|j| w[j] as f64 * a[j * k + c] as f64).sum())
            })
            .collect();
        let distance = amari_distance(&p, k);
        assert!(distance < 0.05, "Amari distance {distance}");
        // A random unmixing is far from a permutation: the measure can fail.
        let random: Vec<f64> = (0..k * k).map(|_| rng.normal() as f64).collect();
        assert!(amari_distance(&random, k) > 0.2);
        // ICA spans PCA's subspace: the reconstruction μ + A s is PCA's.
        let rows = &x[..d * 50];
        let s = ica.sources(rows);
        for (t, row) in pca.reconstruct(rows).chunks_exact(d).enumerate() {
            for (j, want) in row.iter().enumerate() {
                let got = ica.mean[j]
                    + (0..k)
                        .map(|c| ica.mixing[c * d + j] * s[t * k + c])
                        .sum::<f32>();
                assert!(
                    (got - want).abs() < 1e-3 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
        // As a dictionary: the same reconstruction, and latent 2i carries source i's positive part.
        use crate::Dictionary;
        let sae = ica.to_dictionary().unwrap();
        let out = sae.forward(rows).unwrap();
        let dense = out.features.to_dense();
        for t in 0..50 {
            for c in 0..k {
                let code = dense[t * 2 * k + 2 * c] - dense[t * 2 * k + 2 * c + 1];
                assert!((code - s[t * k + c]).abs() < 1e-4 * s[t * k + c].abs().max(1.0));
            }
        }
        for (a, b) in out.reconstruction.iter().zip(pca.reconstruct(rows)) {
            assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn refuses_too_few_rows_and_flat_data() {
        let mut fit = PcaFit::new(3);
        let x: Vec<f32> = (0..30).map(|i| (i % 7) as f32).collect();
        fit.add(&x);
        let pca = fit.fit(2).unwrap();
        assert!(Ica::fit(&pca, &x[..9], IcaOptions::default()).is_err());
        assert!(Ica::fit(&pca, &x[..10], IcaOptions::default()).is_err());
    }
}
