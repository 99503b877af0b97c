//! `accuracy_table`: runs of one recipe are grouped (mean ± std over seeds), and runs whose
//! sizes, batch, objective, optimiser, z-prior or start (`--pretrain-epochs`, `--init-from`)
//! differ from their preset's get their own row.

use gmvae::objective::ObjectiveKind;
use gmvae::options::Options;
use std::process::Command;

mod harness;

const HEADER: &str = "epoch,lower_bound,rec,cond_prior,w_prior,z_prior,cv,train_acc,test_acc,\
test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds,clusters_used,mean_max_q";

/// A run directory with `opts.json` and a `metrics.csv` of `epochs` rows ending at `acc`.
fn run_dir(
    root: &std::path::Path,
    id: &str,
    epochs: usize,
    acc: f64,
    tweak: impl Fn(&mut Options),
) {
    let mut o = Options::preset("mnist_fc").unwrap();
    (o.k, o.id) = (16, id.to_string());
    tweak(&mut o);
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(Options::FILE), serde_json::to_string(&o).unwrap()).unwrap();
    let mut csv = format!("{HEADER}\n");
    for e in 1..=epochs {
        let a = acc * e as f64 / epochs as f64;
        csv += &format!("{e},-100,80,15,3,2,0.2,{a},{a},{a},{a},0.6,0.4,100,16,0.9\n");
    }
    std::fs::write(dir.join("metrics.csv"), csv).unwrap();
}

fn table(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_accuracy_table"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn groups_by_recipe_and_separates_other_sizes_and_objectives() {
    let d = tempfile::tempdir().unwrap();
    run_dir(d.path(), "a-s1", 4, 0.7, |o| o.seed = 1);
    run_dir(d.path(), "a-s2", 3, 0.6, |o| o.seed = 2);
    run_dir(d.path(), "x200", 5, 0.75, |o| o.x_size = 200);
    run_dir(d.path(), "b200", 2, 0.5, |o| o.batch_size = 200);
    run_dir(d.path(), "v1", 2, 0.2, |o| o.objective = ObjectiveKind::V1);
    run_dir(d.path(), "a04", 2, 0.3, |o| o.cv_weight = 0.4);
    run_dir(d.path(), "pt", 2, 0.8, |o| o.pretrain_epochs = 5);
    run_dir(d.path(), "rs", 2, 0.9, |o| o.pretrain_epochs = 0);
    run_dir(d.path(), "n3", 2, 0.95, |o| o.n_init = 3);
    run_dir(d.path(), "n5", 2, 0.96, |o| {
        o.n_init = 5;
        o.restart_choice = gmvae::options::RestartChoice::Agreement;
    });
    run_dir(d.path(), "up", 2, 0.55, |o| {
        *o = Options {
            id: o.id.clone(),
            k: o.k,
            ..Options::upstream("mnist_fc").unwrap()
        }
    });
    run_dir(d.path(), "old", 2, 0.45, |o| {
        (o.cv_weight, o.augment_weight) = (1.0, 0.0);
        o.z_prior = gmvae::objective::ZPriorMode::Sample;
    });
    run_dir(d.path(), "b3", 2, 0.4, |o| o.augment_weight = 3.0);
    run_dir(d.path(), "ft", 2, 0.85, |o| {
        o.pretrain_epochs = 0;
        o.init_from = Some(gmvae::options::InitFrom {
            run: "runs/a-s1".into(),
            epoch: 4,
        });
    });
    // Restarts chosen early whose kept restart (1) still trains: its records are the run's.
    run_dir(d.path(), "early", 0, 0.0, |o| {
        o.n_init = 3;
        o.restart_choice = gmvae::options::RestartChoice::Confidence;
        o.restart_epochs = 5;
    });
    std::fs::remove_file(d.path().join("early/metrics.csv")).unwrap();
    run_dir(&d.path().join("early/restarts"), "1", 2, 0.97, |_| {});
    let restart = |r: usize| {
        serde_json::json!({"restart": r, "seed": r, "dir": format!("restarts/{r}"),
                           "epochs": 5, "lower_bound": -100.0, "confidence": 0.9})
    };
    let record = serde_json::json!({"n_init": 3, "seed": 1, "criterion": "confidence",
        "kept": 1, "screen_epochs": 5, "restarts": [restart(0), restart(1), restart(2)]});
    std::fs::write(d.path().join("early/restarts.json"), record.to_string()).unwrap();
    // A run in its first epoch: options written, no metrics yet.
    run_dir(d.path(), "young", 0, 0.0, |_| {});
    std::fs::remove_file(d.path().join("young/metrics.csv")).unwrap();
    let t = table(&[d.path().to_str().unwrap()]);
    assert!(t.contains("Started, no epoch finished yet: young."), "{t}");
    let row = |start: &str| {
        t.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row `{start}` in\n{t}"))
            .to_string()
    };
    // Two seeds of the preset's recipe: mean 65 ± 7.07 (sample std), best 70, epochs per seed.
    assert!(
        row("| fc, lr 3e-4 | 16 | 1 |").contains("| 2 (0) | 4+ 3+ | 65.00 ± 7.07 | 70.00 |"),
        "{t}"
    );
    assert!(row("| fc, lr 3e-4, Dx 200 Dw 150 | 16 | 1 |").contains("75.00 ± 0.00"));
    assert!(row("| fc, lr 3e-4, batch 200 | 16 | 1 |").contains("50.00"));
    assert!(row("| fc, lr 3e-4, v1 | 16 | 1 |").contains("20.00"));
    assert!(row("| fc, lr 3e-4, alpha 0.4 | 16 | 1 |").contains("30.00"));
    assert!(row("| fc, lr 3e-4, pretrained 5 | 16 | 1 |").contains("80.00"));
    assert!(row("| fc, lr 3e-4, random start | 16 | 1 |").contains("90.00"));
    // The kept restart of --n-init 3 is not one seed's start: its own row.
    assert!(row("| fc, lr 3e-4, best bound of 3 restarts | 16 | 1 |").contains("95.00"));
    assert!(row("| fc, lr 3e-4, best agreement of 5 restarts | 16 | 1 |").contains("96.00"));
    assert!(
        row("| fc, lr 3e-4, most confident of 3 restarts after 5 epochs | 16 | 1 |")
            .contains("97.00"),
        "{t}"
    );
    // Upstream's preset and recipe on mnist_fc: its lr, objective, alpha, Dx, optimiser,
    // z-prior, augmentation and start all differ.
    assert!(row(
        "| fc, lr 1e-4, v1, alpha 0.4, Dx 200 Dw 150, Adam reset, per-point z-prior eta 1, \
         no augmentation, random start | 16 | 1 |"
    )
    .contains("55.00"));
    // The recipe before session 17 (v2's per-point z-prior, alpha 1, no augmentation), and the
    // augmentation weight alone: rows of their own, not the preset's.
    assert!(
        row("| fc, lr 3e-4, alpha 1, per-point z-prior, no augmentation | 16 | 1 |")
            .contains("45.00"),
        "{t}"
    );
    assert!(row("| fc, lr 3e-4, augmentation B 3 | 16 | 1 |").contains("40.00"));
    // A run started from another run's weights is its own row, whatever its pretraining.
    assert!(row("| fc, lr 3e-4, from a-s1 epoch 4 | 16 | 1 |").contains("85.00"));
    // The ablation view: one row per run, at a common epoch when asked.
    let t = table(&["--per-run", "--at-epoch", "2", d.path().to_str().unwrap()]);
    let x200 = t.lines().find(|l| l.starts_with("| x200 |")).unwrap();
    assert!(
        x200.contains("| 200 / 150 | 50 |")
            && x200.contains("| mixture, 20 AE epochs | 2 | 30.00 |"),
        "{x200}"
    );
    let pt = t.lines().find(|l| l.starts_with("| pt |")).unwrap();
    assert!(pt.contains("| mixture, 5 AE epochs | 2 | 80.00 |"), "{pt}");
    let ft = t.lines().find(|l| l.starts_with("| ft |")).unwrap();
    assert!(ft.contains("| from a-s1 epoch 4 | 2 | 85.00 |"), "{ft}");
    let rs = t.lines().find(|l| l.starts_with("| rs |")).unwrap();
    assert!(rs.contains("| random | 2 | 90.00 |"), "{rs}");
}

#[test]
fn curves_list_every_epoch_with_the_best_and_the_finish() {
    let d = tempfile::tempdir().unwrap();
    run_dir(d.path(), "a-s1", 4, 0.7, |o| o.seed = 1);
    // Seed 2 peaks before its last epoch, disagrees by majority vote, and has finished.
    run_dir(d.path(), "a-s2", 0, 0.0, |o| o.seed = 2);
    let rows = [(0.5, 0.5), (0.8, 0.81), (0.6, 0.75)];
    let mut csv = format!("{HEADER}\n");
    for (e, (aae, mv)) in rows.iter().enumerate() {
        csv += &format!(
            "{},-100,80,15,3,2,0.2,{aae},{aae},{aae},{mv},0.6,0.4,100,16,0.9\n",
            e + 1
        );
    }
    std::fs::write(d.path().join("a-s2/metrics.csv"), csv).unwrap();
    std::fs::write(
        d.path().join("a-s2/done.json"),
        r#"{"epochs": 3, "reason": "plateau"}"#,
    )
    .unwrap();
    let t = table(&["--curves", d.path().to_str().unwrap()]);
    assert!(
        t.contains("| 2 (1) | 4+ 3p | 65.00 ± 7.07 | 70.00 |"),
        "{t}"
    );
    let s1 = "- fc, lr 3e-4, K 16, M 1, seed 1 (`a-s1`): 0.1750, 0.3500, 0.5250, 0.7000; \
              best 0.7000 (epoch 4); epoch 4 by majority vote 0.7000; not finished";
    let s2 = "- fc, lr 3e-4, K 16, M 1, seed 2 (`a-s2`): 0.5000, 0.8000, 0.6000; \
              best 0.8000 (epoch 2); epoch 3 by majority vote 0.7500; finished (plateau)";
    assert!(t.contains(&format!("{s1}\n{s2}\n")), "{t}");
    // Without the flag, no curves.
    assert!(!table(&[d.path().to_str().unwrap()]).contains("Per-epoch"));
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let d = tempfile::tempdir().unwrap();
    for s in 0..200 {
        run_dir(d.path(), &format!("r{s:03}"), 1, 0.5, |o| o.seed = s);
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_accuracy_table"));
    c.args(["--per-run", d.path().to_str().unwrap()]);
    harness::assert_quiet_when_stdout_closes(c);
}
