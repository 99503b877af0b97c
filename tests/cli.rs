//! One CLI: run.sh keeps the caller's working directory, missing default data names a working
//! source, and the Serket subcommands share gmvae's flag names, seed default and refusal to
//! overwrite.

use clap::Parser;
use gmvae::cli::{Cli, Command as Sub};
use gmvae::serket::cli::{Pipeline, PipelineArgs};
use std::path::Path;
use std::process::Command;

fn run_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmvae"))
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_sh_resolves_relative_paths_against_the_callers_directory() {
    let d = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["spiral", "-epoch", "1", "-_id", "here"])
        .args(["--spiral-points", "200", "--out-dir", "rel"])
        .current_dir(d.path())
        .env("GMVAE_BIN", env!("CARGO_BIN_EXE_gmvae"))
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.path().join("rel/here/metrics.csv").is_file());
    // A relative data path, too.
    let csv = d.path().join("pts.csv");
    std::fs::write(&csv, "0.1,0.2\n0.3,0.4\n0.5,0.1\n0.2,0.9\n").unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .args(["spiral", "-epoch", "1", "-batchSize", "2", "-_id", "file"])
        .args(["--data", "pts.csv", "--out-dir", "rel"])
        .current_dir(d.path())
        .env("GMVAE_BIN", env!("CARGO_BIN_EXE_gmvae"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.path().join("rel/file/opts.json").is_file());
}

#[test]
fn missing_default_data_names_a_working_source() {
    let d = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_in(d.path(), &["mnist_fc", "--epoch", "1"]);
    assert!(
        !ok && err.contains("data/mnist") && err.contains("https://ossci-datasets"),
        "{err}"
    );
    let (ok, _, err) = run_in(d.path(), &["svhn", "--epoch", "1"]);
    assert!(
        !ok && err.contains("data/svhn") && err.contains("http://ufldl.stanford.edu"),
        "{err}"
    );
    for p in ["vae-gmm", "vae-gmm-mlda"] {
        let (ok, _, err) = run_in(d.path(), &["serket", p, "--out-dir", "o"]);
        assert!(
            !ok && err.contains("data.zip")
                && err.contains("https://github.com/naka-lab/Serket/raw/master/examples/"),
            "{p}: {err}"
        );
    }
}

#[test]
fn serket_flags_match_gmvae_and_old_names_still_work() {
    let parse = |args: &[&str]| -> PipelineArgs {
        match Cli::try_parse_from(args).unwrap().command {
            Sub::Serket(s) => match s.pipeline {
                Pipeline::VaeGmm(a) | Pipeline::VaeGmmMlda(a) => a,
            },
            _ => unreachable!(),
        }
    };
    let new = parse(&[
        "gmvae",
        "serket",
        "vae-gmm",
        "--epoch",
        "3",
        "--out-dir",
        "x",
    ]);
    let old = parse(&["gmvae", "serket", "vae-gmm", "--epochs", "3", "--out", "x"]);
    assert_eq!((new.epochs, new.out.clone()), (3, "x".into()));
    assert_eq!((old.epochs, old.out), (new.epochs, new.out));
    // The same seed default as the training presets.
    let train = gmvae::options::Options::preset("spiral").unwrap();
    assert_eq!(PipelineArgs::default().seed, train.seed);
}

#[test]
fn serket_refuses_a_non_empty_output_directory_without_force() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("o")).unwrap();
    std::fs::write(d.path().join("o/summary.json"), "{}").unwrap();
    let (ok, _, err) = run_in(d.path(), &["serket", "vae-gmm", "--out-dir", "o"]);
    assert!(
        !ok && err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    // With --force it goes on (and stops at the missing data instead).
    let (ok, _, err) = run_in(
        d.path(),
        &["serket", "vae-gmm", "--out-dir", "o", "--force"],
    );
    assert!(
        !ok && !err.contains("not empty") && err.contains("data.zip"),
        "{err}"
    );
    // An empty directory is fine.
    std::fs::create_dir(d.path().join("e")).unwrap();
    let (_, _, err) = run_in(d.path(), &["serket", "vae-gmm", "--out-dir", "e"]);
    assert!(!err.contains("not empty"), "{err}");
}

#[test]
fn table_refuses_flags_that_do_nothing_for_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("t.csv"), "1,2\n3,4\n5,6\n").unwrap();
    for (flag, value) in [
        ("--continuous", "1"),
        ("--data-dir", "x"),
        ("--spiral-points", "10"),
        ("--n-filters", "4"),
    ] {
        let (ok, _, err) = run_in(d.path(), &["table", "--data", "t.csv", flag, value]);
        assert!(
            !ok && err.contains(flag) && err.contains("does nothing"),
            "{flag}: {err}"
        );
    }
}
