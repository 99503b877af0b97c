//! The GMVAE of a run as built from its options: the networks q(x|y), q(w|y), (v1) q(z|y),
//! p(y|x) and the K-headed prior p(x|w,z), their variables in name order, and the forward passes
//! that training, pretraining, export and the plots share (chunked evaluation, prior at w = 0,
//! component samples). Nothing here knows about epochs or run directories.

use crate::data::DataShape;
use crate::objective::ObjectiveKind;
use crate::options::{DataSet, NetworkKind, Options};
use crate::rng::{self, stream, StdRng};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use gmvae_models::{Gmvae, GmvaeConfig, Likelihood, Network};
use std::path::Path;

/// Rows of the evaluation forward passes.
pub(crate) const EVAL_CHUNK: usize = 1000;

/// A model ready to train: its variables in name order and the networks.
pub struct Model {
    pub net: Gmvae,
    pub vars: Vec<(String, Var)>,
    pub varmap: VarMap,
}

impl Model {
    /// Builds the model for `opts` on data of shape `data` on `device`, initialised from
    /// `opts.seed` as torch7 would.
    pub fn new(opts: &Options, data: &DataShape, device: &Device) -> Result<Self> {
        let net_config = config(opts, data)?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = Gmvae::new(net_config, vb)?;
        let vars = sorted_vars(&varmap);
        gmvae_models::torch7_init(&vars, &mut rng::rng(opts.seed, stream::INIT))?;
        Ok(Self { net, vars, varmap })
    }

    /// Trainable parameters (BatchNorm counted as gamma + beta, as upstream).
    pub fn parameter_count(&self) -> usize {
        gmvae_models::count_trainable(self.vars.iter().map(|(n, v)| (n.as_str(), v.elem_count())))
    }

    /// The variables the optimiser updates.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(n, _)| gmvae_models::is_trainable(n))
            .cloned()
            .collect()
    }
}

/// The variables of `varmap`, in name order (the order of checkpoints and initialisation).
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let mut vars: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The network sizes that `opts` asks for on data of shape `data`.
pub fn config(opts: &Options, data: &DataShape) -> Result<GmvaeConfig> {
    let network = match (opts.network, opts.data_set) {
        (NetworkKind::Fc, _) => Network::Fc,
        (NetworkKind::Conv, DataSet::Svhn) => Network::ConvSvhn,
        (NetworkKind::Conv, _) => Network::ConvMnist,
    };
    if network != Network::Fc && data.image_shape.is_none() {
        bail!("--network conv needs image data");
    }
    Ok(GmvaeConfig {
        network,
        dy: data.dy,
        image_shape: data.image_shape,
        dx: opts.x_size,
        dw: opts.w_size,
        k: opts.k,
        hidden: opts.hidden_size,
        filters: opts.n_filters,
        likelihood: if opts.continuous {
            Likelihood::Gaussian
        } else {
            Likelihood::Bernoulli
        },
        qz_head: opts.objective == ObjectiveKind::V1,
    })
}

/// Runs the recognition nets (BatchNorm in eval mode) over the `n` rows of row-major `y` (`dy`
/// values each) in chunks of EVAL_CHUNK rows, in order, giving each chunk's first row index and
/// posteriors to `f`.
pub(crate) fn for_each_chunk(
    net: &Gmvae,
    y: &[f32],
    dy: usize,
    device: &Device,
    mut f: impl FnMut(usize, gmvae_models::Posterior) -> Result<()>,
) -> Result<()> {
    let n = y.len() / dy.max(1);
    for start in (0..n).step_by(EVAL_CHUNK) {
        let rows = EVAL_CHUNK.min(n - start);
        let chunk = Tensor::from_slice(&y[start * dy..(start + rows) * dy], (rows, dy), device)?;
        f(start, net.recognition.forward_t(&chunk, false)?)?;
    }
    Ok(())
}

/// The cluster posterior of the rows behind `post` (recognition in BatchNorm eval mode): v1
/// reads the q(z|y) head, v2 infers p(z | x, w) at the means of q(x|y) and q(w|y).
pub fn cluster_posterior(
    net: &Gmvae,
    objective: ObjectiveKind,
    post: &gmvae_models::Posterior,
) -> Result<Tensor> {
    Ok(match objective {
        ObjectiveKind::V1 => candle_nn::ops::softmax(
            post.qz_logits
                .as_ref()
                .context("the model has no q(z|y) head")?,
            D::Minus1,
        )?,
        ObjectiveKind::V2 => {
            let prior = net.prior.forward(&post.mean_w)?;
            crate::objective::log_p_z_given_xw(&post.mean_x, &prior)?.exp()?
        }
    })
}

/// The prior components at w = 0: (means, variances), each `[K x Dx]`.
pub fn prior_at_zero(model: &Model, opts: &Options, device: &Device) -> Result<(Tensor, Tensor)> {
    let w0 = Tensor::zeros((1, opts.w_size), DType::F32, device)?;
    let p = model.net.prior.forward(&w0)?;
    Ok((p.mean.squeeze(0)?, p.logvar.squeeze(0)?.exp()?))
}

/// Decoded samples for the `samples.png` grid (upstream `visualGen`): K rows x `cols`, row k from
/// x ~ N(mu_k(0), sigma_k(0)). Returns `[K*cols, Dy]` means in [0, 1].
pub fn component_samples(
    model: &Model,
    opts: &Options,
    cols: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Vec<f32>> {
    let (mean, var) = prior_at_zero(model, opts, device)?;
    let (k, dx) = mean.dims2()?;
    let eps = rng::randn(rng, (k, cols, dx), device)?;
    let x = mean
        .unsqueeze(1)?
        .broadcast_add(&eps.broadcast_mul(&var.sqrt()?.unsqueeze(1)?)?)?;
    let y = model
        .net
        .decode(&x.reshape((k * cols, dx))?, false)?
        .mean()?;
    Ok(y.flatten_all()?.to_vec1::<f32>()?)
}

/// Reads the weights of run `src` into `model` (`--init-from`) once its networks are known to
/// be the ones `opts` builds; returns the epoch of the checkpoint read.
pub fn init_from_run(src: &Path, opts: &Options, model: &Model) -> Result<usize> {
    let flag = || format!("--init-from {}", src.display());
    let source = Options::load(src).with_context(flag)?;
    let differ = opts.network_differences(&source);
    if !differ.is_empty() {
        bail!(
            "{}: that run's networks are not this run's ({}); give the same settings",
            flag(),
            differ.join("; ")
        );
    }
    let ckpt = src.join(crate::checkpoint::FILE);
    if !ckpt.exists() {
        bail!(
            "{}: no {} there yet (the run has not finished its first epoch)",
            flag(),
            crate::checkpoint::FILE
        );
    }
    crate::checkpoint::load_weights(&ckpt, &model.vars).with_context(flag)
}
