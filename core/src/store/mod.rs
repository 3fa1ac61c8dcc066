//! The durable change store: an append-only log of records in RocksDB, indexed by sequence
//! number, checkpoint and timestamp. The only module that names `rocksdb`.
//!
//! One writer appends whole source transactions, each in one `WriteBatch` together with the
//! source resume position; readers see only committed transactions. Layouts: `docs/DESIGN.md`.

mod check;
pub mod keys;
mod objects;
mod salvage;
mod verified;

pub use check::CheckReport;
pub use objects::{
    check_no_lost_requests, read_requests, request_object_change, FilterChange, ObjectRequest,
};
pub(crate) use objects::{raise_requested, requests_len};
pub use salvage::SalvageReport;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rocksdb::{
    ColumnFamilyDescriptor, DBRawIteratorWithThreadMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::error::{Error, ErrorKind, Result};
use crate::record::avro::AvroWriter;
use crate::record::codec::{self, put_varint, Dictionary, Reader};
use crate::record::{ChangeRecord, Checkpoint, TableInfo};
use keys::*;

/// Version of the on-disk format, checked on open.
pub const FORMAT_VERSION: u32 = 2;

/// When appends reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fsync the write-ahead log with every append: an acknowledged append survives a power
    /// loss. Default.
    #[default]
    PerBatch,
    /// Write the log without fsync: an acknowledged append survives the process being killed,
    /// not a power loss.
    Never,
}

/// How much history the store keeps. Trimming removes whole transactions from the oldest end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep records younger than this (by record timestamp against the newest record's).
    /// Default: no age limit.
    pub max_age: Option<Duration>,
    /// Keep at most about this many bytes of encoded records. Default: no size limit.
    pub max_bytes: Option<u64>,
}

/// Options of [`Store::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Durability of appends. Default: [`SyncMode::PerBatch`].
    pub sync: SyncMode,
    /// Retention applied by [`Store::trim`] (and by ingestion after each batch). Default: keep
    /// everything.
    pub retention: Retention,
    /// Open for reading only, as a RocksDB secondary instance that follows a writer in another
    /// process ([`Store::refresh`]). Default: false.
    pub read_only: bool,
    /// Create the store if the directory is empty. Default: true.
    pub create_if_missing: bool,
    /// Records of one transaction written per batch before the transaction is split into
    /// chunks (large transactions). Default: 10 000. Minimum: 1.
    pub chunk_records: usize,
    /// RocksDB write buffer (memtable) size in bytes. Default: 64 MiB. Minimum: 1 MiB.
    pub write_buffer_bytes: usize,
    /// Whether a long scan reads ahead on a helper thread: once a [`RecordIter`] has returned
    /// 4096 records and more than 4096 are left, one thread per iterator reads and decompresses
    /// the following records (at most 4 batches of up to 256 records or 1 MiB ahead) while the
    /// caller decodes. A consumer more than 4096 records behind reads the same way. If the
    /// thread cannot be started, the scan runs on the caller's thread. Default: true.
    pub read_ahead_thread: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: SyncMode::PerBatch,
            retention: Retention::default(),
            read_only: false,
            create_if_missing: true,
            chunk_records: 10_000,
            write_buffer_bytes: 64 << 20,
            read_ahead_thread: true,
        }
    }
}

impl StoreOptions {
    /// Checks the options.
    ///
    /// # Errors
    /// `InvalidArgument` naming the bad option.
    pub fn validate(&self) -> Result<()> {
        if self.chunk_records == 0 {
            return Err(Error::invalid("chunk_records must be at least 1"));
        }
        if self.write_buffer_bytes < 1 << 20 {
            return Err(Error::invalid("write_buffer_bytes must be at least 1 MiB"));
        }
        if self.retention.max_bytes == Some(0) {
            return Err(Error::invalid("retention max_bytes must be positive"));
        }
        Ok(())
    }
}

/// Where ingestion resumes: the next event to read, always at a transaction boundary.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SourcePosition {
    /// The binlog file name (no directory).
    pub file_name: String,
    /// Its file index.
    pub file_index: u32,
    /// The offset of the next event to read.
    pub offset: u64,
    /// The commit checkpoint of the last transaction stored: transactions at or before it are
    /// already in the store (used when a resume must re-read, e.g. to recover a prepared XA).
    pub stored_through: Checkpoint,
}

impl SourcePosition {
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![1u8];
        put_varint(&mut b, self.file_name.len() as u64);
        b.extend_from_slice(self.file_name.as_bytes());
        put_varint(&mut b, u64::from(self.file_index));
        put_varint(&mut b, self.offset);
        put_varint(&mut b, u64::from(self.stored_through.file_index));
        put_varint(&mut b, self.stored_through.offset);
        b
    }

    fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        if r.u8()? != 1 {
            return Err(Error::corruption(
                "stored source position has an unknown format",
            ));
        }
        let n = usize::try_from(r.varint()?).map_err(|_| Error::corruption("source position"))?;
        let file_name = String::from_utf8(r.take(n)?.to_vec())
            .map_err(|_| Error::corruption("source file name"))?;
        let file_index =
            u32::try_from(r.varint()?).map_err(|_| Error::corruption("source file index"))?;
        let offset = r.varint()?;
        let st_file =
            u32::try_from(r.varint()?).map_err(|_| Error::corruption("source position"))?;
        let st_off = r.varint()?;
        Ok(Self {
            file_name,
            file_index,
            offset,
            stored_through: Checkpoint::new(st_file, st_off),
        })
    }
}

/// The committed tail, persisted with every append.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tail {
    /// Last committed sequence number (0: none).
    last_seq: u64,
    /// Oldest stored sequence number (0: none).
    oldest_seq: u64,
    /// Encoded bytes of the stored records.
    bytes: u64,
    /// Number of stored records.
    records: u64,
    /// Running maximum of record timestamps.
    max_ts: u32,
    /// Last checkpoint written to the checkpoint index.
    last_cp: Checkpoint,
}

impl Tail {
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![1u8];
        for v in [
            self.last_seq,
            self.oldest_seq,
            self.bytes,
            self.records,
            u64::from(self.max_ts),
        ] {
            put_varint(&mut b, v);
        }
        put_varint(&mut b, u64::from(self.last_cp.file_index));
        put_varint(&mut b, self.last_cp.offset);
        b
    }

    fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        if r.u8()? != 1 {
            return Err(Error::corruption("stored tail has an unknown format"));
        }
        let c = |v: u64| u32::try_from(v).map_err(|_| Error::corruption("stored tail"));
        Ok(Self {
            last_seq: r.varint()?,
            oldest_seq: r.varint()?,
            bytes: r.varint()?,
            records: r.varint()?,
            max_ts: c(r.varint()?)?,
            last_cp: Checkpoint::new(c(r.varint()?)?, r.varint()?),
        })
    }
}

/// One end of the stored data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeEnd {
    /// Sequence number.
    pub seq: u64,
    /// Checkpoint.
    pub checkpoint: Checkpoint,
    /// Timestamp (epoch seconds).
    pub timestamp: u32,
}

/// The oldest and newest stored records; `None` for an empty store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRange {
    /// The oldest record.
    pub oldest: RangeEnd,
    /// The newest record.
    pub newest: RangeEnd,
}

impl std::fmt::Display for DataRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seq {}..{}, checkpoint {}..{}, time {}..{}",
            self.oldest.seq,
            self.newest.seq,
            self.oldest.checkpoint,
            self.newest.checkpoint,
            self.oldest.timestamp,
            self.newest.timestamp
        )
    }
}

/// A table the store knows (see [`Store::known_tables`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownTable {
    /// The database name.
    pub database: String,
    /// The table name.
    pub table: String,
    /// Its column names in any stored version, sorted (empty when only DDL named it).
    pub columns: Vec<String>,
}

/// Counters of a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records stored.
    pub records: u64,
    /// Encoded record bytes stored.
    pub record_bytes: u64,
    /// Last committed sequence number.
    pub last_seq: u64,
    /// Oldest stored sequence number.
    pub oldest_seq: u64,
    /// Tables in the dictionary.
    pub tables: u64,
    /// Size of the store's files on disk, in bytes.
    pub disk_bytes: u64,
    /// The resume position.
    pub source: Option<SourcePosition>,
}

/// Where to start reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest stored record.
    Earliest,
    /// The first record with this sequence number or later.
    Seq(u64),
    /// The first record at or after this checkpoint.
    Checkpoint(Checkpoint),
    /// The first record at or after this time (epoch seconds): the first record by which the
    /// stream's timestamps have reached it.
    Timestamp(u32),
}

// ---------------------------------------------------------------------------------------------
// Dictionary of tables and strings.

#[derive(Default)]
struct DictInner {
    tables: HashMap<u64, Arc<TableInfo>>,
    table_ids: HashMap<Vec<u8>, u64>,
    strings: HashMap<u64, Arc<str>>,
    string_ids: HashMap<Arc<str>, u64>,
    next_id: u64,
    /// Ids of the table descriptions the writer saw last, by identity: the decoder hands out one
    /// `Arc` per TABLE_MAP, so most records skip re-encoding their table to find its id. The
    /// `Arc` is kept so its address cannot be reused by another table while cached.
    by_ptr: HashMap<usize, (Arc<TableInfo>, u64)>,
    /// The string looked up last (records repeat their server version): skips hashing it.
    last_string: Option<(Arc<str>, u64)>,
}

/// The dictionary as the writer sees it while encoding: new entries go into the batch too.
struct BatchDict<'a> {
    inner: &'a mut DictInner,
    added: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Dictionary for BatchDict<'_> {
    fn table_id(&mut self, table: &Arc<TableInfo>) -> u64 {
        let addr = Arc::as_ptr(table) as usize;
        if let Some((_, id)) = self.inner.by_ptr.get(&addr) {
            return *id;
        }
        let mut enc = Vec::with_capacity(256);
        codec::encode_table(&mut enc, table);
        let id = if let Some(&id) = self.inner.table_ids.get(&enc) {
            id
        } else {
            let id = self.inner.next_id;
            self.inner.next_id += 1;
            self.added.push((dict_key(b't', id).to_vec(), enc.clone()));
            self.inner.tables.insert(id, Arc::clone(table));
            self.inner.table_ids.insert(enc, id);
            id
        };
        if self.inner.by_ptr.len() >= 4096 {
            self.inner.by_ptr.clear();
        }
        self.inner.by_ptr.insert(addr, (Arc::clone(table), id));
        id
    }

    fn string_id(&mut self, s: &str) -> u64 {
        if let Some((last, id)) = &self.inner.last_string {
            if **last == *s {
                return *id;
            }
        }
        if let Some((k, &id)) = self.inner.string_ids.get_key_value(s) {
            self.inner.last_string = Some((Arc::clone(k), id));
            return id;
        }
        let id = self.inner.next_id;
        self.inner.next_id += 1;
        self.added
            .push((dict_key(b's', id).to_vec(), s.as_bytes().to_vec()));
        let s: Arc<str> = Arc::from(s);
        self.inner.strings.insert(id, Arc::clone(&s));
        self.inner.string_ids.insert(s, id);
        id
    }

    fn table(&self, id: u64) -> Result<Arc<TableInfo>> {
        self.inner
            .tables
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::corruption(format!("unknown table id {id}")))
    }

    fn string(&self, id: u64) -> Result<Arc<str>> {
        self.inner
            .strings
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::corruption(format!("unknown string id {id}")))
    }
}

struct ReadDict<'a>(&'a DictInner);

impl Dictionary for ReadDict<'_> {
    fn table_id(&mut self, _: &Arc<TableInfo>) -> u64 {
        0
    }
    fn string_id(&mut self, _: &str) -> u64 {
        0
    }
    fn table(&self, id: u64) -> Result<Arc<TableInfo>> {
        self.0
            .tables
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::corruption(format!("unknown table id {id}")))
    }
    fn string(&self, id: u64) -> Result<Arc<str>> {
        self.0
            .strings
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::corruption(format!("unknown string id {id}")))
    }
}

/// The store's dictionary, read-locked only for a lookup: a reader's [`codec::DecodeCache`]
/// answers most of them, and a lock per record cost 7% of a Kafka fetch (the lock's cache
/// line moving between the encoding threads).
struct LazyDict<'a>(&'a Store);

impl Dictionary for LazyDict<'_> {
    fn table_id(&mut self, _: &Arc<TableInfo>) -> u64 {
        0
    }
    fn string_id(&mut self, _: &str) -> u64 {
        0
    }
    fn table(&self, id: u64) -> Result<Arc<TableInfo>> {
        ReadDict(&*self.0.dict_read()?).table(id)
    }
    fn string(&self, id: u64) -> Result<Arc<str>> {
        ReadDict(&*self.0.dict_read()?).string(id)
    }
}

// ---------------------------------------------------------------------------------------------

/// The seq in the tail file's bytes (`None` when it is shorter than 8 bytes).
fn tail_seq(b: &[u8]) -> Option<u64> {
    b.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
}

/// A follower's watcher reading the writer's tail file every millisecond: it keeps the file
/// open and reads its 8 bytes in place (the writer rewrites them in place). Opening, reading
/// and closing it at every poll made an idle follower use a tenth of a core. It opens the file
/// again every second, in case another writer replaced it.
#[derive(Default)]
struct TailReader {
    file: Option<(std::fs::File, std::time::Instant)>,
}

impl TailReader {
    fn read(&mut self, store: &Store) -> Result<Option<u64>> {
        use std::os::unix::fs::FileExt;
        if self
            .file
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() >= Duration::from_secs(1))
        {
            self.file = None;
        }
        if self.file.is_none() {
            match std::fs::File::open(store.tail_path()) {
                Ok(f) => self.file = Some((f, std::time::Instant::now())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot read {}", store.tail_path().display()),
                        e,
                    ))
                }
            }
        }
        let Some((f, _)) = &self.file else {
            return Ok(None);
        };
        let mut b = [0u8; 8];
        match f.read_exact_at(&mut b, 0) {
            Ok(()) => Ok(tail_seq(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => {
                self.file = None;
                Err(Error::io(
                    format!("cannot read {}", store.tail_path().display()),
                    e,
                ))
            }
        }
    }
}

/// How often a writer records the table files it made in the ledger of verified files (and at
/// close): after a `kill -9`, the next open reads at most this much of its writing again.
const LEDGER_EVERY: Duration = Duration::from_secs(60);

/// The file in the store directory holding the writer's last committed seq.
const TAIL_FILE: &str = "changetrack.tail";

/// Fault injection for tests (feature `failpoints`): makes the next write, sync or read fail.
#[cfg(feature = "failpoints")]
pub mod failpoints {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// `store::append::before_write`: the write fails before anything reaches RocksDB.
    pub const BEFORE_WRITE: u8 = 1;
    /// `store::append::sync`: the write reaches RocksDB but its sync fails.
    pub const SYNC: u8 = 2;
    /// `store::read`: the next record read fails with `EIO`, as a failing disk would.
    pub const READ: u8 = 3;

    static ARMED: AtomicU8 = AtomicU8::new(0);

    /// Arms a failpoint for the next append (process-wide).
    pub fn arm(point: u8) {
        ARMED.store(point, Ordering::SeqCst);
    }

    pub(crate) fn take(point: u8) -> bool {
        ARMED
            .compare_exchange(point, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

struct Inner {
    db: DB,
    path: PathBuf,
    opts: StoreOptions,
    dict: RwLock<DictInner>,
    /// The writer's view of the tail (authoritative for the writer).
    writer: Mutex<Tail>,
    /// Last committed seq, for readers in this process.
    committed: AtomicU64,
    poisoned: AtomicBool,
    _lock: Option<std::fs::File>,
    _secondary_dir: Option<PathBuf>,
    /// Wakers of waiting consumers in this process (one-slot channels: a pending token means
    /// "something was committed since you last looked").
    subscribers: Mutex<Vec<crossbeam_channel::Sender<()>>>,
    /// The oldest seq retention keeps; the object index's compaction filter drops runs that
    /// end before it.
    oldest_kept: Arc<AtomicU64>,
    /// The writer's `changetrack.tail` file: the last committed seq (8 bytes LE), rewritten
    /// after every commit so that readers in other processes notice new records with one
    /// `pread` instead of catching up with the log.
    tail_file: Option<std::fs::File>,
    /// When the writer last recorded its table files in the ledger of verified files.
    ledger_at: Mutex<std::time::Instant>,
    /// The table files that were live when the writer opened the store (read and verified by
    /// its preflight, or earlier): the ledger gets only files made after that (see
    /// [`record_tables`]). Empty for followers.
    tables_at_open: std::collections::HashSet<String>,
}

/// Stores closed on a follower's watcher thread (see [`Follow`]): none, ever.
#[cfg(test)]
static CLOSED_ON_WATCHER: AtomicU64 = AtomicU64::new(0);

impl Drop for Inner {
    fn drop(&mut self) {
        #[cfg(test)]
        if std::thread::current().name() == Some(WATCHER_THREAD) {
            CLOSED_ON_WATCHER.fetch_add(1, Ordering::SeqCst);
        }
        // A writer that met corruption records nothing: what it made may hold what it read.
        if self._lock.is_some() && !self.poisoned.load(Ordering::SeqCst) {
            record_tables(&self.db, &self.path, &self.tables_at_open);
        }
        if let Some(d) = &self._secondary_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A handle on a store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    // Declared (so dropped) first: the last user handle joins the watcher, whose own handle
    // goes with it, before this handle releases `inner`, the last reference.
    follow: Arc<Follow>,
    inner: Arc<Inner>,
}

/// A follower's watcher thread (started by the first [`Store::subscribe`]): it polls the
/// writer's tail file, catches up and wakes the subscribers.
///
/// The user's handles share one `Follow`; the watcher's own handle has another, empty one. So
/// the last user handle to go stops and joins the watcher before the store closes, and the
/// store always closes on that handle's thread. (When the watcher could hold the last
/// reference, RocksDB was sometimes closed on the watcher thread while the main thread went on
/// to `exit`, whose static destructors made RocksDB abort with "pthread lock: Invalid
/// argument".)
#[derive(Default)]
struct Follow {
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = thread {
            let _ = h.join();
        }
    }
}

fn map_db(context: &str, e: &rocksdb::Error) -> Error {
    let kind = match e.kind() {
        rocksdb::ErrorKind::Corruption => ErrorKind::Corruption,
        rocksdb::ErrorKind::Busy | rocksdb::ErrorKind::TryAgain => ErrorKind::Locked,
        rocksdb::ErrorKind::NotFound => ErrorKind::NotFound,
        rocksdb::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
        _ => ErrorKind::Io,
    };
    Error::new(kind, format!("{context}: {}", e.clone().into_string()))
}

fn db_options(opts: &StoreOptions, create: bool) -> Options {
    let mut o = Options::default();
    o.create_if_missing(create);
    o.create_missing_column_families(create);
    o.set_write_buffer_size(opts.write_buffer_bytes);
    // LZ4 at every level: zstd at the bottommost level saved ~15% of the space but cost ~15% of
    // a sequential scan's time in decompression, and the store is already well under the binlog.
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_bottommost_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_max_background_jobs(2);
    // Every open after a crash flushes the recovered memtables into new level-0 files; a store
    // restarted many times in a row must not hit the level-0 write stop.
    o.set_level_zero_slowdown_writes_trigger(64);
    // The small column families never fill a write buffer; without a WAL cap they would keep
    // every log file alive (and every open would replay them all).
    o.set_max_total_wal_size(128 << 20);
    o.set_level_zero_stop_writes_trigger(128);
    o.set_keep_log_file_num(4);
    // A damaged write-ahead log fails the open (a torn last record, from a crash in the middle
    // of a write that was therefore never acknowledged, is tolerated): RocksDB's default
    // (point-in-time recovery) would silently drop every transaction after the damage.
    // `Store::salvage` is the explicit way past it.
    o.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    o.set_paranoid_checks(true);
    o
}

/// Files that only a store holds: a directory with any of them but no `CURRENT` is a damaged
/// store, never an empty directory to create one in.
fn store_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n.starts_with("MANIFEST-")
                || n.ends_with(".sst")
                || n.ends_with(".log")
                || n == TAIL_FILE
                || n == verified::LEDGER_FILE
                || n == "IDENTITY"
        })
        .collect()
}

/// Takes the store's writer lock (`changetrack.lock`, an OS file lock held while the file is
/// open): `Locked` when another process or handle holds it.
fn lock_writer(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("changetrack.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::Locked,
            format!(
                "{} is open for writing by another process or handle",
                dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("cannot lock {}", lock_path.display()), e))
        }
    }
}

/// Whether a writer holds the store in `dir` now (its lock file is locked).
fn writer_running(dir: &Path) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("changetrack.lock"))
        .ok()
        .is_some_and(|f| f.try_lock().is_err())
}

/// The writer's acknowledged last seq, from its tail file (written after each commit).
fn witness(dir: &Path) -> Option<u64> {
    tail_seq(&std::fs::read(dir.join(TAIL_FILE)).ok()?)
}

/// Open-time checks of a store's database (any mode):
/// - every table file RocksDB's manifest lists exists with the size it records;
/// - the format record is there (a store that has data files without it lost its manifest);
/// - the stored tail agrees with the records: the oldest and the newest committed records are
///   readable;
/// - `acknowledged` (the writer's tail file, when checked before a writer opens) is not past
///   the stored tail: records the store acknowledged were lost.
fn verify_db(db: &DB, path: &Path, acknowledged: Option<u64>) -> Result<()> {
    let damaged = |what: String| {
        Error::corruption(format!(
            "the store in {} is damaged: {what} (`changetrack check --store {}` tells what can be saved; `ingest --salvage` keeps it)",
            path.display(),
            path.display()
        ))
    };
    let files = db
        .live_files()
        .map_err(|e| map_db("cannot list the store's table files", &e))?;
    for f in &files {
        let p = path.join(f.name.trim_start_matches('/'));
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == f.size as u64 => {}
            Ok(m) => {
                return Err(damaged(format!(
                    "{} is {} bytes, its manifest says {}",
                    p.display(),
                    m.len(),
                    f.size
                )))
            }
            Err(e) => return Err(damaged(format!("{} is missing ({e})", p.display()))),
        }
    }
    let cf = |n: &str| {
        db.cf_handle(n)
            .ok_or_else(|| damaged(format!("column family {n} is missing")))
    };
    if db
        .get_cf(cf(CF_META)?, KEY_FORMAT)
        .map_err(|e| map_db("cannot read the format", &e))?
        .is_none()
    {
        let has_data = witness(path).unwrap_or(0) > 0
            || store_files(path)
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "sst"));
        if !has_data {
            return Err(Error::new(
                ErrorKind::NotFound,
                "the store has not been initialised yet",
            ));
        }
        return Err(damaged(
            "its format record cannot be read although it holds data files (a lost table file, or a damaged MANIFEST?)"
                .into(),
        ));
    }
    let tail = match db
        .get_cf(cf(CF_STATE)?, KEY_TAIL)
        .map_err(|e| map_db("cannot read the tail", &e))?
    {
        Some(v) => Tail::decode(&v)?,
        None => Tail::default(),
    };
    if let Some(a) = acknowledged.filter(|&a| a > tail.last_seq) {
        return Err(damaged(format!(
            "it acknowledged records up to seq {a} ({TAIL_FILE}) but holds records only up to seq {}: records {} to {a} were lost (a damaged write-ahead log or manifest?)",
            tail.last_seq,
            tail.last_seq + 1
        )));
    }
    let records = cf(CF_RECORDS)?;
    let first_key = |name: &str| -> Result<Option<Vec<u8>>> {
        let mut it = db.raw_iterator_cf(cf(name)?);
        it.seek_to_first();
        let k = it.key().map(<[u8]>::to_vec);
        it.status()
            .map_err(|e| map_db("cannot read the store", &e))?;
        Ok(k)
    };
    if tail.last_seq == 0 {
        // Records without any commit are the chunks of a first transaction that never
        // committed (the transaction index is written by the commit only, and nothing was
        // acknowledged): the open removes them. With an index entry or an acknowledgement, the
        // tail was lost.
        let uncommitted_first = first_key(CF_TXNS)?.is_none() && acknowledged.unwrap_or(0) == 0;
        if first_key(CF_RECORDS)?.is_some() && !uncommitted_first {
            return Err(damaged(
                "it holds records but its tail (the committed position) is missing".into(),
            ));
        }
        return Ok(());
    }
    // A follower skips table files that are gone (the writer deletes files after compactions):
    // each column family that must hold something when records exist is checked instead.
    for name in [CF_DICT, CF_TXNS, CF_BY_CHECKPOINT, CF_BY_TIME] {
        if first_key(name)?.is_none() {
            return Err(damaged(format!(
                "it holds records but its {name} column family is empty (a lost table file?)"
            )));
        }
    }
    {
        let mut it = db.raw_iterator_cf(records);
        it.seek_to_first();
        let first = it.key().map(seq_from).transpose()?;
        it.status().map_err(|e| map_db("cannot read records", &e))?;
        if tail.oldest_seq > 0 && first != Some(tail.oldest_seq) {
            return Err(damaged(format!(
                "its oldest record should be seq {}, the first one present is {}",
                tail.oldest_seq,
                first.map_or("none".to_owned(), |f| f.to_string())
            )));
        }
        if db
            .get_pinned_cf(records, seq_key(tail.last_seq))
            .map_err(|e| map_db("cannot read a record", &e))?
            .is_none()
        {
            return Err(damaged(format!(
                "its newest committed record, seq {}, is missing",
                tail.last_seq
            )));
        }
    }
    Ok(())
}

/// Reads every block of the table files that the ledger of verified files
/// (`changetrack.verified`, see [`verified`]) does not hold as verified in their present form
/// (RocksDB checks each block's checksum as it reads it), or of every table file when `all`,
/// then records them in the ledger. A flipped byte anywhere in those files is `Corruption`
/// naming the file and the offset. Returns how many files were read.
fn verify_tables(db: &DB, path: &Path, all: bool) -> Result<usize> {
    let files = db
        .live_files()
        .map_err(|e| map_db("cannot list the store's table files", &e))?;
    let mut ledger = if all {
        verified::Ledger::default()
    } else {
        verified::Ledger::load(path)
    };
    // Per column family, the key range covering the files to read (`None`: all of it).
    type KeyRange = Option<(Vec<u8>, Vec<u8>)>;
    let mut ranges: HashMap<&str, KeyRange> = HashMap::new();
    let mut read = Vec::new();
    for f in &files {
        let name = f.name.trim_start_matches('/');
        // A missing file is `verify_db`'s finding (a follower's view may list one a writer
        // removed).
        let Some(fp) = verified::Fingerprint::of(&path.join(name)) else {
            continue;
        };
        if ledger.holds(name, fp) {
            continue;
        }
        read.push((name, fp));
        let range = match (&f.start_key, &f.end_key) {
            (Some(s), Some(e)) => Some((s.clone(), e.clone())),
            _ => None,
        };
        let slot = ranges
            .entry(f.column_family_name.as_str())
            .or_insert_with(|| range.clone());
        *slot = match (slot.take(), range) {
            (Some((s1, e1)), Some((s2, e2))) => Some((s1.min(s2), e1.max(e2))),
            _ => None,
        };
    }
    if read.is_empty() {
        return Ok(0);
    }
    for (name, range) in &ranges {
        let Some(cf) = db.cf_handle(name) else {
            return Err(Error::corruption(format!(
                "the store in {} is damaged: column family {name} is missing",
                path.display()
            )));
        };
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        ro.set_verify_checksums(true);
        ro.set_readahead_size(2 << 20);
        // Keys under a range tombstone (retention's trims) are read too: their blocks are in
        // the files being verified, and an iterator that honours the tombstones may seek past
        // them unread. (Deprecated in RocksDB 10.2 for its cost when DeleteRange is not used;
        // it still does this.)
        #[allow(deprecated)]
        ro.set_ignore_range_deletions(true);
        if let Some((_, end)) = range {
            // The upper bound is exclusive: the smallest key after `end`.
            let mut after = end.clone();
            after.push(0);
            ro.set_iterate_upper_bound(after);
        }
        let mut it = db.raw_iterator_cf_opt(cf, ro);
        match range {
            Some((start, _)) => it.seek(start),
            None => it.seek_to_first(),
        }
        while it.valid() {
            it.next();
        }
        it.status().map_err(|e| {
            Error::corruption(format!(
                "the store in {} is damaged: {} (column family {name}; nothing was changed)",
                path.display(),
                e.into_string()
            ))
        })?;
    }
    for (name, fp) in &read {
        ledger.insert(name, *fp);
    }
    ledger.retain_live(&live_names(&files));
    ledger.save(path);
    tracing::debug!(files = read.len(), "table files read and verified");
    Ok(read.len())
}

/// The names of RocksDB's live table files, as the ledger keys them.
fn live_names(files: &[rocksdb::LiveFile]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.name.trim_start_matches('/').to_owned())
        .collect()
}

/// Adds the table files a writer made (live now, not live when it opened the store, and never
/// held by the ledger: RocksDB never reuses a file number) to the ledger of verified files,
/// with their fingerprints now: at close, and every minute while it writes, so that the next
/// open reads only what changed since. Files that were there at the writer's open are never
/// added here: only an open that read them does (so a ledger removed while a writer runs makes
/// the next open read them again).
fn record_tables(db: &DB, path: &Path, at_open: &std::collections::HashSet<String>) {
    let Ok(files) = db.live_files() else {
        return;
    };
    let mut ledger = verified::Ledger::load(path);
    let live = live_names(&files);
    for name in &live {
        if !at_open.contains(name) && !ledger.names(name) {
            if let Some(fp) = verified::Fingerprint::of(&path.join(name)) {
                ledger.insert(name, fp);
            }
        }
    }
    ledger.retain_live(&live);
    ledger.save(path);
}

/// Before a writer opens an existing store (which would let RocksDB delete files it does not
/// know, and replay its log), and before a follower opens one that no writer holds (a
/// follower's view silently leaves out table files it cannot open): open it read-only, which
/// changes nothing, and check it, and read every block of the table files not verified before
/// in their present form (`all`: of every table file). `writer` also checks the object-change
/// requests a writer applies.
fn preflight(path: &Path, opts: &StoreOptions, writer: bool, all: bool) -> Result<usize> {
    let cfs: Vec<ColumnFamilyDescriptor> = ALL_CFS
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, db_options(opts, false)))
        .collect();
    let db = DB::open_cf_descriptors_read_only(&db_options(opts, false), path, cfs, false)
        .map_err(|e| {
            let mut err = map_db(
                &format!("cannot open {} (checked before writing)", path.display()),
                &e,
            );
            if err.kind() != ErrorKind::Corruption {
                err = Error::corruption(err.message().to_owned());
            }
            err
        })?;
    match verify_db(&db, path, witness(path)) {
        // Created but never written to (a writer that stopped right after creating it).
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        r => r?,
    }
    let read = verify_tables(&db, path, all)?;
    if writer {
        // The object-change requests a writer (ingestion) will apply: readable, none lost.
        objects::verify_requests(&db, path)?;
    }
    Ok(read)
}

/// Removes the follower directories of processes that are gone (a process that exits without
/// dropping its store, or is killed, leaves its directory behind).
fn sweep_secondary_dirs() {
    // Liveness is read from /proc; without it nothing is removed.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("changetrack-secondary-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `path`.
    ///
    /// A second writer (another process, or this one) gets `Locked`. With
    /// `StoreOptions::read_only` the store is opened as a follower of the writer: see
    /// [`Store::refresh`].
    ///
    /// # Errors
    /// `Locked`, `InvalidArgument` for bad options or a newer format, `Corruption`, `Io`.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Self> {
        Self::open_checked(path.as_ref(), opts, true)
    }

    /// [`Store::open`]; `verify: false` skips the open-time integrity checks (for `check` and
    /// `salvage`, which read what a damaged store still holds).
    fn open_checked(path: &Path, opts: StoreOptions, verify: bool) -> Result<Self> {
        opts.validate()?;
        let path = path.to_path_buf();
        if !opts.read_only && opts.create_if_missing {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        }
        let existed = path.join("CURRENT").exists();
        if !existed {
            let leftovers = store_files(&path);
            if let Some(f) = leftovers.first() {
                return Err(Error::corruption(format!(
                    "the store in {} is damaged: its CURRENT file is missing but it holds {} (and {} more store files); nothing was changed",
                    path.display(),
                    f.display(),
                    leftovers.len() - 1
                )));
            }
        }
        if !existed && (opts.read_only || !opts.create_if_missing) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no store in {}", path.display()),
            ));
        }
        let oldest_kept = Arc::new(AtomicU64::new(0));
        let (db, lock, secondary, tables_at_open) = if opts.read_only {
            sweep_secondary_dirs();
            let dir = std::env::temp_dir().join(format!(
                "changetrack-secondary-{}-{}",
                std::process::id(),
                SECONDARY_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            if verify && !writer_running(&path) {
                preflight(&path, &opts, false, false)?;
            }
            let o = db_options(&opts, false);
            let cfs: Vec<ColumnFamilyDescriptor> = ALL_CFS
                .iter()
                .map(|n| ColumnFamilyDescriptor::new(*n, db_options(&opts, false)))
                .collect();
            let mut o2 = o;
            o2.set_max_open_files(-1);
            // Each catch-up applies the writer's new table files; with the default 16 opening
            // threads it started 16 threads every time (about 7 ms per catch-up).
            o2.set_max_file_opening_threads(1);
            let db = DB::open_cf_descriptors_as_secondary(&o2, &path, &dir, cfs)
                .map_err(|e| map_db(&format!("cannot open {} for reading", path.display()), &e))?;
            if verify {
                // With no writer running, what it acknowledged must all be readable.
                let running = writer_running(&path);
                let acknowledged = if running { None } else { witness(&path) };
                let mut r = verify_db(&db, &path, acknowledged);
                // A running writer may have compacted away a file this view still listed:
                // catch up and look again before calling it damage.
                for _ in 0..3 {
                    if r.is_ok() || !running {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    db.try_catch_up_with_primary()
                        .map_err(|e| map_db("cannot catch up with the writer", &e))?;
                    r = verify_db(&db, &path, None);
                }
                r?;
            }
            (db, None, Some(dir), std::collections::HashSet::new())
        } else {
            let lock = lock_writer(&path)?;
            if existed {
                preflight(&path, &opts, true, false)?;
            }
            // The table files there before this writer (read and verified by the preflight, or
            // recorded as verified earlier): `record_tables` leaves them to the opens that
            // read them.
            let before: std::collections::HashSet<String> = std::fs::read_dir(&path)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| n.ends_with(".sst"))
                        .collect()
                })
                .unwrap_or_default();
            let o = db_options(&opts, true);
            let cfs: Vec<ColumnFamilyDescriptor> = ALL_CFS
                .iter()
                .map(|n| {
                    let mut o = db_options(&opts, true);
                    if *n == CF_BY_OBJECT {
                        let oldest = Arc::clone(&oldest_kept);
                        o.set_compaction_filter(
                            "changetrack-trimmed-runs",
                            move |_, _: &[u8], v: &[u8]| {
                                let last = seq_from(v).unwrap_or(u64::MAX);
                                if last < oldest.load(Ordering::Relaxed) {
                                    rocksdb::compaction_filter::Decision::Remove
                                } else {
                                    rocksdb::compaction_filter::Decision::Keep
                                }
                            },
                        );
                    }
                    ColumnFamilyDescriptor::new(*n, o)
                })
                .collect();
            let db = DB::open_cf_descriptors(&o, &path, cfs)
                .map_err(|e| map_db(&format!("cannot open {}", path.display()), &e))?;
            (db, Some(lock), None, before)
        };
        let tail_file = if lock.is_some() {
            let p = path.join(TAIL_FILE);
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&p)
                    .map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?,
            )
        } else {
            None
        };
        let inner = Inner {
            db,
            path,
            opts,
            dict: RwLock::new(DictInner::default()),
            writer: Mutex::new(Tail::default()),
            committed: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            _lock: lock,
            _secondary_dir: secondary,
            subscribers: Mutex::new(Vec::new()),
            oldest_kept,
            tail_file,
            ledger_at: Mutex::new(std::time::Instant::now()),
            tables_at_open,
        };
        let store = Self {
            inner: Arc::new(inner),
            follow: Arc::default(),
        };
        if verify {
            store.check_format()?;
            store.load_dict()?;
        } else {
            // What can still be read of a damaged store: errors are the check's findings.
            for r in [store.check_format(), store.load_dict()] {
                if let Err(e) = r {
                    tracing::warn!("{e}");
                }
            }
        }
        let tail = if verify {
            store.read_tail()?
        } else {
            store.read_tail().unwrap_or_else(|e| {
                tracing::warn!("{e}");
                Tail::default()
            })
        };
        if !store.inner.opts.read_only {
            store.recover(&tail)?;
        }
        store.inner.committed.store(tail.last_seq, Ordering::SeqCst);
        store
            .inner
            .oldest_kept
            .store(tail.oldest_seq, Ordering::Relaxed);
        *store.inner.writer.lock().map_err(|_| poison_err())? = tail;
        store.announce(tail.last_seq);
        Ok(store)
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.inner
            .db
            .cf_handle(name)
            .ok_or_else(|| Error::corruption(format!("column family {name} is missing")))
    }

    fn check_format(&self) -> Result<()> {
        let meta = self.cf(CF_META)?;
        match self
            .inner
            .db
            .get_cf(meta, KEY_FORMAT)
            .map_err(|e| map_db("cannot read the format", &e))?
        {
            Some(v) => {
                let v: [u8; 4] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::corruption("bad format version"))?;
                let v = u32::from_be_bytes(v);
                if v != FORMAT_VERSION {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("store format {v} is not supported (this build reads format {FORMAT_VERSION})"),
                    ));
                }
            }
            None if !self.inner.opts.read_only => {
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                let mut b = WriteBatch::default();
                b.put_cf(meta, KEY_FORMAT, FORMAT_VERSION.to_be_bytes());
                self.inner
                    .db
                    .write_opt(b, &wo)
                    .map_err(|e| map_db("cannot write the format", &e))?;
            }
            None => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "the store has not been initialised yet",
                ))
            }
        }
        Ok(())
    }

    fn load_dict(&self) -> Result<()> {
        let cf = self.cf(CF_DICT)?;
        let mut d = DictInner::default();
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k.len() != 9 {
                return Err(Error::corruption("bad dictionary key"));
            }
            let id = seq_from(&k[1..])?;
            match k[0] {
                b't' => {
                    let t = Arc::new(codec::decode_table(v)?);
                    d.table_ids.insert(v.to_vec(), id);
                    d.tables.insert(id, t);
                }
                b's' => {
                    let s: Arc<str> = Arc::from(
                        std::str::from_utf8(v)
                            .map_err(|_| Error::corruption("bad dictionary string"))?,
                    );
                    d.string_ids.insert(Arc::clone(&s), id);
                    d.strings.insert(id, s);
                }
                _ => return Err(Error::corruption("bad dictionary key")),
            }
            d.next_id = d.next_id.max(id + 1);
            it.next();
        }
        it.status()
            .map_err(|e| map_db("cannot read the dictionary", &e))?;
        *self.inner.dict.write().map_err(|_| poison_err())? = d;
        Ok(())
    }

    fn read_tail(&self) -> Result<Tail> {
        let cf = self.cf(CF_STATE)?;
        match self
            .inner
            .db
            .get_cf(cf, KEY_TAIL)
            .map_err(|e| map_db("cannot read the tail", &e))?
        {
            Some(v) => Tail::decode(&v),
            None => Ok(Tail::default()),
        }
    }

    /// Open-time recovery: records written by chunks of a transaction that never committed
    /// (the process died in the middle of a large transaction) are removed.
    fn recover(&self, tail: &Tail) -> Result<()> {
        let cf = self.cf(CF_RECORDS)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_to_last();
        if let Some(k) = it.key() {
            let last = seq_from(k)?;
            if last > tail.last_seq {
                tracing::info!(
                    from = tail.last_seq + 1,
                    to = last,
                    "removing records of an uncommitted transaction"
                );
                let mut b = WriteBatch::default();
                b.delete_range_cf(cf, seq_key(tail.last_seq + 1), seq_key(u64::MAX));
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                self.inner
                    .db
                    .write_opt(b, &wo)
                    .map_err(|e| map_db("cannot remove uncommitted records", &e))?;
                self.scrub_object_index(tail.last_seq)?;
            }
        }
        it.status().map_err(|e| map_db("cannot read records", &e))?;
        Ok(())
    }

    /// Removes object index runs that start after `last_seq` (written by the chunks of a
    /// transaction that never committed). Only after a crash inside a large transaction.
    fn scrub_object_index(&self, last_seq: u64) -> Result<()> {
        let cf = self.cf(CF_BY_OBJECT)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_to_first();
        let mut b = WriteBatch::default();
        let mut n = 0u64;
        while let Some(k) = it.key() {
            let first = k
                .len()
                .checked_sub(8)
                .and_then(|at| k.get(at..))
                .map_or(Ok(0), seq_from)?;
            if first > last_seq {
                b.delete_cf(cf, k);
                n += 1;
            }
            it.next();
        }
        it.status()
            .map_err(|e| map_db("cannot read the object index", &e))?;
        if n > 0 {
            tracing::info!(
                entries = n,
                "removing object index entries of an uncommitted transaction"
            );
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            self.inner
                .db
                .write_opt(b, &wo)
                .map_err(|e| map_db("cannot clean the object index", &e))?;
        }
        Ok(())
    }

    /// The directory of the store.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Tells waiting consumers that records up to `last_seq` are committed: in this process
    /// through their channels, in others through the tail file.
    fn announce(&self, last_seq: u64) {
        if let Some(f) = &self.inner.tail_file {
            use std::os::unix::fs::FileExt;
            if let Err(e) = f.write_all_at(&last_seq.to_le_bytes(), 0) {
                tracing::warn!("cannot update {TAIL_FILE}: {e}");
            }
            if let Ok(mut at) = self.inner.ledger_at.try_lock() {
                if at.elapsed() >= LEDGER_EVERY {
                    *at = std::time::Instant::now();
                    if !self.inner.poisoned.load(Ordering::SeqCst) {
                        record_tables(&self.inner.db, &self.inner.path, &self.inner.tables_at_open);
                    }
                }
            }
        }
        if let Ok(mut subs) = self.inner.subscribers.lock() {
            subs.retain(|tx| {
                !matches!(
                    tx.try_send(()),
                    Err(crossbeam_channel::TrySendError::Disconnected(()))
                )
            });
        }
    }

    /// A channel that receives a token whenever records are committed (coalesced: at most one
    /// token waits). In the writer's process the writer's commits send it. On a follower
    /// (`read_only`), the first call starts one watcher thread per store handle: it reads the
    /// writer's tail file every millisecond, catches up with the writer ([`Store::refresh`])
    /// when it moved, and then wakes every subscriber, so that many waiting readers cost one
    /// poll instead of one each.
    #[must_use]
    pub fn subscribe(&self) -> crossbeam_channel::Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if let Ok(mut subs) = self.inner.subscribers.lock() {
            subs.push(tx);
        }
        if self.inner.opts.read_only {
            self.start_watcher();
        }
        rx
    }

    fn start_watcher(&self) {
        let Ok(mut w) = self.follow.thread.lock() else {
            return;
        };
        if w.is_some() {
            return;
        }
        let store = Store {
            inner: Arc::clone(&self.inner),
            follow: Arc::default(),
        };
        let stop = Arc::clone(&self.follow.stop);
        let spawned = std::thread::Builder::new()
            .name(WATCHER_THREAD.into())
            .spawn(move || {
                let mut failing = false;
                let mut tail = TailReader::default();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                    match tail.read(&store) {
                        Ok(Some(w)) if w > store.last_seq() => match store.refresh() {
                            Ok(()) => {
                                failing = false;
                                store.announce(store.last_seq());
                            }
                            Err(e) => {
                                if !failing {
                                    tracing::warn!("cannot follow the writer: {e}");
                                }
                                failing = true;
                                // Wake the readers anyway: their own reads report the error.
                                store.announce(store.last_seq());
                            }
                        },
                        Ok(_) => {}
                        Err(e) => {
                            if !failing {
                                tracing::warn!("cannot read the writer's tail: {e}");
                            }
                            failing = true;
                        }
                    }
                }
            });
        match spawned {
            Ok(h) => *w = Some(h),
            Err(e) => tracing::warn!("cannot start the follower's watcher thread: {e}"),
        }
    }

    /// The path of the writer's tail file.
    fn tail_path(&self) -> PathBuf {
        self.inner.path.join(TAIL_FILE)
    }

    /// Whether this handle is the store's writer (as opposed to a read-only follower).
    #[must_use]
    pub fn is_writer(&self) -> bool {
        !self.inner.opts.read_only
    }

    /// The last seq the writer (possibly in another process) has committed, read from its tail
    /// file: one small read, cheap enough to poll. `None` if no writer ever ran.
    ///
    /// # Errors
    /// `Io`.
    pub fn writer_last_seq(&self) -> Result<Option<u64>> {
        let p = self.tail_path();
        match std::fs::read(&p) {
            Ok(b) => Ok(tail_seq(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", p.display()), e)),
        }
    }

    /// For a read-only store: catch up with the writer's latest commits.
    ///
    /// # Errors
    /// `Io` when the catch-up fails.
    pub fn refresh(&self) -> Result<()> {
        if !self.inner.opts.read_only {
            return Ok(());
        }
        self.inner
            .db
            .try_catch_up_with_primary()
            .map_err(|e| map_db("cannot catch up with the writer", &e))?;
        // New dictionary entries are loaded when a record needs them (see decode_record).
        let tail = self.read_tail()?;
        self.inner.committed.store(tail.last_seq, Ordering::SeqCst);
        Ok(())
    }

    /// The last committed sequence number (0 for an empty store).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.inner.committed.load(Ordering::SeqCst)
    }

    /// The stored resume position.
    ///
    /// # Errors
    /// `Corruption` for a malformed stored position.
    pub fn source_position(&self) -> Result<Option<SourcePosition>> {
        let cf = self.cf(CF_STATE)?;
        match self
            .inner
            .db
            .get_cf(cf, KEY_SOURCE)
            .map_err(|e| map_db("cannot read the source position", &e))?
        {
            Some(v) => Ok(Some(SourcePosition::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.inner.opts.read_only {
            return Err(Error::invalid("the store is open read-only"));
        }
        if self.inner.poisoned.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Poisoned,
                "an earlier write failed: the store refuses writes until it is reopened",
            ));
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        #[cfg(feature = "failpoints")]
        if failpoints::take(failpoints::BEFORE_WRITE) {
            self.inner.poisoned.store(true, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Io,
                "injected write failure (store::append::before_write)",
            ));
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.inner.opts.sync == SyncMode::PerBatch);
        if let Err(e) = self.inner.db.write_opt(batch, &wo) {
            self.inner.poisoned.store(true, Ordering::SeqCst);
            return Err(map_db(
                "write failed; the store is now read-only until reopened",
                &e,
            ));
        }
        #[cfg(feature = "failpoints")]
        if failpoints::take(failpoints::SYNC) {
            // The batch reached RocksDB but its durability is unknown: fail-stop.
            self.inner.poisoned.store(true, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Io,
                "injected sync failure (store::append::sync)",
            ));
        }
        Ok(())
    }

    /// Starts appending one source transaction. Records are added with
    /// [`TxnWriter::push`]; nothing is visible to readers until [`TxnWriter::commit`].
    ///
    /// # Errors
    /// `Poisoned` after an earlier write failure; `InvalidArgument` on a read-only store.
    pub fn begin(&self) -> Result<TxnWriter<'_>> {
        self.check_writable()?;
        let tail = *self.inner.writer.lock().map_err(|_| poison_err())?;
        Ok(TxnWriter {
            store: self,
            tail,
            batch: WriteBatch::default(),
            pending: 0,
            first_seq: tail.last_seq + 1,
            index_cp: Vec::new(),
            index_ts: Vec::new(),
            txn_starts: Vec::new(),
            buf: Vec::with_capacity(1024),
            dict_dirty: false,
            committed: false,
            table_run: None,
            db_run: None,
            run_keys: Vec::new(),
            chunk_index_keys: Vec::new(),
        })
    }

    /// Appends a whole transaction and the resume position after it, atomically.
    ///
    /// # Errors
    /// As [`Store::begin`] and [`TxnWriter::commit`].
    pub fn append(
        &self,
        records: &[ChangeRecord],
        position: Option<&SourcePosition>,
    ) -> Result<(u64, u64)> {
        let mut w = self.begin()?;
        for r in records {
            w.push(r)?;
        }
        w.commit(position)
    }

    /// Records the resume position alone (after source transactions that stored nothing).
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn set_position(&self, position: &SourcePosition) -> Result<()> {
        self.begin()?.commit(Some(position)).map(|_| ())
    }

    fn dict_read(&self) -> Result<std::sync::RwLockReadGuard<'_, DictInner>> {
        self.inner.dict.read().map_err(|_| poison_err())
    }

    fn decode_record(&self, seq: u64, value: &[u8]) -> Result<ChangeRecord> {
        self.decode_record_cached(seq, value, &mut codec::DecodeCache::default())
    }

    fn decode_record_cached(
        &self,
        seq: u64,
        value: &[u8],
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        let shared = cache.share(value);
        self.decode_shared(seq, &shared, cache)
    }

    /// Decodes a record from its own bytes (string values share them).
    fn decode_shared(
        &self,
        seq: u64,
        shared: &bytes::Bytes,
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        self.read_failpoint(seq)?;
        self.with_dict(seq, &mut |d| {
            codec::decode_cached(shared, shared, seq, d, cache)
        })
    }

    /// The `READ` failpoint: an EIO for record `seq`, as a failing disk gives.
    #[allow(clippy::unused_self, unused_variables)]
    fn read_failpoint(&self, seq: u64) -> Result<()> {
        #[cfg(feature = "failpoints")]
        if failpoints::take(failpoints::READ) {
            return Err(Error::io(
                format!(
                    "cannot read record {seq} from {}",
                    self.inner.path.display()
                ),
                std::io::Error::from_raw_os_error(5),
            ));
        }
        Ok(())
    }

    /// `decode(dictionary)` for record `seq`; on a follower that fails once more after
    /// reloading the dictionary (the record may use entries it has not loaded yet). The error
    /// names the record.
    fn with_dict<T>(
        &self,
        seq: u64,
        decode: &mut dyn FnMut(&dyn codec::Dictionary) -> Result<T>,
    ) -> Result<T> {
        match decode(&LazyDict(self)) {
            Ok(r) => Ok(r),
            Err(_) if self.inner.opts.read_only => {
                self.load_dict()?;
                decode(&LazyDict(self))
            }
            Err(e) => Err(e),
        }
        .map_err(|e| Error::new(e.kind(), format!("record {seq}: {}", e.message())))
    }

    /// Appends the DTS Avro encoding of stored record `seq` (its bytes `value`) to `out`
    /// without building its values, and returns the record without its images.
    fn write_avro_stored(
        &self,
        seq: u64,
        value: &[u8],
        cache: &mut codec::DecodeCache,
        (writer, out): (&mut AvroWriter, &mut Vec<u8>),
    ) -> Result<ChangeRecord> {
        self.read_failpoint(seq)?;
        self.with_dict(seq, &mut |d| {
            writer.write_from_stored(out, value, seq, d, cache)
        })
    }

    /// The record with sequence number `seq`.
    ///
    /// # Errors
    /// `OutOfRange` (stating the range) when `seq` is not stored; `Corruption`.
    pub fn get(&self, seq: u64) -> Result<ChangeRecord> {
        let committed = self.last_seq();
        let cf = self.cf(CF_RECORDS)?;
        let v = if seq == 0 || seq > committed {
            None
        } else {
            self.inner
                .db
                .get_pinned_cf(cf, seq_key(seq))
                .map_err(|e| map_db("cannot read a record", &e))?
        };
        match v {
            Some(v) => self.decode_record(seq, &v),
            None => Err(self.out_of_range(&format!("seq {seq}"))),
        }
    }

    fn out_of_range(&self, what: &str) -> Error {
        match self.data_range() {
            Ok(Some(r)) => Error::new(
                ErrorKind::OutOfRange,
                format!("{what} is outside the stored data ({r})"),
            ),
            _ => Error::new(ErrorKind::OutOfRange, format!("{what}: the store is empty")),
        }
    }

    /// The error for records `from..to` (exclusive) absent from a scan: retention removed them
    /// while the reader was behind (`OutOfRange`), or the store lost them (`Corruption`: records
    /// are dense by seq, so a gap inside the stored range is damage, never an empty stretch).
    pub(crate) fn missing(&self, from: u64, to: u64) -> Error {
        let oldest = self.read_tail().map_or(0, |t| t.oldest_seq);
        if from < oldest {
            return self.out_of_range(&format!("seq {from}"));
        }
        let what = if to <= from + 1 {
            format!("record {from} is")
        } else {
            format!("records {from} to {} are", to - 1)
        };
        Error::corruption(format!(
            "{what} missing from the store {}: a table file was lost or damaged (`changetrack check --store {}` tells what can be saved)",
            self.inner.path.display(),
            self.inner.path.display()
        ))
    }

    fn first_seq(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let cf = self.cf(CF_RECORDS)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_to_first();
        let r = match (it.key(), it.value()) {
            (Some(k), Some(v)) => {
                let s = seq_from(k)?;
                (s <= self.last_seq()).then(|| (s, v.to_vec()))
            }
            _ => None,
        };
        it.status().map_err(|e| map_db("cannot read records", &e))?;
        Ok(r)
    }

    /// The sequence number of the oldest stored record, without decoding it (`None` for an
    /// empty store).
    ///
    /// # Errors
    /// `Corruption` or `Io` reading it.
    pub fn oldest_seq(&self) -> Result<Option<u64>> {
        Ok(self.first_seq()?.map(|(s, _)| s))
    }

    /// A stable identifier of the store: RocksDB's database identity, created with the store
    /// and kept for its lifetime (it survives a restart and a move of the directory).
    ///
    /// # Errors
    /// `Io` or `Corruption` when the identity file is missing or unreadable.
    pub fn identity(&self) -> Result<String> {
        let p = self.inner.path.join("IDENTITY");
        let mut f = std::fs::File::open(&p)
            .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, 256), &mut b)
            .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
        let id = String::from_utf8(b)
            .map_err(|_| Error::corruption(format!("{} is not text", p.display())))?;
        let id = id.trim();
        if id.is_empty() || id.len() > 128 {
            return Err(Error::corruption(format!("{} is damaged", p.display())));
        }
        Ok(id.to_owned())
    }

    /// The oldest and newest stored records.
    ///
    /// # Errors
    /// `Corruption` or `Io` reading them.
    pub fn data_range(&self) -> Result<Option<DataRange>> {
        let last = self.last_seq();
        if last == 0 {
            return Ok(None);
        }
        let Some((first, v)) = self.first_seq()? else {
            return Ok(None);
        };
        let o = self.decode_record(first, &v)?;
        let n = self.get_raw(last)?;
        Ok(Some(DataRange {
            oldest: RangeEnd {
                seq: first,
                checkpoint: o.checkpoint,
                timestamp: o.timestamp,
            },
            newest: RangeEnd {
                seq: last,
                checkpoint: n.checkpoint,
                timestamp: n.timestamp,
            },
        }))
    }

    fn get_raw(&self, seq: u64) -> Result<ChangeRecord> {
        let cf = self.cf(CF_RECORDS)?;
        match self
            .inner
            .db
            .get_pinned_cf(cf, seq_key(seq))
            .map_err(|e| map_db("cannot read a record", &e))?
        {
            Some(v) => self.decode_record(seq, &v),
            None => Err(Error::corruption(format!("record {seq} is missing"))),
        }
    }

    /// Resolves a start position to a sequence number.
    ///
    /// # Errors
    /// `OutOfRange` stating the data range when the position is older than the oldest record
    /// (it never silently jumps) or newer than the newest.
    pub fn resolve(&self, from: ReadFrom) -> Result<u64> {
        let last = self.last_seq();
        let oldest = self.first_seq()?.map(|(s, _)| s);
        let Some(oldest) = oldest else {
            return match from {
                ReadFrom::Earliest | ReadFrom::Seq(_) => Ok(1),
                _ => Err(self.out_of_range("the position")),
            };
        };
        match from {
            ReadFrom::Earliest => Ok(oldest),
            ReadFrom::Seq(s) if s < oldest => Err(self.out_of_range(&format!("seq {s}"))),
            ReadFrom::Seq(s) => Ok(s),
            ReadFrom::Checkpoint(cp) => {
                let first = self.get_raw(oldest)?;
                if cp < first.checkpoint {
                    return Err(self.out_of_range(&format!("checkpoint {cp}")));
                }
                let cf = self.cf(CF_BY_CHECKPOINT)?;
                let mut it = self.inner.db.raw_iterator_cf(cf);
                it.seek(checkpoint_key(cp));
                match it.value() {
                    Some(v) => Ok(seq_from(v)?.max(oldest)),
                    None => {
                        it.status()
                            .map_err(|e| map_db("cannot read the checkpoint index", &e))?;
                        let newest = self.get_raw(last)?;
                        if cp > newest.checkpoint {
                            Err(self.out_of_range(&format!("checkpoint {cp}")))
                        } else {
                            Ok(last + 1)
                        }
                    }
                }
            }
            ReadFrom::Timestamp(ts) => {
                let first = self.get_raw(oldest)?;
                if ts < first.timestamp {
                    return Err(self.out_of_range(&format!("time {ts}")));
                }
                let cf = self.cf(CF_BY_TIME)?;
                let mut it = self.inner.db.raw_iterator_cf(cf);
                it.seek(time_key(ts));
                match it.value() {
                    Some(v) => Ok(seq_from(v)?.max(oldest)),
                    None => {
                        it.status()
                            .map_err(|e| map_db("cannot read the time index", &e))?;
                        Err(self.out_of_range(&format!("time {ts}")))
                    }
                }
            }
        }
    }

    /// Iterates committed records from `from`, over a consistent snapshot taken now.
    ///
    /// # Errors
    /// As [`Store::resolve`].
    pub fn iter(&self, from: ReadFrom) -> Result<RecordIter<'_>> {
        let start = self.resolve(from)?;
        self.iter_between(start, self.last_seq(), false)
    }

    /// The iterator of [`Store::iter`] (`range: false`) and [`Store::iter_range`].
    fn iter_between(&self, start: u64, end: u64, range: bool) -> Result<RecordIter<'_>> {
        let cf = self.cf(CF_RECORDS)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(seq_key(end.saturating_add(1)).to_vec());
        if range {
            ro.set_readahead_size(RANGE_READAHEAD);
            ro.fill_cache(false);
        }
        // Otherwise no explicit readahead and the block cache filled as usual: most iterators
        // are seeks that read a few records (a 2 MiB readahead made each cost 0.4 ms), and
        // RocksDB grows its own readahead when an iterator turns out to scan sequentially.
        let mut it = self.inner.db.raw_iterator_cf_opt(cf, ro);
        it.seek(seq_key(start));
        Ok(RecordIter {
            store: self,
            it: Some(it),
            end,
            done: false,
            cache: codec::DecodeCache::default(),
            read: 0,
            ahead: None,
            failed: None,
            expect: start,
        })
    }

    /// Iterates the committed records `from..=to` (`to` clipped to the last committed one),
    /// with the settings of a scan: a readahead and no block-cache fill. For a caller that
    /// knows it reads a whole range, such as a Kafka batch of 1024 records: filling the cache
    /// with blocks that are read once evicted (and freed) others at every block, a sixth of a
    /// scan's time.
    ///
    /// # Errors
    /// As [`Store::resolve`].
    pub fn iter_range(&self, from: u64, to: u64) -> Result<RecordIter<'_>> {
        let start = self.resolve(ReadFrom::Seq(from))?;
        self.iter_between(start, self.last_seq().min(to), true)
    }

    /// Calls `f` with each run `(first, last)` of the object index for `database` (and `table`)
    /// that overlaps `lo..=hi`, clipped to it, in seq order (`reverse`: newest first), until
    /// `f` returns `false`.
    pub(crate) fn for_each_run(
        &self,
        database: &str,
        table: Option<&str>,
        lo: u64,
        hi: u64,
        reverse: bool,
        mut f: impl FnMut(u64, u64) -> Result<bool>,
    ) -> Result<()> {
        if lo > hi {
            return Ok(());
        }
        let cf = self.cf(CF_BY_OBJECT)?;
        let prefix = object_prefix(database, table);
        let plen = prefix.len();
        let run = |k: &[u8], v: &[u8]| -> Result<Option<(u64, u64)>> {
            if k.len() != plen + 8 || !k.starts_with(&prefix) {
                return Ok(None);
            }
            Ok(Some((seq_from(&k[plen..])?, seq_from(v)?)))
        };
        let mut it = self.inner.db.raw_iterator_cf(cf);
        if reverse {
            it.seek_for_prev(object_key(&prefix, hi));
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let Some((first, last)) = run(k, v)? else {
                    break;
                };
                if last < lo {
                    break;
                }
                if !f(first.max(lo), last.min(hi))? {
                    return Ok(());
                }
                it.prev();
            }
        } else {
            // A run that starts before `lo` may reach into the range.
            it.seek_for_prev(object_key(&prefix, lo));
            if it.key().is_none_or(|k| !k.starts_with(&prefix)) {
                it.seek(object_key(&prefix, lo));
            }
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let Some((first, last)) = run(k, v)? else {
                    break;
                };
                if first > hi {
                    break;
                }
                if last >= lo && !f(first.max(lo), last.min(hi))? {
                    return Ok(());
                }
                it.next();
            }
        }
        it.status()
            .map_err(|e| map_db("cannot read the object index", &e))
    }

    /// Calls `f` with each committed record of `lo..=hi` (newest first when `reverse`) until it
    /// returns `false`.
    pub(crate) fn scan(
        &self,
        lo: u64,
        hi: u64,
        reverse: bool,
        f: impl FnMut(ChangeRecord) -> Result<bool>,
    ) -> Result<bool> {
        self.record_cursor()?.scan(lo, hi, reverse, f)
    }

    /// A reusable reader of committed record ranges (one RocksDB iterator for many ranges).
    pub(crate) fn record_cursor(&self) -> Result<RecordCursor<'_>> {
        let cf = self.cf(CF_RECORDS)?;
        let end = self.last_seq();
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(seq_key(end.saturating_add(1)).to_vec());
        let oldest = self.first_seq()?.map_or(end + 1, |(s, _)| s);
        Ok(RecordCursor {
            store: self,
            it: self.inner.db.raw_iterator_cf_opt(cf, ro),
            end,
            oldest,
            cache: codec::DecodeCache::default(),
        })
    }

    /// The tables the store knows, sorted by database and table: those with stored records or
    /// DDL (the object index), those in the table dictionary, and those in the schema history,
    /// each with the column names it has had (in any version; empty when only DDL named it).
    ///
    /// # Errors
    /// `Corruption` for an unreadable index key, `Io`.
    pub fn known_tables(&self) -> Result<Vec<KnownTable>> {
        use std::collections::{BTreeMap, BTreeSet};
        let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for t in self.dict_read()?.tables.values() {
            out.entry((t.database.clone(), t.table.clone()))
                .or_default()
                .extend(t.fields.iter().map(|f| f.name.clone()));
        }
        // 't' len db len table: a name pair at the start of `k`, and its length.
        let names = |k: &[u8]| -> Option<(String, String, usize)> {
            let rest = k.strip_prefix(b"t")?;
            let dl = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            let db = rest.get(2..2 + dl)?;
            let rest2 = rest.get(2 + dl..)?;
            let tl = usize::from(u16::from_be_bytes([*rest2.first()?, *rest2.get(1)?]));
            let table = rest2.get(2..2 + tl)?;
            Some((
                String::from_utf8_lossy(db).into_owned(),
                String::from_utf8_lossy(table).into_owned(),
                1 + 2 + dl + 2 + tl,
            ))
        };
        let cf = self.cf(CF_BY_OBJECT)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek(b"t");
        while let Some(k) = it.key() {
            let Some((db, table, len)) = names(k) else {
                break;
            };
            out.entry((db, table)).or_default();
            // Skip the table's other runs.
            let mut next = k[..len].to_vec();
            next.extend_from_slice(&[0xff; 9]);
            it.seek(&next);
        }
        it.status()
            .map_err(|e| map_db("cannot read the object index", &e))?;
        let cf = self.cf(CF_STATE)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek(b"sh");
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(rest) = k.strip_prefix(b"sh") else {
                break;
            };
            if let Some((db, table, _)) = names(rest) {
                let cols: Vec<crate::record::HistoryColumn> =
                    serde_json::from_slice(v).unwrap_or_default();
                out.entry((db, table))
                    .or_default()
                    .extend(cols.into_iter().map(|c| c.name));
            }
            it.next();
        }
        it.status()
            .map_err(|e| map_db("cannot read the schema history", &e))?;
        Ok(out
            .into_iter()
            .map(|((database, table), columns)| KnownTable {
                database,
                table,
                columns: columns.into_iter().collect(),
            })
            .collect())
    }

    /// The databases with stored records or DDL (the object index), sorted.
    ///
    /// # Errors
    /// `Io`.
    pub fn known_databases(&self) -> Result<Vec<String>> {
        let cf = self.cf(CF_BY_OBJECT)?;
        let mut out = Vec::new();
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek(b"d");
        while let Some(k) = it.key() {
            let Some(rest) = k.strip_prefix(b"d") else {
                break;
            };
            let Some(db) = rest
                .get(..2)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                .and_then(|dl| rest.get(2..2 + dl))
            else {
                break;
            };
            out.push(String::from_utf8_lossy(db).into_owned());
            let mut next = k[..3 + db.len()].to_vec();
            next.extend_from_slice(&[0xff; 9]);
            it.seek(&next);
        }
        it.status()
            .map_err(|e| map_db("cannot read the object index", &e))?;
        Ok(out)
    }

    /// Counters.
    ///
    /// # Errors
    /// `Io` reading them.
    pub fn stats(&self) -> Result<StoreStats> {
        let tail = if self.inner.opts.read_only {
            self.read_tail()?
        } else {
            *self.inner.writer.lock().map_err(|_| poison_err())?
        };
        let disk_bytes = dir_size(&self.inner.path);
        Ok(StoreStats {
            records: tail.records,
            record_bytes: tail.bytes,
            last_seq: tail.last_seq,
            oldest_seq: self.first_seq()?.map_or(0, |(s, _)| s),
            tables: self.dict_read()?.tables.len() as u64,
            disk_bytes,
            source: self.source_position()?,
        })
    }

    /// Applies the retention options: removes whole transactions from the oldest end until the
    /// store is within them (a transaction that straddles the limit is kept whole). The newest
    /// transaction is never removed. Returns the number of records removed.
    ///
    /// # Errors
    /// `Poisoned`, `Io`, `Corruption`.
    pub fn trim(&self) -> Result<u64> {
        let ret = self.inner.opts.retention;
        if ret.max_age.is_none() && ret.max_bytes.is_none() {
            return Ok(0);
        }
        self.check_writable()?;
        let tail = *self.inner.writer.lock().map_err(|_| poison_err())?;
        let Some((oldest, _)) = self.first_seq()? else {
            return Ok(0);
        };
        let newest = self.get_raw(tail.last_seq)?;
        let mut keep = oldest;
        if let Some(age) = ret.max_age {
            let limit =
                i64::from(newest.timestamp) - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            if limit > 0 {
                let limit = u32::try_from(limit).unwrap_or(u32::MAX);
                let cf = self.cf(CF_BY_TIME)?;
                let mut it = self.inner.db.raw_iterator_cf(cf);
                it.seek(time_key(limit));
                let by_age = match it.value() {
                    Some(v) => seq_from(v)?,
                    None => tail.last_seq,
                };
                keep = keep.max(by_age);
            }
        }
        if let Some(max) = ret.max_bytes {
            if tail.bytes > max {
                let cf = self.cf(CF_RECORDS)?;
                let mut it = self.inner.db.raw_iterator_cf(cf);
                it.seek_to_first();
                let mut bytes = tail.bytes;
                while let (Some(k), Some(v)) = (it.key(), it.value()) {
                    if bytes <= max {
                        keep = keep.max(seq_from(k)?);
                        break;
                    }
                    bytes -= (v.len() as u64).min(bytes);
                    it.next();
                }
                it.status().map_err(|e| map_db("cannot read records", &e))?;
                if bytes > max {
                    keep = tail.last_seq;
                }
            }
        }
        // Round down to the start of the transaction that holds `keep`.
        let txns = self.cf(CF_TXNS)?;
        let mut it = self.inner.db.raw_iterator_cf(txns);
        it.seek_for_prev(seq_key(keep));
        let keep_from = match it.key() {
            Some(k) => seq_from(k)?,
            None => return Ok(0),
        };
        if keep_from <= oldest {
            return Ok(0);
        }
        self.remove_before(keep_from)
    }

    fn remove_before(&self, keep_from: u64) -> Result<u64> {
        // Runs of the object index that end before `keep_from` go at their next compaction
        // (queries skip them until then).
        self.inner
            .oldest_kept
            .fetch_max(keep_from, Ordering::Relaxed);
        let mut guard = self.inner.writer.lock().map_err(|_| poison_err())?;
        let cf = self.cf(CF_RECORDS)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_to_first();
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(k) = it.key() {
            if seq_from(k)? >= keep_from {
                break;
            }
            bytes += it.value().map_or(0, |v| v.len() as u64);
            n += 1;
            it.next();
        }
        it.status().map_err(|e| map_db("cannot read records", &e))?;
        if n == 0 {
            return Ok(0);
        }
        let first_kept = self.get_raw(keep_from)?;
        let mut b = WriteBatch::default();
        b.delete_range_cf(cf, seq_key(0), seq_key(keep_from));
        b.delete_range_cf(self.cf(CF_TXNS)?, seq_key(0), seq_key(keep_from));
        b.delete_range_cf(
            self.cf(CF_BY_CHECKPOINT)?,
            checkpoint_key(Checkpoint::default()),
            checkpoint_key(first_kept.checkpoint),
        );
        // Time index entries below the kept range point at removed records; readers clamp to
        // the oldest seq, so only whole seconds strictly before the first kept record go.
        b.delete_range_cf(
            self.cf(CF_BY_TIME)?,
            time_key(0),
            time_key(first_kept.timestamp),
        );
        let mut tail = *guard;
        tail.oldest_seq = keep_from;
        tail.records -= n;
        tail.bytes -= bytes.min(tail.bytes);
        b.put_cf(self.cf(CF_STATE)?, KEY_TAIL, tail.encode());
        self.write(b)?;
        *guard = tail;
        Ok(n)
    }
}

static SECONDARY_COUNTER: AtomicU64 = AtomicU64::new(0);

fn poison_err() -> Error {
    Error::new(ErrorKind::Internal, "a store lock was poisoned by a panic")
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Appends one source transaction: records are buffered and, past
/// `StoreOptions::chunk_records`, written in chunks that stay invisible (and are removed on
/// reopen) until [`TxnWriter::commit`] writes the last chunk with the resume position.
pub struct TxnWriter<'a> {
    store: &'a Store,
    tail: Tail,
    batch: WriteBatch,
    pending: usize,
    first_seq: u64,
    index_cp: Vec<(Checkpoint, u64)>,
    index_ts: Vec<(u32, u64)>,
    txn_starts: Vec<u64>,
    buf: Vec<u8>,
    /// Dictionary entries were assigned in memory by this writer.
    dict_dirty: bool,
    committed: bool,
    /// The open runs of the object index: (database, table) and database.
    table_run: Option<Run>,
    db_run: Option<Run>,
    /// Object index keys in the current batch.
    run_keys: Vec<Vec<u8>>,
    /// Object index keys already written in chunks (removed again if the writer is abandoned).
    chunk_index_keys: Vec<Vec<u8>>,
}

/// A run of consecutive records of one object, for the object index.
struct Run {
    database: String,
    table: Option<String>,
    first: u64,
    last: u64,
}

/// The object a record belongs to, for the object index: its table (row changes; DDL that
/// names a table) and database. BEGIN/COMMIT/HEARTBEAT belong to none.
fn record_object(
    rec: &ChangeRecord,
) -> Option<(std::borrow::Cow<'_, str>, Option<std::borrow::Cow<'_, str>>)> {
    use std::borrow::Cow;
    match rec.op {
        crate::record::Op::Insert | crate::record::Op::Update | crate::record::Op::Delete => {
            let t = rec.table.as_deref()?;
            Some((
                Cow::Borrowed(t.database.as_str()),
                Some(Cow::Borrowed(t.table.as_str())),
            ))
        }
        crate::record::Op::Ddl => {
            let stmt = rec.ddl.as_ref().map_or("", |d| d.statement.as_str());
            let (db, table) = crate::filter::ddl_object(stmt);
            let db = match db {
                Some(d) => Cow::Owned(d),
                None => Cow::Borrowed(rec.database_name()?),
            };
            Some((db, table.map(Cow::Owned)))
        }
        _ => None,
    }
}

impl Drop for TxnWriter<'_> {
    fn drop(&mut self) {
        // Abandoned without commit: ids assigned in memory for entries that never reached disk
        // must not be used by later records. Reload the dictionary from what is stored.
        if !self.committed && !self.chunk_index_keys.is_empty() {
            // Chunks of this transaction reached the store with their object index entries:
            // remove the entries (the records themselves are overwritten or removed on reopen).
            if let Ok(cf) = self.store.cf(CF_BY_OBJECT) {
                let mut b = WriteBatch::default();
                for k in &self.chunk_index_keys {
                    b.delete_cf(cf, k);
                }
                if let Err(e) = self.store.inner.db.write(b) {
                    tracing::warn!("cannot remove the index entries of an abandoned write: {e}");
                }
            }
        }
        if !self.committed && self.dict_dirty {
            if let Err(e) = self.store.load_dict() {
                tracing::warn!("cannot reload the dictionary after an abandoned write: {e}");
                self.store.inner.poisoned.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl TxnWriter<'_> {
    /// Marks the next record as the first of a source transaction (retention trims whole
    /// transactions). Without any mark, the writer's first record is the transaction start.
    pub fn mark_transaction_start(&mut self) {
        let next = self.tail.last_seq + 1;
        if self.txn_starts.last() != Some(&next) {
            self.txn_starts.push(next);
        }
    }

    /// Adds a record; it gets the next sequence number (returned).
    ///
    /// # Errors
    /// `Poisoned`/`Io` when a chunk write fails.
    pub fn push(&mut self, rec: &ChangeRecord) -> Result<u64> {
        let seq = self.tail.last_seq + 1;
        self.buf.clear();
        {
            let mut d = self.store.inner.dict.write().map_err(|_| poison_err())?;
            let mut bd = BatchDict {
                inner: &mut d,
                added: Vec::new(),
            };
            codec::encode(&mut self.buf, rec, &mut bd);
            let dict_cf = self.store.cf(CF_DICT)?;
            self.dict_dirty |= !bd.added.is_empty();
            for (k, v) in bd.added {
                self.batch.put_cf(dict_cf, k, v);
            }
        }
        self.batch
            .put_cf(self.store.cf(CF_RECORDS)?, seq_key(seq), &self.buf);
        if rec.checkpoint != self.tail.last_cp {
            self.index_cp.push((rec.checkpoint, seq));
            self.tail.last_cp = rec.checkpoint;
        }
        if rec.timestamp > self.tail.max_ts {
            self.index_ts.push((rec.timestamp, seq));
            self.tail.max_ts = rec.timestamp;
        }
        self.index_object(rec, seq)?;
        if self.tail.oldest_seq == 0 {
            self.tail.oldest_seq = seq;
        }
        self.tail.last_seq = seq;
        self.tail.bytes += self.buf.len() as u64;
        self.tail.records += 1;
        self.pending += 1;
        if self.pending >= self.store.inner.opts.chunk_records {
            self.flush_chunk()?;
        }
        Ok(seq)
    }

    /// Writes the buffered records as an invisible chunk (the committed tail is unchanged).
    /// Extends or starts the object index runs with the record at `seq`.
    fn index_object(&mut self, rec: &ChangeRecord, seq: u64) -> Result<()> {
        let obj = record_object(rec);
        let (db, table) = match &obj {
            Some((d, t)) => (Some(d.as_ref()), t.as_deref()),
            None => (None, None),
        };
        let extends = |run: &Option<Run>, db: Option<&str>, table: Option<&str>| {
            run.as_ref().is_some_and(|r| {
                r.last + 1 == seq && Some(r.database.as_str()) == db && r.table.as_deref() == table
            })
        };
        if extends(&self.table_run, db, table) && table.is_some() {
            if let Some(r) = self.table_run.as_mut() {
                r.last = seq;
            }
        } else {
            self.flush_run(false)?;
            if let (Some(d), Some(t)) = (db, table) {
                self.table_run = Some(Run {
                    database: d.to_owned(),
                    table: Some(t.to_owned()),
                    first: seq,
                    last: seq,
                });
            }
        }
        if extends(&self.db_run, db, None) {
            if let Some(r) = self.db_run.as_mut() {
                r.last = seq;
            }
        } else {
            self.flush_run(true)?;
            if let Some(d) = db {
                self.db_run = Some(Run {
                    database: d.to_owned(),
                    table: None,
                    first: seq,
                    last: seq,
                });
            }
        }
        Ok(())
    }

    /// Writes the open table run (or database run) into the batch.
    fn flush_run(&mut self, database: bool) -> Result<()> {
        let run = if database {
            self.db_run.take()
        } else {
            self.table_run.take()
        };
        if let Some(r) = run {
            let key = object_key(&object_prefix(&r.database, r.table.as_deref()), r.first);
            self.batch
                .put_cf(self.store.cf(CF_BY_OBJECT)?, &key, seq_key(r.last));
            self.run_keys.push(key);
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<()> {
        self.flush_run(false)?;
        self.flush_run(true)?;
        let batch = std::mem::take(&mut self.batch);
        self.store.write(batch)?;
        self.pending = 0;
        // Written before the commit: remembered, to be removed if the writer is abandoned.
        self.chunk_index_keys.append(&mut self.run_keys);
        Ok(())
    }

    /// Number of records added so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.tail.last_seq + 1 - self.first_seq
    }

    /// Whether no record was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Commits: the last chunk, the index entries, the committed tail and the resume position,
    /// in one atomic batch. Returns the first and last sequence numbers of the transaction
    /// (`(n+1, n)` when it had no records).
    ///
    /// # Errors
    /// `Poisoned`, `Io`.
    pub fn commit(mut self, position: Option<&SourcePosition>) -> Result<(u64, u64)> {
        let s = self.store;
        let mut guard = s.inner.writer.lock().map_err(|_| poison_err())?;
        if !self.is_empty() {
            let txns = s.cf(CF_TXNS)?;
            if self.txn_starts.is_empty() {
                self.txn_starts.push(self.first_seq);
            }
            for seq in self.txn_starts.iter().filter(|&&q| q <= self.tail.last_seq) {
                self.batch.put_cf(txns, seq_key(*seq), []);
            }
        }
        self.flush_run(false)?;
        self.flush_run(true)?;
        let cpcf = s.cf(CF_BY_CHECKPOINT)?;
        for (cp, seq) in &self.index_cp {
            self.batch.put_cf(cpcf, checkpoint_key(*cp), seq_key(*seq));
        }
        let tcf = s.cf(CF_BY_TIME)?;
        for (ts, seq) in &self.index_ts {
            self.batch.put_cf(tcf, time_key(*ts), seq_key(*seq));
        }
        let state = s.cf(CF_STATE)?;
        self.batch.put_cf(state, KEY_TAIL, self.tail.encode());
        if let Some(p) = position {
            self.batch.put_cf(state, KEY_SOURCE, p.encode());
        }
        let batch = std::mem::take(&mut self.batch);
        s.write(batch)?;
        self.committed = true;
        *guard = self.tail;
        s.inner
            .committed
            .store(self.tail.last_seq, Ordering::SeqCst);
        drop(guard);
        s.announce(self.tail.last_seq);
        Ok((self.first_seq, self.tail.last_seq))
    }
}

/// Reads ranges of committed records through one iterator.
pub(crate) struct RecordCursor<'a> {
    store: &'a Store,
    it: DBRawIteratorWithThreadMode<'a, DB>,
    end: u64,
    /// The oldest stored seq when the cursor was made (ranges are clipped to it).
    oldest: u64,
    cache: codec::DecodeCache,
}

impl RecordCursor<'_> {
    /// Calls `f` with each record of `lo..=hi` (newest first when `reverse`) until it returns
    /// `false`; returns whether it never did.
    pub(crate) fn scan(
        &mut self,
        lo: u64,
        hi: u64,
        reverse: bool,
        mut f: impl FnMut(ChangeRecord) -> Result<bool>,
    ) -> Result<bool> {
        let hi = hi.min(self.end);
        let lo = lo.max(self.oldest);
        if lo > hi {
            return Ok(true);
        }
        if reverse {
            self.it.seek_for_prev(seq_key(hi));
        } else {
            self.it.seek(seq_key(lo));
        }
        // Records are dense: every seq of lo..=hi is there, in order.
        let mut expect = if reverse { hi } else { lo };
        let mut left = hi - lo + 1;
        while let (Some(k), Some(v)) = (self.it.key(), self.it.value()) {
            let seq = seq_from(k)?;
            if seq < lo || seq > hi {
                break;
            }
            if seq != expect {
                let (a, b) = if reverse {
                    (seq + 1, expect + 1)
                } else {
                    (expect, seq)
                };
                return Err(self.store.missing(a, b));
            }
            left -= 1;
            expect = if reverse {
                seq.saturating_sub(1)
            } else {
                seq + 1
            };
            let rec = self.store.decode_record_cached(seq, v, &mut self.cache)?;
            if !f(rec)? {
                return Ok(false);
            }
            if reverse {
                self.it.prev();
            } else {
                self.it.next();
            }
        }
        self.it
            .status()
            .map_err(|e| map_db("cannot read records", &e))?;
        if left > 0 {
            let (a, b) = if reverse {
                (lo, expect + 1)
            } else {
                (expect, hi + 1)
            };
            return Err(self.store.missing(a, b));
        }
        Ok(true)
    }
}

/// An iterator over committed records, on a consistent snapshot; cannot outlive its [`Store`].
pub struct RecordIter<'a> {
    store: &'a Store,
    /// The RocksDB iterator; `None` once a read-ahead thread has taken over (so that it does
    /// not keep files pinned).
    it: Option<DBRawIteratorWithThreadMode<'a, DB>>,
    end: u64,
    done: bool,
    cache: codec::DecodeCache,
    /// Records returned so far: after [`SCAN_AFTER`] the iterator switches to scan settings.
    read: u64,
    /// The helper thread of a long scan, once started.
    ahead: Option<Scan>,
    /// An error met after the record just returned, returned next.
    failed: Option<Error>,
    /// The seq the next record must have (records are dense).
    expect: u64,
}

/// Records after which a [`RecordIter`] is taken for a long scan: it reopens its RocksDB
/// iterator with a 2 MiB readahead and without filling the block cache (40% faster scans),
/// on a helper thread unless [`StoreOptions::read_ahead_thread`] is off, while short reads
/// (seeks, consumers near the tail) keep the cached, no-readahead settings.
const SCAN_AFTER: u64 = 4096;

/// The name of a follower's watcher thread.
const WATCHER_THREAD: &str = "changetrack-follow";

/// The readahead of [`Store::iter_range`]: a few data blocks, less than the 2 MiB of a long
/// scan (a range is often a thousand records, about 100 KiB stored).
const RANGE_READAHEAD: usize = 256 << 10;

/// Records per batch the read-ahead thread hands over, at most.
const AHEAD_BATCH: usize = 256;
/// Record bytes per batch, about: a batch closes at 256 records or once it holds 1 MiB.
const AHEAD_BATCH_BYTES: usize = 1 << 20;
/// Batches the read-ahead thread may hold ready. With the one being filled and the one being
/// decoded, at most 6 batches are in memory: about 6 MiB of records (one record over 1 MiB
/// makes a batch of its own).
const AHEAD_QUEUE: usize = 4;
/// Records one [`Store::scan_ahead`] scan reads at most before it ends (the consumer then
/// starts a new one): a scan holds a RocksDB iterator, which keeps the files it reads from
/// being deleted, so a slow consumer must not hold one for hours.
const SCAN_MAX: u64 = 1 << 20;

type AheadBatch = Result<Vec<(u64, bytes::Bytes)>>;

/// A scan's helper thread: it iterates RocksDB (reads, checksums, decompresses) and copies the
/// records into shared chunks; the iterator's caller decodes them. The two overlap, and the
/// caller's thread no longer spends about a third of a scan inside RocksDB.
struct ReadAhead {
    rx: crossbeam_channel::Receiver<AheadBatch>,
    batch: std::vec::IntoIter<(u64, bytes::Bytes)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadAhead {
    fn start(store: &Store, next: u64, end: u64) -> Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(AHEAD_QUEUE);
        let store = store.clone();
        let thread = std::thread::Builder::new()
            .name("changetrack-read-ahead".into())
            .spawn(move || {
                if let Err(e) = read_ahead(&store, next, end, &tx) {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a read thread: {e}")))?;
        Ok(Self {
            rx,
            batch: Vec::new().into_iter(),
            thread: Some(thread),
        })
    }

    /// The next record's seq and bytes; `None` at the end.
    fn next(&mut self) -> Option<Result<(u64, bytes::Bytes)>> {
        loop {
            if let Some(r) = self.batch.next() {
                return Some(Ok(r));
            }
            match self.rx.recv() {
                Ok(Ok(b)) => self.batch = b.into_iter(),
                Ok(Err(e)) => return Some(Err(e)),
                // The thread finished: every record up to the end was handed over, unless it
                // panicked.
                Err(_) => {
                    let panicked = self.thread.take().is_some_and(|t| t.join().is_err());
                    return panicked.then(|| {
                        Err(Error::new(
                            ErrorKind::Internal,
                            "the read-ahead thread of a scan panicked",
                        ))
                    });
                }
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel makes the thread's next send fail, and it stops.
        drop(std::mem::replace(&mut self.rx, crossbeam_channel::never()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An owned scan of committed records on a read-ahead thread, decoded on the caller's thread
/// (see [`StoreOptions::read_ahead_thread`]). It reads the records that were committed when it
/// started.
pub(crate) struct Scan {
    store: Store,
    ahead: ReadAhead,
    cache: codec::DecodeCache,
    done: bool,
}

impl Scan {
    /// The next record; `None` at the end. After an error, `None`.
    pub(crate) fn next(&mut self) -> Option<Result<ChangeRecord>> {
        self.next_as(&mut AsRecord)
    }

    /// The next record, decoded by `d`.
    fn next_as<D: DecodeAs>(&mut self, d: &mut D) -> Option<Result<D::Out>> {
        if self.done {
            return None;
        }
        let r = match self.ahead.next()? {
            Ok((seq, bytes)) => d.shared(&self.store, seq, &bytes, &mut self.cache),
            Err(e) => Err(e),
        };
        self.done = r.is_err();
        Some(r)
    }
}

impl Store {
    /// A read-ahead scan from `from` to the last committed record (at most about a million
    /// records), when that is a long scan (at least 4096 records),
    /// [`StoreOptions::read_ahead_thread`] is on and the thread starts; else `None`.
    /// A position retention removed is reported by the scan's first `next`.
    pub(crate) fn scan_ahead(&self, from: u64) -> Option<Scan> {
        self.scan_ahead_to(from, self.last_seq().min(from.saturating_add(SCAN_MAX)))
    }

    /// [`Store::scan_ahead`] up to `end`.
    fn scan_ahead_to(&self, from: u64, end: u64) -> Option<Scan> {
        if !self.inner.opts.read_ahead_thread || end.saturating_sub(from) < SCAN_AFTER {
            return None;
        }
        match ReadAhead::start(self, from, end) {
            Ok(ahead) => Some(Scan {
                store: self.clone(),
                ahead,
                cache: codec::DecodeCache::default(),
                done: false,
            }),
            // Out of threads: the caller reads on its own thread instead.
            Err(e) => {
                tracing::warn!("{e}; the scan reads on the caller's thread");
                None
            }
        }
    }
}

/// Opens a RocksDB iterator with scan settings on `next`, which must be stored: records are
/// immutable once committed and only retention removes them, from the oldest end. If it
/// overtook the reader, say so rather than skip.
fn scan_iterator(
    store: &Store,
    next: u64,
    end: u64,
) -> Result<DBRawIteratorWithThreadMode<'_, DB>> {
    let cf = store.cf(CF_RECORDS)?;
    let mut ro = ReadOptions::default();
    ro.set_iterate_upper_bound(seq_key(end.saturating_add(1)).to_vec());
    ro.set_readahead_size(2 << 20);
    ro.fill_cache(false);
    let mut it = store.inner.db.raw_iterator_cf_opt(cf, ro);
    it.seek(seq_key(next));
    match it.key() {
        Some(k) if seq_from(k)? == next => Ok(it),
        Some(_) => Err(store.out_of_range(&format!("seq {next}"))),
        None => {
            it.status().map_err(|e| map_db("cannot read records", &e))?;
            Err(store.out_of_range(&format!("seq {next}")))
        }
    }
}

/// The read-ahead thread: sends the records `next..=end` in batches until done or the receiver
/// is gone.
fn read_ahead(
    store: &Store,
    next: u64,
    end: u64,
    tx: &crossbeam_channel::Sender<AheadBatch>,
) -> Result<()> {
    let mut it = scan_iterator(store, next, end)?;
    let mut arena = codec::Arena::default();
    let mut expect = next;
    loop {
        let mut batch = Vec::with_capacity(AHEAD_BATCH);
        let mut bytes = 0;
        while batch.len() < AHEAD_BATCH && bytes < AHEAD_BATCH_BYTES {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let seq = seq_from(k)?;
            if seq > end {
                break;
            }
            if seq != expect {
                // Hand over what came before the gap first.
                let _ = tx.send(Ok(batch));
                return Err(store.missing(expect, seq));
            }
            expect = seq + 1;
            bytes += v.len();
            batch.push((seq, arena.share(v)));
            it.next();
        }
        if batch.is_empty() {
            it.status().map_err(|e| map_db("cannot read records", &e))?;
            if expect <= end {
                return Err(store.missing(expect, end + 1));
            }
            return Ok(());
        }
        if tx.send(Ok(batch)).is_err() {
            return Ok(());
        }
    }
}

impl RecordIter<'_> {
    /// Takes the iterator for a long scan from `next` (the seq the old one stands on): a
    /// read-ahead thread, or a reopened iterator with scan settings.
    fn switch_to_scan(&mut self, next: u64) -> Result<()> {
        match self.store.scan_ahead_to(next, self.end) {
            Some(scan) => {
                self.ahead = Some(scan);
                self.it = None;
            }
            None => self.it = Some(scan_iterator(self.store, next, self.end)?),
        }
        Ok(())
    }

    fn next_ahead<D: DecodeAs>(&mut self, d: &mut D) -> Option<Result<D::Out>> {
        let r = self.ahead.as_mut()?.next_as(d);
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
            self.ahead = None;
        }
        r
    }

    /// The next record's DTS Avro encoding, appended to `out` without building its values
    /// (the same bytes as [`AvroWriter::write`] of the record [`Iterator::next`] would
    /// return), and the record without its images (`before` and `after` are `None`).
    pub fn next_avro(
        &mut self,
        writer: &mut AvroWriter,
        out: &mut Vec<u8>,
    ) -> Option<Result<ChangeRecord>> {
        self.next_as(&mut AsAvro(writer, out))
    }

    fn next_as<D: DecodeAs>(&mut self, d: &mut D) -> Option<Result<D::Out>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.ahead.is_some() {
            return self.next_ahead(d);
        }
        let it = self.it.as_mut()?;
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            self.done = true;
            if let Err(e) = it.status() {
                return Some(Err(map_db("cannot read records", &e)));
            }
            // The snapshot ended before its last committed record: records are missing.
            return (self.expect <= self.end)
                .then(|| Err(self.store.missing(self.expect, self.end + 1)));
        };
        let seq = match seq_from(k) {
            Ok(s) => s,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if seq > self.end {
            self.done = true;
            return (self.expect <= self.end)
                .then(|| Err(self.store.missing(self.expect, self.end + 1)));
        }
        if seq != self.expect {
            self.done = true;
            return Some(Err(self.store.missing(self.expect, seq)));
        }
        self.expect = seq + 1;
        let r = d.slice(self.store, seq, v, &mut self.cache);
        if r.is_err() {
            self.done = true;
            return Some(r);
        }
        self.read += 1;
        if self.read == SCAN_AFTER && seq < self.end {
            // The record in hand is returned either way; a failed switch is the next item.
            if let Err(e) = self.switch_to_scan(seq + 1) {
                self.failed = Some(e);
            }
        } else {
            it.next();
        }
        Some(r)
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<ChangeRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_as(&mut AsRecord)
    }
}

/// What a [`RecordIter`] makes of a stored record's bytes: from the RocksDB iterator's slice,
/// or from the read-ahead thread's owned copy (by default, as from a slice).
trait DecodeAs {
    type Out;
    fn slice(
        &mut self,
        store: &Store,
        seq: u64,
        value: &[u8],
        cache: &mut codec::DecodeCache,
    ) -> Result<Self::Out>;
    fn shared(
        &mut self,
        store: &Store,
        seq: u64,
        value: &bytes::Bytes,
        cache: &mut codec::DecodeCache,
    ) -> Result<Self::Out> {
        self.slice(store, seq, value, cache)
    }
}

/// A [`ChangeRecord`] (string values share the stored bytes).
struct AsRecord;

impl DecodeAs for AsRecord {
    type Out = ChangeRecord;
    fn slice(
        &mut self,
        store: &Store,
        seq: u64,
        value: &[u8],
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        store.decode_record_cached(seq, value, cache)
    }
    fn shared(
        &mut self,
        store: &Store,
        seq: u64,
        value: &bytes::Bytes,
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        store.decode_shared(seq, value, cache)
    }
}

/// The DTS Avro encoding, appended to the buffer (see [`RecordIter::next_avro`]).
struct AsAvro<'w>(&'w mut AvroWriter, &'w mut Vec<u8>);

impl DecodeAs for AsAvro<'_> {
    type Out = ChangeRecord;
    fn slice(
        &mut self,
        store: &Store,
        seq: u64,
        value: &[u8],
        cache: &mut codec::DecodeCache,
    ) -> Result<ChangeRecord> {
        store.write_avro_stored(seq, value, cache, (self.0, self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn auto_traits() {
        assert_send_sync::<Store>();
    }

    fn heartbeat(n: u32) -> ChangeRecord {
        ChangeRecord {
            seq: 0,
            checkpoint: Checkpoint::new(1, n.into()),
            safe_checkpoint: Checkpoint::new(1, n.into()),
            timestamp: n,
            op: crate::record::Op::Heartbeat,
            table: None,
            database: None,
            before: None,
            after: None,
            ddl: None,
            gtid: None,
            xid: None,
            thread_id: None,
            server_id: 1,
            server_version: "test".into(),
            flags: crate::record::RecordFlags::default(),
        }
    }

    /// A store in a fresh directory `changetrack-unit-{name}-PID`, written by three writer
    /// sessions (each open flushes the previous session's log into a table file).
    fn ledger_test_store(name: &str) -> (PathBuf, StoreOptions) {
        let dir =
            std::env::temp_dir().join(format!("changetrack-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = StoreOptions::default();
        for round in 0..3u32 {
            let w = Store::open(&dir, opts.clone()).unwrap();
            let recs: Vec<ChangeRecord> =
                (0..4000).map(|i| heartbeat(round * 4000 + i + 1)).collect();
            w.append(&recs, None).unwrap();
        }
        (dir, opts)
    }

    /// The ledger of verified table files: a writer records the files it made, so the next
    /// open reads none of them again; a file whose modification time changed is read again,
    /// and a flipped byte in it is `Corruption` naming the file.
    #[test]
    fn table_files_are_read_once_and_again_when_they_change() {
        let (dir, opts) = ledger_test_store("ledger");
        let ssts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sst"))
            .collect();
        assert!(!ssts.is_empty(), "no table file was written");
        let ledger = verified::Ledger::load(&dir);
        for p in &ssts {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(ledger.names(name), "the writer did not record {name}");
        }
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), 0);
        // `all` reads every file whatever the ledger says.
        assert!(preflight(&dir, &opts, false, true).unwrap() >= ssts.len());
        // A changed modification time: that file is read again (once).
        let biggest = ssts
            .iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(biggest)
            .unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(5))
            .unwrap();
        drop(f);
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), 1);
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), 0);
        // A flipped byte in the middle of it (its data blocks).
        let mut bytes = std::fs::read(biggest).unwrap();
        let mid = bytes.len() / 3;
        bytes[mid] ^= 0x5a;
        std::fs::write(biggest, &bytes).unwrap();
        let e = preflight(&dir, &opts, false, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corruption, "{e}");
        let name = biggest.file_name().unwrap().to_str().unwrap();
        assert!(e.message().contains(name), "{e}");
        // And again: a damaged file is never recorded as verified.
        assert!(preflight(&dir, &opts, false, false).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A writer records only the table files it made: with the ledger removed while it runs,
    /// the files that were there before it are left unrecorded, and the next open reads them.
    #[test]
    fn a_writer_never_records_files_it_did_not_make() {
        let (dir, opts) = ledger_test_store("ledger-made");
        let ssts = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".sst"))
                .collect()
        };
        let before = ssts(&dir);
        assert!(!before.is_empty(), "no table file was written");
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), 0);
        let w = Store::open(&dir, opts.clone()).unwrap();
        std::fs::remove_file(dir.join(verified::LEDGER_FILE)).unwrap();
        let recs: Vec<ChangeRecord> = (0..4000).map(|i| heartbeat(12_000 + i + 1)).collect();
        w.append(&recs, None).unwrap();
        for n in ALL_CFS {
            let cf = w.inner.db.cf_handle(n).unwrap();
            w.inner.db.flush_cf(&cf).unwrap();
        }
        drop(w);
        let made: Vec<String> = ssts(&dir)
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        let ledger = verified::Ledger::load(&dir);
        for name in &before {
            if dir.join(name).exists() {
                assert!(!ledger.names(name), "{name} was recorded unread");
            }
        }
        for name in &made {
            assert!(
                ledger.names(name),
                "the writer did not record {name}, which it made"
            );
        }
        let still: usize = before.iter().filter(|n| dir.join(n).exists()).count();
        assert!(still > 0);
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), still);
        assert_eq!(preflight(&dir, &opts, false, false).unwrap(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The last handle of a follower closes the store on its own thread (never the watcher's),
    /// before its drop returns, however the watcher thread is busy (a store closed later, on the watcher thread,
    /// raced the process's exit and RocksDB aborted).
    #[test]
    fn a_followers_last_handle_closes_it_at_once() {
        let dir =
            std::env::temp_dir().join(format!("changetrack-unit-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let writer = Store::open(&dir, StoreOptions::default()).unwrap();
        // The writer commits all along, so that the watcher is often busy catching up.
        let stop = Arc::new(AtomicBool::new(false));
        let appender = {
            let (writer, stop) = (writer.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                for n in 1u32.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    writer.append(&[heartbeat(n)], None).unwrap();
                }
            })
        };
        for _ in 0..200 {
            let follower = Store::open(
                &dir,
                StoreOptions {
                    read_only: true,
                    ..StoreOptions::default()
                },
            )
            .unwrap();
            let _wake = follower.subscribe();
            let clone = follower.clone();
            std::thread::sleep(Duration::from_millis(3));
            let secondary = follower.inner._secondary_dir.clone().unwrap();
            assert!(secondary.exists());
            drop(follower);
            assert!(secondary.exists(), "a clone still holds the store");
            drop(clone);
            assert!(!secondary.exists(), "the store outlived its last handle");
        }
        assert_eq!(CLOSED_ON_WATCHER.load(Ordering::SeqCst), 0);
        stop.store(true, Ordering::SeqCst);
        appender.join().unwrap();
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn positions_round_trip() {
        let p = SourcePosition {
            file_name: "mysql-bin.000007".into(),
            file_index: 7,
            offset: 12_345,
            stored_through: Checkpoint::new(7, 12_000),
        };
        assert_eq!(SourcePosition::decode(&p.encode()).unwrap(), p);
        let t = Tail {
            last_seq: 9,
            oldest_seq: 2,
            bytes: 100,
            records: 8,
            max_ts: 77,
            last_cp: Checkpoint::new(1, 2),
        };
        assert_eq!(Tail::decode(&t.encode()).unwrap(), t);
    }
}
