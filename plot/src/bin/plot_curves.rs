//! Per-epoch curves from metrics.csv: lower bound, CV and clustering scores.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::curves::render_curves;
use gmvae_plot::metrics_csv::Metrics;
use gmvae_plot::{watch, RunArgs};

/// Draw a run's training curves (lower bound, CV, accuracies) from metrics.csv [curves.png].
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let Args { run } = Args::parse();
    let out = run.output_or("curves.png");
    let csv = gmvae_plot::metrics_path(&run.run_dir);
    let name = gmvae_plot::run_name(&run.run_dir);
    watch::run(&run.watch, std::slice::from_ref(&csv), &out, || {
        render_curves(&Metrics::load(&csv)?, &name, &out)
    })
}
