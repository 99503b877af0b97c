//! The latent dump `latent.safetensors` that training writes into its run directory after every
//! epoch and the plot binaries read (upstream's `save/*.t7` files, gmvae-upstream.md §6).
//!
//! All tensors are computed in BatchNorm eval mode on the evaluation set (spiral: all points;
//! images: the first `--dump-size` test images), in data-set order:
//!
//! | tensor | shape | dtype | meaning |
//! |---|---|---|---|
//! | `x_mean` | N x Dx | f32 | mean of q(x\|y) |
//! | `w_mean` | N x Dw | f32 | mean of q(w\|y) |
//! | `q_z` | N x K | f32 | cluster posterior (q(z\|y) for v1, p(z\|x,w) at the means for v2) |
//! | `cluster` | N | u32 | argmax of `q_z` |
//! | `label` | N | u32 | true label (absent when the data set has none) |
//! | `data` | N x Dy | f32 | the inputs y, flattened |
//! | `recon` | N x Dy | f32 | decoder mean of p(y\|x) at x = mean of q(x\|y) |
//! | `prior_mean` | K x Dx | f32 | mu_k(w = 0) of the prior net p(x\|w,z) |
//! | `prior_var` | K x Dx | f32 | exp(logvar_k(w = 0)) |
//!
//! Metadata (safetensors header strings): `epoch`, `dataset`, `image_shape` (`C,H,W`, or empty
//! for vector data such as the spiral).

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

/// File name of the dump inside a run directory.
pub const FILE: &str = "latent.safetensors";

/// The dump, as host vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentDump {
    pub epoch: usize,
    pub dataset: String,
    /// (C, H, W) for image data.
    pub image_shape: Option<[usize; 3]>,
    pub n: usize,
    pub dx: usize,
    pub dw: usize,
    pub dy: usize,
    pub k: usize,
    pub x_mean: Vec<f32>,
    pub w_mean: Vec<f32>,
    pub q_z: Vec<f32>,
    pub cluster: Vec<u32>,
    pub label: Option<Vec<u32>>,
    pub data: Vec<f32>,
    pub recon: Vec<f32>,
    pub prior_mean: Vec<f32>,
    pub prior_var: Vec<f32>,
}

impl LatentDump {
    /// Writes the dump atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let cpu = Device::Cpu;
        let f = |v: &[f32], r: usize, c: usize| Tensor::from_slice(v, (r, c), &cpu);
        let mut t: Vec<(String, Tensor)> = vec![
            ("x_mean".to_string(), f(&self.x_mean, self.n, self.dx)?),
            ("w_mean".to_string(), f(&self.w_mean, self.n, self.dw)?),
            ("q_z".to_string(), f(&self.q_z, self.n, self.k)?),
            (
                "cluster".to_string(),
                Tensor::from_slice(&self.cluster, self.n, &cpu)?,
            ),
            ("data".to_string(), f(&self.data, self.n, self.dy)?),
            ("recon".to_string(), f(&self.recon, self.n, self.dy)?),
            (
                "prior_mean".to_string(),
                f(&self.prior_mean, self.k, self.dx)?,
            ),
            (
                "prior_var".to_string(),
                f(&self.prior_var, self.k, self.dx)?,
            ),
        ];
        if let Some(l) = &self.label {
            t.push(("label".to_string(), Tensor::from_slice(l, self.n, &cpu)?));
        }
        let shape = self
            .image_shape
            .map(|[c, h, w]| format!("{c},{h},{w}"))
            .unwrap_or_default();
        let meta = std::collections::BTreeMap::from([
            ("epoch".to_string(), self.epoch.to_string()),
            ("dataset".to_string(), self.dataset.clone()),
            ("image_shape".to_string(), shape),
        ]);
        let bytes = crate::checkpoint::serialize(&t, meta)?;
        crate::atomic::write(path, &bytes)
    }

    /// Reads a dump, checking that every tensor is present and the shapes agree.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::limits::read_file(path).with_context(|| {
            format!(
                "cannot read the latent dump {} (has training finished an epoch?)",
                path.display()
            )
        })?;
        let ctx = || format!("{} is not a valid latent dump", path.display());
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).with_context(ctx)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let st = safetensors::SafeTensors::deserialize(&bytes).with_context(ctx)?;
        let get = |name: &str| -> Result<Tensor> {
            let view = st
                .tensor(name)
                .with_context(|| format!("{}: tensor `{name}` is missing", path.display()))?;
            Ok(candle_core::safetensors::Load::load(&view, &Device::Cpu)?)
        };
        let mat = |name: &str| -> Result<(Vec<f32>, usize, usize)> {
            let t = get(name)?;
            let (r, c) = t
                .dims2()
                .with_context(|| format!("{}: `{name}` should be a matrix", path.display()))?;
            Ok((t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?, r, c))
        };
        let vec_u32 = |name: &str| -> Result<Vec<u32>> {
            Ok(get(name)?.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?)
        };
        let (x_mean, n, dx) = mat("x_mean")?;
        let (w_mean, n_w, dw) = mat("w_mean")?;
        let (q_z, n_q, k) = mat("q_z")?;
        let (data, n_d, dy) = mat("data")?;
        let (recon, n_r, dy_r) = mat("recon")?;
        let (prior_mean, k_m, dx_m) = mat("prior_mean")?;
        let (prior_var, k_v, dx_v) = mat("prior_var")?;
        let cluster = vec_u32("cluster")?;
        let label = if st.names().contains(&"label") {
            Some(vec_u32("label")?)
        } else {
            None
        };
        let rows_ok = [n_w, n_q, n_d, n_r, cluster.len()].iter().all(|&r| r == n)
            && label.as_ref().is_none_or(|l| l.len() == n);
        if !rows_ok || dy_r != dy || k_m != k || k_v != k || dx_m != dx || dx_v != dx {
            bail!(
                "{}: tensors disagree in their number of points or dimensions",
                path.display()
            );
        }
        let image_shape = match meta.get("image_shape").map(String::as_str) {
            None | Some("") => None,
            Some(s) => {
                let v: Vec<usize> = s.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                let fits = |c: usize, h: usize, w: usize| {
                    c.checked_mul(h).and_then(|ch| ch.checked_mul(w)) == Some(dy)
                };
                match v[..] {
                    [c, h, w] if fits(c, h, w) => Some([c, h, w]),
                    _ => bail!("{}: bad image_shape `{s}` for {dy} values", path.display()),
                }
            }
        };
        Ok(Self {
            epoch: meta.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0),
            dataset: meta.get("dataset").cloned().unwrap_or_default(),
            image_shape,
            n,
            dx,
            dw,
            dy,
            k,
            x_mean,
            w_mean,
            q_z,
            cluster,
            label,
            data,
            recon,
            prior_mean,
            prior_var,
        })
    }
}
