//! Reading binlogs: framing, decoding, and the [`BinlogReader`] over a list of files.

mod decode;
pub mod frame;
pub(crate) mod jsonb;
pub(crate) mod mariadb;
pub(crate) mod rows;
pub(crate) mod table_map;

use std::path::{Path, PathBuf};

pub use decode::{DecodeStats, Decoder, SchemaLookup};
pub use frame::{ChecksumAlg, EventHeader, Framed, RawEvent};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{ChangeRecord, Checkpoint};
use crate::source::files::{self, BinlogFile, FileBytes};

/// Limits and switches for reading binlogs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinlogOptions {
    /// Largest event accepted, in bytes. Default: 1 GiB (MySQL's largest `max_allowed_packet`).
    /// Minimum: 1 KiB. Bigger events give a `LimitExceeded` error.
    pub max_event_size: u32,
    /// Largest inflated size of a gzip-compressed binlog file, in bytes; the archive is
    /// inflated as it is read, in chunks, and reading stops with `LimitExceeded` once it passes
    /// this (a gzip bomb stops here, not when memory runs out). Default: 1 GiB (MySQL's
    /// largest `max_binlog_size`; a file goes past it only by its last transaction).
    ///
    /// Memory does not depend on it: files are read as streams, holding one event (at most
    /// `max_event_size`) plus a 1 MiB read chunk, whatever their size.
    pub max_inflated_file: u64,
    /// Largest total size of prepared-but-unresolved XA transactions held in memory, in bytes.
    /// Default: 256 MiB.
    pub max_pending_xa_bytes: usize,
    /// Table maps kept before the cache is cleared. Default: 100 000.
    pub max_table_maps: usize,
    /// Stop with an `Incident` error at an INCIDENT event instead of warning. Default: false.
    pub fail_on_incident: bool,
}

impl Default for BinlogOptions {
    fn default() -> Self {
        Self {
            max_event_size: 1 << 30,
            max_inflated_file: 1 << 30,
            max_pending_xa_bytes: 256 << 20,
            max_table_maps: 100_000,
            fail_on_incident: false,
        }
    }
}

impl BinlogOptions {
    /// Checks the options.
    ///
    /// # Errors
    /// `InvalidArgument` naming the bad option.
    pub fn validate(&self) -> Result<()> {
        if self.max_event_size < 1024 {
            return Err(Error::invalid("max_event_size must be at least 1024 bytes"));
        }
        if self.max_inflated_file < 4 {
            return Err(Error::invalid("max_inflated_file must be at least 4 bytes"));
        }
        if self.max_table_maps == 0 {
            return Err(Error::invalid("max_table_maps must be at least 1"));
        }
        Ok(())
    }
}

/// Where a [`BinlogReader`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderPosition {
    /// The file being read.
    pub file: PathBuf,
    /// Its file index.
    pub file_index: u32,
    /// The offset of the next event to read.
    pub offset: u64,
}

impl ReaderPosition {
    /// As a checkpoint.
    #[must_use]
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.file_index, self.offset)
    }
}

/// Reads change records from binlog files, in order.
///
/// Yields `Result<ChangeRecord>`; after an error it yields nothing more. A file that ends in the
/// middle of an event gives an [`ErrorKind::Incomplete`] error whose
/// [`Error::resume_offset`] says where to resume.
pub struct BinlogReader {
    files: Vec<BinlogFile>,
    opts: BinlogOptions,
    cur: usize,
    bytes: Option<FileBytes>,
    offset: u64,
    decoder: Decoder,
    done: bool,
    /// Bytes of the first file, when given in memory.
    preloaded: Option<FileBytes>,
    /// The inputs as given (for `refresh`).
    inputs: Vec<PathBuf>,
    /// Files with a smaller index are dropped from the inputs (stored already).
    resume_file: Option<u32>,
    /// Every event of the current file so far ended where its header's `log_pos` says (or had
    /// none): a `log_pos` that disagrees with the length is then a sign of a damaged length.
    positions_consistent: bool,
}

impl BinlogReader {
    /// Opens binlog files and directories (see [`files::resolve_inputs`]).
    ///
    /// # Errors
    /// As [`files::resolve_inputs`], and `InvalidArgument` for bad options.
    pub fn open(inputs: &[PathBuf], opts: BinlogOptions) -> Result<Self> {
        Self::open_resuming(inputs, opts, None)
    }

    /// Opens binlog files and directories for a reader that resumes in file index
    /// `resume_file` (see [`files::resolve_inputs_after`]): files with a smaller index, stored
    /// already, are left out, and may repeat or be out of order; the rest must be in order.
    ///
    /// # Errors
    /// As [`files::resolve_inputs_after`], and `InvalidArgument` for bad options.
    pub fn open_resuming(
        inputs: &[PathBuf],
        opts: BinlogOptions,
        resume_file: Option<u32>,
    ) -> Result<Self> {
        opts.validate()?;
        let files = files::resolve_inputs_after(inputs, resume_file)?;
        let mut r = Self::from_files(files, opts);
        r.inputs = inputs.to_vec();
        r.resume_file = resume_file;
        Ok(r)
    }

    /// A reader over already-resolved files.
    #[must_use]
    pub fn from_files(files: Vec<BinlogFile>, opts: BinlogOptions) -> Self {
        let first = files.first().map_or(0, |f| f.index);
        Self {
            decoder: Decoder::new(opts.clone(), first),
            files,
            opts,
            cur: 0,
            bytes: None,
            offset: 0,
            done: false,
            preloaded: None,
            inputs: Vec::new(),
            resume_file: None,
            positions_consistent: true,
        }
    }

    /// A reader over one binlog file held in memory (`name` is used in error locations).
    #[must_use]
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        file_index: u32,
        bytes: Vec<u8>,
        opts: BinlogOptions,
    ) -> Self {
        let path = name.into();
        let mut r = Self::from_files(
            vec![BinlogFile {
                path: path.clone(),
                index: file_index,
            }],
            opts,
        );
        r.preloaded = Some(FileBytes::memory(&path, bytes));
        r
    }

    /// Positions the reader at `offset` of the `file`-th input file (a transaction boundary
    /// from an earlier run). The file's FORMAT_DESCRIPTION event is read first.
    ///
    /// # Errors
    /// `InvalidArgument` for a file number past the list or an offset inside the header;
    /// errors opening or framing the file.
    pub fn start_at(&mut self, file: usize, offset: u64) -> Result<()> {
        let f = self
            .files
            .get(file)
            .ok_or_else(|| Error::invalid("start file is not in the input list"))?
            .clone();
        self.cur = file;
        self.done = false;
        let mut bytes = match self.preloaded.take() {
            Some(b) if file == 0 => b,
            _ => files::open_file(&f.path, self.opts.max_inflated_file)
                .map_err(|e| e.in_file(&f.path))?,
        };
        check_magic(
            bytes
                .window(0, frame::MAGIC.len())
                .map_err(|e| e.in_file(&f.path))?,
        )
        .map_err(|e| e.in_file(&f.path))?;
        self.decoder.start_file(f.index);
        self.positions_consistent = true;
        let start = frame::MAGIC.len() as u64;
        match frame_next(
            &mut bytes,
            start,
            self.decoder.checksum_alg(),
            self.opts.max_event_size,
            true,
        )
        .map_err(|e| e.in_file(&f.path))?
        {
            Framed::Event(ev) if ev.header.type_code == frame::FORMAT_DESCRIPTION => {
                let end = ev.end();
                self.decoder.feed(&ev).map_err(|e| e.in_file(&f.path))?;
                if offset < end {
                    self.offset = end;
                    self.bytes = Some(bytes);
                    return if offset <= start {
                        Ok(())
                    } else {
                        Err(Error::invalid(
                            "resume offset is inside the format description event",
                        ))
                    };
                }
            }
            _ => {
                return Err(Error::corruption(
                    "the file does not start with a FORMAT_DESCRIPTION event",
                )
                .in_file(&f.path)
                .at_offset(start));
            }
        }
        self.bytes = Some(bytes);
        self.offset = offset;
        Ok(())
    }

    /// Looks for more input: re-maps the current file if it grew, and adds files that appeared
    /// in the input directories since. Returns whether there is anything new to read.
    ///
    /// # Errors
    /// Errors listing the directories or opening the file.
    pub fn refresh(&mut self) -> Result<bool> {
        let mut more = false;
        if let Some(f) = self.files.get(self.cur) {
            if let Some(b) = self.bytes.as_mut() {
                if b.extend().map_err(|e| e.in_file(&f.path))? {
                    more = true;
                }
            }
        }
        if !self.inputs.is_empty() {
            let files = files::resolve_inputs_after(&self.inputs, self.resume_file)?;
            let known: std::collections::HashSet<_> =
                self.files.iter().map(|f| f.path.clone()).collect();
            for f in files {
                if !known.contains(&f.path) && self.files.last().is_none_or(|l| f.index > l.index) {
                    self.files.push(f);
                    more = true;
                }
            }
        }
        if more {
            self.done = false;
        }
        Ok(more)
    }

    /// Whether the reader is positioned at the end of a completely read file that has a
    /// successor (so the successor can be started).
    fn at_file_end(&self) -> bool {
        self.bytes
            .as_ref()
            .is_some_and(|b| b.read_end() == self.offset)
    }

    /// The decoder's statistics and state.
    #[must_use]
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Supplies column names from a schema history for tables whose TABLE_MAP lacks them.
    pub fn set_schema_lookup(&mut self, f: SchemaLookup) {
        self.decoder.set_schema_lookup(f);
    }

    /// The files this reader reads, in order.
    #[must_use]
    pub fn files(&self) -> &[BinlogFile] {
        &self.files
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &DecodeStats {
        self.decoder.stats()
    }

    /// The position of the next event.
    #[must_use]
    pub fn position(&self) -> Option<ReaderPosition> {
        self.files.get(self.cur).map(|f| ReaderPosition {
            file: f.path.clone(),
            file_index: f.index,
            offset: self.offset,
        })
    }

    fn locate(&self, e: Error) -> Error {
        match self.files.get(self.cur) {
            Some(f) => e.in_file(&f.path),
            None => e,
        }
    }

    /// The next record, `None` at the end of the last file.
    ///
    /// # Errors
    /// Typed errors naming the file and offset.
    pub fn next_record(&mut self) -> Result<Option<ChangeRecord>> {
        if let Some(r) = self.decoder.pop() {
            return Ok(Some(r));
        }
        if self.done {
            return Ok(None);
        }
        match self.fill() {
            Ok(()) => Ok(self.decoder.pop()),
            // After any error the reader yields nothing more; a cut tail can be read again
            // once the file has grown (`refresh` re-arms the reader).
            Err(e) => {
                self.done = true;
                Err(self.locate(e))
            }
        }
    }

    /// Reads events until at least one record is queued or the input ends.
    fn fill(&mut self) -> Result<()> {
        loop {
            if self.bytes.is_none() {
                let Some(f) = self.files.get(self.cur) else {
                    self.done = true;
                    return Ok(());
                };
                let mut bytes = match self.preloaded.take() {
                    Some(b) => b,
                    None => files::open_file(&f.path, self.opts.max_inflated_file)?,
                };
                check_magic(bytes.window(0, frame::MAGIC.len())?)?;
                self.decoder.start_file(f.index);
                self.positions_consistent = true;
                self.bytes = Some(bytes);
                self.offset = frame::MAGIC.len() as u64;
            }
            let Some(bytes) = self.bytes.as_mut() else {
                continue;
            };
            match frame_next(
                bytes,
                self.offset,
                self.decoder.checksum_alg(),
                self.opts.max_event_size,
                self.positions_consistent,
            )? {
                Framed::Event(ev) => {
                    if self.offset == frame::MAGIC.len() as u64
                        && ev.header.type_code != frame::FORMAT_DESCRIPTION
                        && ev.header.type_code != frame::START_EVENT_V3
                    {
                        return Err(Error::corruption(format!(
                            "the first event is of type {}, not FORMAT_DESCRIPTION",
                            ev.header.type_code
                        ))
                        .at_offset(self.offset));
                    }
                    let end = ev.end();
                    if ev.header.log_pos != 0 && u64::from(ev.header.log_pos) != end {
                        // Relay logs carry the source's positions.
                        self.positions_consistent = false;
                    }
                    self.decoder.feed(&ev)?;
                    self.offset = end;
                    if self.decoder.has_output() {
                        return Ok(());
                    }
                }
                Framed::End => {
                    if self.cur + 1 >= self.files.len() {
                        self.done = true;
                        return Ok(());
                    }
                    // A successor exists, so the server had finished this file when the
                    // successor was seen. The bytes in hand may still be older than that (read
                    // while the server was writing the file's last events): look again before
                    // leaving the file, or its tail would be skipped.
                    let path = self.files.get(self.cur).map(|f| f.path.clone());
                    if let (Some(path), Some(b)) = (path, self.bytes.as_mut()) {
                        if b.extend().map_err(|e| e.in_file(&path))? {
                            continue;
                        }
                    }
                    debug_assert!(self.at_file_end());
                    self.bytes = None;
                    self.cur += 1;
                    self.offset = 0;
                    // Files are read in the order given (or the index's); a ROTATE that names a
                    // different next file means the list has a gap or is out of order.
                    if let (Some(want), Some(next)) =
                        (self.decoder.take_rotate(), self.files.get(self.cur))
                    {
                        let name = next
                            .path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned());
                        if name.as_deref() != Some(want.as_str()) {
                            tracing::warn!(
                                "ROTATE names {want} as the next binlog, but the next input is {}",
                                next.path.display()
                            );
                        }
                    }
                }
                Framed::Incomplete { offset, have, need } => {
                    // Resume where the transaction the partial event belongs to starts: its
                    // events before this one must be read again (the same position `ingest`
                    // stores). An XA transaction prepared in an earlier file is not counted
                    // here: the offset is one in this file.
                    let index = self.files.get(self.cur).map_or(0, |f| f.index);
                    let resume = self
                        .decoder
                        .restart_point()
                        .filter(|cp| cp.file_index == index && cp.offset < offset)
                        .map_or(offset, |cp| cp.offset);
                    let what = if resume < offset {
                        format!("; its transaction starts at {resume}")
                    } else {
                        String::new()
                    };
                    return Err(Error::new(
                        ErrorKind::Incomplete,
                        format!(
                            "the file ends inside an event: {have} of {need} bytes present{what}"
                        ),
                    )
                    .at_offset(offset)
                    .with_resume_offset(resume));
                }
            }
        }
    }
}

/// Frames the event at `offset` of a file read as a stream: reads its header, then as many
/// bytes as it claims (at most `max_event_size`).
///
/// An event that claims more bytes than the file has is a cut tail ([`Framed::Incomplete`]),
/// unless the file shows that the length is wrong: with `positions_consistent` (every event so
/// far ended at its `log_pos`), a `log_pos` inside the bytes present, where another event
/// plausibly starts (or the file ends), means the event really ends there and its length field
/// is damaged: `Corruption`.
fn frame_next(
    bytes: &mut FileBytes,
    offset: u64,
    alg: ChecksumAlg,
    max_event_size: u32,
    positions_consistent: bool,
) -> Result<Framed<'_>> {
    let head = bytes.window(offset, frame::HEADER_LEN)?;
    let need = match head.first_chunk::<{ frame::HEADER_LEN }>() {
        Some(h) => {
            let size = EventHeader::parse(h).event_size;
            if size <= max_event_size {
                (size as usize).max(frame::HEADER_LEN)
            } else {
                frame::HEADER_LEN
            }
        }
        None => frame::HEADER_LEN,
    };
    let win = bytes.window(offset, need)?;
    let framed = frame::frame_event(win, offset, alg, max_event_size)?;
    if let Framed::Incomplete { need, .. } = framed {
        if positions_consistent && need > frame::HEADER_LEN as u64 {
            if let Some(e) = damaged_length(win, offset) {
                return Err(e);
            }
        }
    }
    Ok(framed)
}

/// For an event whose length runs past the end of the file (`rest`, from `offset`): the error
/// when its `log_pos` shows where it really ends, inside the file, with an event (or the end
/// of the file) there.
fn damaged_length(rest: &[u8], offset: u64) -> Option<Error> {
    let h = EventHeader::parse(rest.first_chunk::<{ frame::HEADER_LEN }>()?);
    let log_pos = u64::from(h.log_pos);
    let eof = offset + rest.len() as u64;
    let claimed = offset + u64::from(h.event_size);
    if log_pos == 0 || log_pos == claimed || log_pos < offset + frame::HEADER_LEN as u64 {
        return None;
    }
    if log_pos > eof {
        return None;
    }
    let at = usize::try_from(log_pos - offset).ok()?;
    let next = rest.get(at..).unwrap_or_default();
    let plausible = match next.first_chunk::<{ frame::HEADER_LEN }>() {
        // The file ends there, or just a cut header follows.
        None => true,
        Some(n) => {
            let n = EventHeader::parse(n);
            n.event_size as usize >= frame::HEADER_LEN
                && (n.log_pos == 0 || u64::from(n.log_pos) == log_pos + u64::from(n.event_size))
        }
    };
    plausible.then(|| {
        Error::corruption(format!(
            "event of type {} claims {} bytes, past the end of the file at {eof}, but its end \
             position (log_pos) is {log_pos}{}: its length field is damaged",
            h.type_code,
            h.event_size,
            if at == rest.len() {
                ", where the file ends"
            } else {
                " and the next event starts there"
            }
        ))
        .at_offset(offset)
    })
}

fn check_magic(buf: &[u8]) -> Result<()> {
    if buf.len() < frame::MAGIC.len() {
        if frame::MAGIC.starts_with(buf) {
            return Err(Error::new(
                ErrorKind::Incomplete,
                "the file ends inside the binlog magic",
            )
            .at_offset(0)
            .with_resume_offset(0));
        }
        return Err(Error::corruption("not a binlog file (bad magic)").at_offset(0));
    }
    if !buf.starts_with(&frame::MAGIC) {
        return Err(Error::corruption("not a binlog file (bad magic bytes)").at_offset(0));
    }
    Ok(())
}

impl Iterator for BinlogReader {
    type Item = Result<ChangeRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Decodes every record of the given binlog files and directories.
///
/// # Errors
/// The first error met; records before it are lost to the caller, so prefer [`BinlogReader`]
/// where partial results matter.
pub fn decode_all(inputs: &[impl AsRef<Path>]) -> Result<Vec<ChangeRecord>> {
    let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.as_ref().to_path_buf()).collect();
    BinlogReader::open(&inputs, BinlogOptions::default())?.collect()
}
