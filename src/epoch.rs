//! The training-loop skeleton that every trainer here shares: GMVAE training (`train`), the
//! autoencoder start of `--pretrain-epochs` (`pretrain`) and the Serket VAE (`serket::vae`).
//! One epoch is a pass of mini-batches over a shuffled order of the N training rows; this module
//! owns the rules the three loops must agree on: how many steps an epoch takes, which random
//! stream an epoch draws from, how a batch of rows becomes a tensor, and how often the summed
//! loss is read back for the NaN guard and the progress display.

use crate::data::Split;
use crate::hooks::Hooks;
use crate::rng::{self, StdRng};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use std::io::IsTerminal;
use std::time::Instant;

/// Steps between reads of the summed terms on the host: the progress bar's loss and the check
/// for a non-finite loss (a NaN is reported by the step count it was found at, at most this
/// many steps late, and always before the epoch's checkpoint).
pub const GUARD_EVERY: usize = 10;

/// What happens to a trailing batch shorter than the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// A trailing batch of one row is dropped: BatchNorm cannot use it (the GMVAE networks).
    DropSingle,
    /// Every row is used every epoch (networks without BatchNorm).
    Keep,
}

/// Steps of one epoch over `n` rows in batches of `batch`.
pub fn steps(n: usize, batch: usize, tail: Tail) -> usize {
    match tail {
        Tail::DropSingle if n % batch == 1 => n / batch,
        _ => n.div_ceil(batch),
    }
}

/// The generator of stream `stream` of `seed` for epoch (or pass) `epoch`: every epoch draws
/// from its own stream, so a resumed run draws exactly what an uninterrupted one would.
pub fn rng(seed: u64, stream: u64, epoch: usize) -> StdRng {
    rng::rng(seed, stream + 16 * epoch as u64)
}

/// The order in which an epoch visits the rows: a permutation of `0..n` from `epoch`'s stream.
pub fn order(seed: u64, stream: u64, epoch: usize, n: usize) -> Vec<usize> {
    rng::permutation(&mut rng(seed, stream, epoch), n)
}

/// A batch of rows `idx` of `split` as a `[B, Dy]` tensor, each grey level replaced by a
/// Bernoulli draw when `binarize` holds a generator (dynamic binarisation).
pub fn gather(
    split: &Split,
    idx: &[usize],
    dy: usize,
    binarize: Option<&mut StdRng>,
    device: &Device,
) -> Result<Tensor> {
    let v = gather_rows(split, idx, dy, binarize);
    Ok(Tensor::from_vec(v, (idx.len(), dy), device)?)
}

/// [`gather`]'s batch on the host, row after row (`B * Dy` values).
pub fn gather_rows(
    split: &Split,
    idx: &[usize],
    dy: usize,
    binarize: Option<&mut StdRng>,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(idx.len() * dy);
    for &i in idx {
        v.extend_from_slice(&split.y[i * dy..(i + 1) * dy]);
    }
    if let Some(rng) = binarize {
        binarize_in_place(&mut v, rng);
    }
    v
}

/// Dynamic binarisation: each grey level p in [0, 1] becomes 1 with probability p, else 0.
pub fn binarize_in_place(y: &mut [f32], rng: &mut StdRng) {
    use rand::Rng;
    for p in y {
        *p = if rng.random::<f32>() < *p { 1.0 } else { 0.0 };
    }
}

/// How an epoch is watched: a progress display, the NaN guard on the summed loss, and the
/// caller's interrupt check.
pub struct Watch<'a> {
    /// What the epochs are of: "epoch" (training) or "pretraining".
    pub label: &'static str,
    /// Epochs in all (for the display).
    pub epochs: usize,
    /// The learning rate, named in the guard's advice.
    pub learning_rate: f64,
    /// Prefixed to the guard's error (which phase of the run failed).
    pub context: Option<&'static str>,
    /// Where progress goes (none unless the log is stdout) and the interrupt check.
    pub hooks: Hooks<'a>,
}

/// Runs one epoch: `step(s, idx, read)` trains on the rows `idx` of batch `s` (the first
/// `steps` batches of `order`); when `read` is true it must return the summed loss of the
/// epoch's steps so far, read from the device. With a `watch`, that happens every GUARD_EVERY
/// steps and at the last one: a non-finite sum stops training with an error, and the display
/// shows the loss per point. Without one, `read` is never asked for. Returns the rows seen.
pub fn run(
    order: &[usize],
    batch: usize,
    steps: usize,
    epoch: usize,
    watch: Option<&Watch>,
    mut step: impl FnMut(usize, &[usize], bool) -> Result<Option<f64>>,
) -> Result<usize> {
    let mut progress = watch
        .filter(|w| w.hooks.log.progress())
        .map(|w| Progress::new(w.label, epoch, w.epochs, steps));
    let mut points = 0;
    for (s, idx) in order.chunks(batch).take(steps).enumerate() {
        if let Some(w) = watch {
            w.hooks.check_interrupt()?;
        }
        let read = watch.is_some() && ((s + 1).is_multiple_of(GUARD_EVERY) || s + 1 == steps);
        let loss = step(s, idx, read)?;
        points += idx.len();
        if let (Some(w), Some(loss)) = (watch, loss) {
            let checked = crate::guard::check_loss(loss, epoch, s + 1, w.learning_rate);
            match w.context {
                Some(c) => checked.context(c)?,
                None => checked?,
            }
            if let Some(p) = progress.as_mut() {
                p.loss(loss / points as f64);
            }
        }
        if let Some(p) = &progress {
            p.step(s + 1);
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    Ok(points)
}

/// Progress inside an epoch: a bar on a terminal, a few plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    steps: usize,
    epoch: usize,
    started: Instant,
    /// The loss per point at the latest read of the terms (every GUARD_EVERY steps): the
    /// display never reads the device itself.
    loss: f64,
}

impl Progress {
    fn new(label: &'static str, epoch: usize, epochs: usize, steps: usize) -> Self {
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
    fn loss(&mut self, per_point: f64) {
        self.loss = per_point;
        if let Some(b) = &self.bar {
            b.set_message(format!("loss {per_point:.3}"));
        }
    }

    /// Step `done` of the epoch, shown with the latest loss read.
    fn step(&self, done: usize) {
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

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
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
    fn steps_drop_only_a_lone_trailing_row_for_batchnorm() {
        assert_eq!(steps(101, 10, Tail::DropSingle), 10);
        assert_eq!(steps(102, 10, Tail::DropSingle), 11);
        assert_eq!(steps(100, 10, Tail::DropSingle), 10);
        assert_eq!(steps(101, 10, Tail::Keep), 11);
    }

    #[test]
    fn run_visits_the_first_steps_batches_and_reads_for_the_guard() {
        let order: Vec<usize> = (0..25).collect();
        let watch = Watch {
            label: "epoch",
            epochs: 1,
            learning_rate: 1e-3,
            context: Some("phase"),
            hooks: Hooks::default(),
        };
        let mut seen = Vec::new();
        let mut reads = Vec::new();
        let points = run(&order, 4, 6, 1, Some(&watch), |s, idx, read| {
            seen.extend_from_slice(idx);
            if read {
                reads.push(s);
            }
            Ok(read.then_some(1.0))
        })
        .unwrap();
        assert_eq!(points, 24);
        assert_eq!(seen, (0..24).collect::<Vec<_>>());
        assert_eq!(
            reads,
            vec![5],
            "only the last of 6 steps (< GUARD_EVERY) is read"
        );
        // A non-finite sum stops the epoch with the guard's message under the context.
        let e = run(&order, 4, 6, 3, Some(&watch), |_, _, read| {
            Ok(read.then_some(f64::NAN))
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("phase: the loss became NaN in epoch 3"),
            "{msg}"
        );
        // Unwatched: never asked to read.
        run(&order, 4, 7, 1, None, |_, _, read| {
            assert!(!read);
            Ok(None)
        })
        .unwrap();
    }
}
