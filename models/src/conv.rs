//! 2-D convolutions through im2col / col2im and one batched matrix product, on the CPU.
//!
//! candle's CPU conv_transpose2d is a direct loop of dot products, and the backward pass of its
//! conv2d calls conv_transpose2d for the input gradient: together they made the conv presets'
//! step ~4x PyTorch's (`perf`: 26% of the step in `vec_dot_f32` and as much again in the loop
//! closures). Here
//! - conv2d(x, K) = K_mat `[Cout, Cin*k*k]` x im2col(x) `[Cin*k*k, N*Ho*Wo]`,
//! - conv_transpose2d(x, K) = col2im(K_mat^T `[Cout*k*k, Cin]` x x `[Cin, N*H*W]`),
//!
//! and im2col and col2im are custom ops, each the other's adjoint, so candle's autograd derives
//! every gradient from them and from matmul (gemm). Other devices keep candle's own kernels.

use crate::layers::LayerShape;
use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;

/// Geometry of one convolution: square kernel `k`, `stride`, zero `padding`, on an input
/// `[C, h, w]` with output grid `oh x ow`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    padding: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, padding: usize) -> Result<Self> {
        let (hp, wp) = (h + 2 * padding, w + 2 * padding);
        if hp < k || wp < k || stride == 0 {
            candle_core::bail!(
                "conv: kernel {k} does not fit a {h}x{w} input with padding {padding}"
            );
        }
        Ok(Self {
            c,
            h,
            w,
            k,
            stride,
            padding,
            oh: (hp - k) / stride + 1,
            ow: (wp - k) / stride + 1,
        })
    }

    /// For every (channel, ky, kx) row and output row, the run of output positions whose window
    /// reads inside the image: `f(row, first_position, first_input_index, len, input_step)`,
    /// position `first_position + j` reading input `first_input_index + j * input_step` (within
    /// one image). Runs skip the padding, so the callers' inner loops have no branches.
    #[inline]
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let Self {
            c,
            h,
            w,
            k,
            stride,
            padding,
            oh,
            ow,
        } = *self;
        for ch in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (ch * k + ky) * k + kx;
                    // ix = ox * stride + kx - padding must lie in [0, w).
                    let lo = padding.saturating_sub(kx).div_ceil(stride);
                    let hi = match (w + padding).checked_sub(kx + 1) {
                        Some(top) => (top / stride + 1).min(ow),
                        None => 0,
                    };
                    if lo >= hi {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = (oy * stride + ky) as isize - padding as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let ix0 = lo * stride + kx - padding;
                        f(
                            row,
                            oy * ow + lo,
                            (ch * h + iy as usize) * w + ix0,
                            hi - lo,
                            stride,
                        );
                    }
                }
            }
        }
    }

    fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    fn image(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// `[N, C, h, w]` -> `[C*k*k, N*oh*ow]`: the windows of all N images side by side, so one
/// plain matrix product serves the batch (a batched product would broadcast the kernel, and its
/// gradient, N times).
struct Im2Col(Geometry);

/// `[C*k*k, N*oh*ow]` -> `[N, C, h, w]`, summing overlapping windows (the adjoint of im2col).
struct Col2Im(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "gmvae-im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = crate::par::contiguous_f32(s, l, "im2col")?;
        let n = l.dims()[0];
        let (pos, stride) = (g.positions(), n * g.positions());
        let mut out = vec![0f32; g.rows() * stride];
        let shared = crate::par::SharedMut::new(&mut out);
        crate::par::for_each(n, |b| {
            let img = &x[b * g.image()..][..g.image()];
            g.for_each_run(|r, p, i, len, step| {
                // SAFETY: image b writes only columns b*pos..(b+1)*pos of each row.
                let dst = unsafe { shared.slice(r * stride + b * pos + p, len) };
                if step == 1 {
                    dst.copy_from_slice(&img[i..i + len]);
                } else {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = img[i + j * step];
                    }
                }
            });
        });
        Ok((CpuStorage::F32(out), Shape::from((g.rows(), stride))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "gmvae-col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = crate::par::contiguous_f32(s, l, "col2im")?;
        let stride = l.dims()[1];
        let pos = g.positions();
        if pos == 0 || !stride.is_multiple_of(pos) || l.dims()[0] != g.rows() {
            candle_core::bail!("col2im: columns {:?} do not fit {g:?}", l.dims());
        }
        let n = stride / pos;
        let mut out = vec![0f32; n * g.image()];
        let shared = crate::par::SharedMut::new(&mut out);
        crate::par::for_each(n, |b| {
            // SAFETY: image b is the only writer of its own slice.
            let img = unsafe { shared.slice(b * g.image(), g.image()) };
            g.for_each_run(|r, p, i, len, step| {
                let src = &cols[r * stride + b * pos + p..][..len];
                if step == 1 {
                    for (d, s) in img[i..i + len].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    for (j, s) in src.iter().enumerate() {
                        img[i + j * step] += s;
                    }
                }
            });
        });
        Ok((CpuStorage::F32(out), Shape::from((n, g.c, g.h, g.w))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// conv2d of `x` `[N, Cin, H, W]` with `kernel` `[Cout, Cin, k, k]` (no bias).
pub fn conv2d(x: &Tensor, kernel: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv2d(kernel, padding, stride, 1, 1);
    }
    let (n, cin, h, w) = x.dims4()?;
    let (cout, _, k, _) = kernel.dims4()?;
    let g = Geometry::new(cin, h, w, k, stride, padding)?;
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    let y = kernel.reshape((cout, g.rows()))?.matmul(&cols)?; // [Cout, N*oh*ow]
    y.reshape((cout, n, g.oh, g.ow))?
        .transpose(0, 1)?
        .contiguous()
}

/// conv_transpose2d of `x` `[N, Cin, H, W]` with `kernel` `[Cin, Cout, k, k]` (no bias, no
/// output padding): output `[N, Cout, (H-1)*stride - 2*padding + k, ...]`.
pub fn conv_transpose2d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv_transpose2d(kernel, padding, 0, stride, 1);
    }
    let (n, cin, h, w) = x.dims4()?;
    let (_, cout, k, _) = kernel.dims4()?;
    let (oh, ow) = ((h - 1) * stride + k, (w - 1) * stride + k);
    if oh < 2 * padding + 1 || ow < 2 * padding + 1 {
        candle_core::bail!("conv_transpose2d: padding {padding} leaves no output");
    }
    // The transposed convolution is the adjoint of a conv2d from the output grid to x's grid.
    let g = Geometry::new(cout, oh - 2 * padding, ow - 2 * padding, k, stride, padding)?;
    if (g.oh, g.ow) != (h, w) {
        candle_core::bail!("conv_transpose2d: inconsistent geometry {g:?} for a {h}x{w} input");
    }
    let kmat_t = kernel.reshape((cin, g.rows()))?.t()?;
    let x2 = x.transpose(0, 1)?.contiguous()?.reshape((cin, n * h * w))?;
    kmat_t.matmul(&x2)?.contiguous()?.apply_op1(Col2Im(g))
}

/// A convolution layer with bias: `Conv2d` (weights `[Cout, Cin, k, k]`) or its transpose
/// `ConvTranspose2d` (weights `[Cin, Cout, k, k]`), named as candle-nn's (`weight`, `bias`).
pub struct ConvLayer {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    transposed: bool,
}

/// y = conv2d(x) + b.
pub type Conv2d = ConvLayer;
/// y = conv_transpose2d(x) + b.
pub type ConvTranspose2d = ConvLayer;

impl ConvLayer {
    /// A conv2d layer `cin -> cout`, square kernel `k`.
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::build((cout, cin, k, k), cout, stride, padding, false, vb)
    }

    /// A transposed conv2d layer `cin -> cout`, square kernel `k`.
    pub fn transposed(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::build((cin, cout, k, k), cout, stride, padding, true, vb)
    }

    fn build(
        shape: (usize, usize, usize, usize),
        cout: usize,
        stride: usize,
        padding: usize,
        transposed: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            weight: vb.get(shape, "weight")?,
            bias: vb.get(cout, "bias")?,
            stride,
            padding,
            transposed,
        })
    }

    /// This layer's shape on `size_in` x `size_in` inputs (square images only, as the presets').
    pub(crate) fn shape(&self, size_in: usize) -> LayerShape {
        let d = self.weight.dims();
        let ((cin, cout), k) = if self.transposed {
            ((d[0], d[1]), d[2])
        } else {
            ((d[1], d[0]), d[2])
        };
        let (stride, pad) = (self.stride, self.padding);
        let size_out = if self.transposed {
            ((size_in - 1) * stride + k).saturating_sub(2 * pad)
        } else {
            (size_in + 2 * pad).saturating_sub(k) / stride + 1
        };
        LayerShape::Conv {
            cin,
            cout,
            k,
            stride,
            pad,
            transposed: self.transposed,
            size_in,
            size_out,
        }
    }
}

impl Module for ConvLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.transposed {
            conv_transpose2d(x, &self.weight, self.stride, self.padding)?
        } else {
            conv2d(x, &self.weight, self.stride, self.padding)?
        };
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// The presets' layer shapes: (Cin, Cout, k, stride, padding, input size).
    const LAYERS: [(usize, usize, usize, usize, usize, usize); 6] = [
        (1, 3, 6, 1, 0, 28),
        (3, 4, 4, 2, 1, 18),
        (4, 5, 9, 1, 0, 9),
        (2, 3, 4, 2, 1, 16),
        (5, 4, 9, 1, 0, 1),
        (3, 2, 4, 1, 0, 4),
    ];

    #[test]
    fn forward_matches_candle() {
        for (i, &(cin, cout, k, s, p, size)) in LAYERS.iter().enumerate() {
            let seed = i as u64;
            if size + 2 * p >= k {
                let x = rand(&[2, cin, size, size], seed);
                let kern = rand(&[cout, cin, k, k], seed + 10);
                let ours = conv2d(&x, &kern, s, p).unwrap();
                let theirs = x.conv2d(&kern, p, s, 1, 1).unwrap();
                assert_eq!(ours.dims(), theirs.dims());
                assert!(max_diff(&ours, &theirs) < 1e-4, "conv2d layer {i}");
            }
            let x = rand(&[2, cin, size, size], seed + 20);
            let kern = rand(&[cin, cout, k, k], seed + 30);
            if (size - 1) * s + k > 2 * p {
                let ours = conv_transpose2d(&x, &kern, s, p).unwrap();
                let theirs = x.conv_transpose2d(&kern, p, 0, s, 1).unwrap();
                assert_eq!(ours.dims(), theirs.dims(), "layer {i}");
                assert!(
                    max_diff(&ours, &theirs) < 1e-4,
                    "conv_transpose2d layer {i}"
                );
            }
        }
    }

    #[test]
    fn listed_shape_is_the_forward_output() {
        for &(cin, cout, k, s, p, size) in &LAYERS {
            let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
            let x = Tensor::zeros((1, cin, size, size), DType::F32, &Device::Cpu).unwrap();
            let mut layers = vec![ConvLayer::transposed(cin, cout, k, s, p, vb.pp("t")).unwrap()];
            if size + 2 * p >= k {
                layers.push(ConvLayer::new(cin, cout, k, s, p, vb.pp("c")).unwrap());
            }
            for layer in layers {
                let shape = layer.shape(size);
                let y = layer.forward(&x).unwrap();
                let LayerShape::Conv {
                    cin: i,
                    cout: o,
                    size_out,
                    ..
                } = shape
                else {
                    panic!("{shape:?} is not a convolution")
                };
                assert_eq!((i, o), (cin, cout), "{shape:?}");
                assert_eq!(y.dims()[1..], [cout, size_out, size_out], "{shape:?}");
            }
        }
    }

    #[test]
    fn gradients_match_candle_and_finite_differences() {
        // Gradients of sum(conv(x, K) * r) w.r.t. x and K, ours against candle's autograd.
        for (i, &(cin, cout, k, s, p, size)) in LAYERS.iter().enumerate().skip(1) {
            let seed = 100 + i as u64;
            for transposed in [false, true] {
                let kshape = if transposed {
                    [cin, cout, k, k]
                } else {
                    [cout, cin, k, k]
                };
                if !transposed && size + 2 * p < k {
                    continue;
                }
                let x = Var::from_tensor(&rand(&[2, cin, size, size], seed)).unwrap();
                let kern = Var::from_tensor(&rand(&kshape, seed + 1)).unwrap();
                let run = |ours: bool| {
                    let y = match (transposed, ours) {
                        (false, true) => conv2d(&x, &kern, s, p),
                        (false, false) => x.conv2d(&kern, p, s, 1, 1),
                        (true, true) => conv_transpose2d(&x, &kern, s, p),
                        (true, false) => x.conv_transpose2d(&kern, p, 0, s, 1),
                    }
                    .unwrap();
                    let r = rand(y.dims(), seed + 2);
                    let loss = (y * r).unwrap().sum_all().unwrap();
                    let g = loss.backward().unwrap();
                    (
                        g.get(&x).unwrap().clone(),
                        g.get(&kern).unwrap().clone(),
                        loss,
                    )
                };
                let (gx, gk, _) = run(true);
                let (cx, ck, _) = run(false);
                assert!(
                    max_diff(&gx, &cx) < 1e-3,
                    "layer {i} transposed {transposed}: dx"
                );
                assert!(
                    max_diff(&gk, &ck) < 1e-3,
                    "layer {i} transposed {transposed}: dK"
                );
                // And a finite difference on one kernel element, in f64 arithmetic of f32 sums.
                let base: Vec<f32> = kern.flatten_all().unwrap().to_vec1().unwrap();
                let at = |d: f32| {
                    let mut v = base.clone();
                    v[3] += d;
                    kern.set(&Tensor::from_vec(v, kern.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    let l = run(true)
                        .2
                        .to_dtype(DType::F64)
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap();
                    kern.set(&Tensor::from_vec(base.clone(), kern.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    l
                };
                let fd = (at(1e-2) - at(-1e-2)) / 2e-2;
                let g3 = gk.flatten_all().unwrap().to_vec1::<f32>().unwrap()[3] as f64;
                assert!(
                    (fd - g3).abs() < 2e-2 * (1.0 + g3.abs()),
                    "layer {i}: fd {fd} vs {g3}"
                );
            }
        }
    }
}
