//! The random-perturbation baseline (METRICS.md): a vector with the reconstruction's norm
//! and cosine to x, pointing in a random direction otherwise.

use saelab_sae::rng::SplitMix64;

/// x̃ = ‖x̂‖ (c·u + √(1 − c²)·v), u = x/‖x‖, c = cos(x, x̂), v a random unit vector
/// orthogonal to u. `rng` should be seeded per position so batching does not change it.
pub fn random_perturbation(x: &[f32], x_hat: &[f32], rng: &mut SplitMix64) -> Vec<f32> {
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let x: Vec<f64> = x.iter().map(|&a| a as f64).collect();
    let x_hat: Vec<f64> = x_hat.iter().map(|&a| a as f64).collect();
    let (x_norm, hat_norm) = (norm(&x), norm(&x_hat));
    if x_norm == 0.0 || hat_norm == 0.0 || x.len() < 2 {
        // No direction to keep a cosine to: the reconstruction itself is the baseline.
        return x_hat.iter().map(|&a| a as f32).collect();
    }
    let u: Vec<f64> = x.iter().map(|a| a / x_norm).collect();
    let c = (x.iter().zip(&x_hat).map(|(a, b)| a * b).sum::<f64>() / (x_norm * hat_norm))
        .clamp(-1.0, 1.0);
    let v = loop {
        let g: Vec<f64> = (0..x.len()).map(|_| rng.normal() as f64).collect();
        let along: f64 = g.iter().zip(&u).map(|(a, b)| a * b).sum();
        let orth: Vec<f64> = g.iter().zip(&u).map(|(a, b)| a - along * b).collect();
        let n = norm(&orth);
        if n > 1e-6 {
            break orth.into_iter().map(|a| a / n).collect::<Vec<f64>>();
        }
    };
    let s = (1.0 - c * c).sqrt();
    u.iter()
        .zip(&v)
        .map(|(a, b)| (hat_norm * (c * a + s * b)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    }

    #[test]
    fn keeps_the_norm_and_the_cosine_and_moves_elsewhere() {
        let mut rng = SplitMix64::new(3);
        let x: Vec<f32> = (0..64).map(|_| rng.normal() * 2.0 + 1.0).collect();
        let x_hat: Vec<f32> = x.iter().map(|a| 0.8 * a + 0.3 * rng.normal()).collect();
        let mut r = SplitMix64::new(9);
        let p = random_perturbation(&x, &x_hat, &mut r);
        let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((n(&p) - n(&x_hat)).abs() < 1e-4 * n(&x_hat));
        assert!((cos(&x, &p) - cos(&x, &x_hat)).abs() < 1e-5);
        // A different direction from x̂ itself.
        assert!(cos(&p, &x_hat) < cos(&x, &x_hat) + 0.1);
        let again = random_perturbation(&x, &x_hat, &mut SplitMix64::new(9));
        assert_eq!(p, again);
    }

    #[test]
    fn a_perfect_reconstruction_stays_put() {
        let x = [1.0f32, -2.0, 0.5];
        let p = random_perturbation(&x, &x, &mut SplitMix64::new(1));
        for (a, b) in p.iter().zip(&x) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
