//! `gmvae serket <pipeline>`: the tutorial pipelines, built and updated as the tutorial
//! scripts do, with per-round scores in `<out>/summary.json`.

use super::data::{self, Matrix, Source, DEFAULT_ZIP, ZIP_CATEGORY, ZIP_IMAGES, ZIP_SPEECH};
use super::framework::{Module, Observation, Serket};
use super::gmm::{Gmm, GmmRound};
use super::mlda::{Mlda, MldaRound};
use super::vae::{Vae, VaeConfig, VaeLikelihood, VaePreset, VaeRound};
use crate::data::scale::LikelihoodChoice;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `gmvae serket`.
#[derive(Debug, clap::Args)]
pub struct SerketArgs {
    #[command(subcommand)]
    pub pipeline: Pipeline,
}

/// The two tutorial pipelines.
#[derive(Debug, clap::Subcommand)]
pub enum Pipeline {
    /// VAE + GMM on the 3000 MNIST images.
    VaeGmm(PipelineArgs),
    /// VAE + GMM + MLDA on the images and the paired speech features.
    VaeGmmMlda(PipelineArgs),
}

/// Data, schedule and model settings shared by both pipelines.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    /// Images: the tutorial's data.zip (member data/data1.txt), or any N x D table read as by
    /// `gmvae table`: whitespace text (LF or CRLF), CSV/TSV (header optional), .npy or
    /// .safetensors.
    #[arg(long, default_value = DEFAULT_ZIP)]
    pub data: PathBuf,
    /// A table's label column (scores only; never trained on): a header name or a 0-based index
    /// (safetensors: a 1-D tensor's name). Instead of --category.
    #[arg(long, value_name = "NAME|INDEX")]
    pub label_column: Option<String>,
    /// Safetensors --data: the 2-D data tensor (default: the file's only 2-D tensor).
    #[arg(long)]
    pub tensor: Option<String>,
    #[command(flatten)]
    pub text: crate::options::table::TextFlags,
    /// Scaling of a table's columns [default: auto = none when every value is in [0,1], else
    /// standardize (not `gmvae table`'s minmax for integers: Serket's GMM then ends in one
    /// class)]. The zip's images are used as they are.
    #[arg(long, value_enum)]
    pub scale: Option<crate::data::scale::Scale>,
    /// VAE likelihood [default: auto = bernoulli when every (scaled) value is in [0,1], else
    /// gaussian].
    #[arg(long, value_enum)]
    pub likelihood: Option<crate::data::scale::LikelihoodChoice>,
    /// sigma of the Gaussian likelihood in the scaled units, fixed [default: one sigma per
    /// column, learned with the VAE].
    #[arg(long)]
    pub sigma: Option<f64>,
    /// alpha, the weight of the VAE's KL term (1: the ELBO).
    #[arg(long, default_value_t = 1.0)]
    pub kl_weight: f64,
    /// Speech HAC counts (vae-gmm-mlda only): a text matrix; default: member data/data2.txt of
    /// --data when it is a zip.
    #[arg(long)]
    pub speech: Option<PathBuf>,
    /// True labels, one per line (scores only; never used for training); default: member
    /// data/category.txt of --data when it is a zip (same labels as VAE+GMM/category.txt).
    #[arg(long)]
    pub category: Option<PathBuf>,
    /// Output root; modules write module%03d_<name>/ folders under it (alias --out).
    #[arg(long = "out-dir", alias = "out", default_value = "runs/serket")]
    pub out: PathBuf,
    /// Write into a non-empty --out-dir (files of an earlier run are overwritten).
    #[arg(long)]
    pub force: bool,
    /// Rounds of updates (each updates every module once, bottom-up).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seed of every random draw (weights, batches, noise, Gibbs sampling); 1 as for gmvae.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// VAE generation: upstream (HEAD; default) or tutorial (2019 code).
    #[arg(long, value_enum, default_value_t = VaePreset::Upstream)]
    pub preset: VaePreset,
    /// VAE epochs per update (alias --epochs).
    #[arg(long = "epoch", alias = "epochs", default_value_t = 200)]
    pub epochs: usize,
    /// VAE mini-batch size.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// VAE latent dimension.
    #[arg(long, default_value_t = 18)]
    pub latent: usize,
    /// GMM classes and MLDA topics.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// GMM Gibbs sweeps per update.
    #[arg(long, default_value_t = 100)]
    pub gmm_iters: usize,
    /// MLDA Gibbs iterations per update.
    #[arg(long, default_value_t = 100)]
    pub mlda_iters: usize,
    /// MLDA words per document for each modality (speech, GMM).
    #[arg(long, value_delimiter = ',', default_value = "200,200")]
    pub weights: Vec<f64>,
    /// Skip the 3000 x 784 reconstruction file.
    #[arg(long)]
    pub no_reconstructions: bool,
}

impl Default for PipelineArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: PipelineArgs,
        }
        P::parse_from(["serket"]).a
    }
}

impl PipelineArgs {
    /// Checks every count and weight against its bound before anything is read or allocated.
    pub fn validate(&self) -> Result<()> {
        use crate::limits as l;
        l::count("--k", self.k, l::MAX_K)?;
        l::count("--latent", self.latent, l::MAX_LATENT)?;
        l::count("--rounds", self.rounds, l::MAX_EPOCHS)?;
        l::count(typed_epoch_flag(), self.epochs, l::MAX_EPOCHS)?;
        l::count("--batch-size", self.batch_size, l::MAX_BATCH)?;
        l::count("--gmm-iters", self.gmm_iters, l::MAX_EPOCHS)?;
        l::count("--mlda-iters", self.mlda_iters, l::MAX_EPOCHS)?;
        for (flag, v) in [
            ("--sigma", self.sigma),
            ("--kl-weight", Some(self.kl_weight)),
        ]
        .into_iter()
        .filter_map(|(f, v)| Some((f, v?)))
        {
            if !(v.is_finite() && v > 0.0) {
                anyhow::bail!("{flag} must be a finite number > 0, found {v}");
            }
        }
        for &w in &self.weights {
            if !(w.is_finite() && w > 0.0 && w <= l::MAX_MLDA_WEIGHT) {
                anyhow::bail!(
                    "--weights: each must be a number of words per document in (0, {}], found {w}",
                    l::MAX_MLDA_WEIGHT
                );
            }
        }
        Ok(())
    }
}

/// `--epoch` or its alias `--epochs`, as the user typed it (for messages).
fn typed_epoch_flag() -> &'static str {
    let alias = std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--epochs" || a.starts_with("--epochs=")
    });
    if alias {
        "--epochs"
    } else {
        "--epoch"
    }
}

/// Inputs of a pipeline.
pub struct Inputs {
    pub images: Matrix,
    pub speech: Option<Matrix>,
    pub labels: Option<Vec<usize>>,
    /// The VAE's likelihood for these images (`--likelihood`, `auto` settled by their values).
    pub likelihood: VaeLikelihood,
}

/// A table file (not the zip) through `gmvae table`'s reader, scaled by `--scale`, with its
/// labels when `--label-column` names them.
fn read_table(args: &PipelineArgs) -> Result<(Matrix, Option<Vec<usize>>)> {
    use crate::data::reader::TableReader;
    use crate::data::scale::Scaler;
    use crate::data::table::label_classes;
    let mut reader = TableReader::open(
        &args.data,
        args.label_column.as_deref(),
        args.tensor.as_deref(),
        &args.text.rules(),
    )?;
    let d = reader.d;
    let mut all = reader.read_all()?;
    let scale = args.scale.unwrap_or_default().settle_by_range(&all.y);
    let constant = crate::data::scale::constant_note(&all.y, d, reader.columns.as_deref());
    Scaler::fit(scale, &all.y, d).apply(&mut all.y);
    println!(
        "serket: {} has {} rows x {d} columns; scaling {}",
        args.data.display(),
        all.rows,
        format!("{scale:?}").to_lowercase()
    );
    for note in reader.notes().into_iter().chain(constant) {
        println!("serket: {note}");
    }
    let column = args.label_column.as_deref().unwrap_or_default();
    let labels = all
        .labels
        .as_ref()
        .map(|l| label_classes(l, column).map(|(idx, _)| idx))
        .transpose()?;
    let y = all.y.into_iter().map(f64::from).collect();
    Ok((Matrix::new(all.rows, d, y)?, labels))
}

/// How the Gaussian VAE's σ is set, for the likelihood line.
fn sigma_note(likelihood: VaeLikelihood, sigma: Option<f64>) -> String {
    match (likelihood, sigma) {
        (VaeLikelihood::Bernoulli, _) => String::new(),
        (_, Some(s)) => format!(", sigma {s} fixed (--sigma)"),
        (_, None) => ", sigma learned per column".into(),
    }
}

impl Inputs {
    /// Reads the inputs named by `args`; `with_speech` for the MLDA pipeline.
    pub fn load(args: &PipelineArgs, with_speech: bool) -> Result<Self> {
        let img_src = Source::from_path(&args.data, ZIP_IMAGES);
        let zip = matches!(img_src, Source::Zip { .. });
        let (images, table_labels) = if zip {
            for (flag, given) in [
                ("--label-column", args.label_column.is_some()),
                ("--tensor", args.tensor.is_some()),
                ("--scale", args.scale.is_some()),
            ] {
                if given {
                    anyhow::bail!(
                        "{flag} is for a table --data; the zip's images are used as they are"
                    );
                }
            }
            (img_src.read()?, None)
        } else {
            read_table(args)?
        };
        let mut rows = vec![(img_src.to_string(), images.rows)];
        let labels = match (table_labels, &args.category) {
            (Some(_), Some(_)) => {
                anyhow::bail!("--category and --label-column both give labels; pass one")
            }
            (Some(l), None) => Some(l),
            (None, category) => match (category, zip) {
                (Some(p), _) => Some(Source::Text(p.clone())),
                (None, true) => Some(Source::from_path(&args.data, ZIP_CATEGORY)),
                (None, false) => None,
            }
            .map(|s| -> Result<_> {
                let l = s.read_labels()?;
                rows.push((s.to_string(), l.len()));
                Ok(l)
            })
            .transpose()?,
        };
        let unit = images.data.iter().all(|v| (0.0..=1.0).contains(v));
        let likelihood = match args.likelihood.unwrap_or_default() {
            LikelihoodChoice::Auto if unit => VaeLikelihood::Bernoulli,
            LikelihoodChoice::Auto => VaeLikelihood::Gaussian,
            LikelihoodChoice::Bernoulli if !unit => anyhow::bail!(
                "--likelihood bernoulli needs values in [0, 1]; {} has others (try --scale \
                 minmax, or --likelihood gaussian)",
                args.data.display()
            ),
            LikelihoodChoice::Bernoulli => VaeLikelihood::Bernoulli,
            LikelihoodChoice::Gaussian => VaeLikelihood::Gaussian,
        };
        println!(
            "serket: vae likelihood {}{}{}",
            format!("{likelihood:?}").to_lowercase(),
            match args.likelihood.unwrap_or_default() {
                LikelihoodChoice::Auto if unit => " (auto: every value is in [0,1])",
                LikelihoodChoice::Auto => " (auto: values outside [0,1])",
                _ => "",
            },
            sigma_note(likelihood, args.sigma)
        );
        let speech = if with_speech {
            let s = match (&args.speech, zip) {
                (Some(p), _) => Source::Text(p.clone()),
                (None, true) => Source::from_path(&args.data, ZIP_SPEECH),
                (None, false) => {
                    anyhow::bail!("vae-gmm-mlda needs --speech when --data is not a zip")
                }
            };
            let m = s.read()?;
            rows.push((s.to_string(), m.rows));
            Some(m)
        } else {
            None
        };
        let named: Vec<(&str, usize)> = rows.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        data::check_rows(&named)?;
        if images.rows < args.k {
            anyhow::bail!(
                "--k {}: the GMM needs at least one row per component; {} has {} rows",
                args.k,
                args.data.display(),
                images.rows
            );
        }
        Ok(Self {
            images,
            speech,
            labels,
            likelihood,
        })
    }
}

/// The true labels, one per line, as a run directory keeps them (`<out>/category.txt`) so that
/// plots of the run need not find the data again.
pub const CATEGORY_FILE: &str = "category.txt";

fn write_category(out: &Path, labels: Option<&Vec<usize>>) -> Result<()> {
    if let Some(l) = labels {
        let text: String = l.iter().map(|c| format!("{c}\n")).collect();
        crate::atomic::write_str(&out.join(CATEGORY_FILE), &text)?;
    }
    Ok(())
}

/// Per-round records of every module of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub pipeline: String,
    pub seed: u64,
    pub vae: VaeConfig,
    pub rounds: usize,
    pub gmm_iters: usize,
    pub mlda_iters: usize,
    pub vae_history: Vec<VaeRound>,
    pub gmm_history: Vec<GmmRound>,
    pub mlda_history: Vec<MldaRound>,
    pub wall_seconds: f64,
}

fn vae_config(args: &PipelineArgs, likelihood: VaeLikelihood) -> VaeConfig {
    let mut cfg = VaeConfig::preset(args.preset);
    cfg.epochs = args.epochs;
    cfg.batch_size = Some(args.batch_size);
    (cfg.likelihood, cfg.sigma, cfg.kld_weight) = (likelihood, args.sigma, args.kl_weight);
    cfg
}

/// The VAE+GMM tutorial: `obs → vae → gmm`, `rounds` × [vae, gmm].
pub fn vae_gmm(inputs: Inputs, args: &PipelineArgs) -> Result<Summary> {
    let t0 = std::time::Instant::now();
    write_category(&args.out, inputs.labels.as_ref())?;
    let srk = Serket::new(&args.out, args.seed);
    let obs = Observation::new(&srk, inputs.images); // module000_obs
    let mut vae1 = Vae::new(&srk, args.latent, vae_config(args, inputs.likelihood)); // module001_vae
    let mut gmm1 = Gmm::new(&srk, args.k, inputs.labels).iters(args.gmm_iters); // module002_gmm
    vae1.save_reconstructions = !args.no_reconstructions;
    vae1.show_progress = true;
    vae1.connect(&[&obs]);
    gmm1.connect(&[&vae1]);
    for r in 0..args.rounds {
        vae1.update()?;
        gmm1.update()?;
        report(r, &vae1.history, &gmm1.history, &[]);
    }
    let summary = Summary {
        pipeline: "vae-gmm".into(),
        seed: args.seed,
        vae: vae1.cfg.clone(),
        rounds: args.rounds,
        gmm_iters: args.gmm_iters,
        mlda_iters: 0,
        vae_history: vae1.history,
        gmm_history: gmm1.history,
        mlda_history: Vec::new(),
        wall_seconds: t0.elapsed().as_secs_f64(),
    };
    write_summary(&args.out, &summary)?;
    Ok(summary)
}

/// The VAE+GMM+MLDA tutorial: `obs1 → vae → gmm`, `(obs2, gmm) → mlda`,
/// `rounds` × [vae, gmm, mlda].
pub fn vae_gmm_mlda(inputs: Inputs, args: &PipelineArgs) -> Result<Summary> {
    let t0 = std::time::Instant::now();
    let speech = inputs
        .speech
        .context("vae-gmm-mlda needs the speech matrix")?;
    write_category(&args.out, inputs.labels.as_ref())?;
    let srk = Serket::new(&args.out, args.seed);
    let obs1 = Observation::new(&srk, inputs.images); // module000_obs
    let obs2 = Observation::new(&srk, speech); // module001_obs
    let mut vae1 = Vae::new(&srk, args.latent, vae_config(args, inputs.likelihood)); // module002_vae
    let mut gmm1 = Gmm::new(&srk, args.k, inputs.labels.clone()).iters(args.gmm_iters); // module003_gmm
    let mut mlda1 =
        Mlda::new(&srk, args.k, Some(args.weights.clone()), inputs.labels).iters(args.mlda_iters); // module004_mlda
    vae1.save_reconstructions = !args.no_reconstructions;
    vae1.show_progress = true;
    vae1.connect(&[&obs1]);
    gmm1.connect(&[&vae1]);
    mlda1.connect(&[&obs2, &gmm1]);
    for r in 0..args.rounds {
        vae1.update()?;
        gmm1.update()?;
        mlda1.update()?;
        report(r, &vae1.history, &gmm1.history, &mlda1.history);
    }
    let summary = Summary {
        pipeline: "vae-gmm-mlda".into(),
        seed: args.seed,
        vae: vae1.cfg.clone(),
        rounds: args.rounds,
        gmm_iters: args.gmm_iters,
        mlda_iters: args.mlda_iters,
        vae_history: vae1.history,
        gmm_history: gmm1.history,
        mlda_history: mlda1.history,
        wall_seconds: t0.elapsed().as_secs_f64(),
    };
    write_summary(&args.out, &summary)?;
    Ok(summary)
}

fn report(r: usize, vae: &[VaeRound], gmm: &[GmmRound], mlda: &[MldaRound]) {
    let mut line = format!("round {r}:");
    if let Some(v) = vae.last() {
        line += &format!(" vae loss {:.2} ({:.1}s)", v.final_loss, v.seconds);
    }
    if let Some(g) = gmm.last() {
        if let Some(s) = g.scores {
            line += &format!(
                " | gmm acc {:.4} (hungarian {:.4}) nmi {:.4} classes {} ({:.1}s)",
                s.greedy, s.hungarian, s.nmi, s.used_classes, g.seconds
            );
        }
    }
    if let Some(m) = mlda.last() {
        if let Some(s) = m.scores {
            line += &format!(
                " | mlda acc {:.4} (hungarian {:.4}) nmi {:.4} ({:.1}s)",
                s.greedy, s.hungarian, s.nmi, m.seconds
            );
        }
    }
    println!("{line}");
}

/// Refuses to write into a non-empty output directory unless `force`.
pub fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    // The lock file of an earlier (possibly failed) pipeline is not output.
    let non_empty = std::fs::read_dir(out).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name() != std::ffi::OsStr::new(crate::run_lock::FILE))
    });
    if non_empty && !force {
        anyhow::bail!(
            "--out-dir {} is not empty (an earlier run?); choose another directory, or pass \
             --force to overwrite its files",
            out.display()
        );
    }
    Ok(())
}

/// Temporary files of killed writes in the output root and its module folders.
fn remove_stale_temporaries(out: &Path) -> Result<()> {
    // Modules write module%03d_<name>/ and its per-round folders: three levels.
    fn walk(dir: &Path, depth: usize) -> Result<usize> {
        let mut removed = crate::atomic::remove_stale(dir, false)?;
        if depth > 0 {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    removed += walk(&e.path(), depth - 1)?;
                }
            }
        }
        Ok(removed)
    }
    let removed = walk(out, 2)?;
    if removed > 0 {
        eprintln!(
            "removed {removed} temporary file(s) left in {} by a killed run",
            out.display()
        );
    }
    Ok(())
}

fn write_summary(out: &Path, s: &Summary) -> Result<()> {
    crate::atomic::write_str(&out.join("summary.json"), &serde_json::to_string_pretty(s)?)
}

/// Runs a pipeline.
pub fn run(args: &SerketArgs) -> Result<()> {
    let (Pipeline::VaeGmm(a) | Pipeline::VaeGmmMlda(a)) = &args.pipeline;
    a.validate()?;
    // Before the lock: its file would make the folder non-empty.
    check_out_dir(&a.out, a.force)?;
    // One pipeline per output folder: two would interleave their module files.
    let _lock = crate::run_lock::RunLock::acquire_output(&a.out)?;
    remove_stale_temporaries(&a.out)?;
    let s = match &args.pipeline {
        Pipeline::VaeGmm(a) => vae_gmm(Inputs::load(a, false)?, a)?,
        Pipeline::VaeGmmMlda(a) => vae_gmm_mlda(Inputs::load(a, true)?, a)?,
    };
    println!(
        "{} finished in {:.1}s; outputs in {}",
        s.pipeline,
        s.wall_seconds,
        a.out.display()
    );
    Ok(())
}
