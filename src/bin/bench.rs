//! Training-step benchmark: ours against the PyTorch peer (`experiments/perf/peer.py`) in one
//! invocation, same preset, batch and thread count. Prints one table: ms/step and the phase split
//! (forward + objective, backward, Adam), samples/s, achieved GFLOP/s and % of the fp32 peak, peak
//! RSS, and Adam's memory-traffic floor.
//!
//! `target/release/bench --peer --threads 1 spiral mnist_fc mnist` (see `--help`).

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Parser, ValueEnum};
use gmvae::data::DataShape;
use gmvae::model::Model;
use gmvae::objective;
use gmvae::optim::Adam;
use gmvae::options::Options;
use gmvae::perf::{flops, machine, peer};
use gmvae::rng::{self, stream};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preset {
    Spiral,
    #[value(name = "mnist_fc")]
    MnistFc,
    Mnist,
    Svhn,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::Spiral => "spiral",
            Preset::MnistFc => "mnist_fc",
            Preset::Mnist => "mnist",
            Preset::Svhn => "svhn",
        }
    }

    /// Dy and the image shape of the preset's data.
    fn data_shape(self) -> (usize, Option<[usize; 3]>) {
        match self {
            Preset::Spiral => (2, None),
            Preset::MnistFc => (784, None),
            Preset::Mnist => (784, Some([1, 28, 28])),
            Preset::Svhn => (3072, Some([3, 32, 32])),
        }
    }

    /// The shape of the preset's images (the fc preset's data are 28 x 28 images too).
    fn images(self) -> Option<[usize; 3]> {
        match self {
            Preset::Spiral => None,
            Preset::MnistFc | Preset::Mnist => Some([1, 28, 28]),
            Preset::Svhn => Some([3, 32, 32]),
        }
    }
}

/// Times gmvae's training step (the calls `train()` makes) on random data of each preset's
/// shape and, with --peer, the same step in PyTorch, and prints one table.
#[derive(Parser, Debug)]
#[command(name = "bench", version)]
struct Args {
    /// Presets to measure [default: spiral mnist_fc].
    #[arg(value_enum)]
    presets: Vec<Preset>,
    /// CPU threads, for candle (RAYON_NUM_THREADS) and for the peer (torch.set_num_threads).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Measured steps (the median is reported); at least 20.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Unmeasured steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Batch size [default: the preset's].
    #[arg(long)]
    batch: Option<usize>,
    /// Also run the PyTorch peer (needs Python 3 with torch), after ours, for each preset.
    #[arg(long)]
    peer: bool,
    /// Python interpreter for --peer.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The peer script.
    #[arg(long, default_value = "experiments/perf/peer.py")]
    peer_script: PathBuf,
    /// Run our step on CUDA device 0 (the peer then runs on CUDA too).
    #[arg(long)]
    gpu: bool,
    /// Time the preset's own recipe (its networks and objective, as `gmvae <preset>` trains)
    /// instead of upstream's, which the peer implements. Not with --peer.
    #[arg(long, conflicts_with = "peer")]
    own_recipe: bool,
    /// Number of components K [default: the recipe's]. Not with --peer.
    #[arg(short = 'K', long = "k", conflicts_with = "peer")]
    k: Option<usize>,
    /// The augmentation consistency term's weight (`gmvae --augment-weight`) [default: the
    /// recipe's: 0 for upstream's, 10 for `mnist_fc`'s own]: each step then transforms its
    /// images on the host and runs the recognition nets on them too. Image presets only; not
    /// with --peer, which has no such term.
    #[arg(long, conflicts_with = "peer")]
    augment_weight: Option<f64>,
}

/// Median of the measured steps, in ms.
struct Phases {
    step: f64,
    /// CPU time of a step, all threads (None where /proc is not there).
    cpu: Option<f64>,
    forward: f64,
    backward: f64,
    optimizer: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Our result for one preset.
struct Ours {
    /// The file for the peer's `--check`, written with --peer.
    check: Option<PathBuf>,
    params: usize,
    batch: usize,
    flops: f64,
    phases: Phases,
    peak_rss_mib: Option<f64>,
    /// What was timed: whose recipe, K, and the augmentation term's weight.
    recipe: String,
}

/// The options a preset's step is timed with: upstream's networks and objective (the peer
/// implements them; the `mnist_fc` preset's own recipe trains a smaller network with v2) with
/// the preset's optimiser, or, with --own-recipe, what `gmvae <preset>` trains; then --batch,
/// -K and --augment-weight.
fn bench_options(preset: Preset, args: &Args, device: &Device) -> Result<Options> {
    let ours = Options::preset(preset.name())?;
    let mut opts = if args.own_recipe {
        ours.clone()
    } else {
        Options::upstream(preset.name())?
    };
    (opts.adam_reset, opts.learning_rate) = (ours.adam_reset, ours.learning_rate);
    opts.gpu = u8::from(!device.is_cpu());
    if let Some(b) = args.batch {
        opts.batch_size = b;
    }
    if let Some(k) = args.k {
        opts.k = k;
    }
    if let Some(beta) = args.augment_weight {
        opts.augment_weight = beta;
    }
    Ok(opts)
}

/// What a preset's row timed, for the notes under the table.
fn recipe_note(args: &Args, opts: &Options) -> String {
    format!(
        "{} recipe ({:?} objective, K = {}, H = {}), augmentation consistency {}",
        if args.own_recipe {
            "its own"
        } else {
            "upstream's"
        },
        opts.objective,
        opts.k,
        opts.hidden_size,
        if opts.augment_weight > 0.0 {
            format!("B = {}", opts.augment_weight)
        } else {
            "off".into()
        }
    )
}

fn bench_ours(preset: Preset, args: &Args, device: &Device) -> Result<Ours> {
    let opts = bench_options(preset, args, device)?;
    // T(y)'s image shape and generator, when the augmentation is timed (`run` checked that the
    // preset has images).
    let mut augment = preset
        .images()
        .filter(|_| opts.augment_weight > 0.0)
        .map(|shape| (shape, rng::rng(0, stream::AUGMENT)));
    let (dy, shape) = preset.data_shape();
    let b = opts.batch_size;
    let mut r = rng::rng(0, stream::DATA);
    let y: Vec<f32> = (0..b * dy)
        .map(|_| rand::Rng::random::<f32>(&mut r))
        .collect();
    let data = DataShape {
        dy,
        image_shape: shape,
    };
    let model = Model::new(&opts, &data, device)?;
    let layers = flops::layers(&model.net, b, opts.n_mc);
    // The FLOP count is only as good as its layer list: it must add up to the real model.
    if flops::parameter_count(&layers) != model.parameter_count() {
        bail!(
            "{}: the FLOP counter's layer list has {} parameters, the model {}; a layer is \
             missing from the networks' `layers()` (models/src/)",
            preset.name(),
            flops::parameter_count(&layers),
            model.parameter_count()
        );
    }
    let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
    let cfg = opts.objective_config();
    let yt = candle_core::Tensor::from_vec(y.clone(), (b, dy), device)?;
    let check = if args.peer {
        let path = std::env::temp_dir().join(format!(
            "gmvae-bench-{}-{}.safetensors",
            std::process::id(),
            preset.name()
        ));
        write_check(&path, &model, &opts, &yt, device)?;
        Some(path)
    } else {
        None
    };
    let mut noise = rng::rng(0, stream::NOISE);
    let (mut fwd, mut bwd, mut opt, mut total) = (vec![], vec![], vec![], vec![]);
    let mut cpu = Some(vec![]);
    for s in 0..args.warmup + args.steps {
        let cpu0 = machine::process_cpu_ns();
        let a = Instant::now();
        let (ex, ew) =
            objective::draw_noise(&mut noise, opts.n_mc, b, opts.x_size, opts.w_size, device)?;
        // As train() makes T(y): from the host rows, a fresh transform per image and step.
        let y_aug = augment
            .as_mut()
            .map(|(shape, r)| gmvae::augment::transformed_batch(&y, b, *shape, r, device))
            .transpose()?;
        let out = objective::evaluate(&model.net, &cfg, &yt, y_aug.as_ref(), &ex, &ew, true)?;
        // Read as train() does at its reporting points (here every step, before the timer
        // stops: the phase includes that synchronisation).
        let loss = out.terms.read()?.loss;
        if !loss.is_finite() {
            bail!(
                "{}: the loss became {loss} at step {}",
                preset.name(),
                s + 1
            );
        }
        let c = Instant::now();
        let grads = out.loss.backward()?;
        device.synchronize()?;
        let d = Instant::now();
        adam.step(&grads)?;
        device.synchronize()?;
        let e = Instant::now();
        let cpu1 = machine::process_cpu_ns();
        if s >= args.warmup {
            cpu = match (cpu, cpu0, cpu1) {
                (Some(mut v), Some(c0), Some(c1)) => {
                    v.push(c1.saturating_sub(c0) as f64 * 1e-6);
                    Some(v)
                }
                _ => None,
            };
            fwd.push((c - a).as_secs_f64() * 1e3);
            bwd.push((d - c).as_secs_f64() * 1e3);
            opt.push((e - d).as_secs_f64() * 1e3);
            total.push((e - a).as_secs_f64() * 1e3);
        }
    }
    Ok(Ours {
        check,
        params: model.parameter_count(),
        batch: b,
        flops: flops::step_flops(&layers),
        phases: Phases {
            step: median(total),
            cpu: cpu.map(median),
            forward: median(fwd),
            backward: median(bwd),
            optimizer: median(opt),
        },
        peak_rss_mib: machine::peak_rss_mib(),
        recipe: recipe_note(args, &opts),
    })
}

/// Largest relative difference allowed between the peer's objective terms and ours on the same
/// weights, data and noise (f32 sums over up to ~10^5 terms).
const CHECK_TOLERANCE: f64 = 1e-4;

/// Writes what the peer needs to evaluate our objective exactly: every variable under its name,
/// the batch y, one draw of the noise, and the term values we compute from them
/// (`experiments/perf/peer.py` `CHECK_TERMS`).
fn write_check(
    path: &std::path::Path,
    model: &Model,
    opts: &Options,
    y: &candle_core::Tensor,
    device: &Device,
) -> Result<()> {
    use candle_core::{DType, Tensor};
    let b = y.dim(0)?;
    let mut noise = rng::rng(1, stream::NOISE);
    let (ex, ew) =
        objective::draw_noise(&mut noise, opts.n_mc, b, opts.x_size, opts.w_size, device)?;
    let out = objective::evaluate(
        &model.net,
        &opts.objective_config(),
        y,
        None,
        &ex,
        &ew,
        true,
    )?;
    let v = out.terms.read()?;
    let training_loss = out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let terms = [
        v.rec,
        v.cond_prior,
        v.w_prior,
        v.z_prior,
        v.cv,
        v.loss,
        training_loss,
    ];
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu);
    let mut tensors = std::collections::HashMap::new();
    for (name, var) in &model.vars {
        tensors.insert(name.clone(), cpu(var.as_tensor())?);
    }
    tensors.insert("check.y".into(), cpu(y)?);
    tensors.insert("check.eps_x".into(), cpu(&ex)?);
    tensors.insert("check.eps_w".into(), cpu(&ew)?);
    tensors.insert(
        "check.terms".into(),
        Tensor::from_slice(&terms, terms.len(), &Device::Cpu)?,
    );
    candle_core::safetensors::save(&tensors, path)
        .with_context(|| format!("cannot write the peer's check file {}", path.display()))
}

/// The CPU's fp32 peak for `cores` cores and the line that says how it was derived.
fn cpu_peak(cores: usize) -> Option<(machine::CpuPeak, String)> {
    let unit = machine::detect_vector_unit()?;
    let (mhz, source) = machine::clock_mhz()?;
    let peak = machine::CpuPeak { unit, mhz, cores };
    let line = peak.describe(source);
    Some((peak, line))
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// A table cell "ours / peer", or just ours.
fn pair(ours: f64, peer: Option<f64>, digits: usize) -> String {
    match peer {
        Some(p) => format!("{ours:.digits$} / {p:.digits$}"),
        None => format!("{ours:.digits$}"),
    }
}

/// Runs the peer for `p` after ours, on our weights and data, and checks that it computed the
/// same objective on the same network.
fn bench_peer(p: Preset, args: &Args, ours: &Ours) -> Result<peer::PeerStep> {
    let result = peer::run(&peer::PeerRequest {
        python: &args.python,
        script: &args.peer_script,
        preset: p.name(),
        threads: args.threads,
        steps: args.steps,
        warmup: args.warmup,
        batch: ours.batch,
        cuda: args.gpu,
        check: ours.check.as_deref(),
    });
    if let Some(path) = &ours.check {
        // A leftover temp file is harmless; the peer's result matters more.
        let _ = std::fs::remove_file(path);
    }
    let t = result?;
    if t.params != ours.params {
        bail!(
            "{}: the peer's network has {} parameters, ours {}: they are not the same network",
            p.name(),
            t.params,
            ours.params
        );
    }
    match t.check_max_rel_err {
        Some(err) if err <= CHECK_TOLERANCE => Ok(t),
        Some(err) => bail!(
            "{}: the peer's objective differs from ours by {err:.2e} (relative) on the same \
             weights, data and noise (tolerance {CHECK_TOLERANCE:e}): not the same computation",
            p.name()
        ),
        None => bail!("{}: the peer did not report its --check result", p.name()),
    }
}

const TABLE_HEADER: &str = "| preset | threads | batch | ms/step ours / peer | ours ÷ peer | \
CPU ms/step ours / peer | fwd+obj / bwd / opt ms, ours | fwd+obj / bwd / opt ms, peer | samples/s ours / peer | \
GFLOP/s ours / peer | % fp32 peak ours / peer | peak RSS MiB ours / peer | Adam floor ms | \
ours opt ÷ floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One row of the table; `peak_gflops` is the fp32 peak of the cores used (CPU only),
/// `copy_bw` the measured copy bandwidth in bytes/s.
fn table_row(
    p: Preset,
    args: &Args,
    ours: &Ours,
    theirs: Option<&peer::PeerStep>,
    peak_gflops: Option<f64>,
    copy_bw: Option<f64>,
) -> String {
    let ph = &ours.phases;
    let split = |f: f64, b: f64, o: f64| format!("{f:.2} / {b:.2} / {o:.2}");
    let gflops = |ms: f64| ours.flops / (ms * 1e-3) * 1e-9;
    let samples = |ms: f64| ours.batch as f64 / ms * 1e3;
    let peer_ms = theirs.map(|t| t.ms_step);
    let pct = peak_gflops.map(|pk| {
        pair(
            100.0 * gflops(ph.step) / pk,
            peer_ms.map(|t| 100.0 * gflops(t) / pk),
            1,
        )
    });
    let floor_ms = copy_bw.map(|bw| machine::adam_traffic_bytes(ours.params) / bw * 1e3);
    let rss = match (ours.peak_rss_mib, theirs) {
        (Some(a), Some(t)) => format!("{a:.0} / {:.0}", t.peak_rss_mib),
        (a, _) => opt_f(a, 0),
    };
    let cells = [
        p.name().to_string(),
        args.threads.to_string(),
        ours.batch.to_string(),
        pair(ph.step, peer_ms, 2),
        opt_f(peer_ms.map(|t| ph.step / t), 2),
        match (ph.cpu, theirs.and_then(|t| t.cpu_ms_step)) {
            (Some(a), b) => pair(a, b, 2),
            (None, Some(b)) => format!("- / {b:.2}"),
            (None, None) => "-".into(),
        },
        split(ph.forward, ph.backward, ph.optimizer),
        theirs.map_or("-".into(), |t| {
            split(t.ms_forward, t.ms_backward, t.ms_optimizer)
        }),
        pair(samples(ph.step), peer_ms.map(samples), 0),
        pair(gflops(ph.step), peer_ms.map(gflops), 2),
        pct.unwrap_or_else(|| "-".into()),
        rss,
        opt_f(floor_ms, 2),
        opt_f(floor_ms.map(|f| ph.optimizer / f), 1),
    ];
    format!("| {} |", cells.join(" | "))
}

fn run(args: Args) -> Result<()> {
    use gmvae::limits;
    limits::count("--threads", args.threads, limits::MAX_THREADS)?;
    limits::at_most("--steps", args.steps, 1_000_000)?;
    limits::at_most("--warmup", args.warmup, 1_000_000)?;
    if let Some(b) = args.batch {
        limits::at_most("--batch", b, limits::MAX_BATCH)?;
    }
    if let Some(k) = args.k {
        limits::count("-K", k, limits::MAX_K)?;
    }
    if let Some(beta) = args.augment_weight {
        limits::weight("--augment-weight", beta, 0.0, 1e6)?;
    }
    if args.steps < 20 {
        bail!(
            "--steps must be at least 20 (the median of >= 20 steps), found {}",
            args.steps
        );
    }
    if args.batch.is_some_and(|b| b < 2) {
        bail!(
            "--batch must be at least 2 (BatchNorm needs batch statistics), found {}",
            args.batch.unwrap_or(0)
        );
    }
    if args.peer {
        peer::preflight(&args.python, &args.peer_script)?;
    }
    // Before candle's first tensor op builds its thread pool.
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    let device = gmvae::device::select(u8::from(args.gpu), 0)?;
    let presets = if args.presets.is_empty() {
        vec![Preset::Spiral, Preset::MnistFc]
    } else {
        args.presets.clone()
    };
    if args.augment_weight.is_some() {
        if let Some(p) = presets.iter().find(|p| p.images().is_none()) {
            bail!(
                "--augment-weight: the {} preset has no images to transform",
                p.name()
            );
        }
    }
    let load_before = machine::load_average();
    let cores = args
        .threads
        .min(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let peak = cpu_peak(cores);
    // Twice 128 MiB: well past the last-level caches of these machines.
    let copy_bw = device
        .is_cpu()
        .then(|| machine::copy_bandwidth(128 << 20, args.threads, 5));
    println!(
        "gmvae bench: {} | device {:?} | threads {} | {} warm-up + {} measured steps (median) | load average {}",
        machine::cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        device.location(),
        args.threads,
        args.warmup,
        args.steps,
        opt_f(load_before, 2),
    );
    println!();
    println!("{TABLE_HEADER}");
    let mut notes = vec![];
    for p in presets {
        let reset = machine::reset_peak_rss();
        let ours = bench_ours(p, &args, &device)?;
        let theirs = if args.peer {
            let t = bench_peer(p, &args, &ours)?;
            notes.push(format!(
                "{}: peer torch {}; its objective on our weights, data and noise matches ours to \
                 {:.1e} (largest relative difference of the terms)",
                p.name(),
                t.torch,
                t.check_max_rel_err.unwrap_or(f64::NAN)
            ));
            Some(t)
        } else {
            None
        };
        let peak_gflops = peak
            .as_ref()
            .filter(|_| device.is_cpu())
            .map(|(pk, _)| pk.gflops());
        println!(
            "{}",
            table_row(p, &args, &ours, theirs.as_ref(), peak_gflops, copy_bw)
        );
        notes.push(format!(
            "{}: {}, {} parameters, {:.3} GFLOP per step{}",
            p.name(),
            ours.recipe,
            ours.params,
            ours.flops * 1e-9,
            if reset {
                ""
            } else {
                " (VmHWM could not be reset: peak RSS is cumulative over the presets so far)"
            }
        ));
    }
    println!();
    for n in notes {
        println!("- {n}");
    }
    println!(
        "- FLOPs per step are counted analytically from the network shapes: matmuls and \
         convolutions only (BatchNorm, activations and the objective are not counted), forward = \
         2 x multiply-accumulates, backward ~ 2 x forward; GFLOP/s = that / median ms/step."
    );
    match &peak {
        Some((_, line)) if device.is_cpu() => println!("- fp32 peak assumed: {line}."),
        Some(_) => println!("- fp32 peak: not given for the GPU."),
        None => {
            println!("- fp32 peak: unknown (not x86-64, or no clock in /proc/cpuinfo or lscpu).")
        }
    }
    if let Some(bw) = copy_bw {
        println!(
            "- Adam floor = 7 x 4 bytes x parameters (theta, g, m, v read; theta, m, v written) / \
             copy bandwidth {:.2} GB/s (best of 5 copies of 128 MiB on {} thread{}, bytes read + \
             written), beside our measured optimizer time.",
            bw * 1e-9,
            args.threads,
            if args.threads == 1 { "" } else { "s" }
        );
    }
    println!(
        "- CPU ms/step: the median CPU time of one step summed over the process's threads \
         (ours CLOCK_PROCESS_CPUTIME_ID, the peer's time.process_time()); on a loaded machine \
         it is nearer the work done than wall time, but it counts thread pools' spin-waiting."
    );
    println!(
        "- Peak RSS: ours is VmHWM (/proc/self/status), reset before each preset; the peer's is \
         ru_maxrss of its own process (torch's import included)."
    );
    println!(
        "- Load average (1 min) before {} and after {}: other work on the machine slows both \
         sides; compare ratios from one run.",
        opt_f(load_before, 2),
        opt_f(machine::load_average(), 2)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    gmvae::cli::exit_quietly_on_closed_stdout();
    gmvae::alloc::keep_freed_memory();
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", gmvae::cli::error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
