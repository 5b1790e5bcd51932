//! Live activations: windows from a corpus run through the model on a background thread,
//! one forward filling every requested hook.

use std::sync::Arc;

use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};

use super::stream::{Sink, WindowStream};
use super::{ActivationWindow, HookLayout, Layout};
use crate::document::Documents;
use crate::error::{DataError, Result};
use crate::windows::{windows, Window, WindowConfig};

/// Chunks the channel may hold ahead of the consumer: one ready while the next is computed.
const DEPTH: usize = 1;

#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub points: Vec<HookPoint>,
    pub window: WindowConfig,
    /// Windows per model forward.
    pub batch_windows: usize,
    /// Stop after this many windows (counted from the start of the corpus, skipped ones
    /// included); `None` reads the whole corpus.
    pub max_windows: Option<u64>,
    /// Windows to pass over without a forward (resuming a harvest). Keep it a multiple of
    /// `batch_windows` so that later forwards see the same batches as an uninterrupted run.
    pub skip_windows: u64,
}

impl LiveSpec {
    pub fn layout(&self, model: &LoadedModel) -> Layout {
        Layout {
            ctx: self.window.len,
            hooks: self
                .points
                .iter()
                .map(|p| HookLayout {
                    name: p.to_string(),
                    d: p.width(&model.model.cfg),
                })
                .collect(),
        }
    }

    fn validate(&self, model: &LoadedModel) -> Result<()> {
        if self.points.is_empty() {
            return Err(DataError::invalid("hook", "give at least one hook point"));
        }
        let names: Vec<String> = self.points.iter().map(ToString::to_string).collect();
        super::check_distinct_hooks(&names)?;
        if self.batch_windows == 0 {
            return Err(DataError::invalid(
                "batch",
                "windows per forward must be positive",
            ));
        }
        let context = model.model.cfg.context_length;
        if self.window.len > context {
            return Err(DataError::invalid(
                "ctx",
                format!(
                    "{} tokens is longer than the model's context length {context}",
                    self.window.len
                ),
            ));
        }
        self.window.validate()
    }
}

/// Starts the model on `documents`; the stream yields windows in corpus order.
pub fn live_windows(
    model: Arc<LoadedModel>,
    documents: Documents,
    spec: LiveSpec,
) -> Result<WindowStream> {
    spec.validate(&model)?;
    let layout = spec.layout(&model);
    Ok(WindowStream::spawn(layout, DEPTH, move |sink| {
        produce(&model, documents, &spec, sink)
    }))
}

fn produce(model: &LoadedModel, documents: Documents, spec: &LiveSpec, sink: &Sink) -> Result<()> {
    let mut stream = windows(documents, &model.tokenizer, spec.window.clone())?;
    let limit = spec.max_windows.unwrap_or(u64::MAX);
    let mut index = 0u64;
    while index < spec.skip_windows.min(limit) {
        match stream.next().transpose()? {
            Some(_) => index += 1,
            None => return Ok(()),
        }
    }
    let mut chunk: Vec<Window> = Vec::with_capacity(spec.batch_windows);
    loop {
        chunk.clear();
        while chunk.len() < spec.batch_windows && index + (chunk.len() as u64) < limit {
            match stream.next().transpose()? {
                Some(w) => chunk.push(w),
                None => break,
            }
        }
        if chunk.is_empty() || sink.cancelled() {
            return Ok(());
        }
        let out = forward(model, &spec.points, &chunk, index)?;
        index += chunk.len() as u64;
        if !sink.send(out) {
            return Ok(());
        }
    }
}

/// One forward over `chunk`, split back into windows.
fn forward(
    model: &LoadedModel,
    points: &[HookPoint],
    chunk: &[Window],
    first_index: u64,
) -> Result<Vec<ActivationWindow>> {
    let seq = chunk[0].ids.len();
    let ids: Vec<u32> = chunk.iter().flat_map(|w| w.ids.iter().copied()).collect();
    let mask: Vec<u8> = chunk.iter().flat_map(|w| w.mask.iter().copied()).collect();
    let batch = Batch::from_parts(ids, mask, chunk.len(), seq)?;
    let out = model
        .model
        .forward(&batch, &mut Hooks::capture(points.iter().copied()))?;
    let mut per_hook = Vec::with_capacity(points.len());
    for point in points {
        let tensor = out.get(*point).ok_or_else(|| {
            DataError::invalid("hook", format!("{point}: no value came out of the forward"))
        })?;
        let values = tensor
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(saelab_model::ModelError::from)?;
        per_hook.push(values);
    }
    Ok(chunk
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let hooks = per_hook
                .iter()
                .map(|values| {
                    let per_window = values.len() / chunk.len();
                    values[i * per_window..(i + 1) * per_window].to_vec()
                })
                .collect();
            ActivationWindow {
                index: first_index + i as u64,
                ids: w.ids.clone(),
                mask: w.mask.clone(),
                special: w.special.clone(),
                hooks,
            }
        })
        .collect())
}
