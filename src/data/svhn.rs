//! SVHN cropped digits from the official MATLAB files `train_32x32.mat`, `test_32x32.mat` and
//! `extra_32x32.mat`: `X` is uint8 32x32x3xN (column-major), `y` is Nx1 with label 10 for the
//! digit 0. Images become CHW rows scaled to [0, 1]; labels become digits 0-9.
//!
//! Reads MATLAB level-5 MAT-files (uncompressed and zlib-compressed elements). Version 7.3 files
//! are HDF5 containers and are rejected with a clear message.

use super::{Dataset, Split};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// How to obtain the files.
pub const HOW_TO_GET: &str = "download train_32x32.mat and test_32x32.mat (and extra_32x32.mat \
for --svhn-extra) from http://ufldl.stanford.edu/housenumbers/ into this directory, or pass \
--data-dir DIR";

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// A numeric MATLAB array: dimensions (column-major) and the raw little-endian bytes of its real
/// part in their stored type (SVHN's 235 MB of uint8 pixels stay uint8 until converted).
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    pub name: String,
    pub dims: Vec<usize>,
    /// Storage type of the real part (miUINT8, miDOUBLE, ...).
    pub data_type: u32,
    pub data: Vec<u8>,
}

impl MatArray {
    fn width(&self) -> Result<usize> {
        Ok(match self.data_type {
            MI_INT8 | MI_UINT8 => 1,
            MI_INT16 | MI_UINT16 => 2,
            MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
            MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
            t => bail!("variable `{}` has unsupported storage type {t}", self.name),
        })
    }

    /// Element `i` as f64.
    pub fn get(&self, i: usize) -> f64 {
        let b = &self.data;
        macro_rules! le {
            ($t:ty, $w:expr) => {
                <$t>::from_le_bytes(b[i * $w..i * $w + $w].try_into().expect("width")) as f64
            };
        }
        match self.data_type {
            MI_INT8 => b[i] as i8 as f64,
            MI_UINT8 => b[i] as f64,
            MI_INT16 => le!(i16, 2),
            MI_UINT16 => le!(u16, 2),
            MI_INT32 => le!(i32, 4),
            MI_UINT32 => le!(u32, 4),
            MI_SINGLE => le!(f32, 4),
            MI_DOUBLE => le!(f64, 8),
            MI_INT64 => le!(i64, 8),
            _ => le!(u64, 8),
        }
    }

    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads one element tag at `at`: (type, byte count, offset of the data, offset of the next
/// element). Handles the "small data element" form.
fn tag(b: &[u8], at: usize) -> Result<(u32, usize, usize, usize)> {
    if at + 8 > b.len() {
        bail!(
            "truncated MAT-file: element tag at byte {at} runs past the end ({} bytes)",
            b.len()
        );
    }
    let first = u32::from_le_bytes(b[at..at + 4].try_into()?);
    if first >> 16 != 0 {
        let n = (first >> 16) as usize;
        if n > 4 {
            bail!("corrupt MAT-file: small element of {n} bytes at byte {at}");
        }
        return Ok((first & 0xffff, n, at + 4, at + 8));
    }
    let n = u32::from_le_bytes(b[at + 4..at + 8].try_into()?) as usize;
    let end = at + 8 + n;
    if end > b.len() {
        bail!(
            "truncated MAT-file: element at byte {at} declares {n} bytes, {} remain",
            b.len() - at - 8
        );
    }
    Ok((first, n, at + 8, end.div_ceil(8) * 8))
}

/// Parses a miMATRIX element's body.
fn parse_matrix(b: &[u8]) -> Result<Option<MatArray>> {
    let (_, _, _, next) = tag(b, 0)?; // array flags
    let flags_class = b.get(8).copied().unwrap_or(0);
    let (ty, n, at, next2) = tag(b, next)?;
    if ty != MI_INT32 {
        bail!("corrupt MAT-file: array dimensions stored as type {ty}");
    }
    if n % 4 != 0 {
        bail!("corrupt MAT-file: {n} bytes of array dimensions");
    }
    let dims: Vec<usize> = b[at..at + n]
        .chunks_exact(4)
        .map(|c| usize::try_from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect::<std::result::Result<_, _>>()
        .context("corrupt MAT-file: negative array dimension")?;
    let (ty, n, at, next3) = tag(b, next2)?;
    if ty != MI_INT8 {
        bail!("corrupt MAT-file: array name stored as type {ty}");
    }
    let name = String::from_utf8_lossy(&b[at..at + n]).into_owned();
    // Numeric classes are 6 (double) to 15 (uint64); cells, structs, chars etc. are skipped.
    if !(6..=15).contains(&flags_class) {
        return Ok(None);
    }
    let (data_type, n, at, _) = tag(b, next3)?;
    let mut a = MatArray {
        name,
        dims,
        data_type,
        data: Vec::new(),
    };
    // Checked before copying: the dimensions are untrusted and their product may overflow.
    let mut factors = a.dims.clone();
    factors.push(a.width()?);
    let want = crate::limits::product(
        &format!("variable `{}`", a.name),
        &factors,
        crate::limits::MAX_INFLATED_BYTES as u128,
    )?;
    a.data = b[at..at + n].to_vec();
    if a.data.len() != want {
        bail!(
            "variable `{}`: {} bytes of data for dimensions {:?}",
            a.name,
            a.data.len(),
            a.dims
        );
    }
    Ok(Some(a))
}

/// All numeric variables of a level-5 MAT-file.
pub fn read_mat(bytes: &[u8]) -> Result<Vec<MatArray>> {
    if bytes.len() < 128 {
        bail!(
            "too short for a MAT-file header ({} bytes, need 128)",
            bytes.len()
        );
    }
    let text = String::from_utf8_lossy(&bytes[..116]);
    if text.starts_with("MATLAB 7.3") || bytes.get(512..520) == Some(b"\x89HDF\r\n\x1a\n") {
        bail!("this is a MATLAB v7.3 (HDF5) file; save it as v7 or earlier (`save -v7`) or use the official SVHN files");
    }
    if !text.starts_with("MATLAB 5.0") {
        bail!(
            "not a MATLAB level-5 MAT-file (header starts `{}`)",
            text.chars().take(20).collect::<String>()
        );
    }
    if &bytes[126..128] != b"IM" {
        bail!("big-endian MAT-files are not supported");
    }
    let mut out = Vec::new();
    let mut at = 128;
    while at < bytes.len() {
        let (ty, n, data, padded) = tag(bytes, at)?;
        // Compressed elements are not padded to 8 bytes (MATLAB writes them back to back).
        let next = if ty == MI_COMPRESSED {
            data + n
        } else {
            padded
        };
        match ty {
            MI_COMPRESSED => {
                let inner = crate::limits::inflate(
                    flate2::read::ZlibDecoder::new(&bytes[data..data + n]),
                    "compressed MAT-file element",
                )?;
                let (ty, m, d, _) = tag(&inner, 0)?;
                if ty == MI_MATRIX {
                    out.extend(parse_matrix(&inner[d..d + m])?);
                }
            }
            MI_MATRIX => out.extend(parse_matrix(&bytes[data..data + n])?),
            _ => {}
        }
        at = next;
    }
    Ok(out)
}

/// Writes a level-5 MAT-file with uint8 `X` (dims) and double `y` (for tests); `compress` wraps
/// each variable in a zlib-compressed element.
pub fn write_mat(x_dims: &[usize], x: &[u8], y: &[f64], compress: bool) -> Vec<u8> {
    fn element(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend(ty.to_le_bytes());
        e.extend((data.len() as u32).to_le_bytes());
        e.extend(data);
        e.resize(e.len().div_ceil(8) * 8, 0);
        e
    }
    fn matrix(name: &str, class: u8, dims: &[usize], ty: u32, data: &[u8]) -> Vec<u8> {
        let mut body = element(MI_UINT32, &[class, 0, 0, 0, 0, 0, 0, 0]);
        let d: Vec<u8> = dims
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect();
        body.extend(element(MI_INT32, &d));
        body.extend(element(MI_INT8, name.as_bytes()));
        body.extend(element(ty, data));
        element(MI_MATRIX, &body)
    }
    let mut header = b"MATLAB 5.0 MAT-file, written by gmvae tests".to_vec();
    header.resize(116, b' ');
    header.extend([0u8; 8]);
    header.extend([0x00, 0x01, b'I', b'M']);
    let ybytes: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    for m in [
        matrix("X", 9, x_dims, MI_UINT8, x),
        matrix("y", 6, &[y.len(), 1], MI_DOUBLE, &ybytes),
    ] {
        if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &m).expect("in-memory write");
            let packed = z.finish().expect("in-memory write");
            header.extend(MI_COMPRESSED.to_le_bytes());
            header.extend((packed.len() as u32).to_le_bytes());
            header.extend(packed);
        } else {
            header.extend(m);
        }
    }
    header
}

/// One SVHN file as a split of CHW rows in [0, 1] with digit labels.
pub fn load_file(path: &Path) -> Result<Split> {
    let bytes = crate::limits::read_file(path)
        .with_context(|| format!("cannot read SVHN file {}: {HOW_TO_GET}", path.display()))?;
    let vars = read_mat(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let find = |name: &str| {
        vars.iter().find(|v| v.name == name).with_context(|| {
            let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            format!(
                "{}: no variable `{name}` (found {names:?}); expected SVHN's X and y",
                path.display()
            )
        })
    };
    let (x, y) = (find("X")?, find("y")?);
    let [h, w, c, n] = x.dims[..] else {
        bail!(
            "{}: X has dimensions {:?}, expected 32 x 32 x 3 x N",
            path.display(),
            x.dims
        );
    };
    if (h, w, c) != (32, 32, 3) || x.data_type != MI_UINT8 {
        bail!(
            "{}: X is {:?} of storage type {}, expected uint8 32 x 32 x 3 x N",
            path.display(),
            x.dims,
            x.data_type
        );
    }
    if y.len() != n || y.dims.iter().filter(|&&d| d != 1).count() > 1 {
        bail!(
            "{}: y has dimensions {:?}, expected {n} x 1",
            path.display(),
            y.dims
        );
    }
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let l = y.get(i);
        if !(1.0..=10.0).contains(&l) || l.fract() != 0.0 {
            bail!(
                "{}: label {l} at row {} is not in 1..10",
                path.display(),
                i + 1
            );
        }
        labels.push(l as usize % 10);
    }
    // MATLAB X(i, j, c, n) (row i, column j) is at i + 32 j + 1024 c + 3072 n; rows here are CHW.
    let mut rows = vec![0f32; n * 3072];
    for (k, v) in rows.iter_mut().enumerate() {
        let (img, rest) = (k / 3072, k % 3072);
        let (ch, i, j) = (rest / 1024, (rest % 1024) / 32, rest % 32);
        *v = x.data[i + 32 * j + 1024 * ch + 3072 * img] as f32 / 255.0;
    }
    Split::new(rows, Some(labels), 3072)
}

/// Loads SVHN from `dir`: train (plus extra when asked) and test.
pub fn load_dir(dir: &Path, extra: bool) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!(
            "SVHN directory {} does not exist: {HOW_TO_GET}",
            dir.display()
        );
    }
    let mut train = load_file(&dir.join("train_32x32.mat"))?;
    if extra {
        let e = load_file(&dir.join("extra_32x32.mat"))?;
        train.y.extend(e.y);
        if let (Some(a), Some(b)) = (&mut train.labels, e.labels) {
            a.extend(b);
        }
        train.n += e.n;
    }
    Ok(Dataset {
        name: "svhn".into(),
        dy: 3072,
        image_shape: Some([3, 32, 32]),
        train,
        test: Some(load_file(&dir.join("test_32x32.mat"))?),
    })
}
