//! The GMVAE networks of Dilokthanakul et al. (2016) as candle modules, layer for layer as the
//! original Torch code (`models/FullyConnected.lua`, `models/ConvAE.lua`,
//! `models/SVHNConvAE.lua`).
//!
//! Symbols follow the paper: y is the observation, x the Gaussian latent (Dx), w the "style"
//! latent (Dw), z the categorical latent with K values; H is the hidden size, M the number of
//! Monte-Carlo samples, N the batch size. Multi-sample tensors are sample-major: row `m*N + n`.

mod config;
pub mod conv;
mod decoder;
mod init;
mod layers;
pub mod par;
mod prior;
mod recognition;
pub mod vmath;

pub use config::{GmvaeConfig, Likelihood, Network};
pub use decoder::{Decoder, YDistribution};
pub use init::torch7_init;
pub use layers::{LayerShape, Part};
pub use prior::{MixturePrior, PriorNet};
pub use recognition::{Posterior, Recognition};

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// The whole model: recognition nets q(x|y), q(w|y) (and q(z|y) for the v1 objective), decoder
/// p(y|x) and the Gaussian-mixture prior net p(x|w,z).
pub struct Gmvae {
    pub config: GmvaeConfig,
    pub recognition: Recognition,
    pub decoder: Decoder,
    pub prior: PriorNet,
}

impl Gmvae {
    /// Builds the model under `vb` (`recognition.*`, `decoder.*`, `prior.*`).
    pub fn new(config: GmvaeConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            recognition: Recognition::new(&config, vb.pp("recognition"))?,
            decoder: Decoder::new(&config, vb.pp("decoder"))?,
            prior: PriorNet::new(&config, vb.pp("prior"))?,
            config,
        })
    }

    /// Every layer with learned weights, read from the built networks (recognition, decoder,
    /// prior net, each in forward order), with the net it belongs to.
    pub fn layers(&self) -> Vec<(Part, LayerShape)> {
        let nets = [
            (Part::Recognition, self.recognition.layers()),
            (Part::Decoder, self.decoder.layers()),
            (Part::Prior, self.prior.layers()),
        ];
        nets.into_iter()
            .flat_map(|(part, layers)| layers.into_iter().map(move |l| (part, l)))
            .collect()
    }

    /// Decoder p(y|x) on a batch of latents x `[B, Dx]`.
    pub fn decode(&self, x: &Tensor, train: bool) -> Result<YDistribution> {
        self.decoder.forward_t(x, train)
    }
}

/// Number of trainable parameters among `(name, numel)` pairs: BatchNorm running statistics are
/// state, not parameters (upstream counts BN as gamma + beta).
pub fn count_trainable<'a>(vars: impl IntoIterator<Item = (&'a str, usize)>) -> usize {
    vars.into_iter()
        .filter(|(n, _)| is_trainable(n))
        .map(|(_, c)| c)
        .sum()
}

/// Whether a variable is trained (everything but BatchNorm running statistics).
pub fn is_trainable(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}
