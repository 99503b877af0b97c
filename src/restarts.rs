//! `--n-init N`: N restarts of one run from seeds derived from `--seed`, and one of them kept, as
//! scikit-learn's `n_init` (no labels are used to choose). `--restart-choice` says which:
//! - `bound`: the best final training lower bound (scikit-learn's rule);
//! - `agreement`: the restart whose clustering of the training rows agrees best with the other
//!   restarts' (the highest mean adjusted Rand index), i.e. their medoid. On the own-data suite
//!   the bound picked the restart that labels would have picked little more often than chance,
//!   and the medoid of five raised the mean and narrowed the spread over seeds on most sets
//!   (experiments/own-data/README.md);
//! - `confidence`: the restart whose cluster posterior is most confident on the training rows,
//!   the highest mean of max_k q(z=k|y). On twelve MNIST seeds it kept the best of three more
//!   often than the bound or agreement did (experiments/accuracy/README.md).
//!
//! Restart r is a full run directory `<run>/restarts/<r>` (options, metrics, checkpoint), trained
//! by [`train::train`] with seed [`seed`]`(--seed, r)` on the same data (the table's held-out split
//! and a generated spiral keep `--seed`'s). The kept restart's model, config, metrics, latent
//! dump and `done.json` are copied into `<run>`, so `gmvae predict --run <run>` reads it as a
//! single run, and `<run>/restarts.json` records every restart's seed, epochs, final bound (and,
//! with `agreement` or `confidence`, its score), and which was kept. `--n-init 1` is the plain
//! run: the same files as before restarts existed.
//!
//! With `--restart-epochs E` the restarts train E epochs, the choice is made there, and only the
//! kept restart trains on to `--epoch`: a choice early in training for (N - 1) x E extra epochs
//! instead of N whole runs. `restarts.json` is written at the choice, before the kept restart
//! goes on, so that `--resume` continues it instead of choosing again on unequal epochs.

use crate::export::{CONFIG_FILE, MODEL_FILE};
use crate::hooks::Hooks;
use crate::options::{Options, RestartChoice, Valid};
use crate::record::{final_lower_bound, DONE_FILE, METRICS_FILE};
use crate::rng::{self, stream};
use crate::train::{self, run_dir, Summary};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The folder of the restarts inside a run directory.
pub const DIR: &str = "restarts";
/// The record of the restarts and the choice, inside a run directory.
pub const FILE: &str = "restarts.json";

/// Files of the kept restart copied into the run directory: what `predict`, the plots and
/// readers of a single run look for (`done.json`: the run finished, and why).
const KEPT_FILES: [&str; 5] = [
    MODEL_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    crate::dump::FILE,
    DONE_FILE,
];

/// The seed of restart `r` of a run seeded `seed`: `seed` itself for the first, so that
/// `--n-init 1` trains exactly the run `--seed` names; later ones drawn from it, so that two
/// seeds share no restart (as `seed + r` would make `--seed 1` and `--seed 2` do). 32 bits, so
/// that every JSON reader keeps them exact.
pub fn seed(seed: u64, r: usize) -> u64 {
    use rand::RngCore;
    let mut g = rng::rng(seed, stream::RESTARTS);
    (0..r).fold(seed, |_, _| u64::from(g.next_u32()))
}

/// One restart as `restarts.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    pub restart: usize,
    pub seed: u64,
    /// Relative to the run directory.
    pub dir: PathBuf,
    /// Epochs trained (rows of its metrics.csv).
    pub epochs: usize,
    /// The training lower bound of its last epoch, per point; `None` when it failed.
    pub lower_bound: Option<f64>,
    /// With `--restart-choice agreement`: the mean adjusted Rand index of its clustering of the
    /// training rows with each other restart's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// With `--restart-choice confidence`: the mean over the training rows of max_k q(z=k|y).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Why it failed, when it did (it is then not a candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `restarts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub n_init: usize,
    /// The run's `--seed`, from which the restarts' seeds are derived.
    pub seed: u64,
    pub criterion: String,
    /// Index of the kept restart.
    pub kept: usize,
    /// With `--restart-epochs`: the epochs after which the restarts were compared (their
    /// `epochs` and scores are those of that epoch); the kept one then trained on to `--epoch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_epochs: Option<usize>,
    pub restarts: Vec<Restart>,
}

impl Record {
    /// Reads `restarts.json` of `run`.
    pub fn load(run: &Path) -> Result<Self> {
        let path = run.join(FILE);
        let text = crate::limits::read_text(&path)?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a restarts.json", path.display()))
    }
}

/// What [`train`] produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run directory and, when it trained in this call, the kept run's last epoch.
    pub summary: Summary,
    /// With `--n-init` > 1, the restarts and the choice (also in `restarts.json`).
    pub restarts: Option<Record>,
}

/// Trains the run `opts` names: a single run with `--n-init 1`, else its restarts, at most
/// `workers` at a time, each by [`train::train`], then keeps the best (see the module).
/// `resume` continues every unfinished restart (a restart without a checkpoint starts afresh)
/// and then chooses.
///
/// Restarts run side by side only when candle's kernels run one thread each: its thread pool is
/// fixed by `RAYON_NUM_THREADS` at the process's first tensor operation (`gmvae` sets it to 1
/// for `--n-init` > 1; an embedding process must set it before its first tensor). With more
/// kernel threads they run one at a time, each on all of them (side by side they would queue on
/// the one pool). With one kernel thread a restart trains the same numbers whatever `workers`
/// is.
pub fn train(opts: &Valid, resume: bool, workers: usize) -> Result<Outcome> {
    train_with(opts, resume, workers, Hooks::default())
}

/// [`train`] with the caller's rows, log and interrupt check (the Python binding), shared by
/// every restart (`workers` of them at once).
pub fn train_with(opts: &Valid, resume: bool, workers: usize, hooks: Hooks) -> Result<Outcome> {
    let dir = run_dir(opts);
    // A fresh run never mixes with another in its directory: a single run with restarts, or
    // restarts with a single run's checkpoint (a single run checks its own in `train`).
    let other: &[&str] = match opts.n_init {
        0 | 1 => &[DIR],
        _ => &[DIR, crate::checkpoint::FILE],
    };
    let other = other.iter().map(|f| dir.join(f)).find(|p| p.exists());
    if let (false, Some(found)) = (resume, other) {
        bail!(
            "{} already holds a run ({}); continue it with --resume {}, or choose another --id",
            dir.display(),
            found.display(),
            dir.display()
        );
    }
    if opts.n_init <= 1 {
        return Ok(Outcome {
            summary: train::train_with(opts, resume, hooks)?,
            restarts: None,
        });
    }
    let runs: Vec<Valid> = (0..opts.n_init)
        .map(|r| restart_options(opts, r))
        .collect::<Result<_>>()?;
    // A bad file stops here, before the run directory exists (as a single run does).
    let settled = train::check_data(opts, hooks)?;
    let mut lock = crate::run_lock::RunLock::acquire(&dir, !resume)?;
    // The options with which `--resume` continues the restarts (a raised --epoch recorded), and
    // what loading settled (a table's scaling), as a single run records them.
    crate::options::record_options(&dir, &settled, resume)?;
    lock.started();
    // A resumed run is not finished until its kept restart is (its done.json is copied then).
    let done = dir.join(DONE_FILE);
    if done.exists() {
        std::fs::remove_file(&done).with_context(|| format!("cannot remove {}", done.display()))?;
    }
    let workers = if kernel_threads() > 1 { 1 } else { workers };
    hooks.log.line(format!(
        "{} restarts (--n-init) in {}, {} at a time",
        opts.n_init,
        dir.join(DIR).display(),
        workers.clamp(1, opts.n_init)
    ));
    // The data were described once by `check_data` above.
    let hooks = Hooks {
        data_said: true,
        ..hooks
    };
    let (record, summary) = if opts.restart_epochs > 0 {
        choose_early(opts, &dir, &runs, resume, workers, hooks)?
    } else {
        let results = run_all(&runs, resume, workers, hooks);
        let record = choose(opts, &dir, &runs, &results, hooks)?;
        let summary = match results.into_iter().nth(record.kept) {
            Some(Ok(s)) => s,
            _ => bail!("restart {} was kept but has no result", record.kept),
        };
        hooks.log.line(kept_line(&record));
        (record, summary)
    };
    copy_kept(&run_dir(&runs[record.kept]), &dir)?;
    write_record(&dir, &record)?;
    Ok(Outcome {
        summary: Summary {
            run_dir: dir,
            ..summary
        },
        restarts: Some(record),
    })
}

/// `--restart-epochs E`: every restart trains E epochs, one is kept there by `--restart-choice`
/// and trains on alone to `--epoch`. The choice is recorded before it goes on, and a resumed run
/// that finds it continues the kept restart (the others stay at E epochs).
fn choose_early(
    opts: &Valid,
    dir: &Path,
    runs: &[Valid],
    resume: bool,
    workers: usize,
    hooks: Hooks,
) -> Result<(Record, Summary)> {
    let e = opts.restart_epochs;
    let earlier = match resume && dir.join(FILE).exists() {
        true => Some(Record::load(dir)?).filter(|r| r.screen_epochs == Some(e)),
        false => None,
    };
    let record = match earlier {
        Some(record) => {
            hooks.log.line(format!(
                "restart {} was kept after {e} epochs ({}); it trains on",
                record.kept,
                dir.join(FILE).display()
            ));
            record
        }
        None => {
            let short: Vec<Valid> = runs
                .iter()
                .map(|o| {
                    let mut o = Options::clone(o);
                    o.epoch = e;
                    o.validated()
                })
                .collect::<Result<_>>()?;
            let results = run_all(&short, resume, workers, hooks);
            let mut record = choose(opts, dir, &short, &results, hooks)?;
            record.screen_epochs = Some(e);
            write_record(dir, &record)?;
            hooks.log.line(format!(
                "{}; it trains on to epoch {}",
                kept_line(&record),
                opts.epoch
            ));
            record
        }
    };
    let kept = runs
        .get(record.kept)
        .with_context(|| format!("{}: kept restart {} is not listed", FILE, record.kept))?;
    let summary = train::train_with(kept, true, hooks)
        .with_context(|| format!("training the kept restart {} on", record.kept))?;
    Ok((record, summary))
}

/// Writes `restarts.json` (atomically).
fn write_record(dir: &Path, record: &Record) -> Result<()> {
    crate::atomic::write_str(&dir.join(FILE), &serde_json::to_string_pretty(record)?)
}

/// The log line that says which restart was kept and why.
fn kept_line(record: &Record) -> String {
    let r = &record.restarts[record.kept];
    let bound = r.lower_bound.unwrap_or(f64::NAN);
    let why = match (r.agreement, r.confidence) {
        (Some(a), _) => format!(
            "the best agreement with the other restarts (mean ARI {a:.4}); its bound {bound:.4}"
        ),
        (None, Some(c)) => format!(
            "the most confident clustering of the training rows (mean max q(z|y) {c:.4}); its bound {bound:.4}"
        ),
        (None, None) => format!("the best final training lower bound, {bound:.4}"),
    };
    let when = match record.screen_epochs {
        Some(e) => format!(" after {e} epochs"),
        None => String::new(),
    };
    format!(
        "kept restart {} of {} (seed {}){when}: {why}",
        r.restart, record.n_init, r.seed
    )
}

/// The threads of candle's CPU kernels: its pool's (started here if it has not been) and its
/// matmuls'.
fn kernel_threads() -> usize {
    let pool = candle_core::utils::barrier_pool().n_workers() + 1;
    pool.max(candle_core::utils::get_num_threads())
}

/// The options of restart `r`: its seed, the run's data seed, one restart, in `<run>/restarts/r`.
fn restart_options(opts: &Options, r: usize) -> Result<Valid> {
    let mut o = opts.clone();
    o.seed = seed(opts.seed, r);
    o.data_seed = Some(opts.seed_of_data());
    (o.n_init, o.restart_epochs) = (1, 0);
    o.out_dir = run_dir(opts).join(DIR);
    o.id = r.to_string();
    o.validated()
}

/// Trains every restart, `workers` at a time; each result in restart order.
fn run_all(runs: &[Valid], resume: bool, workers: usize, hooks: Hooks) -> Vec<Result<Summary>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Summary>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, runs.len()) {
            s.spawn(|| loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                let Some(o) = runs.get(r) else { break };
                // A restart killed before its first checkpoint has nothing to resume.
                let go_on = resume && run_dir(o).join(crate::checkpoint::FILE).exists();
                hooks.log.line(format!(
                    "restart {r} (seed {}): {}",
                    o.seed,
                    if go_on { "resuming" } else { "starting" }
                ));
                let out = train::train_with(o, go_on, hooks);
                results
                    .lock()
                    .expect("no restart panicked holding the results")[r] = Some(out);
            });
        }
    });
    results
        .into_inner()
        .expect("no restart panicked holding the results")
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("the restart did not run"))))
        .collect()
}

/// Reads each restart's final lower bound from its `metrics.csv` and keeps the best by
/// `--restart-choice`: the best bound, agreement or confidence (ties: the better bound; then the
/// first). Failed restarts are recorded and said on stderr; all failing is an error.
fn choose(
    opts: &Valid,
    dir: &Path,
    runs: &[Valid],
    results: &[Result<Summary>],
    hooks: Hooks,
) -> Result<Record> {
    let mut restarts = Vec::new();
    for (r, (o, result)) in runs.iter().zip(results).enumerate() {
        let rel = Path::new(DIR).join(&o.id);
        let (epochs, lower_bound, error) = match result {
            Ok(_) => {
                let (epochs, lb) = final_lower_bound(&dir.join(&rel))?;
                (epochs, Some(lb), None)
            }
            Err(e) => {
                let line = first_line(e);
                eprintln!("warning: restart {r} (seed {}) failed: {line}", o.seed);
                (0, None, Some(line))
            }
        };
        restarts.push(Restart {
            restart: r,
            seed: o.seed,
            dir: rel,
            epochs,
            lower_bound,
            agreement: None,
            confidence: None,
            error,
        });
    }
    if opts.restart_choice != RestartChoice::Bound {
        score_clusterings(opts, runs, &mut restarts, hooks)?;
    }
    // The criterion, then the bound (ties), then the first restart.
    let key = |r: &Restart| {
        let lb = r.lower_bound?;
        let score = match opts.restart_choice {
            RestartChoice::Bound => lb,
            RestartChoice::Agreement => r.agreement?,
            RestartChoice::Confidence => r.confidence?,
        };
        Some((score, lb))
    };
    let kept = restarts
        .iter()
        .filter_map(|r| Some((r.restart, key(r)?)))
        .fold(
            None,
            |best: Option<(usize, (f64, f64))>, (r, k)| match best {
                Some((_, b)) if b >= k => best,
                _ => Some((r, k)),
            },
        );
    let Some((kept, _)) = kept else {
        let first = results.iter().find_map(|r| r.as_ref().err());
        return Err(anyhow::anyhow!(
            "{}",
            first.map_or(String::new(), first_line)
        ))
        .context(format!(
            "every one of the {} restarts (--n-init) failed",
            runs.len()
        ));
    };
    let criterion = match opts.restart_choice {
        RestartChoice::Bound => {
            "bound: the training lower bound of the last epoch (metrics.csv lower_bound); no labels"
        }
        RestartChoice::Agreement => {
            "agreement: the highest mean adjusted Rand index of its clustering of the training \
             rows with the other restarts' (ties: the better bound); no labels"
        }
        RestartChoice::Confidence => {
            "confidence: the highest mean over the training rows of max_k q(z=k|y) (ties: the \
             better bound); no labels"
        }
    };
    Ok(Record {
        n_init: opts.n_init,
        seed: opts.seed,
        criterion: criterion.into(),
        kept,
        screen_epochs: None,
        restarts,
    })
}

/// Records each finished restart's agreement or confidence (`--restart-choice`), from its
/// clustering of the training rows.
fn score_clusterings(
    opts: &Valid,
    runs: &[Valid],
    restarts: &mut [Restart],
    hooks: Hooks,
) -> Result<()> {
    let done: Vec<usize> = restarts
        .iter()
        .filter(|r| r.lower_bound.is_some())
        .map(|r| r.restart)
        .collect();
    let posteriors =
        training_clusters(opts, done.iter().map(|&r| &runs[r]), hooks).with_context(|| {
            format!(
                "cannot score the restarts' clusterings of the training rows (--restart-choice {})",
                opts.restart_choice.name()
            )
        })?;
    if opts.restart_choice == RestartChoice::Agreement {
        let clusters: Vec<Vec<usize>> = posteriors.iter().map(|p| p.0.clone()).collect();
        for (&r, a) in done.iter().zip(mean_agreements(&clusters)?) {
            restarts[r].agreement = Some(a);
        }
    } else {
        for (&r, p) in done.iter().zip(&posteriors) {
            restarts[r].confidence = Some(p.1);
        }
    }
    Ok(())
}

/// For each run of `runs`, under the model the run exported (BatchNorm in eval mode): the
/// component of every training row of `opts`' data (the argmax of its cluster posterior), which
/// restarts compare for agreement, and the mean over the rows of max_k q(z=k|y), their
/// confidence.
fn training_clusters<'a>(
    opts: &Valid,
    runs: impl IntoIterator<Item = &'a Valid>,
    hooks: Hooks,
) -> Result<Vec<(Vec<usize>, f64)>> {
    let (dataset, _) = crate::run_data::load_data(opts, hooks)?;
    let device = crate::device::select(opts.gpu, opts.gpu_id)?;
    let mut all = Vec::new();
    for run in runs {
        let (config, net) = crate::export::load_model(&run_dir(run), &device)?;
        let mut clusters = Vec::with_capacity(dataset.train.n);
        let mut max_sum = 0.0;
        crate::model::for_each_chunk(&net, &dataset.train.y, dataset.dy, &device, |_, post| {
            let q = crate::model::cluster_posterior(&net, config.objective, &post)?;
            let rows = q.dim(0)?;
            let q = q.flatten_all()?.to_vec1::<f32>()?;
            let k = config.net.k;
            let assign = crate::metrics::argmax_rows(&q, k, rows)?;
            // Each row's max_k q(z=k|y) is its value at its argmax.
            max_sum += assign
                .iter()
                .enumerate()
                .map(|(i, &a)| f64::from(q[i * k + a]))
                .sum::<f64>();
            clusters.extend(assign);
            Ok(())
        })?;
        let confidence = max_sum / clusters.len().max(1) as f64;
        all.push((clusters, confidence));
    }
    Ok(all)
}

/// For each clustering, the mean adjusted Rand index with every other one (1 for a lone one).
pub fn mean_agreements(clusters: &[Vec<usize>]) -> Result<Vec<f64>> {
    let n = clusters.len();
    let mut sum = vec![0.0; n];
    for i in 0..n {
        for j in i + 1..n {
            let a = crate::metrics::ari(&clusters[i], &clusters[j])?;
            sum[i] += a;
            sum[j] += a;
        }
    }
    Ok(sum
        .into_iter()
        .map(|s| if n > 1 { s / (n - 1) as f64 } else { 1.0 })
        .collect())
}

/// An error and its causes on one line, for restarts.json and the warning.
fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `gmvae export RUN`: [`crate::export::export_run`], and for a run of restarts the kept
/// restart's last checkpoint (the run directory holds none of its own), written into the
/// restart's directory and copied into the run's, as training leaves them.
pub fn export(run: &Path) -> Result<PathBuf> {
    if !run.join(FILE).exists() {
        return crate::export::export_run(run);
    }
    let record = Record::load(run)?;
    let kept = record.restarts.get(record.kept).with_context(|| {
        format!(
            "{}: kept restart {} is not listed",
            run.join(FILE).display(),
            record.kept
        )
    })?;
    let from = run.join(&kept.dir);
    crate::export::export_run(&from).with_context(|| {
        format!(
            "exporting the kept restart {} of {}",
            kept.restart,
            run.display()
        )
    })?;
    copy_kept(&from, run)?;
    Ok(run.join(MODEL_FILE))
}

/// Copies the kept restart's files into the run directory, each atomically.
fn copy_kept(from: &Path, to: &Path) -> Result<()> {
    for name in KEPT_FILES {
        let src = from.join(name);
        if !src.exists() {
            continue;
        }
        let bytes =
            std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        crate::atomic::write(&to.join(name), &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_medoid_clustering_agrees_best() {
        let a = vec![0, 0, 1, 1, 2, 2];
        let relabelled = vec![2, 2, 0, 0, 1, 1];
        let near = vec![0, 0, 1, 1, 2, 1];
        let far = vec![0, 1, 0, 1, 0, 1];
        let m = mean_agreements(&[a.clone(), relabelled, near, far]).unwrap();
        // The same partition under other labels agrees as much as the partition itself.
        assert!((m[0] - m[1]).abs() < 1e-12, "{m:?}");
        assert!(m[0] > m[2] && m[2] > m[3], "{m:?}");
        assert_eq!(mean_agreements(&[a]).unwrap(), vec![1.0]);
    }

    #[test]
    fn the_first_restart_is_the_seed_itself_and_seeds_share_no_restart() {
        assert_eq!(seed(7, 0), 7);
        let a: Vec<u64> = (0..5).map(|r| seed(1, r)).collect();
        let b: Vec<u64> = (0..5).map(|r| seed(2, r)).collect();
        assert!(a.iter().all(|s| !b.contains(s)), "{a:?} {b:?}");
        let mut u = a.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), a.len());
        assert_eq!(seed(1, 3), a[3], "a seed is a pure function of (seed, r)");
    }
}
