//! Samples grid (upstream `samples.png`) decoded from a run's latest checkpoint.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::samples::{checkpoint_path, from_checkpoint};
use gmvae_plot::watch::{self, WatchArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    about = "Draw K rows x COLS decoded samples of each mixture component at w = 0, from a run's checkpoint"
)]
struct Args {
    /// The run directory (experiments/<id>) holding opts.json and checkpoint.safetensors.
    run_dir: PathBuf,
    /// Output PNG [default: <RUN_DIR>/samples_plot.png; the trainer's --visual-gen writes samples.png].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Samples per component (columns).
    #[arg(long, default_value_t = 10)]
    cols: usize,
    /// Seed of the samples [default: the run's seed].
    #[arg(long)]
    seed: Option<u64>,
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
        .unwrap_or_else(|| args.run_dir.join("samples_plot.png"));
    let ckpt = checkpoint_path(&args.run_dir);
    watch::run(&args.watch, &[ckpt], &out, || {
        let s = from_checkpoint(&args.run_dir, args.cols, args.seed)?;
        gmvae::visual::write_samples_grid(&out, &s.images, s.k, args.cols, s.image_shape)
    })
}
