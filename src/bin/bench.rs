//! Training-step benchmark: samples/s and ms per step (forward + objective, backward, Adam) for
//! the presets, on random data of the preset's shape.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release --bin bench -- [--steps N] [--repeats R] [PRESET...]`
//! Reports the median of R timed blocks of N steps (after warm-up), and the peak RSS.

use anyhow::{bail, Result};
use candle_core::Device;
use gmvae::data::{Dataset, Split};
use gmvae::objective;
use gmvae::optim::Adam;
use gmvae::options::Options;
use gmvae::rng::{self, stream};
use gmvae::train::Model;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn bench(preset: &str, steps: usize, repeats: usize, device: &Device) -> Result<()> {
    let mut opts = Options::preset(preset)?;
    opts.gpu = u8::from(!device.is_cpu());
    let (dy, shape) = match preset {
        "spiral" => (2, None),
        "svhn" => (3072, Some([3, 32, 32])),
        "mnist" => (784, Some([1, 28, 28])),
        _ => (784, None),
    };
    let b = opts.batch_size;
    let mut r = rng::rng(0, stream::DATA);
    let y: Vec<f32> = (0..b * dy)
        .map(|_| rand::Rng::random::<f32>(&mut r))
        .collect();
    let dataset = Dataset {
        name: preset.into(),
        dy,
        image_shape: shape,
        train: Split::new(y.clone(), None, dy)?,
        test: None,
    };
    let model = Model::new(&opts, &dataset, device)?;
    let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
    let cfg = opts.objective_config();
    let yt = candle_core::Tensor::from_vec(y, (b, dy), device)?;
    let mut noise = rng::rng(0, stream::NOISE);
    let (mut fwd, mut bwd, mut opt, mut total) = (vec![], vec![], vec![], vec![]);
    for rep in 0..=repeats {
        let (mut f, mut bk, mut o) = (0.0, 0.0, 0.0);
        let t0 = Instant::now();
        for _ in 0..steps {
            let a = Instant::now();
            let (ex, ew) =
                objective::draw_noise(&mut noise, opts.n_mc, b, opts.x_size, opts.w_size, device)?;
            let out = objective::evaluate(&model.net, &cfg, &yt, &ex, &ew, true)?;
            let c = Instant::now();
            let grads = out.loss.backward()?;
            device.synchronize()?;
            let d = Instant::now();
            adam.step(&grads)?;
            device.synchronize()?;
            let e = Instant::now();
            f += (c - a).as_secs_f64();
            bk += (d - c).as_secs_f64();
            o += (e - d).as_secs_f64();
        }
        // Block 0 is warm-up.
        if rep > 0 {
            let n = steps as f64;
            fwd.push(f / n * 1e3);
            bwd.push(bk / n * 1e3);
            opt.push(o / n * 1e3);
            total.push(t0.elapsed().as_secs_f64() / n * 1e3);
        }
    }
    let ms = median(total);
    println!(
        "{preset:9} params {:>10}  batch {b:>3}  {:>8.2} ms/step  {:>8.0} samples/s  (forward+objective {:.2}, backward {:.2}, adam {:.2} ms)  peak RSS {:.0} MiB",
        model.parameter_count(),
        ms,
        b as f64 / ms * 1e3,
        median(fwd),
        median(bwd),
        median(opt),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {}", gmvae::cli::error_line(&e));
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut steps = 20;
    let mut repeats = 5;
    let mut gpu = false;
    let mut presets = vec![];
    // args_os: a non-UTF-8 argument is an error here, not a panic inside std::env::args.
    let mut args = std::env::args_os().skip(1).map(|a| {
        a.into_string()
            .map_err(|a| anyhow::anyhow!("bench: argument {a:?} is not valid UTF-8"))
    });
    let number = |flag: &str, v: Option<Result<String>>, max: usize| -> Result<usize> {
        let v = v.transpose()?.unwrap_or_default();
        let n: usize = v
            .parse()
            .map_err(|_| anyhow::anyhow!("bench: {flag} needs a whole number, found `{v}`"))?;
        gmvae::limits::count(&format!("bench: {flag}"), n, max)?;
        Ok(n)
    };
    while let Some(a) = args.next() {
        let a = a?;
        match a.as_str() {
            "--steps" => steps = number("--steps", args.next(), 1_000_000)?,
            "--repeats" => repeats = number("--repeats", args.next(), 1_000)?,
            "--gpu" => gpu = true,
            p @ ("spiral" | "mnist_fc" | "mnist" | "svhn") => presets.push(p.to_string()),
            other => bail!(
                "bench: unknown argument `{other}` (use --steps N, --repeats R, --gpu, presets)"
            ),
        }
    }
    if presets.is_empty() {
        presets = vec!["spiral".into(), "mnist_fc".into()];
    }
    let device = gmvae::device::select(u8::from(gpu), 0)?;
    println!(
        "gmvae bench: {steps} steps x {repeats} blocks (median), threads {}, device {:?}",
        candle_core::utils::get_num_threads(),
        device.location()
    );
    for p in presets {
        bench(&p, steps, repeats, &device)?;
    }
    Ok(())
}
