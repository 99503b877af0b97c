//! Your own data: the table readers (every format, header or not, label by name or index, bad
//! files), scaling, the held-out split, and `table` training + `export` + `predict` through the
//! binary on data the test writes; the README's Python snippet against `predict`.

use gmvae::data::npy::{self, Dtype};
use gmvae::data::reader::{Batch, Header, TableReader, TextRules};
use gmvae::data::scale::{LikelihoodChoice, Scale, Scaler};
use gmvae::data::table;
use gmvae::options::table::TableOptions;
use gmvae::options::Options;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Three well-separated blobs in 4-D (deterministic), with labels "a", "b", "c".
fn blobs(n: usize) -> (Vec<f64>, Vec<&'static str>) {
    let centres = [
        [0.0, 0.0, 5.0, -3.0],
        [6.0, 1.0, -2.0, 0.0],
        [-4.0, 7.0, 0.0, 4.0],
    ];
    let mut y = Vec::new();
    let mut labels = Vec::new();
    let mut s = 12345u64;
    let mut noise = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.5
    };
    for i in 0..n {
        let c = i % 3;
        for v in centres[c] {
            // Two decimals, so text and binary files hold exactly the same numbers.
            y.push(((v + noise()) * 100.0).round() / 100.0);
        }
        labels.push(["a", "b", "c"][c]);
    }
    (y, labels)
}

fn write_csv(path: &Path, y: &[f64], labels: Option<&[&str]>, header: bool, sep: &str) {
    let mut s = String::new();
    if header {
        s += &["f0", "f1", "f2", "f3"].join(sep);
        if labels.is_some() {
            s += &format!("{sep}label");
        }
        s += "\n";
    }
    for (i, row) in y.chunks(4).enumerate() {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        s += &cells.join(sep);
        if let Some(l) = labels {
            s += &format!("{sep}{}", l[i]);
        }
        s += "\n";
    }
    std::fs::write(path, s).unwrap();
}

fn read(path: &Path, label: Option<&str>) -> Batch {
    TableReader::open(path, label, None, &TextRules::default())
        .unwrap()
        .read_all()
        .unwrap()
}

fn err_of(path: &Path, label: Option<&str>) -> String {
    let r =
        TableReader::open(path, label, None, &TextRules::default()).and_then(|mut r| r.read_all());
    format!("{:#}", r.expect_err("should fail"))
}

#[test]
fn every_format_reads_the_same_table() {
    let d = tempfile::tempdir().unwrap();
    let (y, labels) = blobs(30);
    let want: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let p = |n: &str| d.path().join(n);

    write_csv(&p("h.csv"), &y, Some(&labels), true, ",");
    let by_name = read(&p("h.csv"), Some("label"));
    assert_eq!((by_name.rows, &by_name.y), (30, &want));
    assert_eq!(by_name.labels.as_ref().unwrap()[..3], ["a", "b", "c"]);
    let r = TableReader::open(&p("h.csv"), Some("label"), None, &TextRules::default()).unwrap();
    assert_eq!(r.columns.as_deref().unwrap(), ["f0", "f1", "f2", "f3"]);
    // Rows come in batches, and a batch reads only its share of the file (streaming).
    let mut r = TableReader::open(&p("h.csv"), Some("label"), None, &TextRules::default()).unwrap();
    let b = r.next_batch(5).unwrap().unwrap();
    assert_eq!(
        (b.rows, &b.y[..], b.labels.unwrap().len()),
        (5, &want[..20], 5)
    );
    assert!(
        r.bytes_read() < r.file_len / 2,
        "{} of {}",
        r.bytes_read(),
        r.file_len
    );
    // By index, with and without a header.
    assert_eq!(read(&p("h.csv"), Some("4")), by_name);
    write_csv(&p("n.csv"), &y, Some(&labels), false, ",");
    assert_eq!(read(&p("n.csv"), Some("4")), by_name);
    // No labels: a header-less file of numbers only.
    write_csv(&p("plain.csv"), &y, None, false, ",");
    let plain = read(&p("plain.csv"), None);
    assert_eq!((plain.y, plain.labels), (want.clone(), None));
    // TSV and whitespace text.
    write_csv(&p("t.tsv"), &y, Some(&labels), true, "\t");
    assert_eq!(read(&p("t.tsv"), Some("label")), by_name);
    write_csv(&p("w.txt"), &y, Some(&labels), false, "   ");
    assert_eq!(read(&p("w.txt"), Some("4")), by_name);

    // .npy, f64 and f32, labels as a numeric column.
    let mut with_label = Vec::new();
    for (i, row) in y.chunks(4).enumerate() {
        with_label.extend_from_slice(row);
        with_label.push((i % 3) as f64);
    }
    for dtype in [Dtype::F64, Dtype::F32] {
        std::fs::write(p("x.npy"), npy::to_bytes(&with_label, 30, 5, dtype)).unwrap();
        let b = read(&p("x.npy"), Some("4"));
        assert_eq!(b.y, want, "{dtype:?}");
        assert_eq!(b.labels.unwrap()[..4], ["0", "1", "2", "0"]);
    }
    std::fs::write(p("x.npy"), npy::to_bytes(&y, 30, 4, Dtype::F32)).unwrap();
    assert_eq!(read(&p("x.npy"), None).y, want);

    // safetensors: one 2-D tensor, an optional 1-D labels tensor.
    let dev = candle_core::Device::Cpu;
    let x = candle_core::Tensor::from_vec(want.clone(), (30, 4), &dev).unwrap();
    let l = candle_core::Tensor::from_vec((0..30u32).map(|i| i % 3).collect::<Vec<_>>(), 30, &dev)
        .unwrap();
    let st = p("x.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("x".to_string(), x.clone()), ("y".to_string(), l)]),
        &st,
    )
    .unwrap();
    let b = read(&st, Some("y"));
    assert_eq!(b.y, want);
    assert_eq!(b.labels.unwrap()[..4], ["0", "1", "2", "0"]);
    // Two 2-D tensors: ambiguous unless --tensor names one.
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("a".to_string(), x.clone()), ("b".to_string(), x)]),
        &st,
    )
    .unwrap();
    let e = err_of(&st, None);
    assert!(
        e.contains("exactly one 2-D tensor") && e.contains("--tensor"),
        "{e}"
    );
    let mut r = TableReader::open(&st, None, Some("b"), &TextRules::default()).unwrap();
    assert_eq!(r.read_all().unwrap().y, want);
}

#[test]
fn bad_tables_are_explained_with_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str, text: &str| {
        let path = d.path().join(n);
        std::fs::write(&path, text).unwrap();
        path
    };
    let nan = p("nan.csv", "a,b,c\n1,2,3\n4,NaN,6\n");
    let e = err_of(&nan, None);
    assert!(
        e.contains("nan.csv:3") && e.contains("`b`") && e.contains("not finite"),
        "{e}"
    );
    let inf = p("inf.txt", "1 2\n3 inf\n");
    let e = err_of(&inf, None);
    assert!(e.contains("inf.txt:2") && e.contains("column 1"), "{e}");
    let ragged = p("ragged.csv", "1,2,3\n4,5\n");
    let e = err_of(&ragged, None);
    assert!(
        e.contains("ragged.csv:2") && e.contains("expected 3 fields"),
        "{e}"
    );
    let word = p("word.csv", "x,y,kind\n1,2,cat\n");
    let e = err_of(&word, None);
    assert!(
        e.contains("word.csv:2") && e.contains("--label-column"),
        "{e}"
    );
    let empty = p("empty.csv", "x,y\n1,\n");
    assert!(err_of(&empty, None).contains("empty field"));
    let e = err_of(&word, Some("species"));
    assert!(
        e.contains("no column named `species`") && e.contains("x, y, kind"),
        "{e}"
    );
    let headerless = p("nh.csv", "1,2,0\n3,4,1\n");
    assert!(err_of(&headerless, Some("label")).contains("no header row"));
    assert!(err_of(&headerless, Some("3")).contains("out of range"));
    assert!(err_of(&p("none.csv", "# only a comment\n\n"), None).contains("no data rows"));

    let ints = d.path().join("i.npy");
    let mut b = npy::to_bytes(&[1.0, 2.0], 2, 1, Dtype::F32);
    let at = b.windows(3).position(|w| w == b"<f4").unwrap();
    b[at..at + 3].copy_from_slice(b"<i8");
    std::fs::write(&ints, &b).unwrap();
    assert!(err_of(&ints, None).contains("dtype `<i8` is not supported"));
    let fortran = d.path().join("f.npy");
    let mut b = npy::to_bytes(&[1.0; 4], 2, 2, Dtype::F32);
    let at = b.windows(5).position(|w| w == b"False").unwrap();
    b[at..at + 5].copy_from_slice(b"True ");
    std::fs::write(&fortran, b).unwrap();
    assert!(err_of(&fortran, None).contains("Fortran order"));
    let mut nan_npy = npy::to_bytes(&[1.0, f64::NAN, 3.0, 4.0], 2, 2, Dtype::F64);
    std::fs::write(d.path().join("n.npy"), &nan_npy).unwrap();
    let e = err_of(&d.path().join("n.npy"), None);
    assert!(e.contains("row 0 column 1"), "{e}");
    nan_npy.truncate(nan_npy.len() - 3);
    std::fs::write(d.path().join("t.npy"), &nan_npy).unwrap();
    assert!(err_of(&d.path().join("t.npy"), None).contains("truncated"));
    assert!(err_of(&p("junk.npy", "hello"), None).contains("not a readable .npy"));
}

#[test]
fn scaling_round_trips_and_is_fitted_on_the_training_rows() {
    // Column 0 varies, column 1 is constant.
    let y: Vec<f32> = vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0, -1.0, 5.0];
    for kind in [Scale::None, Scale::Minmax, Scale::Standardize] {
        let s = Scaler::fit(kind, &y, 2);
        let mut z = y.clone();
        s.apply(&mut z);
        let col0: Vec<f32> = z.iter().step_by(2).copied().collect();
        match kind {
            Scale::Minmax => assert_eq!(col0, [1.0 / 3.0, 2.0 / 3.0, 1.0, 0.0]),
            Scale::Standardize => {
                let mean = col0.iter().sum::<f32>() / 4.0;
                let var = col0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
                assert!(
                    mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
                    "{mean} {var}"
                );
            }
            _ => assert_eq!(z, y),
        }
        // A constant column is shifted, never divided by zero.
        assert!(z.iter().skip(1).step_by(2).all(|v| v.is_finite()));
        s.invert(&mut z);
        for (a, b) in z.iter().zip(&y) {
            assert!((a - b).abs() < 1e-5, "{kind:?}: {a} vs {b}");
        }
    }

    let d = tempfile::tempdir().unwrap();
    let (y, labels) = blobs(50);
    let path = d.path().join("b.csv");
    write_csv(&path, &y, Some(&labels), true, ",");
    let mut o = Options::preset("table").unwrap();
    o.data = Some(path.clone());
    o.table = Some(TableOptions {
        label_column: Some("label".into()),
        test_fraction: 0.2,
        ..Default::default()
    });
    let (ds, fitted) = table::load(&o.table_spec().unwrap(), Default::default()).unwrap();
    assert_eq!(
        (ds.train.n, ds.test.as_ref().unwrap().n, ds.dy),
        (40, 10, 4)
    );
    // auto: values outside [0,1] -> standardize + Gaussian; train rows are centred.
    assert_eq!(fitted.scaler.kind, Scale::Standardize);
    assert_eq!(fitted.likelihood, LikelihoodChoice::Gaussian);
    let mean0: f32 = ds.train.y.iter().step_by(4).sum::<f32>() / 40.0;
    assert!(mean0.abs() < 1e-5);
    // One seed, one split; another seed, another split.
    assert_eq!(
        table::load(&o.table_spec().unwrap(), Default::default())
            .unwrap()
            .0,
        ds
    );
    o.seed = 2;
    assert_ne!(
        table::load(&o.table_spec().unwrap(), Default::default())
            .unwrap()
            .0
            .test,
        ds.test
    );
    // Data already in [0,1]: auto keeps it and picks Bernoulli.
    o.table.as_mut().unwrap().scale = Scale::Minmax;
    let (ds01, f01) = table::load(&o.table_spec().unwrap(), Default::default()).unwrap();
    assert_eq!(f01.likelihood, LikelihoodChoice::Bernoulli);
    assert!(ds01.train.y.iter().all(|v| (0.0..=1.0).contains(v)));
    o.table.as_mut().unwrap().test_fraction = 1.0;
    assert!(format!(
        "{:#}",
        o.table_spec()
            .and_then(|s| table::load(&s, Default::default()))
            .unwrap_err()
    )
    .contains("--test-fraction"));
}

fn gmvae(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmvae"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn csv_rows(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap().to_string();
    (
        head,
        lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect(),
    )
}

/// Trains a tiny table run in `dir` and returns its run directory.
fn tiny_run(dir: &Path, data: &Path) -> PathBuf {
    let out = dir.to_str().unwrap();
    let (ok, stdout, err) = gmvae(&[
        "table",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "label",
        "--k",
        "3",
        "--epoch",
        "40",
        "--hidden-size",
        "32",
        "--x-size",
        "3",
        "--w-size",
        "2",
        "--batch-size",
        "20",
        // One run (the preset's 5 restarts are tests/restarts.rs'), with its own checkpoint.
        "--n-init",
        "1",
        "--out-dir",
        out,
        "--id",
        "run",
    ]);
    assert!(ok, "{stdout}\n{err}");
    assert!(
        stdout.contains("scaling standardize (auto")
            && stdout.contains("likelihood gaussian (auto")
    );
    assert!(
        stdout.contains("labels from column `label` (3 classes"),
        "{stdout}"
    );
    dir.join("run")
}

#[test]
fn table_train_export_predict_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let (y, labels) = blobs(300);
    let data = d.path().join("blobs.csv");
    write_csv(&data, &y, Some(&labels), true, ",");
    let run = tiny_run(d.path(), &data);
    // Three far-apart blobs: the held-out rows are clustered well.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last: Vec<f64> = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect();
    println!("held-out hungarian accuracy {}", last[9]);
    assert!(last[9] > 0.9, "hungarian accuracy {} ({metrics})", last[9]);

    // --resume keeps the recorded scaling, likelihood and split: the table's own flags are
    // refused as the shared ones are, not silently ignored.
    let run_s = run.to_str().unwrap();
    let (ok, _, err) = gmvae(&["table", "--resume", run_s, "--scale", "minmax"]);
    assert!(
        !ok && err.contains("--scale cannot change") && err.contains("opts.json"),
        "{err}"
    );

    // export from the checkpoint writes exactly what training wrote.
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let (ok, _, err) = gmvae(&["export", run.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    assert_eq!(
        std::fs::read_to_string(run.join("config.json")).unwrap(),
        config
    );
    // Weights only: no optimiser state, a fraction of the checkpoint.
    let ckpt = std::fs::metadata(run.join("checkpoint.safetensors"))
        .unwrap()
        .len();
    assert!((model.len() as u64) < ckpt / 2);

    // predict: CSV (with the label copied), .npy, and a small batch size give the same rows.
    let p_csv = d.path().join("p.csv");
    let (ok, stdout, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        p_csv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("predicted 300 rows") && stdout.contains("hungarian"),
        "{stdout}"
    );
    let (head, rows) = csv_rows(&p_csv);
    assert_eq!(
        head,
        "component,q_z_0,q_z_1,q_z_2,x_mean_0,x_mean_1,x_mean_2,label"
    );
    assert_eq!(rows.len(), 300);
    for r in &rows {
        let q: Vec<f64> = r[1..4].iter().map(|v| v.parse().unwrap()).collect();
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        let argmax = (0..3).fold(0, |b, j| if q[j] > q[b] { j } else { b });
        assert_eq!(r[0], argmax.to_string());
    }
    assert_eq!(rows[1][7], "b");

    let p_npy = d.path().join("p.npy");
    let (ok, _, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        p_npy.to_str().unwrap(),
        "--batch-size",
        "7",
    ]);
    assert!(ok, "{err}");
    let (h, v) = npy::read(&p_npy).unwrap();
    assert_eq!((h.rows, h.cols), (300, 7));
    for (i, r) in rows.iter().enumerate() {
        for j in 0..7 {
            let a: f64 = r[j].parse().unwrap();
            assert!(
                (a - v[i * 7 + j]).abs() < 1e-5,
                "row {i} col {j}: {a} vs {}",
                v[i * 7 + j]
            );
        }
    }

    // The same rows from a headerless .npy without labels: the same predictions.
    let feats = d.path().join("new.npy");
    std::fs::write(&feats, npy::to_bytes(&y, 300, 4, Dtype::F64)).unwrap();
    let (ok, stdout, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        feats.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let first: Vec<&str> = stdout.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(
        first[..7],
        rows[0].iter().map(String::as_str).collect::<Vec<_>>()[..7]
    );

    // Wrong width, bad output name, missing model: clear errors, no output file left behind.
    let narrow = d.path().join("narrow.csv");
    std::fs::write(&narrow, "1,2,3\n4,5,6\n").unwrap();
    let (ok, _, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        narrow.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("3 feature columns") && err.contains("f0, f1, f2, f3"),
        "{err}"
    );
    let (ok, _, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        d.path().join("p.parquet").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains(".csv or .npy"), "{err}");
    assert!(!d.path().join("p.parquet").exists());
    let (ok, _, err) = gmvae(&[
        "predict",
        "--run",
        d.path().to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("config.json"), "{err}");
    let (ok, _, err) = gmvae(&["table", "--out-dir", d.path().to_str().unwrap()]);
    assert!(!ok && err.contains("--data FILE"), "{err}");
}

/// The README's Python snippet (section "Your own data"), run on a tiny run, prints the q(z|y)
/// that `gmvae predict` writes.
#[test]
fn readme_python_snippet_matches_predict() {
    let ok = Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 with numpy and safetensors is not importable here");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("python3 - ")
        .expect("README has the python3 snippet");
    let body_start = start + readme[start..].find('\n').unwrap() + 1;
    let body_len = readme[body_start..].find("\nEOF").unwrap() + 1;
    let snippet = &readme[body_start..body_start + body_len];
    assert!(snippet.lines().count() <= 12, "{snippet}");

    let d = tempfile::tempdir().unwrap();
    let (y, labels) = blobs(300);
    let data = d.path().join("blobs.csv");
    write_csv(&data, &y, Some(&labels), true, ",");
    let run = tiny_run(d.path(), &data);
    let new = d.path().join("new.csv");
    write_csv(&new, &y[..40], None, true, ",");
    let (ok, stdout, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        new.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let mut py = Command::new("python3")
        .args(["-", run.to_str().unwrap(), new.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin
        .take()
        .unwrap()
        .write_all(snippet.as_bytes())
        .unwrap();
    let out = py.wait_with_output().unwrap();
    let py_out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py_rows: Vec<&str> = py_out.lines().collect();
    let rust_rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(py_rows.len(), 10);
    for (i, (p, r)) in py_rows.iter().zip(rust_rows).enumerate() {
        let p: Vec<f64> = p.split(',').map(|v| v.trim().parse().unwrap()).collect();
        let r: Vec<f64> = r
            .split(',')
            .skip(1)
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(p.len(), 3, "row {i}");
        for (a, b) in p.iter().zip(&r) {
            assert!(
                (a - b).abs() < 1e-5,
                "row {i}: python {p:?} vs predict {r:?}"
            );
        }
    }
}

/// `predict` on an MNIST IDX images file with a (tiny) mnist_fc run; `export` refuses a
/// directory that is not a run.
#[test]
fn predict_reads_mnist_idx_for_an_mnist_run() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let img = |n: usize| {
        (0..n * 784)
            .map(|i| ((i * 7) % 256) as u8)
            .collect::<Vec<u8>>()
    };
    let lab = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    gmvae::data::mnist::write_idx(&data, "train", &img(40), 28, 28, &lab(40), true).unwrap();
    gmvae::data::mnist::write_idx(&data, "t10k", &img(12), 28, 28, &lab(12), true).unwrap();
    let out = d.path().to_str().unwrap();
    let (ok, stdout, err) = gmvae(&[
        "mnist_fc",
        "--data-dir",
        data.to_str().unwrap(),
        "--epoch",
        "1",
        "--hidden-size",
        "8",
        "--x-size",
        "3",
        "--w-size",
        "2",
        "--k",
        "4",
        "--batch-size",
        "20",
        "--visual-gen",
        "0",
        "--out-dir",
        out,
        "--id",
        "m",
    ]);
    assert!(ok, "{stdout}\n{err}");
    let run = d.path().join("m");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["dy"].as_u64(), config["K"].as_u64()),
        (Some(784), Some(4))
    );
    assert_eq!(config["scaling"]["kind"], "none");
    let images = data.join("t10k-images-idx3-ubyte.gz");
    let p = d.path().join("m.csv");
    let (ok, stdout, err) = gmvae(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        images.to_str().unwrap(),
        "--out",
        p.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("predicted 12 rows"), "{stdout}");
    let (head, rows) = csv_rows(&p);
    assert!(
        head.starts_with("component,q_z_0,") && head.ends_with("x_mean_2"),
        "{head}"
    );
    assert_eq!((rows.len(), rows[0].len()), (12, 1 + 4 + 3));
    let (ok, _, err) = gmvae(&["export", d.path().to_str().unwrap()]);
    assert!(!ok && err.contains("opts.json"), "{err}");
}

#[test]
fn the_reader_says_what_it_decided_about_header_and_comments() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str, text: &str| {
        let path = d.path().join(n);
        std::fs::write(&path, text).unwrap();
        path
    };
    let notes = |path: &Path| {
        let mut r = TableReader::open(path, None, None, &TextRules::default()).unwrap();
        r.read_all().unwrap();
        r.notes()
    };
    let named = p("named.csv", "# a comment\nx,y\n1,2\n# another\n3,4\n");
    assert_eq!(
        notes(&named),
        [
            "header: yes (first line has names)",
            "skipped 2 comment line(s) starting with `#` (--comment '' keeps them)"
        ]
    );
    assert_eq!(
        notes(&p("plain.txt", "1 2\n3 4\n")),
        ["header: no (first line is numbers)"]
    );
    // A label column may be text in the first line of a headerless file; the index 2 is not
    // the value 2 of that line.
    let mut r = TableReader::open(
        &p("lab.csv", "1,2,cat\n3,4,dog\n"),
        Some("2"),
        None,
        &TextRules::default(),
    )
    .unwrap();
    assert_eq!(r.read_all().unwrap().y, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(r.notes(), ["header: no (first line is numbers)"]);
    // `NA` or an empty field never makes the first row a header.
    assert!(err_of(&p("na.csv", "1,NA\n3,4\n"), None).contains("neither a header"));
    assert!(err_of(&p("gap.csv", "1,\n3,4\n"), None).contains("gap.csv:1"));
}

#[test]
fn header_and_comment_rules_can_be_set() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str, text: &str| {
        let path = d.path().join(n);
        std::fs::write(&path, text).unwrap();
        path
    };
    let rules = |header, comment: &str| TextRules {
        header,
        comment: comment.into(),
    };
    // An all-numeric header (years): auto reads it as data, --header yes as names.
    let years = p("years.csv", "2019,2020,2021\n1,2,3\n4,5,6\n");
    let mut r = TableReader::open(&years, None, None, &rules(Header::Yes, "#")).unwrap();
    assert_eq!(r.columns.clone().unwrap(), ["2019", "2020", "2021"]);
    assert_eq!(r.read_all().unwrap().rows, 2);
    assert_eq!(r.notes(), ["header: yes (first line has names, --header)"]);
    let mut r = TableReader::open(&years, None, None, &TextRules::default()).unwrap();
    assert_eq!(r.read_all().unwrap().rows, 3);
    // --header no: a line of names is a row, and its first field is not a number.
    let named = p("named.csv", "x,y\n1,2\n");
    let e = TableReader::open(&named, None, None, &rules(Header::No, "#"))
        .and_then(|mut r| r.read_all())
        .unwrap_err();
    assert!(format!("{e:#}").contains("named.csv:1"), "{e:#}");
    // An id label column `#0, #1, ...`: skipped as comments by default (and said), kept with
    // --comment ''.
    let ids = p("ids.csv", "id,v\n#0,1\n#1,2\n#2,3\n");
    let read = |r: &TextRules| {
        let mut t = TableReader::open(&ids, Some("id"), None, r).unwrap();
        let rows = t.read_all().map(|b| b.rows);
        (rows.ok(), t.notes())
    };
    let (rows, notes) = read(&TextRules::default());
    assert_eq!(rows, None, "every data row is a comment: no data rows");
    assert!(
        notes.iter().any(|n| n.contains("skipped 3 comment")),
        "{notes:?}"
    );
    assert_eq!(read(&rules(Header::Auto, "")).0, Some(3));
    // The table preset's flags reach the reader; --test-fraction's negative value is named.
    let (ok, _, err) = gmvae(&[
        "table",
        "--data",
        years.to_str().unwrap(),
        "--header",
        "yes",
        "--test-fraction",
        "-0.1",
    ]);
    assert!(
        !ok && err.contains("--test-fraction must be in [0, 1), found -0.1"),
        "{err}"
    );
}

#[test]
fn predict_matches_columns_by_name() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("t.csv");
    std::fs::write(&path, "a,b,c\n1,2,3\n4,5,6\n").unwrap();
    let trained: Vec<String> = ["c", "a", "b"].map(String::from).to_vec();
    let mut r = TableReader::open(&path, None, None, &TextRules::default()).unwrap();
    assert!(r.match_columns(&trained).unwrap());
    assert_eq!(r.read_all().unwrap().y, [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]);
    let other: Vec<String> = ["a", "b", "z"].map(String::from).to_vec();
    let e = TableReader::open(&path, None, None, &TextRules::default())
        .unwrap()
        .match_columns(&other)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a, b, c") && e.contains("a, b, z"), "{e}");
}

#[test]
fn constant_columns_scale_without_division_by_zero_and_are_named_once() {
    // Two constant columns among four: every scaling keeps them finite.
    let y: Vec<f32> = (0..20)
        .flat_map(|i| [i as f32, 4.0, -(i as f32) * 0.5, 0.0])
        .collect();
    for kind in [Scale::Standardize, Scale::Minmax, Scale::None] {
        let s = Scaler::fit(kind, &y, 4);
        assert_eq!((s.scale[1], s.scale[3]), (1.0, 1.0), "{kind:?}");
        let mut z = y.clone();
        s.apply(&mut z);
        assert!(z.iter().all(|v| v.is_finite()), "{kind:?}");
    }
    assert_eq!(gmvae::data::scale::constant_columns(&y, 4), vec![1, 3]);
    let names: Vec<String> = ["a", "flat", "c", "zero"].map(String::from).to_vec();
    let note = gmvae::data::scale::constant_note(&y, 4, Some(&names)).unwrap();
    assert!(
        note.contains("2 constant columns (`flat`, `zero`)"),
        "{note}"
    );
    assert!(gmvae::data::scale::constant_note(&y[..4], 4, None).is_some());

    // Through `gmvae table`: trains, and the log names the column once.
    let d = tempfile::tempdir().unwrap();
    let (mut y, labels) = blobs(60);
    for row in y.chunks_mut(4) {
        row[2] = 7.25;
    }
    let data = d.path().join("flat.csv");
    write_csv(&data, &y, Some(&labels), true, ",");
    let (ok, stdout, err) = gmvae(&[
        "table",
        "--data",
        data.to_str().unwrap(),
        "--label-column",
        "label",
        "-K",
        "3",
        "--epoch",
        "2",
        "--hidden-size",
        "16",
        "--batch-size",
        "20",
        "--out-dir",
        d.path().to_str().unwrap(),
        "--id",
        "flat",
    ]);
    assert!(ok, "{stdout}\n{err}");
    assert_eq!(stdout.matches("constant column").count(), 1, "{stdout}");
    assert!(stdout.contains("1 constant column (`f2`)"), "{stdout}");
    let m = std::fs::read_to_string(d.path().join("flat/metrics.csv")).unwrap();
    let lb = gmvae::record::csv_lower_bound(m.lines().last().unwrap());
    assert!(lb.is_some_and(f64::is_finite), "{m}");
}
