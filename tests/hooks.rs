//! What a library caller plugs into training (`gmvae::hooks`, used by the Python binding): rows
//! in memory train the same model as the same rows in a file, the log goes to the caller's
//! function, an interrupt stops training with `Interrupted` and a resumable checkpoint, and
//! non-finite rows are refused with their row and column.

use gmvae::hooks::{Hooks, Interrupted, Log, Rows};
use gmvae::options::table::TableOptions;
use gmvae::options::Options;
use gmvae::train;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// 60 rows x 3 features: three offset groups (deterministic, two decimals, so the CSV holds the
/// very same f32 values).
fn rows() -> Vec<f32> {
    (0..60)
        .flat_map(|i| {
            let c = (i % 3) as f32;
            let wobble = ((i * 37) % 11) as f32 / 10.0;
            [c * 4.0 + wobble, -c * 2.0 + wobble * 0.5, c + 0.25 * wobble]
        })
        .map(|v| (v * 100.0).round() / 100.0)
        .collect()
}

/// Hooks with the rows `y` (3 columns) in memory, lines to `log`, and the interrupt check.
fn hooks<'a>(
    y: &'a [f32],
    log: &'a (dyn Fn(&str) + Sync),
    interrupt: Option<&'a (dyn Fn() -> bool + Sync)>,
) -> Hooks<'a> {
    Hooks {
        rows: Some(Rows { name: "X", y, d: 3 }),
        log: Log::To(log),
        interrupt,
        ..Hooks::default()
    }
}

fn options(dir: &Path, id: &str, data: &Path) -> Options {
    let mut o = Options::preset("table").unwrap();
    o.data = Some(data.to_path_buf());
    o.k = 3;
    o.epoch = 3;
    o.hidden_size = 16;
    o.batch_size = 20;
    o.out_dir = dir.to_path_buf();
    o.id = id.into();
    o.table = Some(TableOptions {
        test_fraction: 0.0,
        ..Default::default()
    });
    o
}

#[test]
fn rows_in_memory_train_the_model_the_file_trains() {
    let d = tempfile::tempdir().unwrap();
    let y = rows();
    let csv = d.path().join("rows.csv");
    let text: String = y
        .chunks(3)
        .map(|r| format!("{},{},{}\n", r[0], r[1], r[2]))
        .collect();
    std::fs::write(&csv, text).unwrap();
    let from_file = options(d.path(), "file", &csv).validated().unwrap();
    train::train(&from_file, false).unwrap();

    let lines = Mutex::new(Vec::<String>::new());
    let log = |l: &str| lines.lock().unwrap().push(l.to_string());
    let hooks = Hooks {
        rows: Some(Rows {
            name: "X",
            y: &y,
            d: 3,
        }),
        log: Log::To(&log),
        interrupt: None,
        ..Hooks::default()
    };
    let in_memory = options(d.path(), "memory", Path::new("X"))
        .validated()
        .unwrap();
    let s = train::train_with(&in_memory, false, hooks).unwrap();
    assert_eq!(s.last.unwrap().epoch, 3);
    let model = |id: &str| std::fs::read(d.path().join(id).join("model.safetensors")).unwrap();
    assert_eq!(model("file"), model("memory"));
    // Every line went to the caller's function: the table's, the header, one per epoch.
    let lines = lines.into_inner().unwrap();
    assert!(
        lines[0].starts_with("table: X has 60 rows x 3 feature columns"),
        "{lines:?}"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("epoch ")).count(), 3);
}

#[test]
fn an_interrupt_stops_training_with_a_resumable_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let y = rows();
    let mut o = options(d.path(), "stopped", Path::new("X"));
    o.epoch = 50;
    // Training steps only (the pretraining steps ask too; this counts from the first epoch).
    o.pretrain_epochs = 0;
    // Three steps an epoch: stop when the eighth step is about to start (epoch 3).
    let asked = AtomicUsize::new(0);
    let interrupt = || asked.fetch_add(1, Ordering::Relaxed) >= 7;
    let quiet = |_: &str| {};
    let hooks = hooks(&y, &quiet, Some(&interrupt));
    let err = train::train_with(&o.clone().validated().unwrap(), false, hooks).unwrap_err();
    assert!(err.downcast_ref::<Interrupted>().is_some(), "{err:#}");
    let metrics = std::fs::read_to_string(d.path().join("stopped/metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1 + 2,
        "two finished epochs: {metrics}"
    );
    assert!(d.path().join("stopped/checkpoint.safetensors").exists());
    assert!(!d.path().join("stopped/done.json").exists());
}

#[test]
fn non_finite_rows_are_refused_with_row_and_column() {
    let d = tempfile::tempdir().unwrap();
    let mut y = rows();
    y[3 * 5 + 2] = f32::NAN;
    let quiet = |_: &str| {};
    let hooks = Hooks {
        rows: Some(Rows {
            name: "X",
            y: &y,
            d: 3,
        }),
        log: Log::To(&quiet),
        interrupt: None,
        ..Hooks::default()
    };
    let o = options(d.path(), "nan", Path::new("X"))
        .validated()
        .unwrap();
    let err = format!("{:#}", train::train_with(&o, false, hooks).unwrap_err());
    assert!(err.contains("X: row 5, column 2 is NaN"), "{err}");
    // Refused before the run directory is made.
    assert!(!d.path().join("nan").exists());
}
