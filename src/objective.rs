//! The GMVAE objective (paper v1 §3, eqs. 4-7; upstream `master:main.lua:194-263`), one function
//! per term. Every term is a **sum over the batch and the dimensions** and an **average over the
//! M Monte-Carlo samples**, as upstream (gmvae-upstream.md §2). Multi-sample tensors are
//! sample-major: row `m*N + n`.
//!
//! v1 (`--objective v1`, default): minimise
//! `L_rec + L_cond + L_w + eta * KL(q(z|y) || U) + alpha * L_CV`,
//! where alpha (`--cv-weight`) weights only the gradient of the consistency violation; the reported
//! lower bound is `-(L_rec + L_cond + L_w + eta * KL_z)`.
//!
//! v2 (`--objective v2`, the `version2` branch with the intended maths): no q(z|y) head; z is
//! inferred as p(z|x,w), which weights the conditional prior per Monte-Carlo sample, and the
//! z-prior `KL(p(z|x,w) || U)` enters with weight alpha only while its batch average exceeds the
//! free-bits threshold lambda.

use candle_core::{DType, Result, Tensor, D};
use gmvae_models::{MixturePrior, Posterior, YDistribution};

const LOG_2PI: f64 = 1.837_877_066_409_345_5;

/// Which objective (paper version / upstream branch).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveKind {
    V1,
    V2,
}

/// Which KL to z's uniform prior the gradient follows (v1: q(z|y), weighted by eta; v2:
/// p(z|x,w), weighted by alpha).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ZPriorMode {
    /// The ELBO's term, per data point: `sum_n KL(q(z|y_n) || U)` (paper eq. 5, upstream).
    #[default]
    Sample,
    /// The batch marginal: `N * KL(mean_n q(z|y_n) || U)` (v2: of p(z|x,w), averaged over the
    /// M samples). The per-point term equals this plus the mutual information I(y; z) (Hoffman
    /// & Johnson's "ELBO surgery"), so dropping the latter stops the prior from pulling every
    /// point's posterior to uniform while still pushing the components' total usage to uniform.
    Marginal,
}

/// Weights of the objective.
#[derive(Debug, Clone, Copy)]
pub struct ObjectiveConfig {
    pub kind: ObjectiveKind,
    /// M, Monte-Carlo samples of (x, w) per data point.
    pub n_mc: usize,
    /// eta (`-zPriorWeight`): weight of KL(q(z|y) || U) (v1), or of the marginal KL in
    /// [`ZPriorMode::Marginal`].
    pub z_prior_weight: f64,
    /// alpha (`-cvWeight`): gradient weight of the CV term (v1) or of the z-prior (v2).
    pub cv_weight: f64,
    /// lambda: v2's free-bits threshold, nats per data point.
    pub free_bits: f64,
    /// Which z-prior KL the gradient follows (v1); the logged lower bound is always the ELBO's.
    pub z_prior_mode: ZPriorMode,
    /// Weight of the conditional prior in the gradient (KL warm-up ramps it from 0 to 1); the
    /// logged lower bound always uses 1.
    pub cond_weight: f64,
    /// beta (`--augment-weight`): weight of the augmentation consistency term (0 = off).
    pub augment_weight: f64,
}

/// Value of each term for one batch, summed over the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TermValues {
    pub rec: f64,
    pub cond_prior: f64,
    pub w_prior: f64,
    /// KL(q(z|y) || U) (v1) or KL(p(z|x,w) || U) (v2), unweighted.
    pub z_prior: f64,
    /// Consistency violation: mean entropy of p(z|x,w) (unweighted).
    pub cv: f64,
    /// Augmentation consistency `KL(p(z|y) || p(z|T(y)))` (unweighted; 0 when off). Not a
    /// term of the lower bound.
    pub augment: f64,
    /// The reported loss, -(lower bound): rec + cond_prior + w_prior + eta*z_prior (v1) or
    /// rec + cond_prior + w_prior + z_prior (v2).
    pub loss: f64,
}

impl std::ops::AddAssign for TermValues {
    fn add_assign(&mut self, o: Self) {
        self.rec += o.rec;
        self.cond_prior += o.cond_prior;
        self.w_prior += o.w_prior;
        self.z_prior += o.z_prior;
        self.cv += o.cv;
        self.augment += o.augment;
        self.loss += o.loss;
    }
}

impl TermValues {
    /// Every term divided by `n`: sums over `n` points as per-point values.
    pub fn per_point(&self, n: f64) -> Self {
        Self {
            rec: self.rec / n,
            cond_prior: self.cond_prior / n,
            w_prior: self.w_prior / n,
            z_prior: self.z_prior / n,
            cv: self.cv / n,
            augment: self.augment / n,
            loss: self.loss / n,
        }
    }
}

/// Repeats `[N, D]` M times sample-major into `[M*N, D]`.
pub fn repeat_mc(t: &Tensor, m: usize) -> Result<Tensor> {
    if m == 1 {
        return Ok(t.clone());
    }
    let (n, d) = t.dims2()?;
    t.unsqueeze(0)?.broadcast_as((m, n, d))?.reshape((m * n, d))
}

/// The noise of one step: eps_x `[M*N, Dx]` and eps_w `[M*N, Dw]`, independent N(0, 1) draws
/// (upstream's Noise1 / Noise2), from the run's seeded generator.
pub fn draw_noise(
    rng: &mut crate::rng::StdRng,
    m: usize,
    n: usize,
    dx: usize,
    dw: usize,
    device: &candle_core::Device,
) -> Result<(Tensor, Tensor)> {
    Ok((
        crate::rng::randn(rng, (m * n, dx), device)?,
        crate::rng::randn(rng, (m * n, dw), device)?,
    ))
}

/// Reparameterised samples `mean + exp(logvar/2) * eps`, eps `[M*N, D]` sample-major.
pub fn reparameterise(mean: &Tensor, logvar: &Tensor, eps: &Tensor) -> Result<Tensor> {
    let m = eps.dim(0)? / mean.dim(0)?;
    let std = (logvar * 0.5)?.exp()?;
    repeat_mc(mean, m)? + (repeat_mc(&std, m)? * eps)?
}

/// Reconstruction term `-E_q[log p(y|x)]` (paper eq. 3's first term; upstream BCECriterion /
/// GaussianCriterion), summed over the batch and dimensions and averaged over the M samples.
/// `y` is `[N, Dy]`, `dist` is over `[M*N, Dy]`.
pub fn reconstruction(y: &Tensor, dist: &YDistribution, m: usize) -> Result<Tensor> {
    let y = repeat_mc(y, m)?;
    let total = match dist {
        // BCE from logits: softplus(l) - y*l = -[y log s(l) + (1-y) log(1-s(l))], stable for any l.
        YDistribution::Bernoulli { logits } => {
            let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            (softplus - (&y * logits)?)?.sum_all()?
        }
        YDistribution::Gaussian { mean, logvar } => {
            let sq = (&y - mean)?.sqr()?;
            let nll = ((logvar + (sq * logvar.neg()?.exp()?)?)? + LOG_2PI)? * 0.5;
            nll?.sum_all()?
        }
    };
    total / m as f64
}

/// Elementwise KL( N(mu_a, exp lv_a) || N(mu_b, exp lv_b) ) for diagonal Gaussians
/// (upstream `UtilsNetwork.lua:23-52`). Shapes broadcast.
pub fn kl_diag_gaussians(
    mu_a: &Tensor,
    lv_a: &Tensor,
    mu_b: &Tensor,
    lv_b: &Tensor,
) -> Result<Tensor> {
    let var_a = lv_a.exp()?;
    let diff2 = mu_a.broadcast_sub(mu_b)?.sqr()?;
    let ratio = (diff2.broadcast_add(&var_a)? * lv_b.neg()?.exp()?)?;
    ((lv_b.broadcast_sub(lv_a)? + ratio)? - 1.0)? * 0.5
}

/// Per-component KL `[M*N, K]`: KL(q(x|y_n) || p(x|w^(m,n), z=k)), summed over the Dx dimensions.
fn component_kl(post: &Posterior, prior: &MixturePrior, m: usize) -> Result<Tensor> {
    let mu = repeat_mc(&post.mean_x, m)?.unsqueeze(1)?;
    let lv = repeat_mc(&post.logvar_x, m)?.unsqueeze(1)?;
    kl_diag_gaussians(&mu, &lv, &prior.mean, &prior.logvar)?.sum(D::Minus1)
}

/// Conditional-prior term (paper v1 eq. 4):
/// `sum_n sum_k pi_nk (1/M) sum_m KL(q(x|y_n) || p(x|w^(m,n), z=k))`, analytic in x, Monte-Carlo
/// in w. `pi` is `[N, K]` (v1: q(z|y)) or `[M*N, K]` (v2: p(z|x,w), weighting each sample).
pub fn conditional_prior(
    post: &Posterior,
    prior: &MixturePrior,
    pi: &Tensor,
    m: usize,
) -> Result<Tensor> {
    let kl = component_kl(post, prior, m)?; // [MN, K]
    let weighted = if pi.dim(0)? == kl.dim(0)? {
        (kl * pi)?
    } else {
        (kl * repeat_mc(pi, m)?)?
    };
    weighted.sum_all()? / m as f64
}

/// w-prior term KL(q(w|y) || N(0, I)) summed over the batch (upstream `VAE_KLDCriterion`).
pub fn w_prior(mean_w: &Tensor, logvar_w: &Tensor) -> Result<Tensor> {
    let inner = ((logvar_w + 1.0)? - mean_w.sqr()?)? - logvar_w.exp()?;
    inner?.sum_all()? * -0.5
}

/// z-prior term KL(pi || Uniform(K)) = `sum_rows sum_k pi log(K pi)`, divided by `m` (the rows
/// are `[N, K]` for q(z|y), or `[M*N, K]` for p(z|x,w) averaged over the samples).
pub fn z_prior(log_pi: &Tensor, m: usize) -> Result<Tensor> {
    let k = log_pi.dim(D::Minus1)? as f64;
    (log_pi.exp()? * (log_pi + k.ln())?)?.sum_all()? / m as f64
}

/// Marginal z-prior `R * KL(mean_r pi_r || Uniform(K))` of the posteriors `pi` `[R, K]` (R = N
/// rows of q(z|y), or M*N of p(z|x,w)).
pub fn z_prior_marginal(pi: &Tensor) -> Result<Tensor> {
    let (n, k) = pi.dims2()?;
    let mean = pi.mean(0)?;
    // mean_n pi_n > 0 for softmax outputs; the floor only guards log(0) after underflow.
    let log_mean = mean.clamp(1e-30, 1.0)?.log()?;
    (mean * (log_mean + (k as f64).ln())?)?.sum_all()? * n as f64
}

/// log N(x; mu_k, diag exp logvar_k) for each component: x `[B, Dx]`, components `[B, K, Dx]`,
/// result `[B, K]` (upstream `GaussianLogLikelihood`).
pub fn gaussian_log_likelihood(x: &Tensor, prior: &MixturePrior) -> Result<Tensor> {
    let dx = x.dim(D::Minus1)? as f64;
    let sq = prior.mean.broadcast_sub(&x.unsqueeze(1)?)?.sqr()?;
    let maha = (sq * prior.logvar.neg()?.exp()?)?.sum(D::Minus1)?;
    let logdet = prior.logvar.sum(D::Minus1)?;
    ((maha + logdet)? + dx * LOG_2PI)? * -0.5
}

/// log p(z|x,w) = log_softmax_k log N(x; mu_k(w), sigma_k(w)) (the uniform prior cancels), `[B, K]`.
pub fn log_p_z_given_xw(x: &Tensor, prior: &MixturePrior) -> Result<Tensor> {
    candle_nn::ops::log_softmax(&gaussian_log_likelihood(x, prior)?, D::Minus1)
}

/// Consistency violation (paper v1 eq. 6): `(1/M) sum_{m,n} H(p(z|x^(m,n), w^(m,n)))`, the entropy
/// of the posterior the prior net implies, from its log-probabilities `[M*N, K]`.
pub fn consistency_violation(log_p: &Tensor, m: usize) -> Result<Tensor> {
    (log_p.exp()? * log_p)?.sum_all()?.neg()? / m as f64
}

/// The log cluster posterior `[N, K]` at the recognition means: v1 log q(z|y); v2
/// log p(z | E[x|y], E[w|y]) (the rule evaluation assigns clusters by).
fn log_cluster_posterior(
    model: &gmvae_models::Gmvae,
    post: &Posterior,
    kind: ObjectiveKind,
) -> Result<Tensor> {
    match (kind, &post.qz_logits) {
        (ObjectiveKind::V1, Some(logits)) => candle_nn::ops::log_softmax(logits, D::Minus1),
        _ => log_p_z_given_xw(&post.mean_x, &model.prior.forward(&post.mean_w)?),
    }
}

/// Augmentation consistency: `sum_n KL(p(z|y_n) || p(z|T(y_n)))`, the cluster posterior of each
/// image held fixed as the target of its transformed copy's (IMSAT's self-augmentation).
pub fn augmentation_consistency(log_p: &Tensor, log_p_aug: &Tensor) -> Result<Tensor> {
    let log_p = log_p.detach();
    (log_p.exp()? * (log_p - log_p_aug)?)?.sum_all()
}

/// Everything one batch produces.
pub struct BatchObjective {
    /// The scalar whose gradient training follows.
    pub loss: Tensor,
    /// The five terms of this batch, on the device (`terms.read()` for their values).
    pub terms: TermSums,
    /// The cluster posterior `[N, K]` (q(z|y) for v1; p(z|x,w) of the first sample for v2).
    pub q_z: Tensor,
}

/// Runs the model on a batch y `[N, Dy]` with noise `eps_x [M*N, Dx]`, `eps_w [M*N, Dw]`, and
/// assembles the objective; `y_aug`, the batch's transformed copy T(y), adds the augmentation
/// consistency term with weight `cfg.augment_weight`.
pub fn evaluate(
    model: &gmvae_models::Gmvae,
    cfg: &ObjectiveConfig,
    y: &Tensor,
    y_aug: Option<&Tensor>,
    eps_x: &Tensor,
    eps_w: &Tensor,
    train: bool,
) -> Result<BatchObjective> {
    let m = cfg.n_mc;
    let n = y.dim(0)?;
    let post = model.recognition.forward_t(y, train)?;
    let x = reparameterise(&post.mean_x, &post.logvar_x, eps_x)?;
    let w = reparameterise(&post.mean_w, &post.logvar_w, eps_w)?;
    let recon = model.decode(&x, train)?;
    let prior = model.prior.forward(&w)?;
    let log_p = log_p_z_given_xw(&x, &prior)?;

    let rec = reconstruction(y, &recon, m)?;
    let lw = w_prior(&post.mean_w, &post.logvar_w)?;
    let cv = consistency_violation(&log_p, m)?;
    let (cond, lz, loss, q_z, z_in_loss) = match cfg.kind {
        ObjectiveKind::V1 => {
            let logits = post.qz_logits.as_ref().ok_or_else(|| {
                candle_core::Error::Msg("the v1 objective needs the q(z|y) head".into())
            })?;
            let log_pi = candle_nn::ops::log_softmax(logits, D::Minus1)?;
            let pi = log_pi.exp()?;
            let cond = conditional_prior(&post, &prior, &pi, m)?;
            let lz = z_prior(&log_pi, 1)?;
            let lz_grad = match cfg.z_prior_mode {
                ZPriorMode::Sample => lz.clone(),
                ZPriorMode::Marginal => z_prior_marginal(&pi)?,
            };
            let loss =
                (((&rec + (&cond * cfg.cond_weight)?)? + &lw)? + (&lz_grad * cfg.z_prior_weight)?)?;
            let loss = (loss + (&cv * cfg.cv_weight)?)?;
            // The logged bound: upstream's (eta-weighted) in sample mode; the ELBO in marginal mode,
            // where eta weights the marginal KL instead.
            let logged = match cfg.z_prior_mode {
                ZPriorMode::Sample => cfg.z_prior_weight,
                ZPriorMode::Marginal => 1.0,
            };
            (cond, lz, loss, pi, logged)
        }
        ObjectiveKind::V2 => {
            let p = log_p.exp()?;
            let cond = conditional_prior(&post, &prior, &p, m)?;
            let lz = z_prior(&log_p, m)?;
            let base = ((&rec + (&cond * cfg.cond_weight)?)? + &lw)?;
            // Free bits: the z-prior pulls only while its batch average exceeds lambda. The gate
            // is a 0/1 factor computed on the device, so the step needs no host round trip.
            let gate = lz
                .affine(1.0 / n as f64, 0.0)?
                .gt(cfg.free_bits)?
                .to_dtype(lz.dtype())?
                .detach();
            // The marginal mode keeps the gate on the per-point KL (lambda is per point).
            let lz_grad = match cfg.z_prior_mode {
                ZPriorMode::Sample => lz.clone(),
                ZPriorMode::Marginal => (z_prior_marginal(&p)? / m as f64)?,
            };
            let loss = (base + (&lz_grad * &gate)?.affine(cfg.cv_weight, 0.0)?)?;
            (cond, lz, loss, p.narrow(0, 0, n)?, 1.0)
        }
    };
    let (loss, aug) = match y_aug.filter(|_| cfg.augment_weight > 0.0) {
        Some(y_aug) => {
            let post_aug = model.recognition.forward_t(y_aug, train)?;
            let aug = augmentation_consistency(
                &log_cluster_posterior(model, &post, cfg.kind)?,
                &log_cluster_posterior(model, &post_aug, cfg.kind)?,
            )?;
            ((loss + (&aug * cfg.augment_weight)?)?, aug)
        }
        None => (loss, rec.zeros_like()?),
    };
    // The five terms stay on the device (f64, detached): the training loop sums them there and
    // reads them only when it reports, so a step has no host synchronisation.
    let terms = Tensor::stack(&[&rec, &cond, &lw, &lz, &cv, &aug], 0)?
        .detach()
        .to_dtype(DType::F64)?;
    Ok(BatchObjective {
        loss,
        terms: TermSums::new(terms, z_in_loss),
        q_z,
    })
}

/// Sums of the five terms over batches, kept on the device; [`TermSums::read`] is the one place
/// they come to the host.
#[derive(Clone)]
pub struct TermSums {
    /// `[6]` f64: rec, cond_prior, w_prior, z_prior, cv, augment.
    sums: Tensor,
    /// The z-prior's weight in the reported loss.
    z_in_loss: f64,
}

impl TermSums {
    fn new(sums: Tensor, z_in_loss: f64) -> Self {
        Self { sums, z_in_loss }
    }

    /// Adds another batch's terms (on the device).
    pub fn add(&mut self, o: &TermSums) -> Result<()> {
        self.sums = (&self.sums + &o.sums)?;
        Ok(())
    }

    /// The values on the host (one device synchronisation).
    pub fn read(&self) -> Result<TermValues> {
        let v = self.sums.to_vec1::<f64>()?;
        let (rec, cond_prior, w_prior, z_prior, cv, augment) = (v[0], v[1], v[2], v[3], v[4], v[5]);
        Ok(TermValues {
            rec,
            cond_prior,
            w_prior,
            z_prior,
            cv,
            augment,
            loss: rec + cond_prior + w_prior + self.z_in_loss * z_prior,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
    }
    fn s(t: Tensor) -> f64 {
        t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn kl_hand_values_and_zero_for_equal() {
        // KL(N(0,1) || N(1, e^2)) = 0.5*(2 - 0 + (1 + 1)/e^2 - 1) = 0.5*(1 + 2/e^2)
        let kl = kl_diag_gaussians(
            &t(&[0.0], &[1]),
            &t(&[0.0], &[1]),
            &t(&[1.0], &[1]),
            &t(&[2.0], &[1]),
        );
        let expect = 0.5 * (1.0 + 2.0 / std::f64::consts::E.powi(2));
        assert!((s(kl.unwrap().sum_all().unwrap()) - expect).abs() < 1e-6);
        let same = kl_diag_gaussians(
            &t(&[0.3, -2.0], &[2]),
            &t(&[0.7, -1.0], &[2]),
            &t(&[0.3, -2.0], &[2]),
            &t(&[0.7, -1.0], &[2]),
        );
        assert!(s(same.unwrap().abs().unwrap().sum_all().unwrap()) < 1e-7);
    }

    #[test]
    fn w_prior_hand_value() {
        // -0.5 * (1 + lv - mu^2 - e^lv) for (mu, lv) = (1, 0) and (0, ln 2): 0.5 + 0.5*(2 - 1 - ln2)
        let v = s(w_prior(&t(&[1.0, 0.0], &[1, 2]), &t(&[0.0, 2f32.ln()], &[1, 2])).unwrap());
        assert!((v - (0.5 + 0.5 * (1.0 - 2f64.ln()))).abs() < 1e-6);
    }

    #[test]
    fn z_prior_is_zero_at_uniform_and_log_k_at_one_hot() {
        let uniform = t(&[0.25f32.ln(); 4], &[1, 4]);
        assert!(s(z_prior(&uniform, 1).unwrap()).abs() < 1e-6);
        // Nearly one-hot: KL -> log K.
        let lp = candle_nn::ops::log_softmax(&t(&[40.0, 0.0, 0.0, 0.0], &[1, 4]), 1).unwrap();
        assert!((s(z_prior(&lp, 1).unwrap()) - 4f64.ln()).abs() < 1e-5);
    }

    #[test]
    fn entropy_edges() {
        let uniform = t(&[(1.0f32 / 3.0).ln(); 6], &[2, 3]);
        // two rows, each entropy ln 3, averaged over M = 2 samples -> ln 3
        assert!((s(consistency_violation(&uniform, 2).unwrap()) - 3f64.ln()).abs() < 1e-5);
        let peaked = candle_nn::ops::log_softmax(&t(&[80.0, 0.0, 0.0], &[1, 3]), 1).unwrap();
        let h = s(consistency_violation(&peaked, 1).unwrap());
        assert!(h.abs() < 1e-6 && h.is_finite());
    }

    #[test]
    fn bernoulli_reconstruction_matches_bce() {
        let y = t(&[1.0, 0.0, 0.25], &[1, 3]);
        let logits = t(&[2.0, -1.0, 0.5], &[1, 3]);
        let sig = |l: f64| 1.0 / (1.0 + (-l).exp());
        let bce = |y: f64, p: f64| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        let expect = bce(1.0, sig(2.0)) + bce(0.0, sig(-1.0)) + bce(0.25, sig(0.5));
        let got = s(reconstruction(&y, &YDistribution::Bernoulli { logits }, 1).unwrap());
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
        // Extreme logits stay finite.
        let big = t(&[200.0, -200.0, 0.0], &[1, 3]);
        assert!(
            s(reconstruction(&y, &YDistribution::Bernoulli { logits: big }, 1).unwrap())
                .is_finite()
        );
    }

    #[test]
    fn gaussian_reconstruction_hand_value_and_mc_average() {
        // y = 1, mean 0, logvar 0: 0.5*(0 + 1 + ln 2pi); two MC samples (rows) average.
        let y = t(&[1.0], &[1, 1]);
        let mean = t(&[0.0, 1.0], &[2, 1]);
        let logvar = t(&[0.0, 0.0], &[2, 1]);
        let got = s(reconstruction(&y, &YDistribution::Gaussian { mean, logvar }, 2).unwrap());
        let expect = (0.5 * (1.0 + LOG_2PI) + 0.5 * LOG_2PI) / 2.0;
        assert!((got - expect).abs() < 1e-6);
    }

    #[test]
    fn conditional_prior_and_likelihood_hand_values() {
        // N=1, K=2, Dx=1, M=1: q(x|y) = N(0, 1); components N(0,1) and N(2,1); pi = (0.25, 0.75).
        let post = Posterior {
            mean_x: t(&[0.0], &[1, 1]),
            logvar_x: t(&[0.0], &[1, 1]),
            mean_w: t(&[0.0], &[1, 1]),
            logvar_w: t(&[0.0], &[1, 1]),
            qz_logits: None,
        };
        let prior = MixturePrior {
            mean: t(&[0.0, 2.0], &[1, 2, 1]),
            logvar: t(&[0.0, 0.0], &[1, 2, 1]),
        };
        let pi = t(&[0.25, 0.75], &[1, 2]);
        // KLs: 0 and 0.5 * 4 = 2 -> 0.75 * 2
        assert!((s(conditional_prior(&post, &prior, &pi, 1).unwrap()) - 1.5).abs() < 1e-6);
        // p(z|x=1): equal distance to both means -> (0.5, 0.5)
        let lp = log_p_z_given_xw(&t(&[1.0], &[1, 1]), &prior).unwrap();
        let p: Vec<f32> = lp.exp().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
        let ll: Vec<f32> = gaussian_log_likelihood(&t(&[0.0], &[1, 1]), &prior)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((ll[0] as f64 + 0.5 * LOG_2PI).abs() < 1e-5);
        assert!((ll[1] as f64 + 0.5 * (4.0 + LOG_2PI)).abs() < 1e-5);
    }

    #[test]
    fn sample_major_layout() {
        let mean = t(&[1.0, 2.0], &[2, 1]);
        let r: Vec<f32> = repeat_mc(&mean, 3)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(r, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        let eps = t(&[0.0, 0.0, 1.0, 1.0], &[4, 1]);
        let x: Vec<f32> = reparameterise(&mean, &t(&[0.0, 2.0 * 2f32.ln()], &[2, 1]), &eps)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(x, vec![1.0, 2.0, 2.0, 4.0]);
    }

    /// Every term of the v1 objective (plus the marginal z-prior) from leaf variables, in f64.
    fn v1_total(
        vars: &[candle_core::Var],
        y: &Tensor,
        eps_x: &Tensor,
        m: usize,
    ) -> candle_core::Result<Tensor> {
        let [mx, lx, mw, lw, qz, pm, pl, dl] = vars else {
            panic!("eight variables")
        };
        let post = Posterior {
            mean_x: mx.as_tensor().clone(),
            logvar_x: lx.as_tensor().clone(),
            mean_w: mw.as_tensor().clone(),
            logvar_w: lw.as_tensor().clone(),
            qz_logits: None,
        };
        let prior = MixturePrior {
            mean: pm.as_tensor().clone(),
            logvar: pl.as_tensor().clone(),
        };
        let log_pi = candle_nn::ops::log_softmax(qz.as_tensor(), D::Minus1)?;
        let pi = log_pi.exp()?;
        let x = reparameterise(&post.mean_x, &post.logvar_x, eps_x)?;
        let recon = YDistribution::Bernoulli {
            logits: dl.as_tensor().clone(),
        };
        let terms = [
            reconstruction(y, &recon, m)?,
            conditional_prior(&post, &prior, &pi, m)?,
            w_prior(&post.mean_w, &post.logvar_w)?,
            (z_prior(&log_pi, 1)? * 0.7)?,
            (consistency_violation(&log_p_z_given_xw(&x, &prior)?, m)? * 1.3)?,
            (z_prior_marginal(&pi)? * 0.5)?,
        ];
        terms
            .iter()
            .skip(1)
            .try_fold(terms[0].clone(), |a, t| a + t)
    }

    #[test]
    fn objective_gradients_match_finite_differences() {
        use candle_core::Var;
        let dev = Device::Cpu;
        let (n, k, dx, dw, dy, m) = (3, 4, 2, 2, 5, 2);
        let mut r = crate::rng::rng(7, 0);
        let mut leaf = |shape: &[usize], scale: f32| {
            let t = (crate::rng::randn(&mut r, shape, &dev).unwrap() * scale as f64).unwrap();
            Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap()
        };
        let vars = vec![
            leaf(&[n, dx], 1.0),
            leaf(&[n, dx], 0.5),
            leaf(&[n, dw], 1.0),
            leaf(&[n, dw], 0.5),
            leaf(&[n, k], 1.0),
            leaf(&[m * n, k, dx], 1.0),
            leaf(&[m * n, k, dx], 0.5),
            leaf(&[m * n, dy], 2.0),
        ];
        let y = Tensor::rand(0f64, 1f64, (n, dy), &dev).unwrap();
        let eps_x = leaf(&[m * n, dx], 1.0).as_tensor().detach();
        let loss = v1_total(&vars, &y, &eps_x, m).unwrap();
        let grads = loss.backward().unwrap();
        let h = 1e-6;
        let mut checked = 0;
        for v in &vars {
            let g: Vec<f64> = grads
                .get(v)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let base: Vec<f64> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for i in 0..base.len() {
                let at = |d: f64| {
                    let mut p = base.clone();
                    p[i] += d;
                    v.set(&Tensor::from_vec(p, v.shape(), &dev).unwrap())
                        .unwrap();
                    s(v1_total(&vars, &y, &eps_x, m).unwrap())
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                v.set(&Tensor::from_vec(base.clone(), v.shape(), &dev).unwrap())
                    .unwrap();
                assert!(
                    (fd - g[i]).abs() <= 1e-5 * (1.0 + fd.abs()),
                    "element {i} of a {:?} variable: autograd {} vs finite difference {fd}",
                    v.dims(),
                    g[i]
                );
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            2 * (n * dx + n * dw) + n * k + 2 * m * n * k * dx + m * n * dy
        );
    }

    #[test]
    fn v1_terms_average_the_m_samples() {
        // M = 2: the conditional prior and the CV term are the averages of the two single-sample
        // values, with q(z|y) `[N, K]` shared by both samples.
        let post = Posterior {
            mean_x: t(&[0.0, 1.0], &[2, 1]),
            logvar_x: t(&[0.0, 0.5], &[2, 1]),
            mean_w: t(&[0.0, 0.0], &[2, 1]),
            logvar_w: t(&[0.0, 0.0], &[2, 1]),
            qz_logits: None,
        };
        let means = [[0.0f32, 2.0, -1.0, 1.0], [0.5, -0.5, 3.0, 0.0]];
        let prior_of = |v: &[f32]| MixturePrior {
            mean: t(v, &[2, 2, 1]),
            logvar: t(&[0.0, 0.3, -0.2, 0.1], &[2, 2, 1]),
        };
        let pi = t(&[0.25, 0.75, 0.6, 0.4], &[2, 2]);
        let one = |v: &[f32]| s(conditional_prior(&post, &prior_of(v), &pi, 1).unwrap());
        let both: Vec<f32> = means.concat();
        let prior2 = MixturePrior {
            mean: t(&both, &[4, 2, 1]),
            logvar: t(&[0.0, 0.3, -0.2, 0.1, 0.0, 0.3, -0.2, 0.1], &[4, 2, 1]),
        };
        let avg = (one(&means[0]) + one(&means[1])) / 2.0;
        let got = s(conditional_prior(&post, &prior2, &pi, 2).unwrap());
        assert!((got - avg).abs() < 1e-5, "{got} vs {avg}");
        // Entropy: rows of two samples, averaged over M.
        let lp = candle_nn::ops::log_softmax(&t(&[0.0, 1.0, 2.0, 0.0], &[2, 2]), 1).unwrap();
        let h = |a: f64, b: f64| {
            let z = (a.exp() + b.exp()).ln();
            -((a - z).exp() * (a - z) + (b - z).exp() * (b - z))
        };
        let expect = (h(0.0, 1.0) + h(2.0, 0.0)) / 2.0;
        assert!((s(consistency_violation(&lp, 2).unwrap()) - expect).abs() < 1e-5);
    }

    #[test]
    fn marginal_z_prior_hand_values() {
        // Two one-hot rows on different components of K = 2: the mean is uniform -> 0, while
        // the per-point KL is 2 log 2.
        let pi = t(&[1.0, 0.0, 0.0, 1.0], &[2, 2]);
        assert!(s(z_prior_marginal(&pi).unwrap()).abs() < 1e-6);
        // Both on component 0: N * log K.
        let pi = t(&[1.0, 0.0, 1.0, 0.0], &[2, 2]);
        assert!((s(z_prior_marginal(&pi).unwrap()) - 2.0 * 2f64.ln()).abs() < 1e-5);
    }

    fn tiny_model(qz_head: bool) -> gmvae_models::Gmvae {
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let cfg = gmvae_models::GmvaeConfig {
            network: gmvae_models::Network::Fc,
            dy: 6,
            image_shape: None,
            dx: 2,
            dw: 2,
            k: 3,
            hidden: 8,
            filters: 1,
            likelihood: gmvae_models::Likelihood::Bernoulli,
            qz_head,
        };
        gmvae_models::Gmvae::new(cfg, vb).unwrap()
    }

    /// A batch of 4 rows of the tiny model's 6 values and its noise (M = 1, Dx = Dw = 2).
    fn tiny_batch(seed: u64) -> (Tensor, Tensor, Tensor) {
        let dev = Device::Cpu;
        let y = Tensor::rand(0f32, 1f32, (4, 6), &dev).unwrap();
        let (ex, ew) = draw_noise(&mut crate::rng::rng(seed, 0), 1, 4, 2, 2, &dev).unwrap();
        (y, ex, ew)
    }

    #[test]
    fn v2_free_bits_gate_the_z_prior() {
        let model = tiny_model(false);
        let (y, ex, ew) = tiny_batch(3);
        let loss = |alpha: f64, lambda: f64| {
            let cfg = ObjectiveConfig {
                kind: ObjectiveKind::V2,
                n_mc: 1,
                z_prior_weight: 1.0,
                cv_weight: alpha,
                free_bits: lambda,
                z_prior_mode: ZPriorMode::Sample,
                cond_weight: 1.0,
                augment_weight: 0.0,
            };
            let out = evaluate(&model, &cfg, &y, None, &ex, &ew, false).unwrap();
            (s(out.loss), out.terms.read().unwrap().z_prior)
        };
        let (open0, lz) = loss(0.0, 0.0);
        let (open5, _) = loss(5.0, 0.0);
        assert!(lz > 0.0);
        // A batch KL above lambda = 0 opens the gate: alpha * KL is in the loss.
        assert!(
            (open5 - open0 - 5.0 * lz).abs() < 1e-3 * (1.0 + lz),
            "{open5} {open0} {lz}"
        );
        // A threshold above any batch KL (log 3 per point at most) closes the gate.
        let (shut0, _) = loss(0.0, 10.0);
        let (shut5, _) = loss(5.0, 10.0);
        assert_eq!(shut0, shut5);
    }

    #[test]
    fn warm_up_and_marginal_mode_change_only_the_gradient_objective() {
        let model = tiny_model(true);
        let (y, ex, ew) = tiny_batch(4);
        let run = |mode: ZPriorMode, cond_weight: f64| {
            let cfg = ObjectiveConfig {
                kind: ObjectiveKind::V1,
                n_mc: 1,
                z_prior_weight: 1.0,
                cv_weight: 0.0,
                free_bits: 0.0,
                z_prior_mode: mode,
                cond_weight,
                augment_weight: 0.0,
            };
            evaluate(&model, &cfg, &y, None, &ex, &ew, false).unwrap()
        };
        let base = run(ZPriorMode::Sample, 1.0);
        let bv = base.terms.read().unwrap();
        // With alpha = 0 the gradient objective is the negative lower bound itself.
        assert!((s(base.loss.clone()) - bv.loss).abs() < 1e-3);
        let warm = run(ZPriorMode::Sample, 0.25);
        let wv = warm.terms.read().unwrap();
        assert_eq!(wv, bv, "the logged terms stay the ELBO's");
        let expect = bv.loss - 0.75 * bv.cond_prior;
        assert!((s(warm.loss) - expect).abs() < 1e-3);
        let marg = run(ZPriorMode::Marginal, 1.0);
        assert_eq!(marg.terms.read().unwrap(), bv);
        let zm = s(z_prior_marginal(&base.q_z).unwrap());
        assert!(zm <= bv.z_prior + 1e-6, "marginal KL <= mean per-point KL");
        let expect = bv.loss - bv.z_prior + zm;
        assert!((s(marg.loss) - expect).abs() < 1e-3);
    }

    #[test]
    fn v2_marginal_mode_changes_only_the_gradient_objective() {
        let model = tiny_model(false);
        let (y, ex, ew) = tiny_batch(6);
        let run = |mode: ZPriorMode| {
            let cfg = ObjectiveConfig {
                kind: ObjectiveKind::V2,
                n_mc: 1,
                z_prior_weight: 1.0,
                cv_weight: 2.0,
                free_bits: 0.0,
                z_prior_mode: mode,
                cond_weight: 1.0,
                augment_weight: 0.0,
            };
            evaluate(&model, &cfg, &y, None, &ex, &ew, false).unwrap()
        };
        let (sample, marg) = (run(ZPriorMode::Sample), run(ZPriorMode::Marginal));
        let t = sample.terms.read().unwrap();
        assert_eq!(
            marg.terms.read().unwrap(),
            t,
            "the logged terms stay the ELBO's"
        );
        // M = 1: q_z holds p(z|x,w) of every row.
        let zm = s(z_prior_marginal(&sample.q_z).unwrap());
        assert!(zm <= t.z_prior + 1e-6, "marginal KL <= summed per-point KL");
        let expect = s(sample.loss) + 2.0 * (zm - t.z_prior);
        assert!(
            (s(marg.loss) - expect).abs() < 1e-3,
            "alpha weights the marginal KL"
        );
    }

    #[test]
    fn augmentation_consistency_is_the_kl_to_the_fixed_target() {
        let dev = Device::Cpu;
        let a =
            candle_core::Var::from_vec(vec![1f32, 0., -1., 0.5, 0.5, 0.], (2, 3), &dev).unwrap();
        let b = candle_core::Var::from_vec(vec![0f32, 0., 0., 2., 0., 0.], (2, 3), &dev).unwrap();
        let la = candle_nn::ops::log_softmax(a.as_tensor(), D::Minus1).unwrap();
        let lb = candle_nn::ops::log_softmax(b.as_tensor(), D::Minus1).unwrap();
        let kl = augmentation_consistency(&la, &lb).unwrap();
        let (p, q) = (la.exp().unwrap(), lb.exp().unwrap());
        let (pv, qv) = (p.to_vec2::<f32>().unwrap(), q.to_vec2::<f32>().unwrap());
        let hand: f64 = (0..2)
            .flat_map(|n| (0..3).map(move |k| (n, k)))
            .map(|(n, k)| (pv[n][k] * (pv[n][k] / qv[n][k]).ln()) as f64)
            .sum();
        assert!(
            (s(kl.clone()) - hand).abs() < 1e-5,
            "{} vs {hand}",
            s(kl.clone())
        );
        assert!(s(augmentation_consistency(&la, &la).unwrap()).abs() < 1e-6);
        // The target is held fixed: only the transformed copy's logits get a gradient, the
        // softmax's q - p.
        let g = kl.backward().unwrap();
        assert!(g.get(a.as_tensor()).is_none());
        let gb = g.get(b.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for n in 0..2 {
            for k in 0..3 {
                assert!((gb[n][k] - (qv[n][k] - pv[n][k])).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_augmentation_term_adds_beta_times_its_kl_and_vanishes_for_the_identity() {
        let dev = Device::Cpu;
        let y = Tensor::rand(0f32, 1f32, (4, 6), &dev).unwrap();
        let y_aug = Tensor::rand(0f32, 1f32, (4, 6), &dev).unwrap();
        for (kind, qz_head) in [(ObjectiveKind::V1, true), (ObjectiveKind::V2, false)] {
            let model = tiny_model(qz_head);
            let mut r = crate::rng::rng(5, 0);
            let (ex, ew) = draw_noise(&mut r, 1, 4, 2, 2, &dev).unwrap();
            let run = |beta: f64, y_aug: Option<&Tensor>| {
                let cfg = ObjectiveConfig {
                    kind,
                    n_mc: 1,
                    z_prior_weight: 1.0,
                    cv_weight: 1.0,
                    free_bits: 0.0,
                    z_prior_mode: ZPriorMode::Sample,
                    cond_weight: 1.0,
                    augment_weight: beta,
                };
                let out = evaluate(&model, &cfg, &y, y_aug, &ex, &ew, true).unwrap();
                (s(out.loss), out.terms.read().unwrap())
            };
            let (off, t_off) = run(0.0, Some(&y_aug));
            assert_eq!(t_off.augment, 0.0, "{kind:?}: weight 0 computes nothing");
            assert_eq!(run(0.0, None).0, off);
            let (same, t_same) = run(2.0, Some(&y));
            assert!(t_same.augment.abs() < 1e-5, "{kind:?}: T = identity");
            assert!((same - off).abs() < 1e-4);
            let (on, t_on) = run(2.0, Some(&y_aug));
            assert!(t_on.augment > 1e-4, "{kind:?}: {}", t_on.augment);
            assert!((on - off - 2.0 * t_on.augment).abs() < 1e-3 * (1.0 + on.abs()));
            assert_eq!(
                t_on.loss, t_off.loss,
                "{kind:?}: not a term of the lower bound"
            );
        }
    }
}
