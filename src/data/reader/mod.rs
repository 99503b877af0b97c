//! One reader for every table format a user may hand us: CSV/TSV (header optional, fields
//! may be double-quoted), whitespace-separated text, `.npy` (f32/f64, C order) and safetensors
//! (one 2-D tensor). `gmvae table`, `gmvae predict` and `gmvae serket --data` all read through
//! [`TableReader`]. Text and `.npy` files are read in batches of rows, so prediction streams a
//! file larger than memory; the formats live in their own modules.

mod npy_rows;
mod safetensors;
mod text;

use crate::data::Split;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// A batch of rows: values of the D feature columns (row-major) and, when there is a label
/// column, each row's label as written in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub y: Vec<f32>,
    pub labels: Option<Vec<String>>,
    pub rows: usize,
}

/// Where the rows come from: a format's own state.
enum Source {
    Text(text::TextRows),
    Npy(npy_rows::NpyRows),
    Memory { batch: Batch, at: usize },
}

/// Whether a text file's first line is a header (`--header`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Header {
    /// A header when it names every feature column (or holds the `--label-column` name); a
    /// line of numbers is data; a mix is an error.
    #[default]
    Auto,
    Yes,
    No,
}

/// How a text table is read: its header, and which lines are comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRules {
    pub header: Header,
    /// Lines starting with this are skipped (and counted in the log); empty: no comments.
    pub comment: String,
}

impl Default for TextRules {
    fn default() -> Self {
        Self {
            header: Header::Auto,
            comment: "#".into(),
        }
    }
}

impl TextRules {
    /// Whether trimmed line `t` is a comment.
    pub(super) fn is_comment(&self, t: &str) -> bool {
        !self.comment.is_empty() && t.starts_with(&self.comment)
    }
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
    /// Feature j of a row read is the file's feature `order[j]` (columns matched by name).
    order: Option<Vec<usize>>,
    /// Text: whether the first line was read as a header.
    header: Option<bool>,
    /// Text: the header and comment rules.
    rules: TextRules,
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
    as_f32(v).with_context(|| {
        format!(
            "{}: value `{s}` is beyond the range of a 32-bit float (about ±3.4e38); rescale the \
             column",
            at()
        )
    })
}

/// A finite `v` as a finite f32; `None` when it overflows f32 (training would see inf).
pub(crate) fn as_f32(v: f64) -> Option<f32> {
    let x = v as f32;
    x.is_finite().then_some(x)
}

impl TableReader {
    /// Opens `path`; `label` names the label column (header name or 0-based index), `tensor`
    /// the safetensors data tensor, `rules` how a text file's header and comments are read.
    pub fn open(
        path: &Path,
        label: Option<&str>,
        tensor: Option<&str>,
        rules: &TextRules,
    ) -> Result<Self> {
        // Checked before opening: opening a FIFO with no writer would block.
        let file_len = crate::limits::regular_file(path)?.len();
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
            order: None,
            header: None,
            rules: rules.clone(),
        };
        let format = Format::of(path);
        if tensor.is_some() && format != Format::Safetensors {
            bail!(
                "--tensor names a tensor of a .safetensors file; {} is not one",
                path.display()
            );
        }
        match format {
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

    /// The label column `spec` (a header name or a 0-based index) among `width` columns.
    pub(super) fn label_index(
        &self,
        spec: &str,
        width: usize,
        names: Option<&[String]>,
    ) -> Result<usize> {
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
            order: None,
            header: None,
            rules: TextRules::default(),
        })
    }

    /// What the reader decided about a text file so far, for the log: whether the first line
    /// is a header, and how many comment lines were skipped.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let why = match self.rules.header {
            Header::Auto => "",
            _ => ", --header",
        };
        match self.header {
            Some(true) => notes.push(format!("header: yes (first line has names{why})")),
            Some(false) => notes.push(format!("header: no (first line is numbers{why})")),
            None => {}
        }
        let comments = match &self.source {
            Source::Text(t) => t.comments,
            _ => 0,
        };
        if comments > 0 {
            notes.push(format!(
                "skipped {comments} comment line(s) starting with `{}` (--comment '' keeps them)",
                self.rules.comment
            ));
        }
        notes
    }

    /// Matches this file's named feature columns to `trained` (the training columns, in their
    /// order): the same names in another order are reordered to it (returns true), any other
    /// set of names is an error listing both.
    pub fn match_columns(&mut self, trained: &[String]) -> Result<bool> {
        let Some(names) = &self.columns else {
            return Ok(false);
        };
        if names == trained {
            return Ok(false);
        }
        let order: Option<Vec<usize>> = trained
            .iter()
            .map(|t| names.iter().position(|n| n == t))
            .collect();
        match order {
            Some(order) if names.len() == trained.len() => {
                self.order = Some(order);
                Ok(true)
            }
            _ => bail!(
                "{}: the feature columns are not the training columns: the file has {}; the \
                 model was trained on {}",
                self.path.display(),
                names.join(", "),
                trained.join(", ")
            ),
        }
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
            Source::Text(_) => None,
            Source::Npy(n) => Some(n.header.rows),
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
        let at = RowsAt {
            path: &self.path,
            label_idx: self.label_idx,
            columns: self.columns.as_deref(),
            rows_read: self.rows_read,
        };
        match &mut self.source {
            Source::Text(t) => self.bytes_read += t.next(&mut b, max, &at)?,
            Source::Npy(n) => self.bytes_read += n.next(&mut b, max, &at)?,
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
        if let Some(order) = &self.order {
            b.y =
                b.y.chunks(d)
                    .flat_map(|row| order.iter().map(move |&j| row[j]))
                    .collect();
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
pub(crate) fn format_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// What a format's row reader needs to know of the table to place and name values.
struct RowsAt<'a> {
    path: &'a Path,
    label_idx: Option<usize>,
    /// Feature column names (for messages).
    columns: Option<&'a [String]>,
    /// Rows read before this batch.
    rows_read: usize,
}
