//! The PyTorch peer (`experiments/perf/peer.py`): runs it for one preset and reads the JSON line
//! it prints last.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// The peer's medians for one preset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeerStep {
    pub torch: String,
    pub preset: String,
    pub threads: usize,
    pub batch: usize,
    pub params: usize,
    pub ms_step: f64,
    /// Median CPU time of a step, all threads (`time.process_time`).
    #[serde(default)]
    pub cpu_ms_step: Option<f64>,
    pub ms_forward: f64,
    pub ms_backward: f64,
    pub ms_optimizer: f64,
    pub peak_rss_mib: f64,
    /// With `--check`: the largest relative difference between the peer's objective terms and
    /// ours on the same weights, data and noise.
    #[serde(default)]
    pub check_max_rel_err: Option<f64>,
}

/// The result in the peer's stdout: its last line that starts with `{`.
pub fn parse_output(stdout: &str) -> Result<PeerStep> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .context("the peer printed no JSON result line")?;
    let step: PeerStep = serde_json::from_str(line)
        .with_context(|| format!("the peer's result line is not the expected JSON: {line}"))?;
    let times = [
        step.ms_step,
        step.ms_forward,
        step.ms_backward,
        step.ms_optimizer,
    ];
    if times.iter().any(|t| !(t.is_finite() && *t >= 0.0)) {
        bail!("the peer reported a time that is not a finite number >= 0: {line}");
    }
    Ok(step)
}

/// What to ask the peer.
pub struct PeerRequest<'a> {
    pub python: &'a str,
    pub script: &'a Path,
    pub preset: &'a str,
    pub threads: usize,
    pub steps: usize,
    pub warmup: usize,
    pub batch: usize,
    pub cuda: bool,
    /// Our weights, data, noise and term values (see `experiments/perf/peer.py --check`).
    pub check: Option<&'a Path>,
}

/// Runs `python args...`; a missing interpreter or torch gets an error that says what to install.
fn python(python: &str, args: &[&std::ffi::OsStr]) -> Result<std::process::Output> {
    let out = match Command::new(python).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--peer needs `{python}` (Python 3 with torch), which was not found; install Python 3 \
             and torch (experiments/perf/README.md) or pass --python"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot run `{python}`")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'torch'") {
            bail!(
                "--peer needs PyTorch, but `{python}` cannot import torch: install it (see \
                 experiments/perf/README.md)"
            );
        }
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        bail!(
            "`{python} {}` failed ({}): {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            out.status,
            last.unwrap_or("no error output")
        );
    }
    Ok(out)
}

/// Checks, before anything is measured, that the peer can run: the script exists and the
/// interpreter imports torch.
pub fn preflight(python_cmd: &str, script: &Path) -> Result<()> {
    if !script.is_file() {
        bail!(
            "--peer-script {}: no such file (run bench from the repository root, or pass the \
             path of experiments/perf/peer.py)",
            script.display()
        );
    }
    python(python_cmd, &["-c".as_ref(), "import torch".as_ref()]).map(|_| ())
}

/// Runs the peer and checks that it measured what was asked.
pub fn run(req: &PeerRequest) -> Result<PeerStep> {
    let (threads, steps, warmup, batch) = (
        req.threads.to_string(),
        req.steps.to_string(),
        req.warmup.to_string(),
        req.batch.to_string(),
    );
    let mut args: Vec<&std::ffi::OsStr> = vec![
        req.script.as_os_str(),
        req.preset.as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
        "--steps".as_ref(),
        steps.as_ref(),
        "--warmup".as_ref(),
        warmup.as_ref(),
        "--batch".as_ref(),
        batch.as_ref(),
        "--device".as_ref(),
        if req.cuda { "cuda" } else { "cpu" }.as_ref(),
    ];
    if let Some(check) = req.check {
        args.extend(["--check".as_ref(), check.as_os_str()]);
    }
    let out = python(req.python, &args)?;
    let step = parse_output(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("{} {}", req.script.display(), req.preset))?;
    if step.preset != req.preset || step.threads != req.threads || step.batch != req.batch {
        bail!(
            "the peer measured {} with {} threads and batch {}, but {} with {} threads and batch {} \
             was asked",
            step.preset,
            step.threads,
            step.batch,
            req.preset,
            req.threads,
            req.batch
        );
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"peer": "pytorch", "torch": "2.15.0", "preset": "spiral", "threads": 1, "batch": 200, "steps": 20, "warmup": 3, "params": 26752, "ms_step": 8.3, "ms_forward": 2.5, "ms_backward": 3.1, "ms_optimizer": 2.4, "peak_rss_mib": 611.7}"#;

    #[test]
    fn parses_the_last_json_line() {
        let stdout = format!("a warning\n{{\"not\": \"this\"}}\n{LINE}\n\n");
        let s = parse_output(&stdout).unwrap();
        assert_eq!((s.preset.as_str(), s.threads, s.batch), ("spiral", 1, 200));
        assert_eq!((s.params, s.ms_step, s.ms_optimizer), (26_752, 8.3, 2.4));
        assert_eq!(s.check_max_rel_err, None);
        let checked = LINE.replace("}", ", \"check_max_rel_err\": 2e-7}");
        assert_eq!(
            parse_output(&checked).unwrap().check_max_rel_err,
            Some(2e-7)
        );
    }

    #[test]
    fn rejects_missing_or_bad_lines() {
        assert!(parse_output("no json here\n").is_err());
        let e = parse_output("{\"preset\": \"spiral\"}").unwrap_err();
        assert!(format!("{e:#}").contains("not the expected JSON"), "{e:#}");
        let negative = LINE.replace("\"ms_step\": 8.3", "\"ms_step\": -1");
        assert!(parse_output(&negative).is_err());
    }
}
