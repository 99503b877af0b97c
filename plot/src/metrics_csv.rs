//! Reader for the run's `metrics.csv` (one row per epoch; empty fields where a value does not
//! apply, e.g. accuracies on unlabelled data).

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The columns the curves need; others are kept but not required.
pub const REQUIRED: [&str; 3] = ["epoch", "lower_bound", "cv"];

#[derive(Debug, Clone)]
pub struct Metrics {
    pub header: Vec<String>,
    /// `rows[i][j]` is column j of epoch row i; None where the field was empty.
    pub rows: Vec<Vec<Option<f64>>>,
}

impl Metrics {
    pub fn load(path: &Path) -> Result<Self> {
        let text = gmvae::limits::read_text(path).with_context(|| {
            format!(
                "cannot read {} (has training finished an epoch?)",
                path.display()
            )
        })?;
        Self::parse(&text)
            .with_context(|| format!("{} is not a valid metrics file", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .context("the file is empty")?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        for need in REQUIRED {
            if !header.iter().any(|h| h == need) {
                bail!("the header has no `{need}` column");
            }
        }
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != header.len() {
                bail!(
                    "data row {} has {} fields, the header has {}",
                    i + 1,
                    fields.len(),
                    header.len()
                );
            }
            let row = fields
                .iter()
                .zip(&header)
                .map(|(f, h)| {
                    let f = f.trim();
                    if f.is_empty() {
                        Ok(None)
                    } else {
                        match f.parse::<f64>() {
                            Ok(v) if v.is_finite() => Ok(Some(v)),
                            _ => bail!("data row {}: `{h}` = `{f}` is not a finite number", i + 1),
                        }
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(row);
        }
        if rows.is_empty() {
            bail!("no epoch rows yet");
        }
        Ok(Self { header, rows })
    }

    /// (epoch, value) pairs of a column, skipping empty and non-finite fields; None if the
    /// column does not exist.
    pub fn series(&self, name: &str) -> Option<Vec<(f64, f64)>> {
        let j = self.header.iter().position(|h| h == name)?;
        let e = self.header.iter().position(|h| h == "epoch")?;
        Some(
            self.rows
                .iter()
                .filter_map(|r| Some((r[e]?, r[j]?)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "epoch,lower_bound,rec,cond_prior,w_prior,z_prior,cv,train_acc,test_acc,test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds";

    #[test]
    fn empty_fields_are_missing_values() {
        let m = Metrics::parse(&format!(
            "{HEADER}\n1,-5,1,1,1,1,0.5,,,,,,,2\n2,-4,1,1,1,1,0.4,,,,,,,2\n"
        ))
        .unwrap();
        assert_eq!(
            m.series("lower_bound").unwrap(),
            vec![(1.0, -5.0), (2.0, -4.0)]
        );
        assert!(m.series("test_acc").unwrap().is_empty());
        assert!(m.series("nope").is_none());
    }

    #[test]
    fn truncated_rows_and_bad_headers_are_errors() {
        assert!(Metrics::parse(&format!("{HEADER}\n1,-5,1")).is_err());
        assert!(Metrics::parse("epoch,cv\n1,2\n").is_err());
        assert!(Metrics::parse("").is_err());
        assert!(Metrics::parse(&format!("{HEADER}\n")).is_err());
        let err = Metrics::parse(&format!("{HEADER}\n1,x,1,1,1,1,0.5,,,,,,,2\n")).unwrap_err();
        assert!(format!("{err:#}").contains("lower_bound"));
    }
}
