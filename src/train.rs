//! Training: the epoch loop, per-epoch evaluation in BatchNorm eval mode, `metrics.csv`, latent
//! dumps, checkpoints and resumption. The model, the loop skeleton and the epoch records live
//! below this module (`model`, `epoch`, `record`); pretraining and export use those, not this.

use crate::data::Dataset;
use crate::epoch::{self, Watch};
use crate::evaluate::Evaluation;
use crate::hooks::{Hooks, Log};
use crate::metrics::ClusterScores;
use crate::model::{self, Model};
use crate::objective::{self, ObjectiveKind, TermValues};
use crate::optim::Adam;
use crate::options::{Options, Valid};
use crate::record::{csv_lower_bound, metrics_up_to};
use crate::rng::stream;
use crate::{atomic, checkpoint};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::record::{EpochRecord, Stop, DONE_FILE, METRICS_FILE, METRICS_HEADER};
pub use crate::run_data::{check_data, load_dataset};
use crate::run_data::{check_rows, load_data};

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub run_dir: PathBuf,
    pub parameters: usize,
    pub last: Option<EpochRecord>,
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

/// The run directory for `opts`.
pub fn run_dir(opts: &Options) -> PathBuf {
    opts.out_dir.join(&opts.id)
}

/// A run being trained: everything the epochs share.
struct Run<'a> {
    /// The run's options as recorded in opts.json (for a table, with the scaling and likelihood
    /// it settled; with `--init-from`, the source's epoch).
    opts: Options,
    dir: PathBuf,
    device: Device,
    dataset: Dataset,
    model: Model,
    adam: Adam,
    /// Steps per epoch (a trailing batch of one point is dropped: BatchNorm cannot use it).
    steps: usize,
    /// The run directory's lock, held while the run lives.
    lock: crate::run_lock::RunLock,
    /// The caller's rows, log and interrupt check.
    hooks: Hooks<'a>,
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

impl<'a> Run<'a> {
    /// Builds the model and optimiser; on `resume`, restores the checkpoint. Returns the run,
    /// the first epoch to train and the `metrics.csv` rows kept so far.
    fn open(given: &Options, resume: bool, hooks: Hooks<'a>) -> Result<(Self, usize, Vec<String>)> {
        let dir = run_dir(given);
        let device = crate::device::select(given.gpu, given.gpu_id)?;
        // The data are read and checked before the run directory is created or locked, so that
        // a bad file (or an abort while reading it) leaves nothing behind.
        let (dataset, fitted) = load_data(given, hooks)?;
        let mut opts = match fitted {
            Some(f) => given.with_fitted(f)?,
            None => given.clone(),
        };
        let steps = check_rows(&opts, &dataset)?;
        let mut lock = crate::run_lock::RunLock::acquire(&dir, !resume)?;
        let model = Model::new(&opts, &dataset.shape(), &device)?;
        let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
        let (start, rows) = Self::restore(&dir, &opts, &model, &mut adam, resume, hooks.log)?;
        if let (false, Some(src)) = (resume, opts.init_from.as_ref().map(|i| i.run.clone())) {
            // A resumed run has restored its own checkpoint above instead.
            let epoch = model::init_from_run(&src, &opts, &model)?;
            hooks.log.line(format!(
                "starting from the weights of {} after its epoch {epoch}",
                src.display()
            ));
            opts.init_from = Some(crate::options::InitFrom { run: src, epoch });
        }
        if resume {
            // Records a raised --epoch for the next resume, and nothing else.
            crate::options::record_options(&dir, &opts, resume)?;
            lock.started();
        }
        let mut run = Self {
            opts,
            dir,
            device,
            dataset,
            model,
            adam,
            steps,
            lock,
            hooks,
        };
        run.print_header();
        if !resume {
            // A fresh run only: a resumed one restores the trained state from its checkpoint.
            let o = &run.opts;
            if o.pretrain_epochs > 0 {
                let train = &run.dataset.train;
                crate::pretrain::pretrain(&run.model, o, train, &run.device, hooks)?
                    .print(hooks.log);
            }
            // Written once every check that can fail has passed: a fresh run that fails to
            // start leaves its directory as it was (or none, when it created it).
            crate::options::record_options(&run.dir, o, false)?;
            run.lock.started();
        }
        Ok((run, start, rows))
    }

    /// On `resume`, loads the checkpoint into `model` and `adam` and keeps the `metrics.csv`
    /// rows up to its epoch; a fresh run must not find one. Returns the first epoch to train and
    /// the rows kept.
    fn restore(
        dir: &Path,
        opts: &Options,
        model: &Model,
        adam: &mut Adam,
        resume: bool,
        log: Log,
    ) -> Result<(usize, Vec<String>)> {
        let metrics_path = dir.join(METRICS_FILE);
        let ckpt = dir.join(checkpoint::FILE);
        if !resume {
            if ckpt.exists() {
                bail!(
                    "{} already holds a run; continue it with --resume {}, or choose another --id",
                    dir.display(),
                    dir.display()
                );
            }
            return Ok((1, Vec::new()));
        }
        crate::run_lock::check_has_checkpoint(dir, &ckpt)?;
        let done = checkpoint::load(&ckpt, &model.vars, adam)?;
        crate::run_lock::check_done(&ckpt, done, opts.epoch)?;
        let rows = if metrics_path.exists() {
            metrics_up_to(&metrics_path, done)?
        } else {
            Vec::new()
        };
        log.line(format!(
            "resuming {} after epoch {done} of {}",
            dir.display(),
            opts.epoch
        ));
        Ok((done + 1, rows))
    }

    fn print_header(&self) {
        let (opts, dataset, log) = (&self.opts, &self.dataset, self.hooks.log);
        log.line(format!(
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
        ));
        log.line(format!("parameters: {}", self.model.parameter_count()));
        log.line(format!("run directory: {}", self.dir.display()));
        if dataset.eval_split().labels.is_none() && opts.acc {
            log.line(format!(
                "note: {} has no labels; clustering accuracy is skipped",
                dataset.name
            ));
        }
    }

    /// One pass over the shuffled training set: a step per batch.
    fn train_epoch(&mut self, epoch: usize) -> Result<EpochTraining> {
        let Self {
            opts,
            dataset,
            model,
            adam,
            device,
            steps,
            ..
        } = self;
        let (m, b, dy, steps) = (opts.n_mc, opts.batch_size, dataset.dy, *steps);
        let train = &dataset.train;
        let t0 = Instant::now();
        let order = epoch::order(opts.seed, stream::SHUFFLE, epoch, train.n);
        let mut noise = epoch::rng(opts.seed, stream::NOISE, epoch);
        let mut binarize = opts
            .binarize
            .then(|| epoch::rng(opts.seed, stream::BINARIZE, epoch));
        // T(y) for the augmentation consistency term: images only (checked with the options).
        let mut augment = dataset
            .image_shape
            .filter(|_| opts.augment_weight > 0.0)
            .map(|shape| (shape, epoch::rng(opts.seed, stream::AUGMENT, epoch)));
        let mut cfg = opts.objective_config();
        // The terms are summed on the device and read only to report and to check for a
        // non-finite loss every GUARD_EVERY steps: no host synchronisation per step.
        let mut sum: Option<objective::TermSums> = None;
        // q(z|y) of the epoch's training points as training saw them (BN batch statistics,
        // weights changing), with their labels: upstream's train ACC.
        let train_labels = train
            .labels
            .as_ref()
            .filter(|_| opts.acc && dataset.test.is_some());
        let mut q_parts: Vec<Tensor> = Vec::new();
        let mut labels_seen: Vec<usize> = Vec::new();
        let watch = Watch {
            label: "epoch",
            epochs: opts.epoch,
            learning_rate: opts.learning_rate,
            context: None,
            hooks: self.hooks,
        };
        epoch::run(&order, b, steps, epoch, Some(&watch), |s, idx, read| {
            let rows = epoch::gather_rows(train, idx, dy, binarize.as_mut());
            cfg.cond_weight = warmup_weight(opts.warmup_epochs, (epoch - 1) * steps + s, steps);
            let (eps_x, eps_w) =
                objective::draw_noise(&mut noise, m, idx.len(), opts.x_size, opts.w_size, device)?;
            let y_aug = augment
                .as_mut()
                .map(|(shape, rng)| {
                    crate::augment::transformed_batch(&rows, idx.len(), *shape, rng, device)
                })
                .transpose()?;
            let y = Tensor::from_vec(rows, (idx.len(), dy), device)?;
            let out =
                objective::evaluate(&model.net, &cfg, &y, y_aug.as_ref(), &eps_x, &eps_w, true)?;
            adam.step(&out.loss.backward()?)?;
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
            // One read serves the NaN guard and the progress display.
            Ok(if read { Some(sum.read()?.loss) } else { None })
        })?;
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
        crate::guard::check_state(&model.vars, adam, epoch, steps, opts.learning_rate)?;
        let seen = (steps * b).min(train.n) as f64;
        Ok(EpochTraining {
            terms: sum.per_point(seen),
            q_train,
            labels_seen,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
    /// Scores the epoch: the evaluation split in BatchNorm eval mode, and upstream's train ACC.
    fn score(&self, epoch: usize, tr: &EpochTraining) -> Result<(EpochRecord, Evaluation)> {
        let (opts, dataset, k) = (&self.opts, &self.dataset, self.opts.k);
        let eval_split = dataset.eval_split();
        let ev = Evaluation::of(
            &self.model,
            opts.objective,
            dataset,
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
        let epoch = record.epoch;
        atomic::write_str(
            &dir.join(METRICS_FILE),
            &format!("{METRICS_HEADER}\n{}\n", rows.join("\n")),
        )?;
        ev.into_dump(epoch, &self.model, opts, dataset, &self.device)?
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
            let mut r = epoch::rng(opts.seed, stream::VISUAL, epoch);
            let images = model::component_samples(&self.model, opts, 10, &mut r, &self.device)?;
            crate::visual::write_samples_grid(&dir.join("samples.png"), &images, k, 10, shape)?;
        }
        Ok(())
    }

    /// Writes the weights-only model and `config.json` that `gmvae predict` loads, and marks
    /// the run finished (`done.json`) and says why, when it is.
    fn finish(&self, stop: Option<Stop>, epochs_done: usize) -> Result<()> {
        let config = model::config(&self.opts, &self.dataset.shape())?;
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
            self.hooks.log.line(format!(
                "stopping after epoch {epochs_done}: the lower bound improved by {:.4}% over the last {window} epochs (--plateau-tol {})",
                100.0 * gain,
                self.opts.plateau_tol
            ));
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

/// Trains from scratch (`resume == false`) or continues the checkpoint in `run_dir(opts)`:
/// each epoch trains, scores, writes its outputs, and checks the stopping rules.
pub fn train(opts: &Valid, resume: bool) -> Result<Summary> {
    train_with(opts, resume, Hooks::default())
}

/// [`train`] with the caller's rows, log and interrupt check (the Python binding).
pub fn train_with(opts: &Valid, resume: bool, hooks: Hooks) -> Result<Summary> {
    let (mut run, start, mut rows) = Run::open(opts, resume, hooks)?;
    let (epochs, k) = (run.opts.epoch, run.opts.k);
    let mut lower_bounds: Vec<f64> = rows.iter().filter_map(|r| csv_lower_bound(r)).collect();
    let mut stop = Stop::after(&run.opts, &lower_bounds);
    if stop.is_none() {
        // More epochs to go (a fresh run, or a resume that raised --epoch): not finished.
        let done = run.dir.join(DONE_FILE);
        if done.exists() {
            std::fs::remove_file(&done)
                .with_context(|| format!("cannot remove {}", done.display()))?;
        }
    }
    let mut last = None;
    for epoch in start..=epochs {
        if stop.is_some() {
            break;
        }
        let trained = run.train_epoch(epoch)?;
        let (record, ev) = run.score(epoch, &trained)?;
        rows.push(record.csv_row());
        run.write_outputs(&record, ev, &rows)?;
        run.hooks.log.line(record.line(epochs, k));
        lower_bounds.push(record.lower_bound());
        last = Some(record);
        stop = Stop::after(&run.opts, &lower_bounds);
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
    fn warmup_ramps_the_conditional_prior_weight_to_one() {
        assert_eq!(warmup_weight(0.0, 5, 10), 1.0);
        assert!((warmup_weight(2.0, 4, 10) - 0.25).abs() < 1e-12);
        assert_eq!(warmup_weight(2.0, 40, 10), 1.0);
    }
}
