//! One process per run directory: an exclusive OS lock on `<run>/.lock` (flock on Unix, held by
//! the open file, so it dies with the process and a killed run can be resumed at once), plus
//! the checks that keep a run inside its own fresh subdirectory and the `opts.json` it records.

use anyhow::{bail, Context, Result};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a run directory.
pub const FILE: &str = ".lock";

/// The lock on a run directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    dir: PathBuf,
    /// This process created the directory: remove it again if nothing was written into it.
    created: bool,
    /// This process created the lock file (in a directory that may have existed).
    lock_created: bool,
    /// The run has recorded itself (`started`): from then on the lock file stays. Output
    /// folders (Serket's) count as started.
    started: bool,
}

impl RunLock {
    /// Locks `dir`, creating it when `create` (a fresh run). Fails at once, naming the
    /// directory, when another process holds the lock.
    pub fn acquire(dir: &Path, create: bool) -> Result<Self> {
        Self::lock(dir, create, true)
    }

    /// Locks an output folder that holds something else than a training run (the Serket
    /// pipelines' `--out`), creating it if needed.
    pub fn acquire_output(dir: &Path) -> Result<Self> {
        Self::lock(dir, true, false)
    }

    fn lock(dir: &Path, create: bool, training_run: bool) -> Result<Self> {
        let created = create && !dir.exists();
        if create {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        } else if !dir.is_dir() {
            bail!("{} is not a run directory", dir.display());
        }
        if training_run && create && !created {
            check_run_files(dir)?;
        }
        let path = dir.join(FILE);
        let lock_created = !path.exists();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the run lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "{} is in use by another gmvae process (it holds {}); wait for it to finish, or \
                 choose another {}",
                dir.display(),
                path.display(),
                if training_run { "--id" } else { "--out" }
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let lock = Self {
            _file: file,
            dir: dir.to_path_buf(),
            created,
            lock_created,
            started: !training_run,
        };

        // Nothing else writes into a locked run directory, so its temporary files are leftovers
        // of a killed write.
        let removed = crate::atomic::remove_stale(dir, training_run)?;
        if removed > 0 {
            println!(
                "removed {removed} temporary file(s) left in {} by a killed run",
                dir.display()
            );
        }
        Ok(lock)
    }
}

impl RunLock {
    /// The run has written its record (opts.json): a later failure leaves the directory, lock
    /// file included, for `--resume`.
    pub fn started(&mut self) {
        self.started = true;
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // A fresh run that failed before writing anything leaves no directory behind.
        let only_lock = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().all(|e| e.file_name() == FILE))
            .unwrap_or(false);
        if self.created && only_lock {
            let _ = std::fs::remove_file(self.dir.join(FILE));
            let _ = std::fs::remove_dir(&self.dir);
        } else if self.lock_created && !self.started {
            // A start that failed in a directory that was already there leaves it as it was.
            let _ = std::fs::remove_file(self.dir.join(FILE));
        }
    }
}

/// A fresh run may reuse an existing directory only when it holds nothing but a run's own files
/// (a run killed in its first epoch, or one whose pictures were drawn): never a folder of
/// something else, which the run would litter or overwrite.
fn check_run_files(dir: &Path) -> Result<()> {
    const OWN: [&str; 11] = [
        FILE,
        // `--n-init`'s restarts and their record (`restarts::DIR`, `restarts::FILE`).
        "restarts",
        "restarts.json",
        "done.json",
        "model.safetensors",
        "config.json",
        "opts.json",
        "metrics.csv",
        "latent.safetensors",
        "checkpoint.safetensors",
        "samples.png",
    ];
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let own = OWN.contains(&name.as_ref())
            || name.ends_with(".png")
            || (name.starts_with('.') && name.ends_with(".tmp"));
        if !own {
            bail!(
                "{} already exists and is not a gmvae run directory (it holds `{name}`); choose \
                 another --id or --out-dir",
                dir.display()
            );
        }
    }
    Ok(())
}

/// A resumed run needs a checkpoint: a run killed during its first epoch has none yet.
pub fn check_has_checkpoint(dir: &Path, ckpt: &Path) -> Result<()> {
    if !ckpt.exists() {
        bail!(
            "{} has no checkpoint yet (the run stopped before finishing its first epoch), so there \
             is nothing to resume; start it again from scratch with the same command without \
             --resume (and with --id {}), which reuses the directory",
            dir.display(),
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(())
}

/// The checkpoint's epoch `done` must lie within the run's `total` epochs.
pub fn check_done(ckpt: &Path, done: usize, total: usize) -> Result<()> {
    if done > total {
        bail!(
            "{} was written after epoch {done}, beyond the run's {total} epochs (opts.json edited?)",
            ckpt.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_at_once_and_drop_releases() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("run");
        let a = RunLock::acquire(&dir, true).unwrap();
        let e = RunLock::acquire(&dir, true).unwrap_err().to_string();
        assert!(e.contains("in use by another gmvae process"), "{e}");
        drop(a);
        // Nothing was written: the directory is gone again.
        assert!(!dir.exists());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x"), b"1").unwrap();
        let b = RunLock::acquire(&dir, false).unwrap();
        drop(b);
        assert!(dir.join("x").exists());
    }
}
