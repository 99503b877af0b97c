use crate::config::{GmvaeConfig, Likelihood, Network};
use crate::conv::ConvTranspose2d;
use crate::layers::{self, LayerShape};
use crate::recognition::{bn, bounded_logvar};
use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{linear, BatchNorm, Linear, VarBuilder};

/// The decoder's output distribution over y.
pub enum YDistribution {
    /// Bernoulli, as logits `[B, Dy]` (the BCE is computed from logits for stability).
    Bernoulli { logits: Tensor },
    /// Diagonal Gaussian `[B, Dy]`.
    Gaussian { mean: Tensor, logvar: Tensor },
}

impl YDistribution {
    /// E[y|x]: sigmoid(logits) or the Gaussian mean.
    pub fn mean(&self) -> Result<Tensor> {
        match self {
            Self::Bernoulli { logits } => candle_nn::ops::sigmoid(logits),
            Self::Gaussian { mean, .. } => Ok(mean.clone()),
        }
    }
}

struct DeconvStage {
    deconv: ConvTranspose2d,
    bn: Option<BatchNorm>,
}

fn deconv_stage(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    with_bn: bool,
    vb: VarBuilder,
) -> Result<DeconvStage> {
    Ok(DeconvStage {
        deconv: ConvTranspose2d::transposed(cin, cout, k, stride, padding, vb.pp("deconv"))?,
        bn: if with_bn {
            Some(bn(cout, vb.pp("bn"))?)
        } else {
            None
        },
    })
}

enum Body {
    /// x -> Linear(Dx,H) -> ReLU -> Linear(H,H) -> ReLU (no BatchNorm, FullyConnected.lua:34-57).
    Fc { l1: Linear, l2: Linear },
    /// x -> Linear(Dx,H) -> BN -> ReLU -> [H,1,1] -> transposed convs up to the image.
    Conv {
        input: Linear,
        bn: BatchNorm,
        stages: Vec<DeconvStage>,
    },
}

/// The generative net p(y|x).
pub struct Decoder {
    body: Body,
    /// Output head(s) of the fully-connected decoder: the Bernoulli logits or the Gaussian mean.
    out: Option<Linear>,
    out_logvar: Option<Linear>,
}

impl Decoder {
    pub fn new(c: &GmvaeConfig, vb: VarBuilder) -> Result<Self> {
        let (h, f) = (c.hidden, c.filters);
        let conv = |stages: Vec<DeconvStage>| -> Result<Body> {
            Ok(Body::Conv {
                input: linear(c.dx, h, vb.pp("fc1").pp("linear"))?,
                bn: bn(h, vb.pp("fc1").pp("bn"))?,
                stages,
            })
        };
        let ch = c.image_shape.map_or(1, |s| s[0]);
        let body = match c.network {
            Network::Fc => Body::Fc {
                l1: linear(c.dx, h, vb.pp("fc1"))?,
                l2: linear(h, h, vb.pp("fc2"))?,
            },
            // 1 -> 9 -> 18 -> 23 -> 28 (ConvAE.lua:62-89)
            Network::ConvMnist => conv(vec![
                deconv_stage(h, 4 * f, 9, 1, 0, true, vb.pp("deconv1"))?,
                deconv_stage(4 * f, 2 * f, 4, 2, 1, true, vb.pp("deconv2"))?,
                deconv_stage(2 * f, f, 6, 1, 0, true, vb.pp("deconv3"))?,
                deconv_stage(f, ch, 6, 1, 0, false, vb.pp("deconv4"))?,
            ])?,
            // 1 -> 4 -> 8 -> 16 -> 32 (SVHNConvAE.lua:62-89)
            Network::ConvSvhn => conv(vec![
                deconv_stage(h, 4 * f, 4, 1, 0, true, vb.pp("deconv1"))?,
                deconv_stage(4 * f, 2 * f, 4, 2, 1, true, vb.pp("deconv2"))?,
                deconv_stage(2 * f, f, 4, 2, 1, true, vb.pp("deconv3"))?,
                deconv_stage(f, ch, 4, 2, 1, false, vb.pp("deconv4"))?,
            ])?,
        };
        let fc = c.network == Network::Fc;
        Ok(Self {
            body,
            out: if fc {
                Some(linear(h, c.dy, vb.pp("mean_y"))?)
            } else {
                None
            },
            out_logvar: if fc && c.likelihood == Likelihood::Gaussian {
                Some(linear(h, c.dy, vb.pp("logvar_y"))?)
            } else {
                None
            },
        })
    }

    /// The layers from x to the output head(s); the transposed convolutions start at 1x1.
    pub fn layers(&self) -> Vec<LayerShape> {
        let mut v = match &self.body {
            Body::Fc { l1, l2 } => vec![layers::linear(l1), layers::linear(l2)],
            Body::Conv { input, bn, stages } => {
                let mut v = vec![layers::linear(input), layers::batch_norm(bn)];
                let chain = stages.iter().map(|s| (&s.deconv, s.bn.as_ref()));
                v.extend(layers::conv_chain(1, chain));
                v
            }
        };
        v.extend(self.out.iter().chain(&self.out_logvar).map(layers::linear));
        v
    }

    /// p(y|x) for latents x `[B, Dx]`; outputs are flattened to `[B, Dy]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<YDistribution> {
        let h = match &self.body {
            Body::Fc { l1, l2 } => l2.forward(&l1.forward(x)?.relu()?)?.relu()?,
            Body::Conv { input, bn, stages } => {
                let h = bn.forward_t(&input.forward(x)?, train)?.relu()?;
                let mut h = h.unsqueeze(2)?.unsqueeze(3)?;
                for s in stages {
                    h = s.deconv.forward(&h)?;
                    if let Some(bn) = &s.bn {
                        h = bn.forward_t(&h, train)?.relu()?;
                    }
                }
                return Ok(YDistribution::Bernoulli {
                    logits: h.flatten_from(1)?,
                });
            }
        };
        let out = self
            .out
            .as_ref()
            .expect("fc decoder has an output head")
            .forward(&h)?;
        Ok(match &self.out_logvar {
            None => YDistribution::Bernoulli { logits: out },
            Some(lv) => YDistribution::Gaussian {
                mean: out,
                logvar: bounded_logvar(lv.forward(&h)?)?,
            },
        })
    }
}
