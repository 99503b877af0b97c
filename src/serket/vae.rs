//! Serket's VAE module (§2): an MLP encoder/decoder trained on
//! `mean over the batch of [Σ_pixels BCE(logits, x) + α·KL(q(z|x) ‖ N(μ, I))]` (or, for
//! real-valued features, a Gaussian likelihood in place of the BCE), where μ is the
//! GMM's backward message (each point's class mean; zeros before the first GMM update). It
//! sends a latent *sample* forward, so the GMM sees the encoder's uncertainty.

use super::data::{format_matrix, Fmt, Matrix};
use super::framework::{Module, Node, Serket};
use crate::optim::{Adam, AdamConfig};
use crate::rng::{permutation, randn, rng, stream, StdRng};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use std::fmt::Write as _;
use std::rc::Rc;

/// Weight initialisation of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Init {
    /// `tf.truncated_normal(stddev = 0.1)`, zero biases (tutorial era).
    TruncatedNormal,
    /// Glorot-uniform kernels, zero biases (tf.keras default; current upstream).
    GlorotUniform,
}

/// The two upstream generations of the VAE (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum VaePreset {
    /// Current upstream (HEAD `5765e0c`): hidden 128, Adam 1e-3, weights and Adam state kept
    /// across rounds.
    Upstream,
    /// Tutorial era (`0c9c46d`): hidden 100, Adam 0.01, re-initialised at every update.
    Tutorial,
}

/// The decoder's likelihood p(x|z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VaeLikelihood {
    /// Σ BCE(logits, x): values in [0, 1] (the tutorials' images).
    #[default]
    Bernoulli,
    /// Σ_d [log(2πσ_d²)/2 + (x_d − x̂_d)² / 2σ_d²] with σ_d learned per dimension, as a
    /// standard Gaussian VAE; or Σ (x − x̂)² / 2σ² with a fixed σ (`VaeConfig::sigma`).
    Gaussian,
}

/// VAE settings.
#[derive(Debug, Clone, Serialize)]
pub struct VaeConfig {
    pub preset: VaePreset,
    pub hidden: usize,
    pub lr: f64,
    pub init: Init,
    /// Keep weights (and Adam state) from one update to the next.
    pub keep_weights: bool,
    /// Epochs per update (upstream `epoch` / `itr`).
    pub epochs: usize,
    /// Mini-batch size; `None` is one full-batch step per epoch.
    pub batch_size: Option<usize>,
    /// α, the KL weight.
    pub kld_weight: f64,
    pub likelihood: VaeLikelihood,
    /// σ of the Gaussian likelihood, fixed (`--sigma`); `None`: one σ per dimension, learned
    /// with the weights. Ignored for Bernoulli.
    pub sigma: Option<f64>,
}

impl VaeConfig {
    /// The settings of a preset, with the tutorial's 200 epochs of 500-point batches.
    pub fn preset(p: VaePreset) -> Self {
        let (hidden, lr, init, keep_weights) = match p {
            VaePreset::Upstream => (128, 1e-3, Init::GlorotUniform, true),
            VaePreset::Tutorial => (100, 1e-2, Init::TruncatedNormal, false),
        };
        Self {
            preset: p,
            hidden,
            lr,
            init,
            keep_weights,
            epochs: 200,
            batch_size: Some(500),
            kld_weight: 1.0,
            likelihood: VaeLikelihood::Bernoulli,
            sigma: None,
        }
    }
}

/// Bounds of a learned log σ² per dimension (scaled units). A constant column (valid data) would
/// otherwise drive its σ to 0 and the loss to −∞; σ ≥ 0.03 is far below the spread of a
/// standardized feature, and σ ≤ 30 far above it.
const LOG_VAR_RANGE: (f64, f64) = (-7.0, 7.0);

/// The learned log σ² is this multiple of its variable. Adam moves a variable by about the
/// learning rate per step whatever its gradient, so at 1e-3 a log σ² stored as is would move
/// by 0.4 over the tutorial's 400 steps of a table: σ would barely leave its start.
const LOG_VAR_GAIN: f64 = 10.0;

/// Encoder x → h → (μ, log σ²) and decoder z → h → logits, as plain weight matrices
/// (`[in, out]`) so every initial value comes from the seeded generator; for a Gaussian
/// likelihood with a learned σ, also the decoder's log σ² per dimension (`out.logvar`, last).
struct Net {
    vars: Vec<(String, Var)>,
}

impl Net {
    fn new(input: usize, cfg: &VaeConfig, latent: usize, g: &mut StdRng) -> Result<Self> {
        let (hidden, init) = (cfg.hidden, cfg.init);
        let shapes = [
            ("enc.w", input, hidden),
            ("mu.w", hidden, latent),
            ("lv.w", hidden, latent),
            ("dec.w", latent, hidden),
            ("out.w", hidden, input),
        ];
        let mut vars = Vec::new();
        for (name, i, o) in shapes {
            let w: Vec<f32> = (0..i * o)
                .map(|_| match init {
                    Init::TruncatedNormal => loop {
                        let v: f64 = g.sample(StandardNormal);
                        if v.abs() <= 2.0 {
                            break (0.1 * v) as f32;
                        }
                    },
                    Init::GlorotUniform => {
                        let lim = (6.0 / (i + o) as f64).sqrt();
                        g.random_range(-lim..lim) as f32
                    }
                })
                .collect();
            vars.push((
                name.to_string(),
                Var::from_tensor(&Tensor::from_vec(w, (i, o), &Device::Cpu)?)?,
            ));
            let b = name.replace(".w", ".b");
            vars.push((
                b,
                Var::from_tensor(&Tensor::zeros(o, DType::F32, &Device::Cpu)?)?,
            ));
        }
        if (cfg.likelihood, cfg.sigma) == (VaeLikelihood::Gaussian, None) {
            // σ = 1 to start: the spread of a standardized feature. Draws nothing, so the
            // weights are those of a fixed σ.
            let lv = Tensor::zeros(input, DType::F32, &Device::Cpu)?;
            vars.push(("out.logvar".into(), Var::from_tensor(&lv)?));
        }
        Ok(Self { vars })
    }

    /// The decoder's learned log σ² per dimension, within [`LOG_VAR_RANGE`].
    fn log_var(&self) -> Result<Option<Tensor>> {
        let Some((_, lv)) = self.vars.iter().find(|(n, _)| n == "out.logvar") else {
            return Ok(None);
        };
        let lv = lv.as_tensor().affine(LOG_VAR_GAIN, 0.0)?;
        Ok(Some(lv.clamp(LOG_VAR_RANGE.0, LOG_VAR_RANGE.1)?))
    }

    fn linear(&self, x: &Tensor, layer: usize) -> Result<Tensor> {
        let w = self.vars[2 * layer].1.as_tensor();
        let b = self.vars[2 * layer + 1].1.as_tensor();
        Ok(x.matmul(w)?.broadcast_add(b)?)
    }

    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.linear(x, 0)?.relu()?;
        Ok((self.linear(&h, 1)?, self.linear(&h, 2)?))
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let h = self.linear(z, 3)?.relu()?;
        self.linear(&h, 4)
    }
}

/// Mean over rows of −log p(x|z) + α·KL(N(μ, e^lv) ‖ N(μ_prior, I)); `out` is the decoder's
/// output (logits for Bernoulli, the mean for Gaussian), `x_log_var` its learned log σ² per
/// dimension (Gaussian without `--sigma`).
fn loss(
    (out, x_log_var): (&Tensor, Option<&Tensor>),
    x: &Tensor,
    (mu, lv): (&Tensor, &Tensor),
    mu_prior: &Tensor,
    cfg: &VaeConfig,
) -> Result<Tensor> {
    let rec = match (cfg.likelihood, x_log_var, cfg.sigma) {
        // Stable sigmoid cross-entropy, max(l, 0) − x·l + ln(1 + e^{−|l|}), summed per row in
        // one fused op.
        (VaeLikelihood::Bernoulli, ..) => super::bce::bce_with_logits_rows(out, x)?,
        // log(2πσ_d²)/2 + (x − x̂)² / 2σ_d²: the σ_d are learned, so the log term counts.
        (VaeLikelihood::Gaussian, Some(log_var), _) => {
            let sq = (x - out)?.sqr()?.broadcast_mul(&log_var.neg()?.exp()?)?;
            let log_norm = log_var.affine(1.0, (2.0 * std::f64::consts::PI).ln())?;
            (sq.broadcast_add(&log_norm)?.affine(0.5, 0.0)?).sum(D::Minus1)?
        }
        // A fixed σ: the constant log(2πσ²)/2 per value is left out, as BCE's is.
        (VaeLikelihood::Gaussian, None, sigma) => {
            let sigma = sigma.unwrap_or(1.0);
            (x - out)?
                .sqr()?
                .affine(0.5 / (sigma * sigma), 0.0)?
                .sum(D::Minus1)?
        }
    };
    let kld = ((lv.affine(1.0, 1.0)? - (mu - mu_prior)?.sqr()?)? - lv.exp()?)?
        .sum(D::Minus1)?
        .affine(-0.5, 0.0)?;
    Ok((rec + kld.affine(cfg.kld_weight, 0.0)?)?.mean_all()?)
}

/// The reconstruction x̂ from the decoder's output.
fn mean_of(out: &Tensor, likelihood: VaeLikelihood) -> Result<Tensor> {
    Ok(match likelihood {
        VaeLikelihood::Bernoulli => candle_nn::ops::sigmoid(out)?,
        VaeLikelihood::Gaussian => out.clone(),
    })
}

/// The values of `t`, row-major, as f64.
fn f64s(t: &Tensor) -> Result<Vec<f64>> {
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// Per-update training record.
#[derive(Debug, Clone, Serialize)]
pub struct VaeRound {
    pub round: usize,
    /// Loss on all data after training (nats per image).
    pub final_loss: f64,
    /// The learned σ of the Gaussian likelihood per dimension after the round (none with a
    /// fixed σ or Bernoulli).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<Vec<f64>>,
    pub seconds: f64,
}

/// `vae.VAE(latent_dim, epochs, batch_size)`: observes one child (the data: values in [0, 1] for
/// the Bernoulli likelihood, any real values for the Gaussian);
/// sends z forward and the reconstruction x̂ back to the child.
pub struct Vae {
    node: Rc<Node>,
    latent: usize,
    pub cfg: VaeConfig,
    net: Option<(Net, Adam)>,
    rng: StdRng,
    round: usize,
    /// Also write the reconstructions `x_hat_learn.txt` (N x input, `%.4f`).
    pub save_reconstructions: bool,
    /// Show training progress on stdout ([`super::progress::Progress`]); off for library use.
    pub show_progress: bool,
    pub history: Vec<VaeRound>,
}

impl Vae {
    /// A VAE with a `latent`-dimensional code.
    pub fn new(srk: &Serket, latent: usize, cfg: VaeConfig) -> Self {
        let node = srk.node("vae");
        let rng = rng(node.seed(), stream::INIT);
        Self {
            node,
            latent,
            cfg,
            net: None,
            rng,
            round: 0,
            save_reconstructions: true,
            show_progress: false,
            history: Vec::new(),
        }
    }

    /// Trains for `epochs` of shuffled mini-batches; returns the mean loss of each epoch.
    fn train(&mut self, x: &Tensor, mu_prior: &Tensor) -> Result<Vec<f64>> {
        let (n, input) = x.dims2()?;
        if self.net.is_none() || !self.cfg.keep_weights {
            let net = Net::new(input, &self.cfg, self.latent, &mut self.rng)?;
            let adam = Adam::new(
                net.vars.clone(),
                AdamConfig {
                    lr: self.cfg.lr,
                    ..AdamConfig::default()
                },
            )?;
            self.net = Some((net, adam));
        }
        let batch = self.cfg.batch_size.unwrap_or(n).clamp(1, n);
        let (net, adam) = self.net.as_mut().expect("built above");
        let mut epoch_loss = Vec::with_capacity(self.cfg.epochs);
        let progress = self.show_progress.then(|| {
            super::progress::Progress::new(format!("vae round {}", self.round), self.cfg.epochs)
        });
        let steps = crate::epoch::steps(n, batch, crate::epoch::Tail::Keep);
        for e in 0..self.cfg.epochs {
            // One generator carried across epochs and rounds, as Serket's VAE draws.
            let order = permutation(&mut self.rng, n);
            let mut tot = 0.0;
            let seen = crate::epoch::run(&order, batch, steps, e + 1, None, |_, idx, _| {
                let ids = Tensor::from_vec(
                    idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    idx.len(),
                    &Device::Cpu,
                )?;
                let xb = x.index_select(&ids, 0)?;
                let pb = mu_prior.index_select(&ids, 0)?;
                let (mu, lv) = net.encode(&xb)?;
                let eps = randn(&mut self.rng, mu.shape(), &Device::Cpu)?;
                let z = (&mu + (lv.affine(0.5, 0.0)?.exp()? * eps)?)?;
                let out = net.decode(&z)?;
                let x_log_var = net.log_var()?;
                let l = loss((&out, x_log_var.as_ref()), &xb, (&mu, &lv), &pb, &self.cfg)?;
                adam.step(&l.backward()?)?;
                tot += l.to_scalar::<f32>()? as f64 * idx.len() as f64;
                Ok(None)
            })?;
            epoch_loss.push(tot / seen as f64);
            if let Some(p) = &progress {
                p.epoch(e + 1, tot / seen as f64);
            }
        }
        if let Some(p) = progress {
            p.finish();
        }
        Ok(epoch_loss)
    }
}

impl Module for Vae {
    fn node(&self) -> &Rc<Node> {
        &self.node
    }

    fn update(&mut self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let obs = self.node.get_observations()?;
        let data = &obs[0];
        let (n, input) = (data.rows, data.cols);
        let mu_prior = match self.node.get_backward_msg() {
            Some(m) if m.rows == n && m.cols == self.latent => m,
            Some(m) => bail!(
                "{} got a {} x {} prior mean, expected {n} x {}",
                self.node.name(),
                m.rows,
                m.cols,
                self.latent
            ),
            None => Matrix::filled(n, self.latent, 0.0),
        };
        let x = Tensor::from_vec(data.to_f32(), (n, input), &Device::Cpu)?;
        let prior = Tensor::from_vec(mu_prior.to_f32(), (n, self.latent), &Device::Cpu)?;
        let epoch_loss = self.train(&x, &prior)?;
        // One fresh sample of z and its reconstruction on all data.
        let (net, _) = self.net.as_ref().expect("trained");
        let (mu, lv) = net.encode(&x)?;
        let eps = randn(&mut self.rng, mu.shape(), &Device::Cpu)?;
        let z = (&mu + (lv.affine(0.5, 0.0)?.exp()? * eps)?)?;
        let logits = net.decode(&z)?;
        let x_log_var = net.log_var()?;
        let final_loss = loss(
            (&logits, x_log_var.as_ref()),
            &x,
            (&mu, &lv),
            &prior,
            &self.cfg,
        )?
        .to_scalar::<f32>()? as f64;
        let sigma = match &x_log_var {
            Some(lv) => Some(f64s(&lv.affine(0.5, 0.0)?.exp()?)?),
            None => None,
        };
        let z = Matrix::new(n, self.latent, f64s(&z)?)?;
        let x_hat = Matrix::new(n, input, f64s(&mean_of(&logits, self.cfg.likelihood)?)?)?;
        let node = self.node.clone();
        let r = self.round;
        node.save(r, "z_learn.txt", &format_matrix(&z, Fmt::Exp18))?;
        let mut log = String::new();
        for (e, l) in epoch_loss.iter().enumerate() {
            let _ = writeln!(log, "{} {l:.6}", e + 1);
        }
        // `epoch loss` rows: the mean mini-batch loss of each epoch (T logs the last batch's).
        node.save(r, "loss.txt", &log)?;
        if self.save_reconstructions {
            // Latest round only: 3000 x 784 values per round would dominate the output.
            let mut s = String::with_capacity(n * input * 7);
            for i in 0..n {
                for (j, v) in x_hat.row(i).iter().enumerate() {
                    if j > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{v:.4}");
                }
                s.push('\n');
            }
            crate::atomic::write_str(&node.dir().join("x_hat_learn.txt"), &s)?;
        }
        node.set_forward_msg(z);
        node.send_backward_msgs(vec![x_hat])?;
        self.history.push(VaeRound {
            round: r,
            final_loss,
            sigma,
            seconds: t0.elapsed().as_secs_f64(),
        });
        self.round += 1;
        Ok(())
    }
}
