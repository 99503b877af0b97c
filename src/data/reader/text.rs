//! CSV, TSV and whitespace-separated text tables.

use super::{describe_column, parse_value, Batch, Format, RowsAt, Source, TableReader};
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
}

impl TableReader {
    pub(super) fn open_text(&mut self, format: Format, label: Option<&str>) -> Result<()> {
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
        self.source = Source::Text(TextRows {
            lines,
            format,
            line_no,
            pending: (!header).then_some((line_no, first)),
            width,
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
            if t.is_empty() || t.starts_with('#') {
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
