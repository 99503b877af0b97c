//! The Serket tutorials' result figures from a `gmvae serket` output folder.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::serket::{parse_rounds, parse_size, render_run, Options};
use std::path::PathBuf;

/// Draw a `gmvae serket` run: the VAE's z of two rounds on one PCA basis, coloured by true class
/// [serket_z_label.png], by the GMM's classes [serket_z_gmm.png] and, with an MLDA, by its
/// classes [serket_z_mlda.png]; and each module's scores per round [serket_accuracy.png].
#[derive(Parser, Debug)]
struct Args {
    /// The run folder (`gmvae serket ... --out DIR`).
    run_dir: PathBuf,
    /// Folder for the PNGs [default: <RUN_DIR>].
    #[arg(short, long)]
    out_dir: Option<PathBuf>,
    /// The two rounds to compare [default: the first and the last].
    #[arg(long, value_name = "A,B", value_parser = parse_rounds)]
    rounds: Option<[usize; 2]>,
    /// True labels, one per line, or the tutorial's data.zip [default: <RUN_DIR>/category.txt].
    #[arg(long)]
    category: Option<PathBuf>,
    /// Pixel size of the before/after figures [default: 1600x760].
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<(u32, u32)>,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let out = args.out_dir.clone().unwrap_or_else(|| args.run_dir.clone());
    let opts = Options {
        rounds: args.rounds,
        category: args.category,
        size: args.size,
    };
    for p in render_run(&args.run_dir, &out, &opts)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
