//! Cluster usage bar chart (upstream `labels_stats.png`) from the latent dump's q(z|y).

use anyhow::Result;
use clap::Parser;
use gmvae_plot::usage::render_usage;
use gmvae_plot::watch::{self, WatchArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Draw a run's cluster usage: the share of the data per cluster, from q(z|y)")]
struct Args {
    /// The run directory (experiments/<id>) holding latent.safetensors.
    run_dir: PathBuf,
    /// Output PNG [default: <RUN_DIR>/usage.png].
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
        .unwrap_or_else(|| args.run_dir.join("usage.png"));
    let dump = gmvae_plot::dump_path(&args.run_dir);
    watch::run(&args.watch, &[dump], &out, || {
        render_usage(&gmvae_plot::load_dump(&args.run_dir)?, &out)
    })
}
