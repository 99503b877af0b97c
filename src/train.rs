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
test_acc,test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds,clusters_used,mean_max_q";

/// File name of the per-epoch metrics inside a run directory.
pub const METRICS_FILE: &str = "metrics.csv";

/// Rows of the evaluation forward passes.
pub(crate) const EVAL_CHUNK: usize = 1000;

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
        let vars = sorted_vars(&varmap);
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

/// The variables of `varmap`, in name order (the order of checkpoints and initialisation).
pub(crate) fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let mut vars: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
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
        // Applies --train-size itself (before fitting the scaling).
        DataSet::Table => return data::table::load(opts).map(|(d, _)| d),
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
    /// How the evaluation split uses the K components.
    pub usage: crate::metrics::Usage,
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
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{},{},{},{:.3},{},{:.6}",
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
            self.seconds,
            self.usage.clusters_used,
            self.usage.mean_max_q
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
    for_each_chunk(model, split, dy, device, |start, post| {
        let rows = post.mean_x.dim(0)?;
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
        Ok(())
    })?;
    Ok(ev)
}

/// Runs the recognition nets (BatchNorm in eval mode) over `split` in chunks of EVAL_CHUNK rows,
/// in order, giving each chunk's first row index and posteriors to `f`.
pub(crate) fn for_each_chunk(
    model: &Model,
    split: &Split,
    dy: usize,
    device: &Device,
    mut f: impl FnMut(usize, gmvae_models::Posterior) -> Result<()>,
) -> Result<()> {
    for start in (0..split.n).step_by(EVAL_CHUNK) {
        let rows = EVAL_CHUNK.min(split.n - start);
        let y = Tensor::from_slice(
            &split.y[start * dy..(start + rows) * dy],
            (rows, dy),
            device,
        )?;
        f(start, model.net.recognition.forward_t(&y, false)?)?;
    }
    Ok(())
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
pub(crate) fn gather(
    split: &Split,
    idx: &[usize],
    dy: usize,
    binarize: Option<&mut rand::rngs::StdRng>,
    device: &Device,
) -> Result<Tensor> {
    let mut v = Vec::with_capacity(idx.len() * dy);
    for &i in idx {
        v.extend_from_slice(&split.y[i * dy..(i + 1) * dy]);
    }
    if let Some(rng) = binarize {
        binarize_in_place(&mut v, rng);
    }
    Ok(Tensor::from_vec(v, (idx.len(), dy), device)?)
}

/// Dynamic binarisation: each grey level p in [0, 1] becomes 1 with probability p, else 0.
pub fn binarize_in_place(y: &mut [f32], rng: &mut rand::rngs::StdRng) {
    use rand::Rng;
    for p in y {
        *p = if rng.random::<f32>() < *p { 1.0 } else { 0.0 };
    }
}

/// Steps between reads of the summed terms on the host: the progress bar's loss and the check
/// for a non-finite loss (a NaN is reported by the step count it was found at, at most this
/// many steps late, and always before the epoch's checkpoint).
pub(crate) const GUARD_EVERY: usize = 10;

/// Progress inside an epoch: a bar on a terminal, a few plain lines otherwise.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// What the epochs are of: "epoch" (training) or "pretraining".
    label: &'static str,
    steps: usize,
    epoch: usize,
    started: Instant,
    /// The loss per point at the latest read of the terms (every GUARD_EVERY steps): the
    /// display never reads the device itself.
    loss: f64,
}

impl Progress {
    fn new(epoch: usize, epochs: usize, steps: usize) -> Self {
        Self::new_labelled("epoch", epoch, epochs, steps)
    }

    pub(crate) fn new_labelled(
        label: &'static str,
        epoch: usize,
        epochs: usize,
        steps: usize,
    ) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(steps as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{label} {epoch}/{epochs}"));
            b
        });
        Self {
            bar,
            label,
            steps,
            epoch,
            started: Instant::now(),
            loss: f64::NAN,
        }
    }

    /// The loss per point read from the device after some step.
    pub(crate) fn loss(&mut self, per_point: f64) {
        self.loss = per_point;
        if let Some(b) = &self.bar {
            b.set_message(format!("loss {per_point:.3}"));
        }
    }

    /// Step `done` of the epoch, shown with the latest loss read.
    pub(crate) fn step(&self, done: usize) {
        match &self.bar {
            Some(b) => b.set_position(done as u64),
            // Long epochs print a line at each quarter when nobody watches a terminal.
            None if self.steps >= 200
                && done.is_multiple_of(self.steps / 4)
                && done < self.steps =>
            {
                eprintln!(
                    "{} {} {done}/{} steps, {:.1} s, loss {:.3}",
                    self.label,
                    self.epoch,
                    self.steps,
                    self.started.elapsed().as_secs_f64(),
                    self.loss
                )
            }
            None => {}
        }
    }

    pub(crate) fn finish(self) {
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

/// The conditional prior's gradient weight at 0-based global step `step` (KL warm-up): a linear
/// ramp from 1/`ramp` to 1 over `warmup_epochs` epochs of `steps` steps; 1 when off.
pub fn warmup_weight(warmup_epochs: f64, step: usize, steps: usize) -> f64 {
    let ramp = warmup_epochs * steps as f64;
    if ramp <= 0.0 {
        1.0
    } else {
        ((step + 1) as f64 / ramp).min(1.0)
    }
}

/// Written when a run has finished (all epochs, or stopped on a plateau): `{epochs, reason}`.
pub const DONE_FILE: &str = "done.json";

/// Why training ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    MaxEpochs,
    /// The lower bound improved by the relative `gain` < tolerance over `window` epochs.
    Plateau {
        window: usize,
        gain: f64,
    },
}

impl Stop {
    /// Whether training should stop after the epochs whose lower bounds are `lbs`.
    pub fn after(opts: &Options, lbs: &[f64]) -> Option<Self> {
        let w = opts.plateau_epochs;
        if lbs.len() >= opts.epoch {
            return Some(Stop::MaxEpochs);
        }
        if w == 0 || lbs.len() <= w {
            return None;
        }
        let (then, now) = (lbs[lbs.len() - 1 - w], lbs[lbs.len() - 1]);
        let gain = (now - then) / then.abs().max(f64::MIN_POSITIVE);
        (gain < opts.plateau_tol).then_some(Stop::Plateau { window: w, gain })
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Stop::MaxEpochs => "max_epochs",
            Stop::Plateau { .. } => "plateau",
        }
    }
}

/// The lower bound of a `metrics.csv` data row.
fn csv_lower_bound(row: &str) -> Option<f64> {
    row.split(',').nth(1)?.parse().ok()
}

/// The run directory for `opts`.
pub fn run_dir(opts: &Options) -> PathBuf {
    opts.out_dir.join(&opts.id)
}

/// A run being trained: everything the epochs share.
struct Run {
    /// The run's options (for a table, with the scaling and likelihood it settled).
    opts: Options,
    dir: PathBuf,
    device: Device,
    dataset: Dataset,
    model: Model,
    adam: Adam,
    /// Steps per epoch (a trailing batch of one point is dropped: BatchNorm cannot use it).
    steps: usize,
    /// The run directory's lock, held while the run lives.
    _lock: crate::run_lock::RunLock,
}

/// What one epoch of training produced.
struct EpochTraining {
    /// Terms per data point.
    terms: TermValues,
    /// q(z|y) of the epoch's training points as training saw them, with their labels (empty
    /// unless train accuracy is scored).
    q_train: Vec<f32>,
    labels_seen: Vec<usize>,
    seconds: f64,
}

impl Run {
    /// Builds the model and optimiser; on `resume`, restores the checkpoint. Returns the run,
    /// the first epoch to train and the `metrics.csv` rows kept so far.
    fn open(opts: &Options, resume: bool) -> Result<(Self, usize, Vec<String>)> {
        let dir = run_dir(opts);
        let lock = crate::run_lock::RunLock::acquire(&dir, !resume)?;
        let device = crate::device::select(opts.gpu, opts.gpu_id)?;
        // A table also settles its scaling and `auto` likelihood, recorded in opts.json.
        let (dataset, opts) = match opts.data_set {
            DataSet::Table => data::table::load(opts)?,
            _ => (load_dataset(opts)?, opts.clone()),
        };
        let opts = &opts;
        if opts.data_set == DataSet::Table {
            // The model-size bounds, now that the table's width is known.
            opts.validate()?;
        }
        let model = Model::new(opts, &dataset, &device)?;
        let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
        let metrics_path = dir.join(METRICS_FILE);
        let ckpt = dir.join(checkpoint::FILE);
        let (start, rows) = if resume {
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
        let mut opts = opts.clone();
        if let (false, Some(src)) = (resume, opts.init_from.as_ref().map(|i| i.run.clone())) {
            // A resumed run has restored its own checkpoint above instead.
            let epoch = init_from_run(&src, &opts, &model)?;
            println!(
                "starting from the weights of {} after its epoch {epoch}",
                src.display()
            );
            opts.init_from = Some(crate::options::InitFrom { run: src, epoch });
        }
        let opts = &opts;
        // On resume this records a raised --epoch for the next resume, and nothing else.
        crate::run_lock::record_options(&dir, opts, resume)?;
        let (n, b) = (dataset.train.n, opts.batch_size);
        let steps = if n % b == 1 { n / b } else { n.div_ceil(b) };
        if steps == 0 {
            bail!("the training set has {n} points, fewer than one batch of {b} (--batch-size)");
        }
        let run = Self {
            opts: opts.clone(),
            dir,
            device,
            dataset,
            model,
            adam,
            steps,
            _lock: lock,
        };
        run.print_header();
        if !resume && opts.pretrain_epochs > 0 {
            // A fresh run only: a resumed one restores the trained state from its checkpoint.
            crate::pretrain::pretrain(&run.model, opts, &run.dataset.train, &run.device)?.print();
        }
        Ok((run, start, rows))
    }

    fn print_header(&self) {
        let (opts, dataset) = (&self.opts, &self.dataset);
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
            self.device.location()
        );
        println!("parameters: {}", self.model.parameter_count());
        println!("run directory: {}", self.dir.display());
        if dataset.eval_split().labels.is_none() && opts.acc {
            println!(
                "note: {} has no labels; clustering accuracy is skipped",
                dataset.name
            );
        }
    }

    /// One pass over the shuffled training set: a step per batch.
    fn train_epoch(&mut self, epoch: usize) -> Result<EpochTraining> {
        let opts = &self.opts;
        let (m, n, b, dy) = (
            opts.n_mc,
            self.dataset.train.n,
            opts.batch_size,
            self.dataset.dy,
        );
        let steps = self.steps;
        let t0 = Instant::now();
        // Per-epoch streams: a resumed run draws exactly what an uninterrupted one would.
        let perm = rng::permutation(
            &mut rng::rng(opts.seed, stream::SHUFFLE + 16 * epoch as u64),
            n,
        );
        let mut noise = rng::rng(opts.seed, stream::NOISE + 16 * epoch as u64);
        let mut binarize = opts
            .binarize
            .then(|| rng::rng(opts.seed, stream::BINARIZE + 16 * epoch as u64));
        let mut cfg = opts.objective_config();
        let mut progress = Progress::new(epoch, opts.epoch, steps);
        // The terms are summed on the device and read only to report and to check for a
        // non-finite loss every GUARD_EVERY steps: no host synchronisation per step.
        let mut sum: Option<objective::TermSums> = None;
        // q(z|y) of the epoch's training points as training saw them (BN batch statistics,
        // weights changing), with their labels: upstream's train ACC.
        let train = &self.dataset.train;
        let train_labels = train
            .labels
            .as_ref()
            .filter(|_| opts.acc && self.dataset.test.is_some());
        let mut q_parts: Vec<Tensor> = Vec::new();
        let mut labels_seen: Vec<usize> = Vec::new();
        let mut points = 0;
        for (s, idx) in perm.chunks(b).take(steps).enumerate() {
            let y = gather(train, idx, dy, binarize.as_mut(), &self.device)?;
            cfg.cond_weight = warmup_weight(opts.warmup_epochs, (epoch - 1) * steps + s, steps);
            let (eps_x, eps_w) = objective::draw_noise(
                &mut noise,
                m,
                idx.len(),
                opts.x_size,
                opts.w_size,
                &self.device,
            )?;
            let out = objective::evaluate(&self.model.net, &cfg, &y, &eps_x, &eps_w, true)?;
            self.adam.step(&out.loss.backward()?)?;
            if let Some(l) = train_labels {
                q_parts.push(out.q_z.detach());
                labels_seen.extend(idx.iter().map(|&i| l[i]));
            }
            let sum = match &mut sum {
                Some(acc) => {
                    acc.add(&out.terms)?;
                    acc
                }
                None => sum.insert(out.terms),
            };
            points += idx.len();
            // One read serves the NaN guard and the progress display.
            if (s + 1).is_multiple_of(GUARD_EVERY) || s + 1 == steps {
                let loss = sum.read()?.loss;
                crate::guard::check_loss(loss, epoch, s + 1, opts.learning_rate)?;
                progress.loss(loss / points as f64);
            }
            progress.step(s + 1);
        }
        progress.finish();
        let sum = match sum {
            Some(acc) => acc.read()?,
            None => TermValues::default(),
        };
        let q_train = if q_parts.is_empty() {
            Vec::new()
        } else {
            Tensor::cat(&q_parts, 0)?.flatten_all()?.to_vec1::<f32>()?
        };
        // Before anything of this epoch is written: the last checkpoint stays good.
        crate::guard::check_state(
            &self.model.vars,
            &self.adam,
            epoch,
            steps,
            opts.learning_rate,
        )?;
        let seen = (steps * b).min(n) as f64;
        let per_point = |v: f64| v / seen;
        Ok(EpochTraining {
            terms: TermValues {
                rec: per_point(sum.rec),
                cond_prior: per_point(sum.cond_prior),
                w_prior: per_point(sum.w_prior),
                z_prior: per_point(sum.z_prior),
                cv: per_point(sum.cv),
                loss: per_point(sum.loss),
            },
            q_train,
            labels_seen,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Scores the epoch: the evaluation split in BatchNorm eval mode, and upstream's train ACC.
    fn score(&self, epoch: usize, tr: &EpochTraining) -> Result<(EpochRecord, Evaluation)> {
        let (opts, dataset, k) = (&self.opts, &self.dataset, self.opts.k);
        let eval_split = dataset.eval_split();
        let ev = evaluate_split(
            &self.model,
            opts,
            eval_split,
            dataset.dy,
            opts.dump_size,
            &self.device,
        )?;
        let test = match (&eval_split.labels, opts.acc) {
            (Some(l), true) => Some(ClusterScores::from_q(&ev.q_z, k, l)?),
            _ => None,
        };
        let train_acc = match (&dataset.test, &dataset.train.labels, opts.acc) {
            (None, _, _) => test.map(|s| s.aae),
            // Upstream's train ACC (main.lua:365-396): the posteriors collected during the
            // epoch, not a second pass over the training set.
            (Some(_), Some(_), true) => Some(crate::metrics::aae_accuracy(
                &tr.q_train,
                k,
                &tr.labels_seen,
            )?),
            _ => None,
        };
        let record = EpochRecord {
            epoch,
            terms: tr.terms,
            train_acc,
            test,
            seconds: tr.seconds,
            usage: crate::metrics::Usage::from_q(&ev.q_z, k)?,
        };
        Ok((record, ev))
    }

    /// `metrics.csv`, the latent dump, the checkpoint and (every `--visual-gen` epochs) the
    /// samples grid, each written atomically.
    fn write_outputs(&self, record: &EpochRecord, ev: Evaluation, rows: &[String]) -> Result<()> {
        let (opts, dataset, dir, k) = (&self.opts, &self.dataset, &self.dir, self.opts.k);
        let (epoch, dy) = (record.epoch, dataset.dy);
        atomic::write_str(
            &dir.join(METRICS_FILE),
            &format!("{METRICS_HEADER}\n{}\n", rows.join("\n")),
        )?;
        let eval_split = dataset.eval_split();
        let (pm, pv) = prior_at_zero(&self.model, opts, &self.device)?;
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
        checkpoint::save(
            &dir.join(checkpoint::FILE),
            &self.model.vars,
            &self.adam,
            epoch,
        )?;
        if let (Some(shape), true) = (
            dataset.image_shape,
            opts.visual_gen > 0 && epoch.is_multiple_of(opts.visual_gen),
        ) {
            // Upstream visualGen: K rows of 10 decoded samples of each component at w = 0.
            let mut r = rng::rng(opts.seed, stream::VISUAL + 16 * epoch as u64);
            let images = component_samples(&self.model, opts, 10, &mut r, &self.device)?;
            crate::visual::write_samples_grid(&dir.join("samples.png"), &images, k, 10, shape)?;
        }
        Ok(())
    }

    /// Writes the weights-only model and `config.json` that `gmvae predict` loads, and marks
    /// the run finished (`done.json`) and says why, when it is.
    fn finish(&self, stop: Option<Stop>, epochs_done: usize) -> Result<()> {
        let config = model_config(&self.opts, &self.dataset)?;
        crate::export::write(
            &self.dir,
            &self.opts,
            &config,
            &self.model.vars,
            epochs_done,
        )?;
        let done = stop.unwrap_or(Stop::MaxEpochs);
        if epochs_done < self.opts.epoch && done == Stop::MaxEpochs {
            return Ok(());
        }
        if let Stop::Plateau { window, gain } = done {
            println!(
                "stopping after epoch {epochs_done}: the lower bound improved by {:.4}% over the last {window} epochs (--plateau-tol {})",
                100.0 * gain,
                self.opts.plateau_tol
            );
        }
        atomic::write_str(
            &self.dir.join(DONE_FILE),
            &serde_json::to_string_pretty(&serde_json::json!({
                "epochs": epochs_done,
                "reason": done.reason(),
            }))?,
        )
    }
}

impl EpochRecord {
    /// The epoch's line on stdout.
    fn print(&self, epochs: usize, k: usize) {
        let acc =
            |name: &str, v: Option<f64>| v.map(|v| format!(" {name} {v:.4}")).unwrap_or_default();
        let (t, test) = (&self.terms, self.test);
        println!(
            "epoch {}/{epochs} lower bound {:.4} (rec {:.4} cond {:.4} w {:.4} z {:.4}) cv {:.4}{}{}{}{} clusters {}/{k} max_q {:.3} {:.1}s",
            self.epoch,
            self.lower_bound(),
            t.rec,
            t.cond_prior,
            t.w_prior,
            t.z_prior,
            t.cv,
            acc("train_acc", self.train_acc),
            acc("test_acc", test.map(|s| s.aae)),
            acc("hungarian", test.map(|s| s.hungarian)),
            acc("nmi", test.map(|s| s.nmi)),
            self.usage.clusters_used,
            self.usage.mean_max_q,
            self.seconds
        );
    }
}

/// Reads the weights of run `src` into `model` (`--init-from`) once its networks are known to
/// be the ones `opts` builds; returns the epoch of the checkpoint read.
fn init_from_run(src: &Path, opts: &Options, model: &Model) -> Result<usize> {
    let flag = || format!("--init-from {}", src.display());
    let source = Options::load(src).with_context(flag)?;
    let differ = opts.network_differences(&source);
    if !differ.is_empty() {
        bail!(
            "{}: that run's networks are not this run's ({}); give the same settings",
            flag(),
            differ.join("; ")
        );
    }
    let ckpt = src.join(checkpoint::FILE);
    if !ckpt.exists() {
        bail!(
            "{}: no {} there yet (the run has not finished its first epoch)",
            flag(),
            checkpoint::FILE
        );
    }
    checkpoint::load_weights(&ckpt, &model.vars).with_context(flag)
}

/// Trains from scratch (`resume == false`) or continues the checkpoint in `run_dir(opts)`:
/// each epoch trains, scores, writes its outputs, and checks the stopping rules.
pub fn train(opts: &Options, resume: bool) -> Result<Summary> {
    opts.validate()?;
    let (mut run, start, mut rows) = Run::open(opts, resume)?;
    let opts = &run.opts.clone();
    let mut lower_bounds: Vec<f64> = rows.iter().filter_map(|r| csv_lower_bound(r)).collect();
    let mut stop = Stop::after(opts, &lower_bounds);
    if stop.is_none() {
        // More epochs to go (a fresh run, or a resume that raised --epoch): not finished.
        let done = run.dir.join(DONE_FILE);
        if done.exists() {
            std::fs::remove_file(&done)
                .with_context(|| format!("cannot remove {}", done.display()))?;
        }
    }
    let mut last = None;
    for epoch in start..=opts.epoch {
        if stop.is_some() {
            break;
        }
        let trained = run.train_epoch(epoch)?;
        let (record, ev) = run.score(epoch, &trained)?;
        rows.push(record.csv_row());
        run.write_outputs(&record, ev, &rows)?;
        record.print(opts.epoch, opts.k);
        lower_bounds.push(record.lower_bound());
        last = Some(record);
        stop = Stop::after(opts, &lower_bounds);
    }
    run.finish(stop, lower_bounds.len())?;
    Ok(Summary {
        parameters: run.model.parameter_count(),
        run_dir: run.dir,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarize_draws_bernoulli_of_the_grey_level() {
        let grey: Vec<f32> = (0..20_000).map(|i| [0.0, 0.25, 0.9, 1.0][i % 4]).collect();
        let draw = |seed| {
            let mut y = grey.clone();
            binarize_in_place(&mut y, &mut crate::rng::rng(seed, 6));
            y
        };
        let y = draw(1);
        assert!(y.iter().all(|&v| v == 0.0 || v == 1.0));
        for (j, p) in [0.0, 0.25, 0.9, 1.0].into_iter().enumerate() {
            let mean = y.iter().skip(j).step_by(4).sum::<f32>() / 5000.0;
            assert!((mean - p).abs() < 0.02, "grey {p}: mean of draws {mean}");
        }
        assert_eq!(y, draw(1), "same seed, same draws");
        assert_ne!(y, draw(2));
    }

    #[test]
    fn plateau_rule_uses_the_relative_gain_over_the_window() {
        let mut o = Options::preset("spiral").unwrap();
        (o.epoch, o.plateau_epochs, o.plateau_tol) = (100, 2, 0.01);
        // -100 -> -99.5 over two epochs: 0.5% < 1%, stop.
        let s = Stop::after(&o, &[-100.0, -99.8, -99.5]);
        assert!(
            matches!(s, Some(Stop::Plateau { window: 2, gain }) if (gain - 0.005).abs() < 1e-9)
        );
        // -100 -> -98 is 2%: go on; too few epochs to judge: go on.
        assert_eq!(Stop::after(&o, &[-100.0, -99.0, -98.0]), None);
        assert_eq!(Stop::after(&o, &[-100.0, -100.0]), None);
        // Off, and the epoch limit.
        o.plateau_epochs = 0;
        assert_eq!(Stop::after(&o, &[-1.0, -1.0, -1.0]), None);
        o.epoch = 3;
        assert_eq!(Stop::after(&o, &[-1.0, -1.0, -1.0]), Some(Stop::MaxEpochs));
        assert_eq!(warmup_weight(0.0, 5, 10), 1.0);
        assert!((warmup_weight(2.0, 4, 10) - 0.25).abs() < 1e-12);
        assert_eq!(warmup_weight(2.0, 40, 10), 1.0);
    }
}
