#!/usr/bin/env python3
"""Reference L2-regularised logistic regressions fitted by scikit-learn, for saelab-probe's
`logistic::fit` to be compared against (coefficients, intercepts and probabilities, 1e-4).

The model is `LogisticRegression(C=C, l1_ratio=0, solver="lbfgs")` (L2 penalty, intercept
fitted and not penalised): it minimises C * sum_i logloss_i + 0.5 * ||W||^2, with a sigmoid
for two classes (coef_ has one row, the score of class 1) and a softmax for three or more.
It is fitted with tol=1e-10 and max_iter=100000 so that its answer is the optimum, not an
early stop. The script checks that independently of scikit-learn: in float64 numpy it computes
the gradient and Hessian of the objective (divided by C * n, as scikit-learn scales it) at
scikit-learn's solution, and asserts that the Newton step from there, how far the solution is
from the optimum to second order, is below 1e-6 in every coordinate (it is 2e-7 at most).

Problems (seeded; x is drawn as float32 and fitted as float64 of those values):

  binary.json            n=200, d=8, 2 classes, C=1, labels drawn from a logistic model
  multiclass3.json       n=300, d=6, 3 classes, C=1, labels drawn from a softmax model
  multiclass4_c0.1.json  n=240, d=10, 4 classes, C=0.1 (strong penalty), one class rarer
  separable_c10.json     n=200, d=5, 2 classes, C=10 (weak penalty), labels = the sign of a
                         linear score with 6 of them flipped (almost separable)

Each fixture holds the versions, C, the problem (x as [n][d], y), sklearn's coef_ [rows][d],
intercept_, predict_proba(x) [n][classes], n_iter_, and the objective, its gradient's max-abs
and the Newton step's max-abs at scikit-learn's solution.

Set up and run (CPU, about a second):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install scikit-learn==1.9.1 numpy==2.4.6
    /tmp/refenv/bin/python reference/logistic_sklearn.py [OUTPUT_DIR]

OUTPUT_DIR defaults to crates/probe/tests/fixtures/logistic/. Made with scikit-learn 1.9.1 and
numpy 2.4.6. x is written as the shortest decimal that reads back as the same float32, the
float64 results as Python's repr (shortest round-trip float64).
"""

import json
import math
import os
import platform
import sys

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    REPO_ROOT, "crates", "probe", "tests", "fixtures", "logistic")
SEED = 20251201
DISTANCE_BOUND = 1e-6  # on scikit-learn's distance to the optimum; the tests allow 1e-4


def f32(x):
    """Shortest decimal (as a Python float) that reads back as the float32 `x`,
    both when parsed directly as float32 and when parsed as float64 then cast."""
    x = np.float32(x)
    if not np.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    short = float(np.format_float_scientific(x, unique=True))
    if np.float32(short) == x:
        return short
    return float(x)  # exact value of the float32, always round-trips


def f64(x):
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return x  # json writes repr(), the shortest decimal that reads back the same float64


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_optimum(x, y, classes, coef, intercept, c):
    """The objective sum_i logloss_i / n + ||W||^2 / (2 C n) at scikit-learn's solution, its
    gradient's max-abs and the max-abs of the Newton step (H^+ g): how far, to second order,
    the solution is from the optimum. Written out in float64 numpy rather than taken from
    scikit-learn, so that the check is independent of it."""
    n, d = x.shape
    xt = np.hstack([x, np.ones((n, 1))])  # [x, 1]: parameters per class are [w_k, b_k]
    theta = np.hstack([coef, intercept[:, None]])
    z = xt @ theta.T
    l2 = 1.0 / (c * n)
    penalised = np.ones(d + 1)
    penalised[d] = 0.0  # the intercept
    if classes == 2:
        z = z[:, 0]
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.logaddexp(0.0, z) - y * z
        grad = xt.T @ (p - y) / n + l2 * penalised * theta[0]
        hess = (xt * (p * (1.0 - p))[:, None]).T @ xt / n + l2 * np.diag(penalised)
    else:
        lse = z.max(axis=1) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))
        loss = lse - z[np.arange(n), y]
        p = softmax(z)
        r = p.copy()
        r[np.arange(n), y] -= 1.0
        grad = (r.T @ xt / n + l2 * penalised * theta).ravel()
        # d^2 logloss_i / (d theta_k d theta_l) = (p_k [k = l] - p_k p_l) xt_i xt_i^T
        hess = np.zeros((classes * (d + 1), classes * (d + 1)))
        for k in range(classes):
            for m in range(classes):
                weight = p[:, k] * ((k == m) - p[:, m])
                block = (xt * weight[:, None]).T @ xt / n
                hess[k * (d + 1):(k + 1) * (d + 1), m * (d + 1):(m + 1) * (d + 1)] = block
        hess += l2 * np.diag(np.tile(penalised, classes))
    value = loss.mean() + 0.5 * l2 * (coef * coef).sum()
    # Minimum-norm solve: for the softmax, a common shift of the intercepts is a null direction
    # of H, and the gradient has no component along it.
    newton = np.linalg.lstsq(hess, grad, rcond=None)[0]
    return value, np.abs(grad).max(), np.abs(newton).max()


def draw_linear(rng, n, d, classes, scale):
    """float32 x ~ N(0, 1) and labels sampled from a random linear softmax model."""
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((classes, d)) * scale
    b = rng.standard_normal(classes) * 0.5
    p = softmax(x.astype(np.float64) @ w.T + b)
    y = np.array([rng.choice(classes, p=row) for row in p])
    return x, y


def problems(rng):
    x, y = draw_linear(rng, 200, 8, 2, 0.8)
    yield "binary", x, y, 1.0

    x, y = draw_linear(rng, 300, 6, 3, 1.0)
    yield "multiclass3", x, y, 1.0

    x = rng.standard_normal((240, 10)).astype(np.float32)
    w = rng.standard_normal((4, 10))
    b = np.array([0.5, 0.5, 0.0, -1.5])  # class 3 rarer
    p = softmax(x.astype(np.float64) @ w.T + b)
    y = np.array([rng.choice(4, p=row) for row in p])
    yield "multiclass4_c0.1", x, y, 0.1

    x = rng.standard_normal((200, 5)).astype(np.float32)
    w = rng.standard_normal(5)
    y = (x.astype(np.float64) @ w + 0.3 > 0).astype(np.int64)
    flip = rng.choice(200, size=6, replace=False)
    y[flip] = 1 - y[flip]
    yield "separable_c10", x, y, 10.0


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }
    for name, x, y, c in problems(rng):
        classes = int(y.max()) + 1
        assert sorted(set(y.tolist())) == list(range(classes)), name
        x64 = x.astype(np.float64)
        model = LogisticRegression(C=c, l1_ratio=0, tol=1e-10, max_iter=100000, solver="lbfgs")
        model.fit(x64, y)
        coef = model.coef_.astype(np.float64)
        intercept = model.intercept_.astype(np.float64)
        value, max_gradient, distance = check_optimum(x64, y, classes, coef, intercept, c)
        assert distance < DISTANCE_BOUND, f"{name}: Newton step {distance:.3g}"
        proba = model.predict_proba(x64)
        fixture = {
            "versions": versions,
            "seed": SEED,
            "c": c,
            "classes": classes,
            "rows": x.shape[0],
            "dim": x.shape[1],
            "x": [[f32(v) for v in row] for row in x],
            "y": [int(v) for v in y],
            "coef": [[f64(v) for v in row] for row in coef],
            "intercept": [f64(v) for v in intercept],
            "predict_proba": [[f64(v) for v in row] for row in proba],
            "n_iter": int(model.n_iter_[0]),
            "objective": f64(value),
            "max_gradient": f64(max_gradient),
            "newton_step": f64(distance),
        }
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w") as fh:
            json.dump(fixture, fh, indent=1)
            fh.write("\n")
        print(f"{name}: n={x.shape[0]} d={x.shape[1]} classes={classes} C={c} "
              f"n_iter={fixture['n_iter']} max|grad|={max_gradient:.2e} newton={distance:.2e} "
              f"max|coef|={np.abs(coef).max():.3g} sum(intercept)={intercept.sum():.2e}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
