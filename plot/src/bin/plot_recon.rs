//! Data against reconstructions (upstream `plot_recon.py`); images as two matching grids.

use anyhow::Result;
use clap::Parser;
use gmvae_plot::recon::{render_recon, ImageGrid};
use gmvae_plot::{watch, RunArgs};

/// Draw a run's reconstructions: 2-D data with reconstructions by cluster, or image grids
/// [recon.png].
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Images: how many examples (the dump's first ones) to show.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// Images: examples per row of each grid.
    #[arg(long, default_value_t = 10)]
    cols: usize,
    /// Draw rows as C,H,W images [default: the dump's shape, or the data set's known one].
    #[arg(long, value_name = "C,H,W", value_parser = gmvae_plot::parse_image_shape)]
    image_shape: Option<[usize; 3]>,
}

fn main() -> std::process::ExitCode {
    gmvae_plot::cli_main(run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let run = &args.run;
    let out = run.output_or("recon.png");
    let grid = ImageGrid {
        count: args.count,
        cols: args.cols,
    };
    watch::run(
        &run.watch,
        &[gmvae_plot::dump_path(&run.run_dir)],
        &out,
        || {
            let dump = gmvae_plot::load_dump(&run.run_dir)?;
            let shape = gmvae_plot::resolve_image_shape(&dump, args.image_shape)?;
            render_recon(&dump, shape, grid, &out)
        },
    )
}
