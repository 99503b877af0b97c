//! Cluster usage bar chart (upstream `labels_stats.png`) from the latent dump's q(z|y).

use anyhow::Result;
use clap::Parser;
use gmvae_plot::usage::render_usage;
use gmvae_plot::{watch, RunArgs};

/// Draw a run's cluster usage, the share of the data per cluster from q(z|y) [usage.png].
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
    let out = run.output_or("usage.png");
    watch::run(
        &run.watch,
        &[gmvae_plot::dump_path(&run.run_dir)],
        &out,
        || render_usage(&gmvae_plot::load_dump(&run.run_dir)?, &out),
    )
}
