//! saelab-report: one self-contained HTML page per evaluation or training run, with plots
//! drawn as inline SVG. The page fetches nothing: its CSS and its small script (hover texts
//! and a render self-check) are inline.
//!
//! ```no_run
//! # fn main() -> Result<(), saelab_report::ReportError> {
//! use std::path::Path;
//! saelab_report::write_eval_report(Path::new("eval.json"), Path::new("eval.html"))?;
//! saelab_report::write_run_report(Path::new("runs/x"))?; // writes runs/x/report.html
//! # Ok(()) }
//! ```

pub mod death;
mod death_section;
pub mod error;
pub mod eval_file;
mod eval_page;
mod eval_tables;
pub mod format;
mod html;
pub mod lenient;
pub mod plots;
mod probe_page;
pub mod run_files;
mod run_page;
pub mod snapshot_files;
mod steer_page;
pub mod svg;
mod table;
mod write;

pub use error::{ReportError, Result};
pub use eval_file::EvalFile;

use std::path::{Path, PathBuf};

/// The file name of a run's report inside its folder.
pub const RUN_REPORT: &str = "report.html";

/// The HTML page for an eval JSON value ("saelab-eval" format).
pub fn render_eval(eval: &serde_json::Value) -> Result<String> {
    Ok(render_eval_file(&EvalFile::from_json(eval)?))
}

/// The HTML page for an already parsed eval.
pub fn render_eval_file(eval: &EvalFile) -> String {
    eval_page::render(eval)
}

impl EvalFile {
    /// Typed view of an eval JSON value; refuses a value that is not an object whose
    /// `format` is "saelab-eval" (the other fields are read leniently).
    pub fn from_json(eval: &serde_json::Value) -> Result<Self> {
        eval_page::parse(eval)
    }
}

/// Reads `eval_json` and writes its report to `out_html` (atomically).
pub fn write_eval_report(eval_json: &Path, out_html: &Path) -> Result<()> {
    let value = run_files::read_json(eval_json)?;
    let eval = EvalFile::from_json(&value).map_err(|e| match e {
        ReportError::Schema(source) => ReportError::Json {
            path: eval_json.to_path_buf(),
            cause: source,
        },
        ReportError::NotAnEval(reason) => ReportError::NotAnEvalFile {
            path: eval_json.to_path_buf(),
            reason,
        },
        other => other,
    })?;
    write::atomic(out_html, render_eval_file(&eval).as_bytes())
}

/// Writes the page of the eval file `eval_json` to `report`, else beside it: a training
/// run's page when `eval_json` is the run folder's `eval.json` (the run page shows the
/// evaluation too), else the evaluation's own page as `report.html`. Returns where.
pub fn write_eval_json_report(eval_json: &Path, report: Option<&Path>) -> Result<PathBuf> {
    let dir = eval_json.parent().unwrap_or(Path::new(""));
    let in_run =
        eval_json.file_name() == Some("eval.json".as_ref()) && dir.join("metrics.jsonl").exists();
    Ok(match report {
        Some(path) => {
            write_eval_report(eval_json, path)?;
            path.to_path_buf()
        }
        None if in_run => write_run_report(dir)?,
        None => {
            let path = dir.join(RUN_REPORT);
            write_eval_report(eval_json, &path)?;
            path
        }
    })
}

/// The HTML page of a steering sweep (a "saelab-steer" JSON value, read leniently).
pub fn render_steer(sweep: &serde_json::Value) -> String {
    steer_page::render(sweep)
}

/// Writes the page of a steering sweep to `out_html` (atomically).
pub fn write_steer_report(sweep: &serde_json::Value, out_html: &Path) -> Result<()> {
    write::atomic(out_html, render_steer(sweep).as_bytes())
}

/// The HTML page for a training run folder (needs its `metrics.jsonl`; uses `summary.json`,
/// `config.json`, `eval.json` and the density snapshots in `snapshots/` when present).
pub fn render_run(run_dir: &Path) -> Result<String> {
    run_page::render(run_dir)
}

/// Writes `report.html` into the run folder (atomically) and returns its path.
pub fn write_run_report(run_dir: &Path) -> Result<PathBuf> {
    let out = run_dir.join(RUN_REPORT);
    write_run_report_to(run_dir, &out)?;
    Ok(out)
}

/// Writes the run folder's page to `out_html` (atomically).
pub fn write_run_report_to(run_dir: &Path, out_html: &Path) -> Result<()> {
    write::atomic(out_html, render_run(run_dir)?.as_bytes())
}

/// The HTML page of a probe study (a "saelab-probe" JSON value), written to `out_html`
/// atomically.
pub fn write_probe_page(study: &serde_json::Value, out_html: &Path) -> Result<()> {
    write::atomic(out_html, probe_page::render(study)?.as_bytes())
}
