//! Scatter of the latent q(x|y) means with the mixture components (upstream `plot_latent.py`).

use anyhow::Result;
use clap::Parser;
use gmvae_plot::latent::{render_latent, ColorBy};
use gmvae_plot::watch::{self, WatchArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    about = "Draw a run's latent space: q(x|y) means by cluster, 2-sigma component ellipses at w = 0"
)]
struct Args {
    /// The run directory (experiments/<id>) holding latent.safetensors.
    run_dir: PathBuf,
    /// Output PNG [default: <RUN_DIR>/latent.png].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Colour points by their true label instead of the predicted cluster.
    #[arg(long)]
    by_label: bool,
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
        .unwrap_or_else(|| args.run_dir.join("latent.png"));
    let by = if args.by_label {
        ColorBy::Label
    } else {
        ColorBy::Cluster
    };
    let dump = gmvae_plot::dump_path(&args.run_dir);
    watch::run(&args.watch, &[dump], &out, || {
        render_latent(&gmvae_plot::load_dump(&args.run_dir)?, by, &out)
    })
}
