//! Re-seeding of dead mixture components (an option of the training recipe, `--revive`).
//!
//! A component k whose prior head p(x|w, z=k) ends up far from every q(x|y) gets q(z=k|y) ~ 0
//! for all y, and then almost no gradient (the conditional prior weights its KL by q(z=k|y)): it
//! stays dead, and K components cluster with a handful. Like k-means' handling of empty
//! clusters or VQ-VAE's code restarts, after an epoch in which component k was the argmax of no
//! training point, k is re-seeded by splitting the most used component d: k's prior heads (means
//! and log-variances) and its q(z|y) logit row become copies of d's (means and logit weights
//! jittered so the two can separate), and both logit biases drop by log 2 so the pair shares d's
//! mass. Their optimiser moments restart from zero.

use crate::optim::Adam;
use crate::rng::StdRng;
use anyhow::{Context, Result};
use candle_core::{Tensor, Var};
use rand_distr::{Distribution, Normal};

/// Jitter, relative to the donor's weights' RMS, added to the copies.
const JITTER: f64 = 0.05;

fn var<'a>(vars: &'a [(String, Var)], name: &str) -> Result<&'a Var> {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .with_context(|| {
            format!("--revive needs the variable `{name}` (v1 objective, q(z|y) head)")
        })
}

/// Host copy of a variable, flattened.
fn host(v: &Var) -> Result<Vec<f32>> {
    Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}

fn store(v: &Var, data: Vec<f32>) -> Result<()> {
    Ok(v.set(&Tensor::from_vec(data, v.shape(), v.device())?)?)
}

/// Re-seeds every component with `counts[k] == 0` (argmax counts over an epoch's training
/// points) from the then most used one. Returns the (dead, donor) pairs.
pub fn revive_dead(
    vars: &[(String, Var)],
    adam: &mut Adam,
    counts: &[usize],
    k: usize,
    rng: &mut StdRng,
) -> Result<Vec<(usize, usize)>> {
    let mut counts = counts.to_vec();
    let dead: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
    if dead.is_empty() || counts.iter().all(|&c| c == 0) {
        return Ok(Vec::new());
    }
    let qz_w = var(vars, "recognition.q_z.weight")?;
    let qz_b = var(vars, "recognition.q_z.bias")?;
    let heads: Vec<(&str, bool)> = vec![
        ("prior.mean_x.weight", true),
        ("prior.mean_x.bias", true),
        ("prior.logvar_x.weight", false),
        ("prior.logvar_x.bias", false),
    ];
    let h = qz_w.dims()[1];
    let mut w = host(qz_w)?;
    let mut b = host(qz_b)?;
    let mut prior: Vec<Vec<f32>> = heads
        .iter()
        .map(|(n, _)| host(var(vars, n)?))
        .collect::<Result<_>>()?;
    let normal = Normal::new(0.0, 1.0).expect("unit normal");
    let rms = |x: &[f32]| (x.iter().map(|v| (v * v) as f64).sum::<f64>() / x.len() as f64).sqrt();
    let mut pairs = Vec::new();
    for &dead_k in &dead {
        let donor = (0..k).max_by_key(|&c| counts[c]).unwrap_or(0);
        // q(z|y): copy the logit row, split the mass.
        let row: Vec<f32> = w[donor * h..(donor + 1) * h].to_vec();
        let s = JITTER * rms(&row);
        for (j, v) in row.iter().enumerate() {
            w[dead_k * h + j] = v + (s * normal.sample(rng)) as f32;
        }
        let half = std::f32::consts::LN_2;
        b[donor] -= half;
        b[dead_k] = b[donor];
        // p(x|w, z): copy the donor's Dx rows of each head (weights: Dx x H; biases: Dx).
        for ((_, jitter), data) in heads.iter().zip(prior.iter_mut()) {
            let per = data.len() / k;
            let src: Vec<f32> = data[donor * per..(donor + 1) * per].to_vec();
            let s = if *jitter { JITTER * rms(&src) } else { 0.0 };
            for (j, v) in src.iter().enumerate() {
                data[dead_k * per + j] = v + (s * normal.sample(rng)) as f32;
            }
        }
        counts[dead_k] = counts[donor] / 2;
        counts[donor] -= counts[dead_k];
        pairs.push((dead_k, donor));
    }
    store(qz_w, w)?;
    store(qz_b, b)?;
    for ((name, _), data) in heads.iter().zip(prior) {
        let per = data.len() / k;
        store(var(vars, name)?, data)?;
        for &(dead_k, donor) in &pairs {
            adam.zero_moments_of(name, dead_k * per, per)?;
            adam.zero_moments_of(name, donor * per, per)?;
        }
    }
    for &(dead_k, donor) in &pairs {
        for c in [dead_k, donor] {
            adam.zero_moments_of("recognition.q_z.weight", c * h, h)?;
            adam.zero_moments_of("recognition.q_z.bias", c, 1)?;
        }
    }
    Ok(pairs)
}
