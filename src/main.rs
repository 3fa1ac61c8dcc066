//! The `changetrack` command line. Thin: it calls the public library API only.
//!
//! Exit codes: 0 success; 1 an error (corrupt or unsupported input, I/O, a store error);
//! 2 bad usage; 3 the input ends inside an event (the message says where to resume);
//! 4 the store is locked by another writer; 5 a position outside the stored data range;
//! 6 wrong credentials; 7 another consumer of the group is active (`consume --no-wait`) or took
//! over; 8 `precheck` found an item that fails. A closed output pipe (`| head`) and a
//! requested stop (SIGINT/SIGTERM) end with 0.

/// Writes the formatted text to stdout (see [`emit`]).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::emit(&format!($($t)*))
    };
}

/// Writes the formatted text and a newline to stdout (see [`emit`]).
macro_rules! outln {
    () => {
        $crate::emit("\n")
    };
    ($($t:tt)*) => {
        $crate::emit(&format!("{}\n", format_args!($($t)*)))
    };
}

mod check;
mod groups;
mod serve;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use changetrack::ingest::IngestProgress;
use changetrack::record::{avro, json};
use changetrack::source::live::{LiveOptions, SourceUrl, StartPosition};
use changetrack::store::ReadFrom;
use changetrack::{
    BinlogOptions, BinlogReader, ChangeRecord, Checkpoint, Error, ErrorKind, Filter, IngestOptions,
    Store, StoreOptions, SyncMode,
};

/// The exit codes, for `--help`.
const EXIT_CODES: &str =
    "Exit codes: 0 success (also after a requested stop: SIGINT/SIGTERM, or a \
closed output pipe); 1 an error (corrupt or unsupported input, I/O, a store error); 2 bad usage \
(also an unknown table or column in a query); 3 the input ends inside an event (the message \
says where to resume); 4 the store is locked by another writer; 5 a position outside the \
stored data range; 6 wrong credentials; 7 another consumer of the group is active \
(consume --no-wait) or took over; 8 precheck failed (an item failed; the report says how to \
fix it).";

#[derive(Parser)]
#[command(
    name = "changetrack",
    version,
    about = "Change tracking for MySQL and MariaDB binlogs",
    after_help = EXIT_CODES
)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line (the stable contract).
    Jsonl,
    /// Each record as a 4-byte big-endian length, then its DTS Avro bytes.
    Avro,
    /// One human-readable line per record.
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum RecordFormat {
    /// One JSON object per line.
    Jsonl,
    /// 4-byte big-endian length + DTS Avro bytes per record.
    Avro,
}

#[derive(Clone, Copy, ValueEnum)]
enum RangeFormat {
    /// Two human-readable lines.
    Text,
    /// One JSON object.
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sync {
    /// fsync every commit (survives power loss).
    PerBatch,
    /// No fsync (survives a killed process, not a power loss).
    Never,
}

/// TLS for `--source`.
#[derive(clap::Args, Clone, Default)]
struct TlsArgs {
    /// Connect over TLS, verifying the server's certificate and name.
    #[arg(long)]
    tls: bool,
    /// The CA certificate(s) (PEM) the server's certificate is checked against (implies --tls).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// TLS without checking the certificate (testing only; implies --tls).
    #[arg(long)]
    tls_insecure: bool,
}

impl TlsArgs {
    fn options(&self) -> Option<changetrack::source::live::TlsOptions> {
        (self.tls || self.tls_ca.is_some() || self.tls_insecure).then(|| {
            changetrack::source::live::TlsOptions {
                ca: self.tls_ca.clone(),
                insecure: self.tls_insecure,
            }
        })
    }
}

/// Memory limits of reading binlog files (`decode`, `ingest`). Files are read as streams in
/// 1 MiB chunks: what is held in memory is one event at most, whatever the file's size.
#[derive(clap::Args)]
struct ReadLimits {
    /// Largest event accepted, in bytes (K, M, G suffixes: binary units): the most one input
    /// holds in memory. A bigger event is an error (exit 1).
    #[arg(long, default_value = "1G", value_parser = parse_size_u32)]
    max_event_size: u32,
    /// Largest inflated size of a gzip-compressed binlog, in bytes (K, M, G suffixes): past it
    /// reading stops with an error (exit 1), so a gzip bomb never runs on.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    max_inflated_bytes: u64,
}

impl ReadLimits {
    fn options(&self) -> BinlogOptions {
        BinlogOptions {
            max_event_size: self.max_event_size,
            max_inflated_file: self.max_inflated_bytes,
            ..BinlogOptions::default()
        }
    }
}

/// Parses a byte count: digits with an optional K, M, G or T suffix (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (
            &t[..i],
            match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("bad size {s:?}: use digits with K, M, G or T")),
            },
        ),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("bad size {s:?}: use digits with K, M, G or T"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn parse_size_u32(s: &str) -> Result<u32, String> {
    u32::try_from(parse_size(s)?).map_err(|_| format!("size {s:?} is over 4 GiB - 1"))
}

#[derive(Subcommand)]
enum Command {
    /// Print the change records of binlog files (or directories of them) in binlog order.
    Decode {
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        #[command(flatten)]
        limits: ReadLimits,
        /// Stop at an INCIDENT event instead of warning.
        #[arg(long)]
        fail_on_incident: bool,
        /// Print a summary line to stderr at the end.
        #[arg(long)]
        stats: bool,
        /// Binlog files or directories (a directory is read by its .index, else by suffix).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Ingest binlogs into a store, resuming after what it already holds.
    Ingest {
        /// The store directory (created if missing).
        #[arg(long)]
        store: PathBuf,
        /// Track only these databases (comma-separated).
        #[arg(long)]
        databases: Option<String>,
        /// Track only these tables (comma-separated db.table).
        #[arg(long)]
        tables: Option<String>,
        /// Track only these data types: dml, ddl (comma-separated).
        #[arg(long)]
        types: Option<String>,
        /// Keep tailing the inputs (a directory picks up new files as they rotate in).
        #[arg(long)]
        follow: bool,
        /// Durability of each commit.
        #[arg(long, value_enum, default_value = "per-batch")]
        sync: Sync,
        /// Commit a batch once it holds this many records (several transactions share one
        /// atomic batch).
        #[arg(long, default_value_t = 100_000)]
        batch_records: usize,
        /// While catching up, commit at least this often (milliseconds).
        #[arg(long, default_value_t = 50)]
        batch_latency_ms: u64,
        /// Keep records at most this many seconds older than the newest (retention).
        #[arg(long)]
        retain_seconds: Option<u64>,
        /// Keep at most about this many bytes of records (retention).
        #[arg(long)]
        retain_bytes: Option<u64>,
        /// Stream from a live server as a replica instead of reading files:
        /// mysql://USER[:PASS]@HOST[:PORT] (without PASS: CHANGETRACK_SOURCE_PASSWORD).
        #[arg(long, conflicts_with_all = ["paths", "follow"])]
        source: Option<String>,
        /// The replica server id to register with (default: derived from the store path).
        #[arg(long)]
        server_id: Option<u32>,
        /// Where to start when the store is new: now, earliest, FILE:POS, or a MariaDB GTID.
        #[arg(long, default_value = "now")]
        start: String,
        /// Seconds to wait for the server's TCP connection to open (each attempt).
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
        connect_timeout: f64,
        /// Give up (exit code 1) after this many failed connection attempts in a row. Default:
        /// retry for as long as it takes, as a replica does, logging each attempt (the wait
        /// doubles from 100 ms to 30 s). The store is created only once the server answered.
        #[arg(long, value_name = "N")]
        max_retries: Option<u32>,
        #[command(flatten)]
        tls: TlsArgs,
        /// The store is damaged (`changetrack check` says so): first keep its whole
        /// transactions that are provably intact, in a new store that takes its place (the
        /// damaged one is moved aside, nothing is deleted), then ingest, which stores again
        /// what was lost.
        #[arg(long)]
        salvage: bool,
        #[command(flatten)]
        limits: ReadLimits,
        /// Binlog files or directories.
        #[arg(required_unless_present = "source")]
        paths: Vec<PathBuf>,
    },
    /// Check that a live server can be tracked (connection, privileges, binlog settings, server
    /// id, start position), item by item with how to fix each failure. Exit code 0 when every
    /// item passes, 8 when one fails (6 when the server refuses the credentials).
    Precheck {
        /// mysql://USER[:PASS]@HOST[:PORT] (without PASS: CHANGETRACK_SOURCE_PASSWORD).
        #[arg(long)]
        source: String,
        /// The replica server id (default: derived from --store, else 4242).
        #[arg(long)]
        server_id: Option<u32>,
        /// Where streaming would start for a new store.
        #[arg(long, default_value = "now")]
        start: String,
        /// The store that would track it (its resume position and tracked objects are checked).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Seconds to wait for the server's TCP connection to open.
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
        connect_timeout: f64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Print stored records (the decode JSON contract plus `seq`).
    Dump {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Start at this sequence number.
        #[arg(long, conflicts_with_all = ["from_time", "from_checkpoint"])]
        from_seq: Option<u64>,
        /// Start at the first record at or after this time (epoch seconds or 'YYYY-MM-DD HH:MM:SS' UTC).
        #[arg(long, conflicts_with = "from_checkpoint")]
        from_time: Option<String>,
        /// Start at the first record at or after this checkpoint (OFFSET@FILE_INDEX).
        #[arg(long)]
        from_checkpoint: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: RecordFormat,
    },
    /// Print the stored data range: the oldest and newest records.
    Range {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: RangeFormat,
    },
    /// Print store counters.
    Stats {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
    },
    /// Consumer groups: create, list (with metrics), passwd, delete.
    Group {
        #[command(subcommand)]
        command: groups::GroupCommand,
    },
    /// Read the store as a group's consumer (one active per group; others wait as standbys).
    /// The password comes from CHANGETRACK_PASSWORD, --password-file, or a prompt.
    Consume {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// The group id.
        #[arg(long)]
        group: String,
        /// The group's username.
        #[arg(long)]
        user: String,
        /// Read the password from the first line of this file.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Start at the first record at or after this time (epoch seconds or 'YYYY-MM-DD HH:MM:SS' UTC)
        /// instead of after the committed position.
        #[arg(long, conflicts_with = "from_checkpoint")]
        from_time: Option<String>,
        /// Start at the first record at or after this checkpoint (OFFSET@FILE_INDEX).
        #[arg(long)]
        from_checkpoint: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: RecordFormat,
        /// Commit what was printed, as it goes (every second) and on exit.
        #[arg(long)]
        commit: bool,
        /// Stop at the newest record (the default).
        #[arg(long, conflicts_with = "follow")]
        until_end: bool,
        /// Wait for more records (until SIGINT/SIGTERM).
        #[arg(long)]
        follow: bool,
        /// Fail (exit code 7) instead of waiting while another consumer is active.
        #[arg(long)]
        no_wait: bool,
        /// Seconds without a lease renewal after which a standby replaces this consumer (when
        /// its process hangs; a process that dies is replaced at once).
        #[arg(long, default_value_t = 10.0)]
        session_timeout: f64,
    },
    /// Query the stored changes (newest first; by default the last minute of stored data).
    Query(view::QueryArgs),
    /// Show a record in full: every field with its type, charset, before and after value
    /// (changed ones marked), or a DDL statement with its session settings.
    Show {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// A seq, or a checkpoint OFFSET@FILE_INDEX (every record at it).
        what: String,
    },
    /// Serve a store to Kafka clients (and the DTS consumer SDK), next to `ingest`.
    Serve(serve::ServeArgs),
    /// Check a store: its files, records, indexes, groups and resume position; what is wrong
    /// and what can be saved (exit 1 when anything is wrong).
    Check(check::CheckArgs),
    /// Ingest the binlogs shipped with changetrack into a store, create a group, consume,
    /// query and show: a tour in one command.
    Demo {
        /// The store directory. Default: changetrack-demo in the temporary directory.
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// What is tracked: list, add, remove (takes effect while ingestion runs).
    Objects {
        /// The store directory (before or after the subcommand: `objects list --store DIR`).
        #[arg(long, global = true)]
        store: Option<PathBuf>,
        #[command(subcommand)]
        command: groups::ObjectsCommand,
    },
}

fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Incomplete => 3,
        ErrorKind::InvalidArgument => 2,
        ErrorKind::Locked => 4,
        ErrorKind::OutOfRange => 5,
        ErrorKind::Unauthorized => 6,
        ErrorKind::Busy => 7,
        ErrorKind::PrecheckFailed => 8,
        _ => 1,
    }
}

/// Parses epoch seconds or `YYYY-MM-DD HH:MM:SS` (UTC).
fn parse_time(s: &str) -> Result<u32, Error> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let bad = || {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("bad time {s:?}: use epoch seconds or 'YYYY-MM-DD HH:MM:SS' (UTC)"),
        )
    };
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (&[y, m, day], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 59 {
        return Err(bad());
    }
    // Days from civil (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u32::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).map_err(|_| bad())
}

fn utc(ts: u32) -> String {
    let days = i64::from(ts) / 86_400;
    let secs = i64::from(ts) % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Writes `text` to stdout at once. A closed pipe (`| head`) ends the process quietly with exit
/// code 0, as for the record output; another write error ends it with exit code 1 and a message
/// (instead of the panic of `println!`).
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            std::process::exit(1);
        }
    }
}

/// Buffered record output: rendered into one large buffer, written when it fills.
struct Output {
    out: std::io::StdoutLock<'static>,
    text: String,
    bin: Vec<u8>,
    avro: avro::AvroWriter,
}

const FLUSH_AT: usize = 1 << 20;

impl Output {
    fn new() -> Self {
        Self {
            out: std::io::stdout().lock(),
            text: String::with_capacity(FLUSH_AT + (64 << 10)),
            bin: Vec::with_capacity(FLUSH_AT + (64 << 10)),
            avro: avro::AvroWriter::new(),
        }
    }

    fn raw(out: &mut std::io::StdoutLock<'static>, buf: &[u8]) -> Result<(), Error> {
        match out.write_all(buf) {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`) ends the output quietly, as other tools do.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(Error::new(
                ErrorKind::Io,
                format!("cannot write output: {e}"),
            )),
        }
    }

    fn record(&mut self, format: Format, rec: &ChangeRecord, with_seq: bool) -> Result<(), Error> {
        match format {
            Format::Jsonl => {
                json::push_record(&mut self.text, rec, with_seq);
                self.text.push('\n');
            }
            Format::Text => json::push_text_line(&mut self.text, rec),
            Format::Avro => {
                let at = self.bin.len();
                self.bin.extend_from_slice(&[0; 4]);
                self.avro.write(&mut self.bin, rec);
                let len = u32::try_from(self.bin.len() - at - 4).unwrap_or(u32::MAX);
                self.bin[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        if self.text.len() >= FLUSH_AT {
            Self::raw(&mut self.out, self.text.as_bytes())?;
            self.text.clear();
        }
        if self.bin.len() >= FLUSH_AT {
            Self::raw(&mut self.out, &self.bin)?;
            self.bin.clear();
        }
        Ok(())
    }

    /// Writes out everything buffered.
    fn flush(&mut self) -> Result<(), Error> {
        Self::raw(&mut self.out, self.text.as_bytes())?;
        self.text.clear();
        Self::raw(&mut self.out, &self.bin)?;
        self.bin.clear();
        match self.out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::new(
                ErrorKind::Io,
                format!("cannot write output: {e}"),
            )),
            _ => Ok(()),
        }
    }

    fn finish(mut self) -> Result<(), Error> {
        Self::raw(&mut self.out, self.text.as_bytes())?;
        Self::raw(&mut self.out, &self.bin)?;
        match self.out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::new(
                ErrorKind::Io,
                format!("cannot write output: {e}"),
            )),
            _ => Ok(()),
        }
    }
}

fn decode(
    format: Format,
    opts: BinlogOptions,
    stats: bool,
    paths: &[PathBuf],
) -> Result<(), Error> {
    let reader = BinlogReader::open(paths, opts)?;
    let mut out = Output::new();
    let started = std::time::Instant::now();
    // This thread renders and writes, another decodes (and the library reads the file ahead on
    // a third). Records cross in batches, in binlog order; a decoding error comes after every
    // record before it. Rendered batches go back to the decoding thread to be dropped there:
    // freeing memory that another thread allocated makes the two threads contend for the
    // allocator's lock.
    const BATCH: usize = 256;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ChangeRecord>>(16);
    // Unbounded, but never holds more than the batches in flight (16 queued, one rendering).
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<ChangeRecord>>();
    let decoder = std::thread::Builder::new()
        .name("decode".into())
        .spawn(move || {
            let mut reader = reader;
            let mut spare: Vec<Vec<ChangeRecord>> = Vec::new();
            let mut batch = Vec::with_capacity(BATCH);
            let result = loop {
                match reader.next_record() {
                    Ok(Some(rec)) => {
                        batch.push(rec);
                        if batch.len() == BATCH {
                            while let Ok(mut done) = back_rx.try_recv() {
                                done.clear();
                                spare.push(done);
                            }
                            let next = spare.pop().unwrap_or_else(|| Vec::with_capacity(BATCH));
                            if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                                break Ok(());
                            }
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            drop(tx);
            // The last batches come back once the other thread has rendered them.
            for done in back_rx {
                drop(done);
            }
            (reader, result)
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot start the decoding thread: {e}"),
            )
        })?;
    let mut written = Ok(());
    for batch in rx {
        written = batch
            .iter()
            .try_for_each(|rec| out.record(format, rec, false));
        if written.is_err() || back_tx.send(batch).is_err() {
            break;
        }
    }
    drop(back_tx);
    let (reader, result) = decoder
        .join()
        .map_err(|_| Error::new(ErrorKind::Internal, "the decoding thread panicked"))?;
    written?;
    out.finish()?;
    let s = reader.stats();
    for inc in &s.incidents {
        eprintln!("warning: {inc}");
    }
    if stats {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{} transactions, {} records ({} rows), {} events, {} bytes in {:.3}s ({:.1} MB/s); \
             skipped: {} statement events, {} unknown events; {} XA rolled back",
            s.transactions,
            s.records,
            s.rows,
            s.events,
            s.bytes,
            secs,
            s.bytes as f64 / secs / 1e6,
            s.skipped_statements,
            s.unknown_events.values().sum::<u64>(),
            s.xa_rolled_back
        );
    }
    result
}

/// `ingest --source`: the live server to stream from.
struct Live {
    url: String,
    server_id: u32,
    start: String,
    tls: Option<changetrack::source::live::TlsOptions>,
    connect_timeout: f64,
    max_retries: Option<u32>,
}

/// A replica server id derived from the store path (stable across restarts, distinct between
/// stores), or 4242 without a store.
fn default_server_id(store: Option<&std::path::Path>) -> u32 {
    store.map_or(4242, |p| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        100_000 + crc32fast::hash(p.to_string_lossy().as_bytes()) % 2_000_000_000
    })
}

fn live_options(
    server_id: u32,
    start: &str,
    tls: Option<changetrack::source::live::TlsOptions>,
    connect_timeout: f64,
    max_retries: Option<u32>,
) -> Result<LiveOptions, Error> {
    let connect_timeout = std::time::Duration::try_from_secs_f64(connect_timeout)
        .ok()
        .filter(|d| !d.is_zero() && *d <= std::time::Duration::from_secs(3600))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "--connect-timeout {connect_timeout}: use more than 0 and at most 3600 seconds"
                ),
            )
        })?;
    Ok(LiveOptions {
        server_id,
        start: start.parse::<StartPosition>()?,
        tls,
        connect_timeout,
        max_retries,
        ..LiveOptions::default()
    })
}

/// What `precheck` found: every item passed, or the exit code of a failure.
enum PrecheckOutcome {
    Passed,
    /// This many items failed; exit with this code.
    Failed(usize, u8),
}

fn precheck_cmd(
    url: &str,
    server_id: u32,
    start: &str,
    store: Option<&std::path::Path>,
    tls: Option<changetrack::source::live::TlsOptions>,
    connect_timeout: f64,
) -> Result<PrecheckOutcome, Error> {
    let url: SourceUrl = url.parse()?;
    let opts = live_options(server_id, start, tls, connect_timeout, None)?;
    let (filter, resume) = match store {
        Some(s) if s.join("CURRENT").exists() => {
            let st = open_reader(&s.to_path_buf())?;
            (
                st.current_filter()?.map(|(f, _)| f).unwrap_or_default(),
                st.source_position()?,
            )
        }
        _ => (Filter::default(), None),
    };
    let items = changetrack::source::live::precheck(&url, &opts, &filter, resume.as_ref())?;
    let mut failed = 0;
    for i in &items {
        outln!(
            "{} {}: {}",
            if i.passed { "PASS" } else { "FAIL" },
            i.name,
            i.detail
        );
        if !i.passed {
            failed += 1;
            outln!("     fix: {}", i.fix);
        }
    }
    if failed > 0 {
        // Refused credentials: the same exit code as `ingest` gives for them.
        let unauthorized = items
            .iter()
            .any(|i| !i.passed && i.error == Some(ErrorKind::Unauthorized));
        return Ok(PrecheckOutcome::Failed(
            failed,
            if unauthorized { 6 } else { 8 },
        ));
    }
    outln!("all {} checks passed", items.len());
    Ok(PrecheckOutcome::Passed)
}

#[allow(clippy::too_many_arguments)]
fn ingest_cmd(
    store: &PathBuf,
    databases: Option<String>,
    tables: Option<String>,
    types: Option<String>,
    follow: bool,
    sync: Sync,
    retention: changetrack::Retention,
    live: Option<Live>,
    batching: (usize, std::time::Duration),
    binlog: BinlogOptions,
    paths: &[PathBuf],
) -> Result<(), Error> {
    // Flags replace the filter in force (recorded in the store's filter history); without
    // them ingestion goes on with the stored one.
    let filter = if databases.is_some() || tables.is_some() || types.is_some() {
        let mut f = Filter::default();
        if let Some(d) = databases {
            f = f.with_databases(&d)?;
        }
        if let Some(t) = tables {
            f = f.with_tables(&t)?;
        }
        if let Some(t) = types {
            f = f.with_types(&t)?;
        }
        Some(f)
    } else {
        None
    };
    let sopts = StoreOptions {
        sync: match sync {
            Sync::PerBatch => SyncMode::PerBatch,
            Sync::Never => SyncMode::Never,
        },
        retention,
        ..StoreOptions::default()
    };
    if batching.0 == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--batch-records is at least 1",
        ));
    }
    let stop: changetrack::ingest::StopFlag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot install a signal handler: {e}"),
            )
        })?;
    }
    // A live source: wait for the server before the store is opened, so that nothing is
    // created (or changed in an existing store) until it answers.
    let live = match live {
        Some(l) => {
            let url: SourceUrl = l.url.parse()?;
            let lopts = live_options(
                l.server_id,
                &l.start,
                l.tls.clone(),
                l.connect_timeout,
                l.max_retries,
            )?;
            eprintln!(
                "streaming from {url} as replica {} (Ctrl-C stops at a transaction boundary)",
                l.server_id
            );
            let t0 = std::time::Instant::now();
            if !changetrack::source::live::wait_for_server(&url, &lopts, Some(&stop))? {
                outln!(
                    "ingested 0 transactions, 0 records, 0 bytes in {:.3}s; stopped before {url} answered (the store was not opened)",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            // A new store: the precheck runs before it is created, so that a server or account
            // that is not fit leaves nothing behind. (`ingest_live` checks again, with the
            // store's position, for a store that exists.)
            if !store.join("CURRENT").exists() {
                changetrack::source::live::require_precheck(
                    &url,
                    &lopts,
                    filter.as_ref().unwrap_or(&Filter::default()),
                    None,
                )?;
            }
            Some((url, lopts))
        }
        None => None,
    };
    let st = Store::open(store, sopts)?;
    let opts = IngestOptions {
        filter,
        follow,
        batch_records: batching.0,
        batch_latency: batching.1,
        binlog,
        ..IngestOptions::default()
    };
    let total: u64 = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                std::fs::read_dir(p)
                    .map(|d| {
                        d.filter_map(|e| e.ok()?.metadata().ok())
                            .map(|m| m.len())
                            .sum()
                    })
                    .unwrap_or(0)
            } else {
                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum();
    let bar = if live.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut progress = |p: IngestProgress| {
        if let Some(b) = &bar {
            b.set_position(p.bytes);
            b.set_message(format!("{} records", p.records));
        }
    };
    let s = match &live {
        Some((url, lopts)) => changetrack::source::live::ingest_live(
            &st,
            url,
            lopts,
            &opts,
            Some(&stop),
            &mut progress,
        )?,
        None => changetrack::ingest(&st, paths, &opts, Some(&stop), &mut progress)?,
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let pos = s.position.as_ref().map_or_else(
        || "none".to_owned(),
        |p| format!("{}@{} ({})", p.offset, p.file_index, p.file_name),
    );
    outln!(
        "ingested {} transactions, {} records, {} bytes in {:.3}s ({:.0} records/s, {:.1} MB/s); resume position {pos}{}",
        s.transactions,
        s.records,
        s.bytes,
        secs,
        s.records as f64 / secs,
        s.bytes as f64 / secs / 1e6,
        if s.incomplete_tail { "; stopped at a partial event" } else { "" }
    );
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("stopped on request (SIGINT/SIGTERM) at a transaction boundary");
    }
    Ok(())
}

fn open_reader(store: &PathBuf) -> Result<Store, Error> {
    let st = Store::open(
        store,
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )?;
    st.refresh()?;
    Ok(st)
}

fn dump(store: &PathBuf, from: ReadFrom, format: RecordFormat) -> Result<(), Error> {
    let st = open_reader(store)?;
    let mut out = Output::new();
    let fmt = match format {
        RecordFormat::Jsonl => Format::Jsonl,
        RecordFormat::Avro => Format::Avro,
    };
    for rec in st.iter(from)? {
        out.record(fmt, &rec?, true)?;
    }
    out.finish()
}

fn range(store: &PathBuf, format: RangeFormat) -> Result<(), Error> {
    let st = open_reader(store)?;
    let r = st.data_range()?;
    match (format, r) {
        (RangeFormat::Text, None) => outln!("the store is empty"),
        (RangeFormat::Jsonl, None) => outln!("{{\"oldest\":null,\"newest\":null}}"),
        (RangeFormat::Text, Some(r)) => {
            for (name, e) in [("oldest", &r.oldest), ("newest", &r.newest)] {
                outln!(
                    "{name}: seq {} checkpoint {} time {} ({} UTC)",
                    e.seq,
                    e.checkpoint,
                    e.timestamp,
                    utc(e.timestamp)
                );
            }
        }
        (RangeFormat::Jsonl, Some(r)) => {
            let end = |e: &changetrack::store::RangeEnd| {
                format!(
                    "{{\"seq\":{},\"checkpoint\":\"{}\",\"timestamp\":{}}}",
                    e.seq, e.checkpoint, e.timestamp
                )
            };
            outln!(
                "{{\"oldest\":{},\"newest\":{}}}",
                end(&r.oldest),
                end(&r.newest)
            );
        }
    }
    Ok(())
}

fn stats(store: &PathBuf) -> Result<(), Error> {
    let st = open_reader(store)?;
    let s = st.stats()?;
    outln!("records:      {}", s.records);
    outln!("record bytes: {}", s.record_bytes);
    outln!("disk bytes:   {}", s.disk_bytes);
    outln!("seq range:    {}..{}", s.oldest_seq, s.last_seq);
    outln!("tables:       {}", s.tables);
    match &s.source {
        Some(p) => outln!(
            "resume at:    {}@{} ({})",
            p.offset,
            p.file_index,
            p.file_name
        ),
        None => outln!("resume at:    (nothing ingested)"),
    }
    if let Some(r) = st.data_range()? {
        outln!("data range:   {r}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHANGETRACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Decode {
            format,
            limits,
            fail_on_incident,
            stats,
            paths,
        } => {
            let opts = BinlogOptions {
                fail_on_incident,
                ..limits.options()
            };
            decode(format, opts, stats, &paths)
        }
        Command::Ingest {
            store,
            databases,
            tables,
            types,
            follow,
            sync,
            retain_seconds,
            retain_bytes,
            source,
            server_id,
            start,
            connect_timeout,
            max_retries,
            tls,
            limits,
            batch_records,
            batch_latency_ms,
            salvage,
            paths,
        } => (|| {
            if salvage {
                check::salvage(&store)?;
            }
            let retention = changetrack::Retention {
                max_age: retain_seconds.map(std::time::Duration::from_secs),
                max_bytes: retain_bytes,
            };
            let live = source.map(|url| Live {
                url,
                server_id: server_id.unwrap_or_else(|| default_server_id(Some(&store))),
                start,
                tls: tls.options(),
                connect_timeout,
                max_retries,
            });
            let batching = (
                batch_records,
                std::time::Duration::from_millis(batch_latency_ms),
            );
            let r = ingest_cmd(
                &store,
                databases,
                tables,
                types,
                follow,
                sync,
                retention,
                live,
                batching,
                limits.options(),
                &paths,
            );
            if let Err(e) = &r {
                check::report_acknowledged(&store, e);
            }
            r
        })(),
        Command::Precheck {
            source,
            server_id,
            start,
            store,
            connect_timeout,
            tls,
        } => match precheck_cmd(
            &source,
            server_id.unwrap_or_else(|| default_server_id(store.as_deref())),
            &start,
            store.as_deref(),
            tls.options(),
            connect_timeout,
        ) {
            Ok(PrecheckOutcome::Passed) => Ok(()),
            Ok(PrecheckOutcome::Failed(n, code)) => {
                eprintln!("error: {n} precheck item(s) failed (exit code {code})");
                return ExitCode::from(code);
            }
            Err(e) => Err(e),
        },
        Command::Dump {
            store,
            from_seq,
            from_time,
            from_checkpoint,
            format,
        } => (|| {
            let from = match (from_seq, from_time, from_checkpoint) {
                (Some(s), _, _) => ReadFrom::Seq(s),
                (_, Some(t), _) => ReadFrom::Timestamp(parse_time(&t)?),
                (_, _, Some(c)) => ReadFrom::Checkpoint(c.parse::<Checkpoint>()?),
                _ => ReadFrom::Earliest,
            };
            dump(&store, from, format)
        })(),
        Command::Range { store, format } => range(&store, format),
        Command::Stats { store } => stats(&store),
        Command::Group { command } => groups::group(command),
        Command::Query(a) => view::query(&a),
        Command::Show { store, what } => view::show(&store, &what),
        Command::Demo { store } => view::demo(store),
        Command::Serve(a) => serve::serve(&a),
        Command::Check(a) => check::check(&a),
        Command::Objects { store, command } => match store {
            Some(store) => groups::objects(&store, command),
            None => Err(Error::new(
                ErrorKind::InvalidArgument,
                "objects needs --store DIR (e.g. changetrack objects list --store DIR)",
            )),
        },
        Command::Consume {
            store,
            group,
            user,
            password_file,
            from_time,
            from_checkpoint,
            format,
            commit,
            until_end: _,
            follow,
            no_wait,
            session_timeout,
        } => groups::consume(groups::ConsumeArgs {
            store,
            group,
            user,
            password_file,
            from_time,
            from_checkpoint,
            format,
            commit,
            follow,
            no_wait,
            session_timeout,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("2038-01-19 03:14:07").unwrap(), 2_147_483_647);
        assert_eq!(parse_time("2000-02-29 00:00:00").unwrap(), 951_782_400);
        assert!(parse_time("2000-13-01 00:00:00").is_err());
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
    }
}
