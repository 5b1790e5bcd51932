//! The probe experiments on collected rows: a full probe per representation, sparse probing
//! on the top-k latents, and the baselines (majority class, k random directions).

use saelab_sae::rng::SplitMix64;
use serde::Serialize;

use crate::collect::{Representation, Source};
use crate::logistic::{self, LogisticOptions};
use crate::matrix::{class_means, columns, rows, Standardizer};
use crate::Result;

/// Rows of one experiment, split by document.
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

impl Split {
    /// Rows whose document is held out go to validation.
    pub fn of_rows(row_document: &[usize], held_out: &[bool]) -> Split {
        let (validation, train) = (0..row_document.len()).partition(|&r| held_out[row_document[r]]);
        Split { train, validation }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Score {
    /// Validation accuracy.
    pub accuracy: f64,
    /// Validation F1, averaged over classes (macro).
    pub macro_f1: f64,
    pub train_accuracy: f64,
    /// Whether L-BFGS reached its gradient tolerance (always true for `majority`).
    pub converged: bool,
}

/// One line of the probe table.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeRow {
    /// The hook, or the dictionary's name.
    pub representation: String,
    pub hook: String,
    pub source: Source,
    /// `all` (every dimension), `top_k` (the k latents or dimensions whose class means differ
    /// most), `random_k` (k random directions of the activations), `majority`.
    pub setting: String,
    pub k: Option<usize>,
    #[serde(flatten)]
    pub score: Score,
}

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub logistic: LogisticOptions,
    /// Sparse-probing sizes.
    pub ks: Vec<usize>,
    pub seed: u64,
}

/// Fits on the training rows (standardised with their moments) and scores validation.
pub fn fit_and_score(
    x: &[f32],
    dim: usize,
    labels: &[u32],
    classes: usize,
    split: &Split,
    options: &LogisticOptions,
) -> Result<Score> {
    let train = rows(x, dim, &split.train);
    let valid = rows(x, dim, &split.validation);
    let standard = Standardizer::fit(&train, dim);
    let (train, valid) = (standard.apply(&train), standard.apply(&valid));
    let y_train: Vec<u32> = split.train.iter().map(|&r| labels[r]).collect();
    let y_valid: Vec<u32> = split.validation.iter().map(|&r| labels[r]).collect();
    let model = logistic::fit(&train, y_train.len(), dim, &y_train, classes, options)?;
    let predicted = model.predict(&valid, y_valid.len());
    Ok(Score {
        accuracy: logistic::accuracy(&predicted, &y_valid),
        macro_f1: logistic::macro_f1(&predicted, &y_valid, classes),
        train_accuracy: logistic::accuracy(&model.predict(&train, y_train.len()), &y_train),
        converged: model.converged,
    })
}

/// Predicting the training set's most frequent class everywhere.
pub fn majority(labels: &[u32], classes: usize, split: &Split) -> Score {
    let mut counts = vec![0usize; classes];
    for &r in &split.train {
        counts[labels[r] as usize] += 1;
    }
    let top = (0..classes)
        .max_by_key(|&c| (counts[c], usize::MAX - c))
        .unwrap_or(0) as u32;
    let y_valid: Vec<u32> = split.validation.iter().map(|&r| labels[r]).collect();
    let y_train: Vec<u32> = split.train.iter().map(|&r| labels[r]).collect();
    let guess = |n: usize| vec![top; n];
    Score {
        accuracy: logistic::accuracy(&guess(y_valid.len()), &y_valid),
        macro_f1: logistic::macro_f1(&guess(y_valid.len()), &y_valid, classes),
        train_accuracy: logistic::accuracy(&guess(y_train.len()), &y_train),
        converged: true,
    }
}

/// Columns ranked by how far apart their class means are on the training rows (the spread
/// of the class means; for two classes, ordering by |mean₁ − mean₀| as sparse probing does).
pub fn rank_by_class_means(
    x: &[f32],
    dim: usize,
    labels: &[u32],
    classes: usize,
    train: &[usize],
) -> Vec<usize> {
    let sub = rows(x, dim, train);
    let y: Vec<u32> = train.iter().map(|&r| labels[r]).collect();
    let means = class_means(&sub, dim, &y, classes);
    let spread: Vec<f64> = (0..dim)
        .map(|j| {
            let m: f64 = means.iter().map(|c| c[j]).sum::<f64>() / classes as f64;
            means.iter().map(|c| (c[j] - m).powi(2)).sum::<f64>()
        })
        .collect();
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]).then(a.cmp(&b)));
    order
}

/// `x` projected on `k` random Gaussian directions (seeded).
pub fn random_projection(x: &[f32], dim: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let directions: Vec<f32> = (0..k * dim).map(|_| rng.normal()).collect();
    let mut out = Vec::with_capacity(x.len() / dim * k);
    for row in x.chunks_exact(dim) {
        for d in directions.chunks_exact(dim) {
            out.push(row.iter().zip(d).map(|(a, b)| a * b).sum());
        }
    }
    out
}

/// Every probe of one representation: all dimensions, the top-k (for each k below its
/// width), and for activations k random directions.
pub fn probe_representation(
    rep: &Representation,
    labels: &[u32],
    classes: usize,
    split: &Split,
    options: &ProbeOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<ProbeRow>> {
    let row = |setting: &str, k: Option<usize>, score: Score| ProbeRow {
        representation: rep.name.clone(),
        hook: rep.hook.to_string(),
        source: rep.source,
        setting: setting.to_string(),
        k,
        score,
    };
    progress(&format!("{}: all {} dimensions", rep.name, rep.dim));
    let mut out = vec![row(
        "all",
        None,
        fit_and_score(
            &rep.values,
            rep.dim,
            labels,
            classes,
            split,
            &options.logistic,
        )?,
    )];
    let order = rank_by_class_means(&rep.values, rep.dim, labels, classes, &split.train);
    for &k in options.ks.iter().filter(|&&k| k < rep.dim) {
        progress(&format!("{}: top {k}", rep.name));
        let x = columns(&rep.values, rep.dim, &order[..k]);
        let score = fit_and_score(&x, k, labels, classes, split, &options.logistic)?;
        out.push(row("top_k", Some(k), score));
        if rep.source == Source::Activations {
            progress(&format!("{}: {k} random directions", rep.name));
            let seed = options.seed ^ 0x5EED_0000 ^ k as u64;
            let x = random_projection(&rep.values, rep.dim, k, seed);
            let score = fit_and_score(&x, k, labels, classes, split, &options.logistic)?;
            out.push(row("random_k", Some(k), score));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_puts_the_separating_column_first() {
        // Column 1 separates the classes; column 0 is noise of larger scale.
        let x = [5.0f32, 0.0, -5.0, 0.1, 4.0, 1.0, -4.0, 1.1];
        let order = rank_by_class_means(&x, 2, &[0, 0, 1, 1], 2, &[0, 1, 2, 3]);
        assert_eq!(order, [1, 0]);
    }

    #[test]
    fn majority_predicts_the_commonest_training_class() {
        let labels = [0, 1, 1, 1, 0, 1];
        let split = Split {
            train: vec![0, 1, 2, 3],
            validation: vec![4, 5],
        };
        let s = majority(&labels, 2, &split);
        assert_eq!((s.accuracy, s.train_accuracy), (0.5, 0.75));
    }

    #[test]
    fn splits_follow_documents() {
        let split = Split::of_rows(&[0, 0, 1, 2, 2], &[false, true, false]);
        assert_eq!((split.train, split.validation), (vec![0, 1, 3, 4], vec![2]));
    }
}
