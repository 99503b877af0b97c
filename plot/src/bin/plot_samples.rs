//! Samples grid (upstream `samples.png`) decoded from a run's latest checkpoint.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::samples::{checkpoint_path, from_checkpoint, render_samples};
use gmvae_plot::{watch, RunArgs};

/// Draw K rows x COLS decoded samples of each mixture component at w = 0 from a run's checkpoint,
/// rows labelled by component and columns by sample
/// [samples_plot.png; the trainer's --visual-gen writes samples.png].
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Samples per component (columns).
    #[arg(long, default_value_t = 10)]
    cols: usize,
    /// Seed of the samples [default: the run's seed].
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let run = &args.run;
    let out = run.output_or("samples_plot.png");
    watch::run(&run.watch, &[checkpoint_path(&run.run_dir)], &out, || {
        let s = from_checkpoint(&run.run_dir, args.cols, args.seed)?;
        render_samples(&s, args.cols, &out).map(|_| ())
    })
}
