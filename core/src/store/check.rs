//! `Store::check`: what is wrong with a store, and what can be saved.
//!
//! The quick check is what every open does (the table files the manifest lists, the format,
//! the tail against the oldest and newest records, the writer's acknowledged position) plus
//! every group file and the resume position against the last stored transaction. The deep
//! check reads every record (RocksDB verifies each block's checksum; the codec checks each
//! record) and every index entry against the records.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{ErrorKind, Result};
use crate::record::{Checkpoint, Op};

use super::keys::*;
use super::{preflight, record_object, verify_db, witness, Store, StoreOptions};

/// What [`Store::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// What is wrong, one sentence each (empty: nothing).
    pub problems: Vec<String>,
    /// The stored seq range according to the store's tail (`None`: empty or unreadable).
    pub seq_range: Option<(u64, u64)>,
    /// Records read (deep check).
    pub records_read: u64,
    /// The whole transactions readable from the oldest record on, without a gap: what
    /// [`Store::salvage`] keeps (deep check).
    pub intact: Option<(u64, u64)>,
    /// Where ingestion resumes after a salvage: the checkpoint of the last record kept.
    pub resume_after: Option<Checkpoint>,
    /// Groups checked.
    pub groups: usize,
    /// Whether the deep check ran.
    pub deep: bool,
}

impl CheckReport {
    /// Whether nothing is wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether a record ends a transaction (a marker, or a statement outside one).
fn ends_transaction(op: Op, in_txn: bool) -> bool {
    match op {
        Op::Commit | Op::Heartbeat => true,
        Op::Ddl => !in_txn,
        _ => false,
    }
}

/// One record as the deep check remembers it.
struct Seen {
    checkpoint: Checkpoint,
    timestamp: u32,
    op: Op,
    table: Option<u64>,
    database: Option<u64>,
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Store {
    /// Checks the store in `path` without changing anything (it may be open for writing
    /// elsewhere: the check reads it as a follower). `deep` reads every record and index entry.
    ///
    /// # Errors
    /// `NotFound` when there is no store; problems found are in the report, not errors.
    pub fn check(path: &Path, deep: bool) -> Result<CheckReport> {
        let mut report = CheckReport {
            deep,
            ..CheckReport::default()
        };
        if !path.join("CURRENT").exists() && super::store_files(path).is_empty() {
            return Err(crate::Error::new(
                ErrorKind::NotFound,
                format!("no store in {}", path.display()),
            ));
        }
        // What a writer's open would refuse (when no writer runs now: then the acknowledged
        // position must be stored).
        let writer_running = super::writer_running(path);
        if !writer_running {
            if let Err(e) = preflight(path, &StoreOptions::default(), true, true) {
                report.problems.push(e.message().to_owned());
            }
        }
        let store = match Self::open_checked(
            path,
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            },
            false,
        ) {
            Ok(s) => s,
            Err(e) => {
                report
                    .problems
                    .push(format!("cannot open the store: {}", e.message()));
                return Ok(report);
            }
        };
        if let Err(e) = verify_db(&store.inner.db, path, None) {
            if !report.problems.iter().any(|p| p == e.message()) {
                report.problems.push(e.message().to_owned());
            }
        }
        let tail = store.read_tail().unwrap_or_default();
        if tail.last_seq > 0 {
            report.seq_range = Some((tail.oldest_seq.max(1), tail.last_seq));
        }
        if writer_running {
            if let Some(a) = witness(path).filter(|&a| a > tail.last_seq) {
                tracing::debug!(acknowledged = a, "the writer is ahead of this view");
            }
        }
        // Groups.
        match crate::group::Groups::open(path).and_then(|g| g.verify_all()) {
            Ok(groups) => {
                report.groups = groups.len();
                for (id, committed, problem) in groups {
                    if let Some(p) = problem {
                        report.problems.push(format!("group {id}: {p}"));
                    } else if let Some(c) = committed.filter(|&c| c > tail.last_seq) {
                        report.problems.push(format!(
                            "group {id} committed seq {c}, after the store's newest record {}: records were lost",
                            tail.last_seq
                        ));
                    }
                }
            }
            Err(e) => report
                .problems
                .push(format!("cannot read the groups: {}", e.message())),
        }
        // The resume position against the last stored transaction.
        match (store.source_position(), tail.last_seq) {
            (Err(e), _) => report.problems.push(format!(
                "the resume position is unreadable: {}",
                e.message()
            )),
            // Records appended through the library without a source position: nothing to
            // check.
            (Ok(None), _) => {}
            (Ok(Some(pos)), n) if n > 0 => {
                if let Ok(last) = store.get_raw(n) {
                    if last.op != Op::Heartbeat && pos.stored_through < last.checkpoint {
                        report.problems.push(format!(
                            "the resume position says everything through {} is stored, but the newest record is at {}",
                            pos.stored_through, last.checkpoint
                        ));
                    }
                    if Checkpoint::new(pos.file_index, pos.offset) < last.checkpoint {
                        report.problems.push(format!(
                            "ingestion would resume at {}@{}, before the newest record's checkpoint {}: it would store records twice",
                            pos.offset, pos.file_index, last.checkpoint
                        ));
                    }
                }
            }
            _ => {}
        }
        if deep {
            store.check_deep(&tail, &mut report)?;
        } else if report.is_ok() {
            report.intact = report.seq_range;
        }
        Ok(report)
    }

    /// Reads every record and index entry.
    fn check_deep(&self, tail: &super::Tail, report: &mut CheckReport) -> Result<()> {
        let Some((oldest, last)) = report.seq_range else {
            return Ok(());
        };
        let mut seen: Vec<Seen> = Vec::new();
        let cf = self.cf(CF_RECORDS)?;
        let mut it = self.inner.db.raw_iterator_cf(cf);
        it.seek(seq_key(oldest));
        let mut expect = oldest;
        let mut cache = crate::record::codec::DecodeCache::default();
        let mut in_txn = false;
        // The end of the last whole transaction read without a gap.
        let mut whole: Option<(u64, Checkpoint)> = None;
        let mut broken = false;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let seq = seq_from(k)?;
            if seq > last {
                break;
            }
            if seq != expect {
                report
                    .problems
                    .push(self.missing(expect, seq).message().to_owned());
                broken = true;
                break;
            }
            match self.decode_record_cached(seq, v, &mut cache) {
                Ok(r) => {
                    let obj = record_object(&r);
                    seen.push(Seen {
                        checkpoint: r.checkpoint,
                        timestamp: r.timestamp,
                        op: r.op,
                        database: obj.as_ref().map(|(d, _)| hash(d)),
                        table: obj
                            .as_ref()
                            .and_then(|(d, t)| t.as_ref().map(|t| hash(&format!("{d}\u{0}{t}")))),
                    });
                    if ends_transaction(r.op, in_txn) {
                        whole = Some((seq, r.checkpoint));
                    }
                    in_txn = match r.op {
                        Op::Begin => true,
                        Op::Commit => false,
                        _ => in_txn,
                    };
                }
                Err(e) => {
                    report
                        .problems
                        .push(format!("record {seq}: {}", e.message()));
                    broken = true;
                    break;
                }
            }
            report.records_read += 1;
            expect = seq + 1;
            it.next();
        }
        if let Err(e) = it.status() {
            report.problems.push(format!(
                "reading records after seq {}: {}",
                expect - 1,
                e.clone().into_string()
            ));
            broken = true;
        }
        if !broken && expect <= last {
            report
                .problems
                .push(self.missing(expect, last + 1).message().to_owned());
            broken = true;
        }
        if tail.records != 0 && !broken && tail.records != report.records_read {
            report.problems.push(format!(
                "the tail counts {} records, {} were read",
                tail.records, report.records_read
            ));
        }
        report.intact = whole.map(|(s, _)| (oldest, s));
        report.resume_after = whole.map(|(_, cp)| cp);
        let at = |seq: u64| -> Option<&Seen> {
            seq.checked_sub(oldest)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| seen.get(i))
        };
        let read_to = oldest + seen.len() as u64;
        let bad = |what: String, report: &mut CheckReport| {
            if report.problems.len() < 100 {
                report.problems.push(what);
            }
        };
        // The checkpoint index.
        let mut it = self.inner.db.raw_iterator_cf(self.cf(CF_BY_CHECKPOINT)?);
        it.seek_to_first();
        let mut by_cp: HashMap<Checkpoint, u64> = HashMap::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let cp = match (k.get(..4), k.get(4..12)) {
                (Some(f), Some(o)) if k.len() == 12 => Checkpoint::new(
                    u32::from_be_bytes(f.try_into().unwrap_or_default()),
                    u64::from_be_bytes(o.try_into().unwrap_or_default()),
                ),
                _ => {
                    bad("a checkpoint index key has the wrong length".into(), report);
                    it.next();
                    continue;
                }
            };
            let seq = seq_from(v)?;
            by_cp.insert(cp, seq);
            let ok = if seq < oldest {
                at(oldest).is_some_and(|s| s.checkpoint == cp)
            } else if seq >= read_to {
                seq > last || broken
            } else {
                at(seq).is_some_and(|s| s.checkpoint == cp)
                    && (seq == oldest || at(seq - 1).is_some_and(|p| p.checkpoint != cp))
            };
            if !ok && seq <= last {
                bad(
                    format!(
                        "the checkpoint index maps {cp} to seq {seq}, whose record is elsewhere"
                    ),
                    report,
                );
            }
            it.next();
        }
        index_status(&it, "checkpoint", report);
        for (i, s) in seen.iter().enumerate() {
            let seq = oldest + i as u64;
            let starts = i == 0 || seen[i - 1].checkpoint != s.checkpoint;
            if starts && seq > oldest && by_cp.get(&s.checkpoint) != Some(&seq) {
                bad(
                    format!(
                        "the checkpoint index has no entry for {} (record {seq})",
                        s.checkpoint
                    ),
                    report,
                );
            }
        }
        // The time index: keys and seqs rise together, each points where the running maximum
        // of record times reached it.
        let mut it = self.inner.db.raw_iterator_cf(self.cf(CF_BY_TIME)?);
        it.seek_to_first();
        let mut prev: Option<(u32, u64)> = None;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let t = k.try_into().map(u32::from_be_bytes).unwrap_or_default();
            let seq = seq_from(v)?;
            if prev.is_some_and(|(pt, ps)| pt >= t || ps > seq) {
                bad(format!("the time index is out of order at {t}"), report);
            }
            // The running maximum of record times reached `t` at `seq`: that record is
            // from `t` or later.
            if let Some(s) = (seq >= oldest).then(|| at(seq)).flatten() {
                if s.timestamp < t {
                    bad(
                        format!(
                            "the time index maps second {t} to seq {seq}, whose record is from {}",
                            s.timestamp
                        ),
                        report,
                    );
                }
            }
            prev = Some((t, seq));
            it.next();
        }
        index_status(&it, "time", report);
        // Transaction starts.
        let mut it = self.inner.db.raw_iterator_cf(self.cf(CF_TXNS)?);
        it.seek_to_first();
        let mut starts = HashSet::new();
        while let Some(k) = it.key() {
            let seq = seq_from(k)?;
            if seq < oldest || seq > last {
                bad(
                    format!("a transaction starts at seq {seq}, outside the stored range"),
                    report,
                );
            }
            starts.insert(seq);
            it.next();
        }
        index_status(&it, "transaction", report);
        for (i, s) in seen.iter().enumerate() {
            let seq = oldest + i as u64;
            if s.op == Op::Begin && !starts.contains(&seq) {
                bad(
                    format!("the transaction index lacks the BEGIN at seq {seq}"),
                    report,
                );
            }
        }
        // The object index: every record of a run belongs to its object; every record of a
        // table is in a run.
        let mut covered = vec![false; seen.len()];
        let mut it = self.inner.db.raw_iterator_cf(self.cf(CF_BY_OBJECT)?);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some((db, table, first)) = parse_object_key(k) else {
                bad("an object index key is malformed".into(), report);
                it.next();
                continue;
            };
            let end = seq_from(v)?;
            let want_db = hash(&db);
            let want_table = table.as_ref().map(|t| hash(&format!("{db}\u{0}{t}")));
            for seq in first.max(oldest)..=end.min(read_to.saturating_sub(1)) {
                let Some(s) = at(seq) else { break };
                let ok = match want_table {
                    Some(t) => s.table == Some(t),
                    None => s.database == Some(want_db),
                };
                if !ok {
                    bad(
                        format!(
                            "the object index puts seq {seq} under {db}{}, which it is not about",
                            table.as_ref().map(|t| format!(".{t}")).unwrap_or_default()
                        ),
                        report,
                    );
                    break;
                }
                if want_table.is_some() {
                    if let Some(c) = covered.get_mut((seq - oldest) as usize) {
                        *c = true;
                    }
                }
            }
            it.next();
        }
        index_status(&it, "object", report);
        if let Some(i) = seen
            .iter()
            .zip(&covered)
            .position(|(s, c)| s.table.is_some() && !c)
        {
            bad(
                format!("the object index has no run for seq {}", oldest + i as u64),
                report,
            );
        }
        Ok(())
    }
}

/// An index iterator that stopped on an error (a damaged block) is a problem, not an end.
fn index_status(
    it: &rocksdb::DBRawIteratorWithThreadMode<'_, rocksdb::DB>,
    name: &str,
    report: &mut CheckReport,
) {
    if let Err(e) = it.status() {
        report
            .problems
            .push(format!("reading the {name} index: {}", e.into_string()));
    }
}

/// `('t', database, table, first)` / `('d', database, first)` of an object index key.
fn parse_object_key(k: &[u8]) -> Option<(String, Option<String>, u64)> {
    let (&kind, mut rest) = k.split_first()?;
    let mut name = || -> Option<String> {
        let n = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let s = std::str::from_utf8(rest.get(2..2 + n)?).ok()?.to_owned();
        rest = rest.get(2 + n..)?;
        Some(s)
    };
    let db = name()?;
    let table = if kind == b't' {
        Some(name()?)
    } else if kind == b'd' {
        None
    } else {
        return None;
    };
    let first = u64::from_be_bytes(rest.try_into().ok()?);
    Some((db, table, first))
}
