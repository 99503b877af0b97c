//! `.npy` tables (f32/f64, C order), streamed in batches of rows.

use super::{as_f32, format_label, Batch, RowsAt, Source, TableReader};
use crate::data::npy;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::BufReader;

/// The state of a `.npy` table being read.
pub(super) struct NpyRows {
    r: BufReader<File>,
    pub(super) header: npy::Header,
    /// Rows not yet read.
    left: usize,
}

impl TableReader {
    pub(super) fn open_npy(&mut self, label: Option<&str>) -> Result<()> {
        let f = File::open(&self.path)
            .with_context(|| format!("cannot open table file {}", self.path.display()))?;
        let mut r = BufReader::new(f);
        let header = npy::read_header(&mut r, &self.path)?;
        if header.cols == 0 {
            bail!("{}: the array has no columns", self.path.display());
        }
        let need = header.data_bytes().expect("checked by read_header");
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
        self.source = Source::Npy(NpyRows {
            r,
            left: header.rows,
            header,
        });
        Ok(())
    }
}

impl NpyRows {
    /// Reads up to `max` further rows into `b`; returns the bytes consumed.
    pub(super) fn next(&mut self, b: &mut Batch, max: usize, at: &RowsAt) -> Result<u64> {
        use std::io::Read;
        let path = at.path;
        let (header, rows) = (&self.header, max.min(self.left));
        let w = header.dtype.width();
        let mut bytes = vec![0u8; rows * header.cols * w];
        self.r
            .read_exact(&mut bytes)
            .with_context(|| format!("{}: truncated data", path.display()))?;
        for (i, row) in bytes.chunks(header.cols * w).enumerate() {
            for (j, v) in row.chunks(w).enumerate() {
                let v = header.value(v);
                if Some(j) == at.label_idx {
                    b.labels
                        .as_mut()
                        .expect("label vector")
                        .push(format_label(v));
                } else if !v.is_finite() {
                    bail!(
                        "{}: row {} column {j} (counting from 0) is {v} (impute or drop the row)",
                        path.display(),
                        at.rows_read + i
                    );
                } else {
                    b.y.push(as_f32(v).with_context(|| {
                        format!(
                            "{}: row {} column {j} (counting from 0) is {v:e}, beyond the range \
                             of a 32-bit float; rescale the column",
                            path.display(),
                            at.rows_read + i
                        )
                    })?);
                }
            }
        }
        self.left -= rows;
        b.rows = rows;
        Ok(bytes.len() as u64)
    }
}
