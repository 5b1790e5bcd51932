//! `saelab report`: (re)writes the HTML page of a training run or of an eval file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// A run folder (writes its report.html), or a JSON file written by `saelab eval`,
    /// `saelab probe` or `saelab steer`.
    path: PathBuf,
    /// Where to write the page (default: report.html in the run folder or beside the eval
    /// file; NAME.html beside a probe or steer file NAME.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let written = if args.path.is_dir() {
        let out = args
            .out
            .unwrap_or_else(|| args.path.join(saelab_report::RUN_REPORT));
        saelab_report::write_run_report_to(&args.path, &out)
            .with_context(|| format!("run folder {}", args.path.display()))?;
        out
    } else {
        write_file_page(&args.path, args.out)?
    };
    println!("report: {}", written.display());
    Ok(())
}

/// The page of a JSON file, chosen by its `format`: a probe study or a steering sweep
/// (beside it as NAME.html by default), else an evaluation (report.html beside it; its reader
/// names what is wrong with anything else). Returns where the page went.
fn write_file_page(json: &Path, out: Option<PathBuf>) -> Result<PathBuf> {
    let text = std::fs::read_to_string(json).with_context(|| format!("{}", json.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let beside = |name: &Path| json.parent().unwrap_or(Path::new("")).join(name);
    let html = out.clone().unwrap_or_else(|| json.with_extension("html"));
    match value.get("format").and_then(|f| f.as_str()) {
        Some("saelab-probe") => saelab_report::write_probe_page(&value, &html)
            .with_context(|| format!("{}", json.display()))?,
        Some("saelab-steer") => saelab_report::write_steer_report(&value, &html)?,
        _ => {
            let html = out.unwrap_or_else(|| beside(Path::new(saelab_report::RUN_REPORT)));
            saelab_report::write_eval_report(json, &html)?;
            return Ok(html);
        }
    }
    Ok(html)
}
