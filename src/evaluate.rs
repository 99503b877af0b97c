//! The evaluation pass of an epoch: every row of the evaluation split through the recognition
//! nets in BatchNorm eval mode, giving the cluster posteriors (v1: q(z|y); v2: p(z | mean x,
//! mean w)) and, for the first rows, what the latent dump keeps.

use crate::data::Dataset;
use crate::dump::LatentDump;
use crate::model::{self, Model};
use crate::objective::ObjectiveKind;
use crate::options::Options;
use anyhow::Result;
use candle_core::Device;

/// Everything the evaluation pass computes on one split, in split order.
pub struct Evaluation {
    /// `[N x K]` cluster posteriors of every row.
    pub q_z: Vec<f32>,
    /// q(x|y) and q(w|y) means and reconstructions of the first `n_dumped` rows.
    pub x_mean: Vec<f32>,
    pub w_mean: Vec<f32>,
    pub recon: Vec<f32>,
    pub n_dumped: usize,
}

impl Evaluation {
    /// Runs the pass over the evaluation split of `dataset`, keeping the latents of its first
    /// `dump` rows.
    pub fn of(
        model: &Model,
        objective: ObjectiveKind,
        dataset: &Dataset,
        dump: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut ev = Self {
            q_z: Vec::new(),
            x_mean: Vec::new(),
            w_mean: Vec::new(),
            recon: Vec::new(),
            n_dumped: 0,
        };
        let y = &dataset.eval_split().y;
        model::for_each_chunk(&model.net, y, dataset.dy, device, |start, post| {
            let rows = post.mean_x.dim(0)?;
            let q = model::cluster_posterior(&model.net, objective, &post)?;
            ev.q_z.extend(q.flatten_all()?.to_vec1::<f32>()?);
            let keep = dump.saturating_sub(start).min(rows);
            if keep > 0 {
                let mx = post.mean_x.narrow(0, 0, keep)?;
                let mw = post.mean_w.narrow(0, 0, keep)?;
                let recon = model.net.decode(&mx, false)?.mean()?;
                ev.x_mean.extend(mx.flatten_all()?.to_vec1::<f32>()?);
                ev.w_mean.extend(mw.flatten_all()?.to_vec1::<f32>()?);
                ev.recon.extend(recon.flatten_all()?.to_vec1::<f32>()?);
                ev.n_dumped += keep;
            }
            Ok(())
        })?;
        Ok(ev)
    }

    /// The latent dump of epoch `epoch`: the dumped rows with their data, labels, posteriors,
    /// argmax clusters, latents and reconstructions, and the prior's components at w = 0.
    pub fn into_dump(
        self,
        epoch: usize,
        model: &Model,
        opts: &Options,
        dataset: &Dataset,
        device: &Device,
    ) -> Result<LatentDump> {
        let (k, dy, nd) = (opts.k, dataset.dy, self.n_dumped);
        let eval_split = dataset.eval_split();
        let (pm, pv) = model::prior_at_zero(model, opts, device)?;
        let cluster = crate::metrics::argmax_rows(&self.q_z[..nd * k], k, nd)?;
        Ok(LatentDump {
            epoch,
            dataset: dataset.name.clone(),
            image_shape: dataset.image_shape,
            n: nd,
            dx: opts.x_size,
            dw: opts.w_size,
            dy,
            k,
            q_z: self.q_z[..nd * k].to_vec(),
            cluster: cluster.iter().map(|&c| c as u32).collect(),
            label: eval_split
                .labels
                .as_ref()
                .map(|l| l[..nd].iter().map(|&v| v as u32).collect()),
            data: eval_split.y[..nd * dy].to_vec(),
            recon: self.recon,
            x_mean: self.x_mean,
            w_mean: self.w_mean,
            prior_mean: pm.flatten_all()?.to_vec1()?,
            prior_var: pv.flatten_all()?.to_vec1()?,
        })
    }
}
