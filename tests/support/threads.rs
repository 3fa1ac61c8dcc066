//! Threads in tests.
//!
//! - [`StopOnDrop`] raises an ingestion stop flag when dropped. Made inside a
//!   `std::thread::scope` closure, it stops the ingestion started in that scope when the test
//!   panics there, so the scope's join finishes and the failure is reported instead of hanging
//!   the test.
//! - [`threads_named`] counts this process's threads by name.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use changetrack::ingest::StopFlag;

/// Raises its flag on drop.
pub struct StopOnDrop(pub StopFlag);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Threads of this process whose name starts with `prefix` (Linux `comm`, at most 15 bytes).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim_end().starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether no such thread is left within 2 s (a joined thread may stay listed for a moment).
pub fn no_threads_named(prefix: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while threads_named(prefix) != 0 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}
