//! What a caller of training can plug in besides the options: rows held in memory instead of a
//! file, where the run's messages go, and a check for an interrupt. The CLI uses the defaults
//! (its `--data` file, stdout with a progress bar, no check); the Python binding uses all three
//! (a numpy array, Python's `sys.stdout` or silence, Ctrl-C).

use anyhow::Result;

/// Where a run's messages go (the header, one line per epoch, what loading and pretraining
/// settled).
#[derive(Clone, Copy, Default)]
pub enum Log<'a> {
    /// Lines to stdout, and progress within an epoch on stderr (a bar on a terminal).
    #[default]
    Stdout,
    /// Lines to the caller's function, and no progress within an epoch.
    To(&'a (dyn Fn(&str) + Sync)),
}

impl Log<'_> {
    /// One line of the run's log.
    pub fn line(&self, line: impl AsRef<str>) {
        match self {
            Log::Stdout => println!("{}", line.as_ref()),
            Log::To(f) => f(line.as_ref()),
        }
    }

    /// Whether progress within an epoch is shown (bar or plain lines on stderr).
    pub fn progress(&self) -> bool {
        matches!(self, Log::Stdout)
    }
}

/// The N x D training rows y, row-major, held by the caller (a numpy array in the Python
/// binding) instead of the table preset's `--data` file.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    /// How messages name the rows (`X` in Python).
    pub name: &'a str,
    pub y: &'a [f32],
    /// D, values per row.
    pub d: usize,
}

/// The error training returns when [`Hooks::interrupt`] asked it to stop: the run directory
/// keeps the last finished epoch's checkpoint, as after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "training interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// What the caller plugs in (see the module's doc). `Hooks::default()` is the CLI's.
#[derive(Clone, Copy, Default)]
pub struct Hooks<'a> {
    /// The table preset's rows, in place of `--data`.
    pub rows: Option<Rows<'a>>,
    pub log: Log<'a>,
    /// Asked before every step (training and pretraining): `true` stops the run with
    /// [`Interrupted`].
    pub interrupt: Option<&'a (dyn Fn() -> bool + Sync)>,
    /// What the data loader says (rows read, scaling, constant columns) was said already: the
    /// restarts of `--n-init` say it once, before they start, instead of once each.
    pub data_said: bool,
}

impl Hooks<'_> {
    /// Errs with [`Interrupted`] when the caller asks training to stop.
    pub fn check_interrupt(&self) -> Result<()> {
        match self.interrupt {
            Some(f) if f() => Err(Interrupted.into()),
            _ => Ok(()),
        }
    }
}
