use crate::config::GmvaeConfig;
use crate::layers::{self, LayerShape};
use crate::recognition::bounded_logvar;
use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

/// The K Gaussian components of p(x|w,z=k) for a batch of w.
pub struct MixturePrior {
    /// mu_k(w), `[B, K, Dx]`.
    pub mean: Tensor,
    /// logvar_k(w), `[B, K, Dx]`.
    pub logvar: Tensor,
}

/// The Gaussian-mixture prior net p(x|w,z): w -> Linear(Dw,H) -> Tanh, then K mean heads and K
/// log-variance heads Linear(H,Dx). The K heads are fused into one Linear(H, K*Dx) each: the same
/// parameters (K*(H*Dx + Dx)) and the same function, in one matmul.
pub struct PriorNet {
    hidden: Linear,
    mean: Linear,
    logvar: Linear,
    k: usize,
    dx: usize,
}

impl PriorNet {
    pub fn new(c: &GmvaeConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            hidden: linear(c.dw, c.hidden, vb.pp("fc1"))?,
            mean: linear(c.hidden, c.k * c.dx, vb.pp("mean_x"))?,
            logvar: linear(c.hidden, c.k * c.dx, vb.pp("logvar_x"))?,
            k: c.k,
            dx: c.dx,
        })
    }

    /// The layers: w's hidden layer, then the fused mean and log-variance heads.
    pub fn layers(&self) -> Vec<LayerShape> {
        [&self.hidden, &self.mean, &self.logvar]
            .map(layers::linear)
            .to_vec()
    }

    /// The mixture components at each w `[B, Dw]`.
    pub fn forward(&self, w: &Tensor) -> Result<MixturePrior> {
        let g = self.hidden.forward(w)?.tanh()?;
        let b = w.dim(0)?;
        Ok(MixturePrior {
            mean: self.mean.forward(&g)?.reshape((b, self.k, self.dx))?,
            logvar: bounded_logvar(self.logvar.forward(&g)?)?.reshape((b, self.k, self.dx))?,
        })
    }
}
