//! What is tracked, over time: the filter history kept in the store, and the request log other
//! processes append object changes to while ingestion runs.
//!
//! - `STORE/objects.requests`: one JSON line per requested [`ObjectChange`]
//!   (`{"id":N,"requested_ms":T,"change":{...}}`), appended under `STORE/objects.lock` and
//!   synced. Anyone may append; only the ingester applies.
//! - `STORE/objects.requested`: the highest request id ever given out (decimal), rewritten by
//!   each request and by the ingester when it applies requests. So a lost or emptied request log
//!   neither restarts the ids at 1 (requests the store had applied once would then be taken for
//!   applied and skipped) nor loses pending requests silently: ingestion fails naming them.
//! - `state` column family, key `filter`: the filter in force and the id of the last request
//!   applied. Key `fh` + n (u64 BE, 1, 2, ...): the n-th [`FilterChange`] (several may apply
//!   from the same seq when nothing was stored in between). Both are written in one batch,
//!   between transactions.

use std::io::Write;
use std::path::Path;

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::{map_db, Store, CF_STATE};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::{Filter, ObjectChange};
use crate::record::Checkpoint;

const KEY_FILTER: &[u8] = b"filter";
const HISTORY_PREFIX: &[u8] = b"fh";
pub(super) const REQUESTS: &str = "objects.requests";
pub(super) const REQUESTED: &str = "objects.requested";
const REQUESTS_LOCK: &str = "objects.lock";
/// A request line is small; a longer one is damage, not a request.
const MAX_REQUEST_LINE: usize = 1 << 20;

/// A change of the tracked objects as the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChange {
    /// The first sequence number the filter applies to.
    pub seq: u64,
    /// The source position from which it applies: every transaction after it is filtered by
    /// it (`0@0` when it applies from the start).
    pub checkpoint: Checkpoint,
    /// When it was applied (epoch milliseconds, wall clock).
    pub applied_ms: u64,
    /// The requests it applied (empty for a filter given to `ingest` directly).
    pub requests: Vec<u64>,
    /// The filter in force from then on.
    pub filter: Filter,
}

/// A requested object change, waiting in the request log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRequest {
    /// Its number (1, 2, ...).
    pub id: u64,
    /// When it was requested (epoch milliseconds).
    pub requested_ms: u64,
    /// The change.
    pub change: ObjectChange,
}

#[derive(Serialize, Deserialize)]
struct Current {
    filter: Filter,
    applied_request: u64,
}

/// Appends a change to the request log of the store in `store_dir` (any process; the ingester
/// applies it between two transactions, or at its next start). Returns the request id.
///
/// # Errors
/// `NotFound` when there is no store; `Io`.
pub fn request_object_change(store_dir: &Path, change: &ObjectChange) -> Result<u64> {
    if !store_dir.join("CURRENT").exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no store in {}", store_dir.display()),
        ));
    }
    let _lock = crate::group::FileLock::acquire(
        &store_dir.join(REQUESTS_LOCK),
        std::time::Duration::from_secs(10),
    )?;
    let last = read_requests(store_dir)?.last().map_or(0, |r| r.id);
    let id = last.max(read_requested(store_dir)?) + 1;
    let req = ObjectRequest {
        id,
        requested_ms: crate::group::now_millis(),
        change: change.clone(),
    };
    let mut line = serde_json::to_vec(&req)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("object request: {e}")))?;
    line.push(b'\n');
    let path = store_dir.join(REQUESTS);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    f.write_all(&line)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    write_requested(store_dir, id)?;
    Ok(id)
}

/// The request log of the store in `store_dir` ([`read_requests`]), checked against the
/// counter of requests given out: requests that are neither applied (ids up to `applied`, the
/// store's [`Store::current_filter`]) nor in the log were lost before an ingester applied them.
///
/// # Errors
/// `Corruption` naming the lost requests and the way on; a damaged log or counter; `Io`.
pub fn check_no_lost_requests(store_dir: &Path, applied: u64) -> Result<Vec<ObjectRequest>> {
    let log = read_requests(store_dir)?;
    let issued = read_requested(store_dir)?;
    let known = log.last().map_or(0, |r| r.id).max(applied);
    if issued > known {
        let lost = if issued == known + 1 {
            format!("request {issued} was")
        } else {
            format!("requests {} to {issued} were", known + 1)
        };
        return Err(Error::corruption(format!(
            "object change {lost} made but {} no longer holds it (removed or damaged before ingestion applied it): re-issue the changes you still want with `changetrack objects --store {} add|remove`, or remove {} to go on without them",
            store_dir.join(REQUESTS).display(),
            store_dir.display(),
            store_dir.join(REQUESTED).display(),
        )));
    }
    Ok(log)
}

/// [`check_no_lost_requests`] for a store opened read-only before a writer opens it: the
/// applied id is read from `db`.
pub(super) fn verify_requests(db: &rocksdb::DB, store_dir: &Path) -> Result<()> {
    let applied = match db.cf_handle(CF_STATE) {
        Some(cf) => match db
            .get_cf(cf, KEY_FILTER)
            .map_err(|e| map_db("cannot read the filter", &e))?
        {
            Some(v) => {
                serde_json::from_slice::<Current>(&v)
                    .map_err(|e| Error::corruption(format!("stored filter: {e}")))?
                    .applied_request
            }
            None => 0,
        },
        None => 0,
    };
    check_no_lost_requests(store_dir, applied).map(|_| ())
}

/// The highest request id given out (`objects.requested`), 0 when the file does not exist.
///
/// # Errors
/// `Corruption` for a file that does not hold a number; `Io`.
pub(crate) fn read_requested(store_dir: &Path) -> Result<u64> {
    let path = store_dir.join(REQUESTED);
    match std::fs::read(&path) {
        Ok(b) if b.len() <= 24 => std::str::from_utf8(&b)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| damaged_counter(&path)),
        Ok(_) => Err(damaged_counter(&path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

fn damaged_counter(path: &Path) -> Error {
    Error::corruption(format!(
        "{} does not hold a request id (damaged?): remove it; the next ingest sets it again from the store",
        path.display()
    ))
}

/// Raises the counter of requests given out to `applied` when it is lower (a counter lost, or
/// a store from before it existed), under the request lock, so that the next request does not
/// reuse an applied id.
///
/// # Errors
/// `Io`; a damaged counter.
pub(crate) fn raise_requested(store_dir: &Path, applied: u64) -> Result<()> {
    if read_requested(store_dir)? >= applied {
        return Ok(());
    }
    let _lock = crate::group::FileLock::acquire(
        &store_dir.join(REQUESTS_LOCK),
        std::time::Duration::from_secs(10),
    )?;
    if read_requested(store_dir)? < applied {
        write_requested(store_dir, applied)?;
    }
    Ok(())
}

/// Records `id` as the highest request id given out: written aside, synced, then renamed over
/// the old file.
///
/// # Errors
/// `Io`.
fn write_requested(store_dir: &Path, id: u64) -> Result<()> {
    let path = store_dir.join(REQUESTED);
    let tmp = store_dir.join(format!("{REQUESTED}.tmp-{}", std::process::id()));
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Every request in the log of the store in `store_dir`, in order. A torn last line (a crash
/// while appending) is ignored.
///
/// # Errors
/// `Corruption` for a damaged line before the last; `Io`.
pub fn read_requests(store_dir: &Path) -> Result<Vec<ObjectRequest>> {
    let path = store_dir.join(REQUESTS);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut out: Vec<ObjectRequest> = Vec::new();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for (n, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let req: ObjectRequest = if line.len() > MAX_REQUEST_LINE {
            Err(Error::corruption("line too long"))
        } else {
            serde_json::from_slice(line).map_err(|e| Error::corruption(e.to_string()))
        }
        .map_err(|e| {
            Error::corruption(format!(
                "{} line {}: {}",
                path.display(),
                n + 1,
                e.message()
            ))
        })?;
        if out.last().is_some_and(|p| p.id >= req.id) {
            return Err(Error::corruption(format!(
                "{} line {}: request ids go backwards",
                path.display(),
                n + 1
            )));
        }
        out.push(req);
    }
    Ok(out)
}

/// The size of the request log (cheap to poll).
pub(crate) fn requests_len(store_dir: &Path) -> u64 {
    std::fs::metadata(store_dir.join(REQUESTS)).map_or(0, |m| m.len())
}

fn history_key(n: u64) -> Vec<u8> {
    let mut k = HISTORY_PREFIX.to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

impl Store {
    /// The filter in force and the id of the last object request applied; `None` before
    /// ingestion first recorded one.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn current_filter(&self) -> Result<Option<(Filter, u64)>> {
        let cf = self.cf(CF_STATE)?;
        let Some(v) = self
            .inner
            .db
            .get_cf(cf, KEY_FILTER)
            .map_err(|e| map_db("cannot read the filter", &e))?
        else {
            return Ok(None);
        };
        let c: Current = serde_json::from_slice(&v)
            .map_err(|e| Error::corruption(format!("stored filter: {e}")))?;
        Ok(Some((c.filter, c.applied_request)))
    }

    /// Every recorded change of the tracked objects, oldest first.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn filter_history(&self) -> Result<Vec<FilterChange>> {
        let cf = self.cf(CF_STATE)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek(HISTORY_PREFIX);
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(HISTORY_PREFIX) {
                break;
            }
            out.push(
                serde_json::from_slice(v)
                    .map_err(|e| Error::corruption(format!("stored filter change: {e}")))?,
            );
            it.next();
        }
        it.status()
            .map_err(|e| map_db("cannot read the filter history", &e))?;
        Ok(out)
    }

    /// Records `filter` as in force from the stored resume position on (writer only; call it
    /// between transactions: nothing may be pending in a `TxnWriter`).
    ///
    /// # Errors
    /// `Locked` on a read-only store; `Poisoned`, `Io`.
    pub fn record_filter(
        &self,
        filter: &Filter,
        requests: Vec<u64>,
        applied_request: u64,
    ) -> Result<FilterChange> {
        self.check_writable()?;
        let checkpoint = self.source_position()?.map_or(Checkpoint::default(), |p| {
            Checkpoint::new(p.file_index, p.offset)
        });
        let change = FilterChange {
            seq: self.last_seq() + 1,
            checkpoint,
            applied_ms: crate::group::now_millis(),
            requests,
            filter: filter.clone(),
        };
        let cf = self.cf(CF_STATE)?;
        let next = {
            let mut it = self.inner.db.raw_iterator_cf(cf);
            it.seek_for_prev(history_key(u64::MAX));
            match it.key() {
                Some(k) if k.starts_with(HISTORY_PREFIX) && k.len() == HISTORY_PREFIX.len() + 8 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&k[HISTORY_PREFIX.len()..]);
                    u64::from_be_bytes(n) + 1
                }
                _ => 1,
            }
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, history_key(next), to_json(&change)?);
        batch.put_cf(
            cf,
            KEY_FILTER,
            to_json(&Current {
                filter: filter.clone(),
                applied_request,
            })?,
        );
        self.write(batch)?;
        tracing::info!(
            seq = change.seq,
            checkpoint = %change.checkpoint,
            "tracking {}",
            filter.describe()
        );
        Ok(change)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("stored filter: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Schema history: `state` key `"sh"` + object prefix of (database, table) + checkpoint
// (file u32 BE, offset u64 BE) -> JSON list of `HistoryColumn`, the table's columns from that
// checkpoint on.

const SCHEMA_PREFIX: &[u8] = b"sh";

fn schema_key(database: &str, table: &str, cp: Checkpoint) -> Vec<u8> {
    let mut k = SCHEMA_PREFIX.to_vec();
    k.extend_from_slice(&super::keys::object_prefix(database, Some(table)));
    k.extend_from_slice(&super::keys::checkpoint_key(cp));
    k
}

impl Store {
    /// The columns of `database.table` in force at `cp` in the schema history.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn schema_at(
        &self,
        database: &str,
        table: &str,
        cp: Checkpoint,
    ) -> Result<Option<Vec<crate::record::HistoryColumn>>> {
        let cf = self.cf(CF_STATE)?;
        let key = schema_key(database, table, cp);
        let prefix_len = key.len() - 12;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek_for_prev(&key);
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.len() == key.len() && k[..prefix_len] == key[..prefix_len] => {
                Ok(Some(serde_json::from_slice(v).map_err(|e| {
                    Error::corruption(format!("schema history of {database}.{table}: {e}"))
                })?))
            }
            _ => {
                it.status()
                    .map_err(|e| map_db("cannot read the schema history", &e))?;
                Ok(None)
            }
        }
    }

    /// Records the columns of `database.table` from `cp` on (writer only). Nothing is written
    /// when the version in force there is the same.
    ///
    /// # Errors
    /// `Locked` on a read-only store; `Io`.
    pub fn record_schema(
        &self,
        database: &str,
        table: &str,
        cp: Checkpoint,
        columns: &[crate::record::HistoryColumn],
    ) -> Result<bool> {
        self.check_writable()?;
        if self.schema_at(database, table, cp)?.as_deref() == Some(columns) {
            return Ok(false);
        }
        let cf = self.cf(CF_STATE)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, schema_key(database, table, cp), to_json(&columns)?);
        self.write(batch)?;
        tracing::debug!(%database, %table, checkpoint = %cp, columns = columns.len(), "schema version recorded");
        Ok(true)
    }

    /// A lookup into this store's schema history for the decoder (see
    /// `Decoder::set_schema_lookup`).
    #[must_use]
    pub fn schema_lookup(&self) -> crate::binlog::SchemaLookup {
        let store = self.clone();
        std::sync::Arc::new(move |db: &str, table: &str, cp: Checkpoint| {
            match store.schema_at(db, table, cp) {
                Ok(v) => v.map(std::sync::Arc::new),
                Err(e) => {
                    tracing::warn!("schema history of {db}.{table}: {e}");
                    None
                }
            }
        })
    }
}

impl Store {
    /// Writes a filter history (a salvaged store's): entries 1, 2, ... and the last one's
    /// filter as the one in force (writer only; an empty history writes nothing).
    pub(super) fn restore_filter_history(&self, entries: &[FilterChange]) -> Result<()> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let cf = self.cf(CF_STATE)?;
        let mut batch = WriteBatch::default();
        for (i, e) in entries.iter().enumerate() {
            batch.put_cf(cf, history_key(i as u64 + 1), to_json(e)?);
        }
        batch.put_cf(
            cf,
            KEY_FILTER,
            to_json(&Current {
                filter: last.filter.clone(),
                applied_request: entries
                    .iter()
                    .flat_map(|e| e.requests.iter().copied())
                    .max()
                    .unwrap_or(0),
            })?,
        );
        self.write(batch)
    }

    /// Copies the schema history of `from` (writer only).
    pub(super) fn copy_schema_history(&self, from: &Store) -> Result<u64> {
        let src = from.cf(CF_STATE)?;
        let dst = self.cf(CF_STATE)?;
        let mut it = from.inner.db.raw_iterator_cf(src);
        it.seek(SCHEMA_PREFIX);
        let mut batch = WriteBatch::default();
        let mut n = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(SCHEMA_PREFIX) {
                break;
            }
            batch.put_cf(dst, k, v);
            n += 1;
            it.next();
        }
        it.status()
            .map_err(|e| map_db("cannot read the schema history", &e))?;
        self.write(batch)?;
        Ok(n)
    }
}
