//! Progress of the Serket pipelines on stdout: a bar over a module's epochs on a terminal, and a
//! few plain lines (each quarter of the epochs) when stdout is a file or a pipe.

use std::io::IsTerminal;
use std::time::Instant;

/// Progress over the `epochs` of one module update.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    epochs: usize,
    started: Instant,
}

impl Progress {
    /// `label` names the update, e.g. `vae round 0`.
    pub fn new(label: String, epochs: usize) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(epochs as u64),
                indicatif::ProgressDrawTarget::stdout(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] epoch {pos}/{len} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.clone());
            b
        });
        Self {
            bar,
            label,
            epochs,
            started: Instant::now(),
        }
    }

    /// Epoch `done` (1-based) ended with mean loss `loss`.
    pub fn epoch(&self, done: usize, loss: f64) {
        match &self.bar {
            Some(b) => {
                b.set_position(done as u64);
                b.set_message(format!("loss {loss:.3}"));
            }
            None if done.is_multiple_of((self.epochs / 4).max(1)) || done == self.epochs => {
                println!(
                    "{} epoch {done}/{} loss {loss:.3} ({:.1}s)",
                    self.label,
                    self.epochs,
                    self.started.elapsed().as_secs_f64()
                )
            }
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
