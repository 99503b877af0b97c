//! plot_serket on small synthetic `gmvae serket` output folders the tests write, and on a tiny
//! real pipeline run: figures written at their sizes, one PCA basis for both panels, clear
//! errors for folders missing rounds or with mismatched rows.

mod common;

use common::*;
use gmvae::serket::data::{read_matrix, Matrix};
use gmvae_plot::serket::{
    render_run, shared_projection, BeforeAfter, Options, SerketRun, ACCURACY_PNG, ACCURACY_SIZE,
    BY_GMM_PNG, BY_LABEL_PNG, BY_MLDA_PNG, SCATTER_SIZE,
};
use std::fmt::Write as _;
use std::path::Path;

const N: usize = 36;
const D: usize = 4;
const K: usize = 3;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn label(i: usize) -> usize {
    i % K
}

/// z of round `r`: class c sits at 3 * e_c, with a spread that shrinks as the rounds go on
/// (dispersed before, gathered after); row 0 never moves.
fn z_text(r: usize, rounds: usize) -> String {
    let spread = 2.5 / (1.0 + 2.0 * r as f64 / rounds.max(1) as f64);
    let mut s = String::new();
    for i in 0..N {
        let row: Vec<f64> = (0..D)
            .map(|j| {
                if i == 0 {
                    return [0.5, -1.0, 2.0, 0.25][j];
                }
                let centre = if j == label(i) { 3.0 } else { 0.0 };
                // Deterministic scatter in [-1, 1).
                let u = ((i * 7919 + j * 104_729 + r * 31) % 1000) as f64 / 500.0 - 1.0;
                centre + spread * u
            })
            .collect();
        let line: Vec<String> = row.iter().map(|v| format!("{v:.18e}")).collect();
        writeln!(s, "{}", line.join(" ")).unwrap();
    }
    s
}

fn column(v: impl Iterator<Item = usize>) -> String {
    v.map(|c| format!("{c}\n")).collect()
}

/// A `gmvae serket` output folder with `rounds` rounds, laid out as the pipelines number their
/// modules (vae-gmm: 001_vae, 002_gmm; vae-gmm-mlda: 002_vae, 003_gmm, 004_mlda).
fn write_run(dir: &Path, rounds: usize, mlda: bool) {
    let (vae, gmm) = if mlda {
        ("module002_vae", "module003_gmm")
    } else {
        ("module001_vae", "module002_gmm")
    };
    write(&dir.join("category.txt"), &column((0..N).map(label)));
    let mut hist = Vec::new();
    for r in 0..rounds {
        write(
            &dir.join(format!("{vae}/{r:03}/z_learn.txt")),
            &z_text(r, rounds),
        );
        // The GMM gets more right as the rounds go on.
        let gmm_classes = (0..N).map(|i| if i < N / (r + 2) { 0 } else { label(i) });
        write(
            &dir.join(format!("{gmm}/{r:03}/class_learn.txt")),
            &column(gmm_classes),
        );
        if mlda {
            write(
                &dir.join(format!("module004_mlda/{r:03}/class_learn.txt")),
                &column((0..N).map(|i| (label(i) + r) % K)),
            );
        }
        let acc = 0.5 + 0.1 * r as f64;
        hist.push(format!(
            r#"{{"round": {r}, "scores": {{"greedy": {acc}, "hungarian": {acc}, "nmi": {}, "ari": 0.3, "used_classes": 3}}, "final_loglik": -1.0, "seconds": 0.1}}"#,
            acc - 0.05
        ));
    }
    let h = hist.join(", ");
    let mlda_h = if mlda { h.as_str() } else { "" };
    let vae_h: Vec<String> = (0..rounds)
        .map(|r| {
            format!(
                r#"{{"round": {r}, "final_loss": {}, "seconds": 2.0}}"#,
                110 - r
            )
        })
        .collect();
    write(
        &dir.join("summary.json"),
        &format!(
            r#"{{"pipeline": "{}", "seed": 0, "vae": {{"preset": "Upstream"}}, "rounds": {rounds}, "gmm_iters": 5, "mlda_iters": 5, "vae_history": [{}], "gmm_history": [{h}], "mlda_history": [{mlda_h}], "wall_seconds": 12.5}}"#,
            if mlda { "vae-gmm-mlda" } else { "vae-gmm" },
            vae_h.join(", ")
        ),
    );
}

#[test]
fn both_panels_come_from_one_basis_fitted_on_both_rounds() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), 4, false);
    let run = SerketRun::open(dir.path()).unwrap();
    assert_eq!(run.rounds, vec![0, 1, 2, 3]);
    let rounds = run.pick_rounds(None).unwrap();
    assert_eq!(rounds, [0, 3]);
    let ba = BeforeAfter::load(&run, rounds).unwrap();
    // Row 0 is the same in both rounds, so it lands on the same spot in both panels.
    assert_eq!(ba.points[0][0], ba.points[1][0]);
    // Every other point is its round's row through that same basis ...
    let a = read_matrix(&dir.path().join("module001_vae/000/z_learn.txt")).unwrap();
    let b = read_matrix(&dir.path().join("module001_vae/003/z_learn.txt")).unwrap();
    for i in 1..N {
        assert_eq!(
            ba.points[0][i],
            ba.proj.apply(&a.to_f32()[i * D..(i + 1) * D])
        );
        assert_eq!(
            ba.points[1][i],
            ba.proj.apply(&b.to_f32()[i * D..(i + 1) * D])
        );
    }
    // ... and the basis is the union's PCA, not either round's alone.
    let union = shared_projection(&a, &b).unwrap();
    assert_eq!(ba.proj.axes, union.axes);
    let only_a = gmvae_plot::linalg::Projection::fit(&a.to_f32(), D).unwrap();
    let gap: f64 = only_a
        .center
        .iter()
        .zip(&union.center)
        .map(|(x, y)| (x - y).abs())
        .sum();
    assert!(
        gap > 1e-3,
        "fixture too weak: round 0 alone has the union's centre"
    );
    // The classes gather: mean distance to the class centroid shrinks from round 0 to 3.
    let spread = |pts: &[(f64, f64)]| -> f64 {
        (0..K)
            .map(|c| {
                let m: Vec<_> = (1..N).filter(|&i| label(i) == c).map(|i| pts[i]).collect();
                let (cx, cy) = m.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
                let (cx, cy) = (cx / m.len() as f64, cy / m.len() as f64);
                m.iter()
                    .map(|p| ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt())
                    .sum::<f64>()
            })
            .sum()
    };
    assert!(spread(&ba.points[1]) < spread(&ba.points[0]));
    let labels: Vec<usize> = (0..N).map(label).collect();
    let share = |z: &Matrix| gmvae_plot::serket::within_class_share(z, &labels);
    assert!(share(&ba.z[1]) < share(&ba.z[0]));
}

#[test]
fn every_figure_of_a_vae_gmm_mlda_run() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), 3, true);
    let out = dir.path().join("figs");
    let o = run(
        "plot_serket",
        &[
            dir.path().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--rounds",
            "1,2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [BY_LABEL_PNG, BY_GMM_PNG, BY_MLDA_PNG] {
        // Three classes' colours in two panels.
        check_png(&out.join(f), Some(SCATTER_SIZE), 20, 200);
        // Class 0's colour (the palette's first) is on the picture.
        assert!(count_near(&out.join(f), [31, 119, 180], 40) > 20, "{f}");
    }
    check_png(&out.join(ACCURACY_PNG), Some(ACCURACY_SIZE), 10, 200);
}

#[test]
fn a_vae_gmm_run_has_no_mlda_figure_and_labels_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), 2, false);
    std::fs::remove_file(dir.path().join("category.txt")).unwrap();
    let written = render_run(dir.path(), dir.path(), &Options::default()).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, [BY_GMM_PNG, ACCURACY_PNG]);
    // Labels from elsewhere bring the true-class figure back.
    let labels = dir.path().join("labels.txt");
    write(&labels, &column((0..N).map(label)));
    let opts = Options {
        category: Some(labels),
        ..Options::default()
    };
    let written = render_run(dir.path(), dir.path(), &opts).unwrap();
    assert_eq!(written.len(), 3);
    check_png(&dir.path().join(BY_LABEL_PNG), Some(SCATTER_SIZE), 20, 200);
    // --size sets the scatter figures' canvas.
    let opts = Options {
        size: Some((900, 450)),
        ..opts
    };
    render_run(dir.path(), dir.path(), &opts).unwrap();
    check_png(&dir.path().join(BY_LABEL_PNG), Some((900, 450)), 20, 200);
    check_png(&dir.path().join(BY_GMM_PNG), Some((900, 450)), 20, 200);
}

fn fails_with(dir: &Path, extra: &[&str], expect: &[&str]) {
    let mut args = vec![dir.to_str().unwrap()];
    args.extend(extra);
    let o = run("plot_serket", &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn clear_errors_for_missing_rounds_and_mismatched_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_with(d, &[], &["no module%03d_vae folder"]);
    std::fs::create_dir_all(d.join("module001_vae")).unwrap();
    fails_with(d, &[], &["module001_vae", "has no rounds", "000, 001"]);
    write_run(d, 2, false);
    fails_with(
        d,
        &["--rounds", "0,7"],
        &["round 7 is missing", "007/z_learn.txt", "0, 1"],
    );
    // A GMM round that lost its classes.
    std::fs::remove_file(d.join("module002_gmm/001/class_learn.txt")).unwrap();
    fails_with(
        d,
        &[],
        &["module002_gmm/001/class_learn.txt", "does not exist"],
    );
    // Classes with a row too few.
    write(
        &d.join("module002_gmm/001/class_learn.txt"),
        &column((0..N - 1).map(label)),
    );
    fails_with(d, &[], &["class_learn.txt has 35 rows", "has 36"]);
    // Labels of another data set.
    write_run(d, 2, false);
    write(&d.join("category.txt"), &column((0..N + 4).map(label)));
    fails_with(d, &[], &["category.txt has 40 rows"]);
    // Rounds of different sizes.
    write_run(d, 2, false);
    let z: String = z_text(1, 2)
        .lines()
        .take(N - 2)
        .map(|l| format!("{l}\n"))
        .collect();
    write(&d.join("module001_vae/001/z_learn.txt"), &z);
    fails_with(d, &[], &["34 in round 1", "36 rows in round 0"]);
    // A malformed flag is clap's usage error (status 2).
    let o = run("plot_serket", &[d.to_str().unwrap(), "--rounds", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("expected two rounds A,B"), "{err}");
}

/// The real pipeline (tiny: 40 16-pixel images, 2 rounds of 2 epochs), then plot_serket on its
/// output folder: the layout the plots read is the one `gmvae serket` writes.
#[test]
fn plots_a_real_tiny_vae_gmm_run() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let data: Vec<f64> = (0..n * 16)
        .map(|j| {
            let (i, p) = (j / 16, j % 16);
            let on = (p < 8) == (labels[i] == 0);
            let noise = ((j * 7919) % 100) as f64 / 400.0;
            if on {
                0.75 + noise
            } else {
                noise
            }
        })
        .collect();
    let args = gmvae::serket::cli::PipelineArgs {
        out: dir.path().join("run"),
        rounds: 2,
        epochs: 2,
        batch_size: 20,
        latent: 3,
        k: 2,
        gmm_iters: 5,
        no_reconstructions: true,
        ..Default::default()
    };
    let inputs = gmvae::serket::cli::Inputs {
        images: Matrix::new(n, 16, data).unwrap(),
        speech: None,
        labels: Some(labels),
        likelihood: gmvae::serket::vae::VaeLikelihood::Bernoulli,
    };
    gmvae::serket::cli::vae_gmm(inputs, &args).unwrap();
    let o = run("plot_serket", &[args.out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [BY_LABEL_PNG, BY_GMM_PNG] {
        check_png(&args.out.join(f), Some(SCATTER_SIZE), 10, 100);
    }
    check_png(&args.out.join(ACCURACY_PNG), Some(ACCURACY_SIZE), 10, 200);
    assert!(!args.out.join(BY_MLDA_PNG).exists());
}

/// A GMVAE run directory with two epochs of metrics (no latent dump).
fn write_gmvae_run(dir: &Path) {
    let header = gmvae::train::METRICS_HEADER;
    let cols: Vec<&str> = header.split(',').collect();
    let row = |epoch: usize, hung: f64, secs: f64| -> String {
        cols.iter()
            .map(|c| match *c {
                "epoch" => epoch.to_string(),
                "test_acc" => "0.3723".into(),
                "test_acc_hungarian" => format!("{hung}"),
                "test_nmi" => "0.5613".into(),
                "clusters_used" => "9".into(),
                "seconds" => format!("{secs}"),
                // No ARI recorded: the report shows a dash, not a number.
                "test_ari" => String::new(),
                _ => "-1.5".into(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    write(
        &dir.join("metrics.csv"),
        &format!(
            "{header}\n{}\n{}\n",
            row(1, 0.25, 10.0),
            row(2, 0.463, 11.5)
        ),
    );
}

#[test]
fn report_page_tables_and_figures() {
    let root = tempfile::tempdir().unwrap();
    let (g, a, b) = (
        root.path().join("gmvae-k10"),
        root.path().join("srk-vae-gmm"),
        root.path().join("srk-vae-gmm-mlda"),
    );
    write_gmvae_run(&g);
    write_run(&a, 2, false);
    write_run(&b, 3, true);
    let out = root.path().join("report");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = [
        "--gmvae".into(),
        s(&g),
        "--serket".into(),
        s(&a),
        "--serket".into(),
        s(&b),
        "-o".into(),
        s(&out),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run("serket_report", &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(out.join("report.md")).unwrap();
    // The GMVAE row holds the last epoch's scores and the summed seconds (10 + 11.5).
    assert!(
        page.contains(
            "| GMVAE | gmvae-k10 | q(z\\|y) | 2 epochs | 0.3723 | 0.4630 | 0.5613 | — | 9 | 22 |"
        ),
        "{page}"
    );
    // Serket final rounds: greedy 0.5 + 0.1 * last round.
    assert!(
        page.contains("| Serket vae-gmm (upstream) | srk-vae-gmm | GMM | 2 rounds | 0.6000 |"),
        "{page}"
    );
    assert!(
        page.contains(
            "| Serket vae-gmm-mlda (upstream) | srk-vae-gmm-mlda | MLDA | 3 rounds | 0.7000 |"
        ),
        "{page}"
    );
    assert!(
        page.contains("| srk-vae-gmm-mlda | 0 | upstream | 2 | MLDA | 0.7000 |"),
        "{page}"
    );
    assert!(page.contains("[110.00, 109.00, 108.00]"), "{page}");
    // Every linked figure exists and is a drawn PNG.
    let links: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("![").and_then(|l| l.split_once("](")))
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .collect();
    assert_eq!(links.len(), 1 + 3 + 4, "{links:?}");
    for l in links {
        check_png(&out.join(l), None, 10, 100);
    }
    // Two runs of one name would overwrite each other's figures.
    let o = run(
        "serket_report",
        &["--serket", &s(&a), "--serket", &s(&a), "-o", &s(&out)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("both named `srk-vae-gmm`"));
    // A Serket folder whose run has not finished.
    std::fs::remove_file(a.join("summary.json")).unwrap();
    let o = run("serket_report", &["--serket", &s(&a), "-o", &s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("summary.json does not exist"), "{err}");
}
