//! Consumer groups: credentials, committed positions and per-group metrics.
//!
//! A group lives in `STORE/groups/ID/`, in small files shared by every process that uses the
//! store (the RocksDB database has a single writer, the ingester; consumers may be in other
//! processes and must be able to commit while it runs):
//!
//! | file | content |
//! |---|---|
//! | `group.json` | id, name, username, the Argon2id hash of the password (PHC string), creation time |
//! | `commit` | the committed position: seq, checkpoint, timestamp (binary, CRC-checked) |
//! | `lease` | which consumer is active: epoch, holder token, last renewal (binary, CRC-checked) |
//! | `lease.lock` | `flock`ed around every read-modify-write of `lease` and every commit |
//! | `active.lock` | `flock`ed by the active consumer for its lifetime (death detection) |
//!
//! Every replacement is atomic and durable (temporary file, fsync, rename, directory fsync).
//! `STORE/groups/registry.lock` serializes creating, renaming passwords and deleting groups.

mod consumer;
mod files;

pub use consumer::{CommitAt, Consumer, ConsumerOptions, StartAt};

use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::record::Checkpoint;
use crate::store::Store;

pub(crate) use files::FileLock;
use files::{read_small, sync_dir, write_atomic};

const REGISTRY_LOCK_WAIT: Duration = Duration::from_secs(10);
const GROUP_FILE_LIMIT: u64 = 64 << 10;

/// What a group is (never its password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The generated, stable id consumers connect with (distinct from the name).
    pub id: String,
    /// The name given at creation.
    pub name: String,
    /// The group's username.
    pub username: String,
    /// Creation time, epoch seconds.
    pub created: u64,
}

#[derive(Serialize, Deserialize)]
struct GroupFile {
    format: u32,
    #[serde(flatten)]
    info: GroupInfo,
    password_hash: String,
}

/// Proof that a group's credentials were checked ([`Groups::login`]). It holds no password and
/// can only be made by a successful login.
#[derive(Clone, Debug)]
pub struct Login {
    info: GroupInfo,
}

impl Login {
    /// The group logged in to.
    #[must_use]
    pub fn group(&self) -> &GroupInfo {
        &self.info
    }
}

/// A committed position: everything up to and including `seq` has been consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The last consumed record's sequence number.
    pub seq: u64,
    /// Its checkpoint.
    pub checkpoint: Checkpoint,
    /// Its timestamp (epoch seconds).
    pub timestamp: u32,
}

/// A group with its metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub info: GroupInfo,
    /// The committed position, if the group ever committed.
    pub committed: Option<Committed>,
    /// Records stored after the committed position (all stored records before a first commit).
    pub remaining: u64,
    /// Newest record's time minus the committed record's time, in seconds (before a first
    /// commit: minus the oldest record's time). `None` for an empty store.
    pub delay_seconds: Option<u64>,
    /// Why the group's files cannot be read (the other fields are then empty), if they cannot.
    pub damaged: Option<String>,
}

/// One group's files as [`Groups::verify_all`] read them: id, committed seq, problem.
pub(crate) type GroupCheck = (String, Option<u64>, Option<String>);

/// Checks a username: 1 to 16 characters, only `[A-Za-z0-9_]`.
///
/// # Errors
/// `InvalidArgument` saying which rule is broken.
pub fn validate_username(u: &str) -> Result<()> {
    if u.is_empty() || u.chars().count() > 16 {
        return Err(Error::invalid("a username has 1 to 16 characters"));
    }
    if !u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(
            "a username has only letters A-Z and a-z, digits and underscore",
        ));
    }
    Ok(())
}

/// Checks a password: 8 to 32 printable ASCII characters (no space), with at least two of:
/// upper-case letters, lower-case letters, digits, special characters. The error never
/// contains the password.
///
/// # Errors
/// `InvalidArgument` saying which rule is broken.
pub fn validate_password(p: &str) -> Result<()> {
    let n = p.chars().count();
    if !(8..=32).contains(&n) {
        return Err(Error::invalid("a password has 8 to 32 characters"));
    }
    if !p.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "a password has only printable ASCII characters, without spaces",
        ));
    }
    let classes = [
        p.chars().any(|c| c.is_ascii_uppercase()),
        p.chars().any(|c| c.is_ascii_lowercase()),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| c.is_ascii_punctuation()),
    ];
    if classes.iter().filter(|&&b| b).count() < 2 {
        return Err(Error::invalid(
            "a password contains at least two of: upper-case letters, lower-case letters, digits, special characters",
        ));
    }
    Ok(())
}

fn validate_name(n: &str) -> Result<()> {
    if n.trim().is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a group name has 1 to 64 characters and no control characters",
        ));
    }
    Ok(())
}

fn hash_password(p: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("no random bytes for a password salt: {e}"),
        )
    })?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(p.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(ErrorKind::Internal, format!("password hashing failed: {e}")))
}

/// Verifies in constant time (argon2's comparison). A malformed stored hash is `Corruption`.
fn verify_hash(p: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| Error::corruption(format!("stored password hash is malformed: {e}")))?;
    Ok(Argon2::default()
        .verify_password(p.as_bytes(), &parsed)
        .is_ok())
}

fn to_json(g: &GroupFile) -> Result<Vec<u8>> {
    serde_json::to_vec(g).map_err(|e| Error::new(ErrorKind::Internal, format!("group file: {e}")))
}

fn unauthorized() -> Error {
    Error::new(
        ErrorKind::Unauthorized,
        "wrong group id, username or password",
    )
}

fn new_group_id() -> Result<String> {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("no random bytes for a group id: {e}"),
        )
    })?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    // 80 random bits as 16 base32 characters.
    let mut v = u128::from_be_bytes({
        let mut a = [0u8; 16];
        a[6..].copy_from_slice(&b);
        a
    });
    let mut id = String::from("ctg-");
    for _ in 0..16 {
        id.push(char::from(ALPHABET[(v & 31) as usize]));
        v >>= 5;
    }
    Ok(id)
}

fn valid_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with("ctg-")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The consumer groups of a store (a directory inside it; works from any process, whether or
/// not the store is open for writing elsewhere).
#[derive(Clone, Debug)]
pub struct Groups {
    dir: PathBuf,
}

impl Groups {
    /// The groups of the store in `store_dir`.
    ///
    /// # Errors
    /// `NotFound` when `store_dir` holds no store; `Io`.
    pub fn open(store_dir: &Path) -> Result<Self> {
        if !store_dir.join("CURRENT").exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no store in {}", store_dir.display()),
            ));
        }
        let dir = store_dir.join("groups");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Self { dir })
    }

    pub(crate) fn group_dir(&self, id: &str) -> Result<PathBuf> {
        if !valid_id(id) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{id:?} is not a group id"),
            ));
        }
        Ok(self.dir.join(id))
    }

    fn registry_lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.dir.join("registry.lock"), REGISTRY_LOCK_WAIT)
    }

    /// Creates a group and returns its generated id.
    ///
    /// # Errors
    /// `InvalidArgument` for a name, username or password that breaks the rules;
    /// `AlreadyExists` for a name in use; `Io`.
    pub fn create(&self, name: &str, username: &str, password: &str) -> Result<String> {
        validate_name(name)?;
        validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let _lock = self.registry_lock()?;
        if self.list()?.iter().any(|g| g.name == name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a group named {name:?} exists already"),
            ));
        }
        let id = new_group_id()?;
        let gdir = self.dir.join(&id);
        let tmp = self.dir.join(format!(".new-{id}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp)
            .map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
        let file = GroupFile {
            format: 1,
            info: GroupInfo {
                id: id.clone(),
                name: name.to_owned(),
                username: username.to_owned(),
                created: now_secs(),
            },
            password_hash: hash,
        };
        write_atomic(&tmp.join("group.json"), &to_json(&file)?)?;
        std::fs::rename(&tmp, &gdir)
            .and_then(|()| sync_dir(&self.dir))
            .map_err(|e| Error::io(format!("cannot create {}", gdir.display()), e))?;
        tracing::info!(group = %id, %name, "group created");
        Ok(id)
    }

    fn read_group(&self, id: &str) -> Result<GroupFile> {
        let path = self.group_dir(id)?.join("group.json");
        let bytes =
            read_small(&path, GROUP_FILE_LIMIT)?.ok_or_else(|| no_group(&self.dir.join(id), id))?;
        let g: GroupFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corruption(format!("{}: {e}", path.display())))?;
        if g.format != 1 || g.info.id != id {
            return Err(Error::corruption(format!(
                "{} is not a group description",
                path.display()
            )));
        }
        Ok(g)
    }

    /// Every group, ordered by name.
    ///
    /// # Errors
    /// `Io`; `Corruption` for an unreadable group file.
    pub fn list(&self) -> Result<Vec<GroupInfo>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("cannot list {}", self.dir.display()), e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(format!("cannot list {}", self.dir.display()), e))?;
            let name = e.file_name();
            let Some(id) = name.to_str().filter(|n| valid_id(n)) else {
                continue;
            };
            match self.read_group(id) {
                Ok(g) => out.push(g.info),
                // Deleted between the listing and the read.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                // A damaged group is left out here ([`Groups::status_all`] lists it as
                // damaged): it must not hide the others.
                Err(e) => tracing::warn!(group = %id, "{e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Reads every group's files: `(id, committed seq, problem)` for each group directory.
    pub(crate) fn verify_all(&self) -> Result<Vec<GroupCheck>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            let gdir = self.group_dir(&id)?;
            let r = self.read_group(&id).and_then(|_| {
                consumer::read_lease_file(&gdir)?;
                read_commit(&gdir)
            });
            match r {
                Ok(c) => out.push((id, c.map(|c| c.seq), None)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => out.push((id, None, Some(e.message().to_owned()))),
            }
        }
        Ok(out)
    }

    /// The ids of every group directory, readable or not.
    fn ids(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("cannot list {}", self.dir.display()), e))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .filter(|n| valid_id(n))
                    .map(str::to_owned)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Checks credentials. Wrong id, username or password all give the same `Unauthorized`.
    ///
    /// # Errors
    /// `Unauthorized`; `Corruption`, `Io`.
    pub fn authenticate(&self, id: &str, username: &str, password: &str) -> Result<GroupInfo> {
        let g = match self.read_group(id) {
            Ok(g) => g,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Spend the same time as a real check, so ids cannot be probed by timing.
                let _ = hash_password(password);
                return Err(unauthorized());
            }
            Err(e) => return Err(e),
        };
        let user_ok = constant_time_eq(g.info.username.as_bytes(), username.as_bytes());
        let tag = verified::tag(id, username, password, &g.password_hash);
        if user_ok && tag.as_ref().is_some_and(verified::contains) {
            return Ok(g.info);
        }
        let pw_ok = verify_hash(password, &g.password_hash)?;
        if pw_ok && user_ok {
            if let Some(t) = tag {
                verified::insert(t);
            }
            Ok(g.info)
        } else {
            tracing::warn!(group = %id, "authentication failed");
            Err(unauthorized())
        }
    }

    /// Changes a group's password (the old one must match; the new one follows the rules).
    ///
    /// # Errors
    /// `Unauthorized` for a wrong old password or unknown id; `InvalidArgument`; `Io`.
    pub fn change_password(&self, id: &str, old: &str, new: &str) -> Result<()> {
        validate_password(new)?;
        let _lock = self.registry_lock()?;
        let mut g = match self.read_group(id) {
            Ok(g) => g,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(unauthorized()),
            Err(e) => return Err(e),
        };
        if !verify_hash(old, &g.password_hash)? {
            return Err(unauthorized());
        }
        g.password_hash = hash_password(new)?;
        write_atomic(&self.group_dir(id)?.join("group.json"), &to_json(&g)?)?;
        tracing::info!(group = %id, "password changed");
        Ok(())
    }

    /// Deletes a group and its committed position for good. An active consumer of it fails at
    /// its next commit.
    ///
    /// # Errors
    /// `NotFound`; `Io`.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _lock = self.registry_lock()?;
        let gdir = self.group_dir(id)?;
        // A damaged group (its description lost) can be deleted too.
        if !gdir.join("group.json").exists() && no_group(&gdir, id).kind() == ErrorKind::NotFound {
            return Err(Error::new(ErrorKind::NotFound, format!("no group {id}")));
        }
        // Rename first (atomic: the group is gone at once), then remove the files.
        let grave = self
            .dir
            .join(format!(".deleted-{id}-{}", std::process::id()));
        std::fs::rename(&gdir, &grave)
            .and_then(|()| sync_dir(&self.dir))
            .map_err(|e| Error::io(format!("cannot delete {}", gdir.display()), e))?;
        std::fs::remove_dir_all(&grave)
            .map_err(|e| Error::io(format!("cannot remove {}", grave.display()), e))?;
        tracing::info!(group = %id, "group deleted");
        Ok(())
    }

    /// The committed position of a group.
    ///
    /// # Errors
    /// `NotFound`; `Corruption` for a damaged commit file; `Io`.
    pub fn committed(&self, id: &str) -> Result<Option<Committed>> {
        let gdir = self.group_dir(id)?;
        if !gdir.join("group.json").exists() {
            return Err(no_group(&gdir, id));
        }
        read_commit(&gdir)
    }

    /// The committed position of a group with the metadata of that commit (empty unless a
    /// Kafka client gave some), read together.
    ///
    /// # Errors
    /// As [`Groups::committed`].
    pub fn committed_with_metadata(&self, id: &str) -> Result<Option<(Committed, Vec<u8>)>> {
        let gdir = self.group_dir(id)?;
        if !gdir.join("group.json").exists() {
            return Err(no_group(&gdir, id));
        }
        read_commit_with_metadata(&gdir)
    }

    /// Checks credentials like [`Groups::authenticate`] and returns a [`Login`], which opens
    /// consumers of the group without the password ([`Consumer::open_login`]). Servers that
    /// authenticate a connection once and open consumers later keep the `Login`, never the
    /// password.
    ///
    /// # Errors
    /// As [`Groups::authenticate`].
    pub fn login(&self, id: &str, username: &str, password: &str) -> Result<Login> {
        let info = self.authenticate(id, username, password)?;
        Ok(Login { info })
    }

    /// A group with its metrics against `store`.
    ///
    /// # Errors
    /// `NotFound`; store errors.
    pub fn status(&self, store: &Store, id: &str) -> Result<GroupStatus> {
        let info = self.read_group(id)?.info;
        let committed = self.committed(id)?;
        let range = store.data_range()?;
        let (remaining, delay_seconds) = match &range {
            None => (0, None),
            Some(r) => {
                let (after, from_ts) = match committed {
                    Some(c) if c.seq >= r.oldest.seq => (c.seq, c.timestamp),
                    // Nothing committed, or a position before the oldest stored record (a
                    // reset, or a Kafka commit at the log start): everything stored remains.
                    _ => (r.oldest.seq - 1, r.oldest.timestamp),
                };
                (
                    r.newest.seq.saturating_sub(after),
                    Some(u64::from(r.newest.timestamp.saturating_sub(from_ts))),
                )
            }
        };
        Ok(GroupStatus {
            info,
            committed,
            remaining,
            delay_seconds,
            damaged: None,
        })
    }

    /// Every group with its metrics.
    ///
    /// # Errors
    /// As [`Groups::status`].
    pub fn status_all(&self, store: &Store) -> Result<Vec<GroupStatus>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            match self.status(store, &id) {
                Ok(s) => out.push(s),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                // A damaged group file affects only its own group.
                Err(e) if e.kind() == ErrorKind::Corruption => {
                    let info = self.read_group(&id).map(|g| g.info).unwrap_or(GroupInfo {
                        id: id.clone(),
                        name: "?".into(),
                        username: "?".into(),
                        created: 0,
                    });
                    out.push(GroupStatus {
                        info,
                        committed: None,
                        remaining: 0,
                        delay_seconds: None,
                        damaged: Some(e.message().to_owned()),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| {
            a.info
                .name
                .cmp(&b.info.name)
                .then_with(|| a.info.id.cmp(&b.info.id))
        });
        Ok(out)
    }
}

impl Store {
    /// The store's consumer groups.
    ///
    /// # Errors
    /// `Io`.
    pub fn groups(&self) -> Result<Groups> {
        Groups::open(self.path())
    }

    /// A consumer of a group, starting at `start`; waits as a standby while another consumer
    /// of the group is active (see [`Consumer::open`] for the other options).
    ///
    /// # Errors
    /// As [`Consumer::open`].
    pub fn consumer(
        &self,
        group_id: &str,
        username: &str,
        password: &str,
        start: StartAt,
    ) -> Result<Consumer> {
        Consumer::open(
            self,
            group_id,
            username,
            password,
            &ConsumerOptions {
                start,
                ..ConsumerOptions::default()
            },
        )
    }
}

/// Credentials this process verified with Argon2id recently, so that a client that opens
/// several connections (a Kafka client opens two or three, and reconnects) pays one hash, not
/// one per connection.
///
/// An entry is a keyed BLAKE2b-256 MAC of (group id, username, password, stored hash), with a
/// key drawn at random for the process: no password is kept, a changed password changes the
/// stored hash (so old entries no longer match), and a wrong password never gets in (it must
/// pass Argon2id first). At most 4096 entries, each for at most 10 minutes.
mod verified {
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use blake2::digest::{FixedOutput, KeyInit, Update};

    type Tag = [u8; 32];
    const MAX: usize = 4096;
    const TTL: Duration = Duration::from_secs(600);

    struct Cache {
        key: [u8; 32],
        seen: HashMap<Tag, Instant>,
        order: VecDeque<Tag>,
    }

    fn cache() -> Option<&'static Mutex<Cache>> {
        static C: OnceLock<Option<Mutex<Cache>>> = OnceLock::new();
        C.get_or_init(|| {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).ok()?;
            Some(Mutex::new(Cache {
                key,
                seen: HashMap::new(),
                order: VecDeque::new(),
            }))
        })
        .as_ref()
    }

    pub(super) fn tag(id: &str, user: &str, password: &str, phc: &str) -> Option<Tag> {
        let key = cache()?.lock().ok()?.key;
        let mut m = blake2::Blake2bMac::<blake2::digest::consts::U32>::new_from_slice(&key).ok()?;
        for part in [id, user, password, phc] {
            m.update(&(part.len() as u64).to_le_bytes());
            m.update(part.as_bytes());
        }
        Some(m.finalize_fixed().into())
    }

    pub(super) fn contains(t: &Tag) -> bool {
        cache()
            .and_then(|c| c.lock().ok())
            .is_some_and(|c| c.seen.get(t).is_some_and(|at| at.elapsed() < TTL))
    }

    pub(super) fn insert(t: Tag) {
        let Some(mut c) = cache().and_then(|c| c.lock().ok()) else {
            return;
        };
        if c.seen.insert(t, Instant::now()).is_none() {
            c.order.push_back(t);
        }
        while c.order.len() > MAX {
            if let Some(old) = c.order.pop_front() {
                c.seen.remove(&old);
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------------
// The commit file, little-endian, CRC-checked:
// - "CTC1": seq u64, file_index u32, offset u64, timestamp u32, epoch u64 (the lease epoch of the
//   consumer that wrote it), crc32 of the preceding bytes (written by earlier builds);
// - "CTC2": the same fields, then metadata length u16 and the metadata bytes (a Kafka client's
//   commit metadata, verbatim), then the crc32.

const COMMIT_MAGIC_V1: &[u8; 4] = b"CTC1";
const COMMIT_MAGIC: &[u8; 4] = b"CTC2";
const COMMIT_FIXED: usize = 4 + 8 + 4 + 8 + 4 + 8;

/// The longest commit metadata kept (Kafka's `offset.metadata.max.bytes` default).
pub const MAX_COMMIT_METADATA: usize = 4096;

pub(crate) fn read_commit(gdir: &Path) -> Result<Option<Committed>> {
    Ok(read_commit_with_metadata(gdir)?.map(|(c, _)| c))
}

/// The error for a group directory without its `group.json`: a group that was never fully
/// created (or was deleted: deletion renames the directory away first) is simply not there;
/// one whose consumers left a lease or a commit lost its description, which is damage.
pub(crate) fn no_group(gdir: &Path, id: &str) -> Error {
    if ["commit", COMMITTED_MARKER, "lease"]
        .iter()
        .any(|f| gdir.join(f).exists())
    {
        return Error::corruption(format!(
            "{} is missing although the group has been used (its lease or commit files remain)",
            gdir.join("group.json").display()
        ));
    }
    Error::new(ErrorKind::NotFound, format!("no group {id}"))
}

/// Created (durably) by a group's first commit: a group that committed once and has no
/// commit file lost it, which is damage, not a fresh start.
const COMMITTED_MARKER: &str = "committed";

pub(crate) fn read_commit_with_metadata(gdir: &Path) -> Result<Option<(Committed, Vec<u8>)>> {
    let path = gdir.join("commit");
    let Some(b) = read_small(&path, (COMMIT_FIXED + 2 + MAX_COMMIT_METADATA + 4) as u64)? else {
        if gdir.join(COMMITTED_MARKER).exists() {
            return Err(Error::corruption(format!(
                "{} is missing although the group committed before",
                path.display()
            )));
        }
        return Ok(None);
    };
    let bad = || Error::corruption(format!("{} is damaged", path.display()));
    if b.len() < COMMIT_FIXED + 4 {
        return Err(bad());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| bad())?);
    if crc32fast::hash(body) != crc {
        return Err(bad());
    }
    let metadata = match &body[..4] {
        m if m == COMMIT_MAGIC_V1 && body.len() == COMMIT_FIXED => Vec::new(),
        m if m == COMMIT_MAGIC && body.len() >= COMMIT_FIXED + 2 => {
            let n = usize::from(u16::from_le_bytes(
                body[COMMIT_FIXED..COMMIT_FIXED + 2]
                    .try_into()
                    .map_err(|_| bad())?,
            ));
            let meta = &body[COMMIT_FIXED + 2..];
            if meta.len() != n {
                return Err(bad());
            }
            meta.to_vec()
        }
        _ => return Err(bad()),
    };
    let u64_at = |at: usize| body[at..at + 8].try_into().map(u64::from_le_bytes);
    let u32_at = |at: usize| body[at..at + 4].try_into().map(u32::from_le_bytes);
    Ok(Some((
        Committed {
            seq: u64_at(4).map_err(|_| bad())?,
            checkpoint: Checkpoint::new(
                u32_at(12).map_err(|_| bad())?,
                u64_at(16).map_err(|_| bad())?,
            ),
            timestamp: u32_at(24).map_err(|_| bad())?,
        },
        metadata,
    )))
}

pub(crate) fn write_commit(gdir: &Path, c: &Committed, epoch: u64, metadata: &[u8]) -> Result<()> {
    let n = u16::try_from(metadata.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_COMMIT_METADATA)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::LimitExceeded,
                format!("commit metadata is at most {MAX_COMMIT_METADATA} bytes"),
            )
        })?;
    let mut b = Vec::with_capacity(COMMIT_FIXED + 2 + metadata.len() + 4);
    b.extend_from_slice(COMMIT_MAGIC);
    b.extend_from_slice(&c.seq.to_le_bytes());
    b.extend_from_slice(&c.checkpoint.file_index.to_le_bytes());
    b.extend_from_slice(&c.checkpoint.offset.to_le_bytes());
    b.extend_from_slice(&c.timestamp.to_le_bytes());
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(&n.to_le_bytes());
    b.extend_from_slice(metadata);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    write_atomic(&gdir.join("commit"), &b)?;
    let marker = gdir.join(COMMITTED_MARKER);
    if !marker.exists() {
        write_atomic(&marker, b"")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed() {
        let a = new_group_id().unwrap();
        let b = new_group_id().unwrap();
        assert!(valid_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(!valid_id("ctg-../../etc/passw"));
    }

    #[test]
    fn verified_credentials_are_remembered_only_for_the_same_password_and_hash() {
        let dir = std::env::temp_dir().join(format!("ct-verified-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("groups")).unwrap();
        std::fs::write(dir.join("CURRENT"), b"").unwrap();
        let g = Groups::open(&dir).unwrap();
        let id = g.create("n", "alice", "First_pass1").unwrap();
        let t = std::time::Instant::now();
        g.authenticate(&id, "alice", "First_pass1").unwrap();
        let first = t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..20 {
            g.authenticate(&id, "alice", "First_pass1").unwrap();
        }
        // Twenty remembered checks cost less than one hash.
        assert!(t.elapsed() < first, "{:?} vs {first:?}", t.elapsed());
        assert_eq!(
            g.authenticate(&id, "alice", "Wrong_pass1")
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            g.authenticate(&id, "bob", "First_pass1")
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthorized
        );
        g.change_password(&id, "First_pass1", "Second_pass2")
            .unwrap();
        assert_eq!(
            g.authenticate(&id, "alice", "First_pass1")
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthorized
        );
        g.authenticate(&id, "alice", "Second_pass2").unwrap();
        g.delete(&id).unwrap();
        assert_eq!(
            g.authenticate(&id, "alice", "Second_pass2")
                .unwrap_err()
                .kind(),
            ErrorKind::Unauthorized
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
