//! The accuracy protocol's table (issue 13): reads the run directories that
//! `experiments/accuracy/protocol.sh` writes and prints, per row (network, K, M), the final
//! test accuracy (AAE rule) as mean ± std and best over seeds beside the paper's Table 1, with
//! Hungarian accuracy, NMI, clusters used, epochs reached and whether each run finished.
//!
//! `accuracy_table [RUNS_DIR]` (default `experiments/accuracy/results`, the runs' committed
//! records; `experiments/accuracy/runs` holds the run directories themselves), Markdown on stdout.
//! `--curves` adds every run's per-epoch test accuracy under the table.

use anyhow::{Context, Result};
use clap::Parser;
use gmvae::options::Options;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "accuracy_table",
    about = "Summarise the MNIST accuracy protocol's runs"
)]
struct Args {
    /// Directory holding the protocol's run directories or their records (protocol.sh).
    #[arg(default_value = "experiments/accuracy/results")]
    runs: PathBuf,
    /// One row per run with the recipe's settings (optimiser, lr, z-prior, eta, alpha, M, ...)
    /// instead of the per-(network, K, M) summary: the ablation table.
    #[arg(long)]
    per_run: bool,
    /// With --per-run: report each run at this epoch (or its last, if it has fewer), so runs of
    /// different lengths compare at one budget.
    #[arg(long)]
    at_epoch: Option<usize>,
    /// Under the summary table, every run's test accuracy per epoch (AAE rule), its best epoch
    /// and its last epoch's majority-vote accuracy.
    #[arg(long, conflicts_with = "per_run")]
    curves: bool,
}

/// The last epoch of one run.
struct RunResult {
    id: String,
    seed: u64,
    epochs: usize,
    finished: Option<String>,
    test_acc: f64,
    hungarian: f64,
    nmi: f64,
    clusters_used: Option<f64>,
    /// Test accuracy (AAE rule) of every epoch, in order.
    curve: Vec<f64>,
    majority: Option<f64>,
}

/// Paper v1 Table 1 (GMVAE, MNIST, AAE rule): (K, M) -> (best, mean, std), in percent.
fn paper(k: usize, m: usize) -> Option<(f64, f64, f64)> {
    match (k, m) {
        (10, 1) => Some((87.71, 74.47, 10.20)),
        (10, 10) => Some((93.67, 86.94, 6.62)),
        (16, 1) => Some((88.36, 84.80, 3.11)),
        (16, 10) => Some((97.50, 90.24, 5.74)),
        _ => None,
    }
}

/// Every row of a `metrics.csv` as column -> value, in epoch order (empty while the run has no
/// finished epoch: no file yet, or only its header).
fn read_rows(path: &Path) -> Result<Vec<BTreeMap<String, f64>>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .filter_map(|(h, v)| v.parse::<f64>().ok().map(|v| (h.to_string(), v)))
                .collect()
        })
        .collect())
}

/// The row of epoch `at` (or the last row when `at` is None or beyond the file): (epoch, values).
fn row_at(path: &Path, at: Option<usize>) -> Result<Option<(usize, BTreeMap<String, f64>)>> {
    let mut rows = read_rows(path)?;
    if let Some(at) = at {
        rows.truncate(at);
    }
    let epochs = rows.len();
    Ok(rows.pop().map(|last| (epochs, last)))
}

/// Where a run's curve and end are recorded: the run directory, or, for restarts chosen early
/// (`--restart-epochs`) whose kept restart still trains, that restart's directory (the run
/// directory receives its files when it finishes).
fn records_of(dir: &Path) -> Result<PathBuf> {
    if dir.join("metrics.csv").exists() || !dir.join(gmvae::restarts::FILE).exists() {
        return Ok(dir.to_path_buf());
    }
    let record = gmvae::restarts::Record::load(dir)?;
    let kept = record.restarts.get(record.kept).with_context(|| {
        format!(
            "{}: kept restart {} is not listed",
            dir.display(),
            record.kept
        )
    })?;
    Ok(dir.join(&kept.dir))
}

fn load(dir: &Path) -> Result<Option<(String, usize, usize, RunResult)>> {
    let opts = Options::load(dir)?;
    let records = records_of(dir)?;
    let rows = read_rows(&records.join("metrics.csv"))?;
    let (epochs, Some(v)) = (rows.len(), rows.last()) else {
        return Ok(None);
    };
    let get = |k: &str| {
        v.get(k)
            .copied()
            .with_context(|| format!("{}: no `{k}` in the last row", dir.display()))
    };
    let finished = std::fs::read_to_string(records.join(gmvae::train::DONE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|d| d["reason"].as_str().map(str::to_string));
    // Runs of another recipe (learning rate, binarisation, restarts, or objective, alpha, sizes,
    // batch, optimiser, z-prior or start other than their preset's) form their own row.
    let mut network = format!(
        "{}, lr {:e}",
        format!("{:?}", opts.network).to_lowercase(),
        opts.learning_rate
    );
    if opts.binarize {
        network.push_str(", binarized");
    }
    if opts.n_init > 1 {
        // The kept restart's scores: one of n chosen without labels, not one seed's start.
        let rule = match opts.restart_choice {
            gmvae::options::RestartChoice::Bound => "best bound",
            gmvae::options::RestartChoice::Agreement => "best agreement",
            gmvae::options::RestartChoice::Confidence => "most confident",
        };
        network.push_str(&format!(", {rule} of {} restarts", opts.n_init));
        if opts.restart_epochs > 0 {
            let e = opts.restart_epochs;
            network.push_str(&format!(
                " after {e} epoch{}",
                if e == 1 { "" } else { "s" }
            ));
        }
    }
    let preset = Options::preset(&opts.preset).ok();
    let objective = preset
        .as_ref()
        .map_or(gmvae::objective::ObjectiveKind::V1, |p| p.objective);
    if opts.objective != objective {
        network.push_str(&format!(", {:?}", opts.objective).to_lowercase());
    }
    if let Some(p) = preset {
        if opts.cv_weight != p.cv_weight {
            network.push_str(&format!(", alpha {}", opts.cv_weight));
        }
        if (opts.x_size, opts.w_size) != (p.x_size, p.w_size) {
            network.push_str(&format!(", Dx {} Dw {}", opts.x_size, opts.w_size));
        }
        if opts.batch_size != p.batch_size {
            network.push_str(&format!(", batch {}", opts.batch_size));
        }
        if opts.adam_reset != p.adam_reset {
            network.push_str(if opts.adam_reset {
                ", Adam reset"
            } else {
                ", persistent Adam"
            });
        }
        // v1 weights its z-prior by eta; v2 by alpha alone (named above), so v2's label leaves
        // out the eta its options still carry.
        let v1 = opts.objective == gmvae::objective::ObjectiveKind::V1;
        let differs = opts.z_prior != p.z_prior || (v1 && opts.z_prior_weight != p.z_prior_weight);
        if differs {
            let mode = match opts.z_prior {
                gmvae::objective::ZPriorMode::Sample => "per-point",
                gmvae::objective::ZPriorMode::Marginal => "marginal",
            };
            network.push_str(&format!(", {mode} z-prior"));
            if v1 {
                network.push_str(&format!(" eta {}", opts.z_prior_weight));
            }
        }
        if opts.augment_weight != p.augment_weight {
            network.push_str(&if opts.augment_weight > 0.0 {
                format!(", augmentation B {}", opts.augment_weight)
            } else {
                ", no augmentation".to_string()
            });
        }
        match (&opts.init_from, opts.pretrain_epochs) {
            (Some(_), _) => network.push_str(&format!(", {}", start(&opts))),
            (None, n) if n == p.pretrain_epochs => {}
            (None, 0) => network.push_str(", random start"),
            (None, n) => network.push_str(&format!(", pretrained {n}")),
        }
    }
    Ok(Some((
        network,
        opts.k,
        opts.n_mc,
        RunResult {
            id: dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            seed: opts.seed,
            epochs,
            finished,
            test_acc: get("test_acc")?,
            hungarian: get("test_acc_hungarian")?,
            nmi: get("test_nmi")?,
            clusters_used: v.get("clusters_used").copied(),
            curve: rows
                .iter()
                .filter_map(|r| r.get("test_acc").copied())
                .collect(),
            majority: v.get("test_acc_majority").copied(),
        },
    )))
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn main() {
    gmvae::cli::exit_quietly_on_closed_stdout();
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {}", gmvae::cli::error_line(&e));
        std::process::exit(1);
    }
}

/// The ablation row of one run directory.
fn per_run_row(dir: &Path, at: Option<usize>) -> Result<Option<String>> {
    let o = Options::load(dir)?;
    let Some((epochs, v)) = row_at(&records_of(dir)?.join("metrics.csv"), at)? else {
        return Ok(None);
    };
    let f = |k: &str, scale: f64| {
        v.get(k)
            .map(|x| format!("{:.2}", x * scale))
            .unwrap_or_else(|| "-".into())
    };
    let data = match (o.train_size, &o.data) {
        (_, Some(p)) => p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        (Some(n), None) => format!("first {n}"),
        (None, None) => "all".into(),
    };
    let data = if o.binarize {
        format!("{data}, binarized")
    } else {
        data
    };
    Ok(Some(format!(
        "| {} | {:?} | {:?} | {} | {} | {} / {} | {} | {} | {:e} | {:?} | {} | {} | {} | {} | {} | {epochs} | {} | {} | {} | {} | {} |",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        o.network,
        o.objective,
        data,
        o.k,
        o.x_size,
        o.w_size,
        o.batch_size,
        if o.adam_reset { "reset (upstream)" } else { "persistent" },
        o.learning_rate,
        o.z_prior,
        o.z_prior_weight,
        o.cv_weight,
        o.n_mc,
        o.warmup_epochs,
        start(&o),
        f("test_acc", 100.0),
        f("test_acc_hungarian", 100.0),
        v.get("test_nmi").map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into()),
        v.get("clusters_used").map(|c| format!("{c:.0}/{}", o.k)).unwrap_or_else(|| "-".into()),
        f("mean_max_q", 1.0),
    )))
}

/// How a run's weights started: `random`, `mixture, P AE epochs` (`--pretrain-epochs`) or
/// `from SOURCE epoch E` (`--init-from`).
fn start(o: &Options) -> String {
    match (&o.init_from, o.pretrain_epochs) {
        (Some(i), _) => format!(
            "from {} epoch {}",
            i.run
                .file_name()
                .unwrap_or(i.run.as_os_str())
                .to_string_lossy(),
            i.epoch
        ),
        (None, 0) => "random".into(),
        (None, p) => format!("mixture, {p} AE epochs"),
    }
}

fn run(args: Args) -> Result<()> {
    match args.at_epoch {
        Some(0) => anyhow::bail!("--at-epoch 0: epochs count from 1"),
        Some(e) if !args.per_run => {
            anyhow::bail!("--at-epoch {e} applies to the --per-run table only; add --per-run")
        }
        _ => {}
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.per_run {
        writeln!(out, "| run | network | objective | train data | K | Dx / Dw | batch | Adam | lr | z-prior | eta | alpha | M | warm-up | start | epochs | test_acc | Hungarian | NMI | clusters used | mean max q |")?;
        writeln!(
            out,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        )?;
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&args.runs)
            .with_context(|| format!("cannot list {}", args.runs.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join(Options::FILE).is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            if let Some(row) = per_run_row(&d, args.at_epoch)? {
                writeln!(out, "{row}")?;
            }
        }
        return Ok(());
    }
    let mut groups: BTreeMap<(String, usize, usize), Vec<RunResult>> = BTreeMap::new();
    let mut curves = Vec::new();
    let entries = std::fs::read_dir(&args.runs)
        .with_context(|| format!("cannot list {}", args.runs.display()))?;
    let mut no_epoch = Vec::new();
    for entry in entries {
        let dir = entry?.path();
        if !dir.join(Options::FILE).is_file() {
            continue;
        }
        match load(&dir)? {
            Some((net, k, m, r)) => groups.entry((net, k, m)).or_default().push(r),
            None => no_epoch.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            ),
        }
    }
    no_epoch.sort();
    writeln!(out, "| network | K | M | runs (finished) | epochs | test_acc mean ± std | best | paper mean ± std | paper best | Hungarian mean | NMI mean | clusters used (min) |")?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for ((net, k, m), mut runs) in groups {
        runs.sort_by_key(|r| r.seed);
        let acc: Vec<f64> = runs.iter().map(|r| r.test_acc).collect();
        let (mean, std) = mean_std(&acc);
        let best = acc.iter().cloned().fold(f64::MIN, f64::max);
        let finished = runs.iter().filter(|r| r.finished.is_some()).count();
        let epochs: Vec<String> = runs
            .iter()
            .map(|r| {
                let mark = match r.finished.as_deref() {
                    Some("plateau") => "p",
                    Some(_) => "",
                    None => "+",
                };
                format!("{}{mark}", r.epochs)
            })
            .collect();
        let (pm, ps) = match paper(k, m) {
            Some((b, m, s)) => (format!("{m:.2} ± {s:.2}"), format!("{b:.2}")),
            None => ("-".to_string(), "-".to_string()),
        };
        let min_used = runs
            .iter()
            .filter_map(|r| r.clusters_used)
            .fold(f64::MAX, f64::min);
        writeln!(out,
            "| {net} | {k} | {m} | {} ({finished}) | {} | {:.2} ± {:.2} | {:.2} | {pm} | {ps} | {:.2} | {:.3} | {} |",
            runs.len(),
            epochs.join(" "),
            100.0 * mean,
            100.0 * std,
            100.0 * best,
            100.0 * mean_std(&runs.iter().map(|r| r.hungarian).collect::<Vec<_>>()).0,
            mean_std(&runs.iter().map(|r| r.nmi).collect::<Vec<_>>()).0,
            if min_used == f64::MAX { "-".to_string() } else { format!("{min_used:.0}/{k}") },
        )?;
        if args.curves {
            curves.extend(runs.iter().map(|r| curve_line(&net, k, m, r)));
        }
    }
    writeln!(out)?;
    if !no_epoch.is_empty() {
        writeln!(
            out,
            "Started, no epoch finished yet: {}.",
            no_epoch.join(", ")
        )?;
        writeln!(out)?;
    }
    writeln!(out, "epochs: per seed, in seed order; `p` = stopped on the lower-bound plateau rule, `+` = not finished yet (resume with protocol.sh). Accuracies in %, AAE rule (each cluster takes the label of its most confident test image), on the 10k test set after the last epoch reached.")?;
    if args.curves {
        writeln!(out)?;
        writeln!(out, "Per-epoch test accuracy (AAE rule), by row and seed:")?;
        for line in curves {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// One run's curve: `- ROW, K k, M m, seed s (`id`): a1, a2, ...; best b (epoch e); ...`.
fn curve_line(net: &str, k: usize, m: usize, r: &RunResult) -> String {
    let accs: Vec<String> = r.curve.iter().map(|a| format!("{a:.4}")).collect();
    // The first epoch of the highest accuracy.
    let best = r
        .curve
        .iter()
        .enumerate()
        .fold(None, |b: Option<(usize, f64)>, (i, &a)| match b {
            Some((_, ba)) if ba >= a => b,
            _ => Some((i + 1, a)),
        });
    let mut line = format!(
        "- {net}, K {k}, M {m}, seed {} (`{}`): {}",
        r.seed,
        r.id,
        accs.join(", ")
    );
    if let Some((e, a)) = best {
        line.push_str(&format!("; best {a:.4} (epoch {e})"));
    }
    if let Some(mv) = r.majority {
        line.push_str(&format!("; epoch {} by majority vote {mv:.4}", r.epochs));
    }
    match r.finished.as_deref() {
        Some(reason) => line.push_str(&format!("; finished ({reason})")),
        None => line.push_str("; not finished"),
    }
    line
}
