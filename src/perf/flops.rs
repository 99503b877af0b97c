//! The FLOPs of one training step, counted analytically from the built model's layers
//! (`Gmvae::layers`): the matmuls and convolutions only (BatchNorm, activations and the
//! objective's elementwise terms are left out). Forward costs 2 FLOPs per multiply-accumulate;
//! backward about twice forward (the gradients of the inputs and of the weights are one product
//! each).

use gmvae_models::{Gmvae, LayerShape, Part};

/// A layer with learned weights and `rows`, the number of inputs it sees in one step: N for the
/// recognition net, M*N for the decoder and the prior net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub rows: usize,
    pub shape: LayerShape,
}

impl Layer {
    /// Multiply-accumulates of the forward pass.
    pub fn macs(&self) -> u64 {
        let rows = self.rows as u64;
        match self.shape {
            LayerShape::Linear { inputs, outputs } => rows * (inputs * outputs) as u64,
            // Every output pixel of every output plane reads a cin x k x k window.
            LayerShape::Conv {
                cin,
                cout,
                k,
                transposed: false,
                size_out,
                ..
            } => rows * (cout * cin * k * k) as u64 * (size_out * size_out) as u64,
            // Every input pixel of every input plane scatters into a cout x k x k window.
            LayerShape::Conv {
                cin,
                cout,
                k,
                transposed: true,
                size_in,
                ..
            } => rows * (cin * size_in * size_in * cout * k * k) as u64,
            LayerShape::BatchNorm { .. } => 0,
        }
    }
}

/// The layers of the built `model` for a batch of `n` points and `m` Monte-Carlo samples.
pub fn layers(model: &Gmvae, n: usize, m: usize) -> Vec<Layer> {
    model
        .layers()
        .into_iter()
        .map(|(part, shape)| Layer {
            rows: match part {
                Part::Recognition => n,
                Part::Decoder | Part::Prior => m * n,
            },
            shape,
        })
        .collect()
}

/// FLOPs of one training step: forward 2 x MACs, backward 2 x forward.
pub fn step_flops(layers: &[Layer]) -> f64 {
    let macs: u64 = layers.iter().map(Layer::macs).sum();
    3.0 * 2.0 * macs as f64
}

/// Trainable parameters of `layers`; equal to the model's count when nothing is missed.
pub fn parameter_count(layers: &[Layer]) -> usize {
    layers.iter().map(|l| l.shape.parameters()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use gmvae_models::{GmvaeConfig, Likelihood, Network};

    fn config(network: Network, dy: usize, image: Option<[usize; 3]>) -> GmvaeConfig {
        GmvaeConfig {
            network,
            dy,
            image_shape: image,
            dx: 200,
            dw: 150,
            k: 14,
            hidden: 500,
            filters: 16,
            likelihood: Likelihood::Bernoulli,
            qz_head: true,
        }
    }

    /// The model `c` builds, and its trainable parameter count from the variables it created.
    fn build(c: &GmvaeConfig) -> (Gmvae, usize) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Gmvae::new(c.clone(), vb).unwrap();
        let data = varmap.data().lock().unwrap();
        let count =
            gmvae_models::count_trainable(data.iter().map(|(n, v)| (n.as_str(), v.elem_count())));
        (model, count)
    }

    fn conv(transposed: bool, cin: usize, cout: usize, k: usize, sizes: (usize, usize)) -> Layer {
        Layer {
            rows: 1,
            shape: LayerShape::Conv {
                cin,
                cout,
                k,
                stride: 1,
                pad: 0,
                transposed,
                size_in: sizes.0,
                size_out: sizes.1,
            },
        }
    }

    #[test]
    fn tiny_shapes_by_hand() {
        let l = Layer {
            rows: 3,
            shape: LayerShape::Linear {
                inputs: 4,
                outputs: 5,
            },
        };
        assert_eq!((l.macs(), l.shape.parameters()), (60, 25));
        assert_eq!(step_flops(&[l]), 360.0);
        // 1 -> 2 planes, 3x3 kernel on 5x5: a 3x3 output, 2*9 outputs of 9 MACs each.
        let down = conv(false, 1, 2, 3, (5, 3));
        assert_eq!((down.macs(), down.shape.parameters()), (162, 20));
        // Its transpose maps 3x3 back to 5x5 with the same products.
        assert_eq!(conv(true, 2, 1, 3, (3, 5)).macs(), 162);
    }

    #[test]
    fn layer_lists_add_up_to_the_built_models() {
        let mut spiral = config(Network::Fc, 2, None);
        (spiral.dx, spiral.dw, spiral.k, spiral.hidden) = (2, 2, 8, 100);
        spiral.likelihood = Likelihood::Gaussian;
        let mut fc = config(Network::Fc, 784, None);
        fc.hidden = 1000;
        let conv = config(Network::ConvMnist, 784, Some([1, 28, 28]));
        let mut svhn = config(Network::ConvSvhn, 3072, Some([3, 32, 32]));
        (svhn.k, svhn.filters, svhn.qz_head) = (10, 64, false);
        // Upstream's counts (tests/model.rs): the list misses no layer of the model it reads.
        for (c, want) in [
            (spiral, 26_752),
            (fc, 10_248_098),
            (conv, 8_630_039),
            (svhn, 7_948_755),
        ] {
            let (model, built) = build(&c);
            let listed = parameter_count(&layers(&model, 50, 1));
            assert_eq!((listed, built), (want, want), "{:?}", c.network);
        }
    }

    #[test]
    fn conv_chains_end_at_one_pixel_and_at_the_image() {
        let (model, _) = build(&config(Network::ConvMnist, 784, Some([1, 28, 28])));
        let sides: Vec<usize> = layers(&model, 2, 1)
            .iter()
            .filter_map(|l| match l.shape {
                LayerShape::Conv { size_out, .. } => Some(size_out),
                _ => None,
            })
            .collect();
        assert_eq!(sides, vec![23, 18, 9, 1, 9, 18, 23, 28]);
    }

    #[test]
    fn fc_flops_follow_the_built_layer_sizes() {
        // The fully-connected model's MACs worked out from its sizes: the counts read the
        // layers of the model as built, so any change of a layer shows here.
        for (h, dx, likelihood) in [
            (500, 200, Likelihood::Bernoulli),
            (64, 10, Likelihood::Gaussian),
        ] {
            let mut c = config(Network::Fc, 784, None);
            (c.hidden, c.dx, c.likelihood) = (h, dx, likelihood);
            let (dy, dw, k) = (c.dy, c.dw, c.k);
            let (model, _) = build(&c);
            let (n, m) = (3, 2);
            let heads = if likelihood == Likelihood::Gaussian {
                2
            } else {
                1
            };
            let recognition = n * (dy * h + h * h + 2 * h * dx + 2 * h * dw + h * k);
            let decoder = m * n * (dx * h + h * h + heads * h * dy);
            let prior = m * n * (dw * h + 2 * h * k * dx);
            let want = 6.0 * (recognition + decoder + prior) as f64;
            assert_eq!(step_flops(&layers(&model, n, m)), want, "H = {h}");
        }
    }

    #[test]
    fn monte_carlo_samples_scale_only_decoder_and_prior() {
        let (model, _) = build(&config(Network::Fc, 784, None));
        let macs = |n, m| -> u64 { layers(&model, n, m).iter().map(Layer::macs).sum() };
        let recognition = (784 * 500 + 500 * 500 + 2 * 500 * 200 + 2 * 500 * 150 + 500 * 14) as u64;
        // M = 2 adds one more pass of the decoder and prior per point, nothing else.
        assert_eq!(macs(1, 2) - macs(1, 1), macs(1, 1) - recognition);
    }
}
