//! One CLI: run.sh keeps the caller's working directory, missing default data names a working
//! source, and the Serket subcommands share gmvae's flag names, seed default and refusal to
//! overwrite.

use clap::Parser;
use gmvae::cli::{Cli, Command as Sub};
use gmvae::serket::cli::{Pipeline, PipelineArgs};
use std::path::Path;
use std::process::Command;

mod harness;

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
    // Eight points: one for each of the spiral preset's K = 8 components.
    let pts = "0.1,0.2\n0.3,0.4\n0.5,0.1\n0.2,0.9\n0.7,0.3\n0.6,0.8\n0.9,0.5\n0.4,0.6\n";
    std::fs::write(&csv, pts).unwrap();
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

/// The options `gmvae <args>` would train with (the table preset's flags applied too).
fn options_of(args: &[&str]) -> anyhow::Result<gmvae::options::Options> {
    let cli = Cli::try_parse_from(args)?;
    let (preset, train) = cli.command.training().unwrap();
    let table = match &cli.command {
        Sub::Table(t) => Some(&t.table),
        _ => None,
    };
    Ok((*train.resolve(preset, table)?).clone())
}

#[test]
fn adam_reset_defaults_to_the_presets_and_takes_0_or_1() {
    use gmvae::objective::{ObjectiveKind, ZPriorMode};
    let o = |args: &[&str]| options_of(args).unwrap();
    // The conv preset trains with upstream's recipe, the fc preset with its own.
    let conv = o(&["gmvae", "mnist", "--id", "t"]);
    assert!(conv.adam_reset);
    assert_eq!(
        (
            conv.learning_rate,
            conv.z_prior,
            conv.z_prior_weight,
            conv.pretrain_epochs
        ),
        (1e-4, ZPriorMode::Sample, 1.0, 0)
    );
    let fc = o(&["gmvae", "mnist_fc", "--id", "t"]);
    assert!(!fc.adam_reset);
    assert_eq!(
        (
            fc.objective,
            fc.lambda,
            fc.cv_weight,
            fc.x_size,
            fc.pretrain_epochs
        ),
        (ObjectiveKind::V2, 0.0, 5.0, 10, 20)
    );
    // The eleventh ablation's K = 10 recipe: the marginal z-prior and augmentation consistency.
    assert_eq!(
        (fc.z_prior, fc.augment_weight),
        (ZPriorMode::Marginal, 10.0)
    );
    // --upstream-recipe is upstream's preset too: its network and objective on mnist_fc.
    let up = o(&["gmvae", "mnist_fc", "--upstream-recipe"]);
    assert_eq!(
        (up.objective, up.cv_weight, up.x_size, up.pretrain_epochs),
        (ObjectiveKind::V1, 0.4, 200, 0)
    );
    assert!(up.adam_reset && up.learning_rate == 1e-4 && up.z_prior == ZPriorMode::Sample);
    assert_eq!(up.augment_weight, 0.0);
    // Flags given with it still override.
    assert_eq!(
        o(&["gmvae", "mnist_fc", "--upstream-recipe", "--x-size", "10"]).x_size,
        10
    );
    // A bare --adam-reset turns it on; 0 turns it off, also after --upstream-recipe.
    assert!(o(&["gmvae", "mnist_fc", "--id", "t", "--adam-reset"]).adam_reset);
    assert!(o(&["gmvae", "mnist_fc", "--adam-reset", "--id", "t"]).adam_reset);
    assert!(!o(&["gmvae", "mnist", "--id", "t", "--adam-reset", "0"]).adam_reset);
    let up = o(&[
        "gmvae",
        "mnist_fc",
        "--upstream-recipe",
        "--adam-reset",
        "0",
    ]);
    assert!(!up.adam_reset && up.z_prior == ZPriorMode::Sample);
    let e = options_of(&["gmvae", "mnist", "--adam-reset", "2"]).unwrap_err();
    assert!(
        format!("{e:#}").contains("--adam-reset") && format!("{e:#}").contains("expected 0 or 1"),
        "{e:#}"
    );
}

/// (long flag, the `[...]` note after its help) for every flag of `preset`'s rendered --help.
fn help_notes(preset: &str) -> Vec<(String, String)> {
    let mut cmd = gmvae::cli::command();
    let help = cmd
        .find_subcommand_mut(preset)
        .unwrap()
        .render_long_help()
        .to_string();
    let mut flag = String::new();
    let mut notes = Vec::new();
    for line in help.lines().map(str::trim) {
        if line.starts_with('-') {
            let long = line.split(", ").last().unwrap();
            flag = long.split_whitespace().next().unwrap().to_string();
        }
        for kind in ["[default: ", "[does nothing for this preset: "] {
            if let Some(rest) = line.split(kind).nth(1) {
                notes.push((flag.clone(), format!("{kind}{rest}")));
            }
        }
    }
    notes
}

#[test]
fn every_presets_help_shows_the_values_it_trains_with() {
    for preset in gmvae::cli::PRESETS {
        let base: Vec<&str> = match preset {
            "table" => vec!["gmvae", preset, "--id", "t", "--data", "t.csv"],
            _ => vec!["gmvae", preset, "--id", "t"],
        };
        let plain = options_of(&base).unwrap();
        let notes = help_notes(preset);
        let defaults: Vec<_> = notes
            .iter()
            .filter_map(|(f, n)| Some((f, n.strip_prefix("[default: ")?)))
            .collect();
        assert!(defaults.len() >= 20, "{preset}: {notes:?}");
        for (flag, note) in defaults {
            // A hand-written default may explain itself after the value ("auto = ...").
            let value = note.split([']', ' ']).next().unwrap();
            let mut args = base.clone();
            args.extend([flag.as_str(), value]);
            let o = options_of(&args).unwrap_or_else(|e| panic!("{preset} {flag} {value}: {e:#}"));
            assert_eq!(o, plain, "{preset}: {flag} shows [default: {value}]");
        }
    }
    // The shown values are the preset's, not main.lua's.
    let d = tempfile::tempdir().unwrap();
    let (ok, help, _) = run_in(d.path(), &["mnist_fc", "--help"]);
    assert!(ok);
    for shown in [
        "(-K) [default: 14]",
        "(-learningRate) [default: 0.0003]",
        "(-batchSize) [default: 50]",
        "(-hiddenSize) [default: 1000]",
        "(-cvWeight) [default: 5.0]",
        "(-xSize) [default: 10]",
    ] {
        assert!(help.contains(shown), "{shown} not in\n{help}");
    }
}

#[test]
fn help_names_the_flags_a_preset_ignores_and_training_refuses_them() {
    // A value each flag could take where it is read.
    let sample = |flag: &str| match flag {
        "--spiral-points" => Some("100"),
        "--data-dir" => Some("x"),
        "--n-filters" | "--n-channels" => Some("8"),
        "--input-dimension" => Some("1"),
        "--lambda" | "--z-prior-weight" | "--augment-weight" => Some("0.5"),
        "--z-prior" => Some("sample"),
        "--continuous" => Some("1"),
        "--svhn-extra" => None,
        other => panic!("{other}: give it a sample value in this test"),
    };
    let mut seen = 0;
    for preset in gmvae::cli::PRESETS {
        for (flag, note) in help_notes(preset) {
            let Some(why) = note.strip_prefix("[does nothing for this preset: ") else {
                continue;
            };
            let why = why.trim_end_matches(']');
            let mut args = vec!["gmvae", preset, "--id", "t", "--data", "t.csv", &flag];
            if preset != "table" && preset != "spiral" {
                args.drain(4..6);
            }
            args.extend(sample(&flag));
            let e = format!("{:#}", options_of(&args).unwrap_err());
            assert!(
                e.contains(&flag) && e.contains("does nothing") && e.contains(why),
                "{preset} {flag}: {e}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "{seen}");
}

#[test]
fn flags_that_do_nothing_are_refused_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("s.csv"), "0,0\n1,1\n").unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["mnist_fc", "--spiral-points", "100"],
            "--spiral-points",
            "spiral",
        ),
        (
            &["spiral", "--data", "s.csv", "--spiral-points", "100"],
            "--spiral-points",
            "--data gives",
        ),
        (&["mnist", "--svhn-extra"], "--svhn-extra", "extra_32x32"),
        (
            &["mnist_fc", "--n-filters", "8"],
            "--n-filters",
            "fc network",
        ),
        (
            &["spiral", "--n-channels", "3"],
            "--n-channels",
            "fc network",
        ),
        (
            &["mnist", "--n-channels", "3"],
            "--n-channels",
            "channels at 1",
        ),
        (&["spiral", "--data-dir", "x"], "--data-dir", "use --data"),
        (
            &["mnist_fc", "--objective", "v1", "--lambda", "0.5"],
            "--lambda",
            "v2",
        ),
        (
            &["mnist_fc", "--z-prior-weight", "2"],
            "--z-prior-weight",
            "--cv-weight",
        ),
        (
            &["spiral", "--augment-weight", "1"],
            "--augment-weight",
            "transforms images",
        ),
        (
            &["svhn", "--z-prior-weight", "2"],
            "--z-prior-weight",
            "--cv-weight",
        ),
        (
            &["table", "--data", "t.csv", "--augment-weight", "1"],
            "--augment-weight",
            "transforms images",
        ),
        (
            &["spiral", "--input-dimension", "2"],
            "--input-dimension",
            "flat input",
        ),
        (&["mnist", "--continuous", "1"], "--continuous", "Bernoulli"),
        (&["spiral", "--gpu-id", "1"], "--gpu-id", "add --gpu 1"),
    ];
    for (args, flag, why) in cases {
        let (ok, _, err) = run_in(d.path(), args);
        assert!(
            !ok && err.contains(flag) && err.contains(why) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // Flags that matter, and upstream's no-op switches run.sh passes, are still accepted.
    for args in [
        &["gmvae", "svhn", "--n-channels", "3", "--svhn-extra"][..],
        &[
            "gmvae",
            "mnist_fc",
            "--network",
            "conv",
            "--input-dimension",
            "2",
            "--n-filters",
            "8",
        ],
        &["gmvae", "svhn", "--lambda", "0.1"],
        &["gmvae", "mnist_fc", "--objective", "v2", "--lambda", "0.1"],
        // The K = 10 recipe of the eleventh ablation: v2 (the preset's) with the marginal
        // z-prior and the augmentation term.
        &[
            "gmvae",
            "mnist_fc",
            "--z-prior",
            "marginal",
            "--cv-weight",
            "5",
            "--augment-weight",
            "10",
        ],
        &["gmvae", "spiral", "--visualise2d", "1", "--save-model", "1"],
        &[
            "gmvae",
            "spiral",
            "--report-lower-bound",
            "1",
            "--acc",
            "1",
            "--continuous",
            "1",
        ],
        &["gmvae", "mnist", "--continuous", "0", "--n-channels", "1"],
        &["gmvae", "spiral", "--gpu", "1", "--gpu-id", "0"],
    ] {
        options_of(args).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
    }
}

#[test]
fn serket_prints_its_progress_to_stdout() {
    let d = tempfile::tempdir().unwrap();
    // 20 rows of 6 values in [0, 1], two kinds, and their labels.
    let rows: String = (0..20)
        .map(|i| {
            let on = if i % 2 == 0 {
                "0.9 0.8 0.9"
            } else {
                "0.1 0.2 0.1"
            };
            format!("{on} {on}\n")
        })
        .collect();
    std::fs::write(d.path().join("x.txt"), rows).unwrap();
    let labels: String = (0..20).map(|i| format!("{}\n", i % 2)).collect();
    std::fs::write(d.path().join("c.txt"), labels).unwrap();
    let (ok, out, err) = run_in(
        d.path(),
        &[
            "serket",
            "vae-gmm",
            "--data",
            "x.txt",
            "--category",
            "c.txt",
            "--epoch",
            "8",
            "--rounds",
            "2",
            "--batch-size",
            "10",
            "--latent",
            "2",
            "--k",
            "2",
            "--gmm-iters",
            "5",
            "--out-dir",
            "o",
        ],
    );
    assert!(ok, "{err}");
    // Not a terminal: a line per quarter of the VAE's epochs, one per round, one at the end.
    for line in [
        "vae round 0 epoch 2/8",
        "vae round 0 epoch 8/8",
        "vae round 1 epoch 8/8",
        "round 0: vae loss",
        "round 1: vae loss",
        "vae-gmm finished in",
    ] {
        assert!(out.contains(line), "{line:?} not on stdout:\n{out}");
    }
    // stderr holds warnings only (a GMM round with one class is one), never progress.
    let mut progress = err.lines().filter(|l| !l.starts_with("warning: "));
    assert!(!progress.any(|l| l.contains("round 0")), "{err}");
}

#[test]
fn serket_table_flags_refuse_bad_values() {
    let d = tempfile::tempdir().unwrap();
    // Measurements (not integers): `auto` standardizes them, so Bernoulli must be refused.
    std::fs::write(d.path().join("t.csv"), "a,b,y\n5.5,6,0\n7,8.25,1\n9,1,0\n").unwrap();
    std::fs::write(d.path().join("c.txt"), "0\n1\n0\n").unwrap();
    std::fs::write(d.path().join("fake.zip"), "").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--data", "t.csv", "--sigma", "0"], &["--sigma", "0"]),
        (
            &["--data", "t.csv", "--kl-weight=-1"],
            &["--kl-weight", "-1"],
        ),
        (
            &[
                "--data",
                "t.csv",
                "--label-column",
                "y",
                "--likelihood",
                "bernoulli",
            ],
            &["--likelihood bernoulli", "[0, 1]", "t.csv"],
        ),
        (
            &[
                "--data",
                "t.csv",
                "--label-column",
                "y",
                "--category",
                "c.txt",
            ],
            &["--category", "--label-column"],
        ),
        (&["--data", "t.csv", "--label-column", "z"], &["z", "t.csv"]),
        (
            &["--data", "fake.zip", "--scale", "minmax"],
            &["--scale", "zip"],
        ),
    ];
    for (i, (flags, want)) in cases.iter().enumerate() {
        let out = format!("o{i}");
        let mut args = vec!["serket", "vae-gmm", "--out-dir", &out];
        args.extend(flags.iter());
        let (ok, _, err) = run_in(d.path(), &args);
        assert!(
            !ok && want.iter().all(|w| err.contains(w)) && !err.contains("panicked"),
            "{flags:?}: {err}"
        );
    }
}

#[test]
fn training_piped_into_a_reader_that_stops_early_does_not_panic() {
    let d = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_gmvae"));
    c.args([
        "spiral",
        "--spiral-points",
        "400",
        "--epoch",
        "3",
        "--out-dir",
    ])
    .arg(d.path())
    .env("RAYON_NUM_THREADS", "1");
    harness::assert_quiet_when_stdout_closes(c);
}

#[test]
fn every_flag_is_a_row_of_the_option_table() {
    use gmvae::options::Opt;
    let mut cmd = gmvae::cli::command();
    let flags = Opt::flags();
    assert!(flags.len() >= 45, "{}", flags.len());
    for preset in gmvae::cli::PRESETS {
        let sub = cmd.find_subcommand_mut(preset).unwrap();
        let ids: Vec<String> = sub
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        for (opt, flag) in &flags {
            let arg = sub.get_arguments().find(|a| a.get_id() == opt.name());
            let long = arg.and_then(|a| a.get_long()).map(|l| format!("--{l}"));
            assert_eq!(long.as_deref(), Some(flag.long), "{preset}: {opt:?}");
        }
        // The others are the table preset's own rows (clap adds --help later).
        use gmvae::options::table::TableOpt;
        let others: Vec<_> = ids
            .iter()
            .filter(|id| Opt::from_name(id).is_none())
            .collect();
        let own: Vec<_> = match preset {
            "table" => TableOpt::flags().iter().map(|(o, _)| o.name()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(others, own, "{preset}");
    }
    // --help lists the flags in one order: no two rows share a place.
    let mut at: Vec<_> = flags.iter().map(|(_, f)| f.help_at).collect();
    at.dedup();
    assert_eq!(at.len(), flags.len());
}

#[test]
fn resume_names_the_flags_it_refuses_and_those_it_takes() {
    // The error of `gmvae spiral --resume /nonexistent/run <flags>`.
    let resume_error = |flags: &[&str]| {
        let mut args = vec!["gmvae", "spiral", "--resume", "/nonexistent/run"];
        args.extend_from_slice(flags);
        let cli = Cli::try_parse_from(args).unwrap();
        let (preset, train) = cli.command.training().unwrap();
        format!(
            "{:#}",
            train
                .resume_options(preset, Path::new("/nonexistent/run"), None)
                .unwrap_err()
        )
    };
    let e = resume_error(&["--epoch", "3", "--gpu", "0", "--k", "3", "--svhn-extra"]);
    assert!(
        e.contains("; --k, --svhn-extra cannot change them")
            && e.contains("(only --epoch, --gpu, --gpu-id and --threads may be given)"),
        "{e}"
    );
    // Without them it goes on to read the run (and fails there).
    let e = resume_error(&["--threads", "1", "--gpu-id", "0"]);
    assert!(
        e.contains("opts.json") && !e.contains("cannot change"),
        "{e}"
    );
}

#[test]
fn run_sh_translates_upstream_flags_from_the_binarys_table() {
    let table = gmvae::cli::upstream_flags();
    for pair in [
        "seed --seed",
        "learningRate --learning-rate",
        "K --k",
        "ACC --acc",
        "visualise2D --visualise2d",
        "gpuID --gpu-id",
        "_id --id",
    ] {
        assert!(table.lines().any(|l| l == pair), "{pair} not in\n{table}");
    }
    assert_eq!(table.lines().count(), 26, "{table}");
    let d = tempfile::tempdir().unwrap();
    let (ok, printed, _) = run_in(d.path(), &["upstream-flags"]);
    assert!(ok && printed == table, "{printed}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("run.sh");
    let run_sh = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .current_dir(d.path())
            .env("GMVAE_BIN", env!("CARGO_BIN_EXE_gmvae"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // -gpuID is 1-based: 2 reaches the binary as --gpu-id 1.
    let (code, err) = run_sh(&["spiral", "-gpuID", "2", "-epoch", "1"]);
    assert!(
        code == Some(1) && err.contains("--gpu-id 1 picks a CUDA device"),
        "{err}"
    );
    let (code, err) = run_sh(&["spiral", "-gpuID", "0"]);
    assert!(
        code == Some(2) && err.contains("-gpuID takes a device number >= 1"),
        "{err}"
    );
    let (code, err) = run_sh(&["spiral", "-learningrate", "1"]);
    assert!(
        code == Some(2) && err.contains("unknown upstream flag '-learningrate'"),
        "{err}"
    );
    let (code, err) = run_sh(&["spiral", "-dataSet", "mnist"]);
    assert!(
        code == Some(2) && err.contains("does not match preset"),
        "{err}"
    );
    // A translated flag the preset ignores is refused by the binary, naming gmvae's spelling.
    let (code, err) = run_sh(&["mnist_fc", "-nFilters", "8"]);
    assert!(
        code == Some(1) && err.contains("--n-filters does nothing"),
        "{err}"
    );
}
