//! Bounds on every size, count and weight that comes from outside (flags, a hand-edited
//! `opts.json`, file headers), checked before anything is allocated, so a typo or a hostile file
//! gets an error that names the flag or file, the value and the bound instead of an abort.
//!
//! The bounds are generous: each is far above any setting of the paper or the tutorials, and
//! low enough that what it admits fits in memory (see [`check_model_size`] for the combination).

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// K, mixture components (GMVAE) or classes/topics (Serket).
pub const MAX_K: usize = 1_000;
/// H, hidden width.
pub const MAX_HIDDEN: usize = 16_384;
/// Dx, Dw, and the Serket VAE's latent size.
pub const MAX_LATENT: usize = 4_096;
/// M, Monte-Carlo samples per point.
pub const MAX_N_MC: usize = 1_000;
/// Minibatch size.
pub const MAX_BATCH: usize = 1_000_000;
/// Epochs (and Serket rounds / sweeps).
pub const MAX_EPOCHS: usize = 1_000_000;
/// F, conv filters.
pub const MAX_FILTERS: usize = 1_024;
/// Input channels of the conv net.
pub const MAX_CHANNELS: usize = 16;
/// Points the spiral generator draws.
pub const MAX_SPIRAL_POINTS: usize = 10_000_000;
/// CPU threads (candle's pool starts them all at once: 100000 would never finish starting).
pub const MAX_THREADS: usize = 512;
/// Restarts of `--n-init`. Each is a full run directory (checkpoint, latent dump) trained to
/// the end, and scikit-learn's default is 10: 100 is far past where choosing by the lower bound
/// still gains, and bounds a typo (`--n-init 10000`) to disk and hours of compute one can see.
pub const MAX_N_INIT: usize = 100;
/// Class labels are indices `0..MAX_CLASSES`: they index per-class tables, and Serket's greedy
/// label-swap accuracy is quadratic in the largest one.
pub const MAX_CLASSES: usize = 256;
/// Elements of one model's parameters (f32; Adam keeps three more copies).
pub const MAX_PARAMETERS: u128 = 1 << 28;
/// Elements of the activations of one training step (rough count, f32).
pub const MAX_STEP_ACTIVATIONS: u128 = 1 << 30;
/// Values of one loaded data set (SVHN with extra is 1.9e9).
pub const MAX_DATA_VALUES: u128 = 1 << 31;
/// Bytes of one input file read whole (SVHN's extra_32x32.mat is 1.3 GB).
pub const MAX_FILE_BYTES: u64 = 4 << 30;
/// Bytes a compressed input (gzip, zlib, zip member) may inflate to.
pub const MAX_INFLATED_BYTES: u64 = 4 << 30;
/// Serket MLDA words per document of one modality (`--weights`; the tutorial uses 200).
pub const MAX_MLDA_WEIGHT: f64 = 10_000.0;
/// Images per side of a plotted grid (`plot_samples --cols`, `plot_recon --cols`).
pub const MAX_GRID_COLS: usize = 1_000;
/// Examples drawn by `plot_recon --count`.
pub const MAX_GRID_COUNT: usize = 10_000;
/// Height or width of one image (`--image-shape`).
pub const MAX_IMAGE_SIDE: usize = 4_096;
/// Pixels of one rendered picture.
pub const MAX_PICTURE_PIXELS: u128 = 1 << 26;

/// Errors unless `1 <= value <= max`; the message names `what` (a flag or a file field).
pub fn count(what: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 {
        bail!("{what} must be at least 1, found 0");
    }
    at_most(what, value, max)
}

/// Errors unless `value <= max`.
pub fn at_most(what: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        bail!("{what} is {value}, above the bound {max}");
    }
    Ok(())
}

/// Errors unless `value` is finite and in `[lo, hi]`.
pub fn weight(what: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if !(value.is_finite() && value >= lo && value <= hi) {
        bail!("{what} must be a finite number in [{lo}, {hi}], found {value}");
    }
    Ok(())
}

/// The product of `factors`, or an error naming `what` when it overflows or exceeds `max`.
pub fn product(what: &str, factors: &[usize], max: u128) -> Result<usize> {
    let mut p: u128 = 1;
    for &f in factors {
        p = p.saturating_mul(f as u128);
    }
    if p > max {
        bail!("{what}: {factors:?} make {p} elements, above the bound {max}");
    }
    usize::try_from(p).with_context(|| format!("{what}: {p} elements do not fit this machine"))
}

/// Rough element counts (parameters, activations of one step) of the model a run builds; the
/// largest layers dominate, so this is within a small factor of the truth.
pub fn model_size(conv: bool, dy: usize, [dx, dw, k, h, f, b, m]: [usize; 7]) -> (u128, u128) {
    let [dy, dx, dw, k, h, f, b, m] = [dy, dx, dw, k, h, f, b, m].map(|v| v as u128);
    let heads = h * (2 * dx + 2 * dw + k) + dw * h + 2 * h * k * dx + dx * h;
    let (trunk, act_trunk) = if conv {
        // Recognition and decoder: 4 conv stages each, the widest 4F -> H with a 9x9 kernel.
        let p = 2 * (4 * f * h * 81 + 8 * f * f * 36 + 2 * f * f * 36 + 4 * f * 36);
        (p, b * (4 * f * 1024 + 4 * h))
    } else {
        (dy * h + 2 * h * h + 2 * h * dy, b * (4 * h + 4 * dy))
    };
    let act = act_trunk + b * m * (4 * k * dx + 2 * dx + 2 * dw + 4 * k + 2 * dy);
    (trunk + heads, act)
}

/// Errors when the model or one step's activations would not fit the bounds.
pub fn check_model_size(conv: bool, dy: usize, sizes: [usize; 7]) -> Result<()> {
    let (p, a) = model_size(conv, dy, sizes);
    let [dx, dw, k, h, f, b, m] = sizes;
    let flags = format!(
        "--k {k} --hidden-size {h} --x-size {dx} --w-size {dw} --n-filters {f} --batch-size {b} \
         --n-mc {m}"
    );
    if p > MAX_PARAMETERS {
        bail!(
            "{flags}: the model would have about {p} parameters, above the bound {MAX_PARAMETERS}"
        );
    }
    if a > MAX_STEP_ACTIVATIONS {
        bail!(
            "{flags}: one training step would hold about {a} activations, above the bound \
             {MAX_STEP_ACTIVATIONS}; lower --batch-size or --n-mc"
        );
    }
    Ok(())
}

/// A class label read as a number `v`: a whole number in `0..MAX_CLASSES`.
pub fn label(v: f64) -> Option<usize> {
    (v >= 0.0 && v.fract() == 0.0 && v < MAX_CLASSES as f64).then_some(v as usize)
}

/// Metadata of an input `path` that must be a regular file of at most `max` bytes (a FIFO, a
/// device such as /dev/zero or a directory would block or never end).
pub fn input_file(path: &Path, max: u64) -> Result<u64> {
    let meta = regular_file(path)?;
    if meta.len() > max {
        bail!(
            "{} is {} bytes, above the bound {max} for an input file",
            path.display(),
            meta.len()
        );
    }
    Ok(meta.len())
}

/// Metadata of an input `path` that must be a regular file, read without opening it (opening a
/// FIFO with no writer blocks): the error says what else it is.
pub fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file: {}",
            path.display(),
            file_kind(&meta.file_type())
        );
    }
    Ok(meta)
}

/// What a file that is not a regular file is, for messages.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "it is a pipe, such as <(...) or a FIFO, which can be read only once; save it \
                    to a file first";
        }
        if t.is_char_device() || t.is_block_device() {
            return "it is a device";
        }
    }
    if t.is_dir() {
        "it is a directory"
    } else {
        "it is not a file"
    }
}

/// Reads a whole regular file of at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let len = input_file(path, MAX_FILE_BYTES)?;
    let mut out = Vec::with_capacity(len as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut out))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{} grew above the bound {MAX_FILE_BYTES} bytes while being read",
            path.display()
        );
    }
    Ok(out)
}

/// Reads a whole regular UTF-8 text file of at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Inflates `reader` (a gzip, zlib or zip stream) to at most [`MAX_INFLATED_BYTES`]; `what`
/// names the input in the error.
pub fn inflate(mut reader: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    (&mut reader)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("{what}: corrupt or truncated compressed data"))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        bail!("{what} inflates to more than the bound {MAX_INFLATED_BYTES} bytes");
    }
    Ok(out)
}

/// Errors at the first non-finite value of `values`, read from `source` as rows of `cols`;
/// the error gives the 1-based row and column.
pub fn check_finite_rows(source: &str, values: &[f32], cols: usize) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let cols = cols.max(1);
        bail!(
            "{source}, row {}, column {}: value {} is not a finite number",
            i / cols + 1,
            i % cols + 1,
            values[i]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_value_and_the_bound() {
        let e = count("--k", 100_000_000, MAX_K).unwrap_err().to_string();
        assert!(
            e.contains("--k") && e.contains("100000000") && e.contains("1000"),
            "{e}"
        );
        assert!(count("--k", 0, MAX_K).is_err());
        assert!(count("--k", 10, MAX_K).is_ok());
        assert!(weight("--weights", f64::NAN, 0.0, 1.0).is_err());
        assert!(weight("--weights", -1.0, 0.0, 1.0).is_err());
        let e = product("header", &[usize::MAX, 3], 1 << 31)
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
        assert_eq!(product("h", &[2, 3, 4], 100).unwrap(), 24);
    }

    #[test]
    fn model_size_of_the_presets_is_within_bounds() {
        // mnist_fc: K=14, H=1000, Dx=200, Dw=150, batch 50.
        assert!(check_model_size(false, 784, [200, 150, 14, 1000, 16, 50, 1]).is_ok());
        // svhn: conv, K=10, H=500, F=64, batch 128.
        assert!(check_model_size(true, 3072, [200, 150, 10, 500, 64, 128, 1]).is_ok());
        // Huge K x Dx x H is refused before anything is built.
        assert!(check_model_size(false, 784, [4096, 150, 1000, 16384, 16, 50, 1]).is_err());
        assert!(check_model_size(false, 2, [2, 2, 8, 100, 16, 1_000_000, 1000]).is_err());
    }

    #[test]
    fn labels_are_small_whole_numbers() {
        assert_eq!(label(3.0), Some(3));
        for bad in [-1.0, 0.5, 1e12, f64::NAN, f64::INFINITY, MAX_CLASSES as f64] {
            assert_eq!(label(bad), None, "{bad}");
        }
    }
}
