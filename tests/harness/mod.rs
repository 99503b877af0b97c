//! The bad-input harness shared by `tests/bad_inputs.rs` and `plot/tests/bad_inputs.rs`: runs
//! each case's binary under a timeout and classifies the outcome.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A case still running after this long is a hang (every case takes well under a second).
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub type Check = Box<dyn Fn() -> Result<(), String>>;

pub enum Expect {
    /// A clear error whose `error:` line contains every fragment.
    Error(Vec<String>),
    /// Success.
    Accept,
}

pub struct Case {
    pub name: String,
    pub bin: &'static str,
    pub args: Vec<OsString>,
    pub expect: Expect,
    /// Extra condition on the files afterwards (no run directory left, options unchanged...).
    pub after: Option<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    ClearError,
    Accepted,
    Panic,
    Hang,
    WrongSuccess,
    Unclear,
    Refused,
}

pub fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

pub fn err(name: &str, bin: &'static str, args: Vec<OsString>, mentions: &[&str]) -> Case {
    Case {
        name: name.into(),
        bin,
        args,
        expect: Expect::Error(mentions.iter().map(|s| s.to_string()).collect()),
        after: None,
    }
}

pub fn ok(name: &str, bin: &'static str, args: Vec<OsString>) -> Case {
    Case {
        name: name.into(),
        bin,
        args,
        expect: Expect::Accept,
        after: None,
    }
}

impl Case {
    pub fn then(mut self, check: impl Fn() -> Result<(), String> + 'static) -> Self {
        self.after = Some(Box::new(check));
        self
    }
}

/// Runs one case in `cwd`; returns the outcome and a one-line detail.
pub fn run_case(case: &Case, cwd: &Path, logs: &Path) -> (Outcome, String) {
    let out_path = logs.join("stdout");
    let err_path = logs.join("stderr");
    let mut child = Command::new(case.bin)
        .args(&case.args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > TIMEOUT {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    let Some(status) = status else {
        return (Outcome::Hang, format!("still running after {TIMEOUT:?}"));
    };
    let first_err = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
        .to_string();
    if stderr.contains("panicked") || stderr.contains("stack backtrace") || status.code().is_none()
    {
        return (Outcome::Panic, format!("{status}: {}", stderr.trim()));
    }
    let after = case.after.as_ref().map(|c| c()).unwrap_or(Ok(()));
    match (&case.expect, status.success()) {
        (Expect::Error(_), true) => (Outcome::WrongSuccess, "exit 0".into()),
        (Expect::Accept, true) => match after {
            Ok(()) => (Outcome::Accepted, String::new()),
            Err(e) => (Outcome::WrongSuccess, e),
        },
        (Expect::Accept, false) => (Outcome::Refused, stderr.trim().to_string()),
        (Expect::Error(mentions), false) => {
            let n_err = stderr.lines().filter(|l| l.starts_with("error:")).count();
            let missing: Vec<&String> = mentions
                .iter()
                .filter(|m| !first_err.contains(m.as_str()))
                .collect();
            if n_err != 1 || !missing.is_empty() {
                (
                    Outcome::Unclear,
                    format!(
                        "{n_err} error lines, missing {missing:?}: {}",
                        stderr.trim()
                    ),
                )
            } else if let Err(e) = after {
                (Outcome::WrongSuccess, format!("{e} ({first_err})"))
            } else {
                (Outcome::ClearError, first_err)
            }
        }
    }
}

/// Runs every case and prints the table; panics on any failure class.
pub fn run_suite(cases: Vec<Case>, cwd: &Path) {
    let logs = tempfile::tempdir().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let (outcome, detail) = run_case(case, cwd, logs.path());
        *counts.entry(outcome).or_insert(0) += 1;
        println!("{outcome:?}\t{}\t{detail}", case.name);
        if !matches!(outcome, Outcome::ClearError | Outcome::Accepted) {
            failures.push(format!("{}: {outcome:?}: {detail}", case.name));
        }
    }
    println!("\n{} cases:", cases.len());
    for (o, n) in &counts {
        println!("  {o:?}: {n}");
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

/// The shared data directory; this tier is `#[ignore]`d by default and, once asked for with
/// `--ignored`, fails loudly rather than passing silently when the data are not there.
pub fn shared_data() -> std::path::PathBuf {
    let root =
        std::path::PathBuf::from(std::env::var_os("GMVAE_SHARED_DATA").expect(
            "the real-data tier needs GMVAE_SHARED_DATA=<path to shared/data> (CI sets it)",
        ));
    assert!(
        root.is_dir(),
        "GMVAE_SHARED_DATA={} is not a directory",
        root.display()
    );
    root
}

/// Runs `cmd` with its stdout closed unread (as `| head -0` would) and checks that it ends as
/// other Unix tools do: killed by SIGPIPE, or normally if it finished writing first, and
/// silently (no panic on the broken pipe).
pub fn assert_quiet_when_stdout_closes(mut cmd: Command) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    // SIGPIPE is 13 on Linux and macOS (a literal: the plot crate's tests have no libc).
    #[cfg(unix)]
    let piped = std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(13);
    #[cfg(not(unix))]
    let piped = false;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || piped, "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
