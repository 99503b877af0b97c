//! Every picture of a run in one go (latent, recon, curves, usage): one process to leave
//! running beside training with --watch.

use anyhow::{bail, Result};
use clap::Parser;
use gmvae_plot::latent::{render_latent, ColorBy};
use gmvae_plot::metrics_csv::Metrics;
use gmvae_plot::recon::{render_recon, ImageGrid};
use gmvae_plot::watch::{self, WatchArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Draw all of a run's pictures: latent.png, recon.png, curves.png, usage.png")]
struct Args {
    /// The run directory (experiments/<id>) holding latent.safetensors and metrics.csv.
    run_dir: PathBuf,
    /// Folder for the PNGs [default: <RUN_DIR>].
    #[arg(short, long)]
    out_dir: Option<PathBuf>,
    /// Colour the latent plot by true label instead of predicted cluster.
    #[arg(long)]
    by_label: bool,
    /// Draw rows as C,H,W images [default: the dump's shape, or the data set's known one].
    #[arg(long, value_name = "C,H,W", value_parser = gmvae_plot::parse_image_shape)]
    image_shape: Option<[usize; 3]>,
    #[command(flatten)]
    watch: WatchArgs,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let out = args.out_dir.clone().unwrap_or_else(|| args.run_dir.clone());
    let by = if args.by_label {
        ColorBy::Label
    } else {
        ColorBy::Cluster
    };
    let (dump, csv) = (
        gmvae_plot::dump_path(&args.run_dir),
        gmvae_plot::metrics_path(&args.run_dir),
    );
    let name = gmvae_plot::run_name(&args.run_dir);
    watch::run(&args.watch, &[dump, csv.clone()], &out, || {
        // Draw what can be drawn; a missing metrics file should not hold back the latent plot.
        let mut errors = Vec::new();
        match gmvae_plot::load_dump(&args.run_dir) {
            Ok(d) => {
                let grid = ImageGrid::default();
                for r in [
                    render_latent(&d, by, &out.join("latent.png")),
                    gmvae_plot::resolve_image_shape(&d, args.image_shape)
                        .and_then(|shape| render_recon(&d, shape, grid, &out.join("recon.png"))),
                    gmvae_plot::usage::render_usage(&d, &out.join("usage.png")),
                ] {
                    errors.extend(r.err());
                }
            }
            Err(e) => errors.push(e),
        }
        let curves = Metrics::load(&csv)
            .and_then(|m| gmvae_plot::curves::render_curves(&m, &name, &out.join("curves.png")));
        errors.extend(curves.err());
        match errors.len() {
            0 => Ok(()),
            _ => bail!(errors
                .iter()
                .map(|e| format!("{e:#}"))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    })
}
