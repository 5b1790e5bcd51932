//! `saelab._saelab.train`: a training run from Python, the same run `saelab train` makes
//! (the same library call, so the same bytes), with Python callbacks for progress and
//! metrics, and Ctrl-C turned into a checkpoint and a `KeyboardInterrupt`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use saelab_sae::{SaeSpec, StepStats};
use saelab_train::{Observer, Outcome, RunConfig, Start};

use crate::errors::{bad_type, bad_value, OrRaise};
use crate::json;
use crate::sae::Sae;

/// Trains the run in `out` and returns `(dictionaries, summary)`: each dictionary by name
/// and the run's `summary.json` as a dict.
///
/// `sae` is a list of specs, as strings (`"topk:k=32,width=16384"`) or dicts of the same
/// keys (`{"kind": "topk", "k": 32, "width": 16384}`); `run` holds the other settings under
/// the names of a TOML run file (`cache`, `hooks`, `tokens`, `batch`, `seed`, ...).
/// `resume=True` continues the run in `out` from its last checkpoint (then `sae` and `run`
/// must be empty: the folder's `config.json` has them). `progress(event, done, total)` is
/// called with `"replay"`, `"train"` and `"evaluate"`; `callback(step, stats)` every step,
/// `stats` a list of one dict per dictionary.
#[pyfunction]
#[pyo3(signature = (out, sae = None, run = None, resume = false, progress = None, callback = None))]
pub fn train<'py>(
    py: Python<'py>,
    out: PathBuf,
    sae: Option<&Bound<'py, PyList>>,
    run: Option<&Bound<'py, PyDict>>,
    resume: bool,
    progress: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyAny>)> {
    let start = if resume {
        if sae.is_some_and(|s| !s.is_empty()) || run.is_some_and(|r| !r.is_empty()) {
            return Err(bad_value(
                "resume",
                "continues the run in `out` with the settings in its config.json: give no `sae` or run settings",
            ));
        }
        Start::Resume
    } else {
        Start::Fresh(Box::new(run_config(sae, run)?))
    };

    let interrupt = AtomicBool::new(false);
    let mut observer = PythonObserver {
        progress,
        callback,
        failed: None,
        interrupt: &interrupt,
    };
    let outcome = py.detach(|| saelab_train::train(&out, start, &mut observer, &interrupt));
    if let Some(e) = observer.failed {
        return Err(e);
    }
    match outcome.or_raise()? {
        Outcome::Interrupted { step } => Err(PyKeyboardInterrupt::new_err(format!(
            "training interrupted at step {step}, checkpoint saved; continue with \
             saelab.train({:?}, resume=True)",
            out.display().to_string()
        ))),
        Outcome::Finished(finished) => {
            let dictionaries = PyDict::new(py);
            for spec in finished.set.specs() {
                let dir = finished.final_dir.join(&spec.name);
                let inner = py
                    .detach(|| saelab_sae::format::any::load_any(&dir))
                    .or_raise()?;
                dictionaries.set_item(&spec.name, Sae { inner })?;
            }
            Ok((dictionaries, json::to_python(py, &finished.summary)?))
        }
    }
}

/// The run's settings from the Python arguments; unknown keys are refused by name.
fn run_config(
    sae: Option<&Bound<'_, PyList>>,
    run: Option<&Bound<'_, PyDict>>,
) -> PyResult<RunConfig> {
    let specs = match sae {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, item)| spec_of(&item, i))
            .collect::<PyResult<Vec<_>>>()?,
    };
    if specs.is_empty() {
        return Err(bad_value(
            "sae",
            "is empty; give at least one dictionary (\"topk:k=32,width=16384\")",
        ));
    }
    let mut settings = match run {
        Some(dict) => json::from_python(dict.as_any(), "run")?,
        None => serde_json::json!({}),
    };
    let object = settings
        .as_object_mut()
        .ok_or_else(|| bad_type("run", "must be a dict"))?;
    if object.contains_key("sae") {
        return Err(bad_value(
            "run",
            "holds `sae`: give the dictionaries as the `sae` argument",
        ));
    }
    let named_hooks = object.contains_key("hooks");
    object.insert("sae".into(), serde_json::json!([]));
    let mut config: RunConfig =
        serde_json::from_value(settings).map_err(|e| bad_value("run", e))?;
    if !named_hooks {
        config.hooks =
            saelab_train::config::default_hooks(config.cache.as_deref(), "hooks").or_raise()?;
    }
    config.sae = specs;
    config
        .check()
        .map_err(|e| bad_value("run", format!("{e:#}")))?;
    Ok(config)
}

fn spec_of(item: &Bound<'_, PyAny>, i: usize) -> PyResult<SaeSpec> {
    // `what` quotes a spec string in messages: `[0] "topk:k=0": ...`.
    let (spec, what) = if let Ok(text) = item.cast::<PyString>() {
        let text: String = text.extract()?;
        let what = format!(" {text:?}");
        let spec =
            SaeSpec::parse(&text).map_err(|e| bad_value("sae", format!("[{i}]{what}: {e}")))?;
        (spec, what)
    } else if item.cast::<PyDict>().is_ok() {
        let value = json::from_python(item, "sae")?;
        let spec =
            serde_json::from_value(value).map_err(|e| bad_value("sae", format!("[{i}]: {e}")))?;
        (spec, String::new())
    } else {
        return Err(bad_type(
            "sae",
            format!(
                "[{i}] must be a spec string (\"topk:k=32,width=16384\") or a dict of its keys"
            ),
        ));
    };
    spec.check()
        .map_err(|e| bad_value("sae", format!("[{i}]{what}: {e}")))?;
    Ok(spec)
}

/// The run's events to Python's callbacks. A callback's exception, or Ctrl-C, stops the run
/// after a checkpoint.
struct PythonObserver<'a> {
    progress: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
    failed: Option<PyErr>,
    interrupt: &'a AtomicBool,
}

impl PythonObserver<'_> {
    fn with_python(&mut self, f: impl FnOnce(Python<'_>, &Self) -> PyResult<()>) {
        if self.failed.is_some() {
            return;
        }
        let result = Python::attach(|py| {
            // Ctrl-C: the run takes a checkpoint and returns `Interrupted`.
            if py.check_signals().is_err() {
                self.interrupt.store(true, Ordering::SeqCst);
                return Ok(());
            }
            f(py, self)
        });
        if let Err(e) = result {
            self.failed = Some(e);
            self.interrupt.store(true, Ordering::SeqCst);
        }
    }

    fn report(&mut self, event: &'static str, done: u64, total: u64) {
        self.with_python(|py, me| match &me.progress {
            Some(f) => f.call1(py, (event, done, total)).map(drop),
            None => Ok(()),
        });
    }
}

impl Observer for PythonObserver<'_> {
    fn warn(&mut self, message: &str) {
        let message = message.to_string();
        self.with_python(|py, _| {
            let warnings = py.import("warnings")?;
            warnings.call_method1("warn", (message,)).map(drop)
        });
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn replayed(&mut self, done: u64, total: u64) {
        self.report("replay", done, total);
    }

    fn started(&mut self, done: u64, total: u64) {
        self.report("train", done, total);
    }

    fn stepped(&mut self, step: u64, total: u64, stats: &[StepStats]) {
        // One visit to Python per step: the progress bar, then the metrics callback (the
        // statistics are converted only for a callback).
        self.with_python(|py, me| {
            if let Some(f) = &me.progress {
                f.call1(py, ("train", step, total))?;
            }
            if let Some(f) = &me.callback {
                let value = serde_json::to_value(stats)
                    .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
                f.call1(py, (step, json::to_python(py, &value)?))?;
            }
            Ok(())
        });
    }

    fn trained(&mut self) {
        self.report("evaluate", 0, 0);
    }
}
