//! Scaling of table columns before the network sees them, and the `auto` rules that pick the
//! scaling and the likelihood p(y|x) from the training values: one place for `gmvae table` and
//! `gmvae serket --data`.

use serde::{Deserialize, Serialize};

/// How values are scaled before the network sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// `none` when every training value is already in [0, 1]; `minmax` when every one is a
    /// non-negative integer (intensities, counts); else `standardize`.
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

/// The columns of row-major `y` (`d` columns) that hold one value in every row. They are valid
/// data: scaling gives them scale 1 (no division by zero), and they carry no information.
pub fn constant_columns(y: &[f32], d: usize) -> Vec<usize> {
    let Some(first) = y.get(..d) else {
        return Vec::new();
    };
    (0..d)
        .filter(|&j| y.iter().skip(j).step_by(d).all(|&v| v == first[j]))
        .collect()
}

/// The log line naming the constant columns of `y` (by header name when `names` has them),
/// `None` when there are none.
pub fn constant_note(y: &[f32], d: usize, names: Option<&[String]>) -> Option<String> {
    let cols = constant_columns(y, d);
    if cols.is_empty() {
        return None;
    }
    let named: Vec<String> = cols
        .iter()
        .map(|&j| match names.and_then(|n| n.get(j)) {
            Some(name) => format!("`{name}`"),
            None => format!("{j}"),
        })
        .collect();
    Some(format!(
        "{} constant column{} ({}): one value in every row, scaled with scale 1 (no division \
         by zero); {} no information",
        cols.len(),
        if cols.len() == 1 { "" } else { "s" },
        named.join(", "),
        if cols.len() == 1 {
            "it carries"
        } else {
            "they carry"
        }
    ))
}

/// Whether every value is in [0, 1] (pixel intensities, shares, min-max scaled data).
pub fn in_unit(y: &[f32]) -> bool {
    y.iter().all(|v| (0.0..=1.0).contains(v))
}

/// Whether every value is a non-negative integer (grey levels 0..255 or 0..16, counts).
pub fn non_negative_integers(y: &[f32]) -> bool {
    y.iter().all(|v| *v >= 0.0 && v.fract() == 0.0)
}

impl Scale {
    /// The scaling to fit on training values `y`: `auto` is `none` when every value is already in
    /// [0, 1]; `minmax` when every value is a non-negative integer, so that intensities and
    /// counts meet the Bernoulli likelihood as MNIST's pixels do (standardizing them turns the
    /// rare non-zero values of mostly-zero columns into outliers: digits 0.63 against 0.82,
    /// experiments/own-data/README.md); else `standardize` (measurements).
    pub fn settle(self, y: &[f32]) -> Scale {
        match self {
            Scale::Auto if !in_unit(y) && non_negative_integers(y) => Scale::Minmax,
            s => s.settle_by_range(y),
        }
    }

    /// `auto` by the value range only: `none` when every value is in [0, 1], else
    /// `standardize`. Serket's tables keep this rule: its GMM on the codes of a Bernoulli VAE of
    /// min-max scaled intensities ends in one class (digits, seeds 1-3: NMI 0.00 against
    /// 0.48-0.54 standardized).
    pub fn settle_by_range(self, y: &[f32]) -> Scale {
        match self {
            Scale::Auto if in_unit(y) => Scale::None,
            Scale::Auto => Scale::Standardize,
            s => s,
        }
    }
}

impl LikelihoodChoice {
    /// The likelihood for scaled training values `y`: `auto` is Bernoulli when every value is in
    /// [0, 1], else Gaussian. Bernoulli asked for values outside [0, 1] is an error (its
    /// "lower bound" would be meaningless).
    pub fn settle(self, y: &[f32]) -> anyhow::Result<LikelihoodChoice> {
        Ok(match self {
            LikelihoodChoice::Auto if in_unit(y) => LikelihoodChoice::Bernoulli,
            LikelihoodChoice::Auto => LikelihoodChoice::Gaussian,
            LikelihoodChoice::Bernoulli if !in_unit(y) => anyhow::bail!(
                "--likelihood bernoulli needs scaled values in [0, 1], but the training rows have \
                 others (try --scale minmax, or --likelihood gaussian)"
            ),
            l => l,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_scaling_follows_the_kind_of_values() {
        // Already in [0, 1]: kept.
        assert_eq!(Scale::Auto.settle(&[0.0, 0.5, 1.0]), Scale::None);
        // Intensities and counts: minmax (then Bernoulli).
        assert_eq!(Scale::Auto.settle(&[0.0, 16.0, 3.0, 255.0]), Scale::Minmax);
        // Measurements, or integers below zero: standardize.
        assert_eq!(Scale::Auto.settle(&[0.0, 16.5, 3.0]), Scale::Standardize);
        assert_eq!(Scale::Auto.settle(&[-1.0, 16.0, 3.0]), Scale::Standardize);
        // A fixed choice is kept.
        assert_eq!(Scale::Standardize.settle(&[0.0, 16.0]), Scale::Standardize);
        // Serket's rule reads the range only.
        assert_eq!(
            Scale::Auto.settle_by_range(&[0.0, 16.0]),
            Scale::Standardize
        );
        assert_eq!(Scale::Auto.settle_by_range(&[0.0, 1.0]), Scale::None);
        let y = [0.0, 16.0, 8.0, 4.0];
        let mut scaled = y.to_vec();
        Scaler::fit(Scale::Auto.settle(&y), &y, 1).apply(&mut scaled);
        assert_eq!(
            LikelihoodChoice::Auto.settle(&scaled).unwrap(),
            LikelihoodChoice::Bernoulli
        );
    }
}
