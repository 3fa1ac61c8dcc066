//! The batch log: encoded full blocks kept on disk, so that a Fetch of history sends bytes it
//! already holds, as a Kafka broker does, instead of encoding them again.
//!
//! Optional ([`crate::ServerOptions::batch_log`]). It is a cache, never a source of truth: the
//! store stays the only copy of the data, and every byte of the log is checked before it is
//! served; anything that does not check out is dropped and encoded again from the store.
//!
//! - A directory of segment files, `<segment>.batches`, each holding (in any order) the blocks
//!   `segment * 64 .. segment * 64 + 63` as complete RecordBatches, and an `IDENTITY` file
//!   naming the store and the encoding. A log made for another store, or by another version of
//!   the encoding, is emptied when opened.
//! - Opening reads each batch header (offset, length, magic, record count) and truncates a
//!   segment at the first that does not fit: a write torn by `kill -9` or a full disk. A block
//!   found twice is read from its later copy (it is written again only after the earlier one
//!   failed its check).
//! - A batch is checked (its header against the block it should be, its CRC-32C over the whole
//!   batch) before this process first serves it: batches it writes are checked in memory, and
//!   those held from an earlier run are read back and checked, by the filler when `serve`
//!   starts or by the first Fetch that needs one. A mismatch (bit rot, a stray write) drops the
//!   block, with a warning, and it is encoded again from the store. A checked batch is then
//!   sent from its file ([`Region`]) with one read into a buffer the connection keeps and one
//!   write: no allocation, no encoding, no CRC.
//! - Nothing is synced: a lost write only means the block is encoded again.
//! - Bounded: past `bytes`, the oldest segments are removed and blocks below them are no longer
//!   added (the log keeps the newest part of the topic, like a broker's `retention.bytes`).
//!   Segments whose records retention removed from the store are removed too.
//! - One process at a time: a lock on `LOCK`.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use changetrack::{Error, ErrorKind, Result};

use crate::fetch::BLOCK;

/// Blocks per segment file.
const SEGMENT_BLOCKS: u64 = 64;

/// The largest batch the log keeps (larger blocks are encoded each time).
pub(crate) const MAX_BATCH: usize = 64 << 20;

const HEADER_LEN: usize = 61;

/// The encoding the log's batches were written with: bump it whenever the bytes of a record's
/// value or of a batch could change.
const FORMAT: &str = "changetrack batch log 1";

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}")).with_source(e)
}

fn segment_name(segment: u64) -> String {
    format!("{segment:020}.batches")
}

fn segment_of_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".batches")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a batch header says: its block index and total length, when it is a full block's
/// batch as this log writes them.
fn parse_header(h: &[u8]) -> Option<(u64, usize)> {
    let h = h.get(..HEADER_LEN)?;
    let base = i64::from_be_bytes(h[0..8].try_into().ok()?);
    let batch_len = i32::from_be_bytes(h[8..12].try_into().ok()?);
    let last_delta = i32::from_be_bytes(h[23..27].try_into().ok()?);
    let count = i32::from_be_bytes(h[57..61].try_into().ok()?);
    let total = usize::try_from(batch_len).ok()?.checked_add(12)?;
    let block = i64::try_from(BLOCK).ok()?;
    if h[16] != 2
        || base < 1
        || (base - 1) % block != 0
        || i64::from(count) != block
        || i64::from(last_delta) != block - 1
        || !(HEADER_LEN..=MAX_BATCH).contains(&total)
    {
        return None;
    }
    let index = u64::try_from((base - 1) / block).ok()?;
    Some((index, total))
}

/// Whether `b` is block `index`'s batch, whole and with a good CRC.
fn verify(b: &[u8], index: u64) -> bool {
    match parse_header(b) {
        Some((i, total)) if i == index && total == b.len() => {
            let crc = u32::from_be_bytes([b[17], b[18], b[19], b[20]]);
            crc32c::crc32c(&b[21..]) == crc
        }
        _ => false,
    }
}

/// Where a block's batch is in its segment.
#[derive(Clone, Copy)]
struct Entry {
    pos: u64,
    len: usize,
    /// Read back and checked by this process (or written by it): from now on it is served from
    /// the file without being checked again.
    checked: bool,
}

struct Segment {
    file: Arc<File>,
    /// Where the next batch is written.
    end: u64,
    blocks: HashMap<u64, Entry>,
}

/// A checked batch of the log, read from its file into the answer ([`Region::read_into`]).
pub(crate) struct Region {
    file: Arc<File>,
    pos: u64,
    len: usize,
}

impl Region {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reads it into `out` (exactly [`Region::len`] bytes). The batch was checked when this
    /// process first read it, or wrote it: a segment's batches are never rewritten once
    /// written.
    ///
    /// # Errors
    /// The read error, or `InvalidInput` when `out` is not the batch's length.
    pub(crate) fn read_into(&self, out: &mut [u8]) -> std::io::Result<()> {
        if out.len() != self.len {
            return Err(std::io::Error::new(
                IoKind::InvalidInput,
                "a batch is read into a buffer of its own length",
            ));
        }
        self.file
            .read_exact_at(out, self.pos)
            .map_err(|e| std::io::Error::other(format!("cannot read the batch log: {e}")))
    }
}

#[derive(Default)]
struct Inner {
    segments: BTreeMap<u64, Segment>,
    bytes: u64,
    /// Blocks below this one are not added (the log was trimmed to its size above them).
    floor: u64,
    /// A write failed (a full disk, say): the log is only read from now on.
    read_only: bool,
}

/// What [`BatchLog::get`] found.
pub(crate) enum Found {
    /// The block's batch, checked.
    Batch(Vec<u8>),
    /// Not held.
    Missing,
    /// Held but unreadable or damaged: dropped from the log.
    Damaged,
}

/// The log (see the module docs).
pub(crate) struct BatchLog {
    dir: PathBuf,
    cap: u64,
    inner: Mutex<Inner>,
    _lock: File,
}

impl BatchLog {
    /// Opens (or makes) the log in `dir` for the store `identity`, at most `cap` bytes.
    ///
    /// # Errors
    /// `Io` when the directory cannot be made or read; `InvalidArgument` when another process
    /// holds it.
    pub(crate) fn open(dir: &Path, identity: &str, cap: u64) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("cannot make the batch log {}", dir.display()), e))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(format!("cannot open {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "the batch log {} is in use by another process (one serve per log)",
                        dir.display()
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_error(format!("cannot lock {}", lock_path.display()), e))
            }
        }
        let log = Self {
            dir: dir.to_path_buf(),
            cap,
            inner: Mutex::new(Inner::default()),
            _lock: lock,
        };
        let want = format!("{FORMAT}\nstore {identity}\n");
        let id_path = dir.join("IDENTITY");
        let have = std::fs::read(&id_path).ok();
        if have.as_deref() != Some(want.as_bytes()) {
            if have.is_some() {
                tracing::info!(dir = %dir.display(), "the batch log was made for another store or encoding: emptying it");
            }
            log.remove_segments()?;
            let tmp = dir.join("IDENTITY.tmp");
            std::fs::write(&tmp, &want)
                .and_then(|()| std::fs::rename(&tmp, &id_path))
                .map_err(|e| io_error(format!("cannot write {}", id_path.display()), e))?;
        }
        log.load()?;
        Ok(log)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn segment_files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| io_error(format!("cannot read {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry =
                entry.map_err(|e| io_error(format!("cannot read {}", self.dir.display()), e))?;
            if let Some(s) = entry.file_name().to_str().and_then(segment_of_name) {
                out.push((s, entry.path()));
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn remove_segments(&self) -> Result<()> {
        for (_, p) in self.segment_files()? {
            std::fs::remove_file(&p)
                .map_err(|e| io_error(format!("cannot remove {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Reads every segment's batch headers (truncating at the first that does not fit).
    fn load(&self) -> Result<()> {
        let mut inner = self.lock();
        for (segment, path) in self.segment_files()? {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
            let len = file
                .metadata()
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?
                .len();
            let mut blocks = HashMap::new();
            let mut pos = 0u64;
            let mut header = [0u8; HEADER_LEN];
            while pos < len {
                let next = file
                    .read_exact_at(&mut header, pos)
                    .ok()
                    .and_then(|()| parse_header(&header))
                    .filter(|&(index, total)| {
                        index / SEGMENT_BLOCKS == segment && pos + total as u64 <= len
                    });
                let Some((index, total)) = next else {
                    tracing::warn!(file = %path.display(), at = pos, "the batch log segment ends with a torn or unknown batch: cutting it there");
                    file.set_len(pos)
                        .map_err(|e| io_error(format!("cannot truncate {}", path.display()), e))?;
                    break;
                };
                // A block is written again only after its copy was found damaged: the later
                // copy is the one to read.
                blocks.insert(
                    index,
                    Entry {
                        pos,
                        len: total,
                        checked: false,
                    },
                );
                pos += total as u64;
            }
            inner.bytes += pos;
            inner.segments.insert(
                segment,
                Segment {
                    file: Arc::new(file),
                    end: pos,
                    blocks,
                },
            );
        }
        Ok(())
    }

    /// Whether block `index` is in the log.
    pub(crate) fn contains(&self, index: u64) -> bool {
        self.lock()
            .segments
            .get(&(index / SEGMENT_BLOCKS))
            .is_some_and(|s| s.blocks.contains_key(&index))
    }

    /// The lowest and highest blocks held.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        let inner = self.lock();
        let lo = inner
            .segments
            .values()
            .find_map(|s| s.blocks.keys().min().copied())?;
        let hi = inner
            .segments
            .values()
            .rev()
            .find_map(|s| s.blocks.keys().max().copied())?;
        Some((lo, hi))
    }

    /// The lowest block the log adds.
    pub(crate) fn floor(&self) -> u64 {
        self.lock().floor
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Drops block `index` from the index if it is still the copy at `pos` (it may have been
    /// dropped or written again meanwhile); whether it did.
    fn forget(&self, index: u64, pos: u64) -> bool {
        let mut inner = self.lock();
        let Some(s) = inner.segments.get_mut(&(index / SEGMENT_BLOCKS)) else {
            return false;
        };
        if s.blocks.get(&index).is_some_and(|e| e.pos == pos) {
            s.blocks.remove(&index);
            return true;
        }
        false
    }

    /// Whether block `index` is held and already checked.
    pub(crate) fn is_checked(&self, index: u64) -> bool {
        self.lock()
            .segments
            .get(&(index / SEGMENT_BLOCKS))
            .and_then(|s| s.blocks.get(&index))
            .is_some_and(|e| e.checked)
    }

    /// Block `index`'s batch as a region of its file, when it is held and was checked by this
    /// process (otherwise [`BatchLog::get`] reads and checks it). The region keeps its
    /// segment's file open, so it stays readable if the segment is removed meanwhile.
    pub(crate) fn region(&self, index: u64) -> Option<Region> {
        let inner = self.lock();
        let s = inner.segments.get(&(index / SEGMENT_BLOCKS))?;
        let e = *s.blocks.get(&index).filter(|e| e.checked)?;
        let file = Arc::clone(&s.file);
        drop(inner);
        Some(Region {
            file,
            pos: e.pos,
            len: e.len,
        })
    }

    /// Whether blocks are still added (no write has failed).
    pub(crate) fn writable(&self) -> bool {
        !self.lock().read_only
    }

    /// Block `index`'s batch, checked (one that does not check out is dropped from the log).
    pub(crate) fn get(&self, index: u64) -> Found {
        let held = {
            let inner = self.lock();
            inner
                .segments
                .get(&(index / SEGMENT_BLOCKS))
                .and_then(|s| Some((Arc::clone(&s.file), *s.blocks.get(&index)?)))
        };
        let Some((file, Entry { pos, len, .. })) = held else {
            return Found::Missing;
        };
        let mut b = vec![0u8; len];
        let read = file.read_exact_at(&mut b, pos);
        if read.is_ok() && verify(&b, index) {
            if let Some(e) = self
                .lock()
                .segments
                .get_mut(&(index / SEGMENT_BLOCKS))
                .and_then(|s| s.blocks.get_mut(&index))
                .filter(|e| e.pos == pos)
            {
                e.checked = true;
            }
            return Found::Batch(b);
        }
        // Reported once, by the reader that dropped it.
        if !self.forget(index, pos) {
            return Found::Missing;
        }
        let seg = self.dir.join(segment_name(index / SEGMENT_BLOCKS));
        match read {
            Err(e) => {
                tracing::warn!(file = %seg.display(), at = pos, "cannot read a batch of the log ({e}): encoding it from the store");
            }
            Ok(()) => {
                tracing::warn!(file = %seg.display(), at = pos, "a batch of the log is damaged (header or CRC-32C): encoding it from the store");
            }
        }
        Found::Damaged
    }

    /// Adds block `index`'s batch, as `BatchWriter` made it (its CRC is not computed again;
    /// its header must be block `index`'s). Ignored when held, too large, below the floor, or
    /// after a failed write.
    pub(crate) fn put(&self, index: u64, batch: &[u8]) {
        if parse_header(batch) != Some((index, batch.len())) {
            return;
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.read_only || index < inner.floor {
            return;
        }
        let segment = index / SEGMENT_BLOCKS;
        let s = match inner.segments.entry(segment) {
            MapEntry::Occupied(o) => o.into_mut(),
            MapEntry::Vacant(v) => {
                let path = self.dir.join(segment_name(segment));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path);
                match file {
                    Ok(f) => v.insert(Segment {
                        file: Arc::new(f),
                        end: 0,
                        blocks: HashMap::new(),
                    }),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), "cannot add to the batch log ({e}): it is only read from now on");
                        inner.read_only = true;
                        return;
                    }
                }
            }
        };
        if s.blocks.contains_key(&index) {
            return;
        }
        let pos = s.end;
        if let Err(e) = s.file.write_all_at(batch, pos) {
            let path = self.dir.join(segment_name(segment));
            tracing::warn!(file = %path.display(), "cannot add to the batch log ({e}): it is only read from now on");
            let _ = s.file.set_len(pos);
            inner.read_only = true;
            return;
        }
        s.end += batch.len() as u64;
        // Written from the encoder's own bytes: it can be sent from the file.
        s.blocks.insert(
            index,
            Entry {
                pos,
                len: batch.len(),
                checked: true,
            },
        );
        inner.bytes += batch.len() as u64;
        while inner.bytes > self.cap {
            let Some((&lowest, _)) = inner.segments.iter().next() else {
                break;
            };
            self.remove_segment(inner, lowest);
            inner.floor = inner.floor.max((lowest + 1) * SEGMENT_BLOCKS);
        }
    }

    fn remove_segment(&self, inner: &mut Inner, segment: u64) {
        if let Some(s) = inner.segments.remove(&segment) {
            inner.bytes -= s.end;
            let path = self.dir.join(segment_name(segment));
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != IoKind::NotFound {
                    tracing::warn!(file = %path.display(), "cannot remove a batch log segment: {e}");
                }
            }
        }
    }

    /// Removes the segments wholly below block `first` (retention removed their records).
    pub(crate) fn trim_below(&self, first: u64) {
        let mut inner = self.lock();
        let old: Vec<u64> = inner
            .segments
            .keys()
            .copied()
            .take_while(|&s| (s + 1) * SEGMENT_BLOCKS <= first)
            .collect();
        for s in old {
            self.remove_segment(&mut inner, s);
        }
    }

    /// Empties the log (its batches do not match the store's records).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        let all: Vec<u64> = inner.segments.keys().copied().collect();
        for s in all {
            self.remove_segment(&mut inner, s);
        }
        inner.floor = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchWriter;

    /// The Kafka offset a block's batch starts at (offset = seq, block `i` holds seqs
    /// `i * BLOCK + 1 ..= (i + 1) * BLOCK`).
    fn base_offset(index: u64) -> Option<i64> {
        i64::try_from(index.checked_mul(BLOCK)?.checked_add(1)?).ok()
    }

    impl Found {
        fn batch(self) -> Option<Vec<u8>> {
            match self {
                Self::Batch(b) => Some(b),
                _ => None,
            }
        }
    }

    fn batch(index: u64, fill: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let base = base_offset(index).unwrap();
        let mut w = BatchWriter::new(&mut out, base, 1_700_000_000_000);
        for i in 0..i64::try_from(BLOCK).unwrap() {
            w.push(base + i, 1_700_000_000_000, None, Some(&[fill; 40]), &[]);
        }
        w.finish();
        out
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ct-batch-log-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn blocks_come_back_as_written_and_survive_a_reopen() {
        let d = dir("roundtrip");
        {
            let log = BatchLog::open(&d, "store-a", u64::MAX).unwrap();
            for i in [0, 1, 70, 3] {
                log.put(i, &batch(i, i as u8));
            }
            // A batch that is not block 5's is refused, and so is a cut one.
            log.put(5, &batch(6, 6));
            log.put(5, &batch(5, 5)[..1000]);
            assert!(!log.contains(5));
            assert_eq!(log.get(70).batch().unwrap(), batch(70, 70));
            assert_eq!(log.span(), Some((0, 70)));
        }
        let log = BatchLog::open(&d, "store-a", u64::MAX).unwrap();
        // Held from the earlier run: not sent from the file before it was read and checked.
        assert!(log.region(70).is_none() && !log.is_checked(70));
        for i in [0, 1, 70, 3] {
            assert_eq!(log.get(i).batch().unwrap(), batch(i, i as u8), "block {i}");
        }
        for i in [70, 0, 1, 3] {
            let r = log.region(i).expect("checked now");
            let mut sent = vec![0u8; r.len()];
            r.read_into(&mut sent).unwrap();
            assert_eq!(sent, batch(i, i as u8), "block {i} from the file");
            assert!(r.read_into(&mut [0u8; 10]).is_err());
        }
        assert!(log.get(2).batch().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_flipped_byte_is_never_served() {
        let d = dir("damage");
        let seg = d.join(segment_name(0));
        {
            let log = BatchLog::open(&d, "s", u64::MAX).unwrap();
            for i in 0..3 {
                log.put(i, &batch(i, 1));
            }
        }
        let whole = std::fs::read(&seg).unwrap();
        let one = batch(0, 1).len();
        // Torn in the middle of the third batch (kill -9 during a write).
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len((2 * one + 100) as u64).unwrap();
        // A byte flipped inside the second batch's records.
        f.write_all_at(&[whole[one + 500] ^ 0x40], (one + 500) as u64)
            .unwrap();
        drop(f);
        let log = BatchLog::open(&d, "s", u64::MAX).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), (2 * one) as u64);
        assert_eq!(log.get(0).batch().unwrap(), batch(0, 1));
        assert!(
            matches!(log.get(1), Found::Damaged),
            "a damaged batch must not be served"
        );
        assert!(!log.contains(1), "and it is dropped");
        assert!(log.get(2).batch().is_none());
        // It can be written again (after the good end of the segment).
        log.put(1, &batch(1, 1));
        assert_eq!(log.get(1).batch().unwrap(), batch(1, 1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn another_store_empties_it_and_two_processes_cannot_share_it() {
        let d = dir("identity");
        {
            let log = BatchLog::open(&d, "one", u64::MAX).unwrap();
            log.put(0, &batch(0, 9));
            let again = BatchLog::open(&d, "one", u64::MAX);
            assert_eq!(
                again.err().map(|e| e.kind()),
                Some(ErrorKind::InvalidArgument)
            );
        }
        let log = BatchLog::open(&d, "two", u64::MAX).unwrap();
        assert!(log.get(0).batch().is_none());
        assert_eq!(log.bytes(), 0);
        assert!(!d.join(segment_name(0)).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn it_keeps_the_newest_blocks_within_its_size_and_follows_retention() {
        let d = dir("bounded");
        let one = batch(0, 0).len() as u64;
        // Room for 100 blocks: writing 200 (over four segments) keeps the newest ones.
        let log = BatchLog::open(&d, "s", 100 * one).unwrap();
        for i in 0..200 {
            log.put(i, &batch(i, 0));
        }
        assert!(log.bytes() <= 100 * one);
        assert!(log.get(199).batch().is_some());
        assert!(log.get(0).batch().is_none());
        let floor = log.floor();
        assert!(floor > 0 && floor.is_multiple_of(SEGMENT_BLOCKS), "{floor}");
        // Below the floor nothing is added again.
        log.put(0, &batch(0, 0));
        assert!(!log.contains(0));
        log.trim_below(192);
        assert_eq!(log.span(), Some((192, 199)));
        log.clear();
        assert_eq!((log.bytes(), log.span()), (0, None));
        let _ = std::fs::remove_dir_all(&d);
    }
}
