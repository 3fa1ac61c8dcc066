//! Reading stored records into Kafka record batches for Fetch.
//!
//! Records are served in blocks of [`BLOCK`] consecutive offsets (`1..=1024`, `1025..=2048`,
//! ...), one RecordBatch each. A full block never changes, so its encoded batch is kept in a
//! cache shared by every connection ([`BatchCache`], bounded in bytes): a hundred groups
//! reading the same history encode it once. The block holding the newest records is encoded
//! for each Fetch from the requested offset and not cached. A Fetch in the middle of a full
//! block gets the whole block: Kafka allows a batch to start before the fetch offset, and
//! every client skips the records before it.
//!
//! Each connection reads through one store iterator that it keeps while the consumer reads on
//! (so a long scan gets the store's read-ahead) and drops at its end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use changetrack::{ChangeRecord, Error, ErrorKind, ReadFrom, RecordIter, Result, Store};

use crate::batch::BatchWriter;
use crate::mapping::{offset_of, timestamp_ms, write_value};

/// Records per cached block.
pub const BLOCK: u64 = 1024;

fn block_of(seq: u64) -> (u64, u64, u64) {
    let index = (seq - 1) / BLOCK;
    (index, index * BLOCK + 1, (index + 1) * BLOCK)
}

/// An encoded batch.
struct Block {
    bytes: Vec<u8>,
    records: u64,
}

/// Encoded full blocks, shared by all connections; first in, first out within a byte budget.
pub(crate) struct BatchCache {
    cap: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<u64, Arc<Block>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl BatchCache {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn get(&self, index: u64) -> Option<Arc<Block>> {
        self.inner.lock().ok()?.map.get(&index).cloned()
    }

    fn put(&self, index: u64, block: Arc<Block>) {
        let n = block.bytes.len();
        if self.cap == 0 || n > self.cap / 4 {
            return;
        }
        let Ok(mut c) = self.inner.lock() else {
            return;
        };
        if c.map.insert(index, block).is_some() {
            return;
        }
        c.order.push_back(index);
        c.bytes += n;
        while c.bytes > self.cap {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.bytes.len();
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |c| c.bytes)
    }
}

/// What one Fetch read.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub records: u64,
}

/// A connection's reader: its store iterator and scratch buffers.
pub(crate) struct Reader<'s> {
    store: &'s Store,
    cursor: Option<(u64, RecordIter<'s>)>,
    value: Vec<u8>,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            cursor: None,
            value: Vec::with_capacity(4096),
        }
    }

    /// Drops the store iterator (it pins the files it reads from).
    pub(crate) fn release(&mut self) {
        self.cursor = None;
    }

    /// The next record at `seq`, through the kept iterator when it is there.
    fn next_record(&mut self, seq: u64) -> Result<ChangeRecord> {
        for attempt in 0..2 {
            let keep = matches!(&self.cursor, Some((next, _)) if *next == seq);
            if !keep {
                self.cursor = Some((seq, self.store.iter(ReadFrom::Seq(seq))?));
            }
            let Some((next, it)) = self.cursor.as_mut() else {
                break;
            };
            match it.next() {
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
            self.value.clear();
            write_value(&mut self.value, &rec);
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

    /// Appends batches holding the records from `from` on (at most to `last`, the newest
    /// committed seq) to `out`, about `limit` bytes of them (always at least one batch).
    /// `fresh`: nothing is in the response yet, so a cached block may start before `from`
    /// (otherwise it would repeat records the response already holds).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read(
        &mut self,
        cache: &BatchCache,
        oldest: u64,
        from: u64,
        last: u64,
        limit: usize,
        fresh: bool,
        out: &mut Vec<u8>,
    ) -> Result<Fetched> {
        let mut fetched = Fetched::default();
        let mut seq = from;
        let start_len = out.len();
        while seq <= last && (out.len() == start_len || out.len() - start_len < limit) {
            let (index, bstart, bend) = block_of(seq);
            if bend <= last && bstart >= oldest && cache.cap > 0 && (fresh || seq == bstart) {
                let block = match cache.get(index) {
                    Some(b) => b,
                    None => {
                        let mut bytes = Vec::with_capacity(256 << 10);
                        self.encode(bstart, bend, usize::MAX, &mut bytes)?;
                        let b = Arc::new(Block {
                            bytes,
                            records: BLOCK,
                        });
                        cache.put(index, Arc::clone(&b));
                        b
                    }
                };
                if out.len() > start_len && out.len() - start_len + block.bytes.len() > limit {
                    break;
                }
                out.extend_from_slice(&block.bytes);
                fetched.records += block.records - (seq - bstart);
                seq = bend + 1;
            } else {
                let to = if bend <= last { bend } else { last };
                let room = limit.saturating_sub(out.len() - start_len).max(1);
                let end = self.encode(seq, to, room, out)?;
                fetched.records += end - seq + 1;
                seq = end + 1;
            }
        }
        Ok(fetched)
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
        let c = BatchCache::new(10_000);
        for i in 0..20 {
            c.put(
                i,
                Arc::new(Block {
                    bytes: vec![0; 1000],
                    records: 1,
                }),
            );
        }
        assert!(c.bytes() <= 10_000);
        assert!(c.get(19).is_some());
        assert!(c.get(0).is_none());
    }
}
