//! CSV, TSV and whitespace-separated text tables.

use super::{
    describe_column, parse_value, Batch, Format, Header, RowsAt, Source, TableReader, TextRules,
};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader};

/// The state of a text table being read.
pub(super) struct TextRows {
    lines: std::io::Lines<BufReader<File>>,
    format: Format,
    /// 1-based number of the last line read.
    line_no: usize,
    /// The first data line, when it was read to look for a header.
    pending: Option<(usize, String)>,
    width: usize,
    /// Comment lines skipped so far.
    pub(super) comments: usize,
    /// Which lines are comments.
    rules: TextRules,
}

impl TableReader {
    pub(super) fn open_text(&mut self, format: Format, label: Option<&str>) -> Result<()> {
        let f = File::open(&self.path)
            .with_context(|| format!("cannot open table file {}", self.path.display()))?;
        let mut lines = BufReader::new(f).lines();
        let (mut line_no, mut comments) = (0, 0);
        let first = loop {
            match lines.next() {
                None => bail!("{}: no data rows", self.path.display()),
                Some(l) => {
                    let l = l.with_context(|| format!("cannot read {}", self.path.display()))?;
                    line_no += 1;
                    self.bytes_read += l.len() as u64 + 1;
                    if l.contains('\r') {
                        // `lines` splits on \n (and \r\n): the whole file would be one line.
                        bail!(
                            "{}:{line_no}: lines end in a bare carriage return (CR, old Mac \
                             style); convert the file to \\n line ends, e.g. tr '\\r' '\\n'",
                            self.path.display()
                        );
                    }
                    let t = l.trim_start_matches('\u{feff}').trim();
                    if self.rules.is_comment(t) {
                        comments += 1;
                    } else if !t.is_empty() {
                        break t.to_string();
                    }
                }
            }
        };
        let fields = split_fields(&first, format);
        let width = fields.len();
        // A label named in the first line makes it a header; a number there (`--label-column 2`
        // meeting a value 2) only when every other field is a name.
        let by_name = label.is_some_and(|l| {
            fields.iter().position(|f| f == l).is_some_and(|j| {
                l.parse::<f64>().is_err()
                    || fields.iter().enumerate().all(|(i, f)| i == j || is_name(f))
            })
        });
        let label_idx = match label {
            Some(l) if by_name => fields.iter().position(|f| f == l),
            Some(l) => match l.parse::<usize>() {
                Ok(_) => Some(self.label_index(l, width, None)?),
                Err(_) => None,
            },
            None => None,
        };
        // A label named but not found: label_index below says the file has no header.
        let unplaced = label.is_some() && label_idx.is_none();
        let header = match self.rules.header {
            Header::Yes => true,
            Header::No => false,
            Header::Auto => {
                by_name || is_header(&fields, label_idx, line_no, &self.path, unplaced)?
            }
        };
        self.header = Some(header);
        if header {
            check_unique(&fields, &self.path)?;
        }
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
        self.source = Source::Text(TextRows {
            lines,
            format,
            line_no,
            pending: (!header).then_some((line_no, first)),
            width,
            comments,
            rules: self.rules.clone(),
        });
        Ok(())
    }
}

impl TextRows {
    /// Reads up to `max` further rows into `b`; returns the bytes consumed.
    pub(super) fn next(&mut self, b: &mut Batch, max: usize, at: &RowsAt) -> Result<u64> {
        let path = at.path;
        let mut bytes = 0;
        while b.rows < max {
            let (no, line) = match self.pending.take() {
                Some(p) => p,
                None => match self.lines.next() {
                    None => break,
                    Some(l) => {
                        let l = l.with_context(|| format!("cannot read {}", path.display()))?;
                        self.line_no += 1;
                        bytes += l.len() as u64 + 1;
                        (self.line_no, l)
                    }
                },
            };
            let t = line.trim();
            let comment = self.rules.is_comment(t);
            self.comments += usize::from(comment);
            if t.is_empty() || comment {
                continue;
            }
            let fields = split_fields(t, self.format);
            if fields.len() != self.width {
                bail!(
                    "{}:{no}: expected {} fields (as the first row), found {}",
                    path.display(),
                    self.width,
                    fields.len()
                );
            }
            let mut feature = 0;
            for (j, f) in fields.into_iter().enumerate() {
                if Some(j) == at.label_idx {
                    if f.is_empty() {
                        bail!("{}:{no}: empty label (column {j})", path.display());
                    }
                    b.labels.as_mut().expect("label vector").push(f);
                } else {
                    b.y.push(parse_value(&f, &|| {
                        format!(
                            "{}:{no}: {}",
                            path.display(),
                            describe_column(feature, at.columns)
                        )
                    })?);
                    feature += 1;
                }
            }
            b.rows += 1;
        }
        Ok(bytes)
    }
}

/// Whether the first line `fields` is a header: names (non-empty, non-numeric) for every column
/// but the label column. A line of numbers (or empty fields) is data; a mix is refused, since
/// a missing value (`NA`, an empty field) must not turn the first row into column names.
fn is_header(
    fields: &[String],
    label_idx: Option<usize>,
    line_no: usize,
    path: &std::path::Path,
    unplaced_label: bool,
) -> Result<bool> {
    let features = || {
        fields
            .iter()
            .enumerate()
            .filter(move |(j, _)| Some(*j) != label_idx)
    };
    if features().all(|(_, f)| is_name(f)) {
        return Ok(true);
    }
    if let Some((j, f)) = features()
        .find(|(_, f)| is_name(f))
        .filter(|_| !unplaced_label)
    {
        let (other, _) = features().find(|(_, f)| !is_name(f)).expect("a mix");
        bail!(
            "{}:{line_no}: the first line is neither a header (a name for every column) nor a row \
             of numbers: column {j} is `{f}` but column {other} is `{}` (a missing value? a \
             label column? name it with --label-column)",
            path.display(),
            fields[other]
        );
    }
    Ok(false)
}

/// A header field: not empty, not a number.
fn is_name(f: &str) -> bool {
    !f.is_empty() && f.parse::<f64>().is_err()
}

/// Header names must be unique: a label or feature named twice would be taken ambiguously.
fn check_unique(fields: &[String], path: &std::path::Path) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    let mut dup = Vec::new();
    for (j, f) in fields.iter().enumerate() {
        if let Some(i) = seen.insert(f.as_str(), j) {
            dup.push(format!("`{f}` (columns {i} and {j})"));
        }
    }
    if !dup.is_empty() {
        bail!(
            "{}: the header names a column twice: {}; rename them",
            path.display(),
            dup.join(", ")
        );
    }
    Ok(())
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
