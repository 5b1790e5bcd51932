//! The end of a training run: every dictionary (and the PCA baseline) evaluated on the
//! held-out windows, with METRICS.md's definitions (fvu about the held-out mean, l0, dead
//! over the held-out tokens).

use anyhow::Result;
use saelab_sae::train::set::TrainerSet;
use saelab_sae::Dictionary;

use crate::baselines::Baselines;
use crate::config::RunConfig;
use crate::source::Source;

/// Sums behind one reconstruction's metrics.
#[derive(Default, Clone)]
struct Recon {
    sse: f64,
    l0: f64,
    fired: Vec<bool>,
}

/// Per hook: sums for the total variance about the held-out mean.
#[derive(Default, Clone)]
struct Spread {
    n: u64,
    sum: Vec<f64>,
    sum_sq_norm: f64,
}

impl Spread {
    fn add(&mut self, x: &[f32], d: usize) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; d];
        }
        for row in x.chunks_exact(d) {
            for (s, v) in self.sum.iter_mut().zip(row) {
                *s += f64::from(*v);
                self.sum_sq_norm += f64::from(*v) * f64::from(*v);
            }
            self.n += 1;
        }
    }

    /// Σ‖x − μ‖² = Σ‖x‖² − n‖μ‖².
    fn total_variance(&self) -> f64 {
        let n = self.n.max(1) as f64;
        self.sum_sq_norm - self.sum.iter().map(|s| s * s).sum::<f64>() / n
    }
}

const ROWS: usize = 4096;

/// The held-out evaluation as `summary.json` holds it under `holdout`.
pub fn evaluate_holdout(
    run: &RunConfig,
    source: &Source,
    set: &TrainerSet,
    baselines: &Baselines,
) -> Result<serde_json::Value> {
    let pca = baselines.pca.as_ref();
    let ica = baselines
        .ica
        .as_ref()
        .map(|i| i.to_dictionary())
        .transpose()?;
    let dictionaries: Vec<_> = set.trainers().iter().map(|t| t.dictionary()).collect();
    let widths: Vec<usize> = source.hooks.iter().map(|h| h.1).collect();
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); widths.len()];
    let mut spreads = vec![Spread::default(); widths.len()];
    let mut recon: Vec<Recon> = dictionaries
        .iter()
        .map(|d| Recon {
            fired: vec![false; d.d_sae()],
            ..Recon::default()
        })
        .collect();
    let (mut pca_sse, mut ica_sse) = (0.0f64, 0.0f64);
    let mut flush = |rows: &mut Vec<Vec<f32>>| -> Result<()> {
        for (h, x) in rows.iter().enumerate() {
            spreads[h].add(x, widths[h]);
        }
        for ((spec, dict), acc) in set.specs().iter().zip(&dictionaries).zip(&mut recon) {
            // A transcoder reads one hook and is measured against another.
            let out = dict.forward(&rows[spec.hook])?;
            acc.sse += sq_dist(&rows[spec.target_hook()], &out.reconstruction);
            acc.l0 += out.features.val.iter().filter(|v| **v != 0.0).count() as f64;
            for (&j, &v) in out.features.idx.iter().zip(&out.features.val) {
                if v != 0.0 {
                    acc.fired[j as usize] = true;
                }
            }
        }
        if let Some(p) = pca {
            pca_sse += sq_dist(&rows[0], &p.reconstruct(&rows[0]));
        }
        if let Some(i) = &ica {
            ica_sse += sq_dist(&rows[0], &i.forward(&rows[0])?.reconstruction);
        }
        rows.iter_mut().for_each(Vec::clear);
        Ok(())
    };
    for window in source.stream(run, Some(()))? {
        let w = window?;
        for t in w.counted() {
            for (h, d) in widths.iter().enumerate() {
                rows[h].extend_from_slice(&w.hooks[h][t * d..(t + 1) * d]);
            }
        }
        if rows[0].len() >= ROWS * widths[0] {
            flush(&mut rows)?;
        }
    }
    if !rows[0].is_empty() {
        flush(&mut rows)?;
    }
    let tokens = spreads[0].n;
    let mut out = serde_json::json!({
        "windows": run.holdout_windows,
        "tokens": tokens,
        "positions": "real, non-special tokens of the cache's last windows",
        "dead_window_tokens": tokens,
        "dictionaries": set.specs().iter().zip(&recon).map(|(spec, r)| {
            let dead = r.fired.iter().filter(|f| !**f).count();
            let target = spec.target_hook();
            let n = spreads[target].n.max(1) as f64;
            serde_json::json!({
                "name": spec.name,
                "fvu": r.sse / spreads[target].total_variance(),
                "mse": r.sse / n / widths[target] as f64,
                "l0": r.l0 / n,
                "dead": dead,
                "dead_fraction": dead as f64 / r.fired.len() as f64,
            })
        }).collect::<Vec<_>>(),
    });
    if let Some(p) = pca {
        out["pca"] = serde_json::json!({
            "components": p.k,
            "fitted_on_tokens": "the training batches",
            "fvu": pca_sse / spreads[0].total_variance(),
        });
    }
    if let Some(i) = &baselines.ica {
        out["ica"] = serde_json::json!({
            "components": i.k,
            "fitted_on_tokens": format!("the first {} training rows", crate::baselines::ICA_ROWS),
            "fastica_iterations": i.iterations,
            "fvu": ica_sse / spreads[0].total_variance(),
        });
    }
    Ok(out)
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y) * f64::from(x - y))
        .sum()
}
