//! How the command talks to people: progress bars and log lines on stderr, one-line errors.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A mistake in how the command was called that clap cannot see (mismatched pairs of options):
/// reported like clap's own usage errors, with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Progress and messages for one run; everything goes to stderr so stdout holds only results.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
}

impl Ui {
    /// A UI that is silent (apart from errors) when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Ui { quiet }
    }

    /// A log line on stderr (not when quiet).
    pub fn say(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A progress bar of `len` steps (hidden when quiet or when stderr is not a terminal).
    pub fn bar(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise} (eta {eta})")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message.into());
        bar
    }

    /// Shows a training run's progress on `bar` (batches of the current epoch) and, when an epoch
    /// ends, a line with its losses and validation Dice above the bar. `msd train` and `msd demo`
    /// report training the same way.
    pub fn training_progress(&self, bar: &ProgressBar, p: &msd::net::TrainProgress) {
        bar.set_length(p.batches as u64);
        bar.set_position(p.batch as u64);
        bar.set_message(format!("epoch {}/{}", p.epoch, p.epochs));
        if let Some(e) = &p.epoch_done {
            bar.suspend(|| {
                self.say(format!(
                    "epoch {:>3}  train loss {:.4}  validation loss {}  validation Dice {}  {:.1} s",
                    e.epoch,
                    e.train_loss,
                    e.validation_loss.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
                    e.validation_dice.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
                    e.seconds
                ))
            });
        }
    }

    /// A spinner for work of unknown length.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// The error and its causes on one line: `what failed: because: because` ([`msd::error_chain`]).
pub fn error_chain(err: &anyhow::Error) -> String {
    msd::error_chain(err.as_ref())
}
