//! A stream of activation windows made on a background thread, so that producing them (a
//! model forward, or reading and decoding a cache shard) overlaps with consuming them.
//!
//! The channel holds at most `depth` chunks: memory stays bounded however far the producer
//! could run ahead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{ActivationWindow, Layout};
use crate::error::{DataError, Result};

type Chunk = Result<Vec<ActivationWindow>>;

/// The producer's end: hands chunks of windows to the consumer.
pub struct Sink {
    tx: SyncSender<Chunk>,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    /// Sends one chunk, waiting while the channel is full. False once the consumer has gone
    /// away: the producer should stop.
    pub fn send(&self, chunk: Vec<ActivationWindow>) -> bool {
        !self.cancelled() && self.tx.send(Ok(chunk)).is_ok()
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// The consumer's end: windows in the order the producer made them.
pub struct WindowStream {
    layout: Layout,
    rx: Option<Receiver<Chunk>>,
    pending: std::vec::IntoIter<ActivationWindow>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    done: bool,
}

impl WindowStream {
    /// Runs `produce` on a new thread. Its error, if any, ends the stream after the chunks
    /// sent before it.
    pub fn spawn(
        layout: Layout,
        depth: usize,
        produce: impl FnOnce(&Sink) -> Result<()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = sync_channel(depth.max(1));
        let cancel = Arc::new(AtomicBool::new(false));
        let sink = Sink {
            tx,
            cancel: cancel.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("saelab-activations".into())
            .spawn(move || {
                if let Err(e) = produce(&sink) {
                    let _ = sink.tx.send(Err(e));
                }
            })
            .expect("spawning a thread");
        WindowStream {
            layout,
            rx: Some(rx),
            pending: Vec::new().into_iter(),
            cancel,
            handle: Some(handle),
            done: false,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The producer has ended: report a panic as an error rather than a silent end.
    fn finish(&mut self) -> Option<Result<ActivationWindow>> {
        self.done = true;
        self.rx = None;
        let handle = self.handle.take()?;
        match handle.join() {
            Ok(()) => None,
            Err(_) => Some(Err(DataError::invalid(
                "activations",
                "the thread producing activations panicked",
            ))),
        }
    }
}

impl Iterator for WindowStream {
    type Item = Result<ActivationWindow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(window) = self.pending.next() {
                return Some(Ok(window));
            }
            if self.done {
                return None;
            }
            let received = self.rx.as_ref().map(Receiver::recv);
            match received {
                Some(Ok(Ok(chunk))) => self.pending = chunk.into_iter(),
                Some(Ok(Err(e))) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Err(_)) | None => return self.finish(),
            }
        }
    }
}

impl Drop for WindowStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // Dropping the receiver wakes a producer blocked on a full channel.
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
