//! Binlog files on disk: a list of files or a directory (its `.index`, else numeric suffix
//! order), validated (no file twice, file indexes in order), and read as a stream in bounded
//! chunks (gzip archives, multi-member ones included, inflated as they are read).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// One binlog file of a source, with its file index (the `file_index` of checkpoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinlogFile {
    /// Where the file is.
    pub path: PathBuf,
    /// The numeric suffix of the file name (`mysql-bin.000188` is 188); for names without one,
    /// the file's 1-based position in the input list.
    pub index: u32,
}

/// The numeric suffix of a binlog file name: `mysql-bin.000188` gives 188.
#[must_use]
pub fn numeric_suffix(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (_, ext) = name.rsplit_once('.')?;
    if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ext.parse().ok()
}

/// Where an entry of the input list came from (for error messages).
#[derive(Clone, Debug)]
enum Origin {
    /// The n-th (1-based) input argument.
    Arg(usize),
    /// Line `line` (1-based) of a directory's `.index` file.
    Index { index: PathBuf, line: usize },
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Self::Arg(n) => format!("input {n}"),
            Self::Index { index, line } => format!("{} line {line}", index.display()),
        }
    }
}

/// Resolves inputs (files and directories) to an ordered list of binlog files.
///
/// A directory contributes the files its `*.index` lists, in that order; without an index, the
/// files whose names end in a numeric suffix, ordered by that number.
///
/// The list is validated: a file listed twice, or a file index that does not come after the
/// previous one (an index or arguments out of order), is an error naming the entry (the
/// `.index` file and its line, or the argument). Reading such a list would give every record
/// of the repeated files twice, or checkpoints that go backwards.
///
/// # Errors
/// `NotFound` for a missing input or an index entry that is not in the directory; `InvalidArgument`
/// for a directory with no binlog files, or arguments that repeat or go backwards;
/// `Corruption` for an `.index` file that repeats a file or goes backwards.
pub fn resolve_inputs(inputs: &[PathBuf]) -> Result<Vec<BinlogFile>> {
    resolve_inputs_after(inputs, None)
}

/// As [`resolve_inputs`], for a reader that resumes in file index `resume_file` (ingestion
/// with a stored position): entries with a smaller file index are already stored and are
/// dropped from the list wherever they appear (the resume logic would skip them), so they may
/// repeat or come out of order. The rest must be in order, each file once.
///
/// # Errors
/// As [`resolve_inputs`].
pub fn resolve_inputs_after(
    inputs: &[PathBuf],
    resume_file: Option<u32>,
) -> Result<Vec<BinlogFile>> {
    let mut entries: Vec<(PathBuf, Origin)> = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        let meta = std::fs::metadata(input)
            .map_err(|e| Error::io(format!("cannot open {}", input.display()), e))?;
        if meta.is_dir() {
            entries.extend(directory_files(input, n + 1)?);
        } else {
            entries.push((input.clone(), Origin::Arg(n + 1)));
        }
    }
    let listed: Vec<(BinlogFile, Origin)> = entries
        .into_iter()
        .enumerate()
        .map(|(i, (path, origin))| {
            let index = numeric_suffix(&path).unwrap_or(u32::try_from(i + 1).unwrap_or(u32::MAX));
            (BinlogFile { path, index }, origin)
        })
        .collect();
    let mut out: Vec<BinlogFile> = Vec::with_capacity(listed.len());
    let mut prev: Option<(BinlogFile, Origin)> = None;
    let mut seen: std::collections::HashMap<PathBuf, Origin> = std::collections::HashMap::new();
    for (file, origin) in listed {
        if resume_file.is_some_and(|r| file.index < r) {
            continue;
        }
        let key = std::fs::canonicalize(&file.path).unwrap_or_else(|_| file.path.clone());
        if let Some(first) = seen.get(&key) {
            return Err(bad_list(
                &origin,
                format!(
                    "{} lists {} a second time (first at {}): each binlog file may be read once",
                    origin.describe(),
                    file.path.display(),
                    first.describe()
                ),
            ));
        }
        if let Some((p, porigin)) = &prev {
            if file.index <= p.index {
                let what = if file.index == p.index {
                    "repeats"
                } else {
                    "goes back from"
                };
                return Err(bad_list(
                    &origin,
                    format!(
                        "{} lists {} (file index {}), which {what} {} (file index {}, at {}): \
                         binlog files must be listed once each, in order",
                        origin.describe(),
                        file.path.display(),
                        file.index,
                        p.path.display(),
                        p.index,
                        porigin.describe()
                    ),
                ));
            }
        }
        seen.insert(key, origin.clone());
        prev = Some((file.clone(), origin));
        out.push(file);
    }
    Ok(out)
}

/// The error for a bad entry of the input list: a damaged `.index` (located in it), or bad
/// arguments.
fn bad_list(origin: &Origin, message: String) -> Error {
    match origin {
        Origin::Index { index, .. } => Error::corruption(message).in_file(index),
        Origin::Arg(_) => Error::invalid(message),
    }
}

fn directory_files(dir: &Path, arg: usize) -> Result<Vec<(PathBuf, Origin)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    let mut names = Vec::new();
    let mut index_file = None;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        if path.extension().is_some_and(|e| e == "index") {
            index_file = Some(path);
        } else if let Some(n) = numeric_suffix(&path) {
            names.push((n, path));
        }
    }
    if let Some(index) = index_file {
        let text = read_index(&index)?;
        let mut out = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // Index entries are paths as the server saw them; the file is looked up by name in
            // this directory, which is where the index is.
            let name = Path::new(line).file_name().ok_or_else(|| {
                Error::corruption(format!(
                    "bad entry {line:?} at line {} of {}",
                    line_no + 1,
                    index.display()
                ))
                .in_file(&index)
            })?;
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} lists {line:?} at line {}, which is not in {}",
                        index.display(),
                        line_no + 1,
                        dir.display()
                    ),
                ));
            }
            out.push((
                path,
                Origin::Index {
                    index: index.clone(),
                    line: line_no + 1,
                },
            ));
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    if names.is_empty() {
        return Err(Error::invalid(format!(
            "{} has no binlog files (no .index and no names with a numeric suffix)",
            dir.display()
        )));
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|(_, p)| (p, Origin::Arg(arg)))
        .collect())
}

/// Largest `.index` file read (a server's index lists one short path per binlog file).
const MAX_INDEX_BYTES: u64 = 64 << 20;

fn read_index(index: &Path) -> Result<String> {
    let f =
        File::open(index).map_err(|e| Error::io(format!("cannot read {}", index.display()), e))?;
    let mut text = String::new();
    f.take(MAX_INDEX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(format!("cannot read {}", index.display()), e))?;
    if text.len() as u64 > MAX_INDEX_BYTES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("{} is over {MAX_INDEX_BYTES} bytes", index.display()),
        )
        .in_file(index));
    }
    Ok(text)
}

/// Bytes asked of the source per read (the read buffer's slack beyond one event).
pub(crate) const READ_CHUNK: usize = 1 << 20;

/// Bytes compared at the start, and just before the end, of what was read, to tell that a
/// grown file still continues those bytes.
const SAME_FILE_CHECK: usize = 512;

/// Chunks a [`Plain`] file's read-ahead thread may hold ready (memory: this many
/// [`READ_CHUNK`]s).
const READ_AHEAD_CHUNKS: usize = 4;

/// A plain file, positioned at the end of what was handed out. Read in bulk, it is read ahead
/// by a helper thread, so that the kernel's copy of its pages overlaps with decoding; at its
/// end (and after a seek) reads are direct again, and a file opened again to follow its growth
/// is read directly.
struct Plain {
    state: PlainState,
}

enum PlainState {
    /// Not read yet: the first read starts the read-ahead.
    Fresh(File),
    /// Read on the caller's thread.
    Direct(File),
    /// Read ahead by a helper thread.
    Ahead(ReadAhead),
    /// The read-ahead thread ended without giving the file back (it panicked).
    Gone,
}

struct ReadAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Buffers handed back for reuse.
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    thread: std::thread::JoinHandle<File>,
    cur: Vec<u8>,
    at: usize,
}

impl ReadAhead {
    fn start(mut file: File) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(READ_AHEAD_CHUNKS);
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS + 1);
        let thread = std::thread::Builder::new()
            .name("binlog-read".into())
            .spawn(move || {
                loop {
                    let mut buf = recycled
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(READ_CHUNK));
                    buf.resize(READ_CHUNK, 0);
                    let sent = match file.read(&mut buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            tx.send(Ok(buf)).is_ok() && n > 0
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            false
                        }
                    };
                    if !sent {
                        break;
                    }
                }
                file
            })?;
        Ok(Self {
            rx,
            recycle,
            thread,
            cur: Vec::new(),
            at: 0,
        })
    }

    /// Stops the thread and takes the file back, positioned after the bytes handed out (all of
    /// them: called only when every chunk received was consumed, or before a seek).
    fn stop(self) -> Option<File> {
        drop(self.rx);
        self.thread.join().ok()
    }
}

impl Plain {
    fn new(file: File) -> Self {
        Self {
            state: PlainState::Fresh(file),
        }
    }

    fn direct(file: File) -> Self {
        Self {
            state: PlainState::Direct(file),
        }
    }

    fn gone() -> std::io::Error {
        std::io::Error::other("the read-ahead thread ended unexpectedly")
    }

    /// Moves to `to`. A file read in bulk is read ahead again from there (a resume position);
    /// one read directly (its end was reached: it is followed) stays direct.
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let (mut file, bulk) = match std::mem::replace(&mut self.state, PlainState::Gone) {
            PlainState::Fresh(f) => (f, true),
            PlainState::Direct(f) => (f, false),
            PlainState::Ahead(a) => (a.stop().ok_or_else(Self::gone)?, true),
            PlainState::Gone => return Err(Self::gone()),
        };
        let at = file.seek(to);
        self.state = if bulk && at.is_ok() {
            PlainState::Fresh(file)
        } else {
            PlainState::Direct(file)
        };
        at
    }

    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        if matches!(self.state, PlainState::Fresh(_)) {
            if let PlainState::Fresh(f) = std::mem::replace(&mut self.state, PlainState::Gone) {
                // A thread that cannot start: read directly (the clone shares the offset).
                let fallback = f.try_clone();
                self.state = match ReadAhead::start(f) {
                    Ok(a) => PlainState::Ahead(a),
                    Err(e) => PlainState::Direct(fallback.map_err(|_| e)?),
                };
            }
        }
        let a = match &mut self.state {
            PlainState::Direct(f) => return f.read(dst),
            PlainState::Ahead(a) => a,
            PlainState::Fresh(_) | PlainState::Gone => return Err(Self::gone()),
        };
        if a.at == a.cur.len() {
            let used = std::mem::take(&mut a.cur);
            let _ = a.recycle.try_send(used);
            a.at = 0;
            let next = a.rx.recv();
            match next {
                Ok(Ok(chunk)) if !chunk.is_empty() => a.cur = chunk,
                // The end of the file (for now), or a read error: every byte read was handed
                // out, so the file is back at the end of them; read directly from here on.
                end => {
                    let PlainState::Ahead(a) = std::mem::replace(&mut self.state, PlainState::Gone)
                    else {
                        return Err(Self::gone());
                    };
                    let file = a.stop().ok_or_else(Self::gone)?;
                    self.state = PlainState::Direct(file);
                    return match end {
                        Ok(Err(e)) => Err(e),
                        Ok(Ok(_)) => Ok(0),
                        Err(_) => Err(Self::gone()),
                    };
                }
            }
        }
        let n = dst.len().min(a.cur.len() - a.at);
        dst[..n].copy_from_slice(&a.cur[a.at..a.at + n]);
        a.at += n;
        Ok(n)
    }
}

/// Where a [`FileBytes`] gets more bytes from.
enum Src {
    /// Nothing more: every byte is in the buffer (a file handed over in memory).
    Memory,
    /// A plain file, positioned at the end of what was read. It may grow while the server
    /// writes it.
    Plain(Plain),
    /// A gzip archive (every member of it, as `zcat` reads it), inflated as it is read.
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<File>>>),
}

/// The bytes of one binlog file, read as a stream: a window of the file held in memory, from
/// the event being framed to what was read last. Bytes before the current event are dropped,
/// so memory is one event (bounded by `max_event_size`) plus a [`READ_CHUNK`], whatever the
/// file's size. Gzip archives are inflated as they are read, at most `max_inflated` bytes in
/// all; a plain file may grow while the server writes it.
///
/// Not memory-mapped: a map is `unsafe` (another program truncating the file would fault the
/// reader), and this crate has no `unsafe` code.
pub(crate) struct FileBytes {
    path: PathBuf,
    src: Src,
    /// Bytes `base..base + buf.len()` of the (inflated) file.
    buf: Vec<u8>,
    base: u64,
    /// The file's first bytes (up to [`SAME_FILE_CHECK`]).
    head: Vec<u8>,
    /// The last bytes read (up to [`SAME_FILE_CHECK`], ending at `read_end`); empty after a
    /// seek.
    tail: Vec<u8>,
    max_inflated: u64,
}

impl FileBytes {
    /// A file whose bytes are all in memory already.
    pub(crate) fn memory(path: &Path, bytes: Vec<u8>) -> Self {
        Self {
            path: path.to_path_buf(),
            src: Src::Memory,
            head: bytes
                .get(..bytes.len().min(SAME_FILE_CHECK))
                .unwrap_or_default()
                .to_vec(),
            buf: bytes,
            base: 0,
            tail: Vec::new(),
            max_inflated: u64::MAX,
        }
    }

    /// The offset just past the last byte read.
    pub(crate) fn read_end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The bytes in hand from `offset` on, after reading until at least `need` of them are
    /// there or the input ends (then fewer are returned: the end of the input is the end of
    /// the slice). Bytes before `offset` are dropped when more must be read and that frees a
    /// chunk or more, so `offset` must never go backwards.
    ///
    /// # Errors
    /// Read errors; for a gzip archive, `Corruption` for a bad stream and `LimitExceeded` past
    /// `max_inflated` bytes.
    pub(crate) fn window(&mut self, offset: u64, need: usize) -> Result<&[u8]> {
        if offset < self.base {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "offset {offset} was read and dropped already (the window starts at {})",
                    self.base
                ),
            ));
        }
        if offset > self.read_end() {
            self.skip_to(offset)?;
        }
        let mut start = usize::try_from(offset - self.base).unwrap_or(usize::MAX);
        if self.buf.len().saturating_sub(start) < need {
            // Drop what was read only before reading more: what is left to move then is the
            // part of one event that is in hand, not half a chunk of events still to come.
            if !matches!(self.src, Src::Memory) && start >= READ_CHUNK {
                self.buf.drain(..start.min(self.buf.len()));
                self.base = offset;
                start = 0;
                if self.buf.capacity() > 4 * READ_CHUNK && self.buf.len() < READ_CHUNK {
                    self.buf.shrink_to(2 * READ_CHUNK);
                }
            }
            // Room for the whole ask (address space only: pages are touched as bytes come),
            // then reads of a chunk at a time, so an event that claims more than the input
            // holds costs only what is there.
            let missing = need - self.buf.len().saturating_sub(start);
            self.buf.reserve(missing.min(self.room()));
        }
        while self.buf.len().saturating_sub(start) < need {
            if self.read_more(READ_CHUNK)? == 0 {
                break;
            }
        }
        Ok(self.buf.get(start..).unwrap_or_default())
    }

    /// How many more bytes the source may give (for an archive, up to one past the cap).
    fn room(&self) -> usize {
        match self.src {
            Src::Memory => 0,
            Src::Plain(_) => usize::MAX,
            Src::Gzip(_) => usize::try_from(
                self.max_inflated
                    .saturating_add(1)
                    .saturating_sub(self.read_end()),
            )
            .unwrap_or(usize::MAX),
        }
    }

    /// Moves past bytes never looked at, up to `offset` (a resume position): a plain file
    /// seeks, an archive inflates and drops them.
    fn skip_to(&mut self, offset: u64) -> Result<()> {
        if let Src::Plain(f) = &mut self.src {
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(format!("cannot read {}", self.path.display()), e))?;
            self.buf.clear();
            self.base = offset;
            self.tail.clear();
            return Ok(());
        }
        while self.read_end() < offset {
            let end = self.read_end();
            self.buf.clear();
            self.base = end;
            let want = usize::try_from(offset - self.base)
                .unwrap_or(usize::MAX)
                .min(READ_CHUNK);
            if self.read_more(want)? == 0 {
                break;
            }
        }
        if self.read_end() >= offset {
            let drop = usize::try_from(offset - self.base).unwrap_or(usize::MAX);
            self.buf.drain(..drop.min(self.buf.len()));
            self.base = offset;
        }
        Ok(())
    }

    /// Reads up to `want` more bytes (fewer if the input ends or a read returns less).
    /// Returns how many were read; 0 at the end of the input.
    fn read_more(&mut self, want: usize) -> Result<usize> {
        let at = self.read_end();
        let want = match &self.src {
            Src::Memory => return Ok(0),
            Src::Plain(_) => want,
            Src::Gzip(_) => {
                if at > self.max_inflated {
                    return Err(too_big(&self.path, self.max_inflated));
                }
                // One byte past the cap tells an archive over it from one that ends there.
                let room = (self.max_inflated - at).saturating_add(1);
                want.min(usize::try_from(room).unwrap_or(usize::MAX))
            }
        };
        let len = self.buf.len();
        self.buf.resize(len + want, 0);
        let got = loop {
            let dst = self.buf.get_mut(len..).unwrap_or_default();
            let r = match &mut self.src {
                Src::Memory => Ok(0),
                Src::Plain(f) => f.read(dst),
                Src::Gzip(g) => g.read(dst),
            };
            match r {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(match self.src {
                        Src::Gzip(_) => Error::corruption(format!(
                            "cannot gunzip {} (after {at} inflated bytes): {e}",
                            self.path.display()
                        ))
                        .at_offset(at),
                        _ => Error::io(format!("cannot read {}", self.path.display()), e),
                    });
                }
            }
        };
        self.buf.truncate(len + got);
        if got > 0 {
            self.note_read(len);
        }
        if matches!(self.src, Src::Gzip(_)) && self.read_end() > self.max_inflated {
            return Err(too_big(&self.path, self.max_inflated));
        }
        Ok(got)
    }

    /// Keeps the head and the tail of what was read up to date after bytes were appended
    /// from `from` on.
    fn note_read(&mut self, from: usize) {
        let new = self.buf.get(from..).unwrap_or_default();
        let at = self.base + from as u64;
        if (at as usize) < SAME_FILE_CHECK && self.head.len() == at as usize {
            let take = (SAME_FILE_CHECK - self.head.len()).min(new.len());
            self.head
                .extend_from_slice(new.get(..take).unwrap_or_default());
        }
        if new.len() >= SAME_FILE_CHECK {
            self.tail.clear();
            self.tail
                .extend_from_slice(new.get(new.len() - SAME_FILE_CHECK..).unwrap_or_default());
        } else {
            self.tail.extend_from_slice(new);
            let excess = self.tail.len().saturating_sub(SAME_FILE_CHECK);
            self.tail.drain(..excess);
        }
    }

    /// Looks for bytes appended to a plain file since it was read. Returns whether there are
    /// new bytes to read. Archives and in-memory files never grow.
    ///
    /// # Errors
    /// `Corruption` when another file took the name (its bytes do not continue the ones
    /// read); I/O errors.
    pub(crate) fn extend(&mut self) -> Result<bool> {
        if !matches!(self.src, Src::Plain(_)) {
            return Ok(false);
        }
        let path = self.path.clone();
        let mut f = match File::open(&path) {
            Ok(f) => f,
            // Purged or archived while being read: what was read stands, nothing is added.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let len = f
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        let have = self.read_end();
        if len <= have {
            return Ok(false);
        }
        let tail_at = have - self.tail.len() as u64;
        if !continues(&mut f, &self.head, &self.tail, tail_at)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
        {
            // Another file under the same name (RESET MASTER starts over at .000001): its bytes
            // do not continue the ones read.
            return Err(Error::new(
                ErrorKind::Corruption,
                format!(
                    "{} was replaced by another file while it was being read",
                    path.display()
                ),
            ));
        }
        f.seek(SeekFrom::Start(have))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        self.src = Src::Plain(Plain::direct(f));
        Ok(true)
    }
}

/// Whether `f` still starts with `head` and holds `tail` at `tail_at` (a file that grew, not
/// another file under the same name: a copy that replaced it by rename with more bytes still
/// counts as the same).
fn continues(f: &mut File, head: &[u8], tail: &[u8], tail_at: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; SAME_FILE_CHECK];
    for (at, want) in [(0, head), (tail_at, tail)] {
        if want.is_empty() {
            continue;
        }
        f.seek(SeekFrom::Start(at))?;
        let got = &mut buf[..want.len()];
        f.read_exact(got)?;
        if got != want {
            return Ok(false);
        }
    }
    Ok(true)
}

fn too_big(path: &Path, max: u64) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!(
            "the gzip archive inflates to more than {max} bytes (the inflated-size limit, \
             `max_inflated_file` / `--max-inflated-bytes`)"
        ),
    )
    .in_file(path)
    .at_offset(max)
}

/// Opens a binlog file for streaming. Gzip files (as binlog archives often are) are inflated
/// as they are read, at most `max_inflated` bytes.
pub(crate) fn open_file(path: &Path, max_inflated: u64) -> Result<FileBytes> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let mut head = [0u8; 2];
    let is_gzip = len >= 2 && {
        file.read_exact(&mut head)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        head == [0x1f, 0x8b]
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let src = if is_gzip {
        Src::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
            BufReader::with_capacity(64 << 10, file),
        )))
    } else {
        Src::Plain(Plain::new(file))
    };
    Ok(FileBytes {
        path: path.to_path_buf(),
        src,
        buf: Vec::new(),
        base: 0,
        head: Vec::new(),
        tail: Vec::new(),
        max_inflated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(numeric_suffix(Path::new("/x/mysql-bin.000188")), Some(188));
        assert_eq!(numeric_suffix(Path::new("log.bin")), None);
        assert_eq!(
            numeric_suffix(Path::new("mysql-bin.000001.decoded.txt")),
            None
        );
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ct-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn windows_stream_a_file_in_chunks_and_drop_what_was_read() {
        let d = tmp("window");
        let p = d.join("f.000001");
        let data: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut fb = open_file(&p, u64::MAX).unwrap();
        let mut off = 0u64;
        while off < data.len() as u64 {
            let w = fb.window(off, 1000).unwrap();
            let n = w.len().min(1000);
            assert_eq!(w[..n], data[off as usize..off as usize + n]);
            off += n as u64;
            assert!(fb.buf.capacity() <= 4 * READ_CHUNK, "{}", fb.buf.capacity());
        }
        assert!(fb.window(off, 1).unwrap().is_empty());
        // A big ask is served whole.
        let mut fb = open_file(&p, u64::MAX).unwrap();
        assert!(fb.window(5, 2 * READ_CHUNK + 3).unwrap().len() >= 2 * READ_CHUNK + 3);
        // A resume position past what was read seeks.
        let mut fb = open_file(&p, u64::MAX).unwrap();
        assert_eq!(
            fb.window(2 * READ_CHUNK as u64, 4).unwrap()[..4],
            data[2 * READ_CHUNK..][..4]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn gzip_members_are_all_read_and_the_cap_holds() {
        use std::io::Write;
        let d = tmp("gzip");
        let p = d.join("f.000001.gz");
        let mut all = Vec::new();
        let mut gz = Vec::new();
        for part in [&b"first member "[..], b"second", b" third"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
            all.extend_from_slice(part);
        }
        std::fs::write(&p, &gz).unwrap();
        let mut fb = open_file(&p, u64::MAX).unwrap();
        assert_eq!(fb.window(0, 1000).unwrap(), &all[..]);
        let mut fb = open_file(&p, 10).unwrap();
        let err = fb.window(0, 1000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded);
        let mut fb = open_file(&p, all.len() as u64).unwrap();
        assert_eq!(fb.window(0, 1000).unwrap(), &all[..]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn repeated_or_backward_entries_are_refused_with_their_line() {
        let d = tmp("index");
        for n in ["b.000001", "b.000002", "b.000003"] {
            std::fs::write(d.join(n), b"x").unwrap();
        }
        std::fs::write(d.join("b.index"), "./b.000001\n./b.000002\n./b.000001\n").unwrap();
        let err = resolve_inputs(std::slice::from_ref(&d)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption);
        assert!(err.to_string().contains("line 3"), "{err}");
        assert_eq!(
            err.location().file.as_deref(),
            Some(d.join("b.index").as_path())
        );
        // Resuming in file 2: the repeated file 1 is stored already and dropped.
        let got = resolve_inputs_after(std::slice::from_ref(&d), Some(2)).unwrap();
        assert_eq!(got.iter().map(|f| f.index).collect::<Vec<_>>(), [2]);
        std::fs::write(d.join("b.index"), "./b.000002\n\n./b.000001\n").unwrap();
        let err = resolve_inputs(std::slice::from_ref(&d)).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("goes back"), "{err}");
        std::fs::remove_file(d.join("b.index")).unwrap();
        let args = [d.join("b.000002"), d.join("b.000002")];
        let err = resolve_inputs(&args).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("input 2"), "{err}");
        let args = [d.join("b.000003"), d.join("b.000001")];
        assert!(resolve_inputs(&args).is_err());
        assert_eq!(resolve_inputs_after(&args, Some(3)).unwrap().len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
