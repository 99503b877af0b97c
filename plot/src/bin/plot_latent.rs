//! Scatter of the latent q(x|y) means with the mixture components (upstream `plot_latent.py`).

use anyhow::Result;
use clap::Parser;
use gmvae_plot::latent::{render_latent, ColorBy};
use gmvae_plot::{watch, RunArgs};

/// Draw a run's latent space: q(x|y) means by cluster, 2-sigma component ellipses at w = 0
/// [latent.png].
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Colour points by their true label instead of the predicted cluster.
    #[arg(long)]
    by_label: bool,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let Args { run, by_label } = Args::parse();
    let out = run.output_or("latent.png");
    let by = if by_label {
        ColorBy::Label
    } else {
        ColorBy::Cluster
    };
    watch::run(
        &run.watch,
        &[gmvae_plot::dump_path(&run.run_dir)],
        &out,
        || render_latent(&gmvae_plot::load_dump(&run.run_dir)?, by, &out),
    )
}
