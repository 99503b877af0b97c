//! The resolved options of a training run (upstream `opts`), written to `opts.json`, and the
//! upstream `run.sh` presets: one row per option in [`Options`]' table, from which the flags,
//! their `--help` defaults, the `--resume` policy and `run.sh`'s translations follow. A new flag
//! is a row there plus the code that reads it.

pub mod decl;
pub mod table;

use crate::objective::{ObjectiveKind, ZPriorMode};
use anyhow::{bail, Result};
use decl::declare_options;
pub use decl::{Flag, Resume};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Training data set (upstream `-dataSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DataSet {
    Spiral,
    Mnist,
    Svhn,
    /// Your own N x D table (`gmvae table --data FILE`).
    Table,
}

/// How `--n-init` chooses the restart it keeps (`--restart-choice`); see `restarts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RestartChoice {
    /// The best final training lower bound (scikit-learn's rule for `n_init`). Runs recorded
    /// before the choice existed used it.
    #[default]
    Bound,
    /// The restart whose clustering of the training rows has the highest mean adjusted Rand
    /// index with the other restarts' clusterings: the medoid of the restarts.
    Agreement,
    /// The restart that assigns the training rows most confidently: the highest mean over rows
    /// of max_k q(z=k|y). On twelve MNIST seeds it kept the best of three in 93% of groups
    /// (experiments/accuracy/README.md, "Which label-free criterion picks").
    Confidence,
}

impl RestartChoice {
    fn is_bound(&self) -> bool {
        *self == RestartChoice::Bound
    }

    /// The flag's spelling of the choice (`agreement`).
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// Network family (upstream `-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    Fc,
    Conv,
}

declare_options! {
    /// Every setting of a run, one row per option: its type, its value in each preset and
    /// recipe (`Layer`), and its flag: the help (the doc comment), where `--help` lists it,
    /// how the flag sets it, upstream's spelling and what `--resume` does with it (see
    /// `decl::declare_options!`). Field names follow upstream's flags in snake case; the
    /// order of the fields is that of `opts.json`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Options;
    /// Flags shared by every training preset, one per flag row; each given overrides the
    /// preset's value.
    pub struct TrainArgs;
    ids Opt, given Given, layers Layer;
    fields {
        /// The preset the run started from (`spiral`, `mnist_fc`, `mnist`, `svhn`, `table`).
        preset: String = { main: String::new() };
        /// Training data set (upstream `-dataSet`, which `run.sh` checks against the preset).
        data_set: DataSet = {
            main: DataSet::Mnist, spiral: DataSet::Spiral, svhn: DataSet::Svhn,
            table: DataSet::Table
        };
        /// Network family: fc or conv (-network).
        network: NetworkKind = {
            main: NetworkKind::Fc, mnist: NetworkKind::Conv, svhn: NetworkKind::Conv
        } => 200 set NetworkKind, upstream "network";
        /// Objective: v1 (paper v1, q(z|y) head and CV term) or v2 (version2 branch, p(z|x,w)).
        // The svhn branch (gmvae-upstream.md §2.3): version2's objective, no q(z|y) head, alpha
        // weighting KL(p(z|x,w) || U), and no free bits (--lambda 0).
        objective: ObjectiveKind = {
            main: ObjectiveKind::V1, svhn: ObjectiveKind::V2, fc_recipe: ObjectiveKind::V2
        } => 170 set ObjectiveKind;
        /// Seed of every random source: init, data generation, shuffling, noise (upstream -seed).
        seed: u64 = { main: 1 } => 0 set u64, upstream "seed";
        /// Adam learning rate (-learningRate).
        learning_rate: f64 = {
            main: 1e-4, table: 1e-3, fc_recipe: 3e-4, upstream_recipe: 1e-4
        } => 10 set f64, upstream "learningRate";
        /// Minibatch size N (-batchSize).
        batch_size: usize = { main: 50, spiral: 200, svhn: 128, table: 100 }
            => 20 set usize, upstream "batchSize";
        /// Number of epochs (-epoch).
        epoch: usize = { main: 100, spiral: 500, svhn: 500, table: 100 }
            => 30 set usize, upstream "epoch", resume Raise;
        /// Dx, size of the Gaussian latent x (-xSize).
        x_size: usize = { main: 200, spiral: 2, table: 10, fc_recipe: 10 }
            => 40 set usize, upstream "xSize";
        /// Dw, size of the latent w (-wSize).
        w_size: usize = { main: 150, spiral: 2, table: 4 } => 50 set usize, upstream "wSize";
        /// K, number of mixture components / clusters (-K).
        #[serde(rename = "K")]
        k: usize = { main: 15, spiral: 8, mnist_fc: 14, mnist: 14, svhn: 10, table: 10 }
            => 60 set usize [.short('K')], upstream "K";
        /// H, hidden width (-hiddenSize).
        hidden_size: usize = { main: 500, spiral: 100, mnist_fc: 1000, table: 256 }
            => 70 set usize, upstream "hiddenSize";
        /// eta, weight of the z-prior KL (-zPriorWeight; v1).
        z_prior_weight: f64 = { main: 1.0, upstream_recipe: 1.0 }
            => 80 set f64, upstream "zPriorWeight";
        /// alpha, gradient weight of the consistency violation (v1) or of the z-prior (v2)
        /// (-cvWeight).
        cv_weight: f64 = {
            main: 1.0, spiral: 2.0, mnist_fc: 0.4, mnist: 0.4, svhn: 1.0, fc_recipe: 5.0
        } => 90 set f64, upstream "cvWeight";
        /// M, Monte-Carlo samples of (x, w) per point (-nMC).
        n_mc: usize = { main: 1 } => 100 set usize, upstream "nMC";
        /// Free-bits threshold in nats per point for the v2 objective (-lambda).
        lambda: f64 = { main: 0.5, svhn: 0.0, fc_recipe: 0.0 } => 110 set f64, upstream "lambda";
        /// 1: Gaussian likelihood p(y|x); 0: Bernoulli (-continuous; fc decoder only).
        continuous: bool = { main: false, spiral: true }
            => 180 set bool [.value_parser(decl::flag01)], upstream "continuous";
        /// 1: flat input; 2: images (-inputDimension; conv needs 2).
        input_dimension: u8 = { main: 1, mnist: 2, svhn: 2 }
            => 190 set u8, upstream "inputDimension";
        /// Input channels of the conv net (-nChannels).
        n_channels: usize = { main: 1, svhn: 3 } => 210 set usize, upstream "nChannels";
        /// F, filters of the first conv layer (-nFilters).
        n_filters: usize = { main: 16, svhn: 64 } => 220 set usize, upstream "nFilters";
        /// 1: clustering accuracy every epoch (-ACC).
        acc: bool = {
            main: false, spiral: true, mnist_fc: true, mnist: true, svhn: true, table: true
        } => 230 set bool [.value_parser(decl::flag01)], upstream "ACC";
        /// Write samples.png every N epochs; 0 = never (-visualGen).
        visual_gen: usize = { main: 0, mnist_fc: 1, mnist: 1, svhn: 1 }
            => 240 set usize, upstream "visualGen";
        /// 0: CPU; 1: CUDA (needs a build with --features cuda) (-gpu).
        gpu: u8 = { main: 0 } => 320 set u8, upstream "gpu", resume Change;
        /// CUDA device index, 0-based (-gpuID is 1-based upstream; run.sh converts).
        gpu_id: usize = { main: 0 } => 330 set usize, upstream "gpuID", resume Change;
        /// 1 (or no value): upstream's Adam, whose state restarts every step (sign-SGD-like;
        /// §2.4); 0: ordinary Adam with persistent state. Default: the preset's (`mnist`: 1, as
        /// upstream; the other presets: 0).
        adam_reset: bool = { main: false, fc_recipe: false, upstream_recipe: true }
            => 290 set bool [
                .value_parser(decl::flag01).num_args(0..=1).default_missing_value("1")
            ];
        /// Run name: outputs go to <out-dir>/<id> (-_id). Default: <preset>-<date>-<time>.
        id: String = { main: String::new() } => 340 set String, upstream "_id";
        /// Root of run directories.
        out_dir: PathBuf = { main: "experiments".into() } => 350 set PathBuf;
        /// Directory of the MNIST IDX files (default data/mnist) or SVHN .mat files (data/svhn).
        data_dir: PathBuf = { main: "data/mnist".into(), svhn: "data/svhn".into() }
            => 360 set PathBuf;
        /// Spiral: read this .t7 or .csv file instead of generating the data. MNIST presets: the
        /// Serket tutorials' data.zip (3000 images), to compare with `gmvae serket`. Table: the
        /// N x D file (.csv, .tsv, whitespace text, .npy, .safetensors).
        data: Option<PathBuf> = { main: None } => 370 some PathBuf;
        /// Spiral: number of points to generate.
        spiral_points: usize = { main: 5000 } => 380 set usize;
        /// Points of the evaluation split saved in latent.safetensors each epoch.
        dump_size: usize = { main: 5000 } => 390 set usize;
        /// SVHN: add extra_32x32.mat to the training data.
        svhn_extra: bool = { main: false } => 410 set bool [.action(clap::ArgAction::SetTrue)];
        /// Train on the first N training points only (quick checks).
        #[serde(default)]
        train_size: Option<usize> = { main: None } => 400 some usize;
        /// z-prior KL the gradient follows: sample = per point, the ELBO's (upstream);
        /// marginal = KL of the batch's mean cluster posterior to uniform (balances component
        /// usage without flattening each point's posterior). v1: of q(z|y), weighted by eta;
        /// v2: of p(z|x,w), weighted by alpha. The logged lower bound is always the ELBO.
        #[serde(default)]
        z_prior: ZPriorMode = {
            main: ZPriorMode::Sample,
            fc_recipe: ZPriorMode::Marginal,
            upstream_recipe: ZPriorMode::Sample
        } => 120 set ZPriorMode;
        /// KL warm-up: ramp the conditional prior's gradient weight from 0 to 1 over N epochs
        /// (fractions allowed; 0 = off).
        #[serde(default)]
        warmup_epochs: f64 = { main: 0.0, upstream_recipe: 0.0 } => 130 set f64;
        /// beta: weight of the augmentation consistency term, sum_n KL(p(z|y_n) || p(z|T(y_n)))
        /// for a random small rotation, shear, scale and shift T of each training image
        /// (images only; 0 = off, as upstream).
        #[serde(default)]
        augment_weight: f64 = { main: 0.0, fc_recipe: 10.0, upstream_recipe: 0.0 } => 135 set f64;
        /// 1: dynamic binarisation: each training batch's grey levels y are replaced by a fresh
        /// draw of Bernoulli(y) (Bernoulli likelihood only; evaluation uses the grey levels).
        /// Upstream trains on grey levels; most later VAE work on MNIST binarises this way.
        #[serde(default)]
        binarize: bool = { main: false } => 300 set bool [.value_parser(decl::flag01)];
        /// Stop once the training lower bound has improved by less than --plateau-tol (relative)
        /// over this many epochs (0 = never; test accuracy is never used to stop).
        #[serde(default)]
        plateau_epochs: usize = { main: 0 } => 140 set usize;
        /// Relative improvement of the lower bound that counts as progress (see --plateau-epochs).
        #[serde(default = "default_plateau_tol")]
        plateau_tol: f64 = { main: default_plateau_tol() } => 150 set f64;
        /// Train N restarts from seeds derived from --seed (the first is --seed itself) and keep
        /// one by --restart-choice (no labels are used), as scikit-learn's n_init. Each restart
        /// is a run in <run>/restarts/<r>; the restarts run side by side, one thread each, up to
        /// --threads at a time.
        #[serde(default = "default_n_init", skip_serializing_if = "is_one")]
        // table: 5 restarts chosen by agreement raise the suite's mean and narrow its seed spread
        // (experiments/own-data/README.md, "Restarts chosen by agreement").
        n_init: usize = { main: 1, table: 5 } => 155 set usize;
        /// Which restart of --n-init is kept: `bound`, the best final training lower bound
        /// (scikit-learn's rule); `agreement`, the one whose clustering of the training rows
        /// agrees best with the other restarts' (highest mean adjusted Rand index: their
        /// consensus); `confidence`, the one whose cluster posterior is most confident on the
        /// training rows (highest mean of max_k q(z=k|y)). No labels are used.
        #[serde(default, skip_serializing_if = "RestartChoice::is_bound")]
        restart_choice: RestartChoice = {
            main: RestartChoice::Bound, table: RestartChoice::Agreement
        } => 156 set RestartChoice;
        /// With --n-init: train every restart only N epochs, keep one by --restart-choice, and
        /// continue only the kept one to --epoch (0: every restart trains all epochs). A choice
        /// after a few epochs costs N x (--n-init - 1) epochs instead of --n-init runs.
        #[serde(default, skip_serializing_if = "is_zero")]
        restart_epochs: usize = { main: 0 } => 157 set usize;
        /// The seed of the data (the held-out split of a table, a generated spiral): --seed,
        /// unless a restart of --n-init set it to its run's --seed, so that every restart sees
        /// the same rows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_seed: Option<u64> = { main: None };
        /// Before training, train q(x|y)'s mean and p(y|x) as an autoencoder for N epochs, fit a
        /// K-component diagonal Gaussian mixture to the codes, and start p(x|w,z) and q(z|y) from
        /// it (VaDE's start; 0 = off).
        #[serde(default)]
        // table: the suite's ablation (experiments/own-data/README.md): a 100-epoch start gives
        // digits and breast cancer their best scores, and, with auto scaling, the best mean over
        // the five small sets.
        pretrain_epochs: usize = { main: 0, table: 100, fc_recipe: 20, upstream_recipe: 0 }
            => 160 set usize;
        /// Start this new run from the weights of another run's last checkpoint (BatchNorm
        /// statistics included) instead of a random start: fine-tuning with another recipe. The
        /// networks must match (-K, sizes, --network, --objective); the optimiser starts afresh,
        /// the new run counts its epochs from 1, and opts.json records the source and its epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init_from: Option<InitFrom> = { main: None }
            => 430 own PathBuf [.value_name("RUN_DIR")];
        /// The table preset's settings and, after training, its fitted scaling.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<table::TableOptions> = {
            main: None,
            table: Some(table::TableOptions {
                test_fraction: 0.2,
                ..Default::default()
            })
        };
        /// The opts.json format: 2 since the v2 objective honours `z_prior`. A file without it
        /// is format 1; the oldest of those are of binaries whose v2 ignored the field (and
        /// carried the then-default `marginal` unused), and [`Options::read`] reads such a run
        /// as what it trained.
        #[serde(default = "legacy_format")]
        format: u32 = { main: OPTS_FORMAT };
    }
    flags {
        /// Accepted for upstream compatibility: the latent dump is written every epoch anyway.
        visualise2d: bool => 250 [.value_parser(decl::flag01)], upstream "visualise2D";
        /// Accepted for upstream compatibility: checkpoints are written every epoch anyway.
        save_model: bool => 260 [.value_parser(decl::flag01)], upstream "saveModel";
        /// Accepted for upstream compatibility: metrics.csv is written every epoch anyway.
        report_lower_bound: bool => 270 [.value_parser(decl::flag01)],
            upstream "reportLowerBound";
        /// Optimiser; only adam exists (-optimiser).
        optimiser: String => 280, upstream "optimiser";
        /// Upstream's preset and training recipe exactly: its network and objective (mnist_fc:
        /// Dx 200, v1 with the q(z|y) head, alpha 0.4), Adam restarted every step, lr 1e-4,
        /// per-point z-prior KL with eta 1, a random start (flags given with it still override).
        upstream_recipe: bool => 310 [.action(clap::ArgAction::SetTrue)];
        /// Continue the run in this directory from its last checkpoint with the options of its
        /// opts.json; only --epoch (to raise the total; recorded), --gpu, --gpu-id and --threads
        /// may be given.
        resume: PathBuf => 420 [.value_name("RUN_DIR")], resume Change;
        /// CPU threads of candle's pool, which runs the kernels, matmuls, Adam and convolutions
        /// (sets RAYON_NUM_THREADS; default: all cores; on a 2-core machine busy with other work,
        /// 1). With --n-init above 1: restarts trained side by side, one thread each.
        threads: usize => 440, resume Change;
    }
}

/// The layers of the option table's values, on top of `main` (`main.lua`'s defaults): upstream's
/// `run.sh` presets (gmvae-upstream.md §3), then the training recipe a preset uses.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    spiral,
    mnist_fc,
    mnist,
    svhn,
    /// Your own data: a small fc GMVAE; sizes are flags (README "Your own data").
    table,
    /// The `mnist_fc` preset's recipe (experiments/accuracy/README.md, eighth ablation): a
    /// mixture start from 20 epochs of autoencoder on Dx = 10 codes (VaDE's start), then
    /// upstream's version2 objective (gmvae-upstream.md §2.3: z inferred as p(z|x,w), no q(z|y)
    /// head) as the plain ELBO (alpha = 1 weighting KL(p(z|x,w) || U), no free bits), with
    /// persistent Adam at lr 3e-4. Each part counts: v1 from the same start reaches 0.82 in 19
    /// epochs, v2 0.89 in 10; v2 after 3 autoencoder epochs 0.79; the diagonal mixture on
    /// upstream's Dx = 200 codes starts at 0.61-0.66 against 0.79 on Dx = 10.
    /// Since session 17 (eleventh and twelfth ablations) the z-prior is the batch marginal's KL
    /// with alpha = 5 and the augmentation consistency term has B = 10: on the 10k-image screen
    /// K = 10 went from 0.706 to 0.831 (Hungarian, 4 seeds) and K = 16 from 0.774 to 0.859
    /// (AAE rule, 2 seeds), for about 1.5x the cost of a step.
    fc_recipe,
    /// Upstream's training recipe exactly (gmvae-upstream.md §2, §2.4): Adam restarted every
    /// step, the per-point z-prior KL with eta = 1, lr 1e-4, no warm-up, a random start. The
    /// presets' own defaults may differ where measurements showed better clustering
    /// (`experiments/accuracy/`); `--upstream-recipe` restores this.
    upstream_recipe,
}

/// The training presets, as subcommands.
pub const PRESETS: [&str; 5] = ["spiral", "mnist_fc", "mnist", "svhn", "table"];

/// Where a run's starting weights came from (`--init-from RUN_DIR`): every network variable of
/// that run's last checkpoint, BatchNorm running statistics included. The optimiser starts
/// afresh, and the run counts its own epochs from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    /// The source run directory, as given.
    pub run: PathBuf,
    /// The epoch of the source's checkpoint that was read (0 until the run has read it).
    pub epoch: usize,
}

fn default_plateau_tol() -> f64 {
    1e-3
}

/// The opts.json format this binary writes (see the `format` field).
pub const OPTS_FORMAT: u32 = 2;

/// The format of an opts.json written before the field existed.
fn legacy_format() -> u32 {
    1
}

// opts.json leaves out `n_init` when it is 1: a single run's files are as before restarts existed.
fn default_n_init() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Options {
    /// Preset `name` as this tool trains it: upstream's `run.sh` preset ([`Options::upstream`])
    /// with the recipe that clusters best where measurements showed one
    /// (`experiments/accuracy/`): `mnist_fc` trains with `Layer::fc_recipe`, `mnist` with
    /// upstream's own recipe.
    pub fn preset(name: &str) -> Result<Self> {
        let mut o = Self::run_sh(name)?;
        match name {
            // Upstream's objective, network and optimiser on the fc network cluster at 0.65
            // with 11 of 16 components, the earlier recipe at 0.70-0.72; this one at 0.79-0.89
            // over three seeds (experiments/accuracy/README.md, eighth ablation).
            "mnist_fc" => o.layer(Layer::fc_recipe),
            // The conv network trains best with upstream's own recipe: +6 points of test
            // accuracy over the earlier fc recipe at epoch 4, two seeds, all or all but one of
            // 16 components in use (fifth ablation); seed 1 finished at 0.945.
            "mnist" => o.layer(Layer::upstream_recipe),
            _ => {}
        }
        Ok(o)
    }

    /// Upstream's `run.sh` preset `name` and upstream's training recipe exactly
    /// (`--upstream-recipe`): its network, objective and optimiser, a random start.
    pub fn upstream(name: &str) -> Result<Self> {
        let mut o = Self::run_sh(name)?;
        o.layer(Layer::upstream_recipe);
        Ok(o)
    }

    /// The upstream `run.sh` preset `name` (gmvae-upstream.md §3), with `main.lua`'s defaults for
    /// everything the preset does not set.
    fn run_sh(name: &str) -> Result<Self> {
        let layer = match name {
            "spiral" => Layer::spiral,
            "mnist_fc" => Layer::mnist_fc,
            "mnist" => Layer::mnist,
            "svhn" => Layer::svhn,
            "table" => Layer::table,
            other => {
                bail!("unknown preset `{other}` (expected spiral, mnist_fc, mnist, svhn or table)")
            }
        };
        let mut o = Self::main_layer();
        o.preset = name.to_string();
        o.layer(layer);
        Ok(o)
    }
}

/// The words that each word-valued option of the table preset takes, by its opts.json field
/// (`table.` for the table's own): clap's names, which are also serde's. The Python estimator
/// checks its parameters against them, so that a wrong word is named by its parameter.
pub fn word_choices() -> Vec<(&'static str, Vec<String>)> {
    fn names<T: clap::ValueEnum>() -> Vec<String> {
        T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect()
    }
    use crate::data::scale::{LikelihoodChoice, Scale};
    vec![
        ("table.likelihood", names::<LikelihoodChoice>()),
        ("table.scale", names::<Scale>()),
        ("objective", names::<ObjectiveKind>()),
        ("restart_choice", names::<RestartChoice>()),
    ]
}

/// Options that passed [`Options::validate`]: what training takes, so that a run's options are
/// checked exactly once, where they are settled (the flags, or `--resume`'s opts.json).
#[derive(Debug, Clone, PartialEq)]
pub struct Valid(Options);

impl Valid {
    /// These options for the run directory `dir` (`--resume`): the directory names the run and
    /// its `--out-dir`, whatever the file recorded.
    pub fn in_run_dir(mut self, dir: &std::path::Path) -> Result<Valid> {
        use anyhow::Context;
        let name = dir.file_name().context("--resume needs a run directory")?;
        self.0.id = name.to_string_lossy().into_owned();
        check_id(&self.0.id).with_context(|| format!("--resume {}", dir.display()))?;
        self.0.out_dir = dir.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        Ok(self)
    }
}

impl std::ops::Deref for Valid {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.0
    }
}

impl Options {
    /// Checks ranges and combinations; the message names the flag.
    pub fn validate(&self) -> Result<()> {
        use crate::limits as l;
        let positive = [
            (Opt::k, self.k, l::MAX_K),
            (Opt::batch_size, self.batch_size, l::MAX_BATCH),
            (Opt::epoch, self.epoch, l::MAX_EPOCHS),
            (Opt::x_size, self.x_size, l::MAX_LATENT),
            (Opt::w_size, self.w_size, l::MAX_LATENT),
            (Opt::hidden_size, self.hidden_size, l::MAX_HIDDEN),
            (Opt::n_mc, self.n_mc, l::MAX_N_MC),
            (Opt::n_filters, self.n_filters, l::MAX_FILTERS),
            (Opt::n_channels, self.n_channels, l::MAX_CHANNELS),
            (Opt::spiral_points, self.spiral_points, l::MAX_SPIRAL_POINTS),
            (Opt::train_size, self.train_size.unwrap_or(1), usize::MAX),
            (Opt::n_init, self.n_init, l::MAX_N_INIT),
        ];
        for (opt, v, max) in positive {
            l::count(opt.long(), v, max)?;
        }
        l::at_most(Opt::visual_gen.long(), self.visual_gen, l::MAX_EPOCHS)?;
        l::at_most(
            Opt::restart_epochs.long(),
            self.restart_epochs,
            l::MAX_EPOCHS,
        )?;
        l::at_most(
            Opt::pretrain_epochs.long(),
            self.pretrain_epochs,
            l::MAX_EPOCHS,
        )?;
        self.check_model_size(self.dy())?;
        let weights = [
            (Opt::z_prior_weight, self.z_prior_weight),
            (Opt::cv_weight, self.cv_weight),
            (Opt::lambda, self.lambda),
            (Opt::warmup_epochs, self.warmup_epochs),
            (Opt::augment_weight, self.augment_weight),
            (Opt::plateau_tol, self.plateau_tol),
        ];
        for (opt, v) in weights {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("{} must be a finite number >= 0, found {v}", opt.long());
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!("--learning-rate must be > 0, found {}", self.learning_rate);
        }
        if self.batch_size < 2 {
            bail!(
                "--batch-size must be at least 2 (BatchNorm needs batch statistics), found {}",
                self.batch_size
            );
        }
        if self.gpu > 1 {
            bail!("--gpu takes 0 (CPU) or 1 (CUDA), found {}", self.gpu);
        }
        if !matches!(self.input_dimension, 1 | 2) {
            bail!(
                "--input-dimension takes 1 (flat) or 2 (image), found {}",
                self.input_dimension
            );
        }
        check_id(&self.id)?;
        self.check_combinations()
    }

    /// The network and the objective's batch on data of `dy` values per row stay within the
    /// memory bounds of `limits` (a table's width is known once it is read).
    pub fn check_model_size(&self, dy: usize) -> Result<()> {
        crate::limits::check_model_size(
            self.network == NetworkKind::Conv,
            dy,
            [
                self.x_size,
                self.w_size,
                self.k,
                self.hidden_size,
                self.n_filters,
                self.batch_size,
                self.n_mc,
            ],
        )
    }

    /// Settings that do not go together, and the data each preset takes.
    fn check_combinations(&self) -> Result<()> {
        // Also for an opts.json that sets it (flag_use refuses the flag with the same words).
        if self.augment_weight > 0.0 && !self.has_images() {
            bail!(
                "{} does nothing for the {} preset: {NO_IMAGES_TO_AUGMENT}",
                Opt::augment_weight.long(),
                self.preset
            );
        }
        match (self.data_set, self.network) {
            (DataSet::Spiral, NetworkKind::Conv) => {
                bail!("--network conv needs image data, not the spiral")
            }
            (DataSet::Table, NetworkKind::Conv) => {
                bail!("the table preset trains the fully-connected network (--network fc)")
            }
            (DataSet::Svhn, NetworkKind::Fc) => {
                bail!("svhn is trained with the conv network (--network conv)")
            }
            (DataSet::Mnist, NetworkKind::Conv) if self.input_dimension != 2 => {
                bail!("--network conv on mnist needs --input-dimension 2 (as upstream)")
            }
            _ => {}
        }
        if self.restart_epochs > 0 && self.n_init < 2 {
            bail!(
                "{} {} chooses among restarts: it needs {} 2 or more, found {}",
                Opt::restart_epochs.long(),
                self.restart_epochs,
                Opt::n_init.long(),
                self.n_init
            );
        }
        if self.restart_epochs > 0 && self.restart_epochs >= self.epoch {
            bail!(
                "{} must be below {} ({}) so that the kept restart trains on, found {}",
                Opt::restart_epochs.long(),
                Opt::epoch.long(),
                self.epoch,
                self.restart_epochs
            );
        }
        if self.binarize && self.continuous {
            bail!("--binarize draws Bernoulli data for the Bernoulli likelihood; it cannot be combined with --continuous 1");
        }
        if self.network == NetworkKind::Conv && self.continuous {
            bail!("--continuous 1 is for the fully-connected decoder; the conv decoders are Bernoulli");
        }
        if let Some(t) = &self.table {
            t.validate()?;
        }
        match (&self.data, self.data_set) {
            (None, DataSet::Table) => bail!(
                "the table preset needs --data FILE (CSV/TSV, whitespace text, .npy or .safetensors)"
            ),
            (Some(_), DataSet::Spiral | DataSet::Table) | (None, _) => {}
            (Some(p), DataSet::Mnist) if p.extension().is_some_and(|e| e == "zip") => {}
            (Some(p), d) => bail!(
                "--data {}: spiral presets take a .t7/.csv file, mnist presets the Serket data.zip; \
                 use --data-dir for {d:?}",
                p.display()
            ),
        }
        Ok(())
    }
}

impl Options {
    /// File name of the options inside a run directory.
    pub const FILE: &'static str = "opts.json";

    /// The options a run directory was trained with (its `opts.json`), validated.
    pub fn load(run_dir: &std::path::Path) -> Result<Self> {
        use anyhow::Context;
        let o = Self::read(run_dir)?;
        // A hand-edited file gets the same bounds as the flags, before anything is allocated.
        o.validate().with_context(|| {
            format!(
                "{} holds invalid options",
                run_dir.join(Self::FILE).display()
            )
        })?;
        Ok(o)
    }

    /// The `opts.json` of a run directory as written, not yet validated (`--resume` validates
    /// it once it has applied the flags that may change it).
    pub fn read(run_dir: &std::path::Path) -> Result<Self> {
        use anyhow::Context;
        let path = run_dir.join(Self::FILE);
        let text = crate::limits::read_text(&path).with_context(|| {
            format!(
                "cannot read {} (is this a gmvae run directory?)",
                path.display()
            )
        })?;
        let not_opts = || format!("{} is not a gmvae opts.json", path.display());
        let v: serde_json::Value = serde_json::from_str(&text).with_context(not_opts)?;
        // Written before v2 honoured `z_prior`: no `format`, and no `augment_weight`, which
        // came one commit earlier (from then on the field was `sample` for v2 unless given).
        let v2_ignored_z_prior = v.get("format").is_none() && v.get("augment_weight").is_none();
        let o: Self = serde_json::from_value(v).with_context(not_opts)?;
        Ok(o.upgraded(v2_ignored_z_prior))
    }

    /// These options in today's format, training what the run they were written for trained.
    fn upgraded(mut self, v2_ignored_z_prior: bool) -> Self {
        if v2_ignored_z_prior && self.objective == ObjectiveKind::V2 {
            // That v2 followed the per-point z-prior, whatever the field said.
            self.z_prior = ZPriorMode::Sample;
        }
        self.format = OPTS_FORMAT;
        self
    }

    /// These options once [`Options::validate`] has passed them.
    pub fn validated(self) -> Result<Valid> {
        self.validate()?;
        Ok(Valid(self))
    }

    /// The seed of the data: the table's held-out split, the generated spiral (see `data_seed`).
    pub fn seed_of_data(&self) -> u64 {
        self.data_seed.unwrap_or(self.seed)
    }

    /// Dy, the length of one observation of the data set.
    pub fn dy(&self) -> usize {
        match self.data_set {
            DataSet::Spiral => 2,
            DataSet::Mnist => 784,
            DataSet::Svhn => 3072,
            // Known once the table has been read (its fitted scaling has one entry per column);
            // the loader checks the model size again then.
            DataSet::Table => self
                .table
                .as_ref()
                .and_then(|t| t.fitted.as_ref())
                .map_or(1, |f| f.scaler.shift.len().max(1)),
        }
    }

    /// The settings that fix the networks' shapes on which `source` (a run whose weights this
    /// one starts from) differs from `self`, each as `flag: <source's value> there, <self's> here`.
    pub fn network_differences(&self, source: &Options) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! differ {
            ($($f:ident => $flag:literal),* $(,)?) => {$(
                if self.$f != source.$f {
                    out.push(format!("{}: {:?} there, {:?} here", $flag, source.$f, self.$f));
                }
            )*};
        }
        differ!(
            network => "--network", objective => "--objective", k => "-K",
            x_size => "--x-size", w_size => "--w-size", hidden_size => "--hidden-size",
            n_filters => "--n-filters", n_channels => "--n-channels",
            continuous => "--continuous",
        );
        out
    }

    /// The objective's weights.
    pub fn objective_config(&self) -> crate::objective::ObjectiveConfig {
        crate::objective::ObjectiveConfig {
            kind: self.objective,
            n_mc: self.n_mc,
            z_prior_weight: self.z_prior_weight,
            cv_weight: self.cv_weight,
            free_bits: self.lambda,
            z_prior_mode: self.z_prior,
            cond_weight: 1.0,
            augment_weight: self.augment_weight,
        }
    }

    /// Whether the data are images (what `--augment-weight` transforms).
    pub fn has_images(&self) -> bool {
        !matches!(self.data_set, DataSet::Spiral | DataSet::Table)
    }

    /// Adam's settings.
    pub fn adam_config(&self) -> crate::optim::AdamConfig {
        crate::optim::AdamConfig {
            lr: self.learning_rate,
            reset_every_step: self.adam_reset,
            ..Default::default()
        }
    }
}

/// Why `--augment-weight` does nothing without images.
pub const NO_IMAGES_TO_AUGMENT: &str = "it transforms images, and this data has none";

/// `--id` must name one new folder under `--out-dir`: not empty, not `.` or `..`, no path
/// separators or control characters (the run would otherwise write into `--out-dir` itself, its
/// parent, or somewhere else).
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." {
        bail!("--id must name a run folder, found `{id}`");
    }
    if id.contains(['/', '\\']) || id.chars().any(char::is_control) {
        bail!("--id must be a plain folder name (no path separators), found {id:?}");
    }
    Ok(())
}

/// Writes `opts.json` for a fresh run. On resume the file is kept as it is, except that a raised
/// `--epoch` is recorded (said on stdout); device flags apply to this process only.
pub fn record_options(dir: &std::path::Path, opts: &Options, resume: bool) -> Result<()> {
    let path = dir.join(Options::FILE);
    let mut o = opts.clone();
    if resume {
        o = Options::read(dir)?;
        if o.epoch == opts.epoch {
            return Ok(());
        }
        println!(
            "recording --epoch {} (was {}) in {}",
            opts.epoch,
            o.epoch,
            path.display()
        );
        o.epoch = opts.epoch;
    }
    crate::atomic::write_str(&path, &serde_json::to_string_pretty(&o)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_choices_are_what_opts_json_reads() {
        for (field, words) in word_choices() {
            assert!(!words.is_empty(), "{field}");
            for w in words {
                let mut o = serde_json::to_value(Options::preset("table").unwrap()).unwrap();
                let slot = match field.strip_prefix("table.") {
                    Some(f) => &mut o["table"][f],
                    None => &mut o[field],
                };
                *slot = serde_json::Value::String(w.clone());
                let back: Options =
                    serde_json::from_value(o).unwrap_or_else(|e| panic!("{w}: {e}"));
                let again = serde_json::to_value(&back).unwrap();
                let read = match field.strip_prefix("table.") {
                    Some(f) => again["table"][f].clone(),
                    // restart_choice's default (bound) is left out of opts.json.
                    None => again.get(field).cloned().unwrap_or("bound".into()),
                };
                assert_eq!(read, serde_json::Value::String(w.clone()), "{field}");
            }
        }
    }

    #[test]
    fn old_v2_runs_read_as_the_per_point_z_prior_they_trained() {
        let d = tempfile::tempdir().unwrap();
        let mut o = Options::preset("mnist_fc").unwrap();
        o.z_prior = ZPriorMode::Marginal;
        let read_back = |o: &Options, edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(o).unwrap();
            edit(&mut v);
            std::fs::write(d.path().join(Options::FILE), v.to_string()).unwrap();
            Options::read(d.path()).unwrap()
        };
        // Today's file: v2 with the marginal z-prior, as written.
        let now = read_back(&o, &|_| {});
        assert_eq!(
            (now.z_prior, now.format),
            (ZPriorMode::Marginal, OPTS_FORMAT)
        );
        // The oldest files (neither key): their v2 ignored the field.
        let old = read_back(&o, &|v| {
            let m = v.as_object_mut().unwrap();
            m.remove("format");
            m.remove("augment_weight");
        });
        assert_eq!((old.z_prior, old.format), (ZPriorMode::Sample, OPTS_FORMAT));
        // Files of the binaries in between (augment_weight, no format) honoured it.
        let between = read_back(&o, &|v| {
            v.as_object_mut().unwrap().remove("format");
        });
        assert_eq!(between.z_prior, ZPriorMode::Marginal);
        // v1 always honoured it.
        o.objective = ObjectiveKind::V1;
        let v1 = read_back(&o, &|v| {
            let m = v.as_object_mut().unwrap();
            m.remove("format");
            m.remove("augment_weight");
        });
        assert_eq!(v1.z_prior, ZPriorMode::Marginal);
    }

    #[test]
    fn ids_must_name_a_subdirectory() {
        for bad in ["", ".", "..", "a/b", "/abs", "a\\b", "x\ny"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["run1", "spiral-20250101-120000", ".hidden", "a.b"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
    }
}
