//! Log lines a peer can make the server repeat: written at most once per interval, with
//! the number of times the event happened since the last line, so that a flood costs
//! one line a second instead of one per event.
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One rate-limited log line (one per kind of event, shared by every loop).
pub(crate) struct RateLimitedLog {
    interval: Duration,
    /// When the last line was written, and events since then.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub const fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Records one event; calls `emit` with the count of events the line stands for
    /// (this one included) when a line is due.
    pub fn hit(&self, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        let count = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.1 += 1;
            match st.0 {
                Some(last) if now.duration_since(last) < self.interval => return,
                _ => {}
            }
            st.0 = Some(now);
            std::mem::take(&mut st.1)
        };
        emit(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let log = RateLimitedLog::new(Duration::from_millis(200));
        let mut lines = Vec::new();
        for _ in 0..1000 {
            log.hit(|n| lines.push(n));
        }
        assert_eq!(lines, [1]);
        std::thread::sleep(Duration::from_millis(250));
        log.hit(|n| lines.push(n));
        assert_eq!(lines, [1, 1000]);
    }
}
