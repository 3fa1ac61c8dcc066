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
    /// Largest gzip-compressed binlog file inflated in memory, in bytes. Default: 4 GiB.
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
            max_inflated_file: 4 << 30,
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
}

impl BinlogReader {
    /// Opens binlog files and directories (see [`files::resolve_inputs`]).
    ///
    /// # Errors
    /// As [`files::resolve_inputs`], and `InvalidArgument` for bad options.
    pub fn open(inputs: &[PathBuf], opts: BinlogOptions) -> Result<Self> {
        opts.validate()?;
        let files = files::resolve_inputs(inputs)?;
        let mut r = Self::from_files(files, opts);
        r.inputs = inputs.to_vec();
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
        let mut r = Self::from_files(
            vec![BinlogFile {
                path: name.into(),
                index: file_index,
            }],
            opts,
        );
        r.preloaded = Some(FileBytes::Inflated(bytes));
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
        let bytes = match self.preloaded.take() {
            Some(b) if file == 0 => b,
            _ => files::open_file(&f.path, self.opts.max_inflated_file)
                .map_err(|e| e.in_file(&f.path))?,
        };
        check_magic(bytes.as_slice()).map_err(|e| e.in_file(&f.path))?;
        self.decoder.start_file(f.index);
        let start = frame::MAGIC.len() as u64;
        match frame::frame_at(
            bytes.as_slice(),
            start,
            self.decoder.checksum_alg(),
            self.opts.max_event_size,
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
                if b.extend(&f.path, self.opts.max_inflated_file)
                    .map_err(|e| e.in_file(&f.path))?
                {
                    more = true;
                }
            }
        }
        if !self.inputs.is_empty() {
            let files = files::resolve_inputs(&self.inputs)?;
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
            .is_some_and(|b| b.as_slice().len() as u64 == self.offset)
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
                let bytes = match self.preloaded.take() {
                    Some(b) => b,
                    None => files::open_file(&f.path, self.opts.max_inflated_file)?,
                };
                check_magic(bytes.as_slice())?;
                self.decoder.start_file(f.index);
                self.bytes = Some(bytes);
                self.offset = frame::MAGIC.len() as u64;
            }
            let Some(bytes) = self.bytes.as_ref() else {
                continue;
            };
            let buf = bytes.as_slice();
            match frame::frame_at(
                buf,
                self.offset,
                self.decoder.checksum_alg(),
                self.opts.max_event_size,
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
                        if b.extend(&path, self.opts.max_inflated_file)
                            .map_err(|e| e.in_file(&path))?
                        {
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
