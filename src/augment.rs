//! Random affine transforms of image batches T(y) (rotation, shear, scale, shift), for the
//! augmentation consistency term (`--augment-weight`, [`crate::objective`]): a clustering that
//! is invariant to small pose changes should put y and T(y) in the same component (IMSAT and
//! IIC's self-augmentation, here on the GMVAE's cluster posterior).

use crate::rng::StdRng;
use rand::Rng;

/// The ranges each image's transform is drawn from, uniformly and independently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineRange {
    /// Rotation in degrees, in [-rotate, rotate].
    pub rotate: f32,
    /// Horizontal shear factor (slant), in [-shear, shear].
    pub shear: f32,
    /// Relative scale change, the factor in [1 - scale, 1 + scale].
    pub scale: f32,
    /// Shift in pixels along each axis, in [-shift, shift].
    pub shift: f32,
}

impl Default for AffineRange {
    /// Small pose changes that keep a digit's identity (a 6 turned by 15 degrees is still a 6;
    /// turned by 180 it would be a 9).
    fn default() -> Self {
        Self {
            rotate: 15.0,
            shear: 0.3,
            scale: 0.1,
            shift: 2.0,
        }
    }
}

/// T(y) as the objective takes it: the `n` host images `y` ([`transform_batch`] with the default
/// ranges) as an `[n, C*H*W]` tensor on `device`. From the host rows a step has just gathered,
/// so that it never reads its batch back from the device.
pub fn transformed_batch(
    y: &[f32],
    n: usize,
    shape: [usize; 3],
    rng: &mut StdRng,
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    let t = transform_batch(y, n, shape, &AffineRange::default(), rng);
    candle_core::Tensor::from_vec(t, (n, shape.iter().product::<usize>()), device)
}

/// The `n` images `y` (each `[c, h, w]`, row-major, concatenated), each through its own random
/// affine transform about the image centre, bilinear, reading zeros outside the image.
pub fn transform_batch(
    y: &[f32],
    n: usize,
    [c, h, w]: [usize; 3],
    range: &AffineRange,
    rng: &mut StdRng,
) -> Vec<f32> {
    let plane = h * w;
    debug_assert_eq!(y.len(), n * c * plane);
    let mut out = vec![0f32; y.len()];
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let mut u = |r: f32| rng.random_range(-1f32..=1f32) * r;
    for b in 0..n {
        let theta = u(range.rotate).to_radians();
        let shear = u(range.shear);
        let scale = 1.0 + u(range.scale);
        let (ty, tx) = (u(range.shift), u(range.shift));
        // Forward map of centred (x, y) coordinates: A = s * R(theta) * [[1, shear], [0, 1]];
        // each output pixel reads the input at A^-1 (p - t).
        let (sn, cs) = theta.sin_cos();
        let a = [
            [scale * cs, scale * (cs * shear - sn)],
            [scale * sn, scale * (sn * shear + cs)],
        ];
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        let inv = [
            [a[1][1] / det, -a[0][1] / det],
            [-a[1][0] / det, a[0][0] / det],
        ];
        for ch in 0..c {
            let src = &y[(b * c + ch) * plane..][..plane];
            let dst = &mut out[(b * c + ch) * plane..][..plane];
            for oy in 0..h {
                for ox in 0..w {
                    let (px, py) = (ox as f32 - cx - tx, oy as f32 - cy - ty);
                    let sx = inv[0][0] * px + inv[0][1] * py + cx;
                    let sy = inv[1][0] * px + inv[1][1] * py + cy;
                    dst[oy * w + ox] = bilinear(src, h, w, sy, sx);
                }
            }
        }
    }
    out
}

/// The plane `src` `[h, w]` at the real position (sy, sx), zero outside.
fn bilinear(src: &[f32], h: usize, w: usize, sy: f32, sx: f32) -> f32 {
    let (y0, x0) = (sy.floor(), sx.floor());
    let (fy, fx) = (sy - y0, sx - x0);
    let at = |yy: f32, xx: f32| -> f32 {
        if yy < 0.0 || xx < 0.0 || yy >= h as f32 || xx >= w as f32 {
            0.0
        } else {
            src[yy as usize * w + xx as usize]
        }
    };
    (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1.0))
        + fy * ((1.0 - fx) * at(y0 + 1.0, x0) + fx * at(y0 + 1.0, x0 + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> AffineRange {
        AffineRange {
            rotate: 0.0,
            shear: 0.0,
            scale: 0.0,
            shift: 0.0,
        }
    }

    #[test]
    fn the_identity_range_returns_the_images() {
        let y: Vec<f32> = (0..2 * 3 * 5 * 4).map(|i| (i % 7) as f32 / 7.0).collect();
        let out = transform_batch(&y, 2, [3, 5, 4], &none(), &mut crate::rng::rng(1, 12));
        assert_eq!(out, y);
    }

    #[test]
    fn a_shift_translates_a_ramp() {
        // Shifts up to one pixel, rotation, shear and scale off: bilinear interpolation of a
        // horizontal ramp is exact away from the border, so the shifted ramp still rises by one
        // per pixel and every inner row is the same.
        let (h, w) = (6, 6);
        let y: Vec<f32> = (0..h * w).map(|i| (i % w) as f32).collect();
        let range = AffineRange {
            shift: 1.0,
            ..none()
        };
        let out = transform_batch(&y, 1, [1, h, w], &range, &mut crate::rng::rng(3, 12));
        for oy in 1..h - 1 {
            for ox in 1..w - 2 {
                let d = out[oy * w + ox + 1] - out[oy * w + ox];
                assert!((d - 1.0).abs() < 1e-5, "({oy}, {ox}): step {d}");
            }
            assert_eq!(out[oy * w..][..w], out[w..][..w]);
        }
        assert!(out != y, "the drawn shift moved the ramp");
    }

    #[test]
    fn the_same_seed_draws_the_same_transforms() {
        let y: Vec<f32> = (0..4 * 28 * 28)
            .map(|i| ((i * 31) % 17) as f32 / 17.0)
            .collect();
        let r = AffineRange::default();
        let a = transform_batch(&y, 4, [1, 28, 28], &r, &mut crate::rng::rng(5, 12));
        let b = transform_batch(&y, 4, [1, 28, 28], &r, &mut crate::rng::rng(5, 12));
        let c = transform_batch(&y, 4, [1, 28, 28], &r, &mut crate::rng::rng(6, 12));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            a.iter().all(|v| (0.0..=1.0).contains(v)),
            "convex weights of [0, 1] values"
        );
    }
}
