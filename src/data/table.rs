//! Your own data: an N x D table of real numbers from CSV/TSV (header optional), whitespace text,
//! `.npy` (f32/f64, C order) or safetensors (one 2-D tensor), with an optional label column, a
//! seeded held-out split, and a scaling fitted on the training rows and stored with the model so
//! that `gmvae predict` applies the same.
//!
//! Text and `.npy` files are read in batches of rows ([`TableReader`]), so prediction streams a
//! file larger than memory; training reads the whole table.

use super::{npy, Dataset, Split};
use crate::options::{Layer, Options};
use crate::rng::{self, stream};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// How values are scaled before the network sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// `none` when every training value is already in [0, 1], else `standardize`.
    #[default]
    Auto,
    None,
    /// (v - min) / (max - min) per column, from the training rows.
    Minmax,
    /// (v - mean) / std per column, from the training rows.
    Standardize,
}

/// The likelihood p(y|x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LikelihoodChoice {
    /// Bernoulli when every scaled training value is in [0, 1], else Gaussian.
    #[default]
    Auto,
    Bernoulli,
    Gaussian,
}

/// A fitted per-column affine scaling `(v - shift) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// `none`, `minmax` or `standardize` (never `auto`).
    pub kind: Scale,
    pub shift: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Scaler {
    /// The identity on `d` columns.
    pub fn identity(d: usize) -> Self {
        Self {
            kind: Scale::None,
            shift: vec![0.0; d],
            scale: vec![1.0; d],
        }
    }

    /// Fits `kind` on row-major `y` with `d` columns. A constant column gets scale 1.
    pub fn fit(kind: Scale, y: &[f32], d: usize) -> Self {
        let n = (y.len() / d).max(1) as f64;
        let col = |j: usize| y.iter().skip(j).step_by(d).map(|&v| v as f64);
        let (shift, scale): (Vec<f64>, Vec<f64>) = match kind {
            Scale::Auto | Scale::None => return Self::identity(d),
            Scale::Minmax => (0..d)
                .map(|j| {
                    let lo = col(j).fold(f64::INFINITY, f64::min);
                    let hi = col(j).fold(f64::NEG_INFINITY, f64::max);
                    (lo, hi - lo)
                })
                .unzip(),
            Scale::Standardize => (0..d)
                .map(|j| {
                    let mean = col(j).sum::<f64>() / n;
                    let var = col(j).map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    (mean, var.sqrt())
                })
                .unzip(),
        };
        Self {
            kind,
            shift: shift.iter().map(|&v| v as f32).collect(),
            scale: scale
                .iter()
                .map(|&s| if s > 1e-12 { s as f32 } else { 1.0 })
                .collect(),
        }
    }

    /// Scales row-major rows in place.
    pub fn apply(&self, y: &mut [f32]) {
        let d = self.shift.len();
        for (i, v) in y.iter_mut().enumerate() {
            *v = (*v - self.shift[i % d]) / self.scale[i % d];
        }
    }

    /// Undoes [`Scaler::apply`].
    pub fn invert(&self, y: &mut [f32]) {
        let d = self.shift.len();
        for (i, v) in y.iter_mut().enumerate() {
            *v = *v * self.scale[i % d] + self.shift[i % d];
        }
    }
}

/// What training found out about the table: stored in `opts.json` and `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub scaler: Scaler,
    /// `bernoulli` or `gaussian` (never `auto`).
    pub likelihood: LikelihoodChoice,
    /// Names of the D feature columns, when the file had a header.
    pub columns: Option<Vec<String>>,
}

crate::options::decl::declare_options! {
    /// The table preset's own settings (part of [`Options`]), one row per setting as in
    /// [`Options`]' table.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct TableOptions;
    /// The table preset's flags (`gmvae table --help`).
    pub struct TableArgs;
    ids TableOpt, given TableGiven, layers Layer;
    fields {
        /// Column holding class labels (used only for scores; never trained on): a header name or a
        /// 0-based index. For safetensors, the name of a 1-D labels tensor.
        label_column: Option<String> = { main: None }
            => 0 some String [.value_name("NAME|INDEX")];
        /// Safetensors: the 2-D data tensor (default: the file's only 2-D tensor).
        tensor: Option<String> = { main: None } => 10 some String;
        /// Scaling fitted on the training rows and stored with the model [default: auto = none when
        /// every value is in [0,1], else standardize].
        scale: Scale = { main: Scale::Auto } => 20 set Scale;
        /// Likelihood p(y|x) [default: auto = bernoulli when every scaled value is in [0,1], else
        /// gaussian].
        likelihood: LikelihoodChoice = { main: LikelihoodChoice::Auto } => 30 set LikelihoodChoice;
        /// Share of rows held out (seeded by --seed) for the test scores.
        // 0: evaluate on the training rows.
        test_fraction: f64 = { main: 0.0 } => 40 set f64;
        /// What training found out about the table.
        fitted: Option<Fitted> = { main: None };
    }
    flags {}
}

impl Default for TableOptions {
    fn default() -> Self {
        Self::main_layer()
    }
}

impl TableOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.test_fraction) {
            bail!(
                "--test-fraction must be in [0, 1), found {}",
                self.test_fraction
            );
        }
        Ok(())
    }
}

impl TableArgs {
    /// Puts these flags on top of `o.table` (the shared flags that mean nothing for a table were
    /// refused already, by `TrainArgs::resolve`).
    pub fn apply(&self, o: &mut Options) -> Result<()> {
        let t = o.table.get_or_insert_with(TableOptions::default);
        t.set_given(self.given(), |_| true);
        o.validate()
    }
}

/// Input file formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    /// Any run of spaces/tabs separates values (`.txt`, `.dat`, anything else).
    Whitespace,
    Npy,
    Safetensors,
}

impl Format {
    pub fn of(path: &Path) -> Self {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "npy" => Format::Npy,
            "safetensors" => Format::Safetensors,
            _ => Format::Whitespace,
        }
    }
}

/// Splits one text line into fields; CSV/TSV fields may be double-quoted.
fn split_fields(line: &str, format: Format) -> Vec<String> {
    let sep = match format {
        Format::Csv => ',',
        Format::Tsv => '\t',
        _ => return line.split_whitespace().map(str::to_string).collect(),
    };
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => fields.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    fields.push(cur.trim().to_string());
    fields
}

/// A batch of rows: values of the D feature columns (row-major) and, when there is a label
/// column, each row's label as written in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub y: Vec<f32>,
    pub labels: Option<Vec<String>>,
    pub rows: usize,
}

enum Source {
    Text {
        lines: std::io::Lines<BufReader<File>>,
        format: Format,
        /// 1-based number of the last line read.
        line_no: usize,
        /// The first data line, when it was read to look for a header.
        pending: Option<(usize, String)>,
        width: usize,
    },
    Npy {
        r: BufReader<File>,
        header: npy::Header,
        left: usize,
    },
    Memory {
        batch: Batch,
        at: usize,
    },
}

/// Reads a table file in batches of rows.
pub struct TableReader {
    path: PathBuf,
    source: Source,
    /// Number of feature columns D.
    pub d: usize,
    /// Names of the feature columns, when there is a header.
    pub columns: Option<Vec<String>>,
    /// Column (text, npy) of the labels among all columns; `usize::MAX` for a separate tensor.
    label_idx: Option<usize>,
    /// The label column's name (or index) as the user gave it.
    pub label_name: Option<String>,
    rows_read: usize,
    bytes_read: u64,
    /// Size of the file in bytes (for progress).
    pub file_len: u64,
}

fn describe_column(j: usize, names: Option<&[String]>) -> String {
    match names.and_then(|n| n.get(j)) {
        Some(name) => format!("column {j} (`{name}`, counting from 0)"),
        None => format!("column {j} (counting from 0)"),
    }
}

/// Parses one number; NaN/inf and non-numbers are errors naming file, line and column.
fn parse_value(s: &str, at: &dyn Fn() -> String) -> Result<f32> {
    let v: f64 = s.parse().map_err(|_| {
        if s.is_empty() {
            anyhow::anyhow!(
                "{}: empty field (missing value; impute or drop the row)",
                at()
            )
        } else {
            anyhow::anyhow!(
                "{}: expected a number, found `{s}` (a label column? name it with --label-column)",
                at()
            )
        }
    })?;
    if !v.is_finite() {
        bail!(
            "{}: value `{s}` is not finite (impute or drop the row)",
            at()
        );
    }
    Ok(v as f32)
}

impl TableReader {
    /// Opens `path`; `label` names the label column (header name or 0-based index), `tensor`
    /// the safetensors data tensor.
    pub fn open(path: &Path, label: Option<&str>, tensor: Option<&str>) -> Result<Self> {
        let file_len = std::fs::metadata(path)
            .with_context(|| format!("cannot read table file {}", path.display()))?
            .len();
        let mut r = Self {
            path: path.to_path_buf(),
            source: Source::Memory {
                batch: Batch::default(),
                at: 0,
            },
            d: 0,
            columns: None,
            label_idx: None,
            label_name: label.map(str::to_string),
            rows_read: 0,
            bytes_read: 0,
            file_len,
        };
        match Format::of(path) {
            Format::Npy => r.open_npy(label)?,
            Format::Safetensors => r.open_safetensors(label, tensor)?,
            f => r.open_text(f, label)?,
        }
        if r.d == 0 {
            bail!(
                "{}: no feature columns left besides the label column",
                path.display()
            );
        }
        Ok(r)
    }

    fn label_index(&self, spec: &str, width: usize, names: Option<&[String]>) -> Result<usize> {
        if let Some(j) = names.and_then(|n| n.iter().position(|c| c == spec)) {
            return Ok(j);
        }
        match spec.parse::<usize>() {
            Ok(j) if j < width => Ok(j),
            Ok(j) => bail!(
                "{}: --label-column {j} is out of range: the file has {width} columns (0..{})",
                self.path.display(),
                width - 1
            ),
            Err(_) => match names {
                Some(n) => bail!(
                    "{}: no column named `{spec}` (columns: {})",
                    self.path.display(),
                    n.join(", ")
                ),
                None => bail!(
                    "{}: --label-column `{spec}` is a name but the file has no header row; give \
                     the label column's 0-based index instead",
                    self.path.display()
                ),
            },
        }
    }

    fn open_text(&mut self, format: Format, label: Option<&str>) -> Result<()> {
        let f = File::open(&self.path)
            .with_context(|| format!("cannot open table file {}", self.path.display()))?;
        let mut lines = BufReader::new(f).lines();
        let mut line_no = 0;
        let first = loop {
            match lines.next() {
                None => bail!("{}: no data rows", self.path.display()),
                Some(l) => {
                    let l = l.with_context(|| format!("cannot read {}", self.path.display()))?;
                    line_no += 1;
                    self.bytes_read += l.len() as u64 + 1;
                    let t = l.trim_start_matches('\u{feff}').trim();
                    if !t.is_empty() && !t.starts_with('#') {
                        break t.to_string();
                    }
                }
            }
        };
        let fields = split_fields(&first, format);
        let width = fields.len();
        // A header is a first line with a label name, or with any non-number among the features.
        let by_name = label.is_some_and(|l| fields.iter().any(|f| f == l));
        let label_idx = match label {
            Some(l) if by_name => fields.iter().position(|f| f == l),
            Some(l) => match l.parse::<usize>() {
                Ok(_) => Some(self.label_index(l, width, None)?),
                Err(_) => None,
            },
            None => None,
        };
        let header = by_name
            || fields
                .iter()
                .enumerate()
                .any(|(j, f)| Some(j) != label_idx && f.parse::<f64>().is_err());
        let names = header.then(|| fields.clone());
        self.label_idx = match label {
            Some(l) => Some(self.label_index(l, width, names.as_deref())?),
            None => None,
        };
        self.columns = names.map(|n| {
            n.into_iter()
                .enumerate()
                .filter(|(j, _)| Some(*j) != self.label_idx)
                .map(|(_, c)| c)
                .collect()
        });
        self.d = width - usize::from(self.label_idx.is_some());
        self.source = Source::Text {
            lines,
            format,
            line_no,
            pending: (!header).then_some((line_no, first)),
            width,
        };
        Ok(())
    }

    fn open_npy(&mut self, label: Option<&str>) -> Result<()> {
        let f = File::open(&self.path)
            .with_context(|| format!("cannot open table file {}", self.path.display()))?;
        let mut r = BufReader::new(f);
        let header = npy::read_header(&mut r, &self.path)?;
        let need = header.rows as u64 * header.cols as u64 * header.dtype.width() as u64;
        if self.file_len < need {
            bail!(
                "{}: truncated: the header promises {} x {} values",
                self.path.display(),
                header.rows,
                header.cols
            );
        }
        self.bytes_read = self.file_len - need;
        self.label_idx = label
            .map(|l| self.label_index(l, header.cols, None))
            .transpose()?;
        self.d = header.cols - usize::from(self.label_idx.is_some());
        self.source = Source::Npy {
            r,
            left: header.rows,
            header,
        };
        Ok(())
    }

    fn open_safetensors(&mut self, label: Option<&str>, tensor: Option<&str>) -> Result<()> {
        use candle_core::{DType, Device};
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("cannot read table file {}", self.path.display()))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .with_context(|| format!("{} is not a safetensors file", self.path.display()))?;
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        let listing = || {
            names
                .iter()
                .map(|n| format!("{n} {:?}", tensors[*n].dims()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let data_name = match tensor {
            Some(t) => t.to_string(),
            None => {
                let two_d: Vec<&&String> =
                    names.iter().filter(|n| tensors[**n].rank() == 2).collect();
                match two_d[..] {
                    [one] => (*one).clone(),
                    _ => bail!(
                        "{}: expected exactly one 2-D tensor (or name it with --tensor); found {}",
                        self.path.display(),
                        listing()
                    ),
                }
            }
        };
        let t = tensors.get(&data_name).with_context(|| {
            format!(
                "{}: no tensor `{data_name}` (found {})",
                self.path.display(),
                listing()
            )
        })?;
        let (n, d) = t.dims2().with_context(|| {
            format!(
                "{}: tensor `{data_name}` must be 2-D (N x D), found {:?}",
                self.path.display(),
                t.dims()
            )
        })?;
        let y: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        for (i, v) in y.iter().enumerate() {
            if !v.is_finite() {
                bail!(
                    "{}: tensor `{data_name}` row {} column {} is {v} (impute or drop the row)",
                    self.path.display(),
                    i / d,
                    i % d
                );
            }
        }
        let labels = match label {
            None => None,
            Some(l) => {
                let lt = tensors.get(l).with_context(|| {
                    format!(
                        "{}: no labels tensor `{l}` (found {})",
                        self.path.display(),
                        listing()
                    )
                })?;
                let lv: Vec<f64> = lt.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
                if lt.rank() != 1 || lv.len() != n {
                    bail!(
                        "{}: labels tensor `{l}` must be 1-D with {n} entries, found {:?}",
                        self.path.display(),
                        lt.dims()
                    );
                }
                self.label_idx = Some(usize::MAX);
                Some(lv.iter().map(|v| format_label(*v)).collect())
            }
        };
        self.d = d;
        self.bytes_read = self.file_len;
        self.source = Source::Memory {
            batch: Batch { y, labels, rows: n },
            at: 0,
        };
        Ok(())
    }

    /// Rows already in memory (e.g. decoded images), read through the same interface.
    pub fn from_rows(path: &Path, y: Vec<f32>, d: usize) -> Result<Self> {
        let split = Split::new(y, None, d)?;
        Ok(Self {
            path: path.to_path_buf(),
            source: Source::Memory {
                batch: Batch {
                    y: split.y,
                    labels: None,
                    rows: split.n,
                },
                at: 0,
            },
            d,
            columns: None,
            label_idx: None,
            label_name: None,
            rows_read: 0,
            bytes_read: 0,
            file_len: 0,
        })
    }

    /// Whether rows carry labels.
    pub fn has_labels(&self) -> bool {
        self.label_idx.is_some()
    }

    /// Bytes of the file consumed so far (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Total rows when the format says so up front.
    pub fn total_rows(&self) -> Option<usize> {
        match &self.source {
            Source::Text { .. } => None,
            Source::Npy { header, .. } => Some(header.rows),
            Source::Memory { batch, .. } => Some(batch.rows),
        }
    }

    /// Up to `max` further rows; `None` at the end of the file.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let mut b = Batch {
            labels: self.label_idx.map(|_| Vec::new()),
            ..Batch::default()
        };
        let d = self.d;
        let label_idx = self.label_idx;
        let path = self.path.clone();
        match &mut self.source {
            Source::Text {
                lines,
                format,
                line_no,
                pending,
                width,
            } => {
                while b.rows < max {
                    let (no, line) = match pending.take() {
                        Some(p) => p,
                        None => match lines.next() {
                            None => break,
                            Some(l) => {
                                let l =
                                    l.with_context(|| format!("cannot read {}", path.display()))?;
                                *line_no += 1;
                                self.bytes_read += l.len() as u64 + 1;
                                (*line_no, l)
                            }
                        },
                    };
                    let t = line.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    let fields = split_fields(t, *format);
                    if fields.len() != *width {
                        bail!(
                            "{}:{no}: expected {width} fields (as the first row), found {}",
                            path.display(),
                            fields.len()
                        );
                    }
                    let mut feature = 0;
                    for (j, f) in fields.into_iter().enumerate() {
                        if Some(j) == label_idx {
                            if f.is_empty() {
                                bail!("{}:{no}: empty label (column {j})", path.display());
                            }
                            b.labels.as_mut().expect("label vector").push(f);
                        } else {
                            let names = self.columns.as_deref();
                            b.y.push(parse_value(&f, &|| {
                                format!(
                                    "{}:{no}: {}",
                                    path.display(),
                                    describe_column(feature, names)
                                )
                            })?);
                            feature += 1;
                        }
                    }
                    b.rows += 1;
                }
            }
            Source::Npy { r, header, left } => {
                use std::io::Read;
                let rows = max.min(*left);
                let w = header.dtype.width();
                let mut bytes = vec![0u8; rows * header.cols * w];
                r.read_exact(&mut bytes)
                    .with_context(|| format!("{}: truncated data", path.display()))?;
                self.bytes_read += bytes.len() as u64;
                for (i, row) in bytes.chunks(header.cols * w).enumerate() {
                    for (j, v) in row.chunks(w).enumerate() {
                        let v = header.value(v);
                        if Some(j) == label_idx {
                            b.labels
                                .as_mut()
                                .expect("label vector")
                                .push(format_label(v));
                        } else if !v.is_finite() {
                            bail!(
                                "{}: row {} column {j} (counting from 0) is {v} (impute or drop the row)",
                                path.display(),
                                self.rows_read + i
                            );
                        } else {
                            b.y.push(v as f32);
                        }
                    }
                }
                *left -= rows;
                b.rows = rows;
            }
            Source::Memory { batch, at } => {
                let rows = max.min(batch.rows - *at);
                b.y = batch.y[*at * d..(*at + rows) * d].to_vec();
                if let (Some(l), Some(all)) = (&mut b.labels, &batch.labels) {
                    l.extend_from_slice(&all[*at..*at + rows]);
                }
                *at += rows;
                b.rows = rows;
            }
        }
        self.rows_read += b.rows;
        Ok((b.rows > 0).then_some(b))
    }

    /// Reads every remaining row.
    pub fn read_all(&mut self) -> Result<Batch> {
        let mut all = Batch {
            labels: self.label_idx.map(|_| Vec::new()),
            ..Batch::default()
        };
        while let Some(b) = self.next_batch(65_536)? {
            all.y.extend(b.y);
            if let (Some(a), Some(l)) = (&mut all.labels, b.labels) {
                a.extend(l);
            }
            all.rows += b.rows;
        }
        if all.rows == 0 {
            bail!("{}: no data rows", self.path.display());
        }
        Ok(all)
    }
}

/// A numeric label as text (integers without a fraction).
fn format_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Dense class indices for labels as written: numeric labels in numeric order, others sorted as
/// text. Returns the indices and the class names in index order.
pub fn label_indices(labels: &[String]) -> (Vec<usize>, Vec<String>) {
    let mut classes: Vec<String> = labels.to_vec();
    let numeric: Option<Vec<f64>> = classes.iter().map(|l| l.parse::<f64>().ok()).collect();
    if numeric.is_some() {
        classes.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
        });
    } else {
        classes.sort();
    }
    classes.dedup();
    let index: std::collections::HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    (labels.iter().map(|l| index[l.as_str()]).collect(), classes)
}

/// Rows `idx` of row-major `y` with `d` columns.
fn rows_of(y: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| y[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// Loads the table `opts` names: splits off the held-out rows (seeded), fits the scaling on the
/// training rows and applies it to both, and settles `auto` choices. Returns the data set and
/// `opts` with the likelihood (`continuous`) and `table.fitted` filled in.
pub fn load(opts: &Options) -> Result<(Dataset, Options)> {
    let path = opts
        .data
        .as_ref()
        .context("the table preset needs --data FILE")?;
    let t = opts.table.clone().unwrap_or_default();
    t.validate()?;
    let mut reader = TableReader::open(path, t.label_column.as_deref(), t.tensor.as_deref())?;
    let d = reader.d;
    let all = reader.read_all()?;
    let n = all.rows;
    let labels = all.labels.as_ref().map(|l| label_indices(l));
    let n_test = if t.test_fraction > 0.0 {
        ((n as f64 * t.test_fraction).round() as usize).clamp(1, n.saturating_sub(2))
    } else {
        0
    };
    if n < 3 && n_test > 0 {
        bail!("{}: {n} rows are too few to hold any out", path.display());
    }
    let perm = rng::permutation(&mut rng::rng(opts.seed, stream::DATA), n);
    let (mut test_idx, mut train_idx) = (perm[..n_test].to_vec(), perm[n_test..].to_vec());
    // File order within each split, so predictions line up with the file's rows.
    test_idx.sort_unstable();
    train_idx.sort_unstable();
    if let Some(m) = opts.train_size {
        train_idx.truncate(m);
    }
    let mut y_train = rows_of(&all.y, d, &train_idx);
    let scale = match t.scale {
        Scale::Auto if y_train.iter().all(|v| (0.0..=1.0).contains(v)) => Scale::None,
        Scale::Auto => Scale::Standardize,
        s => s,
    };
    let scaler = Scaler::fit(scale, &y_train, d);
    scaler.apply(&mut y_train);
    let likelihood = match t.likelihood {
        LikelihoodChoice::Auto if y_train.iter().all(|v| (0.0..=1.0).contains(v)) => {
            LikelihoodChoice::Bernoulli
        }
        LikelihoodChoice::Auto => LikelihoodChoice::Gaussian,
        l => l,
    };
    let pick = |idx: &[usize]| {
        labels
            .as_ref()
            .map(|(l, _)| idx.iter().map(|&i| l[i]).collect())
    };
    let train = Split::new(y_train, pick(&train_idx), d)?;
    let test = if n_test > 0 {
        let mut y = rows_of(&all.y, d, &test_idx);
        scaler.apply(&mut y);
        Some(Split::new(y, pick(&test_idx), d)?)
    } else {
        None
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    let lower = |s: &dyn std::fmt::Debug| format!("{s:?}").to_lowercase();
    // Without labels, training says once that there are no scores.
    println!(
        "table: {} has {n} rows x {d} feature columns{}",
        path.display(),
        match &labels {
            Some((_, classes)) => format!(
                "; labels from column `{}` ({} classes, scores only)",
                t.label_column.as_deref().unwrap_or_default(),
                classes.len()
            ),
            None => String::new(),
        }
    );
    println!(
        "table: {} training rows, {n_test} held out (--test-fraction {}, seed {}); scaling {}{}; \
         likelihood {}{}",
        train.n,
        t.test_fraction,
        opts.seed,
        lower(&scale),
        if t.scale == Scale::Auto {
            " (auto: by the value range)"
        } else {
            ""
        },
        lower(&likelihood),
        if t.likelihood == LikelihoodChoice::Auto {
            if likelihood == LikelihoodChoice::Bernoulli {
                " (auto: every scaled value is in [0,1])"
            } else {
                " (auto: scaled values outside [0,1])"
            }
        } else {
            ""
        }
    );
    let mut fitted = opts.clone();
    fitted.continuous = likelihood == LikelihoodChoice::Gaussian;
    fitted.table = Some(TableOptions {
        fitted: Some(Fitted {
            scaler,
            likelihood,
            columns: reader.columns.clone(),
        }),
        ..t
    });
    Ok((
        Dataset {
            name,
            dy: d,
            image_shape: None,
            train,
            test,
        },
        fitted,
    ))
}
