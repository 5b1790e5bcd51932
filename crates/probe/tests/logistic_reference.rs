//! `logistic::fit` against scikit-learn's `LogisticRegression(solver="lbfgs")` fitted to its
//! optimum (reference/logistic_sklearn.py): the same objective must give the same
//! coefficients, intercepts and probabilities.

use std::path::PathBuf;

use saelab_probe::lbfgs::LbfgsOptions;
use saelab_probe::logistic::{self, LogisticModel, LogisticOptions};
use saelab_probe::{ProbeError, Result};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    c: f64,
    classes: usize,
    rows: usize,
    dim: usize,
    x: Vec<Vec<f32>>,
    y: Vec<u32>,
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
    predict_proba: Vec<Vec<f64>>,
}

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logistic")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn max_abs_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

fn check(name: &str) {
    let f = load(name);
    let x: Vec<f32> = f.x.concat();
    let options = LogisticOptions {
        c: f.c,
        lbfgs: LbfgsOptions {
            gradient_tolerance: 1e-10,
            max_iterations: 10_000,
            ..LbfgsOptions::default()
        },
    };
    let model = logistic::fit(&x, f.rows, f.dim, &f.y, f.classes, &options).unwrap();
    assert!(
        model.converged,
        "{name}: not converged after {} iterations",
        model.iterations
    );

    let coef = max_abs_difference(&model.coef, &f.coef.concat());
    let intercept = max_abs_difference(&model.intercept, &f.intercept);
    let proba = max_abs_difference(&model.predict_proba(&x, f.rows), &f.predict_proba.concat());
    assert!(
        coef <= TOLERANCE && intercept <= TOLERANCE && proba <= TOLERANCE,
        "{name}: max |Δcoef| {coef:.2e}, |Δintercept| {intercept:.2e}, |Δproba| {proba:.2e}"
    );
}

#[test]
fn binary_matches_scikit_learn() {
    check("binary");
}

#[test]
fn three_classes_match_scikit_learn() {
    check("multiclass3");
}

#[test]
fn four_classes_with_a_strong_penalty_match_scikit_learn() {
    check("multiclass4_c0.1");
}

#[test]
fn almost_separable_binary_with_a_weak_penalty_matches_scikit_learn() {
    check("separable_c10");
}

fn field_of(result: Result<LogisticModel>) -> String {
    match result {
        Err(ProbeError::Invalid { field, .. }) => field,
        Err(other) => panic!("expected an Invalid error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn a_single_class_is_refused_naming_labels() {
    let f = load("multiclass3");
    let x: Vec<f32> = f.x.concat();
    let one_class = vec![1; f.rows];
    let fitted = logistic::fit(
        &x,
        f.rows,
        f.dim,
        &one_class,
        3,
        &LogisticOptions::default(),
    );
    assert_eq!(field_of(fitted), "labels");
}

#[test]
fn a_non_finite_value_is_refused_naming_x() {
    let f = load("binary");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x: Vec<f32> = f.x.concat();
        x[5 * f.dim + 3] = bad;
        let fitted = logistic::fit(&x, f.rows, f.dim, &f.y, 2, &LogisticOptions::default());
        assert_eq!(field_of(fitted), "x", "{bad}");
    }
}
