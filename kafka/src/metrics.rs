//! Counters of the endpoint, read by the console and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the endpoint has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections open now.
    pub connections: Gauge,
    /// Connections accepted.
    pub connections_total: Counter,
    /// Connections refused at accept (over `max_connections`).
    pub connections_refused: Counter,
    /// Failed authentications.
    pub auth_failures: Counter,
    /// Requests read.
    pub requests: Counter,
    /// Records served by Fetch.
    pub fetch_records: Counter,
    /// Record-batch bytes served by Fetch.
    pub fetch_bytes: Counter,
    /// Accepted offset commits.
    pub commits: Counter,
    /// Connections closed for an error (malformed or refused request, timeout, I/O).
    pub errors: Counter,
    /// Full record batches served from the batch log (not encoded again).
    pub batch_log_hits: Counter,
    /// Batches of the batch log that failed their check (header, CRC-32C, read error) and were
    /// encoded again from the store.
    pub batch_log_damaged: Counter,
}
