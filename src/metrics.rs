//! Clustering metrics: the upstream AAE accuracy rule (Makhzani et al.), Hungarian (one-to-one)
//! accuracy, majority-label accuracy, NMI and ARI.
//!
//! Cluster assignments and labels are plain `usize` indices; the soft assignment matrix Q is a
//! row-major `[N x K]` slice, as upstream's `ClusteringEvaluations.lua` takes it.

use anyhow::{bail, Result};
use serde::Serialize;

/// All clustering scores of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClusterScores {
    /// Upstream's rule: each cluster takes the label of its single most confident example.
    pub aae: f64,
    /// Best one-to-one matching of clusters to labels (Hungarian algorithm).
    pub hungarian: f64,
    /// Each cluster takes the most frequent label among its members.
    pub majority: f64,
    /// Normalised mutual information (arithmetic-mean normalisation, as scikit-learn).
    pub nmi: f64,
    /// Adjusted Rand index.
    pub ari: f64,
}

impl ClusterScores {
    /// Scores of the soft assignment `q` (`[N x K]`, row-major) against `labels`.
    pub fn from_q(q: &[f32], k: usize, labels: &[usize]) -> Result<Self> {
        let assign = argmax_rows(q, k, labels.len())?;
        Ok(Self {
            aae: aae_accuracy(q, k, labels)?,
            hungarian: hungarian_accuracy(&assign, labels)?,
            majority: majority_accuracy(&assign, labels)?,
            nmi: nmi(&assign, labels)?,
            ari: ari(&assign, labels)?,
        })
    }
}

/// How a set of cluster posteriors uses the K components (collapse shows here first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Usage {
    /// Distinct components that are some row's argmax.
    pub clusters_used: usize,
    /// Mean over rows of max_k q(z=k|y): 1/K for uniform posteriors, 1 for one-hot ones.
    pub mean_max_q: f64,
}

impl Usage {
    /// Usage of the soft assignment `q` (`[N x K]`, row-major).
    pub fn from_q(q: &[f32], k: usize) -> Result<Self> {
        if k == 0 || !q.len().is_multiple_of(k) {
            bail!(
                "a [N x K] matrix with K = {k} cannot have {} entries",
                q.len()
            );
        }
        let n = q.len() / k;
        if n == 0 {
            return Ok(Self::default());
        }
        let assign = argmax_rows(q, k, n)?;
        let mut used = vec![false; k];
        for &a in &assign {
            used[a] = true;
        }
        let max_sum: f64 = q
            .chunks_exact(k)
            .map(|row| row.iter().cloned().fold(f32::MIN, f32::max) as f64)
            .sum();
        Ok(Self {
            clusters_used: used.iter().filter(|&&u| u).count(),
            mean_max_q: max_sum / n as f64,
        })
    }
}

/// Row-wise argmax of a row-major `[n x k]` matrix (first index wins ties, as torch's `max`).
pub fn argmax_rows(q: &[f32], k: usize, n: usize) -> Result<Vec<usize>> {
    if k == 0 || q.len() != n * k {
        bail!(
            "assignment matrix has {} values, expected {n} rows x {k} clusters",
            q.len()
        );
    }
    Ok(q.chunks(k)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect())
}

fn check_same_len(a: &[usize], b: &[usize]) -> Result<()> {
    if a.len() != b.len() {
        bail!("{} cluster assignments but {} labels", a.len(), b.len());
    }
    if a.is_empty() {
        bail!("cannot score an empty set of assignments");
    }
    Ok(())
}

/// Upstream accuracy (`ClusteringEvaluations.lua`): cluster k is labelled with the true label of
/// `argmax_n Q[n,k]`; every example is assigned `argmax_k Q[n,k]`. Several clusters may share a
/// label, and a cluster that is nobody's argmax contributes nothing.
pub fn aae_accuracy(q: &[f32], k: usize, labels: &[usize]) -> Result<f64> {
    let n = labels.len();
    let assign = argmax_rows(q, k, n)?;
    if n == 0 {
        bail!("cannot score an empty set of assignments");
    }
    let mut best_row = vec![0usize; k];
    for (i, row) in q.chunks(k).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v > q[best_row[j] * k + j] {
                best_row[j] = i;
            }
        }
    }
    let cluster_label: Vec<usize> = best_row.iter().map(|&i| labels[i]).collect();
    let hits = assign
        .iter()
        .zip(labels)
        .filter(|(&a, &t)| cluster_label[a] == t)
        .count();
    Ok(hits as f64 / n as f64)
}

/// Contingency table `[clusters x classes]`.
fn contingency(assign: &[usize], labels: &[usize]) -> Vec<Vec<u64>> {
    let kc = assign.iter().max().map_or(0, |m| m + 1);
    let kl = labels.iter().max().map_or(0, |m| m + 1);
    let mut t = vec![vec![0u64; kl]; kc];
    for (&a, &l) in assign.iter().zip(labels) {
        t[a][l] += 1;
    }
    t
}

/// Accuracy under the best one-to-one map of clusters to labels (clusters left unmatched when
/// K exceeds the number of classes count as wrong).
pub fn hungarian_accuracy(assign: &[usize], labels: &[usize]) -> Result<f64> {
    check_same_len(assign, labels)?;
    let t = contingency(assign, labels);
    let side = t.len().max(t[0].len());
    let mut weights = pathfinding::matrix::Matrix::new(side, side, 0i64);
    for (a, row) in t.iter().enumerate() {
        for (l, &c) in row.iter().enumerate() {
            weights[(a, l)] = c as i64;
        }
    }
    let (total, _) = pathfinding::kuhn_munkres::kuhn_munkres(&weights);
    Ok(total as f64 / assign.len() as f64)
}

/// Accuracy when each cluster is labelled with its most frequent true label.
pub fn majority_accuracy(assign: &[usize], labels: &[usize]) -> Result<f64> {
    check_same_len(assign, labels)?;
    let hits: u64 = contingency(assign, labels)
        .iter()
        .map(|row| row.iter().copied().max().unwrap_or(0))
        .sum();
    Ok(hits as f64 / assign.len() as f64)
}

fn entropy(counts: impl Iterator<Item = u64>, n: f64) -> f64 {
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Normalised mutual information, `I(A;L) / ((H(A) + H(L)) / 2)`; 1 when both partitions are a
/// single set (scikit-learn's convention).
pub fn nmi(assign: &[usize], labels: &[usize]) -> Result<f64> {
    check_same_len(assign, labels)?;
    let n = assign.len() as f64;
    let t = contingency(assign, labels);
    let rows: Vec<u64> = t.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<u64> = (0..t[0].len())
        .map(|l| t.iter().map(|r| r[l]).sum())
        .collect();
    let (ha, hl) = (
        entropy(rows.iter().copied(), n),
        entropy(cols.iter().copied(), n),
    );
    if ha == 0.0 && hl == 0.0 {
        return Ok(1.0);
    }
    let mut mi = 0.0;
    for (a, row) in t.iter().enumerate() {
        for (l, &c) in row.iter().enumerate() {
            if c > 0 {
                let c = c as f64;
                mi += c / n * (c * n / (rows[a] as f64 * cols[l] as f64)).ln();
            }
        }
    }
    let denom = (ha + hl) / 2.0;
    Ok(if denom > 0.0 {
        (mi / denom).clamp(0.0, 1.0)
    } else {
        0.0
    })
}

/// Adjusted Rand index (Hubert & Arabie); 1 for identical partitions, about 0 for random ones.
pub fn ari(assign: &[usize], labels: &[usize]) -> Result<f64> {
    check_same_len(assign, labels)?;
    let pairs = |c: u64| (c * c.saturating_sub(1)) as f64 / 2.0;
    let t = contingency(assign, labels);
    let sum_ij: f64 = t.iter().flatten().map(|&c| pairs(c)).sum();
    let sum_a: f64 = t.iter().map(|r| pairs(r.iter().sum())).sum();
    let sum_b: f64 = (0..t[0].len())
        .map(|l| pairs(t.iter().map(|r| r[l]).sum()))
        .sum();
    let total = pairs(assign.len() as u64);
    let expected = sum_a * sum_b / total.max(1.0);
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        // Both partitions trivial (all one set or all singletons): identical structure.
        return Ok(1.0);
    }
    Ok((sum_ij - expected) / (max - expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_argmax_components_and_confidence() {
        // 3 rows over K = 4: argmaxes 1, 1, 3; max probabilities 0.7, 0.4, 0.9.
        let q = [
            0.1f32, 0.7, 0.1, 0.1, //
            0.3, 0.4, 0.2, 0.1, //
            0.0, 0.05, 0.05, 0.9,
        ];
        let u = Usage::from_q(&q, 4).unwrap();
        assert_eq!(u.clusters_used, 2);
        assert!((u.mean_max_q - (0.7 + 0.4 + 0.9) / 3.0).abs() < 1e-6);
        assert!(Usage::from_q(&q, 5).is_err());
    }

    #[test]
    fn aae_rule_uses_most_confident_example() {
        // 4 points, 3 clusters; every cluster is some row's argmax (assign: 0, 0, 2, 1). Each
        // cluster's most confident row: c0 row 0 (label 0), c1 row 3 (label 1), c2 row 2
        // (label 1). Hits: row 0 yes, row 1 (label 1, c0 -> 0) no, rows 2 and 3 yes => 3/4.
        let q = [
            0.9, 0.1, 0.0, //
            0.6, 0.3, 0.1, //
            0.2, 0.3, 0.5, //
            0.1, 0.8, 0.1,
        ];
        let labels = [0, 1, 1, 1];
        assert_eq!(aae_accuracy(&q, 3, &labels).unwrap(), 0.75);
    }

    #[test]
    fn aae_rule_differs_from_majority_vote() {
        // Cluster 0 holds rows 0, 1, 2 with labels 0, 1, 1: its most confident row (0.95) has
        // label 0, the majority label is 1. Cluster 1 holds row 3 (label 1).
        let q = [
            0.95f32, 0.05, //
            0.6, 0.4, //
            0.7, 0.3, //
            0.2, 0.8,
        ];
        let labels = [0, 1, 1, 1];
        // AAE: c0 -> 0, c1 -> 1; rows 0 and 3 hit => 2/4.
        assert_eq!(aae_accuracy(&q, 2, &labels).unwrap(), 0.5);
        // Majority vote: c0 -> 1 (2 hits), c1 -> 1 (1 hit) => 3/4.
        let assign = argmax_rows(&q, 2, 4).unwrap();
        assert_eq!(majority_accuracy(&assign, &labels).unwrap(), 0.75);
        // A cluster that is nobody's argmax labels nothing: column 2 is most confident on row
        // 1 (label 1), but every row's argmax is 0 or 1, so the score is unchanged.
        let q3 = [
            0.95f32, 0.05, 0.0, //
            0.5, 0.1, 0.4, //
            0.7, 0.3, 0.0, //
            0.2, 0.8, 0.0,
        ];
        assert_eq!(aae_accuracy(&q3, 3, &labels).unwrap(), 0.5);
    }

    #[test]
    fn hungarian_is_one_to_one_majority_is_not() {
        let assign = [0, 0, 0, 1, 1, 1];
        let labels = [0, 0, 0, 0, 0, 1];
        assert!((majority_accuracy(&assign, &labels).unwrap() - 5.0 / 6.0).abs() < 1e-12);
        // One-to-one: c0->0 (3 hits), c1->1 (1 hit).
        assert!((hungarian_accuracy(&assign, &labels).unwrap() - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn permuted_partition_scores_one() {
        let labels = [0, 0, 1, 1, 2, 2];
        let assign = [2, 2, 0, 0, 1, 1];
        assert_eq!(hungarian_accuracy(&assign, &labels).unwrap(), 1.0);
        assert!((nmi(&assign, &labels).unwrap() - 1.0).abs() < 1e-12);
        assert!((ari(&assign, &labels).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn nmi_and_ari_against_hand_values() {
        // sklearn: normalized_mutual_info_score([0,0,1,1],[0,1,0,1]) == 0, ARI == -0.5
        let a = [0, 0, 1, 1];
        let l = [0, 1, 0, 1];
        assert!(nmi(&a, &l).unwrap().abs() < 1e-12);
        assert!((ari(&a, &l).unwrap() + 0.5).abs() < 1e-12);
        // sklearn: ARI([0,0,1,2],[0,0,1,1]) = 0.5714285714, NMI = 0.8
        let a = [0, 0, 1, 2];
        let l = [0, 0, 1, 1];
        assert!((ari(&a, &l).unwrap() - 0.571_428_571_428_571_4).abs() < 1e-9);
        assert!((nmi(&a, &l).unwrap() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn more_clusters_than_labels() {
        let assign = [0, 1, 2, 3];
        let labels = [0, 0, 1, 1];
        assert_eq!(hungarian_accuracy(&assign, &labels).unwrap(), 0.5);
        assert_eq!(majority_accuracy(&assign, &labels).unwrap(), 1.0);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(aae_accuracy(&[0.1, 0.2, 0.3], 2, &[0, 1]).is_err());
        assert!(hungarian_accuracy(&[0, 1], &[0]).is_err());
        assert!(nmi(&[], &[]).is_err());
    }
}
