//! Sigmoid cross-entropy with logits summed over each row, `Σ_d max(l, 0) − x·l + ln(1 + e^{−|l|})`,
//! as one fused CPU op, with its gradient `(σ(l) − x)·g_n` in one pass. Written as tensor ops it
//! took ten elementwise passes forward and about twenty backward over the batch's 500 x 784
//! values; as a per-element op with libm's scalar `expf`/`logf`, followed by a row sum whose
//! gradient candle broadcasts and copies back, it was still a third of the Serket VAE's time.
//! The row sum is the only thing the VAE's loss needs, so the op returns it, and
//! [`gmvae_models::vmath`] makes the exponential and logarithm vectorisable.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};
use gmvae_models::multiversion;
use gmvae_models::par::{self, contiguous_f32, SharedMut};
use gmvae_models::vmath::{bce_logit, sigmoid};

/// Rows per task of the parallel loops (each row is one image: hundreds of values).
const ROWS: usize = 16;
/// Independent partial sums per row: lets the compiler vectorise the sum and fixes its order.
const LANES: usize = 8;

/// `Σ_d BCE(logits[.., d], x[.., d])` over the last dimension: shape `[..]` from `[.., D]`.
pub fn bce_with_logits_rows(logits: &Tensor, x: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() && logits.shape() == x.shape() && logits.rank() >= 1 {
        logits.contiguous()?.apply_op2(&x.contiguous()?, BceRows)
    } else {
        // The same formula as tensor ops (other devices; shape errors reported by candle).
        ((logits.relu()? - (x * logits)?)?
            + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?
        .sum(D::Minus1)
    }
}

/// Splits a `[.., D]` layout into (rows, D); D may be 0 (every row sums to 0).
fn rows_of(l: &Layout) -> (usize, usize) {
    let dims = l.dims();
    let (lead, d) = dims.split_at(dims.len().saturating_sub(1));
    (lead.iter().product(), d.first().copied().unwrap_or(1))
}

/// `f(first_row, out_rows)` over `rows` outputs of `per_row` values each, in parallel tasks.
fn map_rows(rows: usize, per_row: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; rows * per_row];
    let shared = SharedMut::new(&mut out);
    par::for_each_chunk(rows, ROWS, |r, len| {
        // SAFETY: this task is the only writer of rows r..r+len.
        f(r, unsafe { shared.slice(r * per_row, len * per_row) });
    });
    out
}

struct BceRows;

impl CustomOp2 for BceRows {
    fn name(&self) -> &'static str {
        "gmvae-bce-with-logits-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let l = contiguous_f32(s1, l1, "bce logits")?;
        let x = contiguous_f32(s2, l2, "bce targets")?;
        if l.len() != x.len() {
            candle_core::bail!("bce: {} logits, {} targets", l.len(), x.len());
        }
        let (rows, d) = rows_of(l1);
        let out = map_rows(rows, 1, |r0, out| {
            multiversion!({
                for (i, o) in out.iter_mut().enumerate() {
                    let a = (r0 + i) * d;
                    let (l, x) = (&l[a..a + d], &x[a..a + d]);
                    let mut acc = [0f32; LANES];
                    let (lc, xc) = (l.chunks_exact(LANES), x.chunks_exact(LANES));
                    let (lr, xr) = (lc.remainder(), xc.remainder());
                    for (lc, xc) in lc.zip(xc) {
                        for k in 0..LANES {
                            acc[k] += bce_logit(lc[k], xc[k]);
                        }
                    }
                    for (k, (&l, &x)) in lr.iter().zip(xr).enumerate() {
                        acc[k] += bce_logit(l, x);
                    }
                    *o = acc.iter().sum();
                }
            })
        });
        let dims = l1.dims();
        let shape = Shape::from(&dims[..dims.len() - 1]);
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_logits = logits.apply_op3(x, &grad.contiguous()?, BceRowsGrad)?;
        // The targets are data here; their gradient, −l·g, only if something tracks them.
        let d_x = if x.track_op() {
            Some(logits.neg()?.broadcast_mul(&grad.unsqueeze(D::Minus1)?)?)
        } else {
            None
        };
        Ok((Some(d_logits), d_x))
    }
}

/// `(σ(l) − x)·g_n`: the logits' gradient, fused, with `g` one value per row.
struct BceRowsGrad;

impl CustomOp3 for BceRowsGrad {
    fn name(&self) -> &'static str {
        "gmvae-bce-rows-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let l = contiguous_f32(s1, l1, "bce grad logits")?;
        let x = contiguous_f32(s2, l2, "bce grad targets")?;
        let g = contiguous_f32(s3, l3, "bce grad")?;
        let (rows, d) = rows_of(l1);
        if l.len() != x.len() || g.len() != rows {
            candle_core::bail!(
                "bce grad: {} / {} elements, {} row gradients",
                l.len(),
                x.len(),
                g.len()
            );
        }
        let out = map_rows(rows, d, |r0, out| {
            multiversion!({
                for (i, o) in out.chunks_exact_mut(d).enumerate() {
                    let (r, a) = (r0 + i, (r0 + i) * d);
                    let gr = g[r];
                    for ((o, &l), &x) in o.iter_mut().zip(&l[a..a + d]).zip(&x[a..a + d]) {
                        *o = (sigmoid(l) - x) * gr;
                    }
                }
            })
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    /// 50 rows of 797 values (not a multiple of the lanes): logits across the range where the
    /// stable form matters, targets in [0, 1].
    fn data() -> Result<(Tensor, Tensor)> {
        let n = 50 * 797;
        let l: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 30.0).collect();
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32 * 0.11).cos() + 1.0) / 2.0)
            .collect();
        Ok((
            Tensor::from_vec(l, (50, 797), &Device::Cpu)?,
            Tensor::from_vec(x, (50, 797), &Device::Cpu)?,
        ))
    }

    fn f64s(t: &Tensor) -> Result<Vec<f64>> {
        t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()
    }

    /// Largest |a − b| / max(|b|, floor).
    fn max_rel_diff(a: &[f64], b: &[f64], floor: f64) -> f64 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs() / b.abs().max(floor))
            .fold(0.0, f64::max)
    }

    #[test]
    fn row_sums_and_gradient_match_the_f64_formula() -> Result<()> {
        let (l, x) = data()?;
        let lv = Var::from_tensor(&l)?;
        let fused = bce_with_logits_rows(lv.as_tensor(), &x)?;
        assert_eq!(fused.dims(), &[50]);
        // The tensor formula in f64, summed per row.
        let (l64, x64) = (l.to_dtype(DType::F64)?, x.to_dtype(DType::F64)?);
        let soft = l64.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        let want = ((l64.relu()? - (&x64 * &l64)?)? + soft)?.sum(D::Minus1)?;
        let diff = max_rel_diff(&f64s(&fused)?, &f64s(&want)?, 1e-3);
        assert!(diff < 1e-6, "row sums differ by {diff} (relative)");
        // d/dl of Σ_n w_n·BCE_n is w_n·(σ(l) − x).
        let w = Tensor::arange(0f32, 50.0, &Device::Cpu)?.affine(0.1, 0.5)?;
        let g = (fused * &w)?.sum_all()?.backward()?;
        let sig = l64.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
        let want = (sig - x64)?.broadcast_mul(&w.to_dtype(DType::F64)?.unsqueeze(1)?)?;
        let got = g.get(lv.as_tensor()).expect("the logits have a gradient");
        let diff = max_rel_diff(&f64s(got)?, &f64s(&want)?, 1.0);
        assert!(diff < 1e-6, "gradient differs by {diff}");
        Ok(())
    }

    #[test]
    fn leading_dims_are_kept() -> Result<()> {
        let (l, x) = data()?;
        let r3 = bce_with_logits_rows(&l.reshape((5, 10, 797))?, &x.reshape((5, 10, 797))?)?;
        assert_eq!(r3.dims(), &[5, 10]);
        let r2 = bce_with_logits_rows(&l, &x)?;
        assert_eq!(f64s(&r3)?, f64s(&r2)?);
        // Rows of no values sum to 0.
        let empty = Tensor::zeros((3, 0), DType::F32, &Device::Cpu)?;
        assert_eq!(f64s(&bce_with_logits_rows(&empty, &empty)?)?, vec![0.0; 3]);
        Ok(())
    }

    #[test]
    fn gradient_matches_finite_differences() -> Result<()> {
        // f64 central differences of the fused forward (evaluated in f32 at well-chosen steps).
        let (l, x) = data()?;
        let (lf, xf) = (f64s(&l)?, f64s(&x)?);
        let lv = Var::from_tensor(&l)?;
        let g = bce_with_logits_rows(lv.as_tensor(), &x)?
            .sum_all()?
            .backward()?;
        let grad = f64s(g.get(lv.as_tensor()).expect("the logits have a gradient"))?;
        let f = |v: f64, t: f64| -> Result<f64> {
            let lt = Tensor::new(&[[v as f32]], &Device::Cpu)?;
            let tt = Tensor::new(&[[t as f32]], &Device::Cpu)?;
            Ok(f64s(&bce_with_logits_rows(&lt, &tt)?)?[0])
        };
        for i in [0usize, 7, 123, 4_567, 39_849] {
            let h = 1e-2;
            let fd = (f(lf[i] + h, xf[i])? - f(lf[i] - h, xf[i])?) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 2e-3,
                "element {i}: finite difference {fd}, gradient {}",
                grad[i]
            );
        }
        Ok(())
    }
}
