use candle_core::{bail, Result};
use serde::{Deserialize, Serialize};

/// Which network family (upstream `-network`, plus the SVHN branch's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// `models/FullyConnected.lua`: spiral and flattened MNIST.
    Fc,
    /// `models/ConvAE.lua`: 1x28x28 MNIST.
    ConvMnist,
    /// `models/SVHNConvAE.lua` (svhn branch): 3x32x32 SVHN.
    ConvSvhn,
}

/// The likelihood p(y|x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Bernoulli with mean sigmoid(.) on values in [0, 1] (`-continuous 0`).
    Bernoulli,
    /// Diagonal Gaussian with a learned per-dimension log-variance head (`-continuous 1`).
    Gaussian,
}

/// Sizes of the model; serialized under the names of the flags that set them (an exported
/// model's `config.json` holds these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GmvaeConfig {
    pub network: Network,
    /// Dimension of an observation y (784, 3072, or 2 for the spiral).
    pub dy: usize,
    /// Image shape (C, H, W) for the conv networks.
    pub image_shape: Option<[usize; 3]>,
    #[serde(rename = "x_size")]
    pub dx: usize,
    #[serde(rename = "w_size")]
    pub dw: usize,
    #[serde(rename = "K")]
    pub k: usize,
    /// H: hidden width of every MLP, and the top conv's channels.
    #[serde(rename = "hidden_size")]
    pub hidden: usize,
    /// F: filters of the first conv layer (`-nFilters`).
    #[serde(rename = "n_filters")]
    pub filters: usize,
    pub likelihood: Likelihood,
    /// Whether the recognition net has the q(z|y) softmax head (paper v1 / master branch).
    /// Not serialized: it follows from the objective, which a saved config records beside it.
    #[serde(skip)]
    pub qz_head: bool,
}

impl GmvaeConfig {
    pub fn validate(&self) -> Result<()> {
        let dims = [self.dy, self.dx, self.dw, self.k, self.hidden];
        if dims.contains(&0) {
            bail!("model sizes must be >= 1: {self:?}")
        }
        match (self.network, self.image_shape) {
            (Network::Fc, _) => {}
            (Network::ConvMnist, Some([1, 28, 28])) | (Network::ConvSvhn, Some([3, 32, 32])) => {
                if self.filters == 0 {
                    bail!("the conv networks need at least one filter")
                }
                if self.likelihood == Likelihood::Gaussian {
                    bail!("the conv decoders are Bernoulli only (upstream ignores -continuous)")
                }
            }
            (n, s) => bail!("network {n:?} does not take images of shape {s:?}"),
        }
        Ok(())
    }
}
