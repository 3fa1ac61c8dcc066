//! SASL/PLAIN: the token's parts, and the bound on password hashing.
//!
//! The username is `<group username>-<group id>` (the DTS convention); usernames have no `-`,
//! so the split is at the first one. Verifying a password costs an Argon2id hash (tens of
//! milliseconds and about 19 MiB); [`HashLimiter`] lets only a few run at once, so a flood of
//! wrong passwords queues (and times out) instead of using up the machine.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// The parts of a PLAIN token (RFC 4616): `[authzid] NUL authcid NUL passwd`.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainToken<'a> {
    /// The group's username.
    pub user: &'a str,
    /// The group id.
    pub group_id: &'a str,
    /// The password.
    pub password: &'a str,
}

/// Parses a PLAIN token. The authorization id must be empty or equal to the authentication id
/// (kafka-python sends it); the authentication id must be `user-groupid`.
#[must_use]
pub fn parse_plain(token: &[u8]) -> Option<PlainToken<'_>> {
    let s = std::str::from_utf8(token).ok()?;
    let mut parts = s.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    if !authzid.is_empty() && authzid != authcid {
        return None;
    }
    let (user, group_id) = authcid.split_once('-')?;
    if user.is_empty() || group_id.is_empty() {
        return None;
    }
    Some(PlainToken {
        user,
        group_id,
        password,
    })
}

/// A counting semaphore for password checks.
pub struct HashLimiter {
    free: Mutex<usize>,
    cond: Condvar,
}

/// A permit; the slot is free again when it is dropped.
pub struct HashPermit<'a>(&'a HashLimiter);

impl Drop for HashPermit<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.0.free.lock() {
            *f += 1;
        }
        self.0.cond.notify_one();
    }
}

impl HashLimiter {
    /// A limiter with `n` slots.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            cond: Condvar::new(),
        }
    }

    /// Waits for a slot until `deadline`; `None` when it passed.
    pub fn acquire(&self, deadline: Instant) -> Option<HashPermit<'_>> {
        let mut free = self.free.lock().ok()?;
        loop {
            if *free > 0 {
                *free -= 1;
                return Some(HashPermit(self));
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            free = self.cond.wait_timeout(free, deadline - now).ok()?.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn plain_tokens() {
        let t = parse_plain(b"\0alice-ctg-abc\0secret").unwrap();
        assert_eq!(
            t,
            PlainToken {
                user: "alice",
                group_id: "ctg-abc",
                password: "secret"
            }
        );
        // kafka-python sends the username as the authorization id too.
        assert!(parse_plain(b"alice-g\0alice-g\0pw").is_some());
        for bad in [
            &b"other\0alice-g\0pw"[..],
            b"\0alice-g\0",
            b"\0\0pw",
            b"\0alice\0pw",
            b"\0-g\0pw",
            b"\0alice-\0pw",
            b"\0alice-g\0pw\0extra",
            b"alice-g",
            b"\0alice-g\0\xff",
        ] {
            assert!(parse_plain(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_limiter_bounds_concurrent_holders() {
        let l = HashLimiter::new(2);
        let far = Instant::now() + Duration::from_secs(5);
        let a = l.acquire(far).unwrap();
        let _b = l.acquire(far).unwrap();
        assert!(l
            .acquire(Instant::now() + Duration::from_millis(20))
            .is_none());
        drop(a);
        assert!(l.acquire(far).is_some());
    }
}
