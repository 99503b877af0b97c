//! The bad-input suite: drives the real `gmvae` and `bench` binaries with hostile flags and
//! files, each run under a timeout, and classifies every outcome:
//!
//! - clear error: non-zero exit, exactly one `error:` line that names what the case expects
//!   (the flag or file, the value), no panic or backtrace;
//! - accepted: exit 0 on an input that is valid, with the expected effect;
//! - panic (or abort/signal), hang (killed after the timeout), wrong success (exit 0 on bad
//!   input, or a wrong side effect), unclear (failed without a clear `error:` line), refused
//!   (a valid input rejected).
//!
//! The test prints the counts and fails on anything but clear errors and acceptances. The plot
//! binaries' cases are in `plot/tests/bad_inputs.rs`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const GMVAE: &str = env!("CARGO_BIN_EXE_gmvae");
const BENCH: &str = env!("CARGO_BIN_EXE_bench");
const ACCURACY_TABLE: &str = env!("CARGO_BIN_EXE_accuracy_table");

mod harness;
use harness::*;

// ---- fixtures -------------------------------------------------------------------------------

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> String {
    std::fs::write(path, bytes).unwrap();
    p(path)
}

/// A labelled spiral CSV of `n` points (valid).
fn spiral_csv(n: usize) -> String {
    let mut s = String::from("y1,y2,label\n");
    for i in 0..n {
        let t = i as f64 * 0.37;
        s += &format!("{:.4},{:.4},{}\n", t.cos(), t.sin(), i % 5);
    }
    s
}

fn t7(rows: usize) -> Vec<u8> {
    let v: Vec<f64> = (0..rows * 2).map(|i| (i as f64 * 0.1).sin()).collect();
    gmvae::data::spiral::write_t7_matrix(&v, rows, 2)
}

/// Byte offsets in [`t7`]'s layout: the two sizes, two strides, offset; the storage size; data.
const T7_ROWS: usize = 41;
const T7_STRIDE0: usize = 57;
const T7_STORAGE: usize = 119;
const T7_DATA: usize = 127;

fn patch(mut b: Vec<u8>, at: usize, v: &[u8]) -> Vec<u8> {
    b[at..at + v.len()].copy_from_slice(v);
    b
}

/// Rewrites a safetensors file's JSON header with `edit`, keeping the data.
fn edit_safetensors(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
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

/// Overwrites the first value of the first f32 model tensor of a checkpoint with `v`.
fn poison_checkpoint(path: &Path, v: f32) {
    let mut b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let (_, info) = h
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, i)| k.starts_with("model.") && i["dtype"] == "F32")
        .unwrap();
    let at = 8 + n + info["data_offsets"][0].as_u64().unwrap() as usize;
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != ".lock" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn opts_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("opts.json")).unwrap()).unwrap()
}

fn set_opts(dir: &Path, key: &str, v: serde_json::Value) {
    let mut o = opts_json(dir);
    o[key] = v;
    std::fs::write(dir.join("opts.json"), serde_json::to_string(&o).unwrap()).unwrap();
}

/// Trains a one-epoch spiral run `runs/<id>` through the binary (the base of the resume cases).
fn base_run(runs: &Path, id: &str, epochs: &str) -> PathBuf {
    let s = Command::new(GMVAE)
        .args(["spiral", "--spiral-points", "100", "--batch-size", "50"])
        .args(["--epoch", epochs, "--id", id, "--out-dir"])
        .arg(runs)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    runs.join(id)
}

fn no_dir(path: PathBuf) -> impl Fn() -> Result<(), String> {
    move || match path.exists() {
        true => Err(format!("{} was created", path.display())),
        false => Ok(()),
    }
}

fn empty_or_absent(dir: PathBuf) -> impl Fn() -> Result<(), String> {
    move || match std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) {
        0 => Ok(()),
        _ => Err(format!("files were written into {}", dir.display())),
    }
}

// ---- the cases ------------------------------------------------------------------------------

/// A quick spiral training command line: `extra`, then the defaults of a one-epoch run of 100
/// points for the flags `extra` does not give (clap refuses a flag given twice).
fn tiny(out: &Path, id: &str, extra: &[&str]) -> Vec<OsString> {
    let mut v = os(&["spiral", "--out-dir", &p(out), "--id", id]);
    v.extend(os(extra));
    for (flag, value) in [
        ("--spiral-points", "100"),
        ("--batch-size", "50"),
        ("--epoch", "1"),
    ] {
        let given = |flag: &str| {
            extra
                .iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        // A spiral file gives the points (--spiral-points would be refused).
        let unwanted = flag == "--spiral-points" && given("--data");
        if !(given(flag) || unwanted) {
            v.extend(os(&[flag, value]));
        }
    }
    v
}

fn with(base: &[String], extra: &[&str]) -> Vec<OsString> {
    base.iter()
        .map(OsString::from)
        .chain(extra.iter().map(OsString::from))
        .collect()
}

fn flag_cases(cases: &mut Vec<Case>, work: &Path) {
    let out = work.join("flags");
    let e = |name: &str, id: &str, extra: &[&str], m: &[&str]| {
        err(name, GMVAE, tiny(&out, id, extra), m).then(no_dir(out.join(id)))
    };
    cases.push(e("--epoch 0", "e0", &["--epoch", "0"], &["--epoch", "0"]));
    cases.push(e(
        "--epoch u64::MAX",
        "emax",
        &["--epoch", "18446744073709551615"],
        &["--epoch", "18446744073709551615"],
    ));
    cases.push(e(
        "huge --k",
        "k",
        &["--k", "100000000"],
        &["--k", "100000000", "1000"],
    ));
    cases.push(e("--k 0", "k0", &["--k", "0"], &["--k"]));
    cases.push(e(
        "huge --n-mc",
        "nmc",
        &["--n-mc", "100000"],
        &["--n-mc", "100000"],
    ));
    cases.push(e(
        "huge --hidden-size",
        "h",
        &["--hidden-size", "10000000"],
        &["--hidden-size", "10000000"],
    ));
    cases.push(e(
        "huge --x-size",
        "dx",
        &["--x-size", "1000000"],
        &["--x-size", "1000000"],
    ));
    cases.push(e(
        "K x Dx x H too big together",
        "kdh",
        &["--k", "1000", "--x-size", "4096", "--hidden-size", "4096"],
        &["parameters", "--k 1000"],
    ));
    cases.push(e(
        "batch x M too big together",
        "bm",
        &["--batch-size", "1000000", "--n-mc", "1000"],
        &["activations", "--batch-size"],
    ));
    cases.push(e(
        "huge --batch-size",
        "b",
        &["--batch-size", "100000000"],
        &["--batch-size", "100000000"],
    ));
    cases.push(e(
        "--batch-size 1",
        "b1",
        &["--batch-size", "1"],
        &["--batch-size", "BatchNorm"],
    ));
    cases.push(e(
        "huge --spiral-points",
        "sp",
        &["--spiral-points", "1000000000000"],
        &["--spiral-points", "1000000000000"],
    ));
    cases.push(e(
        "huge --n-filters",
        "nf",
        &["--n-filters", "100000"],
        &["--n-filters", "100000"],
    ));
    cases.push(e(
        "--threads 100000",
        "th",
        &["--threads", "100000"],
        &["--threads", "100000", "512"],
    ));
    cases.push(e("--threads 0", "th0", &["--threads", "0"], &["--threads"]));
    cases.push(e(
        "--learning-rate -1",
        "lrn",
        &["--learning-rate=-1"],
        &["--learning-rate", "-1"],
    ));
    cases.push(e(
        "--learning-rate nan",
        "lrnan",
        &["--learning-rate", "nan"],
        &["--learning-rate", "NaN"],
    ));
    cases.push(e(
        "--learning-rate inf",
        "lrinf",
        &["--learning-rate", "inf"],
        &["--learning-rate", "inf"],
    ));
    cases.push(e(
        "--cv-weight nan",
        "cvnan",
        &["--cv-weight", "nan"],
        &["--cv-weight", "NaN"],
    ));
    cases.push(e(
        "--lambda -1",
        "lam",
        &["--lambda=-1"],
        &["--lambda", "-1"],
    ));
    cases.push(e("--gpu 2", "gpu2", &["--gpu", "2"], &["--gpu", "2"]));
    cases.push(e(
        "--input-dimension 3",
        "id3",
        &["--input-dimension", "3"],
        &["--input-dimension", "3"],
    ));
    cases.push(e(
        "--network conv on the spiral",
        "conv",
        &["--network", "conv"],
        &["--network conv"],
    ));
    cases.push(e(
        "--optimiser sgd",
        "sgd",
        &["--optimiser", "sgd"],
        &["--optimiser", "sgd"],
    ));
    cases.push(e("--k -1 (clap)", "kneg", &["--k=-1"], &["-1"]));
    cases.push(e(
        "--epoch given twice (clap)",
        "twice",
        &["--epoch", "2", "--epoch", "3"],
        &["--epoch"],
    ));
    cases.push(e(
        "--k 1e8 (not an integer)",
        "k1e8",
        &["--k", "1e8"],
        &["1e8"],
    ));
    cases.push(e(
        "unknown flag",
        "unk",
        &["--frobnicate"],
        &["--frobnicate"],
    ));
    cases.push(e("--continuous 2", "cont", &["--continuous", "2"], &["2"]));
    cases.push(e(
        "--visual-gen huge",
        "vg",
        &["--visual-gen", "100000000"],
        &["--visual-gen", "100000000"],
    ));
    for (name, id) in [
        ("--id .", "."),
        ("--id ..", ".."),
        ("--id empty", ""),
        ("--id a/b", "a/b"),
        ("--id /abs", "/abs"),
    ] {
        cases.push(
            err(name, GMVAE, tiny(&out, id, &[]), &["--id"]).then(empty_or_absent(out.clone())),
        );
    }
    let mut bad = tiny(&out, "x", &[]);
    let at = bad.iter().position(|a| a == "x").unwrap();
    bad[at] = OsString::from_vec(vec![b'r', 0xff, 0xfe]);
    cases.push(
        err("non-UTF-8 --id (clap)", GMVAE, bad, &["UTF-8"]).then(empty_or_absent(out.clone())),
    );
    cases.push(err("unknown preset", GMVAE, os(&["spirals"]), &["spirals"]));
    cases.push(
        err(
            "mnist_fc without its data",
            GMVAE,
            os(&[
                "mnist_fc",
                "--data-dir",
                &p(&work.join("nope")),
                "--out-dir",
                &p(&out),
                "--id",
                "m",
            ]),
            &["MNIST directory", "nope"],
        )
        .then(no_dir(out.join("m"))),
    );
    cases.push(err(
        "--data on mnist_fc that is not a zip",
        GMVAE,
        os(&[
            "mnist_fc",
            "--data",
            "x.csv",
            "--out-dir",
            &p(&out),
            "--id",
            "mz",
        ]),
        &["--data", "x.csv"],
    ));
    write(&work.join("afile"), "x");
    cases.push(err(
        "--out-dir is a file",
        GMVAE,
        tiny(&work.join("afile"), "r", &[]),
        &["afile"],
    ));
    // Divergence: a learning rate of 1 stops with a clear message, no checkpoint written.
    let dir = out.join("lr1");
    cases.push(
        err(
            "--learning-rate 1 diverges",
            GMVAE,
            tiny(
                &out,
                "lr1",
                &[
                    "--learning-rate",
                    "1",
                    "--spiral-points",
                    "600",
                    "--batch-size",
                    "100",
                    "--epoch",
                    "3",
                ],
            ),
            &["diverged", "epoch 1", "learning rate 1"],
        )
        .then(move || match dir.join("checkpoint.safetensors").exists() {
            true => Err("a checkpoint was written".into()),
            false => Ok(()),
        }),
    );
    cases.push(ok(
        "a valid tiny run",
        GMVAE,
        tiny(&out, "good", &["--threads", "2"]),
    ));
}

fn data_cases(cases: &mut Vec<Case>, work: &Path) {
    let d = work.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let out = work.join("data-runs");
    let spiral = |name: &str, file: String, m: &[&str]| {
        let id = format!("d{}", cases_len_hint(name));
        err(name, GMVAE, tiny(&out, &id, &["--data", &file]), m)
    };
    let good = spiral_csv(60);
    let f = write(&d.join("good.csv"), &good);
    cases.push(ok(
        "spiral csv (valid)",
        GMVAE,
        tiny(&out, "csv-ok", &["--data", &f, "--batch-size", "20"]),
    ));
    let f = write(
        &d.join("nan.csv"),
        good.replacen("0.3662", "NaN", 1)
            .replacen("1.0000,0.0000", "1.0000,nan", 1),
    );
    cases.push(spiral("csv with NaN", f, &["nan.csv:2, column 2", "nan"]));
    let f = write(&d.join("inf.csv"), format!("{good}inf,0.5,1\n"));
    cases.push(spiral("csv with inf", f, &["inf.csv:62, column 1", "inf"]));
    let f = write(&d.join("big.csv"), format!("{good}0.5,1e300,1\n"));
    cases.push(spiral(
        "csv value beyond f32",
        f,
        &["big.csv:62, column 2", "1e300"],
    ));
    let f = write(&d.join("label.csv"), format!("{good}0.5,0.5,1e12\n"));
    cases.push(spiral(
        "csv label 1e12",
        f,
        &["label.csv:62, column 3", "1e12"],
    ));
    let f = write(&d.join("neglabel.csv"), format!("{good}0.5,0.5,-1\n"));
    cases.push(spiral("csv label -1", f, &["neglabel.csv:62", "-1"]));
    let f = write(&d.join("fraclabel.csv"), format!("{good}0.5,0.5,2.5\n"));
    cases.push(spiral("csv label 2.5", f, &["fraclabel.csv:62", "2.5"]));
    let f = write(&d.join("cols.csv"), format!("{good}0.5,0.5,1,4\n"));
    cases.push(spiral("csv with 4 columns", f, &["cols.csv:62", "columns"]));
    let f = write(&d.join("text.csv"), format!("{good}a,b\n"));
    cases.push(spiral("csv text row", f, &["text.csv:62", "a,b"]));
    let f = write(&d.join("empty.csv"), "");
    cases.push(spiral("empty csv", f, &["empty.csv", "no data rows"]));
    let f = write(&d.join("latin1.csv"), b"y1,y2\n0.5,\xe90.5\n");
    cases.push(spiral("non-UTF-8 csv", f, &["latin1.csv", "UTF-8"]));
    cases.push(spiral(
        "--data is a directory",
        p(&d),
        &["is not a regular file"],
    ));
    cases.push(spiral(
        "--data /dev/zero",
        "/dev/zero".into(),
        &["/dev/zero", "regular file"],
    ));
    cases.push(spiral(
        "--data missing",
        p(&d.join("missing.csv")),
        &["missing.csv"],
    ));

    // torch7 spiral files.
    let f = write(&d.join("good.t7"), t7(60));
    cases.push(ok(
        "spiral t7 (valid)",
        GMVAE,
        tiny(&out, "t7-ok", &["--data", &f, "--batch-size", "20"]),
    ));
    let f = write(
        &d.join("neg.t7"),
        patch(t7(60), T7_ROWS, &(-1i64).to_le_bytes()),
    );
    cases.push(spiral("t7 size -1", f, &["neg.t7", "-1 x 2"]));
    let f = write(
        &d.join("huge.t7"),
        patch(t7(60), T7_ROWS, &(1i64 << 40).to_le_bytes()),
    );
    cases.push(spiral(
        "t7 with 2^40 rows",
        f,
        &["huge.t7", "1099511627776"],
    ));
    let f = write(
        &d.join("stor.t7"),
        patch(t7(60), T7_STORAGE, &(1i64 << 62).to_le_bytes()),
    );
    cases.push(spiral("t7 storage 2^62", f, &["stor.t7", "storage"]));
    let f = write(
        &d.join("negstor.t7"),
        patch(t7(60), T7_STORAGE, &(-5i64).to_le_bytes()),
    );
    cases.push(spiral("t7 storage -5", f, &["negstor.t7", "-5"]));
    let f = write(
        &d.join("stride.t7"),
        patch(t7(60), T7_STRIDE0, &i64::MAX.to_le_bytes()),
    );
    cases.push(spiral("t7 stride i64::MAX", f, &["stride.t7"]));
    let f = write(
        &d.join("negstride.t7"),
        patch(t7(60), T7_STRIDE0, &(-2i64).to_le_bytes()),
    );
    cases.push(spiral("t7 negative stride", f, &["negstride.t7", "stride"]));
    let b = t7(60);
    let f = write(&d.join("trunc.t7"), &b[..b.len() - 9]);
    cases.push(spiral("t7 truncated", f, &["trunc.t7", "truncated"]));
    let f = write(
        &d.join("nan.t7"),
        patch(t7(60), T7_DATA + 8 * 7, &f64::NAN.to_le_bytes()),
    );
    cases.push(spiral("t7 with NaN", f, &["nan.t7, row 4, column 2"]));
    let f = write(&d.join("str.t7"), patch(t7(60), 8, &i32::MAX.to_le_bytes()));
    cases.push(spiral(
        "t7 string length 2^31",
        f,
        &["str.t7", "string length"],
    ));
    let f = write(
        &d.join("class.t7"),
        t7(60)
            .iter()
            .map(|&c| if c == b'D' { b'X' } else { c })
            .collect::<Vec<u8>>(),
    );
    cases.push(spiral(
        "t7 of another class",
        f,
        &["class.t7", "torch.XoubleTensor"],
    ));

    // MNIST IDX.
    let mnist = |name: &str, dir: &Path, m: &[&str]| {
        err(
            name,
            GMVAE,
            os(&[
                "mnist_fc",
                "--data-dir",
                &p(dir),
                "--epoch",
                "1",
                "--out-dir",
                &p(&out),
                "--id",
                "mn",
            ]),
            m,
        )
        .then(no_dir(out.join("mn")))
    };
    let idx = |name: &str, n: u32, rows: u32, labels: &[u8], images: &[u8]| -> PathBuf {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        gmvae::data::mnist::write_idx(&dir, "train", images, 28, 28, labels, false).unwrap();
        gmvae::data::mnist::write_idx(&dir, "t10k", images, 28, 28, labels, false).unwrap();
        let f = dir.join("train-images-idx3-ubyte");
        let mut b = std::fs::read(&f).unwrap();
        b[4..8].copy_from_slice(&n.to_be_bytes());
        b[8..12].copy_from_slice(&rows.to_be_bytes());
        b[12..16].copy_from_slice(&rows.to_be_bytes());
        std::fs::write(&f, b).unwrap();
        dir
    };
    let px = vec![7u8; 4 * 784];
    let dir = idx("idx-huge", u32::MAX, u32::MAX, &[1, 2, 3, 4], &px);
    cases.push(mnist(
        "IDX header 2^32 images of 2^32 x 2^32",
        &dir,
        &["train-images-idx3-ubyte", "4294967295"],
    ));
    let dir = idx("idx-count", 5, 28, &[1, 2, 3, 4], &px);
    cases.push(mnist(
        "IDX count disagrees with the data",
        &dir,
        &["train-images-idx3-ubyte", "5 images"],
    ));
    let dir = idx("idx-label", 4, 28, &[1, 2, 3, 200], &px);
    cases.push(mnist(
        "IDX label 200",
        &dir,
        &["train-labels-idx1-ubyte", "200"],
    ));
    let dir = idx("idx-magic", 4, 28, &[1, 2, 3, 4], &px);
    let f = dir.join("t10k-images-idx3-ubyte");
    let mut b = std::fs::read(&f).unwrap();
    b[3] = 0x01;
    std::fs::write(&f, b).unwrap();
    cases.push(mnist(
        "IDX wrong magic",
        &dir,
        &["t10k-images-idx3-ubyte", "magic"],
    ));
    let dir = idx("idx-gz", 4, 28, &[1, 2, 3, 4], &px);
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte")).unwrap();
    write(
        &dir.join("train-labels-idx1-ubyte.gz"),
        b"\x1f\x8b\x08\x00garbage",
    );
    cases.push(mnist(
        "IDX corrupt gzip",
        &dir,
        &["train-labels-idx1-ubyte.gz", "gzip"],
    ));

    // SVHN .mat files.
    let svhn = |name: &str, train: Vec<u8>, m: &[&str]| {
        let dir = d.join(format!("svhn-{}", cases_len_hint(name)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train_32x32.mat"), &train).unwrap();
        std::fs::write(dir.join("test_32x32.mat"), &train).unwrap();
        err(
            name,
            GMVAE,
            os(&[
                "svhn",
                "--data-dir",
                &p(&dir),
                "--epoch",
                "1",
                "--out-dir",
                &p(&out),
                "--id",
                "sv",
            ]),
            m,
        )
        .then(no_dir(out.join("sv")))
    };
    let x = vec![9u8; 32 * 32 * 3 * 2];
    let good = gmvae::data::svhn::write_mat(&[32, 32, 3, 2], &x, &[1.0, 10.0], false);
    let dims_at = good
        .windows(16)
        .position(|w| w == [5, 0, 0, 0, 16, 0, 0, 0, 32, 0, 0, 0, 32, 0, 0, 0])
        .unwrap();
    cases.push(svhn(
        "mat negative dimension",
        patch(good.clone(), dims_at + 8, &(-32i32).to_le_bytes()),
        &["train_32x32.mat", "negative"],
    ));
    cases.push(svhn(
        "mat dimensions overflow",
        patch(
            patch(good.clone(), dims_at + 8, &i32::MAX.to_le_bytes()),
            dims_at + 12,
            &i32::MAX.to_le_bytes(),
        ),
        &["train_32x32.mat", "variable `X`"],
    ));
    cases.push(svhn(
        "mat odd dimension bytes",
        patch(good.clone(), dims_at + 4, &[15]),
        &["train_32x32.mat"],
    ));
    cases.push(svhn(
        "mat truncated",
        good[..good.len() - 100].to_vec(),
        &["train_32x32.mat", "truncated"],
    ));
    cases.push(svhn(
        "not a MAT-file",
        b"hello".repeat(40),
        &["train_32x32.mat", "MAT-file"],
    ));
    let y_nan = gmvae::data::svhn::write_mat(&[32, 32, 3, 2], &x, &[1.0, f64::NAN], true);
    cases.push(svhn(
        "mat label NaN",
        y_nan,
        &["train_32x32.mat", "label NaN at row 2"],
    ));
}

/// A short distinct suffix for fixture names.
fn cases_len_hint(name: &str) -> String {
    name.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        .to_string()
}

fn resume_cases(cases: &mut Vec<Case>, work: &Path) {
    let runs = work.join("resume");
    let base = base_run(&runs, "base", "1");
    let variant = |id: &str| -> PathBuf {
        let dir = runs.join(id);
        copy_dir(&base, &dir);
        dir
    };
    let resume =
        |dir: &Path, extra: &[&str]| with(&["spiral".into(), "--resume".into(), p(dir)], extra);

    let dir = variant("lower");
    set_opts(&dir, "epoch", 3.into());
    let before = std::fs::read(dir.join("opts.json")).unwrap();
    let d2 = dir.clone();
    cases.push(
        err(
            "--resume with a lower --epoch",
            GMVAE,
            resume(&dir, &["--epoch", "2"]),
            &["--epoch 2", "3 epochs"],
        )
        .then(
            move || match std::fs::read(d2.join("opts.json")).unwrap() == before {
                true => Ok(()),
                false => Err("opts.json was rewritten".into()),
            },
        ),
    );
    let dir = variant("otherflag");
    cases.push(err(
        "--resume with --k",
        GMVAE,
        resume(&dir, &["--k", "3", "--seed", "4"]),
        &["--seed, --k", "opts.json"],
    ));
    // The recipe flags are options of the run too: refused, not silently ignored.
    for flag in [
        &["--z-prior", "marginal"][..],
        &["--warmup-epochs", "1"],
        &["--plateau-epochs", "3"],
        &["--binarize", "1"],
        &["--upstream-recipe"],
        &["--adam-reset"],
        &["--adam-reset", "0"],
    ] {
        cases.push(err(
            "--resume with a recipe flag",
            GMVAE,
            resume(&dir, flag),
            &[flag[0], "opts.json"],
        ));
    }
    let dir = variant("raise");
    let d2 = dir.clone();
    cases.push(
        ok(
            "--resume raising --epoch",
            GMVAE,
            resume(&dir, &["--epoch", "2"]),
        )
        .then(move || {
            let e = opts_json(&d2)["epoch"].clone();
            match e == 2 {
                true => Ok(()),
                false => Err(format!("opts.json epoch is {e}, expected 2")),
            }
        }),
    );
    let dir = variant("stale");
    write(&dir.join(".checkpoint.safetensors.4000000.tmp"), b"half");
    write(&dir.join(".metrics.csv.1.tmp"), b"half");
    let d2 = dir.clone();
    cases.push(
        ok(
            "--resume removes stale temporaries",
            GMVAE,
            resume(&dir, &["--epoch", "2"]),
        )
        .then(move || {
            let left: Vec<_> = std::fs::read_dir(&d2)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .map(|e| e.file_name())
                .collect();
            match left.is_empty() {
                true => Ok(()),
                false => Err(format!("left {left:?}")),
            }
        }),
    );
    let dir = variant("nockpt");
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    cases.push(err(
        "--resume a run killed in epoch 1",
        GMVAE,
        resume(&dir, &[]),
        &["no checkpoint yet", "without --resume"],
    ));
    cases.push(err(
        "--resume a missing directory",
        GMVAE,
        resume(&runs.join("nope"), &[]),
        &["nope", "opts.json"],
    ));
    let dir = variant("hugek");
    set_opts(&dir, "K", 1_000_000_000_000u64.into());
    cases.push(err(
        "opts.json K = 1e12",
        GMVAE,
        resume(&dir, &[]),
        &["opts.json", "--k", "1000000000000"],
    ));
    let dir = variant("k4");
    set_opts(&dir, "K", 4.into());
    cases.push(err(
        "opts.json K changed (checkpoint shapes differ)",
        GMVAE,
        resume(&dir, &[]),
        &["checkpoint.safetensors", "shape"],
    ));
    let dir = variant("epoch0");
    set_opts(&dir, "epoch", 0.into());
    cases.push(err(
        "opts.json epoch 0",
        GMVAE,
        resume(&dir, &[]),
        &["opts.json", "--epoch"],
    ));
    let dir = variant("idbad");
    set_opts(&dir, "id", "..".into());
    cases.push(err(
        "opts.json id ..",
        GMVAE,
        resume(&dir, &[]),
        &["opts.json", "--id"],
    ));
    let dir = variant("garbage");
    write(&dir.join("opts.json"), b"{\"K\": ");
    cases.push(err(
        "opts.json truncated",
        GMVAE,
        resume(&dir, &[]),
        &["opts.json"],
    ));
    let dir = variant("preset");
    cases.push(err(
        "--resume under another preset",
        GMVAE,
        with(&["mnist_fc".into(), "--resume".into(), p(&dir)], &[]),
        &["preset `spiral`"],
    ));
    let dir = variant("ckmax");
    edit_safetensors(&dir.join("checkpoint.safetensors"), |h| {
        h["__metadata__"]["epoch"] = "18446744073709551615".into();
    });
    cases.push(err(
        "checkpoint epoch u64::MAX",
        GMVAE,
        resume(&dir, &["--epoch", "5"]),
        &["checkpoint.safetensors", "18446744073709551615"],
    ));
    let dir = variant("ckpast");
    edit_safetensors(&dir.join("checkpoint.safetensors"), |h| {
        h["__metadata__"]["epoch"] = "7".into();
    });
    cases.push(err(
        "checkpoint epoch past the run's epochs",
        GMVAE,
        resume(&dir, &[]),
        &["after epoch 7", "1 epochs"],
    ));
    let dir = variant("cknan");
    poison_checkpoint(&dir.join("checkpoint.safetensors"), f32::NAN);
    cases.push(err(
        "checkpoint with NaN weights",
        GMVAE,
        resume(&dir, &["--epoch", "2"]),
        &["checkpoint.safetensors", "NaN"],
    ));
    let dir = variant("ckinf");
    poison_checkpoint(&dir.join("checkpoint.safetensors"), f32::INFINITY);
    cases.push(err(
        "checkpoint with inf weights",
        GMVAE,
        resume(&dir, &["--epoch", "2"]),
        &["checkpoint.safetensors", "infinite"],
    ));
    let dir = variant("cktrunc");
    let b = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    std::fs::write(dir.join("checkpoint.safetensors"), &b[..b.len() / 2]).unwrap();
    cases.push(err(
        "checkpoint truncated",
        GMVAE,
        resume(&dir, &["--epoch", "2"]),
        &["checkpoint.safetensors", "not a gmvae checkpoint"],
    ));
    let dir = variant("ckhdr");
    let mut b = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(dir.join("checkpoint.safetensors"), b).unwrap();
    cases.push(err(
        "checkpoint header length u64::MAX",
        GMVAE,
        resume(&dir, &["--epoch", "2"]),
        &["checkpoint.safetensors"],
    ));
    // Divergence after a checkpoint: the run stops and the epoch-1 checkpoint stays as it was.
    let dir = variant("diverge");
    set_opts(&dir, "learning_rate", 2.0.into());
    set_opts(&dir, "epoch", 20.into());
    let (d2, before) = (
        dir.clone(),
        std::fs::read(base.join("checkpoint.safetensors")).unwrap(),
    );
    cases.push(
        err(
            "a run diverging after its first checkpoint",
            GMVAE,
            resume(&dir, &[]),
            &["diverged", "epoch 2", "checkpoint of epoch 1 is intact"],
        )
        .then(move || {
            match std::fs::read(d2.join("checkpoint.safetensors")).unwrap() == before {
                true => Ok(()),
                false => Err("the checkpoint changed".into()),
            }
        }),
    );
    // A fresh run may reuse the directory of a run killed in its first epoch...
    let dir = variant("restart");
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    let d2 = dir.clone();
    cases.push(
        ok(
            "fresh run over a run killed in epoch 1",
            GMVAE,
            tiny(&runs, "restart", &[]),
        )
        .then(move || match d2.join("checkpoint.safetensors").exists() {
            true => Ok(()),
            false => Err("no checkpoint written".into()),
        }),
    );
    // ...but not a folder of something else.
    let other = runs.join("notarun");
    std::fs::create_dir_all(&other).unwrap();
    write(&other.join("notes.txt"), "mine");
    let o2 = other.clone();
    cases.push(
        err(
            "fresh run into a folder that is not a run",
            GMVAE,
            tiny(&runs, "notarun", &[]),
            &["notarun", "not a gmvae run directory", "notes.txt"],
        )
        .then(move || match std::fs::read_dir(&o2).unwrap().count() {
            1 => Ok(()), // notes.txt alone
            n => Err(format!("{n} files in the folder")),
        }),
    );
    // A fresh run into a directory that holds a run is refused.
    cases.push(err(
        "fresh run over an existing run",
        GMVAE,
        tiny(&runs, "base", &[]),
        &["already holds a run", "--resume"],
    ));
}

fn serket_cases(cases: &mut Vec<Case>, work: &Path) {
    let d = work.join("serket");
    std::fs::create_dir_all(&d).unwrap();
    let out = p(&work.join("serket-out"));
    let row = |i: usize| {
        (0..784)
            .map(|j| if (i + j).is_multiple_of(7) { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let images: String = (0..20).map(|i| row(i) + "\n").collect();
    let imgs = write(&d.join("images.txt"), &images);
    let labels: String = (0..20).map(|i| format!("{}\n", i % 2)).collect();
    let cat = write(&d.join("cat.txt"), &labels);
    let with_cat = |cat: &str, extra: &[&str]| {
        let mut v = os(&[
            "serket",
            "vae-gmm",
            "--data",
            &imgs,
            "--category",
            cat,
            "--out",
            &out,
            "--force",
        ]);
        v.extend(os(extra));
        v
    };
    let s = |extra: &[&str]| with_cat(&cat, extra);
    let quick = [
        "--rounds",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--latent",
        "2",
        "--k",
        "2",
        "--gmm-iters",
        "2",
        "--no-reconstructions",
    ];
    cases.push(ok("serket vae-gmm (valid, tiny)", GMVAE, s(&quick)));
    cases.push(err(
        "serket --k 1e8",
        GMVAE,
        s(&["--k", "100000000"]),
        &["--k", "100000000"],
    ));
    cases.push(err("serket --k 0", GMVAE, s(&["--k", "0"]), &["--k"]));
    cases.push(err(
        "serket --latent huge",
        GMVAE,
        s(&["--latent", "100000000"]),
        &["--latent", "100000000"],
    ));
    cases.push(err(
        "serket --rounds 0",
        GMVAE,
        s(&["--rounds", "0"]),
        &["--rounds"],
    ));
    cases.push(err(
        "serket --batch-size 0",
        GMVAE,
        s(&["--batch-size", "0"]),
        &["--batch-size"],
    ));
    let m = |extra: &[&str]| {
        let mut v = os(&[
            "serket",
            "vae-gmm-mlda",
            "--data",
            &imgs,
            "--speech",
            &imgs,
            "--category",
            &cat,
            "--out",
            &out,
        ]);
        v.extend(os(extra));
        v
    };
    cases.push(err(
        "serket --weights -1",
        GMVAE,
        m(&["--weights=-1,200"]),
        &["--weights", "-1"],
    ));
    cases.push(err(
        "serket --weights nan",
        GMVAE,
        m(&["--weights", "nan,200"]),
        &["--weights", "NaN"],
    ));
    cases.push(err(
        "serket --weights 1e12",
        GMVAE,
        m(&["--weights", "200,1e12"]),
        &["--weights", "1000000000000"],
    ));
    cases.push(err(
        "serket --weights 0",
        GMVAE,
        m(&["--weights", "0,200"]),
        &["--weights", "0"],
    ));
    cases.push(err(
        "serket mlda without --speech",
        GMVAE,
        os(&[
            "serket",
            "vae-gmm-mlda",
            "--data",
            &imgs,
            "--out",
            &out,
            "--force",
        ]),
        &["--speech"],
    ));
    let f = write(&d.join("nan.txt"), images.replacen("1 ", "nan ", 1));
    cases.push(err(
        "serket images with NaN",
        GMVAE,
        os(&["serket", "vae-gmm", "--data", &f, "--out", &out, "--force"]),
        // A text matrix goes through the table reader (as `gmvae table` reads it).
        &["nan.txt:1: column 0", "`nan`", "not finite"],
    ));
    let f = write(
        &d.join("inf.txt"),
        format!("{images}{}\n", row(3).replacen('0', "-inf", 1)),
    );
    cases.push(err(
        "serket images with -inf",
        GMVAE,
        os(&["serket", "vae-gmm", "--data", &f, "--out", &out, "--force"]),
        &["inf.txt:21: column", "-inf"],
    ));
    let f = write(&d.join("ragged.txt"), format!("{images}1 0 1\n"));
    cases.push(err(
        "serket ragged matrix",
        GMVAE,
        os(&["serket", "vae-gmm", "--data", &f, "--out", &out, "--force"]),
        &["ragged.txt:21", "784"],
    ));
    let f = write(&d.join("cat-big.txt"), labels.replacen("1\n", "1e12\n", 1));
    cases.push(err(
        "serket label 1e12",
        GMVAE,
        with_cat(&f, &[]),
        &["cat-big.txt, row 2", "1000000000000"],
    ));
    let f = write(&d.join("cat-neg.txt"), labels.replacen("0\n", "-1\n", 1));
    cases.push(err(
        "serket label -1",
        GMVAE,
        with_cat(&f, &[]),
        &["cat-neg.txt, row 1", "-1"],
    ));
    let f = write(&d.join("cat-short.txt"), &labels[..10]);
    cases.push(err(
        "serket labels fewer than images",
        GMVAE,
        with_cat(&f, &[]),
        &["cat-short.txt", "row counts disagree"],
    ));
    let f = write(&d.join("fake.zip"), b"PK\x03\x04 not really");
    cases.push(err(
        "serket --data a broken zip",
        GMVAE,
        os(&["serket", "vae-gmm", "--data", &f, "--out", &out, "--force"]),
        &["fake.zip", "zip"],
    ));
    let zip = d.join("other.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
        z.start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"1 2 3\n").unwrap();
        z.finish().unwrap();
    }
    cases.push(err(
        "serket zip without the tutorial members",
        GMVAE,
        os(&[
            "serket",
            "vae-gmm",
            "--data",
            &p(&zip),
            "--out",
            &out,
            "--force",
        ]),
        &["other.zip", "data/data1.txt"],
    ));
}

/// A labelled table of `n` rows: four feature columns `a..d` and a `label` column (valid).
fn table_csv(n: usize) -> String {
    let mut s = String::from("a,b,c,d,label\n");
    for i in 0..n {
        let t = i as f64 * 0.61;
        let (x, y) = (t.cos() + (i % 3) as f64, t.sin() - (i % 3) as f64);
        s += &format!("{x:.4},{y:.4},{:.4},{:.4},{}\n", x * y, x - y, i % 3);
    }
    s
}

/// A second round of own-data inputs, on the formats and commands the first round touched
/// least: TSV, whitespace text, BOM and CRLF files, `.npy` and safetensors variants, the
/// `--header`/`--comment` rules, and `predict`/`export`/`serket` on odd arguments. Each either
/// trains (and then leaves a run) or is refused without leaving a run directory.
fn own_data_round_two(cases: &mut Vec<Case>, work: &Path) {
    use gmvae::data::npy::{to_bytes, Dtype};
    let d = work.join("own2");
    std::fs::create_dir_all(&d).unwrap();
    let out = work.join("own2-runs");
    let args = |id: &str, file: &str, extra: &[&str]| {
        let mut v = os(&["table", "--data", file, "--out-dir", &p(&out), "--id", id]);
        v.extend(os(&["--epoch", "1", "--batch-size", "10", "-K", "3"]));
        v.extend(os(extra));
        v
    };
    let bad = |name: &str, id: &str, file: &str, extra: &[&str], m: &[&str]| {
        err(name, GMVAE, args(id, file, extra), m).then(no_dir(out.join(id)))
    };
    let good = |name: &str, id: &str, file: &str, extra: &[&str]| {
        let run = out.join(id);
        ok(name, GMVAE, args(id, file, extra)).then(move || {
            match run.join("model.safetensors").exists() {
                true => Ok(()),
                false => Err(format!("{} has no model", run.display())),
            }
        })
    };
    let csv = table_csv(40);
    let rows: Vec<&str> = csv.lines().collect();

    // Text variants that are valid data.
    let tsv = write(&d.join("t.tsv"), csv.replace(',', "\t"));
    cases.push(good(
        "TSV with a header",
        "r1",
        &tsv,
        &["--label-column", "label"],
    ));
    let ws = write(&d.join("t.txt"), csv.replace(',', "  \t "));
    cases.push(good(
        "whitespace text, mixed runs",
        "r2",
        &ws,
        &["--label-column", "label"],
    ));
    let bom = write(&d.join("bom.csv"), format!("\u{feff}{csv}"));
    cases.push(good(
        "CSV with a byte-order mark",
        "r3",
        &bom,
        &["--label-column", "label"],
    ));
    let crlf = write(&d.join("crlf.csv"), csv.replace('\n', "\r\n"));
    cases.push(good(
        "CSV with CRLF line ends",
        "r4",
        &crlf,
        &["--label-column", "label"],
    ));
    let quoted = write(
        &d.join("quoted.csv"),
        csv.replacen("a,b,c,d,label", "\"a\",\"b\",\"c\",\"d\",\"label\"", 1),
    );
    cases.push(good(
        "CSV with quoted names",
        "r5",
        &quoted,
        &["--label-column", "label"],
    ));
    let constant = write(
        &d.join("const.csv"),
        csv.lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l},k\n"),
                _ => format!("{l},7\n"),
            })
            .collect::<String>(),
    );
    cases.push(good(
        "a constant column",
        "r6",
        &constant,
        &["--label-column", "label"],
    ));
    let pct = write(&d.join("pct.csv"), format!("% made by hand\n{csv}% end\n"));
    cases.push(good(
        "--comment % skips % lines",
        "r7",
        &pct,
        &["--label-column", "label", "--comment", "%"],
    ));
    let years = write(
        &d.join("years.csv"),
        csv.replacen("a,b,c,d,label", "2019,2020,2021,2022,label", 1),
    );
    cases.push(good(
        "--header yes on a numeric header",
        "r8",
        &years,
        &["--label-column", "label", "--header", "yes"],
    ));
    let noh = write(&d.join("noh.csv"), rows[1..].join("\n"));
    cases.push(good(
        "--header no on a headerless file, label by index",
        "r9",
        &noh,
        &["--label-column", "4", "--header", "no"],
    ));

    // Text files that are not valid data.
    cases.push(bad(
        "--header no on a file with names",
        "b1",
        &write(&d.join("named.csv"), &csv),
        &["--header", "no"],
        &["named.csv:1"],
    ));
    cases.push(bad(
        "--comment '' keeps # lines, which are not numbers",
        "b2",
        &write(
            &d.join("hash.csv"),
            format!("{}\n# note\n{}", rows[0], rows[1..].join("\n")),
        ),
        &["--comment", "", "--label-column", "label"],
        &["hash.csv:2"],
    ));
    let mut extra = rows.clone();
    extra[5] = "1,2,3,4,0,5";
    cases.push(bad(
        "a row with an extra field",
        "b3",
        &write(&d.join("extra.csv"), extra.join("\n")),
        &["--label-column", "label"],
        &["extra.csv:6", "expected 5 fields"],
    ));
    let mut comma = rows.clone();
    comma[3] = "\"1,5\",2,3,4,0";
    cases.push(bad(
        "a quoted field holding a comma",
        "b4",
        &write(&d.join("comma.csv"), comma.join("\n")),
        &["--label-column", "label"],
        &["comma.csv:4", "`1,5`"],
    ));
    let mut nolabel = rows.clone();
    nolabel[7] = "1,2,3,4,";
    cases.push(bad(
        "an empty label",
        "b5",
        &write(&d.join("nolabel.csv"), nolabel.join("\n")),
        &["--label-column", "label"],
        &["nolabel.csv:8", "empty label"],
    ));
    cases.push(bad(
        "a header and no rows",
        "b6",
        &write(&d.join("headonly.csv"), format!("{}\n", rows[0])),
        &[],
        &["headonly.csv", "no data rows"],
    ));
    cases.push(bad(
        "an empty file",
        "b7",
        &write(&d.join("empty.csv"), ""),
        &[],
        &["empty.csv", "no data rows"],
    ));
    cases.push(bad(
        "only comments",
        "b8",
        &write(&d.join("comments.csv"), "# a\n# b\n"),
        &[],
        &["comments.csv", "no data rows"],
    ));
    let named = write(&d.join("named2.csv"), &csv);
    cases.push(bad(
        "--label-column index out of range",
        "b9",
        &named,
        &["--label-column", "9"],
        &["--label-column 9", "out of range"],
    ));
    cases.push(bad(
        "--label-column name not in the header",
        "b10",
        &named,
        &["--label-column", "class"],
        &["no column named `class`"],
    ));
    cases.push(bad(
        "--label-column by name on a headerless file",
        "b11",
        &noh,
        &["--label-column", "label"],
        &["no header row"],
    ));
    cases.push(bad(
        "--header bogus",
        "b12",
        &named,
        &["--header", "maybe"],
        &["--header"],
    ));
    cases.push(bad(
        "--test-fraction 1",
        "b13",
        &named,
        &["--test-fraction", "1"],
        &["--test-fraction must be in [0, 1)"],
    ));
    cases.push(bad(
        "--test-fraction nan",
        "b14",
        &named,
        &["--test-fraction", "nan"],
        &["--test-fraction"],
    ));
    cases.push(bad(
        "--tensor on a text table",
        "b15",
        &named,
        &["--tensor", "y"],
        &["--tensor", "not one"],
    ));
    cases.push(bad(
        "--data a directory",
        "b16",
        &p(&d),
        &[],
        &["not a regular file"],
    ));
    cases.push(bad(
        "--data a missing file",
        "b17",
        &p(&d.join("missing.csv")),
        &[],
        &["missing.csv"],
    ));

    // .npy variants.
    let vals: Vec<f64> = (0..40 * 3)
        .map(|i| (i % 7) as f64 * 0.1 + (i / 3) as f64 * 0.01)
        .collect();
    let f64npy = write(&d.join("f64.npy"), to_bytes(&vals, 40, 3, Dtype::F64));
    cases.push(good(".npy f64, no labels", "n1", &f64npy, &[]));
    cases.push(good(
        ".npy f64, the last column as labels",
        "n2",
        &f64npy,
        &["--label-column", "2"],
    ));
    let full = to_bytes(&vals, 40, 3, Dtype::F32);
    cases.push(bad(
        ".npy cut short",
        "n3",
        &write(&d.join("short.npy"), &full[..full.len() - 10]),
        &[],
        &["short.npy"],
    ));
    // The header patched in place (same length): the array's order, then its dtype.
    let swap = |from: &str, to: &str| {
        let at = full
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("in the header");
        patch(full.clone(), at, to.as_bytes())
    };
    cases.push(bad(
        ".npy in Fortran order",
        "n4",
        &write(
            &d.join("fortran.npy"),
            swap("'fortran_order': False", "'fortran_order': True "),
        ),
        &[],
        &["fortran.npy", "Fortran"],
    ));
    cases.push(bad(
        ".npy of int32",
        "n5",
        &write(&d.join("int.npy"), swap("<f4", "<i4")),
        &[],
        &["int.npy", "<i4"],
    ));
    cases.push(bad(
        ".npy named .npy but text inside",
        "n6",
        &write(&d.join("text.npy"), &csv),
        &[],
        &["text.npy"],
    ));

    // safetensors variants.
    let st = |name: &str, tensors: &[(&str, candle_core::Tensor)]| {
        let path = d.join(name);
        candle_core::safetensors::save(
            &tensors
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
            &path,
        )
        .unwrap();
        p(&path)
    };
    let dev = candle_core::Device::Cpu;
    let y = candle_core::Tensor::from_vec(
        vals.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        (40, 3),
        &dev,
    )
    .unwrap();
    let y2 = y.clone();
    let two = st("two.safetensors", &[("a", y.clone()), ("b", y2)]);
    cases.push(bad(
        "safetensors with two 2-D tensors",
        "s1",
        &two,
        &[],
        &["exactly one 2-D tensor"],
    ));
    cases.push(good(
        "safetensors with two 2-D tensors, one named",
        "s2",
        &two,
        &["--tensor", "b"],
    ));
    cases.push(bad(
        "safetensors --tensor not there",
        "s3",
        &two,
        &["--tensor", "c"],
        &["no tensor `c`"],
    ));
    let short = candle_core::Tensor::zeros(5, candle_core::DType::F32, &dev).unwrap();
    cases.push(bad(
        "safetensors labels of another length",
        "s4",
        &st("lab.safetensors", &[("y", y.clone()), ("label", short)]),
        &["--label-column", "label"],
        &["must be 1-D with 40 entries"],
    ));
    cases.push(bad(
        "safetensors named so but not one",
        "s5",
        &write(&d.join("fake.safetensors"), "not a safetensors file"),
        &[],
        &["fake.safetensors"],
    ));

    // Other commands on odd arguments.
    cases.push(err(
        "predict --run a directory without a model",
        GMVAE,
        os(&["predict", "--run", &p(&d), "--data", &named]),
        &["config.json"],
    ));
    cases.push(err(
        "export a directory that is no run",
        GMVAE,
        os(&["export", &p(&d)]),
        &["opts.json"],
    ));
    cases.push(err(
        "serket --data a header-only table",
        GMVAE,
        os(&[
            "serket",
            "vae-gmm",
            "--data",
            &p(&d.join("headonly.csv")),
            "--out",
            &p(&work.join("own2-serket")),
            "--rounds",
            "1",
        ]),
        &["headonly.csv", "no data rows"],
    ));
    cases.push(err(
        "serket --header no on a file with names",
        GMVAE,
        os(&[
            "serket",
            "vae-gmm",
            "--data",
            &named,
            "--header",
            "no",
            "--out",
            &p(&work.join("own2-serket")),
            "--rounds",
            "1",
        ]),
        &["named2.csv:1"],
    ));
}

/// An f32 `.npy` header (no data) for `shape`.
fn npy_header(shape: &str) -> Vec<u8> {
    let mut b = gmvae::data::npy::to_bytes(&[], 0, 1, gmvae::data::npy::Dtype::F32);
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let mut h = dict.into_bytes();
    h.resize(len - 1, b' ');
    h.push(b'\n');
    b.truncate(10);
    b.extend(h);
    b.extend([0u8; 64]);
    b
}

fn mkfifo(path: &Path) -> String {
    let s = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(s.success());
    p(path)
}

fn unchanged(path: PathBuf, before: Vec<u8>) -> impl Fn() -> Result<(), String> {
    move || match std::fs::read(&path) {
        Ok(b) if b == before => Ok(()),
        _ => Err(format!("{} was changed", path.display())),
    }
}

/// Your own data (issue 29): `table`, `predict` and `serket --data` on hostile files.
fn own_data_cases(cases: &mut Vec<Case>, work: &Path) {
    let d = work.join("own");
    std::fs::create_dir_all(&d).unwrap();
    let out = work.join("own-runs");
    let table = |name: &str, id: &str, file: &str, extra: &[&str], m: &[&str]| {
        let mut v = os(&["table", "--data", file, "--out-dir", &p(&out), "--id", id]);
        v.extend(os(&["--epoch", "1"]));
        v.extend(os(extra));
        err(name, GMVAE, v, m).then(no_dir(out.join(id)))
    };
    let good = table_csv(60);
    let g = write(&d.join("good.csv"), &good);

    // Sizes that overflow, rows too few.
    let f1 = write(&d.join("wrap.npy"), npy_header("(1, 4611686018427387904)"));
    cases.push(table(
        "npy shape (1, 2^62)",
        "t1",
        &f1,
        &[],
        &["wrap.npy", "too large"],
    ));
    let f2 = write(&d.join("huge.npy"), npy_header("(4294967296, 4294967296)"));
    cases.push(table(
        "npy shape (2^32, 2^32)",
        "t2",
        &f2,
        &[],
        &["huge.npy", "too large"],
    ));
    let f3 = write(
        &d.join("nocols.npy"),
        npy_header("(4611686018427387904, 0)"),
    );
    cases.push(table(
        "npy shape (2^62, 0)",
        "t3",
        &f3,
        &[],
        &["nocols.npy", "no columns"],
    ));
    let serket = |file: &str, extra: &[&str]| {
        let mut v = os(&["serket", "vae-gmm", "--data", file, "--out"]);
        v.push(work.join("own-serket").into());
        v.extend(os(&["--force", "--rounds", "1", "--k", "2"]));
        v.extend(os(extra));
        v
    };
    cases.push(err(
        "serket npy shape (1, 2^62)",
        GMVAE,
        serket(&f1, &[]),
        &["wrap.npy", "too large"],
    ));
    let two = write(&d.join("two.csv"), table_csv(2));
    cases.push(table(
        "table of 2 rows with a held-out share",
        "t4",
        &two,
        &["--test-fraction", "0.5"],
        &["two.csv", "too few"],
    ));
    let one = write(&d.join("one.csv"), table_csv(1));
    cases.push(table(
        "table of 1 row",
        "t5",
        &one,
        &["--test-fraction", "0"],
        &["1 points", "--batch-size"],
    ));
    cases.push(table(
        "--pretrain-epochs with K above the rows",
        "t6",
        &write(&d.join("eight.csv"), table_csv(8)),
        &["--k", "20", "--pretrain-epochs", "1", "--batch-size", "4"],
        &["20 components"],
    ));
    let pre = out.join("t7");
    std::fs::create_dir_all(&pre).unwrap();
    std::fs::write(pre.join(".lock"), b"").unwrap();
    cases.push(
        err(
            "failed start in an existing run directory leaves it as it was",
            GMVAE,
            os(&[
                "table",
                "--data",
                &one,
                "--out-dir",
                &p(&out),
                "--id",
                "t7",
                "--epoch",
                "1",
                "--test-fraction",
                "0",
            ]),
            &["fewer than one batch"],
        )
        .then(move || match std::fs::read_dir(&pre).map(|d| d.count()) {
            Ok(1) => Ok(()),
            _ => Err("the run directory changed".into()),
        }),
    );
    // A failure during pretraining (after the lock was taken) in a directory that was already
    // there leaves it as it was: no opts.json and no lock file.
    let pre8 = out.join("t8");
    std::fs::create_dir_all(&pre8).unwrap();
    let eight = write(&d.join("eight8.csv"), table_csv(8));
    cases.push(
        err(
            "failed pretraining in an existing run directory leaves it as it was",
            GMVAE,
            os(&[
                "table",
                "--data",
                &eight,
                "--out-dir",
                &p(&out),
                "--id",
                "t8",
                "--k",
                "20",
                "--pretrain-epochs",
                "1",
                "--batch-size",
                "4",
            ]),
            &["20 components"],
        )
        .then(move || match std::fs::read_dir(&pre8).map(|d| d.count()) {
            Ok(0) => Ok(()),
            _ => Err("the run directory changed".into()),
        }),
    );

    // Header, comments, separators.
    let f = write(&d.join("na.csv"), "NA,0.5,0.2\n0.1,0.2,0.3\n0.4,0.5,0.6\n");
    cases.push(table(
        "headerless CSV with NA first",
        "h1",
        &f,
        &[],
        &["na.csv:1", "`NA`"],
    ));
    let f = write(&d.join("gap.csv"), "0.3,,0.2\n0.1,0.2,0.3\n0.4,0.5,0.6\n");
    cases.push(table(
        "headerless CSV with an empty first field",
        "h2",
        &f,
        &[],
        &["gap.csv:1", "empty field"],
    ));
    let f = write(
        &d.join("dup.csv"),
        good.replacen("a,b,c,d,label", "a,lab,c,d,lab", 1),
    );
    cases.push(table(
        "duplicate column names",
        "h3",
        &f,
        &["--label-column", "lab"],
        &["dup.csv", "`lab` (columns 1 and 4)"],
    ));
    let f = write(&d.join("cr.csv"), good.replace('\n', "\r"));
    cases.push(table(
        "CR-only line ends",
        "h4",
        &f,
        &[],
        &["cr.csv:1", "carriage return"],
    ));

    // Values.
    let f = write(&d.join("big.csv"), format!("{good}1e39,0,0,0,1\n"));
    cases.push(table(
        "value beyond f32",
        "v1",
        &f,
        &["--label-column", "label"],
        &["big.csv:62", "1e39", "32-bit"],
    ));
    let f = write(
        &d.join("big.npy"),
        gmvae::data::npy::to_bytes(&[1.0, 1e39, 0.5, 0.25], 2, 2, gmvae::data::npy::Dtype::F64),
    );
    cases.push(table(
        "npy value beyond f32",
        "v2",
        &f,
        &[],
        &["big.npy", "row 0 column 1", "32-bit"],
    ));
    cases.push(table(
        "--likelihood bernoulli on values outside [0,1]",
        "v3",
        &g,
        &[
            "--label-column",
            "label",
            "--scale",
            "none",
            "--likelihood",
            "bernoulli",
        ],
        &["good.csv", "--likelihood bernoulli", "[0, 1]"],
    ));

    // Not regular files.
    let fifo = mkfifo(&d.join("fifo.csv"));
    cases.push(table(
        "table --data a FIFO",
        "n1",
        &fifo,
        &[],
        &["fifo.csv", "pipe"],
    ));
    cases.push(err(
        "serket --data a FIFO",
        GMVAE,
        serket(&fifo, &[]),
        &["fifo.csv", "pipe"],
    ));

    // Serket labels.
    let mut ids = String::from("x,y,id\n");
    for i in 0..2000 {
        ids += &format!("{:.3},{:.3},{i}\n", (i as f64).sin(), (i as f64).cos());
    }
    let f = write(&d.join("ids.csv"), ids);
    cases.push(
        err(
            "serket --label-column of 2000 values",
            GMVAE,
            serket(&f, &["--label-column", "id"]),
            &["--label-column id", "2000 distinct", "256"],
        )
        .then(no_dir(work.join("own-serket").join("category.txt"))),
    );
    cases.push(table(
        "table --label-column of 2000 values",
        "l1",
        &f,
        &["--label-column", "id"],
        &["--label-column id", "2000 distinct", "256"],
    ));
    cases.push(table(
        "--tensor on a CSV",
        "l2",
        &g,
        &["--tensor", "x"],
        &["--tensor", "good.csv"],
    ));
    let f = write(
        &d.join("years.csv"),
        "2019,2020,2021,label\n1,2,3,a\n4,5,6,b\n",
    );
    cases.push(table(
        "all-numeric header without --label-column",
        "l3",
        &f,
        &[],
        &["years.csv:1", "`label`", "neither a header"],
    ));
    cases.push(err(
        "serket on fewer rows than --k",
        GMVAE,
        serket(&one, &[]),
        &["--k 2", "one.csv", "1 rows"],
    ));
    cases.push(err(
        "serket --epoch 0",
        GMVAE,
        serket(&g, &["--epoch", "0"]),
        &["--epoch must"],
    ));

    // predict against a trained run.
    let runs = work.join("own-train");
    let s = Command::new(GMVAE)
        .args(["table", "--data", &g, "--label-column", "label", "--k", "3"])
        .args([
            "--epoch",
            "2",
            "--batch-size",
            "20",
            "--id",
            "base",
            "--out-dir",
        ])
        .arg(&runs)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let run = p(&runs.join("base"));
    let predict = |data: &str, extra: &[&str]| {
        let mut v = os(&["predict", "--run", &run, "--data", data]);
        v.extend(os(extra));
        v
    };
    let expected = d.join("expected.csv");
    let s = Command::new(GMVAE)
        .args(predict(&g, &["--out", &p(&expected)]))
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    // The same columns in reverse order: matched by name, the same predictions.
    let reversed: String = good
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f[..4].reverse();
            f.join(",") + "\n"
        })
        .collect();
    let f = write(&d.join("reversed.csv"), reversed);
    let got = d.join("got.csv");
    let want = std::fs::read(&expected).unwrap();
    cases.push(
        ok(
            "predict with the columns reordered",
            GMVAE,
            predict(&f, &["--out", &p(&got)]),
        )
        .then(move || match std::fs::read(&got) {
            Ok(b) if b == want => Ok(()),
            _ => Err("predictions differ from those of the training column order".into()),
        }),
    );
    let f = write(
        &d.join("renamed.csv"),
        good.replacen("a,b,c,d", "p,q,r,s", 1),
    );
    cases.push(err(
        "predict with other column names",
        GMVAE,
        predict(&f, &[]),
        &["renamed.csv", "p, q, r, s", "a, b, c, d"],
    ));
    let bytes = std::fs::read(&g).unwrap();
    cases.push(
        err(
            "predict --out = --data",
            GMVAE,
            predict(&g, &["--out", &g]),
            &["--out", "--data"],
        )
        .then(unchanged(PathBuf::from(&g), bytes.clone())),
    );
    let dotted = p(&d.join(".").join("good.csv"));
    cases.push(
        err(
            "predict --out = --data by another spelling",
            GMVAE,
            predict(&g, &["--out", &dotted]),
            &["--out", "--data"],
        )
        .then(unchanged(PathBuf::from(&g), bytes.clone())),
    );
    let link = d.join("link.csv");
    std::os::unix::fs::symlink(&g, &link).unwrap();
    cases.push(
        err(
            "predict --out a link to --data",
            GMVAE,
            predict(&g, &["--out", &p(&link)]),
            &["--out", "--data"],
        )
        .then(unchanged(PathBuf::from(&g), bytes)),
    );
    let outdir = d.join("outdir.csv");
    std::fs::create_dir_all(&outdir).unwrap();
    cases.push(
        err(
            "predict --out a directory",
            GMVAE,
            predict(&g, &["--out", &p(&outdir)]),
            &["outdir.csv", "directory"],
        )
        .then(empty_or_absent(outdir.clone())),
    );
    cases.push(err(
        "predict --data a directory",
        GMVAE,
        predict(&p(&d), &[]),
        &["--data", "directory"],
    ));
    cases.push(err(
        "predict --data /dev/null",
        GMVAE,
        predict("/dev/null", &[]),
        &["/dev/null", "device"],
    ));
    cases.push(err(
        "predict --data a FIFO",
        GMVAE,
        predict(&fifo, &[]),
        &["fifo.csv", "pipe"],
    ));

    cases.push(err(
        "accuracy_table --at-epoch 0",
        ACCURACY_TABLE,
        os(&["--per-run", "--at-epoch", "0", &p(&runs)]),
        &["--at-epoch 0"],
    ));
}

/// `--n-init` out of range, tables too small for K or one batch, a label column of one class
/// (each with one restart and with several: the restarts check the data before their run
/// directory exists), and a constant column, which is valid data.
fn restart_cases(cases: &mut Vec<Case>, work: &Path) {
    let d = work.join("restarts");
    std::fs::create_dir_all(&d).unwrap();
    let out = work.join("restarts-runs");
    let args = |id: &str, file: &str, extra: &[&str]| {
        let mut v = os(&["table", "--data", file, "--out-dir", &p(&out), "--id", id]);
        v.extend(os(&["--epoch", "1", "--hidden-size", "16"]));
        v.extend(os(extra));
        // A batch the 32 training rows of `table_csv(40)` fill, unless the case sets its own.
        if !extra.contains(&"--batch-size") {
            v.extend(os(&["--batch-size", "10"]));
        }
        v
    };
    let bad = |name: &str, id: &str, file: &str, extra: &[&str], m: &[&str]| {
        err(name, GMVAE, args(id, file, extra), m).then(no_dir(out.join(id)))
    };
    let good = write(&d.join("good.csv"), table_csv(40));
    cases.push(bad(
        "--n-init 0",
        "n1",
        &good,
        &["--n-init", "0"],
        &["--n-init", "0"],
    ));
    cases.push(bad(
        "--n-init above the bound",
        "n2",
        &good,
        &["--n-init", "101"],
        &["--n-init", "101", "100"],
    ));
    cases.push(bad(
        "--n-init -1",
        "n3",
        &good,
        &["--n-init=-1"],
        &["--n-init"],
    ));
    cases.push(bad(
        "--restart-choice not a rule",
        "n4",
        &good,
        &["--restart-choice", "best"],
        &["--restart-choice", "best"],
    ));
    let eight = write(&d.join("eight.csv"), table_csv(8));
    for (id, n_init) in [("k1", "1"), ("k2", "3")] {
        cases.push(bad(
            &format!("table with fewer rows than K, --n-init {n_init}"),
            id,
            &eight,
            &[
                "-K",
                "10",
                "--batch-size",
                "2",
                "--test-fraction",
                "0",
                "--n-init",
                n_init,
            ],
            &["eight.csv", "8 points", "K = 10"],
        ));
    }
    for (id, n_init) in [("b1", "1"), ("b2", "2")] {
        cases.push(bad(
            &format!("table with fewer rows than one batch, --n-init {n_init}"),
            id,
            &eight,
            &[
                "-K",
                "2",
                "--batch-size",
                "20",
                "--test-fraction",
                "0",
                "--n-init",
                n_init,
            ],
            &["eight.csv", "fewer than one batch", "--batch-size"],
        ));
    }
    let one_class: String = table_csv(40)
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            _ => format!("{},7\n", &l[..l.rfind(',').unwrap()]),
        })
        .collect();
    let one_class = write(&d.join("oneclass.csv"), one_class);
    for (id, n_init) in [("c1", "1"), ("c2", "2")] {
        cases.push(bad(
            &format!("label column of one class, --n-init {n_init}"),
            id,
            &one_class,
            &["--label-column", "label", "-K", "3", "--n-init", n_init],
            &["oneclass.csv", "--label-column label", "`7`", "one class"],
        ));
    }
    cases.push(err(
        "serket --data with a label column of one class",
        GMVAE,
        os(&[
            "serket",
            "vae-gmm",
            "--data",
            &one_class,
            "--label-column",
            "label",
            "--out",
            &p(&work.join("restarts-serket")),
            "--rounds",
            "1",
            "--k",
            "2",
        ]),
        &["--label-column label", "one class"],
    ));
    // A fresh run never mixes with another: restarts where a single run is, and the reverse.
    let train = |id: &str, extra: &[&str]| {
        let s = Command::new(GMVAE)
            .args(args(id, &good, extra))
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    };
    train("single", &["--n-init", "1"]);
    train("several", &["--n-init", "2"]);
    let not_there = |path: PathBuf| {
        move || match path.exists() {
            true => Err(format!("{} was written", path.display())),
            false => Ok(()),
        }
    };
    cases.push(
        err(
            "--n-init 2 into a single run's directory",
            GMVAE,
            args("single", &good, &["--n-init", "2"]),
            &["already holds a run", "checkpoint.safetensors", "--resume"],
        )
        .then(not_there(out.join("single/restarts"))),
    );
    cases.push(
        err(
            "a single run into the directory of restarts",
            GMVAE,
            args("several", &good, &[]),
            &["already holds a run", "restarts", "--resume"],
        )
        .then(not_there(out.join("several/checkpoint.safetensors"))),
    );
    // A constant column trains, and the log names it once.
    let constant: String = table_csv(40)
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("flat,{l}\n"),
            _ => format!("3.5,{l}\n"),
        })
        .collect();
    let constant = write(&d.join("flat.csv"), constant);
    let run = out.join("f1");
    cases.push(
        ok(
            "a constant column with --n-init 2",
            GMVAE,
            args(
                "f1",
                &constant,
                &["--label-column", "label", "-K", "3", "--n-init", "2"],
            ),
        )
        .then(move || finite_bounds(&run.join("restarts/1"))),
    );
    // Counts (non-negative integers) with a constant column: the default scaling is minmax there
    // (max - min = 0 for the constant column), and the run still trains to a finite bound.
    let counts: String = table_csv(40)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return format!("flat,{l}\n");
            }
            let f: Vec<&str> = l.split(',').collect();
            let ints: Vec<String> = f[..4]
                .iter()
                .map(|v| format!("{}", (v.parse::<f64>().unwrap().abs() * 10.0).round()))
                .collect();
            format!("7,{},{}\n", ints.join(","), f[4])
        })
        .collect();
    let counts = write(&d.join("counts.csv"), counts);
    let run = out.join("c1");
    cases.push(
        ok(
            "a constant column in a table of counts (auto = minmax)",
            GMVAE,
            args("c1", &counts, &["--label-column", "label", "-K", "3"]),
        )
        .then(move || {
            let o = opts_json(&run);
            let kind = &o["table"]["fitted"]["scaler"]["kind"];
            if kind != "minmax" {
                return Err(format!("scaler {kind}, expected minmax"));
            }
            finite_bounds(&run)
        }),
    );
}

/// Every epoch of the run in `run` has a finite lower bound in its metrics.csv (and there is one).
fn finite_bounds(run: &Path) -> Result<(), String> {
    let s = std::fs::read_to_string(run.join("metrics.csv")).map_err(|e| e.to_string())?;
    let bounds: Vec<Option<f64>> = s
        .lines()
        .skip(1)
        .map(|r| r.split(',').nth(1).and_then(|v| v.parse::<f64>().ok()))
        .collect();
    match !bounds.is_empty() && bounds.iter().all(|b| b.is_some_and(f64::is_finite)) {
        true => Ok(()),
        false => Err(format!("no finite lower bound in every epoch: {s}")),
    }
}

fn bench_cases(cases: &mut Vec<Case>) {
    cases.push(err(
        "bench non-UTF-8 argument",
        BENCH,
        vec![OsString::from_vec(vec![0xff, b'x'])],
        &["invalid value", "PRESETS"],
    ));
    cases.push(err(
        "bench --steps 0",
        BENCH,
        os(&["--steps", "0"]),
        &["--steps"],
    ));
    cases.push(err(
        "bench --steps abc",
        BENCH,
        os(&["--steps", "abc"]),
        &["--steps", "abc"],
    ));
    cases.push(err(
        "bench --steps without a value",
        BENCH,
        os(&["--steps"]),
        &["--steps"],
    ));
    cases.push(err(
        "bench --steps huge",
        BENCH,
        os(&["--steps", "100000000"]),
        &["--steps", "100000000"],
    ));
    cases.push(err(
        "bench --threads huge",
        BENCH,
        os(&["--threads", "100000"]),
        &["--threads", "100000"],
    ));
    cases.push(err(
        "bench unknown preset",
        BENCH,
        os(&["mnist_conv"]),
        &["mnist_conv"],
    ));
    cases.push(err(
        "bench --gpu without CUDA",
        BENCH,
        os(&["--gpu", "spiral"]),
        &["--gpu"],
    ));
    cases.push(err(
        "bench --augment-weight on spiral",
        BENCH,
        os(&["--augment-weight", "1", "spiral"]),
        &["--augment-weight", "spiral", "no images"],
    ));
    cases.push(err(
        "bench --augment-weight nan",
        BENCH,
        os(&["--augment-weight", "nan", "mnist_fc"]),
        &["--augment-weight", "NaN"],
    ));
    cases.push(err(
        "bench --augment-weight with --peer",
        BENCH,
        os(&["--peer", "--augment-weight", "1", "mnist_fc"]),
        &["--augment-weight", "--peer"],
    ));
    cases.push(err(
        "bench -K 0",
        BENCH,
        os(&["-K", "0", "mnist_fc"]),
        &["-K", "0"],
    ));
    cases.push(ok(
        "bench mnist_fc, own recipe, K 3, augmentation (valid, tiny)",
        BENCH,
        os(&[
            "--steps",
            "20",
            "--warmup",
            "1",
            "--batch",
            "4",
            "--own-recipe",
            "-K",
            "3",
            "--augment-weight",
            "2",
            "mnist_fc",
        ]),
    ));
    cases.push(ok(
        "bench spiral (valid, tiny)",
        BENCH,
        os(&["--steps", "20", "--warmup", "1", "spiral"]),
    ));
}

#[test]
fn bad_inputs_give_clear_errors_never_panics_hangs_or_wrong_successes() {
    let work = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    flag_cases(&mut cases, work.path());
    data_cases(&mut cases, work.path());
    resume_cases(&mut cases, work.path());
    serket_cases(&mut cases, work.path());
    own_data_cases(&mut cases, work.path());
    own_data_round_two(&mut cases, work.path());
    restart_cases(&mut cases, work.path());
    bench_cases(&mut cases);
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    run_suite(cases, work.path());
}
