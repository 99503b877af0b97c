//! The `gmvae` command line: `gmvae <preset> [flags]`, with upstream's flags in kebab case.

use crate::options::table::TableArgs;
use crate::options::table::TableOpt;
use crate::options::{Opt, Options, Resume, Valid};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

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
    /// Prints upstream's camelCase flags with gmvae's, one pair a line (run.sh translates with it).
    #[command(name = "upstream-flags", hide = true)]
    UpstreamFlags,
}

pub use crate::options::PRESETS;

impl Cli {
    /// Parses the process's arguments; each preset's `--help` shows its own defaults.
    pub fn parse_args() -> Self {
        use clap::FromArgMatches;
        Self::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
    }
}

/// The command line, with each preset's values from [`Options::preset`] appended to its flags'
/// help as `[default: ...]` (they are not clap defaults: `--upstream-recipe` and `--resume` must
/// tell a flag left out from one given).
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for preset in PRESETS {
        let opts = Options::preset(preset).expect("every preset resolves");
        cmd = cmd.mut_subcommand(preset, |mut sub| {
            let ids: Vec<String> = sub
                .get_arguments()
                .map(|a| a.get_id().to_string())
                .collect();
            for id in ids {
                if let Some(note) = help_note(&id, &opts) {
                    sub = sub.mut_arg(&id, |a| append_help(a, &note));
                }
            }
            sub
        });
    }
    cmd
}

/// The `[...]` note after the help of the flag with clap id `id` for a run with options `o`:
/// why the run ignores it, or the value it trains with, as a flag would spell it.
fn help_note(id: &str, o: &Options) -> Option<String> {
    let value = match Opt::from_name(id) {
        Some(opt) => {
            if let Some(why) = crate::flag_use::unused(opt, o) {
                return Some(format!("[does nothing for this preset: {why}]"));
            }
            o.json_of(opt)?
        }
        // The table preset's own flags set `o.table`.
        None => o.table.as_ref()?.json_of(TableOpt::from_name(id)?)?,
    };
    let shown = match value {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        // 0/1 flags (--continuous, --acc); switches like --svhn-extra show no default.
        serde_json::Value::Bool(b) => u8::from(b).to_string(),
        _ => return None,
    };
    Some(format!("[default: {shown}]"))
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

/// `gmvae table`: the shared training flags plus the table's own.
#[derive(Debug, Args)]
pub struct TableCmd {
    #[command(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    pub table: crate::options::table::TableArgs,
}

pub use crate::options::TrainArgs;

impl TrainArgs {
    /// The options of a fresh run: the preset, then these flags (and a table's own) on top,
    /// validated.
    pub fn resolve(&self, preset: &str, table: Option<&TableArgs>) -> Result<Valid> {
        let given = self.given();
        if let Some(id) = given.id() {
            crate::options::check_id(&id)?;
        }
        let mut o = if given.has(Opt::upstream_recipe) {
            Options::upstream(preset)?
        } else {
            Options::preset(preset)?
        };
        o.set_given(given, |_| true);
        if let Some(dir) = given.init_from() {
            // The mixture start would overwrite the weights read from `dir`.
            if let Some(p @ 1..) = given.pretrain_epochs() {
                bail!(
                    "--init-from {} starts from trained weights; --pretrain-epochs {p} would \
                     replace them (leave it out)",
                    dir.display()
                );
            }
            o.pretrain_epochs = 0;
            o.init_from = Some(crate::options::InitFrom { run: dir, epoch: 0 });
        }
        if let Some(opt) = given.optimiser() {
            if opt != "adam" {
                bail!("--optimiser: only `adam` is implemented, found `{opt}`");
            }
        }
        if o.id.is_empty() {
            o.id = format!("{preset}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
        }
        if let Some(t) = table {
            t.apply(&mut o);
        }
        let o = o.validated()?;
        crate::flag_use::check(&self.option_flags(), &o)?;
        self.check_gpu_id(&o)?;
        Ok(o)
    }

    /// `--gpu-id` only picks among CUDA devices: on the CPU another device than the default
    /// would be silently ignored (restating `--gpu-id 0` is harmless).
    fn check_gpu_id(&self, o: &Options) -> Result<()> {
        if let (Some(id @ 1..), 0) = (self.given().gpu_id(), o.gpu) {
            bail!("--gpu-id {id} picks a CUDA device, but this run is on the CPU (--gpu 0); add --gpu 1");
        }
        Ok(())
    }

    /// The options of a run to resume: `opts.json` of `dir`, with `--epoch` (and device flags).
    /// A table's own flags (`table`) are refused as the shared ones are: the run keeps its
    /// recorded scaling, likelihood and split.
    pub fn resume_options(
        &self,
        preset: &str,
        dir: &std::path::Path,
        table: Option<&TableArgs>,
    ) -> Result<Valid> {
        let mut flags: Vec<_> = self.option_flags().iter().map(|o| o.long()).collect();
        if let Some(t) = table {
            let given = t.given();
            flags.extend(
                TableOpt::flags()
                    .into_iter()
                    .filter(|(o, _)| given.has(*o))
                    .map(|(o, _)| o.long()),
            );
        }
        if !flags.is_empty() {
            bail!(
                "--resume continues a run with the options in its opts.json; {} cannot change \
                 them (only {} may be given). Start a new run with another --id instead",
                flags.join(", "),
                resumable()
            );
        }
        let context = || format!("--resume {}", dir.display());
        let invalid = || {
            format!(
                "{} holds invalid options",
                dir.join(Options::FILE).display()
            )
        };
        // Read unchecked: validated once below, after the flags that may change it.
        let mut o = Options::read(dir).with_context(context)?;
        if o.preset != preset {
            bail!(
                "--resume {}: that run used preset `{}`, not `{preset}`",
                dir.display(),
                o.preset
            );
        }
        if let Some(e) = self.given().epoch() {
            if e < o.epoch {
                bail!(
                    "--epoch {e} is below the {} epochs of the run in {}; --resume can only raise it",
                    o.epoch,
                    dir.display()
                );
            }
        }
        o.set_given(self.given(), |opt| {
            opt.flag().is_some_and(|f| f.resume != Resume::Refuse)
        });
        // The file is validated as written (its id included), then placed in `dir`.
        let o = o
            .validated()
            .with_context(invalid)
            .with_context(context)?
            .in_run_dir(dir)?;
        self.check_gpu_id(&o)?;
        Ok(o)
    }

    /// The flags given that set a run's options (those `--resume` refuses), in `--help` order.
    fn option_flags(&self) -> Vec<Opt> {
        let given = self.given();
        Opt::flags()
            .into_iter()
            .filter(|(o, f)| f.resume == Resume::Refuse && given.has(*o))
            .map(|(o, _)| o)
            .collect()
    }
}

/// The flags `--resume` accepts besides itself, as its refusal lists them.
fn resumable() -> String {
    let flags: Vec<_> = Opt::flags()
        .into_iter()
        .filter(|(o, f)| f.resume != Resume::Refuse && *o != Opt::resume)
        .map(|(_, f)| f.long)
        .collect();
    match flags.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Upstream's camelCase flags and gmvae's, one `upstream --ours` pair a line: `run.sh`'s
/// translation table.
pub fn upstream_flags() -> String {
    Opt::flags()
        .into_iter()
        .filter_map(|(_, f)| Some(format!("{} {}\n", f.upstream?, f.long)))
        .collect()
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
            Command::Predict(_)
            | Command::Export(_)
            | Command::Serket(_)
            | Command::UpstreamFlags => return None,
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Some((preset, args)) = cli.command.training() else {
        return match &cli.command {
            Command::Predict(a) => crate::predict::run(a).map(|_| ()),
            Command::Export(a) => crate::export::run(a, crate::restarts::export),
            Command::Serket(a) => crate::serket::cli::run(a),
            Command::UpstreamFlags => {
                print!("{}", upstream_flags());
                Ok(())
            }
            _ => unreachable!("training() covers the presets"),
        };
    };
    if let Some(t) = args.given().threads() {
        crate::limits::count("--threads", t, crate::limits::MAX_THREADS)?;
        // Must happen before candle builds its thread pool (first tensor op).
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    let table = match &cli.command {
        Command::Table(t) => Some(&t.table),
        _ => None,
    };
    let (opts, resume) = match args.given().resume() {
        Some(dir) => (args.resume_options(preset, &dir, table)?, true),
        None => (args.resolve(preset, table)?, false),
    };
    let workers = restart_workers(opts.n_init);
    let summary = crate::restarts::train(&opts, resume, workers)?.summary;
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

/// How many restarts of `--n-init` train side by side: `--threads` (which set
/// `RAYON_NUM_THREADS`), else the cores, one kernel thread each. Sets candle's pool to one
/// thread before it starts, so that a restart's numbers do not depend on how many run at once.
fn restart_workers(n_init: usize) -> usize {
    if n_init <= 1 {
        return 1;
    }
    let from_env = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&t| t > 0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = from_env.unwrap_or(cores).min(n_init);
    // No tensor has been made yet: candle's pools start on the first operation.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    workers
}
