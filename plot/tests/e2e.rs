//! End to end: a tiny real training run (the trainer's own library entry point, as the `gmvae`
//! binary calls it), then every picture drawn from its run directory by the plot binaries.

mod common;

use common::*;
use gmvae::options::Options;
use std::io::Write;
use std::path::Path;

fn train(o: &Options) {
    let summary = gmvae::train::train(&o.clone().validated().unwrap(), false)
        .expect("tiny training run failed");
    assert_eq!(summary.last.map(|r| r.epoch), Some(o.epoch));
}

/// Draws all four pictures with plot_all and checks each.
fn plot_all_and_check(run_dir: &Path, extra: &[&str], recon_size: Option<(u32, u32)>) {
    let mut args = vec![run_dir.to_str().unwrap()];
    args.extend(extra);
    let o = run("plot_all", &args);
    assert!(
        o.status.success(),
        "plot_all: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_png(&run_dir.join("latent.png"), Some((1000, 800)), 50, 500);
    check_png(&run_dir.join("recon.png"), recon_size, 10, 0);
    check_png(&run_dir.join("curves.png"), Some((1500, 500)), 20, 300);
    check_png(&run_dir.join("usage.png"), Some((1000, 600)), 10, 2000);
}

#[test]
fn tiny_spiral_training_then_every_plot() {
    let out = tempfile::tempdir().unwrap();
    let mut o = Options::preset("spiral").unwrap();
    (o.epoch, o.spiral_points, o.id) = (2, 400, "spiral".into());
    o.out_dir = out.path().to_path_buf();
    train(&o);
    let dir = out.path().join("spiral");
    plot_all_and_check(&dir, &[], Some((1000, 800)));
    // The single-plot binaries agree with plot_all on the same run.
    for name in ["plot_latent", "plot_recon", "plot_curves", "plot_usage"] {
        let png = dir.join(format!("{name}.png"));
        let r = run(name, &[dir.to_str().unwrap(), "-o", png.to_str().unwrap()]);
        assert!(
            r.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        check_png(&png, None, 10, 0);
    }
}

/// Writes one gzip IDX file.
fn idx_gz(path: &Path, magic: u32, dims: &[u32], body: &[u8]) {
    let mut raw = magic.to_be_bytes().to_vec();
    for d in dims {
        raw.extend(d.to_be_bytes());
    }
    raw.extend(body);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

/// A stand-in for MNIST in its real file format: 28x28 images of class-dependent strokes.
fn fake_mnist(dir: &Path, n_train: usize, n_test: usize) {
    let mut seed = 12345u32;
    let mut rand = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 16) as usize
    };
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for i in 0..n {
            let l = i % 10;
            let mut img = [0u8; 784];
            let (col, row) = (4 + 2 * l + rand() % 2, 6 + l + rand() % 3);
            for t in 4..24 {
                img[t * 28 + col] = 255;
                img[row * 28 + t] = 200;
            }
            images.extend(img);
            labels.push(l as u8);
        }
        idx_gz(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            2051,
            &[n as u32, 28, 28],
            &images,
        );
        idx_gz(
            &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            2049,
            &[n as u32],
            &labels,
        );
    }
}

#[test]
fn tiny_mnist_training_then_every_plot_and_the_samples_grid() {
    let out = tempfile::tempdir().unwrap();
    // The data lives beside the run directory: a fresh run refuses a folder of other files.
    let data = out.path().join("mnist-data");
    std::fs::create_dir_all(&data).unwrap();
    fake_mnist(&data, 200, 60);
    let mut o = Options::preset("mnist_fc").unwrap();
    (o.epoch, o.hidden_size, o.x_size, o.w_size, o.k) = (2, 32, 4, 3, 5);
    (o.batch_size, o.dump_size, o.id) = (40, 60, "mnist".into());
    (o.out_dir, o.data_dir) = (out.path().to_path_buf(), data);
    train(&o);
    let dir = out.path().join("mnist");
    // 50 examples of 28 px drawn at 2x (+2 px gap) in 10 columns, originals beside recons.
    plot_all_and_check(&dir, &["--by-label"], Some((1220, 388)));

    // The samples grid (K rows x 10 decodes at w = 0) from the trained checkpoint, through the
    // function the trainer's --visual-gen uses (component_samples), labelled.
    let path = dir.join("samples.png");
    let r = run(
        "plot_samples",
        &[dir.to_str().unwrap(), "-o", path.to_str().unwrap()],
    );
    assert!(
        r.status.success(),
        "plot_samples: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let (w, h, px) = decode(&path);
    // 56 px images + 4 px gaps, a 70 px label column, 74 px of title and numbers, 16 px margin.
    assert_eq!((w, h), (70 + 10 * 60 + 16, 74 + 60 * o.k as u32 + 16));
    let mut greys: Vec<u8> = px.iter().map(|p| p[0]).collect();
    greys.sort_unstable();
    greys.dedup();
    assert!(
        greys.len() > 10,
        "samples grid is nearly flat: {} grey levels",
        greys.len()
    );
}

#[test]
fn samples_grid_refuses_runs_without_images_or_checkpoints() {
    let out = tempfile::tempdir().unwrap();
    let mut o = Options::preset("spiral").unwrap();
    (o.epoch, o.spiral_points, o.id) = (1, 200, "s".into());
    o.out_dir = out.path().to_path_buf();
    train(&o);
    let r = run("plot_samples", &[out.path().join("s").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("image data") && !err.contains("panicked"),
        "{err}"
    );
    let r = run("plot_samples", &[out.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("opts.json") && !err.contains("panicked"),
        "{err}"
    );
}
