//! Pictures of gmvae runs, from the files a run directory holds (`latent.safetensors`,
//! `metrics.csv`): the Rust counterparts of upstream's `plot_latent.py` / `plot_recon.py` and its
//! curve PNGs (gmvae-upstream.md §6). Each binary is a thin CLI over one `render_*` function here.

pub mod curves;
pub mod latent;
pub mod linalg;
pub mod metrics_csv;
pub mod recon;
pub mod style;
pub mod usage;
pub mod watch;

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The latent dump of a run directory.
pub fn dump_path(run_dir: &Path) -> PathBuf {
    run_dir.join(gmvae::dump::FILE)
}

/// The metrics file of a run directory.
pub fn metrics_path(run_dir: &Path) -> PathBuf {
    run_dir.join("metrics.csv")
}

/// Reads the dump of `run_dir` through the trainer's own reader.
pub fn load_dump(run_dir: &Path) -> Result<gmvae::dump::LatentDump> {
    gmvae::dump::LatentDump::load(&dump_path(run_dir))
}

/// Draws into an in-memory RGB canvas with `draw`, then writes it as a PNG atomically, so an image
/// viewer refreshing beside `--watch` never catches half a file.
pub fn render_png(
    out: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    style::register_fonts();
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let bytes = gmvae::visual::encode_png(width as usize, height as usize, 3, &buf)?;
    gmvae::atomic::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))
}

/// plotters' errors borrow the backend's error type; flatten them into anyhow.
pub fn plot_err<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

/// Short run description for titles: "spiral, epoch 12".
pub fn run_caption(dump: &gmvae::dump::LatentDump) -> String {
    let name = if dump.dataset.is_empty() {
        "run"
    } else {
        dump.dataset.as_str()
    };
    format!("{name}, epoch {}", dump.epoch)
}
