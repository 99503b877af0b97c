//! Serket's multimodal LDA module (`mlda/mlda.pyx`, §4): collapsed Gibbs sampling of one topic
//! per word token, with the document-topic counts shared by all modalities (what couples them),
//! α = β = 1, restarted from random topics at every update.

use super::accuracy::Scores;
use super::data::{format_column, format_matrix, Fmt, Matrix};
use super::framework::{Module, Node, Serket};
use super::gmm::sample_weights;
use crate::rng::{rng, stream, StdRng};
use anyhow::{bail, Result};
use rand::Rng;
use serde::Serialize;
use std::rc::Rc;

/// Hyper-parameters (module constants upstream).
#[derive(Debug, Clone)]
pub struct MldaConfig {
    /// Gibbs iterations per update.
    pub iters: usize,
    pub alpha: f64,
    pub beta: f64,
}

impl Default for MldaConfig {
    fn default() -> Self {
        Self {
            iters: 100,
            alpha: 1.0,
            beta: 1.0,
        }
    }
}

/// The result of one run of the sampler.
#[derive(Debug, Clone)]
pub struct MldaFit {
    /// P(topic | doc) = normalised n_dz + α (the forward message).
    pub pdz: Matrix,
    /// Per modality m, the predicted word distribution Pdz · Φ_mᵀ (`D x V_m`): the backward
    /// message to child m.
    pub pmdw: Vec<Matrix>,
    /// Log-likelihood after each iteration.
    pub loglik: Vec<f64>,
}

/// Word counts of one modality (§4.2): negatives become 0; with a weight, each row is scaled
/// to sum to it (a zero row stays zero); then values are truncated to integers.
pub fn to_counts(m: &Matrix, weight: Option<f64>) -> Vec<Vec<u32>> {
    (0..m.rows)
        .map(|i| {
            let row: Vec<f64> = m.row(i).iter().map(|&v| v.max(0.0)).collect();
            let scale = match weight {
                Some(w) => {
                    let s: f64 = row.iter().sum();
                    w / if s == 0.0 { 1.0 } else { s }
                }
                None => 1.0,
            };
            row.iter().map(|&v| (v * scale) as u32).collect()
        })
        .collect()
}

/// Collapsed Gibbs sampling of `k` topics. `counts[m][d][w]` is the count of word w of
/// modality m in document d; `bias` (uniform when `None`) multiplies topic weights.
pub fn fit(
    counts: &[Vec<Vec<u32>>],
    k: usize,
    bias: Option<&Matrix>,
    cfg: &MldaConfig,
    rng: &mut StdRng,
) -> Result<MldaFit> {
    let docs = check_inputs(counts, k, bias)?;
    let vocab: Vec<usize> = counts
        .iter()
        .map(|c| c.first().map_or(0, Vec::len))
        .collect();
    let (alpha, beta) = (cfg.alpha, cfg.beta);
    // Word lists in vocabulary order (a word of count c appears c times), random topics.
    let words: Vec<Vec<Vec<u32>>> = counts
        .iter()
        .map(|cm| {
            cm.iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .flat_map(|(w, &c)| std::iter::repeat_n(w as u32, c as usize))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut topics: Vec<Vec<Vec<u16>>> = words
        .iter()
        .map(|wm| {
            wm.iter()
                .map(|ws| ws.iter().map(|_| rng.random_range(0..k) as u16).collect())
                .collect()
        })
        .collect();
    let mut n_dz = vec![0.0f64; docs * k];
    // n_mwz[m][w * k + z]: word-major so one token reads one contiguous row.
    let mut n_mwz: Vec<Vec<f64>> = vocab.iter().map(|&v| vec![0.0; v * k]).collect();
    let mut n_mz = vec![vec![0.0f64; k]; counts.len()];
    for m in 0..counts.len() {
        for d in 0..docs {
            for (&w, &z) in words[m][d].iter().zip(&topics[m][d]) {
                let (w, z) = (w as usize, z as usize);
                n_dz[d * k + z] += 1.0;
                n_mwz[m][w * k + z] += 1.0;
                n_mz[m][z] += 1.0;
            }
        }
    }
    let mut weights = vec![0.0; k];
    let mut loglik = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        for d in 0..docs {
            for m in 0..counts.len() {
                let vb = vocab[m] as f64 * beta;
                for (&w, z) in words[m][d].iter().zip(topics[m][d].iter_mut()) {
                    let w = w as usize;
                    let old = *z as usize;
                    n_dz[d * k + old] -= 1.0;
                    n_mwz[m][w * k + old] -= 1.0;
                    n_mz[m][old] -= 1.0;
                    for (t, pw) in weights.iter_mut().enumerate() {
                        let b = bias.map_or(1.0, |b| b.row(d)[t]);
                        let p = (n_dz[d * k + t] + alpha) * (n_mwz[m][w * k + t] + beta)
                            / (n_mz[m][t] + vb)
                            * b;
                        *pw = p;
                    }
                    let new = sample_weights(&weights, rng);
                    *z = new as u16;
                    n_dz[d * k + new] += 1.0;
                    n_mwz[m][w * k + new] += 1.0;
                    n_mz[m][new] += 1.0;
                }
            }
        }
        loglik.push(log_likelihood(counts, &n_dz, &n_mwz, &n_mz, k, alpha, beta));
    }
    let (pdz, pmdw) = estimates(&n_dz, &n_mwz, &n_mz, &vocab, k, alpha, beta);
    Ok(MldaFit { pdz, pmdw, loglik })
}

/// The number of documents, after checking that every modality has as many and that `bias` has
/// a row per document and a column per topic.
fn check_inputs(counts: &[Vec<Vec<u32>>], k: usize, bias: Option<&Matrix>) -> Result<usize> {
    if counts.is_empty() || k == 0 {
        bail!("MLDA needs at least one modality and K > 0");
    }
    let docs = counts[0].len();
    for (m, c) in counts.iter().enumerate() {
        if c.len() != docs {
            bail!(
                "MLDA modality {m} has {} documents, modality 0 has {docs}",
                c.len()
            );
        }
    }
    if let Some(b) = bias {
        if b.rows != docs || b.cols < k {
            bail!(
                "MLDA bias is {} x {}, expected {docs} rows and at least {k} columns",
                b.rows,
                b.cols
            );
        }
    }
    Ok(docs)
}

/// The estimates from the final counts: θ_d = P(z|d) and, per modality, P(w|d) = Σ_z θ_d[z]
/// φ_m[z,w].
fn estimates(
    n_dz: &[f64],
    n_mwz: &[Vec<f64>],
    n_mz: &[Vec<f64>],
    vocab: &[usize],
    k: usize,
    alpha: f64,
    beta: f64,
) -> (Matrix, Vec<Matrix>) {
    let docs = n_dz.len() / k;
    let mut pdz = Matrix::filled(docs, k, 0.0);
    for d in 0..docs {
        let row = pdz.row_mut(d);
        let tot: f64 = (0..k).map(|z| n_dz[d * k + z] + alpha).sum();
        for z in 0..k {
            row[z] = (n_dz[d * k + z] + alpha) / tot;
        }
    }
    let pmdw = (0..vocab.len())
        .map(|m| {
            let v = vocab[m];
            let vb = v as f64 * beta;
            let mut out = Matrix::filled(docs, v, 0.0);
            for d in 0..docs {
                let th = pdz.row(d).to_vec();
                let row = out.row_mut(d);
                for (w, o) in row.iter_mut().enumerate() {
                    *o = (0..k)
                        .map(|z| th[z] * (n_mwz[m][w * k + z] + beta) / (n_mz[m][z] + vb))
                        .sum();
                }
            }
            out
        })
        .collect();
    (pdz, pmdw)
}

/// Σ_m Σ_d Σ_w cnt[d,w] · ln Σ_z φ_m[z,w] θ_d[z] (§4.3), over non-zero counts only.
fn log_likelihood(
    counts: &[Vec<Vec<u32>>],
    n_dz: &[f64],
    n_mwz: &[Vec<f64>],
    n_mz: &[Vec<f64>],
    k: usize,
    alpha: f64,
    beta: f64,
) -> f64 {
    let mut ll = 0.0;
    for (m, cm) in counts.iter().enumerate() {
        let vb = cm.first().map_or(0, Vec::len) as f64 * beta;
        for (d, row) in cm.iter().enumerate() {
            let tot: f64 = (0..k).map(|z| n_dz[d * k + z]).sum::<f64>() + k as f64 * alpha;
            for (w, &c) in row.iter().enumerate().filter(|(_, &c)| c > 0) {
                let p: f64 = (0..k)
                    .map(|z| {
                        (n_mwz[m][w * k + z] + beta) / (n_mz[m][z] + vb) * (n_dz[d * k + z] + alpha)
                            / tot
                    })
                    .sum();
                ll += c as f64 * p.ln();
            }
        }
    }
    ll
}

/// Scores and timing of one MLDA update.
#[derive(Debug, Clone, Serialize)]
pub struct MldaRound {
    pub round: usize,
    pub scores: Option<Scores>,
    pub final_loglik: f64,
    pub seconds: f64,
}

/// `mlda.MLDA(K, weights, category=…)`: observes several children (modalities, in connect
/// order); sends P(topic | doc) forward and Pmdw[m] back to child m.
pub struct Mlda {
    node: Rc<Node>,
    k: usize,
    weights: Option<Vec<f64>>,
    category: Option<Vec<usize>>,
    pub cfg: MldaConfig,
    rng: StdRng,
    round: usize,
    pub history: Vec<MldaRound>,
}

impl Mlda {
    /// An MLDA with `k` topics; `weights[m]` rescales modality m to that many words per document
    /// (raw counts when `None`); `category` enables the accuracy files.
    pub fn new(
        srk: &Serket,
        k: usize,
        weights: Option<Vec<f64>>,
        category: Option<Vec<usize>>,
    ) -> Self {
        let node = srk.node("mlda");
        let rng = rng(node.seed(), stream::DATA);
        Self {
            node,
            k,
            weights,
            category,
            cfg: MldaConfig::default(),
            rng,
            round: 0,
            history: Vec::new(),
        }
    }

    /// Sets the Gibbs iterations per update.
    pub fn iters(mut self, iters: usize) -> Self {
        self.cfg.iters = iters;
        self
    }
}

impl Module for Mlda {
    fn node(&self) -> &Rc<Node> {
        &self.node
    }

    fn update(&mut self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let obs = self.node.get_observations()?;
        if let Some(w) = &self.weights {
            if w.len() != obs.len() {
                bail!(
                    "{} has {} weights but {} modalities",
                    self.node.name(),
                    w.len(),
                    obs.len()
                );
            }
        }
        let names = self.node.child_names();
        let rows: Vec<(&str, usize)> = names
            .iter()
            .zip(&obs)
            .map(|(n, o)| (n.as_str(), o.rows))
            .collect();
        super::data::check_rows(&rows)?;
        let counts: Vec<Vec<Vec<u32>>> = obs
            .iter()
            .enumerate()
            .map(|(m, o)| to_counts(o, self.weights.as_ref().map(|w| w[m])))
            .collect();
        let bias = self.node.get_backward_msg();
        let fit = fit(&counts, self.k, bias.as_ref(), &self.cfg, &mut self.rng)?;
        let node = self.node.clone();
        let r = self.round;
        let docs = fit.pdz.rows;
        let pred = crate::metrics::argmax_rows(&fit.pdz.to_f32(), self.k, docs)?;
        let mut scores = None;
        let mut class_out: Vec<f64> = pred.iter().map(|&c| c as f64).collect();
        if let Some(cat) = &self.category {
            super::data::check_rows(&[("MLDA documents", docs), ("category", cat.len())])?;
            let (s, remapped) = Scores::of(&pred, cat)?;
            class_out = remapped.iter().map(|&c| c as f64).collect();
            scores = Some(s);
            node.save(r, "acc_learn.txt", &format!("{:.6}\n", s.greedy))?;
            node.save(r, "scores.json", &serde_json::to_string_pretty(&s)?)?;
        }
        // The tutorial text names class_learn.txt; upstream code writes categories_learn.txt.
        let classes = format_column(&class_out, Fmt::Int);
        node.save(r, "class_learn.txt", &classes)?;
        node.save(r, "categories_learn.txt", &classes)?;
        node.save(r, "Pdz_learn.txt", &format_matrix(&fit.pdz, Fmt::Fixed6))?;
        node.save(
            r,
            "liklihood_learn.txt",
            &format_column(&fit.loglik, Fmt::Fixed6),
        )?;
        // Small predicted distributions only (the GMM's); the HAC one is 3000 x 2400.
        for (m, p) in fit.pmdw.iter().enumerate() {
            if p.cols <= 100 {
                node.save(
                    r,
                    &format!("Pmdw[{m}]_learn.txt"),
                    &format_matrix(p, Fmt::Exp18),
                )?;
            }
        }
        node.set_forward_msg(fit.pdz);
        node.send_backward_msgs(fit.pmdw)?;
        self.history.push(MldaRound {
            round: r,
            scores,
            final_loglik: fit.loglik.last().copied().unwrap_or(f64::NAN),
            seconds: t0.elapsed().as_secs_f64(),
        });
        self.round += 1;
        Ok(())
    }
}
