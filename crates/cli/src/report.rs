//! `saelab report`: (re)writes the HTML page of a training run or of an eval file.

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// A run folder (writes its report.html) or an eval JSON file.
    path: PathBuf,
    /// Where to write the page (default: report.html in the run folder, or beside the eval
    /// file).
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
        let out = args.out.unwrap_or_else(|| {
            args.path
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join(saelab_report::RUN_REPORT)
        });
        saelab_report::write_eval_report(&args.path, &out)?;
        out
    };
    println!("report: {}", written.display());
    Ok(())
}
