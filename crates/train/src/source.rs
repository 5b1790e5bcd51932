//! Where a run's activations come from: a harvested cache (its first windows for training,
//! its last ones held out) or a live model over a corpus, with the run's hooks in the run's
//! order.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use saelab_data::activations::{
    live_windows, ActivationBuffer, BatchShape, BufferConfig, LiveSpec, WindowStream,
};
use saelab_data::cache::{ActivationCache, ReadOptions};
use saelab_data::{Packing, WindowConfig};
use saelab_model::HookPoint;

use crate::config::RunConfig;
use crate::Observer;

/// Where activations come from: a cache, or a model over a corpus.
pub struct Source {
    pub model: String,
    pub corpus: String,
    pub ctx: usize,
    /// (name, width) of each hook, in the run's order.
    pub hooks: Vec<(String, usize)>,
    pub training_tokens: u64,
    cache: Option<ActivationCache>,
    /// Windows of the cache used for training (the rest is held out).
    pub training_windows: u64,
    live: Option<(
        Arc<saelab_model::LoadedModel>,
        saelab_data::Corpus,
        Vec<HookPoint>,
    )>,
}

impl Source {
    /// Opens the run's cache, or loads its model and corpus. Warnings (an unfinished
    /// harvest) go to `observer`.
    pub fn open(run: &RunConfig, observer: &mut dyn Observer) -> Result<Source> {
        if let Some(dir) = &run.cache {
            let cache =
                ActivationCache::open(dir).with_context(|| format!("--cache {}", dir.display()))?;
            let spec = &cache.manifest.spec;
            if !cache.manifest.complete {
                observer.warn(&format!(
                    "the harvest in {} is not finished; training on its {} windows (rerun the \
                     harvest to complete it)",
                    dir.display(),
                    cache.manifest.windows()
                ));
            }
            let mut hooks = Vec::new();
            for name in &run.hooks {
                let h = spec
                    .hooks
                    .iter()
                    .find(|h| &h.name == name)
                    .with_context(|| {
                        format!(
                            "--hook {name}: the cache {} does not hold it",
                            dir.display()
                        )
                    })?;
                hooks.push((h.name.clone(), h.d));
            }
            let windows = cache.manifest.windows();
            if run.holdout_windows >= windows {
                bail!("--holdout-windows {} leaves nothing of the cache's {windows} windows to train on", run.holdout_windows);
            }
            let training_windows = windows - run.holdout_windows;
            let per_window = cache.manifest.tokens() as f64 / windows as f64;
            let available = (training_windows as f64 * per_window) as u64;
            let training_tokens = run.tokens.unwrap_or(available).min(available);
            return Ok(Source {
                model: spec.model.clone(),
                corpus: spec.corpus.clone(),
                ctx: spec.window.len,
                hooks: hooks.clone(),
                training_tokens,
                training_windows,
                cache: Some(cache),
                live: None,
            });
        }
        let tokens = run
            .tokens
            .context("--tokens is required when training from a live model (the lr schedule needs the run's length); or train from a --cache")?;
        if run.holdout_windows > 0 {
            bail!("--holdout-windows needs --cache (held-out windows are the cache's last ones)");
        }
        let loaded = Arc::new(saelab_model::load(run.model.as_deref()).context("--model")?);
        let cfg = &loaded.model.cfg;
        let points = run
            .hooks
            .iter()
            .map(|h| HookPoint::parse(h, cfg).context("--hook"))
            .collect::<Result<Vec<_>>>()?;
        let corpus = saelab_data::Corpus::open(&run.corpus, &saelab_data::CorpusOptions::default())
            .context("--corpus")?;
        for warning in corpus.skipped_warnings() {
            observer.warn(&format!("corpus {}: {warning}", run.corpus));
        }
        Ok(Source {
            model: loaded.name.clone(),
            corpus: corpus.name.clone(),
            ctx: run.ctx,
            hooks: points
                .iter()
                .map(|p| (p.to_string(), p.width(cfg)))
                .collect(),
            training_tokens: tokens,
            training_windows: 0,
            cache: None,
            live: Some((loaded, corpus, points)),
        })
    }

    /// Steps of `batch` tokens in the training tokens.
    pub fn total_steps(&self, batch: usize) -> Result<u64> {
        match self.training_tokens / batch as u64 {
            0 => bail!(
                "{} training tokens make no step of {batch}",
                self.training_tokens
            ),
            steps => Ok(steps),
        }
    }

    /// The training batches, shuffled through the run's buffer.
    pub fn token_batches(&self, run: &RunConfig) -> Result<ActivationBuffer> {
        let stream = self.stream(run, None)?;
        let mut bytes = run.buffer_bytes()?;
        if self.live.is_some() {
            let row = ActivationBuffer::bytes_per_row(stream.layout(), 1);
            bytes = live_buffer_bytes(bytes, self.training_tokens, run.batch, run.ctx, row);
        }
        let config = BufferConfig {
            bytes,
            shape: BatchShape::Tokens(run.batch),
            seed: run.seed,
            include_special: false,
        };
        ActivationBuffer::new(stream, config).context("--buffer-mib")
    }

    /// The activation windows: training windows, or with `holdout` the held-out ones.
    pub fn stream(&self, run: &RunConfig, holdout: Option<()>) -> Result<WindowStream> {
        if let Some(cache) = &self.cache {
            let total = cache.manifest.windows();
            let options = match holdout {
                None => ReadOptions {
                    end_window: Some(self.training_windows),
                    ..ReadOptions::default()
                },
                Some(()) => ReadOptions {
                    skip_windows: self.training_windows,
                    end_window: Some(total),
                    ..ReadOptions::default()
                },
            };
            // Hooks are read in the run's order; a cache holding others is fine.
            return Ok(select_hooks(cache.windows(options), &self.hooks));
        }
        let Some((model, corpus, points)) = &self.live else {
            bail!("no activation source");
        };
        let window = WindowConfig::for_tokenizer(&model.tokenizer, run.ctx, Packing::Packed);
        Ok(live_windows(
            model.clone(),
            corpus.documents(),
            LiveSpec {
                points: points.clone(),
                window,
                batch_windows: 32,
                max_windows: None,
                skip_windows: 0,
            },
        )?)
    }
}

/// A live run's buffer: at most what the run trains on (its tokens, one more batch and one
/// window for the refill). The buffer fills before the first step, and a full 1 GiB buffer
/// would make the model run far past a small `--tokens` first, looking hung. A cache keeps
/// the whole `--buffer-mib` (reading it is cheap, and its runs reproduce as they did).
fn live_buffer_bytes(bytes: usize, tokens: u64, batch: usize, ctx: usize, row: usize) -> usize {
    let rows = usize::try_from(tokens)
        .unwrap_or(usize::MAX)
        .saturating_add(batch)
        .saturating_add(ctx);
    bytes.min(rows.saturating_mul(row))
}

/// The stream with only `hooks`, in that order.
fn select_hooks(stream: WindowStream, hooks: &[(String, usize)]) -> WindowStream {
    let layout = stream.layout().clone();
    let order: Vec<usize> = hooks
        .iter()
        .filter_map(|(name, _)| layout.hooks.iter().position(|h| &h.name == name))
        .collect();
    if order == (0..layout.hooks.len()).collect::<Vec<_>>() {
        return stream;
    }
    let new_layout = saelab_data::activations::Layout {
        ctx: layout.ctx,
        hooks: order.iter().map(|&i| layout.hooks[i].clone()).collect(),
    };
    WindowStream::spawn(new_layout, 1, move |sink| {
        for w in stream {
            let mut w = w?;
            w.hooks = order
                .iter()
                .map(|&i| std::mem::take(&mut w.hooks[i]))
                .collect();
            if !sink.send(vec![w]) {
                break;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::live_buffer_bytes;

    #[test]
    fn a_live_buffer_holds_no_more_than_the_run_trains_on() {
        let gib = 1 << 30;
        // 40,960 tokens of 2,316-byte rows: 45 MiB, not 1 GiB.
        let bytes = live_buffer_bytes(gib, 40_960, 4096, 128, 2316);
        assert_eq!(bytes, (40_960 + 4096 + 128) * 2316);
        // A long run keeps the whole buffer; sizes that overflow saturate.
        assert_eq!(live_buffer_bytes(gib, 100_000_000, 4096, 128, 2316), gib);
        assert_eq!(live_buffer_bytes(gib, u64::MAX, usize::MAX, 128, 2316), gib);
    }
}
