//! Your own data: an N x D table of real numbers (any format of [`super::reader`]) with an
//! optional label column, a seeded held-out split, and a scaling fitted on the training rows
//! ([`super::scale`]) and stored with the model so that `gmvae predict` applies the same.

use super::reader::TableReader;
use super::scale::{LikelihoodChoice, Scale, Scaler};
use super::{Dataset, Split};
use crate::options::{Layer, Options};
use crate::rng::{self, stream};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What training found out about the table: stored in `opts.json` and `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub scaler: Scaler,
    /// `bernoulli` or `gaussian` (never `auto`).
    pub likelihood: LikelihoodChoice,
    /// Names of the D feature columns, when the file had a header.
    pub columns: Option<Vec<String>>,
}

impl Fitted {
    /// The options a run records in opts.json and trains with: `opts` plus this fit (the
    /// scaling in `table.fitted`, the likelihood as `continuous`), so that `predict`, `export`
    /// and `--resume` read what training used.
    pub fn recorded_in(self, opts: &Options) -> Options {
        let mut o = opts.clone();
        o.continuous = self.likelihood == LikelihoodChoice::Gaussian;
        o.table.get_or_insert_with(Default::default).fitted = Some(self);
        o
    }
}

crate::options::decl::declare_options! {
    /// The table preset's own settings (part of [`Options`]), one row per setting as in
    /// [`Options`]' table.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct TableOptions;
    /// The table preset's flags (`gmvae table --help`).
    pub struct TableArgs;
    ids TableOpt, given TableGiven, layers Layer;
    fields {
        /// Column holding class labels (used only for scores; never trained on): a header name or a
        /// 0-based index. For safetensors, the name of a 1-D labels tensor.
        label_column: Option<String> = { main: None }
            => 0 some String [.value_name("NAME|INDEX")];
        /// Safetensors: the 2-D data tensor (default: the file's only 2-D tensor).
        tensor: Option<String> = { main: None } => 10 some String;
        /// Scaling fitted on the training rows and stored with the model [default: auto = none when
        /// every value is in [0,1], else standardize].
        scale: Scale = { main: Scale::Auto } => 20 set Scale;
        /// Likelihood p(y|x) [default: auto = bernoulli when every scaled value is in [0,1], else
        /// gaussian].
        likelihood: LikelihoodChoice = { main: LikelihoodChoice::Auto } => 30 set LikelihoodChoice;
        /// Share of rows held out (seeded by --seed) for the test scores.
        // 0: evaluate on the training rows.
        test_fraction: f64 = { main: 0.0 } => 40 set f64;
        /// What training found out about the table.
        fitted: Option<Fitted> = { main: None };
    }
    flags {}
}

impl Default for TableOptions {
    fn default() -> Self {
        Self::main_layer()
    }
}

impl TableOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.test_fraction) {
            bail!(
                "--test-fraction must be in [0, 1), found {}",
                self.test_fraction
            );
        }
        Ok(())
    }
}

impl TableArgs {
    /// Puts these flags on top of `o.table` (the shared flags that mean nothing for a table were
    /// refused already, by `TrainArgs::resolve`).
    pub fn apply(&self, o: &mut Options) -> Result<()> {
        let t = o.table.get_or_insert_with(TableOptions::default);
        t.set_given(self.given(), |_| true);
        o.validate()
    }
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

/// Rows `idx` of row-major `y` with `d` columns.
fn rows_of(y: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| y[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// The seeded held-out split of `n` rows: (training rows, held-out rows), each in file order so
/// that predictions line up with the file's rows; `--train-size` keeps the first training rows.
fn split_rows(
    n: usize,
    test_fraction: f64,
    opts: &Options,
    path: &std::path::Path,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if n < 3 && test_fraction > 0.0 {
        bail!("{}: {n} rows are too few to hold any out", path.display());
    }
    let n_test = if test_fraction > 0.0 {
        ((n as f64 * test_fraction).round() as usize).clamp(1, n - 2)
    } else {
        0
    };
    let perm = rng::permutation(&mut rng::rng(opts.seed, stream::DATA), n);
    let (mut test_idx, mut train_idx) = (perm[..n_test].to_vec(), perm[n_test..].to_vec());
    test_idx.sort_unstable();
    train_idx.sort_unstable();
    if let Some(m) = opts.train_size {
        train_idx.truncate(m);
    }
    Ok((train_idx, test_idx))
}

/// Loads the table `opts` names: splits off the held-out rows (seeded), fits the scaling on the
/// training rows and applies it to both, and settles `auto` choices. Returns the data set and
/// what it settled: the scaling, the likelihood and the column names.
pub fn load(opts: &Options) -> Result<(Dataset, Fitted)> {
    let path = opts
        .data
        .as_ref()
        .context("the table preset needs --data FILE")?;
    let t = opts.table.clone().unwrap_or_default();
    t.validate()?;
    let mut reader = TableReader::open(path, t.label_column.as_deref(), t.tensor.as_deref())?;
    let d = reader.d;
    let all = reader.read_all()?;
    let n = all.rows;
    let labels = all.labels.as_ref().map(|l| label_indices(l));
    let (train_idx, test_idx) = split_rows(n, t.test_fraction, opts, path)?;
    let mut y_train = rows_of(&all.y, d, &train_idx);
    let scale = t.scale.settle(&y_train);
    let scaler = Scaler::fit(scale, &y_train, d);
    scaler.apply(&mut y_train);
    let likelihood = t.likelihood.settle(&y_train);
    let pick = |idx: &[usize]| {
        labels
            .as_ref()
            .map(|(l, _)| idx.iter().map(|&i| l[i]).collect())
    };
    let train = Split::new(y_train, pick(&train_idx), d)?;
    let test = if test_idx.is_empty() {
        None
    } else {
        let mut y = rows_of(&all.y, d, &test_idx);
        scaler.apply(&mut y);
        Some(Split::new(y, pick(&test_idx), d)?)
    };
    let fitted = Fitted {
        scaler,
        likelihood,
        columns: reader.columns.clone(),
    };
    let classes = labels.as_ref().map(|(_, c)| c.len());
    announce(
        opts,
        &t,
        path,
        (n, d, classes),
        (train.n, test_idx.len()),
        &fitted,
    );
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
    opts: &Options,
    t: &TableOptions,
    path: &std::path::Path,
    (n, d, classes): (usize, usize, Option<usize>),
    (n_train, n_test): (usize, usize),
    fitted: &Fitted,
) {
    let lower = |s: &dyn std::fmt::Debug| format!("{s:?}").to_lowercase();
    // Without labels, training says once that there are no scores.
    println!(
        "table: {} has {n} rows x {d} feature columns{}",
        path.display(),
        match classes {
            Some(c) => format!(
                "; labels from column `{}` ({c} classes, scores only)",
                t.label_column.as_deref().unwrap_or_default(),
            ),
            None => String::new(),
        }
    );
    let auto_likelihood = match (t.likelihood, fitted.likelihood) {
        (LikelihoodChoice::Auto, LikelihoodChoice::Bernoulli) => {
            " (auto: every scaled value is in [0,1])"
        }
        (LikelihoodChoice::Auto, _) => " (auto: scaled values outside [0,1])",
        _ => "",
    };
    println!(
        "table: {n_train} training rows, {n_test} held out (--test-fraction {}, seed {}); scaling \
         {}{}; likelihood {}{auto_likelihood}",
        t.test_fraction,
        opts.seed,
        lower(&fitted.scaler.kind),
        if t.scale == Scale::Auto {
            " (auto: by the value range)"
        } else {
            ""
        },
        lower(&fitted.likelihood),
    );
}
