//! The built networks' layers as shapes, read from the modules themselves: counts made from them
//! (parameters, the FLOPs of a training step) follow the networks without a second table of
//! layers to keep in step.

use crate::conv::ConvLayer;
use candle_nn::{BatchNorm, Linear};

/// Which net a layer belongs to: the recognition net sees the N points of a batch, the decoder
/// and the prior net the M*N Monte-Carlo samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Recognition,
    Decoder,
    Prior,
}

/// A layer with learned weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerShape {
    /// Linear(inputs, outputs) with bias.
    Linear { inputs: usize, outputs: usize },
    /// Conv2d (or, `transposed`, ConvTranspose2d) from `cin` to `cout` planes, square kernel
    /// `k`, with bias, mapping `size_in` x `size_in` images to `size_out` x `size_out`.
    Conv {
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        transposed: bool,
        size_in: usize,
        size_out: usize,
    },
    /// BatchNorm over `features` channels.
    BatchNorm { features: usize },
}

impl LayerShape {
    /// Trainable parameters: weights and bias; gamma and beta for BatchNorm (its running
    /// statistics are state, as `count_trainable` has it).
    pub fn parameters(&self) -> usize {
        match *self {
            LayerShape::Linear { inputs, outputs } => inputs * outputs + outputs,
            LayerShape::Conv { cin, cout, k, .. } => cin * cout * k * k + cout,
            LayerShape::BatchNorm { features } => 2 * features,
        }
    }
}

/// The shape of a built Linear layer (weights `[outputs, inputs]`).
pub(crate) fn linear(l: &Linear) -> LayerShape {
    let d = l.weight().dims();
    LayerShape::Linear {
        inputs: d[1],
        outputs: d[0],
    }
}

/// The shape of a built BatchNorm layer.
pub(crate) fn batch_norm(bn: &BatchNorm) -> LayerShape {
    LayerShape::BatchNorm {
        features: bn.running_mean().elem_count(),
    }
}

/// The shapes of a chain of built (transposed) convolutions, each maybe followed by BatchNorm,
/// on `size` x `size` inputs: each layer's output side is the next one's input side.
pub(crate) fn conv_chain<'a>(
    mut size: usize,
    stages: impl IntoIterator<Item = (&'a ConvLayer, Option<&'a BatchNorm>)>,
) -> Vec<LayerShape> {
    let mut v = vec![];
    for (conv, bn) in stages {
        let shape = conv.shape(size);
        if let LayerShape::Conv { size_out, .. } = shape {
            size = size_out;
        }
        v.push(shape);
        v.extend(bn.map(batch_norm));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{count_trainable, Gmvae, GmvaeConfig, Likelihood, Network};
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};

    fn config(network: Network) -> GmvaeConfig {
        let (dy, image_shape) = match network {
            Network::Fc => (5, None),
            Network::ConvMnist => (784, Some([1, 28, 28])),
            Network::ConvSvhn => (3072, Some([3, 32, 32])),
        };
        GmvaeConfig {
            network,
            dy,
            image_shape,
            dx: 3,
            dw: 2,
            k: 4,
            hidden: 6,
            filters: 2,
            likelihood: Likelihood::Bernoulli,
            qz_head: true,
        }
    }

    #[test]
    fn layer_parameters_add_up_to_the_built_variables() {
        for network in [Network::Fc, Network::ConvMnist, Network::ConvSvhn] {
            for (qz_head, likelihood) in [
                (true, Likelihood::Bernoulli),
                (false, Likelihood::Bernoulli),
                (true, Likelihood::Gaussian),
            ] {
                if network != Network::Fc && likelihood == Likelihood::Gaussian {
                    continue;
                }
                let c = GmvaeConfig {
                    qz_head,
                    likelihood,
                    ..config(network)
                };
                let varmap = VarMap::new();
                let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
                let model = Gmvae::new(c, vb).unwrap();
                let listed: usize = model.layers().iter().map(|(_, l)| l.parameters()).sum();
                let data = varmap.data().lock().unwrap();
                let built = count_trainable(data.iter().map(|(n, v)| (n.as_str(), v.elem_count())));
                assert_eq!(listed, built, "{network:?} qz {qz_head} {likelihood:?}");
            }
        }
    }

    #[test]
    fn conv_chains_run_from_the_image_to_1x1_and_back() {
        for network in [Network::ConvMnist, Network::ConvSvhn] {
            let c = config(network);
            let [ch, side, _] = c.image_shape.unwrap();
            let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
            let model = Gmvae::new(c, vb).unwrap();
            for (part, from, to) in [(Part::Recognition, side, 1), (Part::Decoder, 1, side)] {
                let mut size = from;
                let mut planes = None;
                for (_, l) in model.layers().iter().filter(|(p, _)| *p == part) {
                    if let LayerShape::Conv {
                        cout,
                        size_in,
                        size_out,
                        ..
                    } = *l
                    {
                        assert_eq!(size_in, size, "{network:?} {part:?}: {l:?}");
                        (size, planes) = (size_out, Some(cout));
                    }
                }
                assert_eq!(size, to, "{network:?} {part:?}");
                if part == Part::Decoder {
                    assert_eq!(
                        planes,
                        Some(ch),
                        "{network:?}: the decoder ends at the image"
                    );
                }
            }
        }
    }
}
