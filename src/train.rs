//! Training: the epoch loop, per-epoch evaluation in BatchNorm eval mode, `metrics.csv`, latent
//! dumps, checkpoints and resumption.

use crate::data::{self, Dataset, Split};
use crate::dump::LatentDump;
use crate::metrics::ClusterScores;
use crate::objective::{self, ObjectiveKind, TermValues};
use crate::optim::Adam;
use crate::options::{DataSet, NetworkKind, Options};
use crate::rng::{self, stream, StdRng};
use crate::{atomic, checkpoint};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use gmvae_models::{Gmvae, GmvaeConfig, Likelihood, Network};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Header of `metrics.csv`. Scores are empty when the data set has no labels.
pub const METRICS_HEADER: &str = "epoch,lower_bound,rec,cond_prior,w_prior,z_prior,cv,train_acc,\
test_acc,test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds";

/// Rows of the evaluation forward passes.
const EVAL_CHUNK: usize = 1000;

/// A model ready to train: its variables in name order and the networks.
pub struct Model {
    pub net: Gmvae,
    pub vars: Vec<(String, Var)>,
    pub varmap: VarMap,
}

impl Model {
    /// Builds the model for `opts` on `device`, initialised from `seed` as torch7 would.
    pub fn new(opts: &Options, dataset: &Dataset, device: &Device) -> Result<Self> {
        let config = model_config(opts, dataset)?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = Gmvae::new(config, vb)?;
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        gmvae_models::torch7_init(&vars, &mut rng::rng(opts.seed, stream::INIT))?;
        Ok(Self { net, vars, varmap })
    }

    /// Trainable parameters (BatchNorm counted as gamma + beta, as upstream).
    pub fn parameter_count(&self) -> usize {
        gmvae_models::count_trainable(self.vars.iter().map(|(n, v)| (n.as_str(), v.elem_count())))
    }

    /// The variables the optimiser updates.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(n, _)| gmvae_models::is_trainable(n))
            .cloned()
            .collect()
    }
}

/// The network sizes that `opts` asks for on `dataset`.
pub fn model_config(opts: &Options, dataset: &Dataset) -> Result<GmvaeConfig> {
    let network = match (opts.network, opts.data_set) {
        (NetworkKind::Fc, _) => Network::Fc,
        (NetworkKind::Conv, DataSet::Svhn) => Network::ConvSvhn,
        (NetworkKind::Conv, _) => Network::ConvMnist,
    };
    if network != Network::Fc && dataset.image_shape.is_none() {
        bail!("--network conv needs image data");
    }
    Ok(GmvaeConfig {
        network,
        dy: dataset.dy,
        image_shape: dataset.image_shape,
        dx: opts.x_size,
        dw: opts.w_size,
        k: opts.k,
        hidden: opts.hidden_size,
        filters: opts.n_filters,
        likelihood: if opts.continuous {
            Likelihood::Gaussian
        } else {
            Likelihood::Bernoulli
        },
        qz_head: opts.objective == ObjectiveKind::V1,
    })
}

/// Loads the data set `opts` names.
pub fn load_dataset(opts: &Options) -> Result<Dataset> {
    let mut dataset = match opts.data_set {
        DataSet::Spiral => match &opts.data {
            Some(path) => data::spiral::load_file(path),
            None => {
                data::spiral::generate(opts.spiral_points, &mut rng::rng(opts.seed, stream::DATA))
            }
        },
        // The Serket tutorials' 3000 images, to compare GMVAE with the modular baselines.
        DataSet::Mnist => match &opts.data {
            Some(zip) => serket_images(zip),
            None => data::mnist::load_dir(&opts.data_dir),
        },
        DataSet::Svhn => data::svhn::load_dir(&opts.data_dir, opts.svhn_extra),
    }?;
    if let Some(n) = opts.train_size {
        dataset.train = dataset.train.head(n, dataset.dy);
    }
    Ok(dataset)
}

/// The 3000 MNIST images of the Serket tutorials (`data.zip`), trained and scored on the same
/// set as Serket does.
fn serket_images(zip: &Path) -> Result<Dataset> {
    let (images, labels) = crate::serket::data::load_images(zip)?;
    if images.cols != 784 {
        bail!(
            "{}: images have {} columns, expected 784",
            zip.display(),
            images.cols
        );
    }
    Ok(Dataset {
        name: "serket-mnist".into(),
        dy: 784,
        image_shape: Some([1, 28, 28]),
        train: Split::new(images.to_f32(), Some(labels), 784)?,
        test: None,
    })
}

/// One epoch's record (a row of `metrics.csv`), all terms per data point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub terms: TermValues,
    pub train_acc: Option<f64>,
    pub test: Option<ClusterScores>,
    pub seconds: f64,
}

impl EpochRecord {
    pub fn lower_bound(&self) -> f64 {
        -self.terms.loss
    }

    fn csv_row(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
        let t = &self.terms;
        let s = self.test;
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{},{},{},{:.3}",
            self.epoch,
            self.lower_bound(),
            t.rec,
            t.cond_prior,
            t.w_prior,
            t.z_prior,
            t.cv,
            opt(self.train_acc),
            opt(s.map(|s| s.aae)),
            opt(s.map(|s| s.hungarian)),
            opt(s.map(|s| s.majority)),
            opt(s.map(|s| s.nmi)),
            opt(s.map(|s| s.ari)),
            self.seconds
        )
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub run_dir: PathBuf,
    pub parameters: usize,
    pub last: Option<EpochRecord>,
}

/// Everything the evaluation pass computes on one split, in split order.
struct Evaluation {
    q_z: Vec<f32>,
    x_mean: Vec<f32>,
    w_mean: Vec<f32>,
    recon: Vec<f32>,
    n_dumped: usize,
}

/// Cluster posteriors of a split in BatchNorm eval mode (v1: q(z|y); v2: p(z | mean x, mean w)),
/// plus latent means and reconstructions of its first `dump` rows.
fn evaluate_split(
    model: &Model,
    opts: &Options,
    split: &Split,
    dy: usize,
    dump: usize,
    device: &Device,
) -> Result<Evaluation> {
    let mut ev = Evaluation {
        q_z: Vec::new(),
        x_mean: Vec::new(),
        w_mean: Vec::new(),
        recon: Vec::new(),
        n_dumped: 0,
    };
    for start in (0..split.n).step_by(EVAL_CHUNK) {
        let rows = EVAL_CHUNK.min(split.n - start);
        let y = Tensor::from_slice(
            &split.y[start * dy..(start + rows) * dy],
            (rows, dy),
            device,
        )?;
        let post = model.net.recognition.forward_t(&y, false)?;
        let q = match opts.objective {
            ObjectiveKind::V1 => {
                candle_nn::ops::softmax(post.qz_logits.as_ref().context("q(z|y) head")?, D::Minus1)?
            }
            ObjectiveKind::V2 => {
                let prior = model.net.prior.forward(&post.mean_w)?;
                objective::log_p_z_given_xw(&post.mean_x, &prior)?.exp()?
            }
        };
        ev.q_z.extend(q.flatten_all()?.to_vec1::<f32>()?);
        let keep = dump.saturating_sub(start).min(rows);
        if keep > 0 {
            let mx = post.mean_x.narrow(0, 0, keep)?;
            ev.x_mean.extend(mx.flatten_all()?.to_vec1::<f32>()?);
            ev.w_mean.extend(
                post.mean_w
                    .narrow(0, 0, keep)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            ev.recon.extend(
                model
                    .net
                    .decode(&mx, false)?
                    .mean()?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            ev.n_dumped += keep;
        }
    }
    Ok(ev)
}

/// The prior components at w = 0: (means, variances), each `[K x Dx]`.
fn prior_at_zero(model: &Model, opts: &Options, device: &Device) -> Result<(Tensor, Tensor)> {
    let w0 = Tensor::zeros((1, opts.w_size), DType::F32, device)?;
    let p = model.net.prior.forward(&w0)?;
    Ok((p.mean.squeeze(0)?, p.logvar.squeeze(0)?.exp()?))
}

/// Decoded samples for the `samples.png` grid (upstream `visualGen`): K rows x `cols`, row k from
/// x ~ N(mu_k(0), sigma_k(0)). Returns `[K*cols, Dy]` means in [0, 1].
pub fn component_samples(
    model: &Model,
    opts: &Options,
    cols: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Vec<f32>> {
    let (mean, var) = prior_at_zero(model, opts, device)?;
    let (k, dx) = mean.dims2()?;
    let eps = rng::randn(rng, (k, cols, dx), device)?;
    let x = mean
        .unsqueeze(1)?
        .broadcast_add(&eps.broadcast_mul(&var.sqrt()?.unsqueeze(1)?)?)?;
    let y = model
        .net
        .decode(&x.reshape((k * cols, dx))?, false)?
        .mean()?;
    Ok(y.flatten_all()?.to_vec1::<f32>()?)
}

/// A batch of rows `idx` of `split` as a `[B, Dy]` tensor.
fn gather(split: &Split, idx: &[usize], dy: usize, device: &Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(idx.len() * dy);
    for &i in idx {
        v.extend_from_slice(&split.y[i * dy..(i + 1) * dy]);
    }
    Ok(Tensor::from_vec(v, (idx.len(), dy), device)?)
}

/// Progress inside an epoch: a bar on a terminal, a few plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    steps: usize,
    epoch: usize,
    started: Instant,
}

impl Progress {
    fn new(epoch: usize, epochs: usize, steps: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(steps as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{epoch}/{epochs}"));
            b
        });
        Self {
            bar,
            steps,
            epoch,
            started: Instant::now(),
        }
    }

    fn step(&self, done: usize, loss_per_point: f64) {
        match &self.bar {
            Some(b) => {
                b.set_position(done as u64);
                if done.is_multiple_of(10) {
                    b.set_message(format!("loss {loss_per_point:.3}"));
                }
            }
            // Long epochs print a line at each quarter when nobody watches a terminal.
            None if self.steps >= 200
                && done.is_multiple_of(self.steps / 4)
                && done < self.steps =>
            {
                eprintln!(
                    "epoch {} {done}/{} steps, {:.1} s, loss {loss_per_point:.3}",
                    self.epoch,
                    self.steps,
                    self.started.elapsed().as_secs_f64()
                )
            }
            None => {}
        }
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Keeps the header and the rows of epochs `<= epoch` of an existing `metrics.csv`.
fn metrics_up_to(path: &Path, epoch: usize) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|e| e.parse::<usize>().ok())
                .is_some_and(|e| e <= epoch)
        })
        .map(str::to_string)
        .collect())
}

/// The run directory for `opts`.
pub fn run_dir(opts: &Options) -> PathBuf {
    opts.out_dir.join(&opts.id)
}

/// Trains from scratch (`resume == false`) or continues the checkpoint in `run_dir(opts)`.
pub fn train(opts: &Options, resume: bool) -> Result<Summary> {
    opts.validate()?;
    let dir = run_dir(opts);
    let _lock = crate::run_lock::RunLock::acquire(&dir, !resume)?;
    let device = crate::device::select(opts.gpu, opts.gpu_id)?;
    let dataset = load_dataset(opts)?;
    let model = Model::new(opts, &dataset, &device)?;
    let parameters = model.parameter_count();
    let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
    let metrics_path = dir.join("metrics.csv");
    let ckpt = dir.join(checkpoint::FILE);
    let (start, mut rows) = if resume {
        crate::run_lock::check_has_checkpoint(&dir, &ckpt)?;
        let done = checkpoint::load(&ckpt, &model.vars, &mut adam)?;
        crate::run_lock::check_done(&ckpt, done, opts.epoch)?;
        let rows = if metrics_path.exists() {
            metrics_up_to(&metrics_path, done)?
        } else {
            Vec::new()
        };
        println!(
            "resuming {} after epoch {done} of {}",
            dir.display(),
            opts.epoch
        );
        (done + 1, rows)
    } else {
        if ckpt.exists() {
            bail!(
                "{} already holds a run; continue it with --resume {}, or choose another --id",
                dir.display(),
                dir.display()
            );
        }
        (1, Vec::new())
    };
    // On resume this records a raised --epoch for the next resume, and nothing else.
    crate::run_lock::record_options(&dir, opts, resume)?;
    let labelled = dataset.eval_split().labels.is_some();
    println!(
        "gmvae: preset {} on {} ({} train / {} test points, Dy={}), {} objective, K={}, M={}, device {:?}",
        opts.preset,
        dataset.name,
        dataset.train.n,
        dataset.eval_split().n,
        dataset.dy,
        match opts.objective { ObjectiveKind::V1 => "v1", ObjectiveKind::V2 => "v2" },
        opts.k,
        opts.n_mc,
        device.location()
    );
    println!("parameters: {parameters}");
    println!("run directory: {}", dir.display());
    if !labelled && opts.acc {
        println!(
            "note: {} has no labels; clustering accuracy is skipped",
            dataset.name
        );
    }
    let cfg = opts.objective_config();
    let (m, n, b, dy) = (opts.n_mc, dataset.train.n, opts.batch_size, dataset.dy);
    // A trailing batch of one point cannot be batch-normalised; drop it.
    let steps = if n % b == 1 { n / b } else { n.div_ceil(b) };
    if steps == 0 {
        bail!("the training set has {n} points, fewer than one batch of {b} (--batch-size)");
    }
    let mut last = None;
    for epoch in start..=opts.epoch {
        let t0 = Instant::now();
        // Per-epoch streams: a resumed run draws exactly what an uninterrupted one would.
        let perm = rng::permutation(
            &mut rng::rng(opts.seed, stream::SHUFFLE + 16 * epoch as u64),
            n,
        );
        let mut noise = rng::rng(opts.seed, stream::NOISE + 16 * epoch as u64);
        let progress = Progress::new(epoch, opts.epoch, steps);
        let mut sum = TermValues::default();
        for (s, idx) in perm.chunks(b).take(steps).enumerate() {
            let y = gather(&dataset.train, idx, dy, &device)?;
            let (eps_x, eps_w) =
                objective::draw_noise(&mut noise, m, idx.len(), opts.x_size, opts.w_size, &device)?;
            let out = objective::evaluate(&model.net, &cfg, &y, &eps_x, &eps_w, true)?;
            crate::guard::check_loss(out.values.loss, epoch, s + 1, opts.learning_rate)?;
            adam.step(&out.loss.backward()?)?;
            sum += out.values;
            progress.step(s + 1, sum.loss / ((s + 1) * b) as f64);
        }
        progress.finish();
        crate::guard::check_state(&model.vars, &adam, epoch, steps, opts.learning_rate)?;
        let seen = (steps * b).min(n) as f64;
        let per_point = |v: f64| v / seen;
        let terms = TermValues {
            rec: per_point(sum.rec),
            cond_prior: per_point(sum.cond_prior),
            w_prior: per_point(sum.w_prior),
            z_prior: per_point(sum.z_prior),
            cv: per_point(sum.cv),
            loss: per_point(sum.loss),
        };
        let train_seconds = t0.elapsed().as_secs_f64();

        let eval_split = dataset.eval_split();
        let ev = evaluate_split(&model, opts, eval_split, dy, opts.dump_size, &device)?;
        let k = opts.k;
        let test = match (&eval_split.labels, opts.acc) {
            (Some(l), true) => Some(ClusterScores::from_q(&ev.q_z, k, l)?),
            _ => None,
        };
        let train_acc = match (&dataset.test, &dataset.train.labels, opts.acc) {
            (None, _, _) => test.map(|s| s.aae),
            (Some(_), Some(l), true) => {
                let tr = evaluate_split(&model, opts, &dataset.train, dy, 0, &device)?;
                Some(crate::metrics::aae_accuracy(&tr.q_z, k, l)?)
            }
            _ => None,
        };
        let record = EpochRecord {
            epoch,
            terms,
            train_acc,
            test,
            seconds: train_seconds,
        };
        rows.push(record.csv_row());
        atomic::write_str(
            &metrics_path,
            &format!("{METRICS_HEADER}\n{}\n", rows.join("\n")),
        )?;

        let (pm, pv) = prior_at_zero(&model, opts, &device)?;
        let nd = ev.n_dumped;
        let cluster = crate::metrics::argmax_rows(&ev.q_z[..nd * k], k, nd)?;
        LatentDump {
            epoch,
            dataset: dataset.name.clone(),
            image_shape: dataset.image_shape,
            n: nd,
            dx: opts.x_size,
            dw: opts.w_size,
            dy,
            k,
            q_z: ev.q_z[..nd * k].to_vec(),
            cluster: cluster.iter().map(|&c| c as u32).collect(),
            label: eval_split
                .labels
                .as_ref()
                .map(|l| l[..nd].iter().map(|&v| v as u32).collect()),
            data: eval_split.y[..nd * dy].to_vec(),
            recon: ev.recon,
            x_mean: ev.x_mean,
            w_mean: ev.w_mean,
            prior_mean: pm.flatten_all()?.to_vec1()?,
            prior_var: pv.flatten_all()?.to_vec1()?,
        }
        .save(&dir.join(crate::dump::FILE))?;
        checkpoint::save(&ckpt, &model.vars, &adam, epoch)?;
        if let (Some(shape), true) = (
            dataset.image_shape,
            opts.visual_gen > 0 && epoch.is_multiple_of(opts.visual_gen),
        ) {
            // Upstream visualGen: K rows of 10 decoded samples of each component at w = 0.
            let mut r = rng::rng(opts.seed, stream::VISUAL + 16 * epoch as u64);
            let images = component_samples(&model, opts, 10, &mut r, &device)?;
            crate::visual::write_samples_grid(
                &dir.join("samples.png"),
                &images,
                opts.k,
                10,
                shape,
            )?;
        }

        let acc =
            |name: &str, v: Option<f64>| v.map(|v| format!(" {name} {v:.4}")).unwrap_or_default();
        println!(
            "epoch {epoch}/{} lower bound {:.4} (rec {:.4} cond {:.4} w {:.4} z {:.4}) cv {:.4}{}{}{}{} {:.1}s",
            opts.epoch,
            record.lower_bound(),
            terms.rec,
            terms.cond_prior,
            terms.w_prior,
            terms.z_prior,
            terms.cv,
            acc("train_acc", train_acc),
            acc("test_acc", test.map(|s| s.aae)),
            acc("hungarian", test.map(|s| s.hungarian)),
            acc("nmi", test.map(|s| s.nmi)),
            train_seconds
        );
        last = Some(record);
    }
    Ok(Summary {
        run_dir: dir,
        parameters,
        last,
    })
}
