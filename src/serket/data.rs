//! Text matrices as Serket reads and writes them (`np.loadtxt` / `np.savetxt`), and the
//! tutorial data set: 3000 MNIST images paired with spoken-digit HAC counts, read straight from
//! `VAE+GMM+MLDA/data.zip` (never unpacked: two members are over 50 MB).

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A dense row-major `rows x cols` matrix of `f64`: the messages modules exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major values; errors when the count is not `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * cols {
            bail!("{} values cannot fill a {rows} x {cols} matrix", data.len());
        }
        Ok(Self { rows, cols, data })
    }

    /// A matrix with every entry `v`.
    pub fn filled(rows: usize, cols: usize, v: f64) -> Self {
        Self {
            rows,
            cols,
            data: vec![v; rows * cols],
        }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The values as `f32` (for candle tensors and the shared metrics).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// Parses a whitespace-separated text matrix (LF or CRLF, blank lines skipped). `name` is the
/// file name used in errors, which give the 1-based line and, for bad numbers, the column.
pub fn parse_matrix(text: &str, name: &str) -> Result<Matrix> {
    let mut data = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut n = 0;
        for (j, tok) in line.split_ascii_whitespace().enumerate() {
            let v: f64 = tok.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{name}, line {line_no}, column {}: expected a number, found {tok:?}",
                    j + 1
                )
            })?;
            if !v.is_finite() {
                bail!(
                    "{name}, line {line_no}, column {}: {tok:?} is not a finite number",
                    j + 1
                );
            }
            data.push(v);
            n += 1;
        }
        if n == 0 {
            continue;
        }
        match cols {
            None => cols = Some(n),
            Some(c) if c != n => {
                bail!(
                    "{name}, line {line_no}: expected {c} values (as on the first row), found {n}"
                )
            }
            _ => {}
        }
        rows += 1;
    }
    let Some(cols) = cols else {
        bail!("{name}: no numbers found (empty file?)")
    };
    Matrix::new(rows, cols, data)
}

/// Reads a whitespace-separated text matrix from `path`.
pub fn read_matrix(path: &Path) -> Result<Matrix> {
    let text = crate::limits::read_text(path)
        .with_context(|| format!("cannot read matrix file {}", path.display()))?;
    parse_matrix(&text, &path.display().to_string())
}

/// Class labels from a one-column matrix of non-negative integers (`category.txt`, stored as
/// `%.18e` floats upstream).
pub fn labels_from_matrix(m: &Matrix, name: &str) -> Result<Vec<usize>> {
    if m.cols != 1 {
        bail!(
            "{name}: expected one label per line, found {} columns",
            m.cols
        );
    }
    m.data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            crate::limits::label(v).with_context(|| {
                format!(
                    "{name}, row {}: expected a class index in 0..{}, found {v}",
                    i + 1,
                    crate::limits::MAX_CLASSES
                )
            })
        })
        .collect()
}

/// Reads labels from a text file (one per line).
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    let m = read_matrix(path)?;
    labels_from_matrix(&m, &path.display().to_string())
}

/// Reads member `member` of the zip archive `zip_path` as a text matrix.
pub fn read_zip_matrix(zip_path: &Path, member: &str) -> Result<Matrix> {
    let name = format!("{}:{member}", zip_path.display());
    let text = read_zip_text(zip_path, member)?;
    parse_matrix(&text, &name)
}

fn read_zip_text(zip_path: &Path, member: &str) -> Result<String> {
    if !zip_path.exists() {
        anyhow::bail!(
            "zip archive {} does not exist: {ZIP_HOW_TO_GET}",
            zip_path.display()
        );
    }
    crate::limits::input_file(zip_path, crate::limits::MAX_FILE_BYTES)?;
    let file = std::fs::File::open(zip_path)
        .with_context(|| format!("cannot open zip archive {}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a readable zip archive", zip_path.display()))?;
    let mut entry = archive
        .by_name(member)
        .with_context(|| format!("{} has no member {member}", zip_path.display()))?;
    // The member's size in the archive header is untrusted: read at most the bound.
    let name = format!("{}:{member}", zip_path.display());
    let bytes = crate::limits::inflate(&mut entry, &name)?;
    String::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))
}

/// Where a data matrix comes from: a text file, or a member of a zip archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Text(PathBuf),
    Zip { archive: PathBuf, member: String },
}

impl Source {
    /// `path` itself, or member `member` when `path` ends in `.zip`.
    pub fn from_path(path: &Path, member: &str) -> Self {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            Source::Zip {
                archive: path.to_path_buf(),
                member: member.to_string(),
            }
        } else {
            Source::Text(path.to_path_buf())
        }
    }

    /// Reads the matrix.
    pub fn read(&self) -> Result<Matrix> {
        match self {
            Source::Text(p) => read_matrix(p),
            Source::Zip { archive, member } => read_zip_matrix(archive, member),
        }
    }

    /// Reads one label per line.
    pub fn read_labels(&self) -> Result<Vec<usize>> {
        labels_from_matrix(&self.read()?, &self.to_string())
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Text(p) => write!(f, "{}", p.display()),
            Source::Zip { archive, member } => write!(f, "{}:{member}", archive.display()),
        }
    }
}

/// Members of the tutorial's `data.zip`.
pub const ZIP_IMAGES: &str = "data/data1.txt";
pub const ZIP_SPEECH: &str = "data/data2.txt";
pub const ZIP_CATEGORY: &str = "data/category.txt";

/// Where to get the tutorial archive when it is missing.
pub const ZIP_HOW_TO_GET: &str = "download the Serket tutorials' data.zip from \
https://github.com/naka-lab/Serket/raw/master/examples/VAE+GMM+MLDA/data.zip (3,995,351 bytes) \
and pass its path with --data";

/// Default location of the tutorial archive, relative to the repository root.
pub const DEFAULT_ZIP: &str = "../shared/data/serket/VAE+GMM+MLDA/data.zip";

/// The 3000 images (pixels k/255, `3000 x 784`) and their digit labels from the tutorial's
/// `data.zip`: the data of both Serket pipelines, and of the GMVAE row of the comparison.
pub fn load_images(zip_path: &Path) -> Result<(Matrix, Vec<usize>)> {
    let images = read_zip_matrix(zip_path, ZIP_IMAGES)?;
    let labels = Source::from_path(zip_path, ZIP_CATEGORY).read_labels()?;
    check_rows(&[(ZIP_IMAGES, images.rows), (ZIP_CATEGORY, labels.len())])?;
    Ok((images, labels))
}

/// Images, speech HAC counts (`3000 x 2400`) and labels from the tutorial's `data.zip`.
pub fn load_images_speech(zip_path: &Path) -> Result<(Matrix, Matrix, Vec<usize>)> {
    let (images, labels) = load_images(zip_path)?;
    let speech = read_zip_matrix(zip_path, ZIP_SPEECH)?;
    check_rows(&[(ZIP_IMAGES, images.rows), (ZIP_SPEECH, speech.rows)])?;
    Ok((images, speech, labels))
}

/// Errors unless every named input has the same number of rows (one row per data point).
pub fn check_rows(inputs: &[(&str, usize)]) -> Result<()> {
    if let Some(&(first, n)) = inputs.first() {
        for &(name, m) in &inputs[1..] {
            if m != n {
                bail!("row counts disagree: {first} has {n} rows but {name} has {m}");
            }
        }
    }
    Ok(())
}

/// Number formats of `np.savetxt` used by Serket.
#[derive(Debug, Clone, Copy)]
pub enum Fmt {
    /// `%.18e`, numpy's default (latents, means).
    Exp18,
    /// `%f` (probabilities, likelihoods, accuracies).
    Fixed6,
    /// `%d` (class labels).
    Int,
}

/// Formats a matrix as `np.savetxt` does: space-separated, one row per line.
pub fn format_matrix(m: &Matrix, fmt: Fmt) -> String {
    let mut s = String::with_capacity(m.data.len() * 12);
    for i in 0..m.rows {
        for (j, &v) in m.row(i).iter().enumerate() {
            if j > 0 {
                s.push(' ');
            }
            push_num(&mut s, v, fmt);
        }
        s.push('\n');
    }
    s
}

/// Formats a vector one value per line.
pub fn format_column(v: &[f64], fmt: Fmt) -> String {
    let mut s = String::new();
    for &x in v {
        push_num(&mut s, x, fmt);
        s.push('\n');
    }
    s
}

fn push_num(s: &mut String, v: f64, fmt: Fmt) {
    let _ = match fmt {
        Fmt::Exp18 => {
            // Rust prints `1.5e-3`; numpy prints `1.500000000000000000e-03`.
            let t = format!("{v:.18e}");
            match t.split_once('e') {
                Some((mant, exp)) => {
                    let (sign, digits) = match exp.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', exp),
                    };
                    write!(s, "{mant}e{sign}{digits:0>2}")
                }
                None => write!(s, "{t}"),
            }
        }
        Fmt::Fixed6 => write!(s, "{v:.6}"),
        Fmt::Int => write!(s, "{}", v.round() as i64),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savetxt_exponent_format() {
        let m = Matrix::new(1, 3, vec![0.0015, -2.0, 0.0]).unwrap();
        let s = format_matrix(&m, Fmt::Exp18);
        assert_eq!(
            s,
            "1.500000000000000031e-03 -2.000000000000000000e+00 0.000000000000000000e+00\n"
        );
        let back = parse_matrix(&s, "x").unwrap();
        assert_eq!(back.data, m.data);
    }
}
