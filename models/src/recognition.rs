use crate::config::{GmvaeConfig, Network};
use crate::conv::Conv2d;
use crate::layers::{self, LayerShape};
use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{batch_norm, linear, BatchNorm, Linear, VarBuilder};

/// Bound on every log-variance the networks emit. Upstream leaves them unconstrained; exp(-30)
/// to exp(30) is far outside anything training visits, and keeps exp(±logvar) finite in f32.
pub(crate) const LOGVAR_BOUND: f64 = 30.0;

pub(crate) fn bounded_logvar(t: Tensor) -> Result<Tensor> {
    t.clamp(-LOGVAR_BOUND, LOGVAR_BOUND)
}

pub(crate) fn bn(features: usize, vb: VarBuilder) -> Result<BatchNorm> {
    // torch7 defaults: eps 1e-5, momentum 0.1.
    batch_norm(features, candle_nn::BatchNormConfig::default(), vb)
}

/// One Linear (or Conv) -> BatchNorm -> ReLU stage.
struct Stage<L> {
    layer: L,
    bn: BatchNorm,
}

impl<L: Module> ModuleT for Stage<L> {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(&self.layer.forward(xs)?, train)?.relu()
    }
}

/// The shared trunk of the recognition net, y -> h (size H).
enum Trunk {
    /// y -> Linear(Dy,H) -> BN -> ReLU -> Linear(H,H) -> BN -> ReLU.
    Fc(Vec<Stage<Linear>>),
    /// Conv stages down to 1x1 with H channels, then flattened.
    Conv {
        shape: [usize; 3],
        stages: Vec<Stage<Conv2d>>,
    },
}

impl ModuleT for Trunk {
    fn forward_t(&self, y: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Trunk::Fc(stages) => stages
                .iter()
                .try_fold(y.clone(), |h, s| s.forward_t(&h, train)),
            Trunk::Conv {
                shape: [c, hh, ww],
                stages,
            } => {
                let img = y.reshape(((), *c, *hh, *ww))?;
                let h = stages.iter().try_fold(img, |h, s| s.forward_t(&h, train))?;
                h.flatten_from(1)
            }
        }
    }
}

/// The approximate posterior of one batch.
pub struct Posterior {
    /// Mean and log-variance of q(x|y), `[N, Dx]`.
    pub mean_x: Tensor,
    pub logvar_x: Tensor,
    /// Mean and log-variance of q(w|y), `[N, Dw]`.
    pub mean_w: Tensor,
    pub logvar_w: Tensor,
    /// Logits of q(z|y), `[N, K]` (v1 only; v2 infers z as p(z|x,w)).
    pub qz_logits: Option<Tensor>,
}

/// The recognition (inference) network: a trunk shared by the heads of q(x|y), q(w|y) and, for
/// the v1 objective, the softmax classifier q(z|y).
pub struct Recognition {
    trunk: Trunk,
    mean_x: Linear,
    logvar_x: Linear,
    mean_w: Linear,
    logvar_w: Linear,
    qz: Option<Linear>,
}

fn conv_stage(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Stage<Conv2d>> {
    Ok(Stage {
        layer: Conv2d::new(cin, cout, k, stride, padding, vb.pp("conv"))?,
        bn: bn(cout, vb.pp("bn"))?,
    })
}

impl Recognition {
    pub fn new(c: &GmvaeConfig, vb: VarBuilder) -> Result<Self> {
        let h = c.hidden;
        let f = c.filters;
        let trunk = match (c.network, c.image_shape) {
            (Network::Fc, _) => Trunk::Fc(
                [(c.dy, h), (h, h)]
                    .iter()
                    .enumerate()
                    .map(|(i, &(a, b))| {
                        let vb = vb.pp(format!("fc{}", i + 1));
                        Ok(Stage {
                            layer: linear(a, b, vb.pp("linear"))?,
                            bn: bn(b, vb.pp("bn"))?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            // 28 -> 23 -> 18 -> 9 -> 1 (ConvAE.lua:12-54)
            (Network::ConvMnist, Some(shape)) => Trunk::Conv {
                shape,
                stages: vec![
                    conv_stage(shape[0], f, 6, 1, 0, vb.pp("conv1"))?,
                    conv_stage(f, 2 * f, 6, 1, 0, vb.pp("conv2"))?,
                    conv_stage(2 * f, 4 * f, 4, 2, 1, vb.pp("conv3"))?,
                    conv_stage(4 * f, h, 9, 1, 0, vb.pp("conv4"))?,
                ],
            },
            // 32 -> 16 -> 8 -> 4 -> 1 (SVHNConvAE.lua:14-54)
            (Network::ConvSvhn, Some(shape)) => Trunk::Conv {
                shape,
                stages: vec![
                    conv_stage(shape[0], f, 4, 2, 1, vb.pp("conv1"))?,
                    conv_stage(f, 2 * f, 4, 2, 1, vb.pp("conv2"))?,
                    conv_stage(2 * f, 4 * f, 4, 2, 1, vb.pp("conv3"))?,
                    conv_stage(4 * f, h, 4, 1, 0, vb.pp("conv4"))?,
                ],
            },
            (n, _) => candle_core::bail!("network {n:?} needs an image shape"),
        };
        Ok(Self {
            trunk,
            mean_x: linear(h, c.dx, vb.pp("mean_x"))?,
            logvar_x: linear(h, c.dx, vb.pp("logvar_x"))?,
            mean_w: linear(h, c.dw, vb.pp("mean_w"))?,
            logvar_w: linear(h, c.dw, vb.pp("logvar_w"))?,
            qz: if c.qz_head {
                Some(linear(h, c.k, vb.pp("q_z"))?)
            } else {
                None
            },
        })
    }

    /// The layers, trunk first, then the heads of q(x|y), q(w|y) (and q(z|y)).
    pub fn layers(&self) -> Vec<LayerShape> {
        let mut v = vec![];
        match &self.trunk {
            Trunk::Fc(stages) => {
                for s in stages {
                    v.extend([layers::linear(&s.layer), layers::batch_norm(&s.bn)]);
                }
            }
            Trunk::Conv { shape, stages } => {
                let chain = stages.iter().map(|s| (&s.layer, Some(&s.bn)));
                v = layers::conv_chain(shape[1], chain);
            }
        }
        let heads = [&self.mean_x, &self.logvar_x, &self.mean_w, &self.logvar_w];
        v.extend(heads.into_iter().chain(&self.qz).map(layers::linear));
        v
    }

    /// The trunk's features h `[N, H]`, which every head reads.
    pub fn features_t(&self, y: &Tensor, train: bool) -> Result<Tensor> {
        self.trunk.forward_t(y, train)
    }

    /// q(z|y)'s logits from the trunk's features h (None without the head).
    pub fn qz_logits(&self, h: &Tensor) -> Result<Option<Tensor>> {
        self.qz.as_ref().map(|l| l.forward(h)).transpose()
    }

    /// q(x|y), q(w|y) (and q(z|y)) for a batch y `[N, Dy]`.
    pub fn forward_t(&self, y: &Tensor, train: bool) -> Result<Posterior> {
        let h = self.trunk.forward_t(y, train)?;
        Ok(Posterior {
            mean_x: self.mean_x.forward(&h)?,
            logvar_x: bounded_logvar(self.logvar_x.forward(&h)?)?,
            mean_w: self.mean_w.forward(&h)?,
            logvar_w: bounded_logvar(self.logvar_w.forward(&h)?)?,
            qz_logits: self.qz.as_ref().map(|l| l.forward(&h)).transpose()?,
        })
    }
}
