//! Atomic file writes: write a sibling temp file, flush it to disk, rename over the target. A
//! reader (or a resumed run) sees either the old file or the new one, never half of one.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| {
        w.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// Writes a string atomically.
pub fn write_str(path: &Path, s: &str) -> Result<()> {
    write(path, s.as_bytes())
}

/// Streams a file into `path` atomically: `fill` writes a sibling temp file, which replaces
/// `path` only when `fill` succeeds (a failed run leaves no half-written output).
pub fn write_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<T>,
) -> Result<T> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .context("atomic write needs a file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let f = std::fs::File::create(&tmp)
        .with_context(|| format!("cannot create temporary file {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let done = fill(&mut w).and_then(|v| {
        let f = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", tmp.display(), e.error()))?;
        f.sync_all()
            .with_context(|| format!("cannot flush {}", tmp.display()))?;
        Ok(v)
    });
    match done {
        Ok(v) => match std::fs::rename(&tmp, path) {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                let why = if path.is_dir() {
                    "it is a directory".to_string()
                } else {
                    e.to_string()
                };
                Err(anyhow::anyhow!(
                    "cannot write {}: {why} (nothing was written)",
                    path.display()
                ))
            }
        },
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Files the trainer writes into a run directory; their temporaries are stale whenever the run
/// lock is held by the caller.
const RUN_FILES: [&str; 8] = [
    "checkpoint.safetensors",
    "config.json",
    "done.json",
    "model.safetensors",
    "latent.safetensors",
    "metrics.csv",
    "opts.json",
    "samples.png",
];

/// The (target name, writer pid) of a temporary file name `.NAME.PID.tmp`.
fn temp_parts(file_name: &str) -> Option<(&str, u32)> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, pid) = inner.rsplit_once('.')?;
    Some((name, pid.parse().ok()?))
}

/// Whether process `pid` is alive; `None` where this cannot be told (no `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    Path::new("/proc/self")
        .exists()
        .then(|| Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes temporary files `.NAME.PID.tmp` that a killed writer left in `dir`: those whose
/// process is gone, and, when the caller holds the run lock (`run_locked`), those of the
/// trainer's own files whatever their pid (no one else may be writing them). Returns how many.
pub fn remove_stale(dir: &Path, run_locked: bool) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, pid)) = file_name.to_str().and_then(temp_parts) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let ours = run_locked && RUN_FILES.contains(&name);
        if ours || process_alive(pid) == Some(false) {
            let path = entry.path();
            std::fs::remove_file(&path).with_context(|| {
                format!("cannot remove stale temporary file {}", path.display())
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rename_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file.
        let target = d.path().join("out.csv");
        std::fs::create_dir_all(target.join("x")).unwrap();
        let e = write(&target, b"1,2\n").unwrap_err().to_string();
        assert!(e.contains("out.csv") && e.contains("directory"), "{e}");
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn stale_temporaries_are_removed_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let own = std::process::id();
        // pid 0 never names a user process; u32::MAX - 1 is above any pid limit.
        let dead = u32::MAX - 1;
        for name in [
            format!(".checkpoint.safetensors.{own}.tmp"),
            format!(".metrics.csv.{dead}.tmp"),
            format!(".latent.png.{dead}.tmp"),
            format!(".latent.png.{own}.tmp"),
            "keep.tmp".to_string(),
            "metrics.csv".to_string(),
        ] {
            std::fs::write(p.join(name), b"x").unwrap();
        }
        write(&p.join("opts.json"), b"{}").unwrap();
        let n = remove_stale(p, true).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let expect_removed = if process_alive(1).is_some() { 2 } else { 1 };
        assert_eq!(n, expect_removed, "{left:?}");
        assert!(left.contains(&format!(".checkpoint.safetensors.{own}.tmp")));
        assert!(left.contains(&"keep.tmp".to_string()));
        assert!(!left.contains(&format!(".metrics.csv.{dead}.tmp")));
    }
}
