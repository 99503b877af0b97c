//! Your own data: an N x D table of real numbers (any format of [`super::reader`]) with an
//! optional label column, a seeded held-out split, and a scaling fitted on the training rows
//! ([`super::scale`]) and stored with the model so that `gmvae predict` applies the same.

use super::reader::{TableReader, TextRules};
use super::scale::{LikelihoodChoice, Scale, Scaler};
use super::{Dataset, Split};
use crate::hooks::{Log, Rows};
use crate::rng::{self, stream};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What training found out about the table: stored in `opts.json` and `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub scaler: Scaler,
    /// `bernoulli` or `gaussian` (never `auto`).
    pub likelihood: LikelihoodChoice,
    /// Names of the D feature columns, when the file had a header.
    pub columns: Option<Vec<String>>,
}

/// What to read and how: the table preset's settings as loading needs them
/// (`Options::table_spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec<'a> {
    pub path: &'a Path,
    /// The label column: a header name or a 0-based index (safetensors: a 1-D tensor's name).
    pub label_column: Option<&'a str>,
    /// Safetensors: the 2-D data tensor.
    pub tensor: Option<&'a str>,
    /// Text: the header and comment rules.
    pub text: TextRules,
    pub scale: Scale,
    pub likelihood: LikelihoodChoice,
    /// Share of rows held out (seeded by `seed`) for the test scores.
    pub test_fraction: f64,
    pub seed: u64,
    /// Train on the first N training rows only.
    pub train_size: Option<usize>,
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

/// The held-out share must leave rows to train on.
pub fn check_test_fraction(f: f64) -> Result<()> {
    if !(0.0..1.0).contains(&f) {
        bail!("--test-fraction must be in [0, 1), found {f}");
    }
    Ok(())
}

/// [`label_indices`] of the labels of `--label-column column`, capped as `--category` is: at
/// most [`crate::limits::MAX_CLASSES`] classes (per-class tables and the accuracies grow with
/// the class count; an id column is no label).
pub fn label_classes(labels: &[String], column: &str) -> Result<(Vec<usize>, Vec<String>)> {
    let (idx, classes) = label_indices(labels);
    if let [only] = classes.as_slice() {
        bail!(
            "--label-column {column}: every row has the label `{only}`, one class; clustering \
             scores need at least two (leave --label-column out to train without scores)"
        );
    }
    if classes.len() > crate::limits::MAX_CLASSES {
        bail!(
            "--label-column {column}: {} distinct values, more than the {} classes a label column \
             may hold (an id column?)",
            classes.len(),
            crate::limits::MAX_CLASSES
        );
    }
    Ok((idx, classes))
}

/// Rows `idx` of row-major `y` with `d` columns.
fn rows_of(y: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| y[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// The seeded held-out split of `n` rows: (training rows, held-out rows), each in file order so
/// that predictions line up with the file's rows; `--train-size` keeps the first training rows.
fn split_rows(n: usize, spec: &Spec) -> Result<(Vec<usize>, Vec<usize>)> {
    let test_fraction = spec.test_fraction;
    if n < 3 && test_fraction > 0.0 {
        bail!(
            "{}: {n} rows are too few to hold any out",
            spec.path.display()
        );
    }
    let n_test = if test_fraction > 0.0 {
        ((n as f64 * test_fraction).round() as usize).clamp(1, n - 2)
    } else {
        0
    };
    let perm = rng::permutation(&mut rng::rng(spec.seed, stream::DATA), n);
    let (mut test_idx, mut train_idx) = (perm[..n_test].to_vec(), perm[n_test..].to_vec());
    test_idx.sort_unstable();
    train_idx.sort_unstable();
    if let Some(m) = spec.train_size {
        train_idx.truncate(m);
    }
    Ok((train_idx, test_idx))
}

/// Loads the table `spec` names: splits off the held-out rows (seeded), fits the scaling on the
/// training rows and applies it to both, and settles `auto` choices. Returns the data set and
/// what it settled: the scaling, the likelihood and the column names.
pub fn load(spec: &Spec, log: Log) -> Result<(Dataset, Fitted)> {
    check_test_fraction(spec.test_fraction)?;
    let mut reader = TableReader::open(spec.path, spec.label_column, spec.tensor, &spec.text)?;
    let all = reader.read_all()?;
    let column = spec.label_column.unwrap_or_default();
    let labels = all
        .labels
        .as_ref()
        .map(|l| label_classes(l, column))
        .transpose()
        .with_context(|| spec.path.display().to_string())?;
    let table = Table {
        y: &all.y,
        d: reader.d,
        labels,
        columns: reader.columns.clone(),
    };
    let loaded = settle(spec, table, log)?;
    for note in reader.notes() {
        log.line(format!("table: {note}"));
    }
    Ok(loaded)
}

/// [`load`] for rows the caller holds (`spec.path` names them in messages): unlabelled, and
/// checked as a file's values are (finite, and finite as f32).
pub fn load_rows(spec: &Spec, rows: Rows, log: Log) -> Result<(Dataset, Fitted)> {
    check_test_fraction(spec.test_fraction)?;
    check_finite(rows.y, rows.d, rows.name)?;
    let table = Table {
        y: rows.y,
        d: rows.d,
        labels: None,
        columns: None,
    };
    settle(spec, table, log)
}

/// Row-major rows of `d` values must make whole rows of finite numbers; the message names the
/// first value that is not (0-based row and column, as numpy indexes them).
pub fn check_finite(y: &[f32], d: usize, name: &str) -> Result<()> {
    if d == 0 || y.is_empty() {
        bail!("{name}: no values (expected a 2-D array with at least one row and one column)");
    }
    if !y.len().is_multiple_of(d) {
        bail!("{name}: {} values do not make rows of {d}", y.len());
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        bail!(
            "{name}: row {}, column {} is {} (expected finite numbers; impute or drop the row)",
            i / d,
            i % d,
            if y[i].is_nan() { "NaN" } else { "inf" }
        );
    }
    Ok(())
}

/// A table as read: N x D values y, the label classes when there is a label column, and the
/// column names when there is a header.
struct Table<'a> {
    y: &'a [f32],
    d: usize,
    labels: Option<(Vec<usize>, Vec<String>)>,
    columns: Option<Vec<String>>,
}

/// The split, scaling and likelihood of a table as read (see [`load`]).
fn settle(spec: &Spec, table: Table, log: Log) -> Result<(Dataset, Fitted)> {
    let path = spec.path;
    let Table {
        y,
        d,
        labels,
        columns,
    } = table;
    let n = y.len() / d.max(1);
    let (train_idx, test_idx) = split_rows(n, spec)?;
    let mut y_train = rows_of(y, d, &train_idx);
    let constant = super::scale::constant_note(&y_train, d, columns.as_deref());
    let scale = spec.scale.settle(&y_train);
    let scaler = Scaler::fit(scale, &y_train, d);
    scaler.apply(&mut y_train);
    let likelihood = spec.likelihood.settle(&y_train).with_context(|| {
        format!(
            "{} (scaling {})",
            path.display(),
            format!("{scale:?}").to_lowercase()
        )
    })?;
    let pick = |idx: &[usize]| {
        labels
            .as_ref()
            .map(|(l, _)| idx.iter().map(|&i| l[i]).collect())
    };
    let train = Split::new(y_train, pick(&train_idx), d)?;
    let test = if test_idx.is_empty() {
        None
    } else {
        let mut y = rows_of(y, d, &test_idx);
        scaler.apply(&mut y);
        Some(Split::new(y, pick(&test_idx), d)?)
    };
    let fitted = Fitted {
        scaler,
        likelihood,
        columns,
    };
    let classes = labels.as_ref().map(|(_, c)| c.len());
    announce(
        spec,
        (n, d, classes),
        (train.n, test_idx.len()),
        &fitted,
        log,
    );
    if let Some(note) = constant {
        log.line(format!("table: {note}"));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    let dataset = Dataset {
        name,
        dy: d,
        image_shape: None,
        train,
        test,
    };
    Ok((dataset, fitted))
}

/// Says what was read and what `auto` settled: rows, columns, labels, the split, the scaling and
/// the likelihood.
fn announce(
    spec: &Spec,
    (n, d, classes): (usize, usize, Option<usize>),
    (n_train, n_test): (usize, usize),
    fitted: &Fitted,
    log: Log,
) {
    let lower = |s: &dyn std::fmt::Debug| format!("{s:?}").to_lowercase();
    // Without labels, training says once that there are no scores.
    log.line(format!(
        "table: {} has {n} rows x {d} feature columns{}",
        spec.path.display(),
        match classes {
            Some(c) => format!(
                "; labels from column `{}` ({c} classes, scores only)",
                spec.label_column.unwrap_or_default(),
            ),
            None => String::new(),
        }
    ));
    let auto_likelihood = match (spec.likelihood, fitted.likelihood) {
        (LikelihoodChoice::Auto, LikelihoodChoice::Bernoulli) => {
            " (auto: every scaled value is in [0,1])"
        }
        (LikelihoodChoice::Auto, _) => " (auto: scaled values outside [0,1])",
        _ => "",
    };
    log.line(format!(
        "table: {n_train} training rows, {n_test} held out (--test-fraction {}, seed {}); scaling \
         {}{}; likelihood {}{auto_likelihood}",
        spec.test_fraction,
        spec.seed,
        lower(&fitted.scaler.kind),
        if spec.scale == Scale::Auto {
            " (auto: none for values in [0,1], minmax for non-negative integers, else standardize)"
        } else {
            ""
        },
        lower(&fitted.likelihood),
    ));
}
