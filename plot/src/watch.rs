//! Draw once, or (`--watch`) redraw whenever the run's files change, like upstream's plot
//! scripts that re-read their inputs in a loop while training runs.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The flags every plot binary shares.
#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    /// Keep running and redraw whenever the run directory's dumps change.
    #[arg(long)]
    pub watch: bool,
    /// How often --watch checks the files, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub interval_ms: u64,
}

/// What identifies a version of an input file: its modification time and length (the trainer
/// replaces files by rename, so either changes on every rewrite).
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(inputs: &[PathBuf]) -> Stamp {
    inputs
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Runs `draw` once (errors propagate), or with `--watch` forever: it draws whenever `inputs`
/// change, and on a failure (a file missing or half-written) prints a note and tries again when
/// the inputs next change — not every tick, so a permanent error waits quietly for new input.
pub fn run(
    args: &WatchArgs,
    inputs: &[PathBuf],
    out: &Path,
    mut draw: impl FnMut() -> Result<()>,
) -> Result<()> {
    if !args.watch {
        draw()?;
        println!("wrote {}", out.display());
        return Ok(());
    }
    let mut drawn: Option<Stamp> = None;
    let mut failed: Option<Stamp> = None;
    loop {
        let now = stamp(inputs);
        if drawn.as_ref() != Some(&now) && failed.as_ref() != Some(&now) {
            match draw() {
                Ok(()) => {
                    println!("wrote {}", out.display());
                    drawn = Some(now);
                    failed = None;
                }
                Err(e) => {
                    eprintln!("waiting: {e:#} (trying again when the inputs change)");
                    failed = Some(now);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms.max(10)));
    }
}
