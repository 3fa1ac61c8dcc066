//! A guard that raises an ingestion stop flag when dropped. Made inside a `std::thread::scope`
//! closure, it stops the ingestion started in that scope when the test panics there, so the
//! scope's join finishes and the failure is reported instead of hanging the test.

use changetrack::ingest::StopFlag;

/// Raises its flag on drop.
pub struct StopOnDrop(pub StopFlag);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
