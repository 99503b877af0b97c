//! What a run records of each epoch: a row of `metrics.csv` and a line on stdout made from one
//! list of named values, and the end of training (`done.json`, the stopping rule).

use crate::metrics::{ClusterScores, Usage};
use crate::objective::TermValues;
use crate::options::Options;
use anyhow::{Context, Result};
use std::path::Path;

/// Header of `metrics.csv`. Scores are empty when the data set has no labels.
pub const METRICS_HEADER: &str = "epoch,lower_bound,rec,cond_prior,w_prior,z_prior,cv,train_acc,\
test_acc,test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds,clusters_used,mean_max_q,\
augment";

/// File name of the per-epoch metrics inside a run directory.
pub const METRICS_FILE: &str = "metrics.csv";

/// Written when a run has finished (all epochs, or stopped on a plateau): `{epochs, reason}`.
pub const DONE_FILE: &str = "done.json";

/// One epoch's record (a row of `metrics.csv`), all terms per data point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub terms: TermValues,
    pub train_acc: Option<f64>,
    pub test: Option<ClusterScores>,
    pub seconds: f64,
    /// How the evaluation split uses the K components.
    pub usage: Usage,
}

/// A value of the record as `metrics.csv` writes it.
enum Cell {
    /// Six decimals; empty when missing (no labels).
    Real(Option<f64>),
    Seconds(f64),
    Count(usize),
}

impl EpochRecord {
    pub fn lower_bound(&self) -> f64 {
        -self.terms.loss
    }

    /// The record's values after `epoch`, in the order and under the names of
    /// [`METRICS_HEADER`]: the one list the CSV row and the stdout line are made from.
    fn cells(&self) -> [(&'static str, Cell); 16] {
        use Cell::*;
        let (t, s) = (&self.terms, self.test);
        [
            ("lower_bound", Real(Some(self.lower_bound()))),
            ("rec", Real(Some(t.rec))),
            ("cond_prior", Real(Some(t.cond_prior))),
            ("w_prior", Real(Some(t.w_prior))),
            ("z_prior", Real(Some(t.z_prior))),
            ("cv", Real(Some(t.cv))),
            ("train_acc", Real(self.train_acc)),
            ("test_acc", Real(s.map(|s| s.aae))),
            ("test_acc_hungarian", Real(s.map(|s| s.hungarian))),
            ("test_acc_majority", Real(s.map(|s| s.majority))),
            ("test_nmi", Real(s.map(|s| s.nmi))),
            ("test_ari", Real(s.map(|s| s.ari))),
            ("seconds", Seconds(self.seconds)),
            ("clusters_used", Count(self.usage.clusters_used)),
            ("mean_max_q", Real(Some(self.usage.mean_max_q))),
            ("augment", Real(Some(t.augment))),
        ]
    }

    /// The epoch's row of `metrics.csv`.
    pub fn csv_row(&self) -> String {
        let mut row = self.epoch.to_string();
        for (_, cell) in self.cells() {
            row.push(',');
            row += &match cell {
                Cell::Real(v) => v.map(|v| format!("{v:.6}")).unwrap_or_default(),
                Cell::Seconds(s) => format!("{s:.3}"),
                Cell::Count(c) => c.to_string(),
            };
        }
        row
    }

    /// The epoch's line on stdout: the terms, the scores the data allows, component usage.
    pub fn line(&self, epochs: usize, k: usize) -> String {
        let cells = self.cells();
        // The value of real-valued column `name`; `None` when missing (no labels).
        let value = |name: &str| {
            cells.iter().find_map(|(n, c)| match c {
                Cell::Real(v) if *n == name => *v,
                _ => None,
            })
        };
        let v = |name| value(name).unwrap_or(f64::NAN);
        let scores: String = [
            ("train_acc", "train_acc"),
            ("test_acc", "test_acc"),
            ("hungarian", "test_acc_hungarian"),
            ("nmi", "test_nmi"),
        ]
        .iter()
        .filter_map(|&(shown, col)| value(col).map(|x| format!(" {shown} {x:.4}")))
        .collect();
        // The augmentation term only when it was trained with (--augment-weight).
        let aug = match v("augment") {
            a if a > 0.0 => format!(" aug {a:.4}"),
            _ => String::new(),
        };
        format!(
            "epoch {}/{epochs} lower bound {:.4} (rec {:.4} cond {:.4} w {:.4} z {:.4}) cv {:.4}{aug}{scores} clusters {}/{k} max_q {:.3} {:.1}s",
            self.epoch,
            v("lower_bound"),
            v("rec"),
            v("cond_prior"),
            v("w_prior"),
            v("z_prior"),
            v("cv"),
            self.usage.clusters_used,
            v("mean_max_q"),
            self.seconds
        )
    }
}

/// Keeps the rows of epochs `<= epoch` of an existing `metrics.csv` (without its header). Rows
/// written before a column was added (`augment`) get it empty, so that a resumed run's file
/// stays one table.
pub fn metrics_up_to(path: &Path, epoch: usize) -> Result<Vec<String>> {
    let columns = METRICS_HEADER.split(',').count();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|e| e.parse::<usize>().ok())
                .is_some_and(|e| e <= epoch)
        })
        .map(|l| {
            let missing = columns.saturating_sub(l.split(',').count());
            format!("{l}{}", ",".repeat(missing))
        })
        .collect())
}

/// The lower bound of a `metrics.csv` data row.
pub fn csv_lower_bound(row: &str) -> Option<f64> {
    row.split(',').nth(1)?.parse().ok()
}

/// Epochs and the lower bound of the last epoch in `run`'s `metrics.csv`.
pub fn final_lower_bound(run: &Path) -> Result<(usize, f64)> {
    let path = run.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let rows: Vec<&str> = text.lines().skip(1).filter(|l| !l.is_empty()).collect();
    let lb = rows
        .last()
        .and_then(|r| csv_lower_bound(r))
        .filter(|lb| lb.is_finite())
        .with_context(|| format!("{} has no final lower bound", path.display()))?;
    Ok((rows.len(), lb))
}

/// Why training ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    MaxEpochs,
    /// The lower bound improved by the relative `gain` < tolerance over `window` epochs.
    Plateau {
        window: usize,
        gain: f64,
    },
}

impl Stop {
    /// Whether training should stop after the epochs whose lower bounds are `lbs`.
    pub fn after(opts: &Options, lbs: &[f64]) -> Option<Self> {
        let w = opts.plateau_epochs;
        if lbs.len() >= opts.epoch {
            return Some(Stop::MaxEpochs);
        }
        if w == 0 || lbs.len() <= w {
            return None;
        }
        let (then, now) = (lbs[lbs.len() - 1 - w], lbs[lbs.len() - 1]);
        let gain = (now - then) / then.abs().max(f64::MIN_POSITIVE);
        (gain < opts.plateau_tol).then_some(Stop::Plateau { window: w, gain })
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Stop::MaxEpochs => "max_epochs",
            Stop::Plateau { .. } => "plateau",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(test: Option<ClusterScores>) -> EpochRecord {
        EpochRecord {
            epoch: 3,
            terms: TermValues {
                rec: 1.5,
                cond_prior: 0.25,
                w_prior: 0.125,
                z_prior: 0.0625,
                cv: 2.0,
                augment: 0.0,
                loss: 2.0,
            },
            train_acc: test.map(|s| s.aae),
            test,
            seconds: 1.23456,
            usage: Usage {
                clusters_used: 4,
                mean_max_q: 0.5,
            },
        }
    }

    #[test]
    fn csv_row_follows_the_header_and_the_line_shows_the_same_values() {
        let scores = ClusterScores {
            aae: 0.75,
            hungarian: 0.5,
            majority: 0.8,
            nmi: 0.25,
            ari: 0.125,
        };
        let with = record(Some(scores));
        let row = with.csv_row();
        assert_eq!(row.split(',').count(), METRICS_HEADER.split(',').count());
        assert_eq!(
            row,
            "3,-2.000000,1.500000,0.250000,0.125000,0.062500,2.000000,0.750000,0.750000,\
             0.500000,0.800000,0.250000,0.125000,1.235,4,0.500000,0.000000"
        );
        assert_eq!(
            with.line(10, 8),
            "epoch 3/10 lower bound -2.0000 (rec 1.5000 cond 0.2500 w 0.1250 z 0.0625) cv 2.0000 \
             train_acc 0.7500 test_acc 0.7500 hungarian 0.5000 nmi 0.2500 clusters 4/8 max_q 0.500 1.2s"
        );
        // Without labels the score cells are empty and the line leaves them out.
        let without = record(None);
        assert_eq!(
            without.csv_row(),
            "3,-2.000000,1.500000,0.250000,0.125000,0.062500,2.000000,,,,,,,1.235,4,0.500000,\
             0.000000"
        );
        assert!(!without.line(10, 8).contains("acc"));
        assert_eq!(csv_lower_bound(&row), Some(-2.0));
        // The augmentation term shows only when it was trained with.
        assert!(!with.line(10, 8).contains("aug"));
        let mut augmented = record(None);
        augmented.terms.augment = 0.5;
        assert!(augmented
            .line(10, 8)
            .contains("cv 2.0000 aug 0.5000 clusters"));
        assert!(augmented.csv_row().ends_with(",0.500000"));
    }

    #[test]
    fn rows_from_before_the_augment_column_are_padded_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        let old = "2,-2.000000,1.500000,0.250000,0.125000,0.062500,2.000000,,,,,,,1.235,4,0.500000";
        let new = record(None).csv_row();
        std::fs::write(&path, format!("{METRICS_HEADER}\n{old}\n{new}\n")).unwrap();
        let kept = metrics_up_to(&path, 3).unwrap();
        assert_eq!(kept, [format!("{old},"), new]);
        assert!(kept
            .iter()
            .all(|r| r.split(',').count() == METRICS_HEADER.split(',').count()));
    }

    #[test]
    fn plateau_rule_uses_the_relative_gain_over_the_window() {
        let mut o = Options::preset("spiral").unwrap();
        (o.epoch, o.plateau_epochs, o.plateau_tol) = (100, 2, 0.01);
        // -100 -> -99.5 over two epochs: 0.5% < 1%, stop.
        let s = Stop::after(&o, &[-100.0, -99.8, -99.5]);
        assert!(
            matches!(s, Some(Stop::Plateau { window: 2, gain }) if (gain - 0.005).abs() < 1e-9)
        );
        // -100 -> -98 is 2%: go on; too few epochs to judge: go on.
        assert_eq!(Stop::after(&o, &[-100.0, -99.0, -98.0]), None);
        assert_eq!(Stop::after(&o, &[-100.0, -100.0]), None);
        // Off, and the epoch limit.
        o.plateau_epochs = 0;
        assert_eq!(Stop::after(&o, &[-1.0, -1.0, -1.0]), None);
        o.epoch = 3;
        assert_eq!(Stop::after(&o, &[-1.0, -1.0, -1.0]), Some(Stop::MaxEpochs));
    }
}
