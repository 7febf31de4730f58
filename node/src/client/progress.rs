//! Progress bars for transfers: bytes, rate and ETA on stderr, only for people (a terminal, not
//! `--quiet`) and only when the transfer is big enough to watch.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Smaller transfers finish before a bar would tell anything.
pub const THRESHOLD_BYTES: u64 = 1 << 20;

/// A bar for `total` bytes (unknown: a spinner with bytes and rate), hidden when nobody watches.
pub fn bar(what: &str, total: Option<u64>, quiet: bool) -> ProgressBar {
    let watched = !quiet && std::io::stderr().is_terminal();
    let big = total.is_none_or(|t| t >= THRESHOLD_BYTES);
    if !watched || !big {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    bar
}
