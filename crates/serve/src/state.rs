//! What every handler shares, and the two ways a handler does blocking work: a database
//! read on the blocking pool, or a model job, one at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::database::catalog::{Catalog, DictionaryInfo};
use crate::database::pool::Pool;
use crate::http_error::{HttpError, HttpResult};
use crate::live::Live;

/// How long a model job waits for the one before it.
const JOB_QUEUE_WAIT: Duration = Duration::from_secs(60);

pub struct AppState {
    pub pool: Pool,
    pub catalog: Catalog,
    pub live: Live,
    /// One model job at a time: each forward already uses every core.
    pub jobs: Arc<Semaphore>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn dictionary(&self, name: &str) -> HttpResult<&DictionaryInfo> {
        self.catalog
            .dictionary(name)
            .ok_or_else(|| HttpError::not_found(format!("no dictionary named `{name}`")))
    }
}

/// Runs `f` on the blocking pool (SQLite calls block).
pub async fn blocking<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&AppState) -> HttpResult<T> + Send + 'static,
) -> HttpResult<T> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| HttpError::internal(format!("the request's work failed: {e}")))?
}

/// Runs a model job on the blocking pool once no other job runs.
pub async fn model_job<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&AppState) -> HttpResult<T> + Send + 'static,
) -> HttpResult<T> {
    let jobs = Arc::clone(&state.jobs);
    let permit = tokio::time::timeout(JOB_QUEUE_WAIT, jobs.acquire_owned())
        .await
        .map_err(|_| HttpError::unavailable("the model is busy with other requests; try again"))?
        .map_err(|_| HttpError::unavailable("the server is shutting down"))?;
    blocking(state, move |s| {
        let out = f(s);
        drop(permit);
        out
    })
    .await
}
