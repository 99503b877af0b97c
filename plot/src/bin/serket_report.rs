//! One Markdown page comparing GMVAE and Serket runs on the same data, with their figures.

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;

/// Write <OUT_DIR>/report.md: final scores (accuracy, NMI, components used, wall time) of GMVAE
/// runs and `gmvae serket` runs, the Serket runs' per-round tables, and every run's figures
/// (drawn into <OUT_DIR>/<run name>/).
#[derive(Parser, Debug)]
struct Args {
    /// A GMVAE run directory (metrics.csv; latent.safetensors for the latent figure). Repeatable.
    #[arg(long, value_name = "DIR")]
    gmvae: Vec<PathBuf>,
    /// A `gmvae serket` output folder (summary.json, module folders). Repeatable.
    #[arg(long, value_name = "DIR")]
    serket: Vec<PathBuf>,
    /// True labels for Serket folders without their own category.txt: a text file or data.zip.
    #[arg(long)]
    category: Option<PathBuf>,
    /// Folder for report.md and the figures.
    #[arg(short, long)]
    out_dir: PathBuf,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let command = std::iter::once("serket_report".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let page = gmvae_plot::report::write_report(
        &command,
        &args.gmvae,
        &args.serket,
        args.category.as_deref(),
        &args.out_dir,
    )?;
    println!("wrote {}", page.display());
    Ok(())
}
