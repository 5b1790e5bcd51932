//! The XOR experiment (seeds 000 and 003): can a linear probe read `a XOR b` where `a` and
//! `b` are represented? Probes for a, b and a⊕b on each representation, and on a control
//! copy of it in which a and b act only additively.
//!
//! The control keeps each column's linear dependence on (a, b) and replaces the rest with
//! the residuals of other rows (shuffled), so a and b stay as decodable as in the real
//! activations but nothing nonlinear in them survives: with the four (a, b) cells balanced,
//! a linear probe can then get at most three cells of a⊕b right (75%), and logistic
//! regression, whose optimum on that symmetric design is a flat guess, stays near 50%.
//! Accuracy on the real representation above the control's says that a⊕b is represented
//! beyond the sum of a and b.

use serde::Serialize;

use crate::collect::{Representation, Source};
use crate::experiment::{fit_and_score, Score, Split};
use crate::logistic::LogisticOptions;
use crate::split::shuffle;
use crate::Result;

#[derive(Clone, Debug, Serialize)]
pub struct XorScores {
    pub a: Score,
    pub b: Score,
    pub xor: Score,
}

#[derive(Clone, Debug, Serialize)]
pub struct XorRow {
    pub representation: String,
    pub hook: String,
    pub source: Source,
    pub real: XorScores,
    /// The additive control (see the module's note).
    pub control: XorScores,
}

/// The three probes on one representation.
fn scores(
    x: &[f32],
    dim: usize,
    a: &[u32],
    b: &[u32],
    split: &Split,
    options: &LogisticOptions,
) -> Result<XorScores> {
    let xor: Vec<u32> = a.iter().zip(b).map(|(p, q)| p ^ q).collect();
    Ok(XorScores {
        a: fit_and_score(x, dim, a, 2, split, options)?,
        b: fit_and_score(x, dim, b, 2, split, options)?,
        xor: fit_and_score(x, dim, &xor, 2, split, options)?,
    })
}

/// Each column's least-squares fit on (1, a, b) plus the residual of a shuffled row.
pub fn additive_control(x: &[f32], dim: usize, a: &[u32], b: &[u32], seed: u64) -> Vec<f32> {
    let n = a.len();
    // The 3×3 normal equations (ZᵀZ) β = Zᵀx, shared by every column.
    let z = |r: usize| [1.0, f64::from(a[r]), f64::from(b[r])];
    let mut ztz = [[0f64; 3]; 3];
    for r in 0..n {
        let zr = z(r);
        for i in 0..3 {
            for j in 0..3 {
                ztz[i][j] += zr[i] * zr[j];
            }
        }
    }
    let inverse = invert3(ztz);
    let mut ztx = vec![[0f64; 3]; dim];
    for (r, row) in x.chunks_exact(dim).enumerate() {
        let zr = z(r);
        for (acc, &v) in ztx.iter_mut().zip(row) {
            for i in 0..3 {
                acc[i] += zr[i] * f64::from(v);
            }
        }
    }
    let beta: Vec<[f64; 3]> = ztx
        .iter()
        .map(|t| {
            let mut out = [0f64; 3];
            for (i, o) in out.iter_mut().enumerate() {
                *o = (0..3).map(|j| inverse[i][j] * t[j]).sum();
            }
            out
        })
        .collect();
    let fitted = |r: usize, j: usize| {
        let zr = z(r);
        (0..3).map(|i| beta[j][i] * zr[i]).sum::<f64>()
    };
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, seed);
    let mut out = vec![0f32; n * dim];
    for r in 0..n {
        let s = order[r];
        for j in 0..dim {
            let residual = f64::from(x[s * dim + j]) - fitted(s, j);
            out[r * dim + j] = (fitted(r, j) + residual) as f32;
        }
    }
    out
}

fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let mut inv = [[0f64; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            // Cofactor of (j, i), i.e. the adjugate's (i, j).
            let (r0, r1) = ((j + 1) % 3, (j + 2) % 3);
            let (c0, c1) = ((i + 1) % 3, (i + 2) % 3);
            *v = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
        }
    }
    inv
}

/// The real and control probes for one representation (`a`, `b` per row, 0 or 1).
pub fn xor_experiment(
    rep: &Representation,
    a: &[u32],
    b: &[u32],
    split: &Split,
    options: &LogisticOptions,
    seed: u64,
) -> Result<XorRow> {
    let control = additive_control(&rep.values, rep.dim, a, b, seed);
    Ok(XorRow {
        representation: rep.name.clone(),
        hook: rep.hook.to_string(),
        source: rep.source,
        real: scores(&rep.values, rep.dim, a, b, split, options)?,
        control: scores(&control, rep.dim, a, b, split, options)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_inverts() {
        let m = [[4.0, 2.0, 1.0], [2.0, 3.0, 0.5], [1.0, 0.5, 2.0]];
        let inv = invert3(m);
        for (i, row) in m.iter().enumerate() {
            for j in 0..3 {
                let p: f64 = row.iter().zip(&inv).map(|(a, r)| a * r[j]).sum();
                assert!((p - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn the_control_keeps_the_additive_part_and_drops_the_product() {
        // x = 2a − b + 3ab: the control keeps the best additive fit, and the ab term only
        // survives as shuffled residual noise.
        let a: Vec<u32> = (0..400).map(|i| (i % 2) as u32).collect();
        let b: Vec<u32> = (0..400).map(|i| ((i / 2) % 2) as u32).collect();
        let x: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(&p, &q)| (2 * p as i32 - q as i32 + 3 * (p * q) as i32) as f32)
            .collect();
        let control = additive_control(&x, 1, &a, &b, 3);
        let cell_mean = |p: u32, q: u32, v: &[f32]| {
            let cell: Vec<f32> = (0..400)
                .filter(|&r| a[r] == p && b[r] == q)
                .map(|r| v[r])
                .collect();
            cell.iter().sum::<f32>() / cell.len() as f32
        };
        // Additive cell means: μ + αa + βb fitted by least squares on a balanced design.
        let m00 = cell_mean(0, 0, &control);
        let m11 = cell_mean(1, 1, &control);
        let m10 = cell_mean(1, 0, &control);
        let m01 = cell_mean(0, 1, &control);
        // No interaction left in expectation: m11 − m10 − m01 + m00 ≈ 0 (it was 3).
        let interaction = m11 - m10 - m01 + m00;
        assert!(interaction.abs() < 0.5, "{interaction}");
        assert!(
            (cell_mean(1, 1, &x) - cell_mean(1, 0, &x) - cell_mean(0, 1, &x) + cell_mean(0, 0, &x)
                - 3.0)
                .abs()
                < 1e-5
        );
    }
}
