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
    // The same climb on the k x k confusion counts c[r * k + t] (predicted r, true t): a swap of
    // i and j changes the hits by c[i][j] + c[j][i] - c[i][i] - c[j][j], so each try costs O(1)
    // instead of a pass over the rows (Serket's loop is O(k^2 N) per sweep and hangs at
    // thousands of classes). Predicted labels >= k never hit and are never swapped.
    let mut c = vec![0usize; k * k];
    for (&r, &t) in results.iter().zip(correct) {
        if r < k {
            c[r * k + t] += 1;
        }
    }
    let mut hits: usize = (0..k).map(|r| c[r * k + r]).sum();
    // map[r]: the label that predicted label r carries now.
    let mut map: Vec<usize> = (0..k).collect();
    let mut best = 0.0;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..k {
            for j in 0..k {
                let swapped = if i == j {
                    hits
                } else {
                    hits + c[i * k + j] + c[j * k + i] - c[i * k + i] - c[j * k + j]
                };
                let acc = swapped as f64 / n;
                if acc > best {
                    best = acc;
                    if i != j {
                        for t in 0..k {
                            c.swap(i * k + t, j * k + t);
                        }
                        for m in &mut map {
                            if *m == i {
                                *m = j;
                            } else if *m == j {
                                *m = i;
                            }
                        }
                    }
                    hits = swapped;
                    changed = true;
                }
            }
        }
    }
    let remapped = results
        .iter()
        .map(|&r| if r < k { map[r] } else { r })
        .collect();
    (best, remapped)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Serket's `calc_acc` as written: every try recounts the hits over all rows.
    fn naive(results: &[usize], correct: &[usize]) -> (f64, Vec<usize>) {
        let n = correct.len().max(1) as f64;
        let k = correct.iter().max().map_or(0, |&m| m + 1);
        let mut results = results.to_vec();
        let (mut best, mut changed) = (0.0, true);
        while changed {
            changed = false;
            for i in 0..k {
                for j in 0..k {
                    let tmp: Vec<usize> = results
                        .iter()
                        .map(|&r| match r {
                            r if r == i => j,
                            r if r == j => i,
                            r => r,
                        })
                        .collect();
                    let acc = tmp.iter().zip(correct).filter(|(a, b)| a == b).count() as f64 / n;
                    if acc > best {
                        (best, results, changed) = (acc, tmp, true);
                    }
                }
            }
        }
        (best, results)
    }

    #[test]
    fn confusion_climb_matches_serkets_row_recount() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..200 {
            let (n, k, kp) = (1 + case % 40, 1 + case % 7, 1 + case % 9);
            let correct: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
            let pred: Vec<usize> = (0..n).map(|_| rng.random_range(0..kp)).collect();
            assert_eq!(
                greedy_swap_accuracy(&pred, &correct),
                naive(&pred, &correct)
            );
        }
    }

    #[test]
    fn thousands_of_classes_finish_quickly() {
        let correct: Vec<usize> = (0..2000).collect();
        let pred: Vec<usize> = (0..2000).map(|i| (i * 7) % 2000).collect();
        let t = std::time::Instant::now();
        assert_eq!(greedy_swap_accuracy(&pred, &correct).0, 1.0);
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    }
}
