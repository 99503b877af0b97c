//! End-to-end training on a small generated spiral: the lower bound improves, one seed gives one
//! set of numbers, an interrupted run resumes to the same numbers, outputs are complete.

use gmvae::options::{InitFrom, Options};
use gmvae::train::{self, METRICS_HEADER};
use std::path::Path;
use std::process::Command;

fn small_spiral(out: &Path, id: &str, epochs: usize) -> Options {
    let mut o = Options::preset("spiral").unwrap();
    o.out_dir = out.to_path_buf();
    o.id = id.into();
    o.epoch = epochs;
    o.spiral_points = 600;
    o.batch_size = 100;
    o.learning_rate = 1e-3;
    o.dump_size = 600;
    o
}

fn metrics(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), METRICS_HEADER);
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// The columns that must be bit-identical between runs (everything but wall time).
/// Every column but the wall time `seconds`.
fn numbers(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let seconds = METRICS_HEADER
        .split(',')
        .position(|c| c == "seconds")
        .unwrap();
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove(seconds);
            r
        })
        .collect()
}

#[test]
fn short_training_improves_the_lower_bound_and_writes_outputs() {
    let d = tempfile::tempdir().unwrap();
    // alpha = 0: the CV term (which trades lower bound for confident clusters) is off.
    let mut o = small_spiral(d.path(), "run", 8);
    o.cv_weight = 0.0;
    let s = train::train(&o.clone().validated().unwrap(), false).unwrap();
    assert_eq!(s.parameters, 26_752);
    let rows = metrics(&s.run_dir);
    assert_eq!(rows.len(), 8);
    let lb = |r: &Vec<String>| r[1].parse::<f64>().unwrap();
    assert!(
        lb(&rows[7]) > lb(&rows[0]) + 0.2,
        "lower bound {} -> {}",
        lb(&rows[0]),
        lb(&rows[7])
    );
    // Every term is logged, and accuracies are filled in for the labelled generator.
    for (col, v) in rows[7].iter().enumerate().skip(2) {
        assert!(v.parse::<f64>().unwrap().is_finite(), "column {col}");
    }
    let used: usize = rows[7][METRICS_HEADER
        .split(',')
        .position(|c| c == "clusters_used")
        .unwrap()]
    .parse()
    .unwrap();
    assert!((1..=8).contains(&used));
    let dump = gmvae::dump::LatentDump::load(&s.run_dir.join(gmvae::dump::FILE)).unwrap();
    assert_eq!((dump.n, dump.dx, dump.k, dump.epoch), (600, 2, 8, 8));
    assert!(dump.label.is_some() && dump.prior_var.iter().all(|&v| v > 0.0));
    let opts: Options =
        serde_json::from_str(&std::fs::read_to_string(s.run_dir.join("opts.json")).unwrap())
            .unwrap();
    assert_eq!(opts, o);
    // A second fresh run into the same directory is refused rather than overwriting it.
    let e = format!(
        "{:#}",
        train::train(&o.clone().validated().unwrap(), false).unwrap_err()
    );
    assert!(e.contains("--resume"), "{e}");
}

#[test]
fn same_seed_same_numbers_and_resume_matches_uninterrupted() {
    let d = tempfile::tempdir().unwrap();
    let full = train::train(
        &small_spiral(d.path(), "full", 4).validated().unwrap(),
        false,
    )
    .unwrap();
    let again = train::train(
        &small_spiral(d.path(), "again", 4).validated().unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(
        numbers(&metrics(&full.run_dir)),
        numbers(&metrics(&again.run_dir))
    );

    let mut other = small_spiral(d.path(), "seed2", 4);
    other.seed = 2;
    let other = train::train(&other.clone().validated().unwrap(), false).unwrap();
    assert_ne!(
        numbers(&metrics(&full.run_dir)),
        numbers(&metrics(&other.run_dir))
    );

    // Stop after 2 epochs, then resume to 4: same numbers as the uninterrupted run.
    let part = train::train(
        &small_spiral(d.path(), "part", 2).validated().unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(metrics(&part.run_dir).len(), 2);
    let resumed = train::train(
        &small_spiral(d.path(), "part", 4).validated().unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(
        numbers(&metrics(&resumed.run_dir)),
        numbers(&metrics(&full.run_dir))
    );
}

#[test]
fn plateau_stops_early_and_marks_the_run_done() {
    let d = tempfile::tempdir().unwrap();
    let mut o = small_spiral(d.path(), "plateau", 6);
    // Any gain below 10^9 is a plateau: stops after epoch 2 (the first with a 1-epoch window).
    (o.plateau_epochs, o.plateau_tol) = (1, 1e9);
    let s = train::train(&o.clone().validated().unwrap(), false).unwrap();
    assert_eq!(metrics(&s.run_dir).len(), 2);
    let done: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.run_dir.join(train::DONE_FILE)).unwrap())
            .unwrap();
    assert_eq!(
        (done["epochs"].as_u64(), done["reason"].as_str()),
        (Some(2), Some("plateau"))
    );
    // Without the rule the same run goes on to the end and is marked done there.
    let mut all = small_spiral(d.path(), "all", 3);
    all.plateau_epochs = 0;
    let s = train::train(&all.clone().validated().unwrap(), false).unwrap();
    assert_eq!(metrics(&s.run_dir).len(), 3);
    assert!(std::fs::read_to_string(s.run_dir.join(train::DONE_FILE))
        .unwrap()
        .contains("max_epochs"));
}

#[test]
fn v2_objective_and_reset_adam_train() {
    let d = tempfile::tempdir().unwrap();
    let mut o = small_spiral(d.path(), "v2", 3);
    o.objective = gmvae::objective::ObjectiveKind::V2;
    o.n_mc = 2;
    let s = train::train(&o.clone().validated().unwrap(), false).unwrap();
    assert_eq!(
        s.parameters,
        26_752 - (100 * 8 + 8),
        "v2 has no q(z|y) head"
    );
    assert!(s.last.unwrap().lower_bound().is_finite());
    let mut o = small_spiral(d.path(), "reset", 2);
    o.adam_reset = true;
    assert!(train::train(&o.clone().validated().unwrap(), false)
        .unwrap()
        .last
        .unwrap()
        .lower_bound()
        .is_finite());
}

#[test]
fn init_from_starts_a_new_run_from_another_runs_weights() {
    let d = tempfile::tempdir().unwrap();
    let src = train::train(
        &small_spiral(d.path(), "src", 6).validated().unwrap(),
        false,
    )
    .unwrap();
    let src_rows = metrics(&src.run_dir);

    // The weights are read exactly: every variable of a model built for a new run equals the
    // source's final weights (its exported model.safetensors) after `load_weights`, not before.
    let o = small_spiral(d.path(), "probe", 1);
    let model = gmvae::model::Model::new(
        &o,
        &train::load_dataset(&o).unwrap().shape(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let exported = candle_core::safetensors::load(
        src.run_dir.join(gmvae::export::MODEL_FILE),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let same = |model: &gmvae::model::Model| {
        model.vars.iter().all(|(n, v)| {
            let a = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            a == exported[n].flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
    };
    assert!(!same(&model));
    let ckpt = src.run_dir.join(gmvae::checkpoint::FILE);
    assert_eq!(
        gmvae::checkpoint::load_weights(&ckpt, &model.vars).unwrap(),
        6
    );
    assert!(same(&model));

    // A run started from them begins where the source ended: its reconstruction term after one
    // epoch is nearer the source's sixth epoch than its first. A run from the random start with
    // the same seed and recipe repeats the source's first epoch instead.
    let mut from = small_spiral(d.path(), "from", 1);
    from.init_from = Some(InitFrom {
        run: src.run_dir.clone(),
        epoch: 0,
    });
    let f = train::train(&from.clone().validated().unwrap(), false).unwrap();
    let fresh = train::train(
        &small_spiral(d.path(), "fresh", 1).validated().unwrap(),
        false,
    )
    .unwrap();
    let rec = |r: &Vec<String>| r[2].parse::<f64>().unwrap();
    let (first, last) = (rec(&src_rows[0]), rec(&src_rows[5]));
    let (f_rec, fresh_rec) = (
        rec(&metrics(&f.run_dir)[0]),
        rec(&metrics(&fresh.run_dir)[0]),
    );
    assert_eq!(fresh_rec, first);
    assert!(
        (f_rec - last).abs() < (f_rec - first).abs(),
        "source epochs 1 and 6: {first}, {last}; started from epoch 6, after one epoch: {f_rec}"
    );
    // opts.json records the source and the epoch read; a resume continues the new run's own
    // checkpoint.
    let recorded = Options::load(&f.run_dir).unwrap();
    assert_eq!(
        recorded.init_from,
        Some(InitFrom {
            run: src.run_dir.clone(),
            epoch: 6
        })
    );
    let mut more = recorded.clone();
    more.epoch = 2;
    train::train(&more.clone().validated().unwrap(), true).unwrap();
    assert_eq!(metrics(&f.run_dir).len(), 2);

    // Other networks are refused, naming the setting, before the run writes its opts.json.
    let mut other = small_spiral(d.path(), "otherk", 1);
    other.k = 4;
    other.init_from = from.init_from.clone();
    let e = format!(
        "{:#}",
        train::train(&other.clone().validated().unwrap(), false).unwrap_err()
    );
    assert!(
        e.contains("--init-from") && e.contains("-K: 8 there, 4 here"),
        "{e}"
    );
    assert!(!d.path().join("otherk").join("opts.json").exists());
}

fn gmvae(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmvae"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_rejects_bad_flags_and_missing_files_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().to_str().unwrap();
    for (args, expect) in [
        (vec!["spiral", "--k", "0"], "--k must be at least 1"),
        (vec!["spiral", "--cv-weight=-1"], "--cv-weight must be"),
        (vec!["spiral", "--batch-size", "1"], "--batch-size"),
        (vec!["spiral", "--gpu", "2"], "--gpu"),
        (vec!["spiral", "--continuous", "7"], "expected 0 or 1"),
        (vec!["spiral", "--network", "conv"], "image data"),
        (
            vec!["spiral", "--data", "/nonexistent/spiral.csv"],
            "/nonexistent/spiral.csv",
        ),
        (
            vec!["mnist_fc", "--data-dir", "/nonexistent/mnist"],
            "/nonexistent/mnist",
        ),
        (vec!["spiral", "--resume", "/nonexistent/run"], "opts.json"),
        (
            vec!["spiral", "--init-from", "/nonexistent/run"],
            "opts.json",
        ),
        (
            vec![
                "spiral",
                "--init-from",
                "/nonexistent/run",
                "--pretrain-epochs",
                "2",
            ],
            "--pretrain-epochs 2 would",
        ),
        (
            vec![
                "spiral",
                "--resume",
                "/nonexistent/run",
                "--init-from",
                "/x",
            ],
            "--init-from cannot change",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--out-dir", out]);
        let (code, _, err) = gmvae(&a);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (code, _, err) = gmvae(&["spiral", "--gpu", "1", "--out-dir", out]);
    if !candle_core::utils::cuda_is_available() {
        assert_eq!(code, 1);
        assert!(err.contains("--features cuda"), "{err}");
    }
}

#[test]
fn cli_trains_and_resumes_and_run_sh_translates_upstream_flags() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().to_str().unwrap();
    let (code, stdout, err) = gmvae(&[
        "spiral",
        "--epoch",
        "1",
        "--spiral-points",
        "400",
        "--id",
        "cli",
        "--out-dir",
        out,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("parameters: 26752") && stdout.contains("final test_acc"),
        "{stdout}"
    );
    let run = d.path().join("cli");
    let (code, stdout, err) = gmvae(&["spiral", "--resume", run.to_str().unwrap(), "--epoch", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("resuming") && stdout.contains("epoch 2/2"),
        "{stdout}"
    );
    assert_eq!(metrics(&run).len(), 2);
    // The raised epoch count was recorded: resuming again has nothing left to do.
    let (code, stdout, err) = gmvae(&["spiral", "--resume", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("nothing to do"), "{stdout}");

    // run.sh: camelCase single-dash flags become kebab-case; --flags pass through.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("run.sh");
    let out2 = Command::new("bash")
        .arg(&script)
        .args([
            "spiral",
            "-cvWeight",
            "0.0",
            "-epoch",
            "1",
            "-K",
            "4",
            "-_id",
            "upstream",
        ])
        .args(["--spiral-points", "300", "--out-dir", out])
        .env("GMVAE_BIN", env!("CARGO_BIN_EXE_gmvae"))
        .output()
        .unwrap();
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    let opts: Options = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("upstream").join("opts.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (opts.cv_weight, opts.epoch, opts.k, opts.spiral_points),
        (0.0, 1, 4, 300)
    );
    let bad = Command::new("bash")
        .arg(&script)
        .args(["spiral", "-noSuchFlag", "1"])
        .env("GMVAE_BIN", env!("CARGO_BIN_EXE_gmvae"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("-noSuchFlag"));
}

/// `--augment-weight` on small MNIST-format images: its term is logged (and only when on), one
/// seed gives one set of numbers, and it changes training.
#[test]
fn augmentation_consistency_trains_reproducibly_and_logs_its_term() {
    let d = tempfile::tempdir().unwrap();
    // Blurry blobs at random places: images whose transforms differ.
    let mut r = gmvae::rng::rng(9, 0);
    let blobs = |n: usize, r: &mut gmvae::rng::StdRng| -> (Vec<u8>, Vec<u8>) {
        use rand::Rng;
        let mut im = Vec::with_capacity(n * 784);
        let mut lb = Vec::with_capacity(n);
        for _ in 0..n {
            let (cy, cx) = (r.random_range(6.0..22.0f32), r.random_range(6.0..22.0f32));
            lb.push(u8::from(cx > 14.0));
            for i in 0..784 {
                let (y, x) = ((i / 28) as f32, (i % 28) as f32);
                let d2 = (y - cy).powi(2) + (x - cx).powi(2);
                im.push((255.0 * (-d2 / 18.0).exp()) as u8);
            }
        }
        (im, lb)
    };
    let (im, lb) = blobs(300, &mut r);
    gmvae::data::mnist::write_idx(d.path(), "train", &im, 28, 28, &lb, false).unwrap();
    let (im, lb) = blobs(100, &mut r);
    gmvae::data::mnist::write_idx(d.path(), "t10k", &im, 28, 28, &lb, false).unwrap();
    let run = |id: &str, beta: f64| {
        let mut o = Options::preset("mnist_fc").unwrap();
        (o.data_dir, o.out_dir, o.id) = (d.path().into(), d.path().into(), id.into());
        (o.hidden_size, o.x_size, o.w_size, o.k) = (32, 4, 2, 3);
        (o.epoch, o.pretrain_epochs, o.visual_gen, o.dump_size) = (2, 1, 0, 10);
        o.augment_weight = beta;
        let s = train::train(&o.validated().unwrap(), false).unwrap();
        numbers(&metrics(&s.run_dir))
    };
    let col = METRICS_HEADER
        .split(',')
        .position(|c| c == "augment")
        .unwrap()
        - 1; // `numbers` drops `seconds`, which comes before it
    let on = run("on", 2.0);
    assert!(on.iter().all(|row| row[col].parse::<f64>().unwrap() > 0.0));
    assert_eq!(on, run("again", 2.0), "same seed, same numbers");
    let off = run("off", 0.0);
    assert!(off.iter().all(|row| row[col] == "0.000000"));
    assert_ne!(on[0][1], off[0][1], "the term changes training");
}
