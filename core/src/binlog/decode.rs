//! Events to change records: the only file that names mysql_common event types.
//!
//! The [`Decoder`] is a state machine fed one framed event at a time. It keeps the format
//! description, the table maps and the open transaction, and queues finished records.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::sync::Arc;

use mysql_common::binlog::consts::{BinlogVersion, EventType, TransactionPayloadCompressionType};
use mysql_common::binlog::events::{
    FormatDescriptionEvent, GtidEvent, IncidentEvent, QueryEvent, RotateEvent, RowsQueryEvent,
    StatusVarVal, TableMapEvent, TransactionPayloadEvent, XidEvent,
};
use mysql_common::binlog::BinlogCtx;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;

use crate::binlog::frame::{self, ChecksumAlg, EventHeader, RawEvent, HEADER_LEN};
use crate::binlog::mariadb::{self, Xid};
use crate::binlog::rows::{decode_rows, RowsKind};
use crate::binlog::table_map::{table_schema, TableMapCache};
use crate::binlog::BinlogOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::record::charset::charset_of_collation;
use crate::record::{ChangeRecord, Checkpoint, Ddl, Op, RecordFlags};

/// Counters of what the decoder saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Events framed and decoded (events inside compressed payloads included).
    pub events: u64,
    /// Bytes of binlog read.
    pub bytes: u64,
    /// Records produced.
    pub records: u64,
    /// Row changes produced.
    pub rows: u64,
    /// Transactions committed (including standalone DDL).
    pub transactions: u64,
    /// Events of types this decoder does not know, by type code; skipped.
    pub unknown_events: BTreeMap<u8, u64>,
    /// Statement-format DML (and LOAD DATA) events: not row changes, skipped.
    pub skipped_statements: u64,
    /// INCIDENT events: the server reported it may have lost changes here.
    pub incidents: Vec<String>,
    /// XA transactions rolled back after XA PREPARE: their rows were dropped.
    pub xa_rolled_back: u64,
    /// Groups that ended in ROLLBACK (their non-transactional rows are kept).
    pub rollback_groups: u64,
}

/// An open transaction.
#[derive(Debug)]
struct Txn {
    start: Checkpoint,
    gtid: Option<Arc<str>>,
    thread_id: Option<u32>,
    /// Opened implicitly by a rows event outside BEGIN; closes at STMT_END.
    implicit: bool,
    /// An XA transaction: its rows wait for XA COMMIT or XA ROLLBACK.
    xa: Option<Option<Xid>>,
    /// Records held back (XA only).
    held: Vec<ChangeRecord>,
    held_bytes: usize,
}

/// A prepared XA transaction waiting for its outcome.
#[derive(Debug)]
struct PendingXa {
    start: Checkpoint,
    records: Vec<ChangeRecord>,
    bytes: usize,
}

/// The position of the event being decoded (for events inside a compressed payload, the
/// payload event's).
#[derive(Clone, Copy, Debug)]
struct Pos {
    start: u64,
    end: u64,
}

/// Looks up a table's columns in a schema history: `(database, table, checkpoint)` -> the
/// version in force there.
pub type SchemaLookup = Arc<
    dyn Fn(&str, &str, Checkpoint) -> Option<Arc<Vec<crate::record::HistoryColumn>>> + Send + Sync,
>;

/// Turns framed events into [`ChangeRecord`]s.
pub struct Decoder {
    schema_lookup: Option<SchemaLookup>,
    opts: BinlogOptions,
    fde: Arc<FormatDescriptionEvent<'static>>,
    alg: ChecksumAlg,
    server_version: Arc<str>,
    tables: TableMapCache,
    file_index: u32,
    /// GTID (if any) of the next group, and where that group starts (GTID events).
    next_group: Option<(Option<Arc<str>>, u64)>,
    /// Where the current statement started, for rows outside BEGIN (its first TABLE_MAP).
    stmt_start: Option<u64>,
    txn: Option<Txn>,
    pending_xa: BTreeMap<Xid, PendingXa>,
    pending_xa_bytes: usize,
    out: VecDeque<ChangeRecord>,
    stats: DecodeStats,
    payload_buf: Vec<u8>,
    /// The file the last ROTATE event named.
    rotate_to: Option<String>,
}

fn mc(e: &std::io::Error, what: &str) -> Error {
    Error::corruption(format!("cannot parse {what}: {e}"))
}

fn approx_size(r: &ChangeRecord) -> usize {
    let img = |v: &Option<Vec<crate::record::Value>>| {
        v.as_ref().map_or(0, |v| {
            v.iter()
                .map(|x| match x {
                    crate::record::Value::Bytes(b) => b.len() + 32,
                    crate::record::Value::Json(s) | crate::record::Value::JsonDiff(s) => {
                        s.len() + 32
                    }
                    _ => 32,
                })
                .sum()
        })
    };
    200 + img(&r.before) + img(&r.after)
}

/// Classification of a QUERY event's text.
#[derive(Debug, PartialEq, Eq)]
enum QueryKind {
    Begin,
    Commit,
    Rollback,
    XaStart,
    XaEnd,
    XaCommit(Option<Xid>),
    XaRollback(Option<Xid>),
    Savepoint,
    Ddl,
    Other,
}

fn strip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/*") {
            // Keep executable comments' content (`/*!40000 ... */`) out of the way too.
            match rest.find("*/") {
                Some(end) => s = &rest[end + 2..],
                None => return "",
            }
        } else if s.starts_with("--") || s.starts_with('#') {
            match s.find('\n') {
                Some(end) => s = &s[end + 1..],
                None => return "",
            }
        } else {
            return s;
        }
    }
}

fn classify(query: &str) -> QueryKind {
    let q = strip_comments(query);
    let mut words = q
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    let second = words.next().unwrap_or("").to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" => QueryKind::Begin,
        "START" if second == "TRANSACTION" => QueryKind::Begin,
        "COMMIT" => QueryKind::Commit,
        "ROLLBACK" if second == "TO" => QueryKind::Savepoint,
        "ROLLBACK" => QueryKind::Rollback,
        "SAVEPOINT" | "RELEASE" => QueryKind::Savepoint,
        "XA" => {
            let rest = q.trim_start().get(2..).unwrap_or("").trim_start();
            let after_verb = rest.get(second.len()..).unwrap_or("");
            match second.as_str() {
                "START" | "BEGIN" => QueryKind::XaStart,
                "END" | "PREPARE" => QueryKind::XaEnd,
                "COMMIT" => QueryKind::XaCommit(mariadb::parse_xid_text(after_verb)),
                "ROLLBACK" => QueryKind::XaRollback(mariadb::parse_xid_text(after_verb)),
                _ => QueryKind::Other,
            }
        }
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "COMMENT" => {
            QueryKind::Ddl
        }
        _ => QueryKind::Other,
    }
}

impl Decoder {
    /// A decoder for a binlog stream; `file_index` numbers the first file.
    #[must_use]
    pub fn new(opts: BinlogOptions, file_index: u32) -> Self {
        Self {
            schema_lookup: None,
            opts,
            fde: Arc::new(FormatDescriptionEvent::new(BinlogVersion::Version4)),
            alg: ChecksumAlg::None,
            server_version: Arc::from(""),
            tables: TableMapCache::default(),
            file_index,
            next_group: None,
            stmt_start: None,
            txn: None,
            pending_xa: BTreeMap::new(),
            pending_xa_bytes: 0,
            out: VecDeque::new(),
            stats: DecodeStats::default(),
            payload_buf: Vec::new(),
            rotate_to: None,
        }
    }

    /// The checksum algorithm the last FORMAT_DESCRIPTION event announced.
    #[must_use]
    pub fn checksum_alg(&self) -> ChecksumAlg {
        self.alg
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Whether a transaction is open (its COMMIT not seen yet).
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The server version from the last FORMAT_DESCRIPTION event.
    #[must_use]
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The file name the last ROTATE event pointed to, taken (cleared) by this call.
    pub fn take_rotate(&mut self) -> Option<String> {
        self.rotate_to.take()
    }

    /// Starts a new binlog file: table ids are only valid within one file.
    pub fn start_file(&mut self, file_index: u32) {
        self.file_index = file_index;
        self.tables.clear();
        self.alg = ChecksumAlg::None;
    }

    /// Supplies column names (and signedness, charsets, labels, keys) for tables whose
    /// TABLE_MAP lacks them, from a schema history.
    pub fn set_schema_lookup(&mut self, f: SchemaLookup) {
        self.schema_lookup = Some(f);
        self.tables.clear();
    }

    /// Where the oldest prepared-but-unresolved XA transaction starts: a resume point must not
    /// be later, or its rows would be lost.
    #[must_use]
    pub fn pending_xa_start(&self) -> Option<Checkpoint> {
        self.pending_xa.values().map(|p| p.start).min()
    }

    /// Where a reader that stops here has to start again so that it loses nothing: the start
    /// of the open transaction (or of the events that open the next one, such as its GTID), or
    /// of the oldest prepared XA transaction, whichever is earliest. `None` between
    /// transactions.
    #[must_use]
    pub fn restart_point(&self) -> Option<Checkpoint> {
        [
            self.txn.as_ref().map(|t| t.start),
            self.next_group.as_ref().map(|g| self.cp(g.1)),
            self.stmt_start.map(|s| self.cp(s)),
            self.pending_xa_start(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether finished records are waiting.
    #[must_use]
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Takes the next finished record.
    pub fn pop(&mut self) -> Option<ChangeRecord> {
        self.out.pop_front()
    }

    fn cp(&self, offset: u64) -> Checkpoint {
        Checkpoint::new(self.file_index, offset)
    }

    fn emit(&mut self, rec: ChangeRecord) -> Result<()> {
        if let Some(txn) = self.txn.as_mut() {
            if txn.xa.is_some() {
                txn.held_bytes += approx_size(&rec);
                if self.pending_xa_bytes + txn.held_bytes > self.opts.max_pending_xa_bytes {
                    return Err(Error::new(
                        ErrorKind::LimitExceeded,
                        format!(
                            "prepared XA transactions hold more than {} bytes of changes",
                            self.opts.max_pending_xa_bytes
                        ),
                    ));
                }
                txn.held.push(rec);
                return Ok(());
            }
        }
        self.stats.records += 1;
        if rec.op.is_dml() {
            self.stats.rows += 1;
        }
        self.out.push_back(rec);
        Ok(())
    }

    fn marker(&self, op: Op, h: &EventHeader, pos: Pos, safe: Checkpoint) -> ChangeRecord {
        ChangeRecord {
            seq: 0,
            checkpoint: self.cp(pos.end),
            safe_checkpoint: safe,
            timestamp: h.timestamp,
            op,
            table: None,
            database: None,
            before: None,
            after: None,
            ddl: None,
            gtid: self.txn.as_ref().and_then(|t| t.gtid.clone()),
            xid: None,
            thread_id: self.txn.as_ref().and_then(|t| t.thread_id),
            server_id: h.server_id,
            server_version: Arc::clone(&self.server_version),
            flags: RecordFlags::default(),
        }
    }

    fn open_txn(
        &mut self,
        h: &EventHeader,
        pos: Pos,
        thread_id: Option<u32>,
        emit_begin: bool,
    ) -> Result<()> {
        if self.txn.is_some() {
            return Ok(());
        }
        let (gtid, start) = match self.next_group.take() {
            Some((g, s)) => (g, s),
            None => (None, self.stmt_start.take().unwrap_or(pos.start)),
        };
        self.txn = Some(Txn {
            start: self.cp(start),
            gtid,
            thread_id,
            implicit: false,
            xa: None,
            held: Vec::new(),
            held_bytes: 0,
        });
        if emit_begin {
            let start = self.cp(start);
            let rec = self.marker(Op::Begin, h, pos, start);
            self.emit(rec)?;
        }
        Ok(())
    }

    fn commit_txn(&mut self, h: &EventHeader, pos: Pos, xid: Option<u64>) -> Result<()> {
        let Some(txn) = self.txn.as_ref() else {
            // A COMMIT with no open transaction (the BEGIN was before where we started).
            return Ok(());
        };
        let mut rec = self.marker(Op::Commit, h, pos, txn.start);
        rec.xid = xid;
        self.emit(rec)?;
        self.txn = None;
        self.stmt_start = None;
        self.stats.transactions += 1;
        Ok(())
    }

    /// Feeds one framed event from the current file.
    ///
    /// # Errors
    /// Typed errors for malformed or unsupported events; the error carries the event offset.
    pub fn feed(&mut self, ev: &RawEvent<'_>) -> Result<()> {
        self.stats.bytes += u64::from(ev.header.event_size);
        let pos = Pos {
            start: ev.offset,
            end: ev.end(),
        };
        if let Some(alg) = ev.fde_alg {
            self.alg = alg;
        }
        self.handle(&ev.header, ev.body, pos)
            .map_err(|e| e.at_offset(ev.offset))
    }

    #[allow(clippy::too_many_lines)]
    fn handle(&mut self, h: &EventHeader, body: &[u8], pos: Pos) -> Result<()> {
        self.stats.events += 1;
        let fde = Arc::clone(&self.fde);
        let t = h.type_code;
        match t {
            frame::START_EVENT_V3 => {
                return Err(Error::unsupported(
                    "binlog format v1/v3 (MySQL 3.23/4.x, START_EVENT_V3) is not supported: \
                     only v4 binlogs (MySQL 5.0 and later) are",
                ));
            }
            frame::FORMAT_DESCRIPTION => {
                let new_fde: FormatDescriptionEvent<'_> =
                    parse(&fde, h, body, "FORMAT_DESCRIPTION")?;
                if new_fde.binlog_version() != BinlogVersion::Version4 {
                    return Err(Error::unsupported("only binlog format v4 is supported"));
                }
                self.server_version = Arc::from(new_fde.server_version().trim_end_matches('\0'));
                self.fde = Arc::new(new_fde.into_owned());
                // A new FDE in the middle of a file (relay logs) starts a new session: table
                // ids are reassigned.
                self.tables.clear();
            }
            4 => {
                // ROTATE: the name of the next file. The reader checks it against the next
                // file it opens.
                let r: RotateEvent<'_> = parse(&fde, h, body, "ROTATE")?;
                self.rotate_to = Some(r.name().trim_end_matches('\0').to_owned());
            }
            2 | mariadb::QUERY_COMPRESSED => self.on_query(h, body, pos)?,
            16 => {
                let x: XidEvent = parse(&fde, h, body, "XID")?;
                self.commit_txn(h, pos, Some(x.xid))?;
            }
            3 => {
                // STOP: the server stopped. A transaction still open here was cut off.
                if self.txn.as_ref().is_some_and(|t| t.xa.is_none()) {
                    tracing::warn!(offset = pos.start, "STOP event inside an open transaction");
                }
            }
            26 => {
                let inc: IncidentEvent<'_> = parse(&fde, h, body, "INCIDENT")?;
                let msg = format!(
                    "INCIDENT at {}: {:?}: {}",
                    self.cp(pos.start),
                    inc.incident_type(),
                    inc.message()
                );
                tracing::warn!("{msg}");
                self.stats.incidents.push(msg.clone());
                if self.opts.fail_on_incident {
                    return Err(Error::new(ErrorKind::Incident, msg));
                }
            }
            27 => {
                // HEARTBEAT: live streams only; nothing to record.
            }
            19 => {
                if self.txn.is_none() && self.stmt_start.is_none() {
                    self.stmt_start = Some(pos.start);
                }
                let phl = fde.get_event_type_header_length(EventType::TABLE_MAP_EVENT);
                if self.tables.get_same(body, phl).is_none() {
                    let tme: TableMapEvent<'_> = parse(&fde, h, body, "TABLE_MAP")?;
                    let mariadb = self.server_version.contains("MariaDB");
                    let mut schema = table_schema(&tme, body, phl, None, mariadb)?;
                    if schema.info.names_missing {
                        if let Some(f) = &self.schema_lookup {
                            let cp = self.cp(pos.end);
                            if let Some(cols) = f(&schema.info.database, &schema.info.table, cp) {
                                schema = table_schema(&tme, body, phl, Some(&cols), mariadb)?;
                            }
                        }
                    }
                    if self.tables.len() > self.opts.max_table_maps {
                        // Bounded memory: a stream that never ends a statement cannot grow this.
                        self.tables.clear();
                    }
                    self.tables.insert(schema, body);
                }
            }
            23..=25 | 30..=32 | 39 => self.on_rows(h, body, pos, None)?,
            mariadb::WRITE_ROWS_COMPRESSED_V1..=mariadb::DELETE_ROWS_COMPRESSED => {
                self.on_rows(h, body, pos, Some(t))?;
            }
            20..=22 => {
                return Err(Error::unsupported(
                    "pre-GA row events (types 20-22, MySQL 5.1 development releases) are not supported",
                ));
            }
            33 | 34 | 42 => {
                let g: GtidEvent = parse(&fde, h, body, "GTID")?;
                let gtid = if t == 34 {
                    None
                } else {
                    let sid = g.sid();
                    let uuid = format_uuid(&sid);
                    Some(match g.tag() {
                        Some(tag) => format!("{uuid}:{tag}:{}", g.gno()),
                        None => format!("{uuid}:{}", g.gno()),
                    })
                };
                self.next_group = Some((gtid.map(Arc::from), pos.start));
            }
            35 | 36 | 37 | 28 => {
                // PREVIOUS_GTIDS, TRANSACTION_CONTEXT, VIEW_CHANGE, IGNORABLE: nothing to record.
            }
            29 => {
                let _: RowsQueryEvent<'_> = parse(&fde, h, body, "ROWS_QUERY")?;
            }
            38 => self.on_xa_prepare(h, body, pos)?,
            40 => self.on_payload(h, body, pos)?,
            5 | 13 | 14 => {
                // INTVAR, RAND, USER_VAR: context of statement-format events.
            }
            6..=12 | 17 | 18 => {
                // LOAD DATA and friends: statement format.
                self.stats.skipped_statements += 1;
            }
            mariadb::ANNOTATE_ROWS => {}
            mariadb::BINLOG_CHECKPOINT => {
                mariadb::parse_binlog_checkpoint(body)?;
            }
            mariadb::GTID => {
                let g = mariadb::MariaGtid::parse(body)?;
                let gtid: Arc<str> = Arc::from(g.to_string_with(h.server_id));
                if self.txn.is_some() {
                    // A new group while one is open: the previous one was cut off.
                    tracing::warn!(offset = pos.start, "GTID inside an open transaction");
                    self.txn = None;
                }
                self.next_group = Some((Some(gtid), pos.start));
                if g.flags & mariadb::FL_STANDALONE == 0 {
                    if g.flags & mariadb::FL_PREPARED_XA != 0 {
                        self.open_txn(h, pos, None, false)?;
                        if let Some(txn) = self.txn.as_mut() {
                            txn.xa = Some(g.xid.clone());
                        }
                    } else {
                        self.open_txn(h, pos, None, true)?;
                    }
                }
            }
            mariadb::GTID_LIST => {
                mariadb::parse_gtid_list(body)?;
            }
            mariadb::START_ENCRYPTION => {
                return Err(Error::unsupported(
                    "encrypted binlogs (START_ENCRYPTION) are not supported",
                ));
            }
            other => {
                *self.stats.unknown_events.entry(other).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    fn on_query(&mut self, h: &EventHeader, body: &[u8], pos: Pos) -> Result<()> {
        let fde = Arc::clone(&self.fde);
        let q: QueryEvent<'_> = parse(&fde, h, body, "QUERY")?;
        let inflated;
        let text: &[u8] = if h.type_code == mariadb::QUERY_COMPRESSED {
            inflated = mariadb::uncompress(q.query_raw(), self.opts.max_event_size as usize)?;
            &inflated
        } else {
            q.query_raw()
        };
        let query = String::from_utf8_lossy(text);
        let thread_id = Some(q.thread_id());
        match classify(&query) {
            QueryKind::Begin => {
                if self.txn.is_none() {
                    self.open_txn(h, pos, thread_id, true)?;
                } else if let Some(t) = self.txn.as_mut() {
                    t.thread_id = t.thread_id.or(thread_id);
                }
            }
            QueryKind::Commit => self.commit_txn(h, pos, None)?,
            QueryKind::Rollback => {
                if self.txn.is_some() {
                    self.stats.rollback_groups += 1;
                    tracing::warn!(
                        checkpoint = %self.cp(pos.end),
                        "transaction group ends in ROLLBACK; its rows (non-transactional changes) are kept"
                    );
                    self.commit_txn(h, pos, None)?;
                }
            }
            QueryKind::Savepoint | QueryKind::XaEnd => {}
            QueryKind::XaStart => {
                let xid = query
                    .trim_start()
                    .get(2..)
                    .and_then(|r| r.trim_start().get(5..))
                    .and_then(mariadb::parse_xid_text);
                self.open_txn(h, pos, thread_id, false)?;
                if let Some(t) = self.txn.as_mut() {
                    t.xa = Some(xid);
                }
            }
            QueryKind::XaCommit(xid) | QueryKind::XaRollback(xid) => {
                let commit = matches!(classify(&query), QueryKind::XaCommit(_));
                // The XA COMMIT/ROLLBACK statement is its own group.
                self.next_group = None;
                self.txn = None;
                let pending = xid.as_ref().and_then(|x| self.pending_xa.remove(x));
                match (pending, commit) {
                    (Some(p), true) => {
                        self.pending_xa_bytes -= p.bytes;
                        self.release_xa(h, pos, p)?;
                    }
                    (Some(p), false) => {
                        self.pending_xa_bytes -= p.bytes;
                        self.stats.xa_rolled_back += 1;
                    }
                    (None, _) => {
                        tracing::warn!(
                            checkpoint = %self.cp(pos.end),
                            "XA {} for a transaction prepared before the start of this stream",
                            if commit { "COMMIT" } else { "ROLLBACK" }
                        );
                    }
                }
            }
            QueryKind::Ddl => {
                let in_txn = self.txn.is_some();
                let (gtid, start) = match (&self.txn, self.next_group.take()) {
                    (Some(t), _) => (t.gtid.clone(), t.start),
                    (None, Some((g, _))) => (g, self.cp(pos.end)),
                    (None, None) => (None, self.cp(pos.end)),
                };
                self.stmt_start = None;
                let session = session_settings(&q, h.timestamp);
                let db = String::from_utf8_lossy(q.schema_raw()).into_owned();
                let mut rec = self.marker(Op::Ddl, h, pos, start);
                rec.gtid = gtid;
                rec.thread_id = thread_id;
                rec.database = (!db.is_empty()).then_some(db);
                rec.ddl = Some(Ddl {
                    statement: query.into_owned(),
                    session,
                });
                self.emit(rec)?;
                // Table definitions may have changed: TABLE_MAPs are parsed afresh (they
                // may now map to another schema-history version).
                self.tables.clear();
                if !in_txn {
                    self.stats.transactions += 1;
                }
            }
            QueryKind::Other => {
                self.stats.skipped_statements += 1;
                if self.stats.skipped_statements == 1 {
                    tracing::warn!(
                        checkpoint = %self.cp(pos.end),
                        "statement-format event skipped: only row-format changes can be tracked \
                         (binlog_format=ROW)"
                    );
                }
            }
        }
        Ok(())
    }

    fn on_xa_prepare(&mut self, h: &EventHeader, body: &[u8], pos: Pos) -> Result<()> {
        let (one_phase, xid) = mariadb::parse_xa_prepare(body)?;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let p = PendingXa {
            start: txn.start,
            records: txn.held,
            bytes: txn.held_bytes,
        };
        if one_phase {
            self.release_xa(h, pos, p)
        } else {
            self.pending_xa_bytes += p.bytes;
            if let Some(old) = self.pending_xa.insert(xid, p) {
                self.pending_xa_bytes -= old.bytes;
            }
            Ok(())
        }
    }

    /// Emits a committed XA transaction's records at the position of its commit.
    fn release_xa(&mut self, h: &EventHeader, pos: Pos, p: PendingXa) -> Result<()> {
        let at = self.cp(pos.end);
        let mut begin = self.marker(Op::Begin, h, pos, p.start);
        begin.gtid = p.records.first().and_then(|r| r.gtid.clone());
        let gtid = begin.gtid.clone();
        self.emit(begin)?;
        for mut r in p.records {
            r.checkpoint = at;
            r.timestamp = h.timestamp;
            self.emit(r)?;
        }
        let mut commit = self.marker(Op::Commit, h, pos, p.start);
        commit.gtid = gtid;
        self.emit(commit)?;
        self.stats.transactions += 1;
        Ok(())
    }

    fn on_rows(
        &mut self,
        h: &EventHeader,
        body: &[u8],
        pos: Pos,
        compressed: Option<u8>,
    ) -> Result<()> {
        let (event_type, kind) = match compressed.unwrap_or(h.type_code) {
            23 | mariadb::WRITE_ROWS_COMPRESSED_V1 => {
                (EventType::WRITE_ROWS_EVENT_V1, RowsKind::Write)
            }
            24 | mariadb::UPDATE_ROWS_COMPRESSED_V1 => {
                (EventType::UPDATE_ROWS_EVENT_V1, RowsKind::Update)
            }
            25 | mariadb::DELETE_ROWS_COMPRESSED_V1 => {
                (EventType::DELETE_ROWS_EVENT_V1, RowsKind::Delete)
            }
            30 | mariadb::WRITE_ROWS_COMPRESSED => (EventType::WRITE_ROWS_EVENT, RowsKind::Write),
            31 | mariadb::UPDATE_ROWS_COMPRESSED => {
                (EventType::UPDATE_ROWS_EVENT, RowsKind::Update)
            }
            32 | mariadb::DELETE_ROWS_COMPRESSED => {
                (EventType::DELETE_ROWS_EVENT, RowsKind::Delete)
            }
            _ => (
                EventType::PARTIAL_UPDATE_ROWS_EVENT,
                RowsKind::PartialUpdate,
            ),
        };
        let ev = RowsHeader::parse(
            body,
            self.fde.get_event_type_header_length(event_type),
            kind,
        )?;
        let table_id = ev.table_id;
        let schema = self.tables.get(table_id).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::SchemaMismatch,
                format!("rows event for table id {table_id} without a preceding TABLE_MAP"),
            )
        })?;
        let ncols = ev.num_columns;
        if ncols != schema.decoders.len() as u64 {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "rows event for {}.{} has {ncols} columns, its TABLE_MAP {}",
                    schema.info.database,
                    schema.info.table,
                    schema.decoders.len()
                ),
            ));
        }
        let stmt_end = ev.flags & 1 != 0;
        let (before_bits, after_bits) = (ev.before, ev.after);
        // One shared buffer per event: string values are slices of it.
        let rows_data = if compressed.is_some() {
            bytes::Bytes::from(mariadb::uncompress(
                ev.rows,
                self.opts.max_event_size as usize,
            )?)
        } else {
            bytes::Bytes::copy_from_slice(ev.rows)
        };
        if self.txn.is_none() {
            self.open_txn(h, pos, None, true)?;
            if let Some(t) = self.txn.as_mut() {
                t.implicit = true;
            }
        }
        let (start, gtid, thread_id) = match &self.txn {
            Some(t) => (t.start, t.gtid.clone(), t.thread_id),
            None => (self.cp(pos.start), None, None),
        };
        let op = match kind {
            RowsKind::Write => Op::Insert,
            RowsKind::Delete => Op::Delete,
            RowsKind::Update | RowsKind::PartialUpdate => Op::Update,
        };
        let full_before = before_bits.is_none_or(|b| all_set(b, schema.decoders.len()));
        let full_after = after_bits.is_none_or(|b| all_set(b, schema.decoders.len()));
        let flags = RecordFlags {
            names_missing: schema.info.names_missing,
            partial_image: !(full_before && full_after),
        };
        let checkpoint = self.cp(pos.end);
        let server_version = Arc::clone(&self.server_version);
        let info = Arc::clone(&schema.info);
        // Rows go straight into the output queue (or, for a prepared XA transaction, into its
        // held list): one move per record.
        let holding = self.txn.as_ref().is_some_and(|t| t.xa.is_some());
        let queue_len = self.out.len();
        let out = &mut self.out;
        decode_rows(
            &rows_data,
            &schema,
            kind,
            before_bits,
            after_bits,
            |(before, after)| {
                out.push_back(ChangeRecord {
                    seq: 0,
                    checkpoint,
                    safe_checkpoint: start,
                    timestamp: h.timestamp,
                    op,
                    table: Some(Arc::clone(&info)),
                    database: None,
                    before,
                    after,
                    ddl: None,
                    gtid: gtid.clone(),
                    xid: None,
                    thread_id,
                    server_id: h.server_id,
                    server_version: Arc::clone(&server_version),
                    flags,
                });
                Ok(())
            },
        )
        .inspect_err(|_| self.out.truncate(queue_len))?;
        if holding {
            let recs: Vec<ChangeRecord> = self.out.drain(queue_len..).collect();
            for r in recs {
                self.emit(r)?;
            }
        } else {
            let n = (self.out.len() - queue_len) as u64;
            self.stats.records += n;
            self.stats.rows += n;
        }
        if stmt_end && self.txn.as_ref().is_some_and(|t| t.implicit) {
            self.commit_txn(h, pos, None)?;
        }
        Ok(())
    }

    fn on_payload(&mut self, h: &EventHeader, body: &[u8], pos: Pos) -> Result<()> {
        let fde = Arc::clone(&self.fde);
        let p: TransactionPayloadEvent<'_> = parse(&fde, h, body, "TRANSACTION_PAYLOAD")?;
        let max = u64::from(self.opts.max_event_size);
        let data = p.payload_raw();
        let mut reader: Box<dyn Read + '_> = match p.algorithm() {
            TransactionPayloadCompressionType::NONE => Box::new(data),
            TransactionPayloadCompressionType::ZSTD => Box::new(
                zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| Error::corruption(format!("bad zstd payload: {e}")))?,
            ),
        };
        let mut buf = std::mem::take(&mut self.payload_buf);
        let result = (|| -> Result<()> {
            loop {
                let mut head = [0u8; HEADER_LEN];
                match read_full(&mut reader, &mut head)? {
                    0 => return Ok(()),
                    n if n < HEADER_LEN => {
                        return Err(Error::corruption(
                            "compressed payload ends inside an event header",
                        ))
                    }
                    _ => {}
                }
                let ih = EventHeader::parse(&head);
                let size = u64::from(ih.event_size);
                if size < HEADER_LEN as u64 || size > max {
                    return Err(Error::corruption(format!(
                        "event inside a compressed payload has a bad size {size}"
                    )));
                }
                buf.clear();
                let want = size - HEADER_LEN as u64;
                (&mut reader)
                    .take(want)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::corruption(format!("bad zstd payload: {e}")))?;
                if buf.len() as u64 != want {
                    return Err(Error::corruption("compressed payload ends inside an event"));
                }
                if matches!(ih.type_code, 40 | frame::FORMAT_DESCRIPTION) {
                    return Err(Error::corruption(
                        "nested payload or FDE inside a compressed payload",
                    ));
                }
                self.handle(&ih, &buf, pos)?;
            }
        })();
        self.payload_buf = buf;
        result
    }
}

fn parse<'a, T>(
    fde: &'a FormatDescriptionEvent<'a>,
    h: &EventHeader,
    body: &'a [u8],
    what: &str,
) -> Result<T>
where
    T: MyDeserialize<'a, Ctx = BinlogCtx<'a>>,
{
    let ctx = BinlogCtx::new(HEADER_LEN + body.len(), fde, h.type_code);
    ParseBuf(body).parse::<T>(ctx).map_err(|e| mc(&e, what))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::corruption(format!("bad zstd payload: {e}"))),
        }
    }
    Ok(n)
}

/// The fixed part of a rows event: table id, flags, column count and image bitmaps.
struct RowsHeader<'a> {
    table_id: u64,
    flags: u16,
    num_columns: u64,
    before: Option<&'a [u8]>,
    after: Option<&'a [u8]>,
    rows: &'a [u8],
}

impl<'a> RowsHeader<'a> {
    /// `post_header_len` comes from the FDE: 6 (4-byte table id, 5.1.x), 8 (v1) or 10 (v2, with
    /// variable extra data).
    fn parse(body: &'a [u8], post_header_len: u8, kind: RowsKind) -> Result<Self> {
        let mut c = crate::binlog::rows::Cursor::new(body);
        let table_id = if post_header_len == 6 {
            c.uint_le(4)?
        } else {
            c.uint_le(6)?
        };
        let flags = c.uint_le(2)? as u16;
        if post_header_len == 10 {
            let extra = c.uint_le(2)? as usize;
            c.take(extra.saturating_sub(2))?;
        }
        let num_columns = c.lenenc()?;
        let nbytes = usize::try_from(num_columns.div_ceil(8))
            .map_err(|_| Error::corruption("column count"))?;
        let (before, after) = match kind {
            RowsKind::Write => (None, Some(c.take(nbytes)?)),
            RowsKind::Delete => (Some(c.take(nbytes)?), None),
            RowsKind::Update | RowsKind::PartialUpdate => {
                (Some(c.take(nbytes)?), Some(c.take(nbytes)?))
            }
        };
        Ok(Self {
            table_id,
            flags,
            num_columns,
            before,
            after,
            rows: c.rest(),
        })
    }
}

fn all_set(bits: &[u8], n: usize) -> bool {
    (0..n).all(|i| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
}

fn format_uuid(sid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in sid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn session_settings(q: &QueryEvent<'_>, timestamp: u32) -> String {
    let mut parts = vec![format!("SET TIMESTAMP={timestamp}")];
    for var in q.status_vars().iter() {
        let Ok(v) = var.get_value() else { continue };
        match v {
            StatusVarVal::SqlMode(m) => parts.push(format!("SET @@session.sql_mode={}", m.0)),
            StatusVarVal::AutoIncrement { increment, offset } => parts.push(format!(
                "SET @@session.auto_increment_increment={increment}, @@session.auto_increment_offset={offset}"
            )),
            StatusVarVal::Charset { charset_client, collation_connection, collation_server } => {
                let client = charset_of_collation(charset_client)
                    .map_or_else(|| charset_client.to_string(), str::to_owned);
                parts.push(format!(
                    "SET @@session.character_set_client={client}, @@session.collation_connection={collation_connection}, @@session.collation_server={collation_server}"
                ));
            }
            StatusVarVal::TimeZone(tz) => {
                parts.push(format!("SET @@session.time_zone='{}'", String::from_utf8_lossy(tz.as_bytes())));
            }
            StatusVarVal::LcTimeNames(n) => parts.push(format!("SET @@session.lc_time_names={n}")),
            StatusVarVal::CharsetDatabase(n) => parts.push(format!("SET @@session.collation_database={n}")),
            _ => {}
        }
    }
    let db = String::from_utf8_lossy(q.schema_raw());
    if !db.is_empty() {
        parts.push(format!("USE `{}`", db.replace('`', "``")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_queries() {
        assert_eq!(classify("BEGIN"), QueryKind::Begin);
        assert_eq!(classify("COMMIT"), QueryKind::Commit);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT s1"), QueryKind::Savepoint);
        assert_eq!(classify("ROLLBACK"), QueryKind::Rollback);
        assert_eq!(classify("/* x */ ALTER TABLE t ADD c INT"), QueryKind::Ddl);
        assert_eq!(classify("create table t (a int)"), QueryKind::Ddl);
        assert_eq!(classify("INSERT INTO t VALUES (1)"), QueryKind::Other);
        assert!(matches!(
            classify("XA COMMIT X'78',X'',1"),
            QueryKind::XaCommit(Some(_))
        ));
        assert!(matches!(
            classify("XA ROLLBACK X'78',X'',1"),
            QueryKind::XaRollback(Some(_))
        ));
        assert_eq!(classify("XA END X'78',X'',1"), QueryKind::XaEnd);
    }
}
