//! Bad inputs to the plot binaries (flags, run directories, dumps, metrics, checkpoints), through
//! the harness of `tests/bad_inputs.rs`: every case must end in a clear error or, for valid
//! inputs, success; a panic, hang or wrong success fails the test.

#[path = "../../tests/harness/mod.rs"]
mod harness;

use gmvae::options::Options;
use harness::*;
use std::path::{Path, PathBuf};

const LATENT: &str = env!("CARGO_BIN_EXE_plot_latent");
const RECON: &str = env!("CARGO_BIN_EXE_plot_recon");
const CURVES: &str = env!("CARGO_BIN_EXE_plot_curves");
const USAGE: &str = env!("CARGO_BIN_EXE_plot_usage");
const ALL: &str = env!("CARGO_BIN_EXE_plot_all");
const SAMPLES: &str = env!("CARGO_BIN_EXE_plot_samples");

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A one-epoch run of `preset` in `out/<id>`, small enough to train in a moment.
fn tiny_run(out: &Path, id: &str, preset: &str, data_dir: &Path) -> PathBuf {
    let mut o = Options::preset(preset).unwrap();
    (o.out_dir, o.id, o.epoch) = (out.to_path_buf(), id.into(), 1);
    (o.spiral_points, o.batch_size, o.dump_size) = (200, 50, 200);
    if preset != "spiral" {
        (o.hidden_size, o.x_size, o.w_size, o.k, o.batch_size) = (16, 4, 4, 3, 10);
        (o.visual_gen, o.data_dir) = (0, data_dir.to_path_buf());
    }
    gmvae::train::train(&o.clone().validated().unwrap(), false)
        .unwrap()
        .run_dir
}

fn copy_run(from: &Path, to: &Path) -> String {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    p(to)
}

/// Rewrites the JSON header of a safetensors file.
fn edit_header(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    edit(&mut h);
    let mut hs = serde_json::to_vec(&h).unwrap();
    hs.resize(hs.len().div_ceil(8) * 8, b' ');
    let mut out = (hs.len() as u64).to_le_bytes().to_vec();
    out.extend(hs);
    out.extend(&b[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn plot_binaries_give_clear_errors_on_bad_inputs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mnist = w.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let px: Vec<u8> = (0..20 * 784).map(|i| (i * 7 % 256) as u8).collect();
    let labels: Vec<u8> = (0..20).map(|i| i % 10).collect();
    for prefix in ["train", "t10k"] {
        gmvae::data::mnist::write_idx(&mnist, prefix, &px, 28, 28, &labels, false).unwrap();
    }
    let runs = w.join("runs");
    let spiral = tiny_run(&runs, "spiral", "spiral", &mnist);
    let image = tiny_run(&runs, "image", "mnist_fc", &mnist);
    let (sp, im) = (p(&spiral), p(&image));
    let out = |name: &str| p(&w.join(name));
    // Valid inputs.
    let mut cases = vec![
        ok(
            "plot_all on a spiral run",
            ALL,
            os(&[&sp, "--out-dir", &out("all")]),
        ),
        ok(
            "plot_samples --cols 2",
            SAMPLES,
            os(&[&im, "--cols", "2", "-o", &out("s.png")]),
        ),
        ok(
            "plot_recon on an image run",
            RECON,
            os(&[&im, "-o", &out("r.png")]),
        ),
    ];

    // plot_samples.
    cases.push(err(
        "plot_samples --cols 1e8",
        SAMPLES,
        os(&[&im, "--cols", "100000000"]),
        &["--cols", "100000000", "1000"],
    ));
    cases.push(err(
        "plot_samples --cols 0",
        SAMPLES,
        os(&[&im, "--cols", "0"]),
        &["--cols"],
    ));
    cases.push(err(
        "plot_samples --cols -1 (clap)",
        SAMPLES,
        os(&[&im, "--cols=-1"]),
        &["-1"],
    ));
    cases.push(err(
        "plot_samples --seed abc (clap)",
        SAMPLES,
        os(&[&im, "--seed", "abc"]),
        &["abc"],
    ));
    cases.push(err(
        "plot_samples on a spiral run",
        SAMPLES,
        os(&[&sp]),
        &["spiral"],
    ));
    let dir = w.join("hugek");
    copy_run(&image, &dir);
    let mut o: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("opts.json")).unwrap()).unwrap();
    o["K"] = 1_000_000_000_000u64.into();
    std::fs::write(dir.join("opts.json"), o.to_string()).unwrap();
    cases.push(err(
        "plot_samples with opts.json K = 1e12",
        SAMPLES,
        os(&[&p(&dir)]),
        &["opts.json", "--k", "1000000000000"],
    ));
    let dir = w.join("nockpt");
    copy_run(&image, &dir);
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    cases.push(err(
        "plot_samples without a checkpoint",
        SAMPLES,
        os(&[&p(&dir)]),
        &["checkpoint.safetensors"],
    ));
    let dir = w.join("ckmax");
    copy_run(&image, &dir);
    edit_header(&dir.join("checkpoint.safetensors"), |h| {
        h["__metadata__"]["epoch"] = "18446744073709551615".into()
    });
    cases.push(err(
        "plot_samples checkpoint epoch u64::MAX",
        SAMPLES,
        os(&[&p(&dir)]),
        &["checkpoint.safetensors", "18446744073709551615"],
    ));

    // plot_recon and --image-shape.
    for (name, shape) in [
        ("overflowing --image-shape", "1,4294967296,4294967296"),
        ("--image-shape 3,0,5", "3,0,5"),
        (
            "--image-shape u64::MAX",
            "3,18446744073709551615,18446744073709551615",
        ),
        ("--image-shape with 2 channels", "2,28,28"),
        ("--image-shape of two numbers", "28,28"),
    ] {
        cases.push(err(
            &format!("plot_recon {name}"),
            RECON,
            os(&[&im, "--image-shape", shape]),
            &["--image-shape", shape],
        ));
    }
    cases.push(err(
        "plot_recon --image-shape not matching the rows",
        RECON,
        os(&[&im, "--image-shape", "1,28,27"]),
        &["--image-shape 1,28,27", "784"],
    ));
    cases.push(err(
        "plot_recon --count 1e8",
        RECON,
        os(&[&im, "--count", "100000000"]),
        &["--count", "100000000"],
    ));
    cases.push(err(
        "plot_recon --cols 1e8",
        RECON,
        os(&[&im, "--cols", "100000000"]),
        &["--cols", "100000000"],
    ));
    cases.push(err(
        "plot_recon --cols 0",
        RECON,
        os(&[&im, "--cols", "0"]),
        &["--cols", "at least 1"],
    ));
    cases.push(err(
        "plot_all --image-shape 1,0,0",
        ALL,
        os(&[&sp, "--image-shape", "1,0,0"]),
        &["--image-shape"],
    ));

    // Dumps.
    cases.push(err(
        "plot_latent on a missing directory",
        LATENT,
        os(&[&out("nope")]),
        &["nope", "latent.safetensors"],
    ));
    let dir = w.join("trunc");
    copy_run(&spiral, &dir);
    let b = std::fs::read(dir.join("latent.safetensors")).unwrap();
    std::fs::write(dir.join("latent.safetensors"), &b[..b.len() / 3]).unwrap();
    cases.push(err(
        "plot_latent on a truncated dump",
        LATENT,
        os(&[&p(&dir)]),
        &["latent.safetensors"],
    ));
    cases.push(err(
        "plot_usage on a truncated dump",
        USAGE,
        os(&[&p(&dir)]),
        &["latent.safetensors"],
    ));
    let dir = w.join("shape");
    copy_run(&image, &dir);
    edit_header(&dir.join("latent.safetensors"), |h| {
        h["__metadata__"]["image_shape"] = "4294967296,4294967296,1".into()
    });
    cases.push(err(
        "plot_recon dump image_shape overflowing",
        RECON,
        os(&[&p(&dir)]),
        &["image_shape", "4294967296"],
    ));
    let dir = w.join("garbage");
    copy_run(&spiral, &dir);
    std::fs::write(
        dir.join("latent.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\xffgarbage",
    )
    .unwrap();
    cases.push(err(
        "plot_latent on a garbage dump",
        LATENT,
        os(&[&p(&dir)]),
        &["latent.safetensors"],
    ));
    let dir = w.join("dumpdir");
    copy_run(&spiral, &dir);
    std::fs::remove_file(dir.join("latent.safetensors")).unwrap();
    std::fs::create_dir(dir.join("latent.safetensors")).unwrap();
    cases.push(err(
        "plot_latent where the dump is a directory",
        LATENT,
        os(&[&p(&dir)]),
        &["latent.safetensors", "regular file"],
    ));

    // metrics.csv.
    let metrics = std::fs::read_to_string(spiral.join("metrics.csv")).unwrap();
    let bad_metrics = |name: &str, text: String, m: &[&str]| {
        let dir = w.join(name.replace(' ', "-"));
        copy_run(&spiral, &dir);
        std::fs::write(dir.join("metrics.csv"), text).unwrap();
        err(
            &format!("plot_curves {name}"),
            CURVES,
            os(&[&p(&dir), "-o", &out("c.png")]),
            m,
        )
    };
    let row = metrics.lines().nth(1).unwrap().to_string();
    let (head, tail) = row.split_once(',').unwrap();
    let (_, rest) = tail.split_once(',').unwrap();
    cases.push(bad_metrics(
        "metrics with NaN",
        format!("{metrics}2,NaN,{rest}\n"),
        &["metrics.csv", "data row 2", "NaN"],
    ));
    cases.push(bad_metrics(
        "metrics with inf",
        format!("{metrics}{head},inf,{rest}\n"),
        &["metrics.csv", "lower_bound", "inf"],
    ));
    cases.push(bad_metrics(
        "metrics with a short row",
        format!("{metrics}3,1\n"),
        &["metrics.csv", "fields"],
    ));
    cases.push(bad_metrics(
        "empty metrics",
        String::new(),
        &["metrics.csv", "empty"],
    ));
    cases.push(bad_metrics(
        "metrics without epoch rows",
        format!("{}\n", metrics.lines().next().unwrap()),
        &["metrics.csv", "no epoch rows"],
    ));
    cases.push(bad_metrics(
        "metrics of another file",
        "a,b\n1,2\n".into(),
        &["metrics.csv", "`epoch`"],
    ));

    assert!(cases.len() >= 30, "only {} cases", cases.len());
    run_suite(cases, w);
}
