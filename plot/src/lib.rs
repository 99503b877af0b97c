//! Pictures of gmvae runs, from the files a run directory holds (`latent.safetensors`,
//! `metrics.csv`): the Rust counterparts of upstream's `plot_latent.py` / `plot_recon.py` and its
//! curve PNGs (gmvae-upstream.md §6). Each binary is a thin CLI over one `render_*` function here.

pub mod curves;
pub mod latent;
pub mod linalg;
pub mod metrics_csv;
pub mod recon;
pub mod report;
pub mod samples;
pub mod serket;
pub mod style;
pub mod text;
pub mod usage;
pub mod watch;

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Runs a binary's body and turns an error into one `error: ...` line and exit status 1.
pub fn cli_main(body: impl FnOnce() -> Result<()>) -> std::process::ExitCode {
    gmvae::cli::exit_quietly_on_closed_stdout();
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", gmvae::cli::error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The arguments every single-picture binary takes.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The run directory (experiments/<id>).
    pub run_dir: PathBuf,
    /// Output PNG [default: a file in RUN_DIR named after the picture].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub watch: watch::WatchArgs,
}

impl RunArgs {
    /// `--output`, or `name` inside the run directory.
    pub fn output_or(&self, name: &str) -> PathBuf {
        self.output
            .clone()
            .unwrap_or_else(|| self.run_dir.join(name))
    }
}

/// A run's name for titles: the run directory's folder name.
pub fn run_name(run_dir: &Path) -> String {
    std::fs::canonicalize(run_dir)
        .unwrap_or_else(|_| run_dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string())
}

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
    draw: impl FnOnce(&DrawingArea<text::Typeset, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    gmvae::limits::product(
        &format!("picture {}", out.display()),
        &[width as usize, height as usize],
        gmvae::limits::MAX_PICTURE_PIXELS,
    )?;
    style::register_fonts();
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = text::Typeset(BitMapBackend::with_buffer(&mut buf, (width, height)))
            .into_drawing_area();
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

/// The image shape to draw the dump's rows with: `flag` (`--image-shape`) if given, else the
/// dump's own, else the known shape of a named image data set (the fully-connected MNIST preset
/// trains on flat rows and records no shape, but its rows are still 28x28 pictures).
pub fn resolve_image_shape(
    dump: &gmvae::dump::LatentDump,
    flag: Option<[usize; 3]>,
) -> Result<Option<[usize; 3]>> {
    if let Some([c, h, w]) = flag {
        if c * h * w != dump.dy {
            anyhow::bail!(
                "--image-shape {c},{h},{w} holds {} values, the dump's rows have {}",
                c * h * w,
                dump.dy
            );
        }
        return Ok(flag);
    }
    Ok(dump.image_shape.or(match (dump.dataset.as_str(), dump.dy) {
        ("mnist", 784) => Some([1, 28, 28]),
        ("svhn", 3072) => Some([3, 32, 32]),
        _ => None,
    }))
}

/// Parses `C,H,W` for `--image-shape`.
pub fn parse_image_shape(s: &str) -> std::result::Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{p}` is not a whole number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let max = gmvae::limits::MAX_IMAGE_SIDE;
    match v[..] {
        [c, h, w] if (c == 1 || c == 3) && (1..=max).contains(&h) && (1..=max).contains(&w) => {
            Ok([c, h, w])
        }
        _ => Err(format!(
            "expected C,H,W with C = 1 or 3 and H, W in 1..={max}, e.g. 1,28,28; got `{s}`"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_shape_flag_parses_and_is_checked() {
        assert_eq!(parse_image_shape("1,28,28"), Ok([1, 28, 28]));
        assert_eq!(parse_image_shape(" 3, 32 ,32"), Ok([3, 32, 32]));
        assert!(parse_image_shape("2,28,28").is_err());
        assert!(parse_image_shape("28,28").is_err());
        assert!(parse_image_shape("1,x,28").is_err());
    }

    #[test]
    fn flat_mnist_rows_are_drawn_as_28x28() {
        let mut d = gmvae::dump::LatentDump {
            epoch: 1,
            dataset: "mnist".into(),
            image_shape: None,
            n: 0,
            dx: 2,
            dw: 2,
            dy: 784,
            k: 2,
            x_mean: vec![],
            w_mean: vec![],
            q_z: vec![],
            cluster: vec![],
            label: None,
            data: vec![],
            recon: vec![],
            prior_mean: vec![0.0; 4],
            prior_var: vec![1.0; 4],
        };
        assert_eq!(resolve_image_shape(&d, None).unwrap(), Some([1, 28, 28]));
        assert!(resolve_image_shape(&d, Some([1, 28, 27])).is_err());
        d.dataset = "spiral".into();
        d.dy = 2;
        assert_eq!(resolve_image_shape(&d, None).unwrap(), None);
    }
}
