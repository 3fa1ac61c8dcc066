//! SASL/PLAIN: the token's parts, and the bound on password hashing.
//!
//! The username is `<group username>-<group id>` (the DTS convention); usernames have no `-`,
//! so the split is at the first one. Verifying a password costs an Argon2id hash (tens of
//! milliseconds and about 19 MiB); [`AuthPool`] runs only a few at once, so a flood of wrong
//! passwords queues (and times out) instead of using up the machine.

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

/// A password check for the pool.
struct Check {
    group_id: String,
    user: String,
    password: String,
    reply: crossbeam_channel::Sender<changetrack::Result<changetrack::Login>>,
}

/// The threads that check passwords: at most that many Argon2id hashes run at once (their CPU
/// and memory are bounded), and the hash's 19 MiB scratch stays in those threads' allocator
/// arenas instead of one per connection thread.
pub struct AuthPool {
    tx: Option<crossbeam_channel::Sender<Check>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl AuthPool {
    /// `n` checking threads for the store in `dir`; at most `4 n` checks wait.
    #[must_use]
    pub fn new(dir: &std::path::Path, n: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Check>(4 * n.max(1));
        let threads = (0..n.max(1))
            .filter_map(|_| {
                let rx = rx.clone();
                let dir = dir.to_path_buf();
                std::thread::Builder::new()
                    .name("changetrack-kafka-auth".into())
                    .spawn(move || {
                        for c in rx {
                            let r = changetrack::Groups::open(&dir)
                                .and_then(|g| g.login(&c.group_id, &c.user, &c.password));
                            let _ = c.reply.send(r);
                        }
                    })
                    .ok()
            })
            .collect();
        Self {
            tx: Some(tx),
            threads,
        }
    }

    /// Checks credentials, waiting at most until `deadline`; `None` when the pool is too
    /// busy (the connection is refused like a wrong password).
    pub fn login(
        &self,
        t: &PlainToken<'_>,
        deadline: Instant,
    ) -> Option<changetrack::Result<changetrack::Login>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let check = Check {
            group_id: t.group_id.to_owned(),
            user: t.user.to_owned(),
            password: t.password.to_owned(),
            reply,
        };
        self.tx.as_ref()?.send_deadline(check, deadline).ok()?;
        answer.recv_deadline(deadline).ok()
    }
}

impl Drop for AuthPool {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
