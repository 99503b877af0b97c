//! The 2-D spiral of the paper's synthetic experiment (gmvae-upstream.md §4): five half-circle
//! arms. The original file has no labels and no generator; [`generate`] rebuilds the generator
//! from a fit of that file, with the arm index as label.

use super::{Dataset, Split};
use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use std::f64::consts::PI;
use std::path::Path;

/// Number of arms.
pub const ARMS: usize = 5;

/// `n` points from the five arms (n/5 each, the rest spread over the first arms), shuffled.
/// Arm j: centre 0.6 (cos phi_j, sin phi_j) with phi_j = 2 pi j / 5, radius 0.4, angle
/// theta ~ N(pi/2, (pi/6)^2) from phi_j, plus N(0, 0.025^2) noise.
pub fn generate(n: usize, rng: &mut StdRng) -> Result<Dataset> {
    let theta = Normal::new(PI / 2.0, PI / 6.0)?;
    let noise = Normal::new(0.0, 0.025)?;
    let mut points: Vec<([f32; 2], usize)> = (0..n)
        .map(|i| {
            let j = i % ARMS;
            let phi = 2.0 * PI * j as f64 / ARMS as f64;
            let t = phi + theta.sample(rng);
            let p = [
                0.6 * phi.cos() + 0.4 * t.cos() + noise.sample(rng),
                0.6 * phi.sin() + 0.4 * t.sin() + noise.sample(rng),
            ];
            ([p[0] as f32, p[1] as f32], j)
        })
        .collect();
    // Fisher-Yates with the same generator, so the order depends only on the seed.
    for i in (1..points.len()).rev() {
        points.swap(i, rng.random_range(0..=i));
    }
    let y = points.iter().flat_map(|(p, _)| *p).collect();
    let labels = points.iter().map(|(_, l)| *l).collect();
    Ok(Dataset {
        name: "spiral".into(),
        dy: 2,
        image_shape: None,
        train: Split::new(y, Some(labels), 2)?,
        test: None,
    })
}

/// Reads the original spiral from `.t7` (torch7 binary) or `.csv` (columns y1,y2 and optionally a
/// third integer label column; a header line is skipped).
pub fn load_file(path: &Path) -> Result<Dataset> {
    let is_t7 = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("t7"));
    let (y, labels) = if is_t7 {
        let bytes = crate::limits::read_file(path)
            .with_context(|| format!("cannot read spiral file {}", path.display()))?;
        let y = read_t7_matrix(&bytes, 2).with_context(|| format!("reading {}", path.display()))?;
        crate::limits::check_finite_rows(&path.display().to_string(), &y, 2)?;
        (y, None)
    } else {
        read_csv(path)?
    };
    Ok(Dataset {
        name: "spiral".into(),
        dy: 2,
        image_shape: None,
        train: Split::new(y, labels, 2)?,
        test: None,
    })
}

fn read_csv(path: &Path) -> Result<(Vec<f32>, Option<Vec<usize>>)> {
    let text = crate::limits::read_text(path)
        .with_context(|| format!("cannot read spiral file {}", path.display()))?;
    let mut y = Vec::new();
    let mut labels = Vec::new();
    let mut columns = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let Ok(vals) = parsed else {
            if i == 0 {
                continue; // header
            }
            bail!(
                "{}:{}: expected numbers, found `{line}`",
                path.display(),
                i + 1
            );
        };
        if !(2..=3).contains(&vals.len()) || columns.is_some_and(|c| c != vals.len()) {
            bail!(
                "{}:{}: expected {} comma-separated columns (y1,y2[,label]), found {}",
                path.display(),
                i + 1,
                columns.unwrap_or(2),
                vals.len()
            );
        }
        columns = Some(vals.len());
        for (j, &v) in vals[..2].iter().enumerate() {
            // f32 is what training sees: 1e300 is finite as f64 but not as f32.
            if !(v as f32).is_finite() {
                bail!(
                    "{}:{}, column {}: value `{}` is not a finite number",
                    path.display(),
                    i + 1,
                    j + 1,
                    fields[j]
                );
            }
        }
        y.extend([vals[0] as f32, vals[1] as f32]);
        if vals.len() == 3 {
            let Some(l) = crate::limits::label(vals[2]) else {
                bail!(
                    "{}:{}, column 3: label `{}` is not a class index in 0..{}",
                    path.display(),
                    i + 1,
                    fields[2],
                    crate::limits::MAX_CLASSES
                );
            };
            labels.push(l);
        }
    }
    if y.is_empty() {
        bail!("{}: no data rows", path.display());
    }
    Ok((y, (columns == Some(3)).then_some(labels)))
}

/// A little-endian reader over torch7's binary serialisation.
struct T7<'a> {
    b: &'a [u8],
    at: usize,
}

impl T7<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        if n > self.b.len() - self.at {
            bail!(
                "truncated torch7 file: needed {n} bytes for {what} at offset {}, file has {}",
                self.at,
                self.b.len()
            );
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8, what)?.try_into()?))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.i32(what)?;
        if !(0..=1024).contains(&n) {
            bail!("bad torch7 string length {n} for {what}");
        }
        Ok(String::from_utf8_lossy(self.take(n as usize, what)?).into_owned())
    }
    /// Object header: type 4 (torch object), index, version "V 1", class name.
    fn object(&mut self, expect_prefix: &str) -> Result<String> {
        let ty = self.i32("object type")?;
        if ty != 4 {
            bail!("not a torch7 object (type tag {ty}, expected 4)");
        }
        self.i32("object index")?;
        let version = self.string("version")?;
        let class = if version.starts_with("V ") {
            self.string("class name")?
        } else {
            version
        };
        if !class.starts_with(expect_prefix) {
            bail!("expected a {expect_prefix}*, found `{class}`");
        }
        Ok(class)
    }
}

/// Reads a 2-D `torch.DoubleTensor` / `torch.FloatTensor` with `cols` columns (row-major, as the
/// layout of gmvae-upstream.md §4).
pub fn read_t7_matrix(bytes: &[u8], cols: usize) -> Result<Vec<f32>> {
    let mut r = T7 { b: bytes, at: 0 };
    let class = r.object("torch.")?;
    let double = match class.as_str() {
        "torch.DoubleTensor" => true,
        "torch.FloatTensor" => false,
        other => bail!("expected torch.DoubleTensor or torch.FloatTensor, found `{other}`"),
    };
    let ndim = r.i32("ndim")?;
    if ndim != 2 {
        bail!("expected a 2-D tensor, found {ndim} dimensions");
    }
    let sizes = [r.i64("size")?, r.i64("size")?];
    let strides = [r.i64("stride")?, r.i64("stride")?];
    let offset = r
        .i64("offset")?
        .checked_sub(1)
        .context("bad torch7 storage offset")?;
    if sizes[1] != cols as i64 || sizes[0] <= 0 {
        bail!(
            "expected an N x {cols} tensor, found {} x {}",
            sizes[0],
            sizes[1]
        );
    }
    if strides.iter().any(|&s| s < 0) || offset < 0 {
        bail!(
            "bad torch7 tensor layout: strides {strides:?}, offset {}",
            offset + 1
        );
    }
    r.object(if double {
        "torch.DoubleStorage"
    } else {
        "torch.FloatStorage"
    })?;
    let len = r.i64("storage size")?;
    let width = if double { 8 } else { 4 };
    let bytes_needed = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_mul(width))
        .with_context(|| format!("bad torch7 storage size {len}"))?;
    // The header's sizes must fit in the data the file holds before anything is allocated.
    let rows = sizes[0] as usize;
    let elements = crate::limits::product(
        "torch7 tensor size",
        &[rows, cols],
        crate::limits::MAX_DATA_VALUES,
    )?;
    if elements as i64 > len {
        bail!("a {rows} x {cols} tensor cannot view a storage of {len} values");
    }
    let raw = r.take(bytes_needed, "storage data")?;
    let value = |i: i64| -> Result<f32> {
        if i < 0 || i >= len {
            bail!("tensor element at storage index {i} is outside the storage of {len}");
        }
        let i = i as usize * width;
        Ok(if double {
            f64::from_le_bytes(raw[i..i + 8].try_into()?) as f32
        } else {
            f32::from_le_bytes(raw[i..i + 4].try_into()?)
        })
    };
    let mut out = Vec::with_capacity(elements);
    for row in 0..sizes[0] {
        for col in 0..sizes[1] {
            let at = row
                .checked_mul(strides[0])
                .and_then(|a| col.checked_mul(strides[1])?.checked_add(a))
                .and_then(|a| a.checked_add(offset))
                .context("torch7 tensor strides overflow")?;
            out.push(value(at)?);
        }
    }
    Ok(out)
}

/// Writes a 2-D `torch.DoubleTensor` in torch7's binary format (for tests and conversions).
pub fn write_t7_matrix(values: &[f64], rows: usize, cols: usize) -> Vec<u8> {
    let mut b = Vec::new();
    let s = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as i32).to_le_bytes());
        b.extend(s.as_bytes());
    };
    b.extend(4i32.to_le_bytes());
    b.extend(1i32.to_le_bytes());
    s(&mut b, "V 1");
    s(&mut b, "torch.DoubleTensor");
    b.extend(2i32.to_le_bytes());
    for v in [rows as i64, cols as i64, cols as i64, 1, 1] {
        b.extend(v.to_le_bytes());
    }
    b.extend(4i32.to_le_bytes());
    b.extend(2i32.to_le_bytes());
    s(&mut b, "V 1");
    s(&mut b, "torch.DoubleStorage");
    b.extend((values.len() as i64).to_le_bytes());
    for v in values {
        b.extend(v.to_le_bytes());
    }
    b
}
