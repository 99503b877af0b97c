//! The accuracy protocol's script (`experiments/accuracy/protocol.sh`, issue 13) on a tiny
//! MNIST-format data set: a run goes to its epoch limit, its record (opts.json, metrics.csv,
//! done.json) is copied to the results directory, a second invocation skips the finished run,
//! and `accuracy_table` builds the protocol's table from the records alone once the run
//! directories are gone (as on a new machine).

use gmvae::data::mnist;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;

/// Two-class binary images (a top half or a bottom half lit, some pixels flipped).
fn write_data(dir: &Path, n: usize, prefix: &str, seed: u64) {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let labels: Vec<u8> = (0..n).map(|_| r.random_range(0..2u8)).collect();
    let mut images = Vec::with_capacity(n * 784);
    for &l in &labels {
        for p in 0..784 {
            let lit = (p < 392) == (l == 0);
            let flip = r.random_bool(0.1);
            images.push(if lit != flip { 255 } else { 0 });
        }
    }
    mnist::write_idx(dir, prefix, &images, 28, 28, &labels, false).unwrap();
}

/// The tiny data set in `root/mnist`: 120 training and 40 test images.
fn tiny_mnist(root: &Path) {
    let data = root.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data, 120, "train", 1);
    write_data(&data, 40, "t10k", 2);
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/accuracy/protocol.sh")
}

/// The row of `accuracy_table root/results` that starts with `start`.
fn table_row(root: &Path, start: &str) -> String {
    let table = Command::new(env!("CARGO_BIN_EXE_accuracy_table"))
        .arg(root.join("results"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no row `{start}` in\n{text}"))
        .to_string()
}

fn protocol(root: &Path) -> std::process::Output {
    protocol_with(root, "t", "")
}

/// The script on the tiny data set, its runs tagged `tag`, with `more` flags.
fn protocol_with(root: &Path, tag: &str, more: &str) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(script())
        .env("GMVAE", env!("CARGO_BIN_EXE_gmvae"))
        .env("DATA_DIR", root.join("mnist"))
        .env("OUT", root.join("runs"))
        .env("RESULTS", root.join("results"))
        .env("ROWS", "fc-k16-m1")
        .env("SEEDS", "1")
        .env("TAG", tag)
        .env("WORKERS", "1")
        .env("EPOCHS", "2")
        // A small network and a random start keep the run to seconds.
        .env(
            "FLAGS",
            format!(
                "--hidden-size 16 --x-size 3 --w-size 2 --pretrain-epochs 0 --batch-size 20 {more}"
            ),
        )
        .env("SNAPSHOT_EVERY", "1")
        .env("RAYON_NUM_THREADS", "1");
    c.output().expect("bash runs")
}

#[test]
fn protocol_runs_records_skips_and_tables_from_the_records() {
    let root = tempfile::tempdir().unwrap();
    tiny_mnist(root.path());

    let out = protocol(root.path());
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "protocol.sh failed:\n{log}");
    assert!(log.contains("[acc-fc-k16-m1-t-s1] starting"), "{log}");

    // The record: the options (with FLAGS applied), both epochs, and the reason it stopped.
    let rec = root.path().join("results/acc-fc-k16-m1-t-s1");
    let opts = std::fs::read_to_string(rec.join("opts.json")).unwrap();
    assert!(opts.contains("\"hidden_size\": 16"), "{opts}");
    let metrics = std::fs::read_to_string(rec.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "header + 2 epochs:\n{metrics}");
    assert!(rec.join("done.json").is_file());
    let run_metrics =
        std::fs::read_to_string(root.path().join("runs/acc-fc-k16-m1-t-s1/metrics.csv")).unwrap();
    assert_eq!(metrics, run_metrics, "the record is the run's own file");
    let leftovers: Vec<_> = std::fs::read_dir(&rec)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A second invocation finds the run finished and starts nothing.
    let again = protocol(root.path());
    let log = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success());
    assert!(
        log.contains("[acc-fc-k16-m1-t-s1] finished earlier"),
        "{log}"
    );

    // The run directories gone, the table still comes from the records.
    std::fs::remove_dir_all(root.path().join("runs")).unwrap();
    let row = table_row(root.path(), "| fc");
    // 1 run, finished, 2 epochs (not marked as unfinished), K = 16, M = 1.
    assert!(row.contains("| 16 | 1 | 1 (1) | 2 |"), "{row}");

    // Unknown arguments are refused with the script's name.
    let bad = Command::new("bash")
        .arg(script())
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument `snapshots`"));
}

#[test]
fn restarts_chosen_early_are_recorded_resumed_and_tabled() {
    let root = tempfile::tempdir().unwrap();
    tiny_mnist(root.path());
    let flags = "--n-init 2 --restart-choice confidence --restart-epochs 1";
    let id = "acc-fc-k16-m1-r-s1";
    let out = protocol_with(root.path(), "r", flags);
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "protocol.sh failed:\n{log}");
    // The records: the run's (its kept restart's files), the choice, and each restart's.
    let rec = root.path().join("results").join(id);
    let choice = std::fs::read_to_string(rec.join("restarts.json")).unwrap();
    let choice: serde_json::Value = serde_json::from_str(&choice).unwrap();
    assert_eq!(choice["screen_epochs"], 1);
    let kept = choice["kept"].as_u64().unwrap();
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(lines(&rec.join("metrics.csv")), 3, "header + 2 epochs");
    assert!(rec.join("done.json").is_file());
    for r in 0..2u64 {
        let epochs = if r == kept { 2 } else { 1 };
        let m = rec.join(format!("restarts/{r}/metrics.csv"));
        assert_eq!(lines(&m), 1 + epochs, "restart {r}");
    }

    // As if the session ended while the kept restart trained on: it resumes, nothing chooses
    // again, and the run ends finished.
    let run = root.path().join("runs").join(id);
    let kept_dir = run.join(format!("restarts/{kept}"));
    for f in ["done.json", "metrics.csv", "model.safetensors"] {
        std::fs::remove_file(run.join(f)).unwrap();
    }
    std::fs::remove_file(kept_dir.join("done.json")).unwrap();
    let again = protocol_with(root.path(), "r", flags);
    let log = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{log}");
    assert!(log.contains(&format!("[{id}] resuming")), "{log}");
    assert!(run.join("done.json").is_file() && run.join("model.safetensors").is_file());

    // A done.json gone from a run (a restart trained on after the choice) goes from its record.
    let other = 1 - kept;
    std::fs::remove_file(run.join(format!("restarts/{other}/done.json"))).unwrap();
    let snap = Command::new("bash")
        .arg(script())
        .arg("snapshot")
        .env("OUT", root.path().join("runs"))
        .env("RESULTS", root.path().join("results"))
        .output()
        .unwrap();
    assert!(snap.status.success());
    assert!(!rec.join(format!("restarts/{other}/done.json")).exists());
    assert!(rec.join(format!("restarts/{kept}/done.json")).exists());

    // The table reads the records: the kept restart's row of its own recipe.
    std::fs::remove_dir_all(root.path().join("runs")).unwrap();
    let row = table_row(
        root.path(),
        "| fc, lr 3e-4, most confident of 2 restarts after 1 epoch,",
    );
    assert!(row.contains("| 16 | 1 | 1 (1) | 2 |"), "{row}");
}
