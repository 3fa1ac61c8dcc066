//! Ingestion: binlog files -> decode -> filter -> store, resumable and exact.
//!
//! Source transactions are appended whole: a transaction's records, the index entries and the
//! resume position after it go into one atomic batch (several small transactions may share a
//! batch; a large one is written in invisible chunks, see `store::TxnWriter`). A crash at any
//! moment therefore leaves the store at a transaction boundary, and a restart resumes exactly
//! after the last stored transaction.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::binlog::{BinlogOptions, BinlogReader};
use crate::error::{ErrorKind, Result};
use crate::filter::Filter;
use crate::record::{ChangeRecord, Checkpoint, Op};
use crate::store::{SourcePosition, Store, TxnWriter};

/// Options of [`ingest`].
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// What is tracked. `None` (the default): what the store last recorded (everything in a new
    /// store), with the object changes requested since (see
    /// [`crate::store::request_object_change`]). `Some`: this filter, recorded in the store's
    /// filter history if it differs from the one in force.
    pub filter: Option<Filter>,
    /// Binlog reading limits.
    pub binlog: BinlogOptions,
    /// Keep tailing the inputs for new events and files instead of stopping at the end.
    pub follow: bool,
    /// How often to look for new bytes when following. Default: 2 ms.
    pub poll_interval: Duration,
    /// Commit a batch once it holds this many records (several small source transactions share
    /// one atomic batch). Default: 100 000 (about 25 MB of batch at the most).
    pub batch_records: usize,
    /// Commit a batch at least this often while records keep coming. Default: 50 ms.
    pub batch_latency: Duration,
    /// When following an idle source, append a HEARTBEAT record this often (its checkpoint is
    /// the stored source position, its timestamp the wall clock), so that consumers' positions
    /// and delays keep moving. `None`: no heartbeats. Default: 5 s.
    pub heartbeat_interval: Option<Duration>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            filter: None,
            heartbeat_interval: Some(Duration::from_secs(5)),
            binlog: BinlogOptions::default(),
            follow: false,
            poll_interval: Duration::from_millis(2),
            batch_records: 100_000,
            batch_latency: Duration::from_millis(50),
        }
    }
}

/// What an ingestion run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Source transactions read (committed ones, including those that stored nothing).
    pub transactions: u64,
    /// Records appended.
    pub records: u64,
    /// Binlog bytes read.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Where the run stopped: the stored resume position.
    pub position: Option<SourcePosition>,
    /// Records skipped because an earlier run had stored them.
    pub skipped_stored: u64,
    /// The run stopped at a partial last event (the file is still being written).
    pub incomplete_tail: bool,
}

/// Progress callback data.
#[derive(Clone, Copy, Debug)]
pub struct IngestProgress {
    /// Binlog bytes read so far.
    pub bytes: u64,
    /// Records appended so far.
    pub records: u64,
}

/// A stop flag for [`ingest`] in follow mode (e.g. set from a signal handler thread).
pub type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

struct Batch<'a> {
    writer: Option<TxnWriter<'a>>,
    /// Records of the open source transaction not yet pushed (held until the transaction shows
    /// a tracked record, so empty transactions store nothing).
    open: Vec<ChangeRecord>,
    open_has_tracked: bool,
    in_txn: bool,
    /// The writer holds part of a large transaction that has not committed yet: the batch
    /// cannot be committed before that transaction ends.
    partial: bool,
    records: u64,
    started: Option<Instant>,
    /// The resume position after the last complete transaction in the batch.
    position: Option<SourcePosition>,
}

/// Ingests binlog files (or directories) into `store`, resuming from its stored position.
///
/// # Errors
/// A typed error naming the file and offset for bad input (everything before it stays stored);
/// store errors.
pub fn ingest(
    store: &Store,
    inputs: &[PathBuf],
    opts: &IngestOptions,
    stop: Option<&StopFlag>,
    progress: &mut dyn FnMut(IngestProgress),
) -> Result<IngestStats> {
    let started = Instant::now();
    let resume = store.source_position()?;
    // Files before the stored position's are stored already: the list may repeat them or give
    // them out of order (they are left out); the rest must be in order, each file once.
    let mut reader = BinlogReader::open_resuming(
        inputs,
        opts.binlog.clone(),
        resume.as_ref().map(|p| p.file_index),
    )?;
    // Files from servers without column metadata get names from the store's schema history
    // (recorded by live tracking), when it has one.
    reader.set_schema_lookup(store.schema_lookup());
    if let Some(pos) = &resume {
        let files = reader.files();
        match files.iter().position(|f| f.index == pos.file_index) {
            Some(i) => reader.start_at(i, pos.offset)?,
            None if files.iter().all(|f| f.index < pos.file_index) => {
                // Everything given was ingested before.
                let mut stats = IngestStats {
                    position: Some(pos.clone()),
                    ..IngestStats::default()
                };
                stats.elapsed = started.elapsed();
                if !opts.follow {
                    return Ok(stats);
                }
            }
            None => {
                let first = files
                    .iter()
                    .position(|f| f.index > pos.file_index)
                    .unwrap_or(0);
                if let Some(f) = files.get(first) {
                    tracing::warn!(
                        "the stored position is in file {} ({}), which is not among the inputs; starting at {}",
                        pos.file_index,
                        pos.file_name,
                        f.path.display()
                    );
                }
                reader.start_at(first, 4)?;
            }
        }
    }
    run(
        store,
        &mut FileSource {
            reader: &mut reader,
            opts,
        },
        opts,
        stop,
        progress,
        started,
    )
}

/// Where ingestion reads records from: binlog files, or a live server.
pub(crate) trait RecordSource {
    /// The next record; `None` when nothing more is available for now.
    fn next_record(&mut self) -> Result<Option<ChangeRecord>>;
    /// The resume position after the transaction just completed (see [`position_after`]).
    fn position_after(&self, prev_through: Checkpoint) -> SourcePosition;
    /// Waits a little for more input (follow mode).
    fn wait_for_more(&mut self) -> Result<()>;
    /// Source bytes read so far.
    fn bytes_read(&self) -> u64;
    /// Whether to keep going at the end of the input.
    fn follows(&self) -> bool;
}

struct FileSource<'r> {
    reader: &'r mut BinlogReader,
    opts: &'r IngestOptions,
}

impl RecordSource for FileSource<'_> {
    fn next_record(&mut self) -> Result<Option<ChangeRecord>> {
        self.reader.next_record()
    }
    fn position_after(&self, prev_through: Checkpoint) -> SourcePosition {
        position_after(self.reader, prev_through)
    }
    fn wait_for_more(&mut self) -> Result<()> {
        wait_for_more(self.reader, self.opts)
    }
    fn bytes_read(&self) -> u64 {
        self.reader.stats().bytes
    }
    fn follows(&self) -> bool {
        self.opts.follow
    }
}

/// The ingestion loop over any source: decode -> filter -> batch -> commit, resuming after the
/// store's position (the source must already stand there).
pub(crate) fn run(
    store: &Store,
    reader: &mut dyn RecordSource,
    opts: &IngestOptions,
    stop: Option<&StopFlag>,
    progress: &mut dyn FnMut(IngestProgress),
    started: Instant,
) -> Result<IngestStats> {
    let resume = store.source_position()?;
    let stored_through = resume
        .as_ref()
        .map_or(Checkpoint::default(), |p| p.stored_through);
    let mut stats = IngestStats {
        position: resume.clone(),
        ..IngestStats::default()
    };
    let mut batch = Batch {
        writer: None,
        open: Vec::new(),
        open_has_tracked: false,
        in_txn: false,
        partial: false,
        records: 0,
        started: None,
        position: resume,
    };
    let mut tracked = Tracked::load(store, opts.filter.as_ref())?;
    let mut last_activity = (Instant::now(), 0u64);
    let mut last_progress = Instant::now();
    let mut since_progress = 0u32;
    loop {
        if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
            break;
        }
        match reader.next_record() {
            Ok(Some(rec)) => {
                if rec.checkpoint <= stored_through && stored_through != Checkpoint::default() {
                    stats.skipped_stored += 1;
                    continue;
                }
                let boundary = handle_record(store, &tracked.filter, &mut batch, rec, &mut stats)?;
                if boundary {
                    stats.transactions += 1;
                    batch.position = Some(reader.position_after(stored_through));
                    let due = batch.records >= opts.batch_records as u64
                        || batch
                            .started
                            .is_some_and(|t| t.elapsed() >= opts.batch_latency);
                    if due {
                        commit(store, &mut batch, &mut stats)?;
                        tracked.poll(store, &batch)?;
                    }
                }
                since_progress += 1;
                if since_progress >= 4096 && last_progress.elapsed() >= Duration::from_millis(100) {
                    since_progress = 0;
                    progress(IngestProgress {
                        bytes: reader.bytes_read(),
                        records: stats.records + batch.records,
                    });
                    last_progress = Instant::now();
                }
            }
            Ok(None) => {
                // End of the input for now: make everything complete visible.
                commit(store, &mut batch, &mut stats)?;
                tracked.poll(store, &batch)?;
                if !reader.follows() {
                    break;
                }
                idle(store, opts, &batch, &mut last_activity, stats.records)?;
                reader.wait_for_more()?;
            }
            Err(e) if e.kind() == ErrorKind::Incomplete => {
                commit(store, &mut batch, &mut stats)?;
                tracked.poll(store, &batch)?;
                if !reader.follows() {
                    stats.incomplete_tail = true;
                    tracing::info!("stopped at a partial event: {e}");
                    break;
                }
                idle(store, opts, &batch, &mut last_activity, stats.records)?;
                reader.wait_for_more()?;
            }
            Err(e) => {
                // Bad input: what came before is committed; the open transaction is not.
                commit(store, &mut batch, &mut stats)?;
                return Err(e);
            }
        }
    }
    commit(store, &mut batch, &mut stats)?;
    stats.bytes = reader.bytes_read();
    stats.elapsed = started.elapsed();
    stats.position = store.source_position()?;
    progress(IngestProgress {
        bytes: stats.bytes,
        records: stats.records,
    });
    Ok(stats)
}

/// The resume position after the transaction just completed: the reader's position (the end
/// of the event that committed it), or the start of a prepared XA transaction still waiting
/// for its outcome, whichever is earlier.
fn position_after(reader: &BinlogReader, prev_through: Checkpoint) -> SourcePosition {
    let pos = reader.position();
    let (file_name, file_index, offset) = match &pos {
        Some(p) => (
            p.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            p.file_index,
            p.offset,
        ),
        None => (String::new(), 0, 0),
    };
    let here = Checkpoint::new(file_index, offset);
    let stored_through = here.max(prev_through);
    match reader.decoder().pending_xa_start() {
        Some(xa) if xa < here => {
            let name = reader
                .files()
                .iter()
                .find(|f| f.index == xa.file_index)
                .and_then(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or(file_name);
            SourcePosition {
                file_name: name,
                file_index: xa.file_index,
                offset: xa.offset,
                stored_through,
            }
        }
        _ => SourcePosition {
            file_name,
            file_index,
            offset,
            stored_through,
        },
    }
}

/// The filter in force, and where the object-change request log was read up to.
struct Tracked {
    filter: Filter,
    applied_request: u64,
    requests_len: u64,
}

impl Tracked {
    /// The filter to start with: `given` (recorded if it differs from the stored one) or the
    /// stored one, then the requests made since.
    fn load(store: &Store, given: Option<&Filter>) -> Result<Self> {
        let stored = store.current_filter()?;
        let applied_request = stored.as_ref().map_or(0, |(_, a)| *a);
        let filter = match (given, stored) {
            (Some(g), Some((s, _))) if *g == s => s,
            (Some(g), _) => {
                store.record_filter(g, Vec::new(), applied_request)?;
                g.clone()
            }
            (None, Some((s, _))) => s,
            (None, None) => {
                let f = Filter::default();
                store.record_filter(&f, Vec::new(), 0)?;
                f
            }
        };
        let mut t = Self {
            filter,
            applied_request,
            requests_len: 0,
        };
        t.apply_requests(store)?;
        Ok(t)
    }

    /// Applies object-change requests made since the last look, when the batch holds nothing
    /// (between transactions), so that the change takes effect exactly at the stored position.
    fn poll(&mut self, store: &Store, batch: &Batch<'_>) -> Result<()> {
        if batch.writer.is_some() || batch.partial || batch.in_txn || !batch.open.is_empty() {
            return Ok(());
        }
        if crate::store::requests_len(store.path()) == self.requests_len {
            return Ok(());
        }
        self.apply_requests(store)
    }

    fn apply_requests(&mut self, store: &Store) -> Result<()> {
        self.requests_len = crate::store::requests_len(store.path());
        let log = crate::store::check_no_lost_requests(store.path(), self.applied_request)?;
        // A counter older than the store (lost, or a store from before it existed) is raised:
        // the next request must not reuse an applied id.
        crate::store::raise_requested(store.path(), self.applied_request)?;
        let new: Vec<_> = log
            .into_iter()
            .filter(|r| r.id > self.applied_request)
            .collect();
        let Some(last) = new.last().map(|r| r.id) else {
            return Ok(());
        };
        let mut f = self.filter.clone();
        for r in &new {
            f.apply(&r.change);
        }
        store.record_filter(&f, new.iter().map(|r| r.id).collect(), last)?;
        self.filter = f;
        self.applied_request = last;
        Ok(())
    }
}

/// While following an idle source: appends a HEARTBEAT record once `heartbeat_interval` has
/// passed without anything stored. `last` is (when, records stored by then).
fn idle(
    store: &Store,
    opts: &IngestOptions,
    batch: &Batch<'_>,
    last: &mut (Instant, u64),
    records: u64,
) -> Result<()> {
    if records != last.1 {
        *last = (Instant::now(), records);
    }
    let Some(every) = opts.heartbeat_interval else {
        return Ok(());
    };
    if last.0.elapsed() < every
        || batch.writer.is_some()
        || batch.partial
        || batch.in_txn
        || !batch.open.is_empty()
    {
        return Ok(());
    }
    let pos = store.source_position()?;
    let checkpoint = pos.map_or(Checkpoint::default(), |p| {
        Checkpoint::new(p.file_index, p.offset)
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let hb = ChangeRecord {
        seq: 0,
        checkpoint,
        safe_checkpoint: checkpoint,
        timestamp: now,
        op: Op::Heartbeat,
        table: None,
        database: None,
        before: None,
        after: None,
        ddl: None,
        gtid: None,
        xid: None,
        thread_id: None,
        server_id: 0,
        server_version: std::sync::Arc::from(""),
        flags: crate::record::RecordFlags::default(),
    };
    let mut w = store.begin()?;
    w.mark_transaction_start();
    w.push(&hb)?;
    w.commit(None)?;
    last.0 = Instant::now();
    Ok(())
}

fn wait_for_more(reader: &mut BinlogReader, opts: &IngestOptions) -> Result<()> {
    std::thread::sleep(opts.poll_interval);
    reader.refresh()?;
    Ok(())
}

/// Adds a record to the batch. Returns true when it closes a source transaction.
fn handle_record<'a>(
    store: &'a Store,
    filter: &Filter,
    batch: &mut Batch<'a>,
    rec: ChangeRecord,
    stats: &mut IngestStats,
) -> Result<bool> {
    match rec.op {
        Op::Begin => {
            if batch.partial {
                // The large transaction in the writer never committed (the source cut it off):
                // its invisible chunks are abandoned (overwritten, or removed on reopen).
                tracing::warn!("a transaction ended without COMMIT; its records are dropped");
                batch.writer = None;
                batch.partial = false;
                batch.records = 0;
            }
            batch.in_txn = true;
            batch.open.clear();
            batch.open_has_tracked = false;
            batch.open.push(rec);
            Ok(false)
        }
        Op::Commit => {
            if batch.open_has_tracked {
                batch.open.push(rec);
                flush_open(store, batch)?;
            }
            batch.open.clear();
            batch.in_txn = false;
            batch.open_has_tracked = false;
            batch.partial = false;
            Ok(true)
        }
        _ => {
            let tracked = filter.matches(&rec);
            if !batch.in_txn {
                // A standalone statement (DDL): its own transaction.
                if tracked {
                    batch.open.clear();
                    batch.open.push(rec);
                    flush_open(store, batch)?;
                }
                return Ok(true);
            }
            if tracked {
                batch.open.push(rec);
                batch.open_has_tracked = true;
                // Large transactions: hand records to the writer as they come (it writes them in
                // invisible chunks), keeping memory bounded.
                if batch.open.len() >= 1024 {
                    if !batch.partial && batch.writer.is_some() {
                        // Commit the complete transactions before this one, so the batch holds
                        // only the large transaction until it ends.
                        commit(store, batch, stats)?;
                    }
                    batch.partial = true;
                    flush_open(store, batch)?;
                }
            }
            Ok(false)
        }
    }
}

/// Moves the open transaction's buffered records into the batch writer.
fn flush_open<'a>(store: &'a Store, batch: &mut Batch<'a>) -> Result<()> {
    if batch.writer.is_none() {
        batch.writer = Some(store.begin()?);
        batch.started = Some(Instant::now());
    }
    let Some(w) = batch.writer.as_mut() else {
        return Ok(());
    };
    for r in batch.open.drain(..) {
        if matches!(r.op, Op::Begin | Op::Ddl) {
            w.mark_transaction_start();
        }
        w.push(&r)?;
        batch.records += 1;
    }
    Ok(())
}

/// Commits the complete transactions in the batch with the resume position after them.
fn commit(store: &Store, batch: &mut Batch<'_>, stats: &mut IngestStats) -> Result<()> {
    if batch.partial {
        // A large transaction is still open: its chunks stay invisible until it commits.
        return Ok(());
    }
    let n = batch.records;
    match batch.writer.take() {
        Some(w) => {
            w.commit(batch.position.as_ref())?;
        }
        None => {
            if let Some(p) = &batch.position {
                if store.source_position()?.as_ref() != Some(p) {
                    store.set_position(p)?;
                }
            }
        }
    }
    stats.records += n;
    batch.records = 0;
    batch.started = None;
    store.trim()?;
    Ok(())
}
