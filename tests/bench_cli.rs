//! The `bench` binary's command line and output shape (no timing is asserted: speed is measured
//! by running the bench, not by tests). The PyTorch peer is optional and not exercised here.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_arguments_are_clear_errors() {
    let o = bench(&["--steps", "5", "spiral"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--steps must be at least 20"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["--batch", "1", "spiral"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--batch must be at least 2"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["--threads", "0", "spiral"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
    let o = bench(&["cifar"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));
}

#[test]
fn a_missing_peer_is_reported_before_anything_runs() {
    let o = bench(&["--peer", "--python", "/nonexistent/python3", "spiral"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/python3") && e.contains("not found"),
        "{e}"
    );
    assert!(o.stdout.is_empty(), "nothing is measured first");
    let o = bench(&["--peer", "--peer-script", "/nonexistent/peer.py", "spiral"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--peer-script /nonexistent/peer.py"));
}

#[test]
fn prints_one_table_row_per_preset() {
    let o = bench(&["--steps", "20", "--warmup", "0", "--batch", "16", "spiral"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| spiral |"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    let cells: Vec<&str> = rows[0].split('|').map(str::trim).collect();
    // | preset | threads | batch | ms/step | ...
    assert_eq!((cells[2], cells[3]), ("1", "16"), "{out}");
    let ms: f64 = cells[4].parse().unwrap();
    assert!(ms.is_finite() && ms > 0.0, "{out}");
    assert!(out.contains("26752 parameters"), "{out}");
}
