//! One active consumer per group, standbys that take over, commits, and wake-ups.
//!
//! **Who is active.** The `lease` file names the active consumer (a random token) with an epoch
//! that grows at every takeover and the time of its last renewal. A consumer becomes active
//! when the lease is free: released, expired (not renewed for `session_timeout`: the holder's
//! process hangs or its machine died), or held by a consumer whose process is gone. The last
//! case is seen at once: the active consumer also holds an `flock` on `active.lock`, which the
//! kernel releases when its process dies, so a standby that can take that lock knows the holder
//! is gone. Each consumer renews its lease from a background thread.
//!
//! **Fencing.** A commit happens under `lease.lock` and only if the lease still carries the
//! consumer's epoch and token. A consumer that was paused past its timeout and replaced finds
//! out at its next commit or read (`Busy`), and can never move the group's position.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::files::{read_small, FileLock};
use super::{now_millis, read_commit, write_commit, Committed, Groups, Login};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{ChangeRecord, Checkpoint};
use crate::store::{ReadFrom, Store};

const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Where a consumer starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// Right after the group's committed position (the oldest record if it never committed).
    #[default]
    Committed,
    /// The first record at or after this time (epoch seconds).
    Timestamp(u32),
    /// The first record at or after this checkpoint.
    Checkpoint(Checkpoint),
    /// This sequence number.
    Seq(u64),
    /// The oldest stored record.
    Earliest,
    /// The next record to be stored (nothing already stored).
    Latest,
}

/// What a commit names: everything up to and including it has been consumed.
#[derive(Clone, Copy, Debug)]
pub enum CommitAt<'a> {
    /// A record this consumer received.
    Record(&'a ChangeRecord),
    /// A sequence number.
    Seq(u64),
    /// A checkpoint: every record at or before it.
    Checkpoint(Checkpoint),
}

impl<'a> From<&'a ChangeRecord> for CommitAt<'a> {
    fn from(r: &'a ChangeRecord) -> Self {
        Self::Record(r)
    }
}

/// Options of [`Consumer::open`].
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Where to start. Default: [`StartAt::Committed`].
    pub start: StartAt,
    /// Wait as a standby while another consumer of the group is active (`true`, the default),
    /// or fail at once with `Busy`.
    pub wait: bool,
    /// Give up waiting as a standby after this long (`Busy`). Default: wait for ever.
    pub wait_timeout: Option<Duration>,
    /// An active consumer whose lease is not renewed for this long is replaced (its process
    /// hangs or is gone; a process that dies is noticed at once anyway). Default: 10 s.
    /// Minimum: 100 ms.
    pub session_timeout: Duration,
    /// How often a standby looks whether it can take over. Default: 20 ms.
    pub standby_poll: Duration,
    /// Records read from the store at a time. Default: 512. Range: 1 to 65 536.
    pub read_batch: usize,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            start: StartAt::Committed,
            wait: true,
            wait_timeout: None,
            session_timeout: Duration::from_secs(10),
            standby_poll: Duration::from_millis(20),
            read_batch: 512,
        }
    }
}

impl ConsumerOptions {
    fn validate(&self) -> Result<()> {
        if self.session_timeout < Duration::from_millis(100) {
            return Err(Error::invalid("session_timeout is at least 100 ms"));
        }
        if self.standby_poll.is_zero() || self.standby_poll > self.session_timeout {
            return Err(Error::invalid(
                "standby_poll is more than 0 and at most session_timeout",
            ));
        }
        if !(1..=65_536).contains(&self.read_batch) {
            return Err(Error::invalid("read_batch is 1 to 65536"));
        }
        Ok(())
    }
}

// The lease file: "CTL1", epoch u64, holder token u128 (0: released), renewed (epoch ms) u64,
// holds_flock u8, pid u32, crc32 of the preceding bytes; all little-endian.
const LEASE_MAGIC: &[u8; 4] = b"CTL1";
const LEASE_LEN: usize = 4 + 8 + 16 + 8 + 1 + 4 + 4;

#[derive(Clone, Copy, Debug, Default)]
struct Lease {
    epoch: u64,
    holder: u128,
    renewed_ms: u64,
    holds_flock: bool,
    pid: u32,
}

fn read_lease(gdir: &Path) -> Result<Option<Lease>> {
    let path = gdir.join("lease");
    let Some(b) = read_small(&path, 4096)? else {
        return Ok(None);
    };
    let bad = || Error::corruption(format!("{} is damaged", path.display()));
    if b.len() != LEASE_LEN || &b[..4] != LEASE_MAGIC {
        return Err(bad());
    }
    let crc = u32::from_le_bytes(b[LEASE_LEN - 4..].try_into().map_err(|_| bad())?);
    if crc32fast::hash(&b[..LEASE_LEN - 4]) != crc {
        return Err(bad());
    }
    Ok(Some(Lease {
        epoch: u64::from_le_bytes(b[4..12].try_into().map_err(|_| bad())?),
        holder: u128::from_le_bytes(b[12..28].try_into().map_err(|_| bad())?),
        renewed_ms: u64::from_le_bytes(b[28..36].try_into().map_err(|_| bad())?),
        holds_flock: b[36] != 0,
        pid: u32::from_le_bytes(b[37..41].try_into().map_err(|_| bad())?),
    }))
}

/// Reads a group's lease file (`Corruption` when it is damaged).
pub(crate) fn read_lease_file(gdir: &Path) -> Result<()> {
    read_lease(gdir).map(|_| ())
}

/// Writes the lease (atomically; not synced: after a machine crash every holder is gone, and
/// an old or missing lease is simply free or expired).
fn write_lease(gdir: &Path, l: &Lease) -> Result<()> {
    let mut b = Vec::with_capacity(LEASE_LEN);
    b.extend_from_slice(LEASE_MAGIC);
    b.extend_from_slice(&l.epoch.to_le_bytes());
    b.extend_from_slice(&l.holder.to_le_bytes());
    b.extend_from_slice(&l.renewed_ms.to_le_bytes());
    b.push(u8::from(l.holds_flock));
    b.extend_from_slice(&l.pid.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let path = gdir.join("lease");
    let tmp = gdir.join(format!("lease.tmp{}", std::process::id()));
    std::fs::write(&tmp, &b)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("cannot write {}", path.display()), e)
        })
}

/// State shared with the renewal thread.
struct LeaseState {
    gdir: PathBuf,
    token: u128,
    epoch: u64,
    lost: AtomicBool,
    active_lock: Mutex<Option<FileLock>>,
}

impl LeaseState {
    /// Whether the lease is still ours (under `lease.lock`).
    fn check(&self, lease: Option<&Lease>) -> bool {
        lease.is_some_and(|l| l.epoch == self.epoch && l.holder == self.token)
    }

    fn renew(&self) -> Result<()> {
        let _l = FileLock::acquire(&self.gdir.join("lease.lock"), LOCK_WAIT)?;
        let cur = read_lease(&self.gdir)?;
        if !self.check(cur.as_ref()) {
            self.lost.store(true, Ordering::SeqCst);
            return Ok(());
        }
        let mut held = self.active_lock.lock().map_err(|_| poisoned())?;
        if held.is_none() {
            *held = FileLock::try_acquire(&self.gdir.join("active.lock"))?;
        }
        write_lease(
            &self.gdir,
            &Lease {
                epoch: self.epoch,
                holder: self.token,
                renewed_ms: now_millis(),
                holds_flock: held.is_some(),
                pid: std::process::id(),
            },
        )
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Internal, "a consumer lock was poisoned")
}

fn lost_error(id: &str) -> Error {
    Error::new(
        ErrorKind::Busy,
        format!("this consumer is no longer the active one of group {id}: a standby took over"),
    )
}

/// The active consumer of a group: reads the store from its position, commits, and keeps its
/// lease. Dropping it releases the group to a standby at once.
pub struct Consumer {
    store: Store,
    id: String,
    lease: Arc<LeaseState>,
    stop: Option<Sender<()>>,
    renewer: Option<JoinHandle<()>>,
    next_seq: u64,
    buf: VecDeque<ChangeRecord>,
    committed: Option<Committed>,
    /// Wakes when records are committed (the writer's commits in its process; the store's
    /// follower watcher elsewhere, see [`Store::subscribe`]).
    waker: Receiver<()>,
    read_batch: usize,
    /// A read-ahead scan while the consumer is far behind (see [`Store::scan_ahead`]).
    scan: Option<crate::store::Scan>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.id)
            .field("next_seq", &self.next_seq)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Authenticates, waits until this consumer is the group's active one (or fails with
    /// `Busy`, see [`ConsumerOptions::wait`]), and positions it at `opts.start`.
    ///
    /// # Errors
    /// `Unauthorized`; `Busy`; `OutOfRange` (stating the range) when the start position is no
    /// longer stored; `InvalidArgument`; `Io`.
    pub fn open(
        store: &Store,
        group_id: &str,
        username: &str,
        password: &str,
        opts: &ConsumerOptions,
    ) -> Result<Self> {
        opts.validate()?;
        let login = Groups::open(store.path())?.login(group_id, username, password)?;
        Self::open_login(store, &login, opts)
    }

    /// As [`Consumer::open`], for a group whose credentials were checked by
    /// [`Groups::login`].
    ///
    /// # Errors
    /// As [`Consumer::open`], without `Unauthorized`; `NotFound` when the group was deleted.
    pub fn open_login(store: &Store, login: &Login, opts: &ConsumerOptions) -> Result<Self> {
        opts.validate()?;
        let group_id = login.group().id.as_str();
        let groups = Groups::open(store.path())?;
        let gdir = groups.group_dir(group_id)?;
        let waker = store.subscribe();
        let lease = acquire(&gdir, group_id, opts)?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let renewer = {
            let lease = Arc::clone(&lease);
            let every = (opts.session_timeout / 4).min(Duration::from_secs(1));
            std::thread::Builder::new()
                .name("changetrack-lease".into())
                .spawn(move || loop {
                    match stop_rx.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(e) = lease.renew() {
                                tracing::warn!("cannot renew the group lease: {e}");
                            }
                            if lease.lost.load(Ordering::SeqCst) {
                                return;
                            }
                        }
                        _ => return,
                    }
                })
                .map_err(|e| Error::io("cannot start the lease thread", e))?
        };
        let mut c = Self {
            store: store.clone(),
            id: group_id.to_owned(),
            lease,
            stop: Some(stop_tx),
            renewer: Some(renewer),
            next_seq: 1,
            buf: VecDeque::new(),
            committed: read_commit(&gdir)?,
            waker,
            read_batch: opts.read_batch,
            scan: None,
        };
        c.catch_up()?;
        c.seek(opts.start)?;
        tracing::info!(group = %group_id, epoch = c.lease.epoch, next_seq = c.next_seq, "consumer active");
        Ok(c)
    }

    /// The group id.
    #[must_use]
    pub fn group_id(&self) -> &str {
        &self.id
    }

    /// The sequence number of the next record [`Consumer::next`] returns.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.buf.front().map_or(self.next_seq, |r| r.seq)
    }

    /// The group's committed position as this consumer last wrote or read it.
    #[must_use]
    pub fn committed(&self) -> Option<Committed> {
        self.committed
    }

    /// Moves the read position (the committed position is unchanged).
    ///
    /// # Errors
    /// `OutOfRange` (stating the range) for a position no longer or not yet stored.
    pub fn seek(&mut self, at: StartAt) -> Result<()> {
        self.buf.clear();
        self.scan = None;
        self.next_seq = match at {
            StartAt::Committed => match self.committed {
                Some(c) => self.store.resolve(ReadFrom::Seq(c.seq + 1))?,
                None => self.store.resolve(ReadFrom::Earliest)?,
            },
            StartAt::Latest => self.store.last_seq() + 1,
            StartAt::Earliest => self.store.resolve(ReadFrom::Earliest)?,
            StartAt::Seq(s) => self.store.resolve(ReadFrom::Seq(s))?,
            StartAt::Timestamp(t) => self.store.resolve(ReadFrom::Timestamp(t))?,
            StartAt::Checkpoint(c) => self.store.resolve(ReadFrom::Checkpoint(c))?,
        };
        Ok(())
    }

    fn ensure_active(&self) -> Result<()> {
        if self.lease.lost.load(Ordering::SeqCst) {
            return Err(lost_error(&self.id));
        }
        Ok(())
    }

    /// Catches a read-only store up with its writer when the writer committed more.
    fn catch_up(&self) -> Result<()> {
        if !self.store.is_writer() {
            if let Some(w) = self.store.writer_last_seq()? {
                if w > self.store.last_seq() {
                    self.store.refresh()?;
                }
            }
        }
        Ok(())
    }

    /// Reads the next batch from the store into the buffer; whether it got any.
    fn fill(&mut self) -> Result<bool> {
        self.catch_up()?;
        if self.next_seq > self.store.last_seq() {
            return Ok(false);
        }
        // Far behind (a new group, or back after downtime): one long read-ahead scan instead
        // of a seek per batch, until it reaches what was committed when it started.
        if self.scan.is_none() {
            self.scan = self.store.scan_ahead(self.next_seq);
        }
        if let Some(scan) = self.scan.as_mut() {
            while self.buf.len() < self.read_batch {
                match scan.next() {
                    Some(Ok(r)) => {
                        self.next_seq = r.seq + 1;
                        self.buf.push_back(r);
                    }
                    Some(Err(e)) => {
                        self.scan = None;
                        return Err(e);
                    }
                    None => {
                        self.scan = None;
                        break;
                    }
                }
            }
            if !self.buf.is_empty() {
                return Ok(true);
            }
        }
        let it = self.store.iter(ReadFrom::Seq(self.next_seq))?;
        for r in it.take(self.read_batch) {
            let r = r?;
            self.next_seq = r.seq + 1;
            self.buf.push_back(r);
        }
        Ok(!self.buf.is_empty())
    }

    /// The next record, waiting as long as it takes.
    ///
    /// # Errors
    /// `Busy` when a standby took over; `OutOfRange` when retention removed the position;
    /// store errors.
    // Not `Iterator::next`: it blocks and never ends, and its errors are not the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<ChangeRecord> {
        loop {
            if let Some(r) = self.poll(Duration::from_secs(3600))? {
                return Ok(r);
            }
        }
    }

    /// The next record, or `None` when none arrives within `timeout`. Wakes as soon as a record
    /// is committed (at once within the writer's process; within about a millisecond from
    /// another process).
    ///
    /// # Errors
    /// As [`Consumer::next`].
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<ChangeRecord>> {
        self.ensure_active()?;
        if let Some(r) = self.buf.pop_front() {
            return Ok(Some(r));
        }
        let deadline = Instant::now() + timeout;
        loop {
            // Drain a pending token first, so a commit after this check leaves a new one.
            let _ = self.waker.try_recv();
            if self.fill()? {
                return Ok(self.buf.pop_front());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let left = deadline - now;
            let _ = self
                .waker
                .recv_timeout(left.min(Duration::from_millis(250)));
            self.ensure_active()?;
        }
    }

    fn resolve_commit(&self, at: CommitAt<'_>) -> Result<Committed> {
        let from_seq = |seq: u64| -> Result<Committed> {
            let r = self.store.get(seq)?;
            Ok(Committed {
                seq,
                checkpoint: r.checkpoint,
                timestamp: r.timestamp,
            })
        };
        match at {
            CommitAt::Record(r) => {
                if r.seq == 0 {
                    return Err(Error::invalid(
                        "this record was not read from the store (it has no seq)",
                    ));
                }
                Ok(Committed {
                    seq: r.seq,
                    checkpoint: r.checkpoint,
                    timestamp: r.timestamp,
                })
            }
            CommitAt::Seq(s) => from_seq(s),
            CommitAt::Checkpoint(cp) => {
                // The last record at or before `cp`: one before the first one after it.
                let after = Checkpoint::new(cp.file_index, cp.offset.saturating_add(1));
                let first_after = match self.store.resolve(ReadFrom::Checkpoint(after)) {
                    Ok(s) => s,
                    Err(e) if e.kind() == ErrorKind::OutOfRange => {
                        let newest = self.store.get(self.store.last_seq())?;
                        if after > newest.checkpoint {
                            self.store.last_seq() + 1
                        } else {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                };
                if first_after <= 1 {
                    return Err(Error::new(
                        ErrorKind::OutOfRange,
                        format!("no stored record is at or before checkpoint {cp}"),
                    ));
                }
                from_seq(first_after - 1)
            }
        }
    }

    /// Commits: the group has consumed everything up to and including `at`. Durable when it
    /// returns. Commits only move forward (an equal one is a no-op); see [`Consumer::reset`].
    ///
    /// # Errors
    /// `InvalidArgument` for a position before the committed one; `Busy` when a standby took
    /// over; `NotFound` when the group was deleted; `OutOfRange`; `Io`.
    pub fn commit<'a>(&mut self, at: impl Into<CommitAt<'a>>) -> Result<()> {
        let c = self.resolve_commit(at.into())?;
        self.write_commit(c, false, &[])
    }

    /// Kafka's commit: the group's next record is `next_seq`, forwards or backwards, and
    /// `metadata` is kept verbatim with the position ([`Groups::committed_with_metadata`]).
    /// `next_seq` may be anything from the oldest stored record to one past the newest. The
    /// read position does not move. Durable when it returns.
    ///
    /// # Errors
    /// `OutOfRange` (stating the range) for a position outside the stored data;
    /// `LimitExceeded` for metadata over [`super::MAX_COMMIT_METADATA`] bytes; `Busy` when a
    /// standby took over; `NotFound` when the group was deleted; `Io`.
    pub fn commit_next(&mut self, next_seq: u64, metadata: &[u8]) -> Result<()> {
        if metadata.len() > super::MAX_COMMIT_METADATA {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "commit metadata is at most {} bytes",
                    super::MAX_COMMIT_METADATA
                ),
            ));
        }
        let last = self.store.last_seq();
        let oldest = self.store.oldest_seq()?.unwrap_or(last + 1);
        if next_seq < oldest || next_seq > last + 1 {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "offset {next_seq} is outside the stored data (offsets {oldest} to {})",
                    last + 1
                ),
            ));
        }
        let seq = next_seq - 1;
        let c = if seq >= oldest && seq >= 1 {
            self.resolve_commit(CommitAt::Seq(seq))?
        } else {
            // Nothing before `next_seq` is stored (any more): commit "nothing yet".
            Committed {
                seq,
                checkpoint: Checkpoint::default(),
                timestamp: 0,
            }
        };
        self.write_commit(c, true, metadata)
    }

    /// Sets the committed position to just before `at`, backwards or forwards, and moves the
    /// read position there.
    ///
    /// # Errors
    /// As [`Consumer::commit`].
    pub fn reset(&mut self, at: StartAt) -> Result<()> {
        self.seek(at)?;
        let seq = self.next_seq.saturating_sub(1);
        let c = if seq == 0 {
            Committed {
                seq: 0,
                checkpoint: Checkpoint::default(),
                timestamp: 0,
            }
        } else {
            self.resolve_commit(CommitAt::Seq(seq))
                .or_else(|_| -> Result<Committed> {
                    // The record before the oldest stored one is gone: commit "nothing yet".
                    Ok(Committed {
                        seq,
                        checkpoint: Checkpoint::default(),
                        timestamp: 0,
                    })
                })?
        };
        self.write_commit(c, true, &[])
    }

    fn write_commit(&mut self, c: Committed, reset: bool, metadata: &[u8]) -> Result<()> {
        self.ensure_active()?;
        let gdir = &self.lease.gdir;
        let _l = FileLock::acquire(&gdir.join("lease.lock"), LOCK_WAIT)?;
        if !self.lease.check(read_lease(gdir)?.as_ref()) {
            self.lease.lost.store(true, Ordering::SeqCst);
            return Err(lost_error(&self.id));
        }
        if !gdir.join("group.json").exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("group {} was deleted", self.id),
            ));
        }
        let current = read_commit(gdir)?;
        if !reset {
            if let Some(cur) = current {
                if c.seq == cur.seq {
                    self.committed = Some(cur);
                    return Ok(());
                }
                if c.seq < cur.seq {
                    return Err(Error::invalid(format!(
                        "commit of seq {} is before the committed seq {}; use reset to go back",
                        c.seq, cur.seq
                    )));
                }
            }
        }
        write_commit(gdir, &c, self.lease.epoch, metadata)?;
        self.committed = Some(c);
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        // Release the lease so that a standby takes over at once.
        let gdir = &self.lease.gdir;
        if let Ok(_l) = FileLock::acquire(&gdir.join("lease.lock"), LOCK_WAIT) {
            if let Ok(cur) = read_lease(gdir) {
                if self.lease.check(cur.as_ref()) {
                    let _ = write_lease(
                        gdir,
                        &Lease {
                            epoch: self.lease.epoch,
                            holder: 0,
                            renewed_ms: now_millis(),
                            holds_flock: false,
                            pid: 0,
                        },
                    );
                }
            }
        }
        if let Ok(mut l) = self.lease.active_lock.lock() {
            l.take();
        }
    }
}

/// Becomes the group's active consumer, or waits (or fails) while another one is.
fn acquire(gdir: &Path, id: &str, opts: &ConsumerOptions) -> Result<Arc<LeaseState>> {
    let mut token_bytes = [0u8; 16];
    getrandom::fill(&mut token_bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("no random bytes: {e}")))?;
    let token = u128::from_le_bytes(token_bytes).max(1);
    let started = Instant::now();
    let timeout_ms = u64::try_from(opts.session_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut announced = false;
    loop {
        let flock = FileLock::try_acquire(&gdir.join("active.lock"))?;
        {
            let _l = FileLock::acquire(&gdir.join("lease.lock"), LOCK_WAIT)?;
            if !gdir.join("group.json").exists() {
                return Err(super::no_group(gdir, id));
            }
            let cur = read_lease(gdir)?;
            let now = now_millis();
            let free = match cur {
                None => true,
                Some(l) => {
                    l.holder == 0
                        || l.renewed_ms.saturating_add(timeout_ms) < now
                        || (l.holds_flock && flock.is_some())
                }
            };
            if free {
                if let Some(l) = cur.filter(|l| l.holder != 0) {
                    tracing::warn!(group = %id, pid = l.pid, "taking over from a consumer that is gone");
                }
                let epoch = cur.map_or(0, |l| l.epoch) + 1;
                write_lease(
                    gdir,
                    &Lease {
                        epoch,
                        holder: token,
                        renewed_ms: now,
                        holds_flock: flock.is_some(),
                        pid: std::process::id(),
                    },
                )?;
                return Ok(Arc::new(LeaseState {
                    gdir: gdir.to_path_buf(),
                    token,
                    epoch,
                    lost: AtomicBool::new(false),
                    active_lock: Mutex::new(flock),
                }));
            }
        }
        drop(flock);
        let busy = || {
            Error::new(
                ErrorKind::Busy,
                format!("another consumer of group {id} is active"),
            )
        };
        if !opts.wait {
            return Err(busy());
        }
        if opts.wait_timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(busy());
        }
        if !announced {
            tracing::info!(group = %id, "another consumer is active; waiting as a standby");
            announced = true;
        }
        std::thread::sleep(opts.standby_poll);
    }
}
