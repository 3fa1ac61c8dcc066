//! A child process that is killed (and reaped) when dropped, so that a failing test leaves no
//! server, ingester or consumer running behind it.

use std::process::Child;

/// A child process, killed when dropped; derefs to [`Child`].
pub struct Proc(pub Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
