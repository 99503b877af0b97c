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
//! every gradient from them and from matmul (gemm). Where a layer's grid is large (conv MNIST's
//! big layers), two fused ops do the product image by image instead: `Conv2dProduct` writes
//! conv2d's output in place (no transposing copy) and sums its input gradient through
//! `MatmulCol2Im`, which is also conv_transpose2d's forward: col2im(A · B) one image at a time,
//! so the `[C*k*k, N*P]` product (37 MB for conv MNIST's second layer) is never written out and
//! read back. Both give the unfused form's bits (tested), spread over the threads by image.
//! Other devices keep candle's own kernels.

use crate::layers::LayerShape;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Module, Result, Shape, Tensor,
};
use candle_nn::VarBuilder;
use std::mem::MaybeUninit;

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

    /// For row `row` = (channel, ky, kx) of the columns and every output row, the run of output
    /// positions whose window reads inside the image: `f(first_position, first_input_index, len,
    /// input_step)`, position `first_position + j` reading input `first_input_index + j *
    /// input_step` (within one image). Runs skip the padding, so the callers' inner loops have
    /// no branches; they come in increasing output position.
    #[inline]
    fn row_runs(&self, row: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let Self {
            h,
            w,
            k,
            stride,
            padding,
            oh,
            ow,
            ..
        } = *self;
        let (ch, ky, kx) = (row / (k * k), row / k % k, row % k);
        // ix = ox * stride + kx - padding must lie in [0, w).
        let lo = padding.saturating_sub(kx).div_ceil(stride);
        let hi = match (w + padding).checked_sub(kx + 1) {
            Some(top) => (top / stride + 1).min(ow),
            None => 0,
        };
        if lo >= hi {
            return;
        }
        for oy in 0..oh {
            let iy = (oy * stride + ky) as isize - padding as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            let ix0 = lo * stride + kx - padding;
            f(
                oy * ow + lo,
                (ch * h + iy as usize) * w + ix0,
                hi - lo,
                stride,
            );
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
        let len = g.rows() * stride;
        let mut out = Vec::<f32>::with_capacity(len);
        let shared = crate::par::SharedMut::new(out.spare_capacity_mut());
        // Row by row, each row written front to back across the batch: one sequential stream of
        // stores per task (the source images are small enough to stay in cache).
        crate::par::for_each(g.rows(), |r| {
            // SAFETY: task r is the only writer of row r.
            let row = unsafe { shared.slice(r * stride, stride) };
            if g.padding > 0 {
                // Windows over the padding read zeros; without padding every column is a run's.
                row.fill(MaybeUninit::new(0.));
            }
            for b in 0..n {
                let img = &x[b * g.image()..][..g.image()];
                let dst = &mut row[b * pos..][..pos];
                g.row_runs(r, |p, i, len, step| {
                    let dst = &mut dst[p..p + len];
                    if step == 1 {
                        copy_run(dst, &img[i..i + len]);
                    } else {
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = MaybeUninit::new(img[i + j * step]);
                        }
                    }
                });
            }
        });
        // SAFETY: every element was written above (a run's or, with padding, a zero).
        unsafe { out.set_len(len) };
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
        let len = n * g.image();
        let mut out = Vec::<f32>::with_capacity(len);
        let shared = crate::par::SharedMut::new(out.spare_capacity_mut());
        let kk = g.k * g.k;
        let plane = g.h * g.w;
        // Adds row r's columns of image b into `img` (that image's channel planes from channel
        // `ch0` on). Every pixel receives its rows in increasing r and position, whichever
        // way the work is split below, so the sums are the same bits.
        let add_row = |img: &mut [f32], ch0: usize, b: usize, r: usize| {
            let base = ch0 * plane;
            g.row_runs(r, |p, i, len, step| {
                let src = &cols[r * stride + b * pos + p..][..len];
                let i = i - base;
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
        };
        if g.c >= 8 {
            // Channel by channel (a channel's rows only touch its own plane): each task reads
            // its rows of the columns front to back.
            crate::par::for_each(g.c, |ch| {
                for b in 0..n {
                    // SAFETY: task ch is the only writer of channel ch's planes.
                    let img = unsafe { shared.slice(b * g.image() + ch * plane, plane) };
                    img.fill(MaybeUninit::new(0.));
                    // SAFETY: every element was just initialised.
                    let img = unsafe { &mut *(img as *mut [MaybeUninit<f32>] as *mut [f32]) };
                    for r in ch * kk..(ch + 1) * kk {
                        add_row(img, ch, b, r);
                    }
                }
            });
        } else {
            crate::par::for_each(n, |b| {
                // SAFETY: image b is the only writer of its own slice.
                let img = unsafe { shared.slice(b * g.image(), g.image()) };
                img.fill(MaybeUninit::new(0.));
                // SAFETY: every element was just initialised.
                let img = unsafe { &mut *(img as *mut [MaybeUninit<f32>] as *mut [f32]) };
                for r in 0..g.rows() {
                    add_row(img, 0, b, r);
                }
            });
        }
        // SAFETY: every image's slice was zeroed, then summed into, above.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, g.c, g.h, g.w))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// Copies one short run (an output row's worth, ~20 values) in 8-value blocks the compiler
/// keeps inline: `copy_from_slice` called `memcpy` once per run, a measurable share of im2col.
#[inline]
fn copy_run(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let block: [f32; 8] = s.try_into().expect("8 values");
        for (d, v) in d.iter_mut().zip(block) {
            *d = MaybeUninit::new(v);
        }
    }
    for (d, &v) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = MaybeUninit::new(v);
    }
}

/// The `[m, pos]` products `A · B_b` of `a` `[m, k]` (any 2-D strides) with each image's
/// block of columns of `b` `[k, N*pos]` (contiguous), over candle's CPU threads:
/// `body(b, product)` runs for image b, `product(dst, row_stride)` writing its product there.
/// Each is the single-threaded gemm call candle's own matmul makes, restricted to the block's
/// columns, so every value is the bits of `a.matmul(b)` (a product's column does not depend on
/// the other columns: `column_blocks_are_bitwise_the_full_product`).
fn per_image_products(
    (a, a_l): (&[f32], &Layout),
    (b, b_l): (&[f32], &Layout),
    pos: usize,
    body: impl Fn(usize, &dyn Fn(*mut f32, usize)) + Sync,
) -> Result<usize> {
    let (&[m, k], &[kb, cols]) = (a_l.dims(), b_l.dims()) else {
        candle_core::bail!("per-image product: {:?} x {:?} are not matrices", a_l, b_l)
    };
    let Some((b0, _)) = b_l.contiguous_offsets() else {
        candle_core::bail!("per-image product: the columns must be contiguous")
    };
    if kb != k || pos == 0 || !cols.is_multiple_of(pos) {
        candle_core::bail!("per-image product: [{m}, {k}] x [{kb}, {cols}] in blocks of {pos}");
    }
    let (a_rs, a_cs) = (a_l.stride()[0], a_l.stride()[1]);
    let (a, b) = (&a[a_l.start_offset()..], &b[b0..]);
    crate::par::for_each(cols / pos, |img| {
        // SAFETY: `body` hands each image's product its own m x pos block; the operands lie
        // within their slices by the shapes checked above.
        let product = |dst: *mut f32, dst_rs: usize| unsafe {
            gemm::gemm(
                m,
                pos,
                k,
                dst,
                1,
                dst_rs as isize,
                false,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr().add(img * pos),
                1,
                cols as isize,
                0f32,
                1f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        };
        body(img, &product);
    });
    Ok(cols / pos)
}

/// The storage of a CPU f32 tensor, for the fused ops' backward passes and forward.
fn f32_data<'a>(s: &'a CpuStorage, what: &str) -> Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("{what}: f32 tensors only"),
    }
}

/// As candle's autograd tells a matrix stored transposed (its matmul gradient takes that order).
fn is_transposed_contiguous(t: &Tensor) -> bool {
    t.rank() >= 2 && !t.is_contiguous() && t.t().is_ok_and(|tt| tt.is_contiguous())
}

/// The left operand's gradient of `a.matmul(b)` given the product's gradient `g`: `g · bᵀ`,
/// a kernel gradient whose inner dimension is the batch's N*P positions. gemm runs it as
/// `(b · gᵀ)ᵀ` when `a` has fewer rows than columns ([Cout, Cin*k*k]): with the long operand
/// on the left it packs ~1.5x faster (conv MNIST's second layer: 7.3 against 10.9 ms on one
/// core), and every element is the same chain of multiply-adds over the same k, so the same
/// bits as autograd's own `g · bᵀ` (`fused_products_are_bitwise_the_unfused_form`).
fn matmul_lhs_grad(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (rows, cols) = a.dims2()?;
    if rows < cols {
        b.matmul(&g.t()?)?.t()
    } else {
        g.matmul(&b.t()?)
    }
}

/// The right operand's gradient of `a.matmul(b)`, likewise.
fn matmul_rhs_grad(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<Tensor> {
    if is_transposed_contiguous(b) {
        g.t()?.matmul(a)?.t()
    } else {
        a.t()?.matmul(g)
    }
}

/// col2im(A · B) with B's columns grouped by image, one image at a time: the `[C*k*k, N*P]`
/// product is never stored whole (for conv2, 37 MB written by gemm and read back by col2im);
/// each image's `[C*k*k, P]` block is summed into its pixels while it is still in cache.
/// The same values as `a.matmul(b)?.apply_op1(Col2Im)` (each pixel's sum in the same order).
struct MatmulCol2Im(Geometry);

impl CustomOp2 for MatmulCol2Im {
    fn name(&self) -> &'static str {
        "gmvae-matmul-col2im"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        a_l: &Layout,
        b: &CpuStorage,
        b_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let pos = g.positions();
        if a_l.dims()[0] != g.rows() || b_l.dims().len() != 2 || pos == 0 {
            candle_core::bail!("matmul-col2im: {:?} x {:?} does not fit {g:?}", a_l, b_l);
        }
        let n = b_l.dims()[1] / pos;
        let len = n * g.image();
        let mut out = Vec::<f32>::with_capacity(len);
        let shared = crate::par::SharedMut::new(out.spare_capacity_mut());
        per_image_products(
            (f32_data(a, "matmul-col2im")?, a_l),
            (f32_data(b, "matmul-col2im")?, b_l),
            pos,
            |img, product| {
                let mut p = Vec::<f32>::with_capacity(g.rows() * pos);
                product(p.spare_capacity_mut().as_mut_ptr().cast(), pos);
                // SAFETY: gemm wrote all rows x pos values (read_dst = false, k > 0).
                unsafe { p.set_len(g.rows() * pos) };
                // SAFETY: image img is the only writer of its own slice.
                let px = unsafe { shared.slice(img * g.image(), g.image()) };
                px.fill(MaybeUninit::new(0.));
                // SAFETY: every element was just initialised.
                let px = unsafe { &mut *(px as *mut [MaybeUninit<f32>] as *mut [f32]) };
                for r in 0..g.rows() {
                    add_row(&g, px, &p[r * pos..][..pos], r);
                }
            },
        )?;
        // SAFETY: every image's slice was zeroed, then summed into, above.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, g.c, g.h, g.w))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // As autograd through col2im (whose adjoint is im2col) and the matmul.
        let g = grad.contiguous()?.apply_op1_no_bwd(&Im2Col(self.0))?;
        Ok((
            Some(matmul_lhs_grad(a, b, &g)?),
            Some(matmul_rhs_grad(a, b, &g)?),
        ))
    }
}

/// The matmul of conv2d, `K_mat · cols`, written straight into the `[N, Cout, oh, ow]` layout
/// (no transposing copy), with a backward pass that sums the input gradient `col2im(K_matᵀ ·
/// G)` image by image (`MatmulCol2Im`) instead of storing the `[Cin*k*k, N*oh*ow]` product.
/// Arguments: K_mat `[Cout, Cin*k*k]`, cols = im2col(x) (no gradient of its own), and x, which
/// receives the input gradient. Values and gradients are the bits of the unfused form
/// `K_mat.matmul(im2col(x))`, reshaped and transposed (tested).
struct Conv2dProduct(Geometry);

impl CustomOp3 for Conv2dProduct {
    fn name(&self) -> &'static str {
        "gmvae-conv2d-product"
    }

    fn cpu_fwd(
        &self,
        kmat: &CpuStorage,
        kmat_l: &Layout,
        cols: &CpuStorage,
        cols_l: &Layout,
        _x: &CpuStorage,
        _x_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (pos, cout) = (g.positions(), kmat_l.dims()[0]);
        let n = cols_l.dims()[1] / pos.max(1);
        let len = n * cout * pos;
        let mut out = Vec::<f32>::with_capacity(len);
        let dst = out.spare_capacity_mut().as_mut_ptr() as usize;
        per_image_products(
            (f32_data(kmat, "conv2d")?, kmat_l),
            (f32_data(cols, "conv2d")?, cols_l),
            pos,
            // Image b's [Cout, P] block of the [N, Cout, P] output.
            |img, product| product((dst as *mut f32).wrapping_add(img * cout * pos), pos),
        )?;
        // SAFETY: gemm wrote every image's block (read_dst = false, k > 0 by the geometry).
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), Shape::from((n, cout, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        kmat: &Tensor,
        cols: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, cout, oh, ow) = grad.dims4()?;
        // The product's gradient [Cout, N*P], as autograd made it through the transpose.
        let gy = grad
            .transpose(0, 1)?
            .contiguous()?
            .reshape((cout, n * oh * ow))?;
        let gk = matmul_lhs_grad(kmat, cols, &gy)?;
        let gx = if x.track_op() {
            Some(kmat.t()?.apply_op2_no_bwd(&gy, &MatmulCol2Im(self.0))?)
        } else {
            None
        };
        Ok((Some(gk), None, gx))
    }
}

/// Adds row r of one image's columns (`src`, its `pos` values) into the image's pixels `px`.
#[inline]
fn add_row(g: &Geometry, px: &mut [f32], src: &[f32], r: usize) {
    g.row_runs(r, |p, i, len, step| {
        let src = &src[p..p + len];
        if step == 1 {
            for (d, s) in px[i..i + len].iter_mut().zip(src) {
                *d += s;
            }
        } else {
            for (j, s) in src.iter().enumerate() {
                px[i + j * step] += s;
            }
        }
    });
}

/// conv2d of `x` `[N, Cin, H, W]` with `kernel` `[Cout, Cin, k, k]` (no bias).
pub fn conv2d(x: &Tensor, kernel: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.conv2d(kernel, padding, stride, 1, 1);
    }
    let (n, cin, h, w) = x.dims4()?;
    let (cout, _, k, _) = kernel.dims4()?;
    let g = Geometry::new(cin, h, w, k, stride, padding)?;
    let x = x.contiguous()?;
    let kmat = kernel.reshape((cout, g.rows()))?;
    if g.positions() < FUSED_MIN_POSITIONS {
        let cols = x.apply_op1(Im2Col(g))?;
        let y = kmat.matmul(&cols)?; // [Cout, N*oh*ow]
        return y
            .reshape((cout, n, g.oh, g.ow))?
            .transpose(0, 1)?
            .contiguous();
    }
    // cols needs no gradient of its own: Conv2dProduct's backward gives x its gradient.
    let cols = x.apply_op1_no_bwd(&Im2Col(g))?;
    kmat.apply_op3(&cols, &x, Conv2dProduct(g))
}

/// Below this many output positions per image the fused per-image products would be thin
/// (a 1x1 output makes each a matrix-vector product that repacks the whole kernel), and the
/// batched product stays: those layers' columns are small anyway.
const FUSED_MIN_POSITIONS: usize = 64;

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
    if g.positions() < FUSED_MIN_POSITIONS {
        return kmat_t.matmul(&x2)?.apply_op1(Col2Im(g));
    }
    kmat_t.apply_op2(&x2, MatmulCol2Im(g))
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

    /// The unfused forms the fused ops replace: the batched product, then the transpose
    /// (conv2d) or col2im (conv_transpose2d), every gradient by candle's autograd.
    fn unfused(x: &Tensor, kern: &Tensor, s: usize, p: usize, transposed: bool) -> Tensor {
        let (n, cin, h, w) = x.dims4().unwrap();
        if transposed {
            let (_, cout, k, _) = kern.dims4().unwrap();
            let (oh, ow) = ((h - 1) * s + k, (w - 1) * s + k);
            let g = Geometry::new(cout, oh - 2 * p, ow - 2 * p, k, s, p).unwrap();
            let kmat_t = kern.reshape((cin, g.rows())).unwrap().t().unwrap();
            let x2 = x.transpose(0, 1).unwrap().contiguous().unwrap();
            let x2 = x2.reshape((cin, n * h * w)).unwrap();
            kmat_t.matmul(&x2).unwrap().apply_op1(Col2Im(g)).unwrap()
        } else {
            let (cout, _, k, _) = kern.dims4().unwrap();
            let g = Geometry::new(cin, h, w, k, s, p).unwrap();
            let cols = x.contiguous().unwrap().apply_op1(Im2Col(g)).unwrap();
            let y = kern
                .reshape((cout, g.rows()))
                .unwrap()
                .matmul(&cols)
                .unwrap();
            y.reshape((cout, n, g.oh, g.ow))
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
        }
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn fused_products_are_bitwise_the_unfused_form() {
        // Shapes whose grids reach FUSED_MIN_POSITIONS, as conv MNIST's big layers.
        let cases = [
            (3, 4, 6, 1, 0, 14, false),
            (4, 5, 4, 2, 1, 18, false),
            (5, 3, 6, 1, 0, 9, true),
            (4, 2, 4, 2, 1, 9, true),
        ];
        for (i, &(cin, cout, k, s, p, size, transposed)) in cases.iter().enumerate() {
            let seed = 300 + i as u64;
            let kshape = if transposed {
                [cin, cout, k, k]
            } else {
                [cout, cin, k, k]
            };
            let x = Var::from_tensor(&rand(&[3, cin, size, size], seed)).unwrap();
            let kern = Var::from_tensor(&rand(&kshape, seed + 1)).unwrap();
            let run = |fused: bool| {
                let y = match (fused, transposed) {
                    (true, false) => conv2d(&x, &kern, s, p).unwrap(),
                    (true, true) => conv_transpose2d(&x, &kern, s, p).unwrap(),
                    (false, t) => unfused(&x, &kern, s, p, t),
                };
                let r = rand(y.dims(), seed + 2);
                let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
                let (gx, gk) = (g.get(&x).unwrap().clone(), g.get(&kern).unwrap().clone());
                (y, gx, gk)
            };
            let (y, gx, gk) = run(true);
            assert!(y.dims()[2] * y.dims()[3] >= FUSED_MIN_POSITIONS || transposed);
            let (uy, ugx, ugk) = run(false);
            assert_eq!(bits(&y), bits(&uy), "case {i}: y");
            assert_eq!(bits(&gx), bits(&ugx), "case {i}: dx");
            assert_eq!(bits(&gk), bits(&ugk), "case {i}: dK");
        }
    }

    #[test]
    fn column_blocks_are_bitwise_the_full_product() {
        // The premise of the per-image products: a product's column does not depend on which
        // other columns are computed with it (conv MNIST's shapes, a tenth of the batch).
        use rand::{Rng, SeedableRng};
        let mut r = rand::rngs::StdRng::seed_from_u64(3);
        for &(m, k, pos, n) in &[(576, 32, 324, 5), (32, 576, 324, 5), (512, 64, 81, 5)] {
            let a: Vec<f32> = (0..m * k).map(|_| r.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n * pos)
                .map(|_| r.random_range(-1.0..1.0))
                .collect();
            let a = Tensor::from_vec(a, (m, k), &Device::Cpu).unwrap();
            let b = Tensor::from_vec(b, (k, n * pos), &Device::Cpu).unwrap();
            let full = a.matmul(&b).unwrap();
            for j in 0..n {
                let part = a.matmul(&b.narrow(1, j * pos, pos).unwrap()).unwrap();
                let want = full.narrow(1, j * pos, pos).unwrap();
                assert_eq!(bits(&part), bits(&want), "[{m}, {k}] x block {j} of {pos}");
            }
        }
    }
}
