//! The FLOPs of one training step, counted analytically from the network shapes: the matmuls and
//! convolutions only (BatchNorm, activations and the objective's elementwise terms are left out).
//! Forward costs 2 FLOPs per multiply-accumulate; backward about twice forward (the gradients of
//! the inputs and of the weights are one product each).

use gmvae_models::{GmvaeConfig, Likelihood, Network};

/// A layer with learned weights, as the counts see it. `rows` is the number of inputs it sees in
/// one step: N for the recognition net, M*N for the decoder and the prior net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Linear(inputs, outputs) with bias.
    Linear {
        rows: usize,
        inputs: usize,
        outputs: usize,
    },
    /// Conv2d(cin, cout, k, stride, pad) with bias on `size` x `size` images.
    Conv {
        rows: usize,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        size: usize,
    },
    /// ConvTranspose2d(cin, cout, k, stride, pad) with bias on `size` x `size` inputs.
    Deconv {
        rows: usize,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        size: usize,
    },
    /// BatchNorm over `features` channels: gamma + beta, no multiply-accumulates counted.
    BatchNorm { features: usize },
}

impl Layer {
    /// Side of the output image (1 for the layers without one).
    pub fn out_size(&self) -> usize {
        match *self {
            Layer::Conv {
                k,
                stride,
                pad,
                size,
                ..
            } => (size + 2 * pad - k) / stride + 1,
            Layer::Deconv {
                k,
                stride,
                pad,
                size,
                ..
            } => (size - 1) * stride + k - 2 * pad,
            _ => 1,
        }
    }

    /// Multiply-accumulates of the forward pass.
    pub fn macs(&self) -> u64 {
        let o = self.out_size() as u64;
        match *self {
            Layer::Linear {
                rows,
                inputs,
                outputs,
            } => (rows * inputs * outputs) as u64,
            // Every output pixel of every output plane reads a cin x k x k window.
            Layer::Conv {
                rows, cin, cout, k, ..
            } => (rows * cout * cin * k * k) as u64 * o * o,
            // Every input pixel of every input plane scatters into a cout x k x k window.
            Layer::Deconv {
                rows,
                cin,
                cout,
                k,
                size,
                ..
            } => (rows * cin * size * size * cout * k * k) as u64,
            Layer::BatchNorm { .. } => 0,
        }
    }

    /// Trainable parameters (weights and bias; gamma and beta for BatchNorm).
    pub fn parameters(&self) -> usize {
        match *self {
            Layer::Linear {
                inputs, outputs, ..
            } => inputs * outputs + outputs,
            Layer::Conv { cin, cout, k, .. } | Layer::Deconv { cin, cout, k, .. } => {
                cin * cout * k * k + cout
            }
            Layer::BatchNorm { features } => 2 * features,
        }
    }
}

/// (cin, cout, k, stride, pad) of one convolution.
type ConvShape = (usize, usize, usize, usize, usize);

/// Chains convolutions (or transposed ones) from images of side `size`, the first `with_bn` of
/// them followed by BatchNorm, and returns the final image side.
fn conv_chain(
    out: &mut Vec<Layer>,
    rows: usize,
    mut size: usize,
    transposed: bool,
    shapes: &[ConvShape],
    with_bn: usize,
) -> usize {
    for (i, &(cin, cout, k, stride, pad)) in shapes.iter().enumerate() {
        let layer = if transposed {
            Layer::Deconv {
                rows,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            }
        } else {
            Layer::Conv {
                rows,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            }
        };
        size = layer.out_size();
        out.push(layer);
        if i < with_bn {
            out.push(Layer::BatchNorm { features: cout });
        }
    }
    size
}

/// The layers of the GMVAE `c` (models/src/*.rs, layer for layer) for a batch of `n` points and
/// `m` Monte-Carlo samples.
pub fn layers(c: &GmvaeConfig, n: usize, m: usize) -> Vec<Layer> {
    let (h, f, mn) = (c.hidden, c.filters, m * n);
    let lin = |rows, inputs, outputs| Layer::Linear {
        rows,
        inputs,
        outputs,
    };
    let ch = c.image_shape.map_or(1, |s| s[0]);
    let side = c.image_shape.map_or(1, |s| s[1]);
    let mut v = vec![];
    // Recognition trunk y -> h.
    match c.network {
        Network::Fc => {
            for (a, b) in [(c.dy, h), (h, h)] {
                v.push(lin(n, a, b));
                v.push(Layer::BatchNorm { features: b });
            }
        }
        Network::ConvMnist => {
            let shapes = [
                (ch, f, 6, 1, 0),
                (f, 2 * f, 6, 1, 0),
                (2 * f, 4 * f, 4, 2, 1),
                (4 * f, h, 9, 1, 0),
            ];
            conv_chain(&mut v, n, side, false, &shapes, 4);
        }
        Network::ConvSvhn => {
            let shapes = [
                (ch, f, 4, 2, 1),
                (f, 2 * f, 4, 2, 1),
                (2 * f, 4 * f, 4, 2, 1),
                (4 * f, h, 4, 1, 0),
            ];
            conv_chain(&mut v, n, side, false, &shapes, 4);
        }
    }
    // Heads of q(x|y), q(w|y) and q(z|y).
    v.extend([
        lin(n, h, c.dx),
        lin(n, h, c.dx),
        lin(n, h, c.dw),
        lin(n, h, c.dw),
    ]);
    if c.qz_head {
        v.push(lin(n, h, c.k));
    }
    // Decoder p(y|x) on the M*N samples of x.
    match c.network {
        Network::Fc => {
            v.extend([lin(mn, c.dx, h), lin(mn, h, h), lin(mn, h, c.dy)]);
            if c.likelihood == Likelihood::Gaussian {
                v.push(lin(mn, h, c.dy));
            }
        }
        Network::ConvMnist | Network::ConvSvhn => {
            v.extend([lin(mn, c.dx, h), Layer::BatchNorm { features: h }]);
            let shapes: [ConvShape; 4] = if c.network == Network::ConvMnist {
                [
                    (h, 4 * f, 9, 1, 0),
                    (4 * f, 2 * f, 4, 2, 1),
                    (2 * f, f, 6, 1, 0),
                    (f, ch, 6, 1, 0),
                ]
            } else {
                [
                    (h, 4 * f, 4, 1, 0),
                    (4 * f, 2 * f, 4, 2, 1),
                    (2 * f, f, 4, 2, 1),
                    (f, ch, 4, 2, 1),
                ]
            };
            conv_chain(&mut v, mn, 1, true, &shapes, 3);
        }
    }
    // Prior net p(x|w,z) on the M*N samples of w: the K heads fused into one Linear each.
    v.extend([
        lin(mn, c.dw, h),
        lin(mn, h, c.k * c.dx),
        lin(mn, h, c.k * c.dx),
    ]);
    v
}

/// FLOPs of one training step: forward 2 x MACs, backward 2 x forward.
pub fn step_flops(layers: &[Layer]) -> f64 {
    let macs: u64 = layers.iter().map(Layer::macs).sum();
    3.0 * 2.0 * macs as f64
}

/// Trainable parameters of `layers`; equal to the model's count when the list is right.
pub fn parameter_count(layers: &[Layer]) -> usize {
    layers.iter().map(Layer::parameters).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn tiny_shapes_by_hand() {
        let l = Layer::Linear {
            rows: 3,
            inputs: 4,
            outputs: 5,
        };
        assert_eq!((l.macs(), l.parameters()), (60, 25));
        assert_eq!(step_flops(&[l]), 360.0);
        // 1 -> 2 planes, 3x3 kernel on 5x5: a 3x3 output, 2*9 outputs of 9 MACs each.
        let conv = Layer::Conv {
            rows: 1,
            cin: 1,
            cout: 2,
            k: 3,
            stride: 1,
            pad: 0,
            size: 5,
        };
        assert_eq!(
            (conv.out_size(), conv.macs(), conv.parameters()),
            (3, 162, 20)
        );
        // Its transpose maps 3x3 back to 5x5 with the same products.
        let deconv = Layer::Deconv {
            rows: 1,
            cin: 2,
            cout: 1,
            k: 3,
            stride: 1,
            pad: 0,
            size: 3,
        };
        assert_eq!((deconv.out_size(), deconv.macs()), (5, 162));
        // Stride 2, pad 1, kernel 4: 9 -> 18 (ConvAE's second transposed conv) and back.
        let up = Layer::Deconv {
            rows: 1,
            cin: 1,
            cout: 1,
            k: 4,
            stride: 2,
            pad: 1,
            size: 9,
        };
        assert_eq!(up.out_size(), 18);
        let down = Layer::Conv {
            rows: 1,
            cin: 1,
            cout: 1,
            k: 4,
            stride: 2,
            pad: 1,
            size: 18,
        };
        assert_eq!(down.out_size(), 9);
        assert_eq!(up.macs(), down.macs());
    }

    #[test]
    fn layer_lists_have_upstreams_parameter_counts() {
        let mut spiral = config(Network::Fc, 2, None);
        (spiral.dx, spiral.dw, spiral.k, spiral.hidden) = (2, 2, 8, 100);
        spiral.likelihood = Likelihood::Gaussian;
        let mut fc = config(Network::Fc, 784, None);
        fc.hidden = 1000;
        let conv = config(Network::ConvMnist, 784, Some([1, 28, 28]));
        let mut svhn = config(Network::ConvSvhn, 3072, Some([3, 32, 32]));
        (svhn.k, svhn.filters, svhn.qz_head) = (10, 64, false);
        for (c, want) in [
            (spiral, 26_752),
            (fc, 10_248_098),
            (conv, 8_630_039),
            (svhn, 7_948_755),
        ] {
            assert_eq!(parameter_count(&layers(&c, 50, 1)), want, "{:?}", c.network);
        }
    }

    #[test]
    fn conv_chains_end_at_one_pixel_and_at_the_image() {
        let c = config(Network::ConvMnist, 784, Some([1, 28, 28]));
        let l = layers(&c, 2, 1);
        let sides: Vec<usize> = l
            .iter()
            .filter(|l| matches!(l, Layer::Conv { .. } | Layer::Deconv { .. }))
            .map(Layer::out_size)
            .collect();
        assert_eq!(sides, vec![23, 18, 9, 1, 9, 18, 23, 28]);
    }

    #[test]
    fn monte_carlo_samples_scale_only_decoder_and_prior() {
        let c = config(Network::Fc, 784, None);
        let macs = |n, m| -> u64 { layers(&c, n, m).iter().map(Layer::macs).sum() };
        let recognition = (784 * 500 + 500 * 500 + 2 * 500 * 200 + 2 * 500 * 150 + 500 * 14) as u64;
        // M = 2 adds one more pass of the decoder and prior per point, nothing else.
        assert_eq!(macs(1, 2) - macs(1, 1), macs(1, 1) - recognition);
    }
}
