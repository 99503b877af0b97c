//! `--n-init N` through the binary: the kept restart is the one with the best final training
//! lower bound (`--restart-choice bound`) or the one that agrees best with the others (the
//! table's default), `--n-init 1` writes the files of a plain run, restarts side by side train the
//! numbers they train one after the other, `--resume` continues every unfinished restart and
//! then chooses, and `predict` reads the kept model from the run directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const GMVAE: &str = env!("CARGO_BIN_EXE_gmvae");

/// 150 rows of three noisy 3-D blobs with a label column (deterministic).
fn blobs_csv(path: &Path) {
    let mut s = String::from("f0,f1,f2,label\n");
    let mut g = 99u64;
    let mut noise = || {
        g = g
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((g >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0
    };
    for i in 0..150 {
        let c = i % 3;
        let centre = [[0.0, 3.0, -2.0], [4.0, -1.0, 1.0], [-3.0, -3.0, 3.0]][c];
        let row: Vec<String> = centre
            .iter()
            .map(|v| format!("{:.3}", v + noise()))
            .collect();
        s += &format!("{},{c}\n", row.join(","));
    }
    std::fs::write(path, s).unwrap();
}

/// Runs `gmvae` with `args` (one kernel thread); panics on failure. Returns stdout.
fn gmvae(args: &[OsString]) -> String {
    let o = Command::new(GMVAE)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{log}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    log
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Trains `gmvae table` on `data` into `out/id` with `extra` flags.
fn table(data: &Path, out: &Path, id: &str, extra: &[&str]) -> PathBuf {
    let mut args = os(&[
        "table",
        "--label-column",
        "label",
        "-K",
        "3",
        "--batch-size",
        "40",
    ]);
    args.extend(os(&["--hidden-size", "32", "--id", id]));
    args.extend(["--data".into(), data.into(), "--out-dir".into(), out.into()]);
    args.extend(os(extra));
    gmvae(&args);
    out.join(id)
}

fn resume(run: &Path, extra: &[&str]) -> String {
    let mut args = vec!["table".into(), "--resume".into(), run.into()];
    args.extend(os(extra));
    gmvae(&args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lower bound of the last row of a run's metrics.csv, and the rows.
fn final_bound(run: &Path) -> (f64, usize) {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let lb = gmvae::record::csv_lower_bound(rows.last().unwrap()).unwrap();
    (lb, rows.len())
}

/// metrics.csv without its `seconds` column.
fn numbers(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let seconds = gmvae::train::METRICS_HEADER
        .split(',')
        .position(|c| c == "seconds")
        .unwrap();
    text.lines()
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            c.remove(seconds);
            c.join(",")
        })
        .collect()
}

/// Runs `a` and `b` hold the same model, byte for byte.
fn same_model(a: &Path, b: &Path) {
    let m = "model.safetensors";
    assert_eq!(
        bytes(&a.join(m)),
        bytes(&b.join(m)),
        "{} vs {}",
        a.display(),
        b.display()
    );
}

/// The first `n` restarts of runs `a` and `b` trained the same model and numbers.
fn same_restarts(a: &Path, b: &Path, n: usize) {
    for r in 0..n {
        let (a, b) = (
            a.join("restarts").join(r.to_string()),
            b.join("restarts").join(r.to_string()),
        );
        same_model(&a, &b);
        assert_eq!(numbers(&a), numbers(&b), "restart {r}");
    }
}

#[test]
fn the_kept_restart_has_the_best_final_bound_and_parallel_restarts_train_the_same() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    let flags = ["--n-init", "3", "--epoch", "4", "--restart-choice", "bound"];
    let one = table(
        &data,
        d.path(),
        "one",
        &[&flags[..], &["--threads", "1"]].concat(),
    );
    let two = table(
        &data,
        d.path(),
        "two",
        &[&flags[..], &["--threads", "2"]].concat(),
    );

    let rec = json(&one.join("restarts.json"));
    let restarts = rec["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 3);
    assert_eq!(rec["n_init"], 3);
    assert_eq!(restarts[0]["seed"], 1, "restart 0 is --seed itself");
    let mut bounds = Vec::new();
    for (r, entry) in restarts.iter().enumerate() {
        let dir = one.join("restarts").join(r.to_string());
        let (lb, epochs) = final_bound(&dir);
        assert_eq!(epochs, 4);
        assert_eq!(entry["epochs"], 4);
        assert!((entry["lower_bound"].as_f64().unwrap() - lb).abs() < 1e-9);
        assert_eq!(json(&dir.join("opts.json"))["seed"], entry["seed"]);
        bounds.push(lb);
    }
    let best = (0..3)
        .max_by(|&a, &b| bounds[a].total_cmp(&bounds[b]))
        .unwrap();
    assert_eq!(rec["kept"], best, "bounds {bounds:?}");
    assert!(
        bounds.iter().any(|&b| b != bounds[best]),
        "the restarts differ: {bounds:?}"
    );
    // The kept restart's files are the run's.
    let kept = one.join("restarts").join(best.to_string());
    for f in [
        "model.safetensors",
        "config.json",
        "metrics.csv",
        "done.json",
    ] {
        assert_eq!(bytes(&one.join(f)), bytes(&kept.join(f)), "{f}");
    }
    // Every restart trains the same numbers whether run one at a time or two side by side.
    same_restarts(&one, &two, 3);
    assert_eq!(json(&two.join("restarts.json"))["kept"], rec["kept"]);

    // predict reads the kept model from the run directory.
    let pred = d.path().join("pred.csv");
    let mut args = os(&["predict", "--run"]);
    args.extend([one.clone().into(), "--data".into(), data.clone().into()]);
    args.extend(["--out".into(), pred.clone().into()]);
    gmvae(&args);
    assert_eq!(std::fs::read_to_string(&pred).unwrap().lines().count(), 151);
}

#[test]
fn n_init_one_is_the_plain_run_and_restart_zero_repeats_it() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    // The table preset's default is 5 restarts; a plain run is one without restarts.
    let plain = table(&data, d.path(), "plain", &["--epoch", "3", "--n-init", "1"]);
    // With one restart there is nothing to choose: the choice changes nothing.
    let one = table(
        &data,
        d.path(),
        "one",
        &["--epoch", "3", "--n-init", "1", "--restart-choice", "bound"],
    );
    let two = table(&data, d.path(), "two", &["--epoch", "3", "--n-init", "2"]);
    let files = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&plain), files(&one));
    assert!(!one.join("restarts").exists() && !one.join("restarts.json").exists());
    let opts = std::fs::read_to_string(one.join("opts.json")).unwrap();
    assert!(!opts.contains("n_init"), "{opts}");
    let restart0 = two.join("restarts/0");
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "latent.safetensors",
        "config.json",
    ] {
        assert_eq!(bytes(&plain.join(f)), bytes(&one.join(f)), "{f}");
        assert_eq!(
            bytes(&plain.join(f)),
            bytes(&restart0.join(f)),
            "restart 0 {f}"
        );
    }
    assert_eq!(numbers(&plain), numbers(&one));
    assert_eq!(numbers(&plain), numbers(&restart0));
    // Every restart holds out the same rows: the split follows the run's --seed.
    let split = |dir: &Path| json(&dir.join("opts.json"))["data_seed"].clone();
    assert_eq!(split(&two.join("restarts/1")), 1);
    assert_eq!(json(&two.join("opts.json"))["n_init"], 2);
}

/// The components `gmvae predict` gives the rows of `data` under the model in `run`.
fn predicted(run: &Path, data: &Path, out: &Path) -> Vec<usize> {
    predict_rows(run, data, out)
        .iter()
        .map(|c| c[0] as usize)
        .collect()
}

/// `gmvae predict`'s CSV for the rows of `data` under the model in `run`, as numbers (component,
/// q_z_0.., x_mean.., label).
fn predict_rows(run: &Path, data: &Path, out: &Path) -> Vec<Vec<f64>> {
    let mut args = os(&["predict", "--run"]);
    args.extend([
        run.into(),
        "--data".into(),
        data.into(),
        "--out".into(),
        out.into(),
    ]);
    gmvae(&args);
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn the_table_default_keeps_the_restart_that_agrees_best_with_the_others() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    // One epoch after a short start: the restarts cluster the blobs differently. Every row
    // trains (no held-out split), so the restarts' clusterings of the training rows are
    // `predict`'s of the whole file.
    let run = table(
        &data,
        d.path(),
        "agree",
        &[
            "--epoch",
            "1",
            "--pretrain-epochs",
            "2",
            "--test-fraction",
            "0",
        ],
    );
    let rec = json(&run.join("restarts.json"));
    assert_eq!(rec["n_init"], 5, "the table preset's default");
    assert!(
        rec["criterion"].as_str().unwrap().starts_with("agreement"),
        "{rec}"
    );
    let restarts = rec["restarts"].as_array().unwrap();
    let clusters: Vec<Vec<usize>> = (0..5)
        .map(|r| {
            let dir = run.join("restarts").join(r.to_string());
            predicted(&dir, &data, &d.path().join(format!("p{r}.csv")))
        })
        .collect();
    let mut mean = Vec::new();
    for i in 0..5 {
        let others: f64 = (0..5)
            .filter(|&j| j != i)
            .map(|j| gmvae::metrics::ari(&clusters[i], &clusters[j]).unwrap())
            .sum();
        mean.push(others / 4.0);
        let recorded = restarts[i]["agreement"].as_f64().unwrap();
        assert!(
            (recorded - mean[i]).abs() < 1e-9,
            "restart {i}: {recorded} vs {}",
            mean[i]
        );
    }
    // The best agreement; ties go to the better bound, then to the first.
    let bound = |r: usize| restarts[r]["lower_bound"].as_f64().unwrap();
    let best = (1..5).fold(0, |b, r| match (mean[r], bound(r)) > (mean[b], bound(b)) {
        true => r,
        false => b,
    });
    assert!(
        mean.iter().any(|&m| m < mean[best] - 1e-6),
        "the restarts differ: {mean:?}"
    );
    assert_eq!(rec["kept"], best, "mean agreements {mean:?}");
    let kept = run.join("restarts").join(best.to_string());
    let model = bytes(&run.join("model.safetensors"));
    assert_eq!(model, bytes(&kept.join("model.safetensors")));
    // `gmvae export RUN` exports the kept restart's checkpoint: what training left.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    std::fs::remove_file(kept.join("model.safetensors")).unwrap();
    let mut args = os(&["export"]);
    args.push(run.clone().into());
    gmvae(&args);
    assert_eq!(bytes(&run.join("model.safetensors")), model);
    assert_eq!(bytes(&kept.join("model.safetensors")), model);
    // The run records the scaling its data settled, as a single run does.
    let kind = &json(&run.join("opts.json"))["table"]["fitted"]["scaler"]["kind"];
    assert_eq!(kind, "standardize");
}

#[test]
fn resume_continues_every_unfinished_restart_then_chooses() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    let whole = table(&data, d.path(), "whole", &["--n-init", "3", "--epoch", "4"]);
    let cut = table(&data, d.path(), "cut", &["--n-init", "3", "--epoch", "2"]);
    // As if killed: restart 2 never started, restart 1 finished only epoch 1, no choice made.
    std::fs::remove_dir_all(cut.join("restarts/2")).unwrap();
    std::fs::remove_file(cut.join("restarts.json")).unwrap();
    std::fs::remove_file(cut.join("model.safetensors")).unwrap();
    let r1 = cut.join("restarts/1");
    let keep = |rows: &str| rows.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
    let metrics = std::fs::read_to_string(r1.join("metrics.csv")).unwrap();
    std::fs::write(r1.join("metrics.csv"), keep(&metrics)).unwrap();
    // Its checkpoint of epoch 1: the one a run with --epoch 1 writes.
    let e1 = table(&data, d.path(), "e1", &["--n-init", "2", "--epoch", "1"]);
    std::fs::copy(
        e1.join("restarts/1/checkpoint.safetensors"),
        r1.join("checkpoint.safetensors"),
    )
    .unwrap();

    let log = resume(&cut, &["--epoch", "4"]);
    assert!(log.contains("restart 0 (seed 1): resuming"), "{log}");
    assert!(
        log.contains("restart 2") && log.contains("starting"),
        "{log}"
    );
    assert_eq!(json(&cut.join("opts.json"))["epoch"], 4);
    same_restarts(&whole, &cut, 3);
    assert_eq!(
        json(&cut.join("restarts.json")),
        json(&whole.join("restarts.json"))
    );
    same_model(&cut, &whole);
    // A finished run resumed again has nothing to train and chooses the same.
    resume(&cut, &[]);
    assert_eq!(
        json(&cut.join("restarts.json")),
        json(&whole.join("restarts.json"))
    );
}

#[test]
fn confidence_keeps_the_most_confident_restart() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    // Every row trains, so the training rows are `predict`'s rows of the whole file.
    let flags = [
        "--n-init",
        "3",
        "--restart-choice",
        "confidence",
        "--test-fraction",
        "0",
        "--epoch",
        "2",
    ];
    let run = table(&data, d.path(), "confident", &flags);
    let rec = json(&run.join("restarts.json"));
    assert!(
        rec["criterion"].as_str().unwrap().starts_with("confidence"),
        "{rec}"
    );
    let restarts = rec["restarts"].as_array().unwrap();
    let mut confidence = Vec::new();
    for (r, entry) in restarts.iter().enumerate() {
        let dir = run.join("restarts").join(r.to_string());
        let rows = predict_rows(&dir, &data, &d.path().join(format!("q{r}.csv")));
        assert_eq!(rows.len(), 150);
        // q(z=k|y) for K = 3: the columns after the component.
        let mean = rows
            .iter()
            .map(|c| c[1..4].iter().cloned().fold(0.0, f64::max))
            .sum::<f64>()
            / rows.len() as f64;
        let recorded = entry["confidence"].as_f64().unwrap();
        // predict's CSV rounds q to a few digits.
        assert!(
            (recorded - mean).abs() < 1e-4,
            "restart {r}: {recorded} vs {mean}"
        );
        assert!(entry.get("agreement").is_none(), "{entry}");
        confidence.push(recorded);
    }
    let best = (1..3).fold(0, |b, r| if confidence[r] > confidence[b] { r } else { b });
    assert!(
        confidence.iter().any(|&c| c < confidence[best] - 1e-6),
        "the restarts differ: {confidence:?}"
    );
    assert_eq!(rec["kept"], best, "confidence {confidence:?}");
    let kept = run.join("restarts").join(best.to_string());
    same_model(&run, &kept);
}

#[test]
fn restart_epochs_chooses_early_and_only_the_kept_restart_trains_on() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    let base = ["--n-init", "3", "--restart-choice", "bound"];
    // The same restarts trained 2 and 4 epochs, each to the end.
    let short = table(
        &data,
        d.path(),
        "short",
        &[&base[..], &["--epoch", "2"]].concat(),
    );
    let whole = table(
        &data,
        d.path(),
        "whole",
        &[&base[..], &["--epoch", "4"]].concat(),
    );
    let early_flags = [&base[..], &["--epoch", "4", "--restart-epochs", "2"]].concat();
    let early = table(&data, d.path(), "early", &early_flags);

    let rec = json(&early.join("restarts.json"));
    assert_eq!(rec["screen_epochs"], 2);
    // The choice is the one made among the restarts at epoch 2, with the same records.
    let at2 = json(&short.join("restarts.json"));
    assert_eq!(rec["kept"], at2["kept"]);
    assert_eq!(rec["restarts"], at2["restarts"]);
    let kept = rec["kept"].as_u64().unwrap() as usize;
    for r in 0..3 {
        let dir = |run: &Path| run.join("restarts").join(r.to_string());
        let (_, epochs) = final_bound(&dir(&early));
        if r == kept {
            // Trained on from its epoch-2 checkpoint: the same numbers as training straight on.
            assert_eq!(epochs, 4);
            assert_eq!(numbers(&dir(&early)), numbers(&dir(&whole)));
            same_model(&dir(&early), &dir(&whole));
        } else {
            assert_eq!(epochs, 2, "restart {r} stops at the choice");
            assert_eq!(numbers(&dir(&early)), numbers(&dir(&short)));
        }
    }
    assert_eq!(
        numbers(&early),
        numbers(&early.join("restarts").join(kept.to_string()))
    );

    // Interrupted after the choice: --resume trains the kept restart on, without choosing again.
    let cut_flags = [&base[..], &["--epoch", "3", "--restart-epochs", "2"]].concat();
    let cut = table(&data, d.path(), "cut", &cut_flags);
    assert_eq!(json(&cut.join("done.json"))["epochs"], 3);
    let log = resume(&cut, &["--epoch", "4"]);
    assert_eq!(json(&cut.join("done.json"))["epochs"], 4);
    assert!(log.contains("was kept after 2 epochs"), "{log}");
    assert!(
        !log.contains("restart 1 (seed"),
        "no restart trains again: {log}"
    );
    assert_eq!(json(&cut.join("restarts.json")), rec);
    assert_eq!(numbers(&cut), numbers(&early));
    same_model(&cut, &early);
}

#[test]
fn restart_epochs_needs_restarts_and_fewer_epochs_than_the_run() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("blobs.csv");
    blobs_csv(&data);
    for (flags, words) in [
        (
            vec!["--n-init", "1", "--restart-epochs", "2"],
            vec!["--restart-epochs 2", "--n-init 2 or more", "found 1"],
        ),
        (
            vec!["--n-init", "3", "--epoch", "4", "--restart-epochs", "4"],
            vec!["--restart-epochs", "below --epoch (4)", "found 4"],
        ),
    ] {
        let mut args = os(&["table", "--label-column", "label", "-K", "3", "--id", "bad"]);
        args.extend(["--data".into(), data.clone().into()]);
        args.extend(["--out-dir".into(), d.path().into()]);
        args.extend(os(&flags));
        let o = Command::new(GMVAE).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flags:?} was accepted");
        for w in words {
            assert!(err.contains(w), "{flags:?}: no `{w}` in {err}");
        }
        assert!(
            !d.path().join("bad").exists(),
            "{flags:?} left a run directory"
        );
    }
}
