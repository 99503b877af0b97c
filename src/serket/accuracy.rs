//! Accuracy as Serket reports it (`calc_acc`, a greedy label-swap hill climb, §3.4), beside the
//! shared metrics: Hungarian accuracy, NMI and ARI.

use crate::metrics;
use anyhow::Result;
use serde::Serialize;

/// Serket's `calc_acc`: with K = max(correct) + 1, repeatedly try swapping every pair of
/// labels (i, j) in the predicted labelling and keep a swap whenever it raises the accuracy
/// above the best so far; the loops continue with the new labelling and only stop after a full
/// pass without improvement. Returns the best accuracy and the remapped labelling. Greedy, so
/// it can fall short of the optimal (Hungarian) mapping.
pub fn greedy_swap_accuracy(results: &[usize], correct: &[usize]) -> (f64, Vec<usize>) {
    let n = correct.len().max(1) as f64;
    let k = correct.iter().max().map_or(0, |&m| m + 1);
    let mut results = results.to_vec();
    let mut best = 0.0;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..k {
            for j in 0..k {
                let tmp: Vec<usize> = results
                    .iter()
                    .map(|&r| {
                        if r == i {
                            j
                        } else if r == j {
                            i
                        } else {
                            r
                        }
                    })
                    .collect();
                let hits = tmp.iter().zip(correct).filter(|(a, b)| a == b).count();
                let acc = hits as f64 / n;
                if acc > best {
                    best = acc;
                    results = tmp;
                    changed = true;
                }
            }
        }
    }
    (best, results)
}

/// The scores of one labelling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Serket's greedy label-swap accuracy (comparable with its `acc.txt`).
    pub greedy: f64,
    /// Best one-to-one accuracy (Hungarian algorithm).
    pub hungarian: f64,
    pub nmi: f64,
    pub ari: f64,
    /// Number of distinct predicted labels (dead clusters show here).
    pub used_classes: usize,
}

impl Scores {
    /// Scores `pred` against `labels`; also returns the greedy-remapped labelling.
    pub fn of(pred: &[usize], labels: &[usize]) -> Result<(Self, Vec<usize>)> {
        let (greedy, remapped) = greedy_swap_accuracy(pred, labels);
        let mut used: Vec<usize> = pred.to_vec();
        used.sort_unstable();
        used.dedup();
        let s = Self {
            greedy,
            hungarian: metrics::hungarian_accuracy(pred, labels)?,
            nmi: metrics::nmi(pred, labels)?,
            ari: metrics::ari(pred, labels)?,
            used_classes: used.len(),
        };
        Ok((s, remapped))
    }
}
