//! MNIST from the four original IDX files (raw or `.gz`), as upstream: pixels / 255 in [0, 1],
//! no binarisation; 60k training and 10k test images.

use super::{Dataset, Split};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where to get the files when they are missing.
pub const HOW_TO_GET: &str = "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from \
https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror; yann.lecun.com no longer \
serves them) into this directory, or pass --data-dir DIR";

/// Magic numbers of the IDX format: 0x00000803 (u8, 3 dims) and 0x00000801 (u8, 1 dim).
const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

/// Finds `stem` in `dir` under the names MNIST is distributed with (`train-images-idx3-ubyte`,
/// `train-images.idx3-ubyte`, each optionally `.gz`).
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    let candidates: Vec<PathBuf> = [stem, dotted.as_str()]
        .iter()
        .flat_map(|s| [dir.join(format!("{s}.gz")), dir.join(s)])
        .collect();
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    bail!(
        "MNIST file `{stem}` not found in {} (looked for {}): {HOW_TO_GET}",
        dir.display(),
        candidates
            .iter()
            .map(|p| p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Reads a whole file, inflating it if it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::limits::read_file(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        crate::limits::inflate(
            flate2::read::GzDecoder::new(&raw[..]),
            &path.display().to_string(),
        )
        .with_context(|| {
            format!(
                "{} is not a valid gzip file (corrupt or truncated download?)",
                path.display()
            )
        })
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX image file: returns (count, rows, cols, pixels).
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    if bytes.len() < 16 {
        bail!(
            "{}: {} bytes, too short for an IDX image header (16 bytes)",
            path.display(),
            bytes.len()
        );
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        bail!(
            "{}: wrong magic number {magic:#010x}, expected {IMAGES_MAGIC:#010x} (IDX u8 images); \
             is this an MNIST image file?",
            path.display()
        );
    }
    let (n, r, c) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    let want = crate::limits::product(
        &format!("{}: IDX header", path.display()),
        &[n, r, c],
        crate::limits::MAX_DATA_VALUES,
    )?;
    if bytes.len() - 16 != want {
        bail!(
            "{}: header says {n} images of {r}x{c} = {want} bytes of pixels, found {} \
             (truncated or corrupt file)",
            path.display(),
            bytes.len() - 16
        );
    }
    Ok((n, r, c, bytes[16..].to_vec()))
}

/// Parses an IDX label file.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if bytes.len() < 8 {
        bail!(
            "{}: {} bytes, too short for an IDX label header (8 bytes)",
            path.display(),
            bytes.len()
        );
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        bail!(
            "{}: wrong magic number {magic:#010x}, expected {LABELS_MAGIC:#010x} (IDX u8 labels); \
             is this an MNIST label file?",
            path.display()
        );
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() - 8 != n {
        bail!(
            "{}: header says {n} labels, found {} bytes (truncated or corrupt file)",
            path.display(),
            bytes.len() - 8
        );
    }
    if let Some(bad) = bytes[8..].iter().find(|&&l| l > 9) {
        bail!("{}: label {bad} is not a digit 0-9", path.display());
    }
    Ok(bytes[8..].to_vec())
}

fn load_split(dir: &Path, prefix: &str) -> Result<Split> {
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (n, r, c, px) = parse_images(&read_maybe_gz(&ip)?, &ip)?;
    if (r, c) != (28, 28) {
        bail!(
            "{}: images are {r}x{c}, MNIST images are 28x28",
            ip.display()
        );
    }
    let labels = parse_labels(&read_maybe_gz(&lp)?, &lp)?;
    if labels.len() != n {
        bail!(
            "{} has {n} images but {} has {} labels",
            ip.display(),
            lp.display(),
            labels.len()
        );
    }
    let y = px.iter().map(|&p| p as f32 / 255.0).collect();
    Split::new(y, Some(labels.into_iter().map(usize::from).collect()), 784)
}

/// Loads MNIST from `dir`. Rows are always the flat 784 pixels; the image shape 1x28x28 is kept
/// for the conv network (upstream `-inputDimension 2`), the samples grid and the plots.
pub fn load_dir(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!(
            "MNIST directory {} does not exist: {HOW_TO_GET}",
            dir.display()
        );
    }
    Ok(Dataset {
        name: "mnist".into(),
        dy: 784,
        image_shape: Some([1, 28, 28]),
        train: load_split(dir, "train")?,
        test: Some(load_split(dir, "t10k")?),
    })
}

/// Writes IDX files (for tests and small fixtures): images `[n, rows, cols]` u8 and labels.
pub fn write_idx(
    dir: &Path,
    prefix: &str,
    images: &[u8],
    rows: usize,
    cols: usize,
    labels: &[u8],
    gz: bool,
) -> Result<()> {
    let mut im = Vec::new();
    for v in [IMAGES_MAGIC, labels.len() as u32, rows as u32, cols as u32] {
        im.extend(v.to_be_bytes());
    }
    im.extend(images);
    let mut lb = Vec::new();
    for v in [LABELS_MAGIC, labels.len() as u32] {
        lb.extend(v.to_be_bytes());
    }
    lb.extend(labels);
    for (name, bytes) in [("images-idx3-ubyte", im), ("labels-idx1-ubyte", lb)] {
        let suffix = if gz { ".gz" } else { "" };
        let path = dir.join(format!("{prefix}-{name}{suffix}"));
        let bytes = if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &bytes)?;
            e.finish()?
        } else {
            bytes
        };
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
