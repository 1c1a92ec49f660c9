//! Log lines a peer can make the server repeat (a flood of bad requests, of connections
//! beyond a limit, of handler panics): at most a few per second, each saying how many
//! events it stands for, so that a flood costs a few lines a second instead of one per
//! event.
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One rate-limited kind of log line, shared by every thread (usually a `static`).
pub(crate) struct RateLimitedLog {
    /// Lines allowed per second.
    burst: u32,
    state: Mutex<Window>,
}

struct Window {
    /// The current one-second window began here.
    start: Option<Instant>,
    /// Lines written in it.
    lines: u32,
    /// Events not logged since the last line.
    suppressed: u64,
}

impl RateLimitedLog {
    /// At most `burst` lines a second.
    pub const fn new(burst: u32) -> Self {
        RateLimitedLog {
            burst,
            state: Mutex::new(Window {
                start: None,
                lines: 0,
                suppressed: 0,
            }),
        }
    }

    /// Records one event; when a line is due, calls `emit` with the number of events
    /// suppressed since the last line (format it with [`and_more`]).
    pub fn hit(&self, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        let count = {
            let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if w.start
                .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
            {
                w.start = Some(now);
                w.lines = 0;
            }
            if w.lines >= self.burst {
                w.suppressed += 1;
                return;
            }
            w.lines += 1;
            std::mem::take(&mut w.suppressed)
        };
        emit(count);
    }
}

/// `""`, or ` (and N more since the last such line)` for a rate-limited line.
pub(crate) fn and_more(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" (and {suppressed} more since the last such line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_second_then_one_line_with_the_count() {
        let log = RateLimitedLog::new(3);
        let mut lines = Vec::new();
        for _ in 0..1000 {
            log.hit(|n| lines.push(n));
        }
        assert_eq!(lines, [0, 0, 0]);
        std::thread::sleep(Duration::from_millis(1050));
        log.hit(|n| lines.push(n));
        assert_eq!(lines, [0, 0, 0, 997]);
        assert_eq!(and_more(0), "");
        assert_eq!(and_more(997), " (and 997 more since the last such line)");
    }
}
