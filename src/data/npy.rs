//! NumPy's `.npy` format (version 1-3) for 1-D and 2-D float arrays in C order: a header
//! reader that leaves the file positioned at the data (so rows can be streamed), and a streaming
//! writer whose header is rewritten with the final row count when it is finished.

use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn width(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub dtype: Dtype,
    pub big_endian: bool,
    /// Rows and columns; a 1-D array of N values is N x 1.
    pub rows: usize,
    pub cols: usize,
}

impl Header {
    /// Bytes of the data the header promises; `None` when that overflows (a hostile shape).
    pub fn data_bytes(&self) -> Option<u64> {
        (self.rows as u64)
            .checked_mul(self.cols as u64)?
            .checked_mul(self.dtype.width() as u64)
    }

    /// Decodes one element.
    pub fn value(&self, b: &[u8]) -> f64 {
        match (self.dtype, self.big_endian) {
            (Dtype::F32, false) => f32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as f64,
            (Dtype::F32, true) => f32::from_be_bytes(b[..4].try_into().expect("4 bytes")) as f64,
            (Dtype::F64, false) => f64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            (Dtype::F64, true) => f64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        }
    }
}

/// The value of `key` in numpy's header dict literal, e.g. `'descr': '<f4'`.
fn field<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = dict[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(r) = rest.strip_prefix('\'') {
        r.find('\'')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Reads the header of `r` (an open `.npy` named `path`), leaving `r` at the first element.
pub fn read_header(r: &mut impl Read, path: &Path) -> Result<Header> {
    let bad =
        |what: String| anyhow::anyhow!("{}: not a readable .npy file: {what}", path.display());
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| bad("shorter than the 8-byte preamble".into()))?;
    if &pre[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic".into()));
    }
    let len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(format!("unknown format version {v}"))),
    };
    let mut h = vec![0u8; len];
    r.read_exact(&mut h)
        .map_err(|_| bad("truncated header".into()))?;
    let dict = String::from_utf8_lossy(&h);
    let descr = field(&dict, "descr").ok_or_else(|| bad(format!("no 'descr' in {dict}")))?;
    let descr = descr.trim_matches('\'');
    let (big_endian, dtype) = match descr {
        "<f4" | "|f4" | "=f4" => (false, Dtype::F32),
        "<f8" | "|f8" | "=f8" => (false, Dtype::F64),
        ">f4" => (true, Dtype::F32),
        ">f8" => (true, Dtype::F64),
        other => bail!(
            "{}: dtype `{other}` is not supported; save float32 or float64 (x.astype(np.float32))",
            path.display()
        ),
    };
    if field(&dict, "fortran_order") != Some("False") {
        bail!(
            "{}: the array is in Fortran order; save np.ascontiguousarray(x) instead",
            path.display()
        );
    }
    let shape = field(&dict, "shape").ok_or_else(|| bad(format!("no 'shape' in {dict}")))?;
    let dims: Vec<usize> = shape
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("bad shape {shape}")))?;
    let (rows, cols) = match dims[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => bail!(
            "{}: expected a 1-D or 2-D array (N x D), found shape {shape}",
            path.display()
        ),
    };
    let h = Header {
        dtype,
        big_endian,
        rows,
        cols,
    };
    if h.data_bytes().is_none_or(|b| usize::try_from(b).is_err()) {
        bail!(
            "{}: shape {shape} is too large: its byte size overflows",
            path.display()
        );
    }
    Ok(h)
}

/// Reads a whole 2-D float `.npy` as f64 values (row-major) with its header.
pub fn read(path: &Path) -> Result<(Header, Vec<f64>)> {
    let len = crate::limits::regular_file(path)?.len();
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let h = read_header(&mut r, path)?;
    // Checked against the file before allocating: a header may promise any size.
    let need = h.data_bytes().expect("checked by read_header");
    let truncated = || {
        anyhow::anyhow!(
            "{}: truncated: the header promises {} x {} values",
            path.display(),
            h.rows,
            h.cols
        )
    };
    if need > len {
        return Err(truncated());
    }
    let mut bytes = vec![0u8; need as usize];
    r.read_exact(&mut bytes).map_err(|_| truncated())?;
    let v = bytes.chunks(h.dtype.width()).map(|b| h.value(b)).collect();
    Ok((h, v))
}

/// The header bytes for a little-endian f32 `[rows, cols]` array, padded to `HEADER_LEN` so the
/// row count can be rewritten in place.
const HEADER_LEN: usize = 128;

fn header_bytes(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut b = MAGIC.to_vec();
    b.extend([1u8, 0]);
    let pad = HEADER_LEN - b.len() - 2 - dict.len() - 1;
    b.extend(((HEADER_LEN - 10) as u16).to_le_bytes());
    b.extend(dict.as_bytes());
    b.extend(std::iter::repeat_n(b' ', pad));
    b.push(b'\n');
    b
}

/// Writes f32 rows of `cols` values to `w` as a `.npy`, one batch at a time.
pub struct Writer<W: Write + Seek> {
    w: W,
    cols: usize,
    rows: usize,
}

impl<W: Write + Seek> Writer<W> {
    pub fn new(mut w: W, cols: usize) -> Result<Self> {
        w.write_all(&header_bytes(0, cols))?;
        Ok(Self { w, cols, rows: 0 })
    }

    /// Appends rows (`values.len()` a multiple of the column count).
    pub fn write_rows(&mut self, values: &[f32]) -> Result<()> {
        debug_assert!(values.len().is_multiple_of(self.cols));
        let mut b = Vec::with_capacity(values.len() * 4);
        for v in values {
            b.extend(v.to_le_bytes());
        }
        self.w.write_all(&b)?;
        self.rows += values.len() / self.cols;
        Ok(())
    }

    /// Rewrites the header with the final row count; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.w.seek(SeekFrom::Start(0))?;
        self.w.write_all(&header_bytes(self.rows, self.cols))?;
        self.w.seek(SeekFrom::End(0))?;
        Ok(self.w)
    }
}

/// A whole f64 array as `.npy` bytes (for tests and fixtures): `<f8` or `<f4`.
pub fn to_bytes(values: &[f64], rows: usize, cols: usize, dtype: Dtype) -> Vec<u8> {
    let descr = match dtype {
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
    };
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut b = MAGIC.to_vec();
    b.extend([1u8, 0]);
    b.extend(((total - 10) as u16).to_le_bytes());
    b.extend(dict.as_bytes());
    b.extend(std::iter::repeat_n(b' ', total - 10 - dict.len() - 1));
    b.push(b'\n');
    for &v in values {
        match dtype {
            Dtype::F32 => b.extend((v as f32).to_le_bytes()),
            Dtype::F64 => b.extend(v.to_le_bytes()),
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_writer_round_trips_through_the_reader() {
        let mut w = Writer::new(std::io::Cursor::new(Vec::new()), 3).unwrap();
        w.write_rows(&[1.0, 2.0, 3.0]).unwrap();
        w.write_rows(&[4.0, 5.0, 6.0, 7.0, 8.0, 9.5]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), HEADER_LEN + 9 * 4);
        let mut r = &bytes[..];
        let h = read_header(&mut r, Path::new("t.npy")).unwrap();
        assert_eq!((h.rows, h.cols, h.dtype), (3, 3, Dtype::F32));
        assert_eq!(h.value(&r[32..36]), 9.5);
    }
}
