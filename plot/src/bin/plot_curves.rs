//! Per-epoch curves from metrics.csv: lower bound, CV and clustering scores.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::curves::render_curves;
use gmvae_plot::metrics_csv::Metrics;
use gmvae_plot::watch::{self, WatchArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Draw a run's training curves (lower bound, CV, accuracies) from metrics.csv")]
struct Args {
    /// The run directory (experiments/<id>) holding metrics.csv.
    run_dir: PathBuf,
    /// Output PNG [default: <RUN_DIR>/curves.png].
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    watch: WatchArgs,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.run_dir.join("curves.png"));
    let csv = gmvae_plot::metrics_path(&args.run_dir);
    let name = std::fs::canonicalize(&args.run_dir)
        .unwrap_or_else(|_| args.run_dir.clone())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string());
    watch::run(&args.watch, std::slice::from_ref(&csv), &out, || {
        render_curves(&Metrics::load(&csv)?, &name, &out)
    })
}
