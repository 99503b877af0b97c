//! The little linear algebra the latent plot needs: a 2-D PCA of the latent means (Dx > 2) and
//! 2-sigma ellipses of Gaussian components seen through the same projection.

use anyhow::{bail, Result};

/// A linear map from R^d to the plane: `p = axes * (x - center)`.
#[derive(Debug, Clone)]
pub struct Projection {
    pub center: Vec<f64>,
    /// Two rows of length d.
    pub axes: [Vec<f64>; 2],
    /// Share of the total variance along each axis (None when no PCA was done).
    pub explained: Option<[f64; 2]>,
}

impl Projection {
    /// Identity on the first two coordinates (d = 2), or x against 0 (d = 1).
    pub fn first_two(d: usize) -> Self {
        let unit = |i: usize| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect();
        Self {
            center: vec![0.0; d],
            axes: [unit(0), unit(1)],
            explained: None,
        }
    }

    /// Projection for `rows` (n x d, row-major): the raw coordinates when d <= 2, otherwise the
    /// top two principal components of the finite rows.
    pub fn fit(rows: &[f32], d: usize) -> Result<Self> {
        if d == 0 {
            bail!("cannot project 0-dimensional points");
        }
        if d <= 2 {
            return Ok(Self::first_two(d));
        }
        let finite: Vec<&[f32]> = rows
            .chunks_exact(d)
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .collect();
        if finite.len() < 2 {
            bail!(
                "need at least two finite points for a PCA, have {}",
                finite.len()
            );
        }
        let n = finite.len() as f64;
        let mut center = vec![0.0; d];
        for r in &finite {
            for (c, &v) in center.iter_mut().zip(r.iter()) {
                *c += v as f64 / n;
            }
        }
        let mut cov = vec![0.0; d * d];
        for r in &finite {
            for i in 0..d {
                let di = r[i] as f64 - center[i];
                for j in i..d {
                    cov[i * d + j] += di * (r[j] as f64 - center[j]) / n;
                }
            }
        }
        for i in 0..d {
            for j in 0..i {
                cov[i * d + j] = cov[j * d + i];
            }
        }
        let (vals, vecs) = symmetric_eigen(&cov, d);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
        let total: f64 = vals.iter().map(|v| v.max(0.0)).sum();
        let axis = |k: usize| -> Vec<f64> {
            let mut v: Vec<f64> = (0..d).map(|i| vecs[i * d + order[k]]).collect();
            // Eigenvectors have no sign; fix one so redraws in watch mode don't flip the picture.
            let big = v
                .iter()
                .copied()
                .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            v
        };
        let share = |k: usize| {
            if total > 0.0 {
                vals[order[k]].max(0.0) / total
            } else {
                0.0
            }
        };
        Ok(Self {
            center,
            axes: [axis(0), axis(1)],
            explained: Some([share(0), share(1)]),
        })
    }

    pub fn dim(&self) -> usize {
        self.center.len()
    }

    pub fn apply(&self, x: &[f32]) -> (f64, f64) {
        let dot = |a: &[f64]| -> f64 {
            a.iter()
                .zip(x)
                .zip(&self.center)
                .map(|((a, &x), c)| a * (x as f64 - c))
                .sum()
        };
        (dot(&self.axes[0]), dot(&self.axes[1]))
    }

    /// The projected covariance `A diag(var) A^T` of a diagonal Gaussian, as (s11, s12, s22).
    pub fn project_diag_cov(&self, var: &[f32]) -> (f64, f64, f64) {
        let [a, b] = &self.axes;
        let mut s = (0.0, 0.0, 0.0);
        for i in 0..self.dim() {
            let v = var[i] as f64;
            s.0 += a[i] * a[i] * v;
            s.1 += a[i] * b[i] * v;
            s.2 += b[i] * b[i] * v;
        }
        s
    }
}

/// Points on the `k_sigma` ellipse of a 2-D Gaussian with covariance (s11, s12, s22), as
/// upstream draws it: axes along the eigenvectors, semi-axes `k_sigma * sqrt(eigenvalue)`.
pub fn ellipse(
    center: (f64, f64),
    (s11, s12, s22): (f64, f64, f64),
    k_sigma: f64,
    n: usize,
) -> Vec<(f64, f64)> {
    let tr = s11 + s22;
    let disc = (((s11 - s22) / 2.0).powi(2) + s12 * s12).sqrt();
    let (l1, l2) = ((tr / 2.0 + disc).max(0.0), (tr / 2.0 - disc).max(0.0));
    let theta = 0.5 * (2.0 * s12).atan2(s11 - s22);
    let (ct, st) = (theta.cos(), theta.sin());
    let (a, b) = (k_sigma * l1.sqrt(), k_sigma * l2.sqrt());
    (0..=n)
        .map(|i| {
            let t = std::f64::consts::TAU * i as f64 / n as f64;
            let (u, v) = (a * t.cos(), b * t.sin());
            (center.0 + u * ct - v * st, center.1 + u * st + v * ct)
        })
        .collect()
}

/// Eigen-decomposition of a symmetric d x d matrix by cyclic Jacobi rotations (d is a latent
/// size, small). Returns eigenvalues and the eigenvectors as the columns of a row-major matrix.
pub fn symmetric_eigen(m: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum();
        let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let tau = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let t = if tau == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_recovers_known_eigenpairs() {
        // [[2,1],[1,2]] has eigenvalues 3 (along (1,1)) and 1.
        let (vals, vecs) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let k = if vals[0] > vals[1] { 0 } else { 1 };
        assert!((vals[k] - 3.0).abs() < 1e-10 && (vals[1 - k] - 1.0).abs() < 1e-10);
        assert!((vecs[k].abs() - vecs[2 + k].abs()).abs() < 1e-10);
    }

    #[test]
    fn pca_finds_the_long_axis_and_explains_it() {
        // Points along (1, 1, 0) with a little spread in z.
        let mut rows = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            rows.extend([t, t, 0.1 * (i % 3) as f32]);
        }
        let p = Projection::fit(&rows, 3).unwrap();
        let a = &p.axes[0];
        assert!(
            (a[0] - a[1]).abs() < 1e-3 && a[0] > 0.0 && a[2].abs() < 1e-3,
            "{a:?}"
        );
        assert!(p.explained.unwrap()[0] > 0.99);
        let (x, y) = p.apply(&[
            1.0 + p.center[0] as f32,
            1.0 + p.center[1] as f32,
            p.center[2] as f32,
        ]);
        assert!((x - 2f64.sqrt()).abs() < 1e-3 && y.abs() < 1e-2, "{x} {y}");
    }

    #[test]
    fn ellipse_has_two_sigma_semi_axes() {
        let pts = ellipse((1.0, -1.0), (4.0, 0.0, 1.0), 2.0, 4);
        // t = 0 along the long axis: 2 * sqrt(4) = 4; t = pi/2: 2 * sqrt(1) = 2.
        assert!((pts[0].0 - 5.0).abs() < 1e-9 && (pts[0].1 + 1.0).abs() < 1e-9);
        assert!((pts[1].0 - 1.0).abs() < 1e-9 && (pts[1].1 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn one_dimensional_latents_plot_against_zero() {
        let p = Projection::fit(&[1.0, 2.0, 3.0], 1).unwrap();
        assert_eq!(p.apply(&[2.5]), (2.5, 0.0));
        assert_eq!(p.project_diag_cov(&[4.0]), (4.0, 0.0, 0.0));
        assert!(Projection::fit(&[], 0).is_err());
    }

    #[test]
    fn projected_covariance_of_identity_projection_is_the_diagonal() {
        let p = Projection::first_two(2);
        assert_eq!(p.project_diag_cov(&[2.0, 3.0]), (2.0, 0.0, 3.0));
    }
}
