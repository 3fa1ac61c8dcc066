//! Reading stored records into Kafka record batches for Fetch.
//!
//! Records are served in blocks of [`BLOCK`] consecutive offsets (`1..=1024`, `1025..=2048`,
//! ...), one RecordBatch each. A full block never changes, so its encoded batch is kept in a
//! cache shared by every connection ([`Blocks`], bounded in bytes): a hundred groups reading
//! the same history encode it once. The block holding the newest records is encoded for each
//! Fetch from the requested offset and not cached. A Fetch in the middle of a full block gets
//! the whole block: Kafka allows a batch to start before the fetch offset, and every client
//! skips the records before it.
//!
//! Encoding (decoding the stored record, writing its Avro, the batch, its CRC) is the costly
//! part of a Fetch. After each answer the connection asks for the blocks that follow it, and a
//! pool of worker threads encodes them ahead while the response travels and the client parses
//! it: the next Fetch usually finds its blocks ready, and both cores work for one consumer. A
//! block is encoded once even when several connections want it at the same moment (the later
//! ones wait for it). Responses are written from the cached blocks without copying them.
//!
//! With a batch log ([`crate::log`]) a full block is encoded once for the life of the log:
//! the workers and the log's filler write it there, and a Fetch sends it from the file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use changetrack::record::avro::AvroWriter;
use changetrack::{ChangeRecord, Error, ErrorKind, ReadFrom, RecordIter, Result, Store};

use crate::batch::BatchWriter;
use crate::log::{BatchLog, Found, Region};
use crate::mapping::{offset_of, timestamp_ms};
use crate::metrics::Metrics;

/// Records per cached block.
pub const BLOCK: u64 = 1024;

/// Blocks a connection asks the workers to prepare after each answer.
const AHEAD: u64 = 6;

/// Block indexes waiting for a worker, at most.
const QUEUE: usize = 256;

fn block_of(seq: u64) -> (u64, u64, u64) {
    let index = (seq - 1) / BLOCK;
    (index, index * BLOCK + 1, (index + 1) * BLOCK)
}

/// An encoded batch.
pub(crate) struct Block {
    pub bytes: Vec<u8>,
}

/// A part of a Fetch answer's records, in order.
pub(crate) enum Piece {
    /// A shared, cached full block.
    Block(Arc<Block>),
    /// Records encoded for this answer.
    Own(Vec<u8>),
    /// A full block's checked batch in the batch log, sent from its file.
    Logged(Region),
}

impl Piece {
    /// The bytes, for the pieces held in memory.
    pub(crate) fn in_memory(&self) -> Option<&[u8]> {
        match self {
            Self::Block(b) => Some(&b.bytes),
            Self::Own(v) => Some(v),
            Self::Logged(_) => None,
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Block(b) => b.bytes.len(),
            Self::Own(v) => v.len(),
            Self::Logged(r) => r.len(),
        }
    }
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<u64, Arc<Block>>,
    order: VecDeque<u64>,
    bytes: usize,
    /// Blocks being encoded now.
    building: HashSet<u64>,
    /// Blocks waiting for a worker.
    queue: VecDeque<u64>,
}

/// The shared blocks: cache, prefetch queue and workers.
pub(crate) struct Blocks {
    cap: usize,
    /// Full blocks kept on disk (optional).
    log: Option<BatchLog>,
    metrics: Arc<Metrics>,
    inner: Mutex<CacheInner>,
    /// Signalled when a block is done or the queue has work.
    cond: Condvar,
    stop: AtomicBool,
}

impl Blocks {
    pub(crate) fn new(cap: usize, log: Option<BatchLog>, metrics: Arc<Metrics>) -> Self {
        Self {
            cap,
            log,
            metrics,
            inner: Mutex::new(CacheInner::default()),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether full blocks are shared (in memory, on disk or both).
    pub(crate) fn enabled(&self) -> bool {
        self.cap > 0 || self.log.is_some()
    }

    /// Full block `index` (`first..=last`): read from the batch log when it holds it,
    /// otherwise encoded from the store (and added to the log).
    fn produce(&self, index: u64, first: u64, last: u64, reader: &mut Reader<'_>) -> Result<Block> {
        if let Some(log) = &self.log {
            match log.get(index) {
                Found::Batch(bytes) => {
                    self.metrics.batch_log_hits.inc();
                    return Ok(Block { bytes });
                }
                Found::Damaged => self.metrics.batch_log_damaged.inc(),
                Found::Missing => {}
            }
        }
        let b = reader.encode_block(first, last)?;
        if let Some(log) = &self.log {
            log.put(index, &b.bytes);
        }
        Ok(b)
    }

    /// Caches `block`; returns the blocks evicted for it, for the caller to drop once it has
    /// released the lock (freeing a block of a few hundred KiB under it stalled the others).
    #[must_use]
    fn insert(&self, c: &mut CacheInner, index: u64, block: &Arc<Block>) -> Vec<Arc<Block>> {
        let mut evicted = Vec::new();
        let n = block.bytes.len();
        if n > self.cap / 4 || c.map.insert(index, Arc::clone(block)).is_some() {
            return evicted;
        }
        c.order.push_back(index);
        c.bytes += n;
        while c.bytes > self.cap {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.bytes.len();
                evicted.push(b);
            }
        }
        evicted
    }

    /// The encoded block `index` (`first..=last`): from the cache, from a worker that is
    /// encoding it, or encoded now with `reader`.
    fn get(
        &self,
        index: u64,
        first: u64,
        last: u64,
        reader: &mut Reader<'_>,
    ) -> Result<Arc<Block>> {
        {
            let mut c = self.lock();
            loop {
                if let Some(b) = c.map.get(&index) {
                    return Ok(Arc::clone(b));
                }
                if !c.building.contains(&index) {
                    break;
                }
                c = self
                    .cond
                    .wait_timeout(c, Duration::from_millis(50))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            c.building.insert(index);
            c.queue.retain(|&i| i != index);
        }
        let built = self.produce(index, first, last, reader);
        let mut c = self.lock();
        c.building.remove(&index);
        let b = built.map(Arc::new);
        let evicted = match &b {
            Ok(b) => self.insert(&mut c, index, b),
            Err(_) => Vec::new(),
        };
        drop(c);
        self.cond.notify_all();
        drop(evicted);
        b
    }

    /// Full block `index` as a checked region of the batch log, unless it is in memory.
    fn region(&self, index: u64) -> Option<Region> {
        let log = self.log.as_ref()?;
        if self.lock().map.contains_key(&index) {
            return None;
        }
        let r = log.region(index)?;
        self.metrics.batch_log_hits.inc();
        Some(r)
    }

    /// Asks the workers for the full blocks after `seq` (up to `last`).
    fn prefetch(&self, seq: u64, last: u64) {
        if !self.enabled() || seq > last {
            return;
        }
        let (first, _, _) = block_of(seq);
        let mut c = self.lock();
        let mut added = false;
        for index in first..first + AHEAD {
            if (index + 1) * BLOCK > last {
                break;
            }
            if c.map.contains_key(&index)
                || c.building.contains(&index)
                || c.queue.contains(&index)
                || self.log.as_ref().is_some_and(|l| l.is_checked(index))
            {
                continue;
            }
            if c.queue.len() >= QUEUE {
                break;
            }
            c.queue.push_back(index);
            added = true;
        }
        drop(c);
        if added {
            self.cond.notify_all();
        }
    }

    /// A worker: encodes queued blocks until [`Blocks::stop`].
    pub(crate) fn work(&self, store: &Store) {
        let mut reader = Reader::new(store);
        loop {
            let index = {
                let mut c = self.lock();
                loop {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some(i) = c.queue.pop_front() {
                        if !c.map.contains_key(&i) && c.building.insert(i) {
                            break i;
                        }
                        continue;
                    }
                    reader.release();
                    c = self
                        .cond
                        .wait_timeout(c, Duration::from_millis(200))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            };
            let (first, last) = (index * BLOCK + 1, (index + 1) * BLOCK);
            // The block may have been trimmed by now, or not be stored yet: then the
            // connection that needs it finds out itself.
            let built = if store
                .oldest_seq()
                .ok()
                .flatten()
                .is_some_and(|o| o <= first)
                && store.last_seq() >= last
            {
                self.produce(index, first, last, &mut reader).ok()
            } else {
                None
            };
            let mut c = self.lock();
            c.building.remove(&index);
            let evicted = match built {
                Some(b) => self.insert(&mut c, index, &Arc::new(b)),
                None => Vec::new(),
            };
            drop(c);
            self.cond.notify_all();
            drop(evicted);
        }
    }

    /// Adds full block `index` to the batch log, from the memory cache or encoded now, unless
    /// another thread is producing it (that one adds it).
    fn fill(&self, log: &BatchLog, index: u64, reader: &mut Reader<'_>) {
        let cached = {
            let mut c = self.lock();
            if c.building.contains(&index) {
                return;
            }
            let b = c.map.get(&index).cloned();
            if b.is_none() {
                c.building.insert(index);
            }
            b
        };
        if let Some(b) = cached {
            log.put(index, &b.bytes);
            return;
        }
        match reader.encode_block(index * BLOCK + 1, (index + 1) * BLOCK) {
            Ok(b) => log.put(index, &b.bytes),
            // Trimmed meanwhile, or damaged: a connection that needs it reports it.
            Err(e) => tracing::debug!("cannot add block {index} to the batch log: {e}"),
        }
        self.lock().building.remove(&index);
        self.cond.notify_all();
    }

    /// Checks the batch log's lowest and highest blocks against the store's records, and
    /// empties it when they differ (a log left from another history of the store).
    /// Called before the server serves anything.
    pub(crate) fn check_log(&self, store: &Store) {
        let Some(log) = &self.log else {
            return;
        };
        let Some((lo, hi)) = log.span() else {
            return;
        };
        let reader = &mut Reader::new(store);
        let oldest = store.oldest_seq().ok().flatten().unwrap_or(u64::MAX);
        let last = store.last_seq();
        for index in [lo, hi] {
            let (first, end) = (index * BLOCK + 1, (index + 1) * BLOCK);
            if end > last {
                tracing::warn!(
                    "the batch log holds offsets past the store's newest record {last}: emptying it"
                );
                log.clear();
                return;
            }
            if first < oldest {
                continue;
            }
            let kept = match log.get(index) {
                Found::Batch(b) => b,
                Found::Damaged => {
                    self.metrics.batch_log_damaged.inc();
                    continue;
                }
                Found::Missing => continue,
            };
            if let Ok(now) = reader.encode_block(first, end) {
                if kept != now.bytes {
                    tracing::warn!("the batch log does not match the store's records at offset {first}: emptying it");
                    log.clear();
                    return;
                }
            }
        }
    }

    /// The batch log's filler (one thread): adds every full block the log lacks,
    /// oldest first, then each new one as the store commits it, and removes what retention
    /// removed from the store, until [`Blocks::stop`].
    pub(crate) fn fill_log(&self, store: &Store) {
        let Some(log) = &self.log else {
            return;
        };
        let mut reader = Reader::new(store);
        let wake = store.subscribe();
        // Blocks below this one were filled (or were in the log) at the last pass.
        let mut done = 0u64;
        let mut filled = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            if let Ok(Some(oldest)) = store.oldest_seq() {
                // The first block whose records are all still stored.
                let first = (oldest - 1).div_ceil(BLOCK);
                log.trim_below(first);
                let end = store.last_seq() / BLOCK;
                let mut index = first.max(log.floor()).max(done);
                while index < end && log.writable() && !self.stop.load(Ordering::SeqCst) {
                    if !log.contains(index) {
                        self.fill(log, index, &mut reader);
                        filled += 1;
                    } else if !log.is_checked(index) {
                        // Held from an earlier run: checked once, then sent from the file.
                        if let Found::Damaged = log.get(index) {
                            self.metrics.batch_log_damaged.inc();
                            self.fill(log, index, &mut reader);
                            filled += 1;
                        }
                    }
                    index += 1;
                }
                done = index;
                if filled > 0 && index >= end {
                    tracing::info!(
                        blocks = filled,
                        bytes = log.bytes(),
                        "batch log filled up to offset {}",
                        end * BLOCK
                    );
                    filled = 0;
                }
            }
            reader.release();
            let _ = wake.recv_timeout(Duration::from_millis(200));
        }
    }

    /// Ends the workers.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cond.notify_all();
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// What one read returned.
#[derive(Default)]
pub(crate) struct Fetched {
    pub pieces: Vec<Piece>,
    pub bytes: usize,
    pub records: u64,
}

/// A connection's (or worker's) reader: its store iterator and scratch buffers.
pub(crate) struct Reader<'s> {
    store: &'s Store,
    cursor: Option<(u64, RecordIter<'s>)>,
    value: Vec<u8>,
    avro: AvroWriter,
    /// The size of the last block encoded (blocks of one store are alike).
    block_hint: usize,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            cursor: None,
            value: Vec::with_capacity(4096),
            avro: AvroWriter::new(),
            block_hint: 256 << 10,
        }
    }

    /// Drops the store iterator (it pins the files it reads from).
    pub(crate) fn release(&mut self) {
        self.cursor = None;
    }

    /// The record at `seq`, through the kept iterator when it is there: its Kafka value (DTS
    /// Avro, written straight from the stored bytes) in `self.value`, and the record without
    /// its images.
    fn next_record(&mut self, seq: u64) -> Result<ChangeRecord> {
        self.value.clear();
        for attempt in 0..2 {
            let keep = matches!(&self.cursor, Some((next, _)) if *next == seq);
            if !keep {
                self.cursor = Some((seq, self.store.iter(ReadFrom::Seq(seq))?));
            }
            let Some((next, it)) = self.cursor.as_mut() else {
                break;
            };
            match it.next_avro(&mut self.avro, &mut self.value) {
                Some(Ok(r)) if r.seq == seq => {
                    *next = seq + 1;
                    return Ok(r);
                }
                Some(Ok(r)) => {
                    self.cursor = None;
                    return Err(Error::new(
                        ErrorKind::Corruption,
                        format!(
                            "record {seq} is missing from the store (the next one is {})",
                            r.seq
                        ),
                    ));
                }
                Some(Err(e)) => {
                    self.cursor = None;
                    return Err(e);
                }
                // The iterator's snapshot ended before `seq`: start a new one once.
                None if attempt == 0 => self.cursor = None,
                None => break,
            }
        }
        self.cursor = None;
        Err(Error::new(
            ErrorKind::Corruption,
            format!("record {seq} is not in the store although it was committed"),
        ))
    }

    /// Encodes records `from..=to` as one batch at the end of `out`, stopping early (after at
    /// least one record) once the batch reaches `limit` bytes. Returns the last seq written.
    fn encode(&mut self, from: u64, to: u64, limit: usize, out: &mut Vec<u8>) -> Result<u64> {
        let first = self.next_record(from)?;
        let mut w = BatchWriter::new(out, offset_of(from), timestamp_ms(&first));
        let mut rec = first;
        let mut seq = from;
        loop {
            w.push(
                offset_of(seq),
                timestamp_ms(&rec),
                None,
                Some(&self.value),
                &[],
            );
            if seq >= to || w.len() >= limit {
                break;
            }
            seq += 1;
            rec = self.next_record(seq)?;
        }
        w.finish();
        Ok(seq)
    }

    fn encode_block(&mut self, first: u64, last: u64) -> Result<Block> {
        // A block is read whole, once (its encoding is what gets cached): scan settings.
        if !matches!(&self.cursor, Some((next, _)) if *next == first) {
            self.cursor = Some((first, self.store.iter_range(first, last)?));
        }
        let mut bytes = Vec::with_capacity(self.block_hint);
        self.encode(first, last, usize::MAX, &mut bytes)?;
        self.block_hint = bytes.len() + bytes.len() / 8;
        if bytes.capacity() > bytes.len() + bytes.len() / 4 {
            bytes.shrink_to_fit();
        }
        Ok(Block { bytes })
    }

    /// Reads the records from `from` on (at most to `last`, the newest committed seq), about
    /// `limit` bytes of them (always at least one batch), then asks the workers for what
    /// follows. `fresh`: nothing is in the response yet, so a cached block may start before
    /// `from` (otherwise it would repeat records the response already holds).
    pub(crate) fn read(
        &mut self,
        blocks: &Blocks,
        (oldest, from, last): (u64, u64, u64),
        limit: usize,
        fresh: bool,
    ) -> Result<Fetched> {
        let mut f = Fetched::default();
        let mut seq = from;
        while seq <= last && (f.bytes == 0 || f.bytes < limit) {
            let (index, bstart, bend) = block_of(seq);
            if bend <= last && bstart >= oldest && blocks.enabled() && (fresh || seq == bstart) {
                let piece = match blocks.region(index) {
                    Some(r) => Piece::Logged(r),
                    None => Piece::Block(blocks.get(index, bstart, bend, self)?),
                };
                if f.bytes > 0 && f.bytes + piece.len() > limit {
                    break;
                }
                f.bytes += piece.len();
                f.records += bend + 1 - seq;
                f.pieces.push(piece);
                seq = bend + 1;
            } else {
                let to = if bend <= last { bend } else { last };
                let mut own = Vec::with_capacity(limit.saturating_sub(f.bytes).min(1 << 20));
                let end = self.encode(seq, to, limit.saturating_sub(f.bytes).max(1), &mut own)?;
                f.bytes += own.len();
                f.records += end - seq + 1;
                f.pieces.push(Piece::Own(own));
                seq = end + 1;
            }
        }
        blocks.prefetch(seq, last);
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned() {
        assert_eq!(block_of(1), (0, 1, 1024));
        assert_eq!(block_of(1024), (0, 1, 1024));
        assert_eq!(block_of(1025), (1, 1025, 2048));
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let c = Blocks::new(10_000, None, Arc::default());
        let mut evicted = 0;
        for i in 0..20 {
            let mut inner = c.lock();
            evicted += c
                .insert(
                    &mut inner,
                    i,
                    &Arc::new(Block {
                        bytes: vec![0; 1000],
                    }),
                )
                .len();
        }
        // Ten of 1000 bytes fit: the ten oldest went, and were handed back to be dropped.
        assert_eq!(evicted, 10);
        assert!(c.bytes() <= 10_000);
        assert!(c.lock().map.contains_key(&19));
        assert!(!c.lock().map.contains_key(&0));
    }
}
