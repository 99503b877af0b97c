//! The `gmvae` command line: `gmvae <preset> [flags]`, with upstream's flags in kebab case.

use crate::objective::ObjectiveKind;
use crate::options::{NetworkKind, Options};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Deep unsupervised clustering with Gaussian-mixture VAEs (Dilokthanakul et al. 2016).
#[derive(Debug, Parser)]
#[command(name = "gmvae", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    // Each preset's values show as the flags' defaults in its --help (see `command`).
    /// Spiral preset: 2-D spiral arms, fc network, Gaussian likelihood.
    Spiral(TrainArgs),
    /// Fully-connected MNIST preset.
    #[command(name = "mnist_fc", alias = "mnist-fc")]
    MnistFc(TrainArgs),
    /// Convolutional MNIST preset.
    Mnist(TrainArgs),
    /// Convolutional SVHN preset (the svhn branch's v2 objective).
    Svhn(TrainArgs),
    /// Your own N x D table (CSV/TSV, whitespace text, .npy, .safetensors): fc network.
    Table(TableCmd),
    /// Cluster rows with a trained run: per row the component, q(z|y) and the q(x|y) mean.
    Predict(crate::predict::PredictArgs),
    /// Write a run's weights-only model.safetensors + config.json from its last checkpoint.
    Export(crate::export::ExportArgs),
    /// Serket baselines: modular VAE, GMM and MLDA exchanging messages.
    Serket(crate::serket::cli::SerketArgs),
}

/// The training presets, as subcommands.
pub const PRESETS: [&str; 5] = ["spiral", "mnist_fc", "mnist", "svhn", "table"];

impl Cli {
    /// Parses the process's arguments; each preset's `--help` shows its own defaults.
    pub fn parse_args() -> Self {
        use clap::FromArgMatches;
        Self::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
    }
}

/// The command line, with each preset's values from [`Options::preset`] appended to its flags'
/// help as `[default: ...]` (they are not clap defaults: a flag left out must stay `None` so that
/// `--upstream-recipe` and `--resume` can tell it was not given).
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for preset in PRESETS {
        let opts = Options::preset(preset).expect("every preset resolves");
        let defaults = preset_defaults(preset).expect("every preset serializes");
        cmd = cmd.mut_subcommand(preset, |mut sub| {
            let ids: Vec<String> = sub
                .get_arguments()
                .map(|a| a.get_id().to_string())
                .collect();
            for id in ids {
                let note = match (crate::flag_use::unused(&id, &opts), defaults.get(&id)) {
                    (Some(why), _) => format!("[does nothing for this preset: {why}]"),
                    (None, Some(v)) => format!("[default: {v}]"),
                    (None, None) => continue,
                };
                sub = sub.mut_arg(&id, |a| append_help(a, &note));
            }
            sub
        });
    }
    cmd
}

/// The values of preset `name`, keyed by flag id (the field name), as a flag would spell them.
pub fn preset_defaults(name: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let o = serde_json::to_value(Options::preset(name)?)?;
    let mut fields = o.as_object().cloned().unwrap_or_default();
    // The table preset's own settings are flags of the same subcommand.
    if let Some(serde_json::Value::Object(t)) = fields.remove("table") {
        fields.extend(t);
    }
    let mut out = std::collections::BTreeMap::new();
    for (key, v) in fields {
        let shown = match v {
            serde_json::Value::String(s) if !s.is_empty() => s,
            serde_json::Value::Number(n) => n.to_string(),
            // 0/1 flags (--continuous, --acc); switches like --adam-reset show no default.
            serde_json::Value::Bool(b) => u8::from(b).to_string(),
            _ => continue,
        };
        // Options renames K for upstream's opts; the flag id is `k`.
        out.insert(if key == "K" { "k".into() } else { key }, shown);
    }
    Ok(out)
}

/// `note` after the flag's help, unless the help states its default itself; a switch (no value)
/// shows no default.
fn append_help(a: clap::Arg, note: &str) -> clap::Arg {
    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
    let is_default = note.starts_with("[default:");
    if help.contains("[default:") || (is_default && !a.get_action().takes_values()) {
        return a;
    }
    let long = a.get_long_help().map(|h| format!("{h} {note}"));
    let a = a.help(format!("{help} {note}"));
    match long {
        Some(l) => a.long_help(l),
        None => a,
    }
}

fn flag01(s: &str) -> Result<bool, String> {
    match s {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err(format!("expected 0 or 1, found `{s}`")),
    }
}

/// `gmvae table`: the shared training flags plus the table's own.
#[derive(Debug, Args)]
pub struct TableCmd {
    #[command(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    pub table: crate::data::table::TableArgs,
}

/// Flags shared by every training preset; each overrides the preset's value.
#[derive(Debug, Args, Default)]
pub struct TrainArgs {
    /// Seed of every random source: init, data generation, shuffling, noise (upstream -seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Adam learning rate (-learningRate).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Minibatch size N (-batchSize).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Number of epochs (-epoch).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Dx, size of the Gaussian latent x (-xSize).
    #[arg(long)]
    pub x_size: Option<usize>,
    /// Dw, size of the latent w (-wSize).
    #[arg(long)]
    pub w_size: Option<usize>,
    /// K, number of mixture components / clusters (-K).
    #[arg(short = 'K', long = "k")]
    pub k: Option<usize>,
    /// H, hidden width (-hiddenSize).
    #[arg(long)]
    pub hidden_size: Option<usize>,
    /// eta, weight of the z-prior KL (-zPriorWeight; v1).
    #[arg(long)]
    pub z_prior_weight: Option<f64>,
    /// alpha, gradient weight of the consistency violation (v1) or of the z-prior (v2) (-cvWeight).
    #[arg(long)]
    pub cv_weight: Option<f64>,
    /// M, Monte-Carlo samples of (x, w) per point (-nMC).
    #[arg(long)]
    pub n_mc: Option<usize>,
    /// Free-bits threshold in nats per point for the v2 objective (-lambda).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// z-prior KL the gradient follows (v1): sample = per point, the ELBO's (upstream); marginal
    /// = KL of the batch's mean q(z|y) to uniform (balances component usage without flattening
    /// each point's q(z|y)). The logged lower bound is always the ELBO.
    #[arg(long, value_enum)]
    pub z_prior: Option<crate::objective::ZPriorMode>,
    /// KL warm-up: ramp the conditional prior's gradient weight from 0 to 1 over N epochs
    /// (fractions allowed; 0 = off).
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Stop once the training lower bound has improved by less than --plateau-tol (relative)
    /// over this many epochs (0 = never; test accuracy is never used to stop).
    #[arg(long)]
    pub plateau_epochs: Option<usize>,
    /// Relative improvement of the lower bound that counts as progress (see --plateau-epochs).
    #[arg(long)]
    pub plateau_tol: Option<f64>,
    /// Before training, train q(x|y)'s mean and p(y|x) as an autoencoder for N epochs, fit a
    /// K-component diagonal Gaussian mixture to the codes, and start p(x|w,z) and q(z|y) from
    /// it (VaDE's start; 0 = off).
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
    /// Objective: v1 (paper v1, q(z|y) head and CV term) or v2 (version2 branch, p(z|x,w)).
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveKind>,
    /// 1: Gaussian likelihood p(y|x); 0: Bernoulli (-continuous; fc decoder only).
    #[arg(long, value_parser = flag01)]
    pub continuous: Option<bool>,
    /// 1: flat input; 2: images (-inputDimension; conv needs 2).
    #[arg(long)]
    pub input_dimension: Option<u8>,
    /// Network family: fc or conv (-network).
    #[arg(long, value_enum)]
    pub network: Option<NetworkKind>,
    /// Input channels of the conv net (-nChannels).
    #[arg(long)]
    pub n_channels: Option<usize>,
    /// F, filters of the first conv layer (-nFilters).
    #[arg(long)]
    pub n_filters: Option<usize>,
    /// 1: clustering accuracy every epoch (-ACC).
    #[arg(long, value_parser = flag01)]
    pub acc: Option<bool>,
    /// Write samples.png every N epochs; 0 = never (-visualGen).
    #[arg(long)]
    pub visual_gen: Option<usize>,
    /// Accepted for upstream compatibility: the latent dump is written every epoch anyway.
    #[arg(long, value_parser = flag01)]
    pub visualise2d: Option<bool>,
    /// Accepted for upstream compatibility: checkpoints are written every epoch anyway.
    #[arg(long, value_parser = flag01)]
    pub save_model: Option<bool>,
    /// Accepted for upstream compatibility: metrics.csv is written every epoch anyway.
    #[arg(long, value_parser = flag01)]
    pub report_lower_bound: Option<bool>,
    /// Optimiser; only adam exists (-optimiser).
    #[arg(long)]
    pub optimiser: Option<String>,
    /// 1 (or no value): upstream's Adam, whose state restarts every step (sign-SGD-like;
    /// §2.4); 0: ordinary Adam with persistent state. Default: the preset's (`mnist`: 1, as
    /// upstream; the other presets: 0).
    #[arg(long, value_parser = flag01, num_args = 0..=1, default_missing_value = "1")]
    pub adam_reset: Option<bool>,
    /// 1: dynamic binarisation: each training batch's grey levels y are replaced by a fresh draw
    /// of Bernoulli(y) (Bernoulli likelihood only; evaluation uses the grey levels). Upstream
    /// trains on grey levels; most later VAE work on MNIST binarises this way.
    #[arg(long, value_parser = flag01)]
    pub binarize: Option<bool>,
    /// Upstream's preset and training recipe exactly: its network and objective (mnist_fc:
    /// Dx 200, v1 with the q(z|y) head, alpha 0.4), Adam restarted every step, lr 1e-4,
    /// per-point z-prior KL with eta 1, a random start (flags given with it still override).
    #[arg(long)]
    pub upstream_recipe: bool,
    /// 0: CPU; 1: CUDA (needs a build with --features cuda) (-gpu).
    #[arg(long)]
    pub gpu: Option<u8>,
    /// CUDA device index, 0-based (-gpuID is 1-based upstream; run.sh converts).
    #[arg(long)]
    pub gpu_id: Option<usize>,
    /// Run name: outputs go to <out-dir>/<id> (-_id). Default: <preset>-<date>-<time>.
    #[arg(long)]
    pub id: Option<String>,
    /// Root of run directories.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Directory of the MNIST IDX files (default data/mnist) or SVHN .mat files (data/svhn).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Spiral: read this .t7 or .csv file instead of generating the data. MNIST presets: the
    /// Serket tutorials' data.zip (3000 images), to compare with `gmvae serket`. Table: the
    /// N x D file (.csv, .tsv, whitespace text, .npy, .safetensors).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Spiral: number of points to generate.
    #[arg(long)]
    pub spiral_points: Option<usize>,
    /// Points of the evaluation split saved in latent.safetensors each epoch.
    #[arg(long)]
    pub dump_size: Option<usize>,
    /// Train on the first N training points only (quick checks).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// SVHN: add extra_32x32.mat to the training data.
    #[arg(long)]
    pub svhn_extra: bool,
    /// Continue the run in this directory from its last checkpoint with the options of its
    /// opts.json; only --epoch (to raise the total; recorded), --gpu, --gpu-id and --threads
    /// may be given.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Start this new run from the weights of another run's last checkpoint (BatchNorm
    /// statistics included) instead of a random start: fine-tuning with another recipe. The
    /// networks must match (-K, sizes, --network, --objective); the optimiser starts afresh, the
    /// new run counts its epochs from 1, and opts.json records the source and its epoch.
    #[arg(long, value_name = "RUN_DIR")]
    pub init_from: Option<PathBuf>,
    /// CPU threads of candle's pool, which runs the kernels, matmuls, Adam and convolutions (sets
    /// RAYON_NUM_THREADS; default: all cores; on a 2-core machine busy with other work, 1).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl TrainArgs {
    /// The options of a fresh run: the preset, then these flags on top.
    pub fn resolve(&self, preset: &str) -> Result<Options> {
        if let Some(id) = &self.id {
            crate::run_lock::check_id(id)?;
        }
        let mut o = if self.upstream_recipe {
            Options::upstream(preset)?
        } else {
            Options::preset(preset)?
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { o.$f = v; } )* };
        }
        set!(
            seed,
            learning_rate,
            batch_size,
            epoch,
            x_size,
            w_size,
            k,
            hidden_size,
            z_prior_weight,
            cv_weight,
            n_mc,
            lambda,
            objective,
            continuous,
            input_dimension,
            network,
            n_channels,
            n_filters,
            acc,
            visual_gen,
            gpu,
            gpu_id,
            id,
            out_dir,
            data_dir,
            spiral_points,
            dump_size,
            z_prior,
            warmup_epochs,
            binarize,
            plateau_epochs,
            plateau_tol,
            pretrain_epochs,
            adam_reset
        );
        if self.data.is_some() {
            o.data = self.data.clone();
        }
        if self.train_size.is_some() {
            o.train_size = self.train_size;
        }
        if let Some(dir) = &self.init_from {
            // The mixture start would overwrite the weights read from `dir`.
            if let Some(p @ 1..) = self.pretrain_epochs {
                bail!(
                    "--init-from {} starts from trained weights; --pretrain-epochs {p} would \
                     replace them (leave it out)",
                    dir.display()
                );
            }
            o.pretrain_epochs = 0;
            o.init_from = Some(crate::options::InitFrom {
                run: dir.clone(),
                epoch: 0,
            });
        }
        o.svhn_extra |= self.svhn_extra;
        if let Some(opt) = &self.optimiser {
            if opt != "adam" {
                bail!("--optimiser: only `adam` is implemented, found `{opt}`");
            }
        }
        if o.id.is_empty() {
            o.id = format!("{preset}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
        }
        o.validate()?;
        crate::flag_use::check(&self.option_flags(), &o)?;
        self.check_gpu_id(&o)?;
        Ok(o)
    }

    /// `--gpu-id` only picks among CUDA devices: on the CPU another device than the default
    /// would be silently ignored (restating `--gpu-id 0` is harmless).
    fn check_gpu_id(&self, o: &Options) -> Result<()> {
        if let (Some(id @ 1..), 0) = (self.gpu_id, o.gpu) {
            bail!("--gpu-id {id} picks a CUDA device, but this run is on the CPU (--gpu 0); add --gpu 1");
        }
        Ok(())
    }

    /// The options of a run to resume: `opts.json` of `dir`, with `--epoch` (and device flags).
    pub fn resume_options(&self, preset: &str, dir: &std::path::Path) -> Result<Options> {
        let given = self.option_flags();
        if !given.is_empty() {
            bail!(
                "--resume continues a run with the options in its opts.json; {} cannot change \
                 them (only --epoch, --gpu, --gpu-id and --threads may be given). Start a new \
                 run with another --id instead",
                given.join(", ")
            );
        }
        let mut o = Options::load(dir).with_context(|| format!("--resume {}", dir.display()))?;
        if o.preset != preset {
            bail!(
                "--resume {}: that run used preset `{}`, not `{preset}`",
                dir.display(),
                o.preset
            );
        }
        let name = dir.file_name().context("--resume needs a run directory")?;
        o.id = name.to_string_lossy().into_owned();
        o.out_dir = dir.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        if let Some(e) = self.epoch {
            if e < o.epoch {
                bail!(
                    "--epoch {e} is below the {} epochs of the run in {}; --resume can only raise it",
                    o.epoch,
                    dir.display()
                );
            }
            o.epoch = e;
        }
        if let Some(g) = self.gpu {
            o.gpu = g;
        }
        if let Some(g) = self.gpu_id {
            o.gpu_id = g;
        }
        o.validate()?;
        self.check_gpu_id(&o)?;
        Ok(o)
    }
}

impl TrainArgs {
    /// The flags given that set a run's options (everything but --epoch, the device flags,
    /// --threads and --resume), as they are spelled on the command line.
    fn option_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! given {
            ($($f:ident => $flag:literal),* $(,)?) => { $( if self.$f.is_some() { v.push($flag); } )* };
        }
        given!(
            seed => "--seed", learning_rate => "--learning-rate", batch_size => "--batch-size",
            x_size => "--x-size", w_size => "--w-size", k => "--k", hidden_size => "--hidden-size",
            z_prior_weight => "--z-prior-weight", cv_weight => "--cv-weight", n_mc => "--n-mc",
            lambda => "--lambda", objective => "--objective", continuous => "--continuous",
            input_dimension => "--input-dimension", network => "--network",
            n_channels => "--n-channels", n_filters => "--n-filters", acc => "--acc",
            visual_gen => "--visual-gen", visualise2d => "--visualise2d",
            save_model => "--save-model", report_lower_bound => "--report-lower-bound",
            optimiser => "--optimiser", id => "--id", out_dir => "--out-dir",
            data_dir => "--data-dir", data => "--data", spiral_points => "--spiral-points",
            dump_size => "--dump-size", train_size => "--train-size", binarize => "--binarize",
            z_prior => "--z-prior", warmup_epochs => "--warmup-epochs",
            plateau_epochs => "--plateau-epochs", plateau_tol => "--plateau-tol",
            pretrain_epochs => "--pretrain-epochs", adam_reset => "--adam-reset",
            init_from => "--init-from",
        );
        if self.upstream_recipe {
            v.push("--upstream-recipe");
        }
        if self.svhn_extra {
            v.push("--svhn-extra");
        }

        v
    }
}

/// Lets a closed stdout (`gmvae ... | head`) end the process quietly, as it ends other Unix
/// tools, instead of `println!` panicking on the broken pipe: Rust ignores SIGPIPE by default.
/// Every binary calls this first.
pub fn exit_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// One line for a failed command: every cause, each cut to its first line (candle errors may
/// carry a backtrace after it). Shared by `gmvae` and the plot binaries.
pub fn error_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string().lines().next().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl Command {
    /// A training preset's name and flags; `None` for the other subcommands.
    pub fn training(&self) -> Option<(&'static str, &TrainArgs)> {
        Some(match self {
            Command::Spiral(a) => ("spiral", a),
            Command::MnistFc(a) => ("mnist_fc", a),
            Command::Mnist(a) => ("mnist", a),
            Command::Svhn(a) => ("svhn", a),
            Command::Table(a) => ("table", &a.train),
            Command::Predict(_) | Command::Export(_) | Command::Serket(_) => return None,
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Some((preset, args)) = cli.command.training() else {
        return match &cli.command {
            Command::Predict(a) => crate::predict::run(a).map(|_| ()),
            Command::Export(a) => crate::export::run(a),
            Command::Serket(a) => crate::serket::cli::run(a),
            _ => unreachable!("training() covers the presets"),
        };
    };
    if let Some(t) = args.threads {
        crate::limits::count("--threads", t, crate::limits::MAX_THREADS)?;
        // Must happen before candle builds its thread pool (first tensor op).
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    let (opts, resume) = match &args.resume {
        Some(dir) => (args.resume_options(preset, dir)?, true),
        None => {
            let mut o = args.resolve(preset)?;
            if let Command::Table(t) = &cli.command {
                t.table.apply(&mut o)?;
            }
            (o, false)
        }
    };
    let summary = crate::train::train(&opts, resume)?;
    match summary.last {
        Some(r) => {
            print!(
                "done: {} epochs, lower bound {:.4}",
                r.epoch,
                r.lower_bound()
            );
            if let Some(s) = r.test {
                print!(
                    ", final test_acc {:.4} (hungarian {:.4}, majority {:.4}, NMI {:.4}, ARI {:.4})",
                    s.aae, s.hungarian, s.majority, s.nmi, s.ari
                );
            }
            println!("; outputs in {}", summary.run_dir.display());
        }
        None => println!(
            "nothing to do: {} already finished {} epochs",
            summary.run_dir.display(),
            opts.epoch
        ),
    }
    Ok(())
}
